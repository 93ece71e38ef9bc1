//! `pastry node`: one node as a long-lived process.
//!
//! It logs joins and leaf-set changes to stderr and stops cleanly on SIGINT or SIGTERM (or the
//! `quit` command) with a graceful leave. Stdin/stdout carry a line protocol, so scripts and
//! tests can drive it:
//!
//! ```text
//! stdout, unprompted                      stdin command        → stdout answer
//! ready <id> <addr>                       route <key> <text>   → routed <key>
//! joined <id>                             leafset              → leafset <id>@<addr> ...
//! delivered <key> <text> at <id> hops <n> table                → table <row>,<col>,<id>,<addr>,<rtt_us|-> ...
//! update <+|-> <id>@<addr>                stats                → stats <name>=<value> ...
//! left <id>                               quit                 → (leaves; left <id>)
//! ```
//!
//! Keys and ids are 32 hex digits. A failed command answers `error <message>`. The end of stdin
//! does not stop the node; a signal or `quit` does.
//!
//! Signals: `libc` is not a dependency, so the two C functions needed (`signal` and `write`,
//! both in the C library std links anyway) are declared here; the handler only writes one
//! byte to a self-pipe (async-signal-safe). This is the only `unsafe` code of the binary.

// The CLI drives real sockets: it reads the wall clock and runs a control thread.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::time::Duration as StdDuration;

use pastry::node::Node;
use pastry::runtime::{Application, Delivery, Handle, JoinError, NodeConfig, Runtime};
use pastry::{DigitBits, Duration, Id, NodeHandle};

use super::args::Args;

/// Why the main thread wakes (the byte written to the self-pipe).
const WAKE_SIGNAL: u8 = 1;
const WAKE_QUIT: u8 = 2;
const WAKE_JOIN_FAILED: u8 = 3;

/// Writes one protocol line to stdout, flushed.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The application of a stand-alone node: reports deliveries and leaf-set changes.
struct NodeApp;

impl Application for NodeApp {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let text = String::from_utf8_lossy(&msg.payload);
        say(&format!(
            "delivered {} {text} at {} hops {}",
            msg.key,
            node.id(),
            msg.hops
        ));
    }
    fn update(&mut self, node: &Node, peer: NodeHandle, joined: bool) {
        let sign = if joined { '+' } else { '-' };
        eprintln!("pastry node {}: leaf set {sign} {peer}", short(node.id()));
        say(&format!("update {sign} {peer}"));
    }
    fn joined(&mut self, node: &Node) {
        eprintln!("pastry node {}: joined (active)", short(node.id()));
    }
}

fn short(id: Id) -> String {
    id.to_hex()[..8].to_string()
}

fn config(a: &mut Args) -> Result<NodeConfig, String> {
    let listen: SocketAddr = a
        .get_opt("listen")?
        .ok_or("`pastry node` needs --listen ADDR (e.g. 127.0.0.1:4000)")?;
    let mut cfg = NodeConfig::new(listen).with_network(a.get("network", 0)?);
    if let Some(id) = a.get_opt::<Id>("id")? {
        cfg = cfg.with_id(id);
    }
    let b: u8 = a.get("b", 4)?;
    cfg.node.b = DigitBits::new(b).ok_or_else(|| format!("--b {b}: expected 1, 2 or 4"))?;
    cfg.node.leaf_set_size = a.get("leaf", 16)?;
    let ms = |v: u64| Duration::from_millis(v);
    cfg.node.leaf_probe_period = ms(a.get("probe-ms", 5_000)?);
    cfg.node.rt_maintenance_period = ms(a.get("rt-ms", 30_000)?);
    cfg.node.join_timeout = ms(a.get("join-timeout-ms", 3_000)?);
    cfg.node.join_attempts = a.get("join-attempts", 8)?;
    Ok(cfg)
}

pub(crate) fn main(argv: &[String]) -> Result<(), String> {
    let mut a = Args::parse(argv, &[])?;
    let cfg = config(&mut a)?;
    let bootstraps: Vec<SocketAddr> = a.get_all("bootstrap")?;
    a.finish()?;
    let rt = Runtime::new().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let h = rt.add_node(cfg, NodeApp).map_err(|e| e.to_string())?;
    say(&format!("ready {} {}", h.id(), h.addr()));
    eprintln!("pastry node {}: listening on {}", short(h.id()), h.addr());
    let (mut wake_rx, wake_tx) =
        UnixStream::pair().map_err(|e| format!("cannot create the signal pipe: {e}"))?;
    signals::install(&wake_tx)?;
    if bootstraps.is_empty() {
        h.start_alone().map_err(|e| e.to_string())?;
    } else {
        h.start_join(&bootstraps).map_err(|e| e.to_string())?;
    }
    let control = {
        let h = h.clone();
        let tx = wake_tx.try_clone().map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("pastry-node-control".into())
            .spawn(move || control(&h, tx))
            .map_err(|e| e.to_string())?
    };
    drop(control); // detached: it may sit in a read of stdin until the process exits
    let mut why = [0u8; 1];
    wake_rx.read_exact(&mut why).map_err(|e| e.to_string())?;
    if why[0] == WAKE_JOIN_FAILED {
        return Err("the join failed (see above)".into());
    }
    let reason = if why[0] == WAKE_SIGNAL {
        "signal"
    } else {
        "quit"
    };
    eprintln!("pastry node {}: leaving ({reason})", short(h.id()));
    h.leave(StdDuration::from_secs(5))
        .map_err(|e| e.to_string())?;
    rt.shutdown();
    say(&format!("left {}", h.id()));
    Ok(())
}

