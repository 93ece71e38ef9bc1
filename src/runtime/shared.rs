//! What the event-loop thread shares with the handles: the command queue (a `parking_lot` mutex
//! held only for a push or a swap) with its `mio::Waker`, and each node's published status.

use core::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;

use bytes::Bytes;
use mio::net::UdpSocket;
use mio::{Registry, Waker};
use parking_lot::{Condvar, Mutex};

use super::app::Application;
use crate::id::{Id, NodeHandle};
use crate::node::{Node, Phase};

/// Most commands queued at once; beyond it `route` reports `Overloaded`.
pub(super) const QUEUE_CAP: usize = 1 << 16;

/// A node built by a handle's thread, handed to the loop.
pub(super) struct NewNode {
    pub(super) token: usize,
    pub(super) node: Node,
    pub(super) socket: UdpSocket,
    pub(super) app: Box<dyn Application>,
    pub(super) status: Arc<NodeStatus>,
}

/// A closure run on the loop thread with the node.
pub(super) type Call = Box<dyn FnOnce(&Node) + Send>;

/// A request to the event loop.
pub(super) enum Command {
    /// Take a new node (its socket is registered already).
    Add(Box<NewNode>),
    /// Start alone (empty list) or join through the bootstraps.
    Start(usize, Vec<SocketAddr>),
    /// Route a message.
    Route {
        token: usize,
        msg_id: u64,
        key: Option<Id>,
        payload: Bytes,
        hint: Option<NodeHandle>,
    },
    /// Run a closure with the node (queries, stats).
    Call(usize, Call),
    /// Leave gracefully, flush, remove; then signal.
    Leave(usize, Option<Sender<()>>),
    /// Remove silently, as a crash would (no goodbye); then signal.
    Crash(usize, Option<Sender<()>>),
    /// Every node leaves; the loop ends.
    Shutdown,
}

/// Why a command was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// The loop has ended.
    Stopped,
    /// The queue holds [`QUEUE_CAP`] commands.
    Full,
}

/// State shared by the loop and every handle of one runtime.
pub(super) struct Shared {
    queue: Mutex<Vec<Command>>,
    waker: Waker,
    pub(super) registry: Registry,
    next_token: AtomicUsize,
    pub(super) loop_thread: OnceLock<ThreadId>,
    stopped: AtomicBool,
    /// The loop is blocked (or about to block) in `poll`: a push must wake it. While it runs,
    /// pushes need no wake (it takes the queue at the end of every round), which saves a
    /// `write` and a wakeup per `route` under load.
    parked: AtomicBool,
}

impl core::fmt::Debug for Shared {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn new(waker: Waker, registry: Registry) -> Shared {
        Shared {
            queue: Mutex::new(Vec::new()),
            waker,
            registry,
            next_token: AtomicUsize::new(1),
            loop_thread: OnceLock::new(),
            stopped: AtomicBool::new(false),
            parked: AtomicBool::new(false),
        }
    }

    /// A fresh socket token (never reused).
    pub(super) fn token(&self) -> usize {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the caller is this runtime's event-loop thread.
    pub(super) fn on_loop_thread(&self) -> bool {
        self.loop_thread.get() == Some(&std::thread::current().id())
    }

    /// Queues `cmd` and wakes the loop if it is parked in `poll` (see [`Shared::park`]; a
    /// running loop takes the queue at the end of its round, so pushes from upcalls and
    /// pushes during a busy round need no wake). Refused (and dropped) when the runtime has
    /// stopped or the queue is full.
    pub(super) fn push(&self, cmd: Command) -> Result<(), Refused> {
        let mut q = self.queue.lock();
        let refused = if self.stopped.load(Ordering::Acquire) {
            Some(Refused::Stopped)
        } else if q.len() >= QUEUE_CAP
            && !matches!(
                cmd,
                Command::Shutdown | Command::Leave(..) | Command::Crash(..)
            )
        {
            Some(Refused::Full)
        } else {
            None
        };
        if let Some(r) = refused {
            drop(q);
            drop(cmd); // outside the lock: it may own a closure or a reply channel
            return Err(r);
        }
        q.push(cmd);
        drop(q);
        // SeqCst with `park`'s store and check (both ordered by the queue's mutex): either the
        // loop saw this command before blocking, or this sees `parked` and wakes it.
        if self.parked.swap(false, Ordering::SeqCst) {
            // A failed wake means the poll instance is gone: the loop has ended, and its exit
            // guard drops what is queued.
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// The loop is about to block in `poll`: returns `false` (and stays unparked) when a
    /// command is already queued, so the loop polls without blocking instead.
    pub(super) fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        if self.queue.lock().is_empty() {
            return true;
        }
        self.parked.store(false, Ordering::SeqCst);
        false
    }

    /// The loop is running again (its `poll` returned).
    pub(super) fn unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }

    /// Takes every queued command (the loop's side).
    pub(super) fn take(&self, into: &mut Vec<Command>) {
        let mut q = self.queue.lock();
        core::mem::swap(&mut *q, into);
    }

    /// Marks the runtime stopped and drops whatever is still queued (waking every waiter,
    /// whose reply channels close).
    pub(super) fn close(&self) {
        let dropped = {
            let mut q = self.queue.lock();
            self.stopped.store(true, Ordering::Release);
            core::mem::take(&mut *q)
        };
        drop(dropped);
    }

    /// Whether the loop has ended.
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

/// Where a node's join stands, as the handles see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JoinState {
    /// Not started.
    Idle,
    /// Joining.
    Joining,
    /// Active.
    Active,
    /// The last join gave up (`JoinFailed`).
    Failed,
    /// Removed from the runtime.
    Gone,
}

/// A node's status, published by the loop for its handles.
#[derive(Debug)]
pub(super) struct NodeStatus {
    pub(super) token: usize,
    pub(super) me: NodeHandle,
    pub(super) max_payload: usize,
    pub(super) join_attempts: u32,
    phase: AtomicU8,
    join: Mutex<(JoinState, Vec<SocketAddr>)>,
    join_changed: Condvar,
    /// Runtime counters (see `NodeStats`).
    pub(super) upcall_panics: AtomicU64,
    pub(super) send_errors: AtomicU64,
    pub(super) send_drops: AtomicU64,
    pub(super) recv_errors: AtomicU64,
    pub(super) routes_refused: AtomicU64,
    /// Messages routed through the handles and not finished yet (see `NodeConfig::max_in_flight`).
    pub(super) in_flight: AtomicUsize,
    /// The budget of `in_flight`.
    pub(super) max_in_flight: usize,
}

fn phase_code(p: Phase) -> u8 {
    match p {
        Phase::Idle => 0,
        Phase::Joining => 1,
        Phase::Active => 2,
        Phase::Stopped => 3,
    }
}

impl NodeStatus {
    pub(super) fn new(token: usize, node: &Node, max_in_flight: usize) -> NodeStatus {
        NodeStatus {
            token,
            me: node.handle(),
            max_payload: node.config().max_payload,
            join_attempts: node.config().join_attempts,
            phase: AtomicU8::new(phase_code(node.phase())),
            join: Mutex::new((JoinState::Idle, Vec::new())),
            join_changed: Condvar::new(),
            upcall_panics: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            send_drops: AtomicU64::new(0),
            recv_errors: AtomicU64::new(0),
            routes_refused: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight,
        }
    }

