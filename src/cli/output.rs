//! Lines written by a thread of their own through a bounded queue, so that a thread that must
//! not block (the node's event loop, which runs the upcalls) never waits for a slow reader:
//! when the queue is full the line is dropped and counted.

// A blocking writer thread and bounded waits at exit: the CLI is where the OS is used.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

enum Item {
    Line(String),
    /// Answered once every line queued before it was written.
    Flush(mpsc::Sender<()>),
}

/// A bounded queue of lines and the thread that writes them to one sink.
#[derive(Debug)]
pub(crate) struct Lines {
    tx: SyncSender<Item>,
    dropped: Arc<AtomicU64>,
}

impl Lines {
    /// Starts a writer thread named `name` that writes each queued line, with a newline, to the
    /// sink `open` returns; at most `capacity` lines wait.
    pub(crate) fn spawn<W, F>(name: &str, capacity: usize, open: F) -> Lines
    where
        W: Write,
        F: FnOnce() -> W + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || write_all(&mut open(), &rx));
        // Without a thread every line is dropped (and counted): the queue fills and stays full.
        drop(spawned);
        Lines {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `line` (no trailing newline), or drops and counts it when the queue is full.
    /// Never blocks.
    pub(crate) fn send(&self, line: String) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Item::Line(line))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` until every line queued so far is written; `false` if they were not.
    pub(crate) fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (done_tx, done_rx) = mpsc::channel();
        let mut item = Item::Flush(done_tx);
        loop {
            match self.tx.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        done_rx.recv_timeout(left).is_ok()
    }
}

fn write_all<W: Write>(out: &mut W, rx: &Receiver<Item>) {
    while let Ok(item) = rx.recv() {
        let mut next = Some(item);
        // Write what is queued, then flush once: one write(2) per burst, not per line.
        while let Some(item) = next.take() {
            match item {
                Item::Line(l) => {
                    let _ = writeln!(out, "{l}");
                }
                Item::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A sink that blocks until released, as a pipe nobody reads.
    struct Stuck(Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _ = self.1.recv_timeout(Duration::from_secs(10));
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_and_counts_instead_of_blocking() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = mpsc::channel();
        let sink = seen.clone();
        let lines = Lines::spawn("test-writer", 4, move || Stuck(sink, gate));
        for i in 0..100 {
            lines.send(format!("line {i}"));
        }
        // The writer holds at most one line and the queue four: the rest were dropped.
        assert!(lines.dropped() >= 95, "{}", lines.dropped());
        for _ in 0..1000 {
            let _ = release.send(());
        }
        assert!(lines.flush(Duration::from_secs(10)));
        let text = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("line 0\n"), "{text}");
        assert_eq!(text.lines().count() as u64 + lines.dropped(), 100);
    }
}