/// The control thread: waits for the join, then serves stdin commands.
fn control(h: &Handle, mut wake: UnixStream) {
    loop {
        match h.wait_joined(StdDuration::from_secs(3600)) {
            Ok(()) => break,
            Err(JoinError::Timeout(_)) => continue,
            Err(e) => {
                eprintln!("pastry node {}: {e}", short(h.id()));
                say(&format!("error {e}"));
                let _ = wake.write_all(&[WAKE_JOIN_FAILED]);
                return;
            }
        }
    }
    say(&format!("joined {}", h.id()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        match command(h, line.trim()) {
            Ok(Some(answer)) => say(&answer),
            Ok(None) => {
                let _ = wake.write_all(&[WAKE_QUIT]);
                return;
            }
            Err(e) => say(&format!("error {e}")),
        }
    }
}

/// Runs one stdin command: `Ok(None)` means quit.
fn command(h: &Handle, line: &str) -> Result<Option<String>, String> {
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let answer = match cmd {
        "route" => {
            let (key, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let key: Id = key.parse().map_err(|e| format!("key {key}: {e}"))?;
            h.route(key, text.as_bytes().to_vec())
                .map_err(|e| e.to_string())?;
            format!("routed {key}")
        }
        "leafset" => {
            let members = h.neighbor_set(64).map_err(|e| e.to_string())?;
            let list: Vec<String> = members.iter().map(ToString::to_string).collect();
            format!("leafset {}", list.join(" "))
        }
        "table" => format!("table {}", table(h)?),
        "stats" => stats(h)?,
        "quit" => return Ok(None),
        "" => return Ok(Some(String::new())),
        other => return Err(format!("unknown command `{other}`")),
    };
    Ok(Some(answer))
}

/// The routing table as `row,col,id,addr,rtt_us` items (`-` for an unmeasured RTT).
fn table(h: &Handle) -> Result<String, String> {
    let cells = h
        .call(|n| {
            let rt = n.routing_table();
            rt.entries()
                .map(|e| {
                    let (r, c) = rt.cell_of(e.node.id).unwrap_or((0, 0));
                    let rtt = if e.rtt_us == pastry::routing_table::UNMEASURED {
                        "-".to_string()
                    } else {
                        e.rtt_us.to_string()
                    };
                    format!("{r},{c},{},{},{rtt}", e.node.id, e.node.addr)
                })
                .collect::<Vec<_>>()
        })
        .map_err(|e| e.to_string())?;
    Ok(cells.join(" "))
}

fn stats(h: &Handle) -> Result<String, String> {
    let s = h.stats().map_err(|e| e.to_string())?;
    let n = &s.node;
    Ok(format!(
        "stats datagrams_in={} datagrams_out={} bad_frames={} foreign_frames={} delivered={} \
         forwarded={} retransmits={} failures_detected={} upcall_panics={} heap_bytes={}",
        n.datagrams_in,
        n.datagrams_out,
        n.bad_frames,
        n.foreign_frames,
        n.delivered,
        n.forwarded,
        n.retransmits,
        n.failures_detected,
        s.upcall_panics,
        s.heap_bytes
    ))
}

/// SIGINT and SIGTERM write [`WAKE_SIGNAL`] to the self-pipe.
#[allow(unsafe_code)]
mod signals {
    use std::os::unix::io::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicI32, Ordering};

    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    /// `SIG_ERR`, `(sighandler_t) -1`.
    const SIG_ERR: usize = usize::MAX;

    /// The self-pipe's write end (-1 until installed).
    static PIPE: AtomicI32 = AtomicI32::new(-1);

    extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    }

    extern "C" fn on_signal(_signum: i32) {
        let fd = PIPE.load(Ordering::Relaxed);
        if fd >= 0 {
            let byte = [super::WAKE_SIGNAL];
            // SAFETY: write(2) is async-signal-safe; `byte` is valid for one byte during the
            // call; `fd` is the write end of a socket pair that lives until the process exits
            // (`install` leaks a clone of it).
            let _ = unsafe { write(fd, byte.as_ptr(), 1) };
        }
    }

    /// Routes SIGINT and SIGTERM to `pipe` (a clone of it is kept open for good).
    pub(super) fn install(pipe: &UnixStream) -> Result<(), String> {
        let keep = pipe.try_clone().map_err(|e| e.to_string())?;
        PIPE.store(keep.as_raw_fd(), Ordering::Relaxed);
        std::mem::forget(keep);
        for sig in [SIGINT, SIGTERM] {
            // SAFETY: `on_signal` is an `extern "C" fn(i32)` that only does async-signal-safe
            // work (an atomic load and write(2)); `signal` replaces the disposition of `sig`.
            let old = unsafe { signal(sig, on_signal) };
            if old == SIG_ERR {
                return Err(format!("cannot install a handler for signal {sig}"));
            }
        }
        Ok(())
    }
}