    /// Takes one unit of the in-flight budget; `false` (nothing taken) when it is spent.
    pub(super) fn take_in_flight(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_in_flight).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back one unit of the in-flight budget (a message finished or was refused).
    pub(super) fn release_in_flight(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub(super) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Idle,
            1 => Phase::Joining,
            2 => Phase::Active,
            _ => Phase::Stopped,
        }
    }

    pub(super) fn set_phase(&self, p: Phase) {
        self.phase.store(phase_code(p), Ordering::Release);
    }

    /// Whether the node has stopped (it left, crashed, or was removed): one atomic load, so
    /// the hot `route` path takes no lock.
    pub(super) fn is_stopped(&self) -> bool {
        self.phase() == Phase::Stopped
    }

    /// Moves the join state (never out of `Gone`) and wakes waiters.
    pub(super) fn set_join(&self, s: JoinState) {
        let mut j = self.join.lock();
        if j.0 != JoinState::Gone {
            j.0 = s;
        }
        drop(j);
        self.join_changed.notify_all();
    }

    /// Records a join start (the handle's side): `Joining` with its bootstrap list.
    pub(super) fn begin_join(&self, bootstraps: &[SocketAddr]) -> JoinState {
        let mut j = self.join.lock();
        let before = j.0;
        if matches!(before, JoinState::Idle | JoinState::Failed) {
            *j = (JoinState::Joining, bootstraps.to_vec());
        }
        before
    }

    /// Waits until the join is no longer in progress or `deadline` passes.
    pub(super) fn wait_join(&self, deadline: std::time::Instant) -> (JoinState, Vec<SocketAddr>) {
        let mut j = self.join.lock();
        while j.0 == JoinState::Joining {
            if self.join_changed.wait_until(&mut j, deadline).timed_out() {
                break;
            }
        }
        (j.0, j.1.clone())
    }

    /// Counts one event in `c`.
    pub(super) fn count(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> (mio::Poll, Shared) {
        let poll = mio::Poll::new().unwrap();
        let waker = Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let registry = poll.registry().try_clone().unwrap();
        (poll, Shared::new(waker, registry))
    }

    #[test]
    fn queue_is_bounded_swapped_whole_and_closed_for_good() {
        let (_poll, s) = shared();
        for _ in 0..QUEUE_CAP {
            assert!(s.push(Command::Start(1, Vec::new())).is_ok());
        }
        assert_eq!(
            s.push(Command::Start(1, Vec::new())).err(),
            Some(Refused::Full)
        );
        // Leaving, crashing and shutting down are never refused for space.
        assert!(s.push(Command::Crash(1, None)).is_ok());
        assert!(s.push(Command::Shutdown).is_ok());
        let mut got = Vec::new();
        s.take(&mut got);
        assert_eq!(got.len(), QUEUE_CAP + 2);
        assert!(s.push(Command::Crash(1, None)).is_ok());
        s.close();
        assert!(s.is_stopped());
        assert_eq!(s.push(Command::Shutdown).err(), Some(Refused::Stopped));
        s.take(&mut got);
        assert!(got.is_empty(), "close drops what was queued");
    }

    #[test]
    fn tokens_are_never_reused() {
        let (_poll, s) = shared();
        let a = s.token();
        assert_eq!(s.token(), a + 1);
        assert_ne!(a, 0, "token 0 is the waker's");
    }
}
