//! [`Handle`]: what the application holds to reach one node from any thread.

use core::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration as StdDuration;

use bytes::Bytes;

use super::error::{CallError, JoinError};
use super::shared::{Command, JoinState, NodeStatus, Refused, Shared};
use crate::id::{Id, NodeHandle};
use crate::node::RouteError;
use crate::node::{Node, Phase, Stats};

/// A node's counters: the sans-IO node's [`Stats`] plus the runtime's own.
#[derive(Clone, Debug, Default)]
pub struct NodeStats {
    /// The node's protocol counters (datagrams, `bad_frames`, `foreign_frames`, deliveries, …).
    pub node: Stats,
    /// Upcalls that panicked (caught; the node kept running).
    pub upcall_panics: u64,
    /// Datagrams the OS refused to send (other than "would block").
    pub send_errors: u64,
    /// Datagrams dropped because too many were already waiting for the socket to drain.
    pub send_drops: u64,
    /// Receive errors other than "would block".
    pub recv_errors: u64,
    /// Messages queued by `route` that the node then refused (not active, overloaded).
    pub routes_refused: u64,
    /// Approximate heap bytes the node holds.
    pub heap_bytes: usize,
}

/// A `Send + Sync` handle to one node running on a [`Runtime`](super::Runtime). Cheap to clone.
///
/// Non-blocking calls ([`Handle::route`], [`Handle::start_join`], [`Handle::crash`]) queue a
/// command and wake the loop; they work from any thread, upcalls included. Blocking calls
/// (queries, [`Handle::stats`], [`Handle::wait_joined`], [`Handle::leave`]) wait for the loop's
/// answer and refuse to run on the loop thread itself, where they would deadlock.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(super) shared: Arc<Shared>,
    pub(super) status: Arc<NodeStatus>,
}

fn stopped_or<T>(r: Result<(), Refused>, full: T, stopped: T) -> Result<(), T> {
    match r {
        Ok(()) => Ok(()),
        Err(Refused::Stopped) => Err(stopped),
        Err(Refused::Full) => Err(full),
    }
}

impl Handle {
    /// The node's id.
    pub fn id(&self) -> Id {
        self.status.me.id
    }
    /// The address its socket is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.status.me.addr
    }
    /// The node as others address it.
    pub fn node_handle(&self) -> NodeHandle {
        self.status.me
    }
    /// Where the node is in its life cycle (as last published by the loop).
    pub fn phase(&self) -> Phase {
        self.status.phase()
    }
    /// Whether the node is active (joined).
    pub fn is_active(&self) -> bool {
        self.phase() == Phase::Active
    }

    fn push(&self, cmd: Command) -> Result<(), Refused> {
        if self.status.is_stopped() {
            return Err(Refused::Stopped);
        }
        self.shared.push(cmd)
    }

    /// Starts a new overlay with this node as its only member. Returns at once; the node is
    /// active when the loop has run the command (see [`Handle::wait_joined`]).
    ///
    /// # Errors
    /// [`JoinError::AlreadyStarted`], [`JoinError::Stopped`].
    pub fn start_alone(&self) -> Result<(), JoinError> {
        self.start(&[])
    }

    /// Starts joining through `bootstraps` (tried round robin, with backoff) and returns at once.
    ///
    /// # Errors
    /// [`JoinError::NoBootstrap`], [`JoinError::AlreadyStarted`], [`JoinError::Stopped`].
    pub fn start_join(&self, bootstraps: &[SocketAddr]) -> Result<(), JoinError> {
        if bootstraps.is_empty() {
            return Err(JoinError::NoBootstrap);
        }
        self.start(bootstraps)
    }

    fn start(&self, bootstraps: &[SocketAddr]) -> Result<(), JoinError> {
        match self.status.begin_join(bootstraps) {
            JoinState::Idle | JoinState::Failed => {}
            JoinState::Gone => return Err(JoinError::Stopped),
            _ => return Err(JoinError::AlreadyStarted),
        }
        let cmd = Command::Start(self.status.token, bootstraps.to_vec());
        stopped_or(self.push(cmd), JoinError::Stopped, JoinError::Stopped)
    }

    /// Waits up to `timeout` for the join started by [`Handle::start_join`] (or
    /// [`Handle::start_alone`]) to complete.
    ///
    /// # Errors
    /// [`JoinError::NoBootstrapAnswered`] when the node gave up, [`JoinError::Timeout`] when it
    /// is still trying, [`JoinError::NotStarted`], [`JoinError::Stopped`],
    /// [`JoinError::OnLoopThread`].
    pub fn wait_joined(&self, timeout: StdDuration) -> Result<(), JoinError> {
        if self.shared.on_loop_thread() {
            return Err(JoinError::OnLoopThread);
        }
        // The runtime reads the OS clock: a blocking wait needs a deadline.
        #[allow(clippy::disallowed_methods)]
        let deadline = std::time::Instant::now() + timeout;
        match self.status.wait_join(deadline) {
            (JoinState::Active, _) => Ok(()),
            (JoinState::Joining, _) => Err(JoinError::Timeout(timeout)),
            (JoinState::Failed, bootstraps) => Err(JoinError::NoBootstrapAnswered {
                bootstraps,
                attempts: self.status.join_attempts,
            }),
            (JoinState::Idle, _) => Err(JoinError::NotStarted),
            (JoinState::Gone, _) => Err(JoinError::Stopped),
        }
    }

    /// Joins through `bootstraps` and waits up to `timeout` for the join to complete.
    ///
    /// # Errors
    /// As [`Handle::start_join`] and [`Handle::wait_joined`]; a join nobody answers ends in
    /// [`JoinError::NoBootstrapAnswered`] once the node's `join_attempts` are spent.
    ///
    /// # Examples
    /// ```
    /// use pastry::runtime::{NodeConfig, Runtime};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new().unwrap();
    /// let any = "127.0.0.1:0".parse().unwrap();
    /// let a = rt.add_node(NodeConfig::new(any), ()).unwrap();
    /// a.start_alone().unwrap();
    /// let b = rt.add_node(NodeConfig::new(any), ()).unwrap();
    /// b.join(&[a.addr()], Duration::from_secs(10)).unwrap();
    /// assert!(b.is_active());
    /// ```
    pub fn join(&self, bootstraps: &[SocketAddr], timeout: StdDuration) -> Result<(), JoinError> {
        self.start_join(bootstraps)?;
        self.wait_joined(timeout)
    }

    /// Routes `payload` toward the root of `key` (the Common API `route`). Returns once the
    /// message is queued for the loop; it works from any thread, upcalls included. The
    /// application learns of the delivery through its `deliver` upcall at the root, of a
    /// failure through `undeliverable` at this node; both carry the message id returned here.
    ///
    /// Backpressure: at most [`NodeConfig::max_in_flight`](super::NodeConfig::max_in_flight)
    /// messages routed through the node's handles may be unfinished at once (not yet
    /// acknowledged by their root, delivered here, or reported undeliverable); beyond that the
    /// route is refused with [`RouteError::Overloaded`] — wait for deliveries or reports, then
    /// route again. Delivery is at least once: a root may see a message twice when an
    /// acknowledgement was lost and the source retried.
    ///
    /// # Errors
    /// [`RouteError::PayloadTooLarge`], [`RouteError::NotActive`], [`RouteError::Overloaded`]
    /// (the in-flight budget is spent, or the command queue is full), [`RouteError::Stopped`].
    pub fn route(&self, key: Id, payload: impl Into<Bytes>) -> Result<u64, RouteError> {
        self.route_with_hint(Some(key), payload, None)
    }

    /// [`Handle::route`] with the Common API's optional `hint` (first hop); with a hint and no
    /// key, the message is a direct send delivered at the hint.
    ///
    /// # Errors
    /// As [`Handle::route`], and [`RouteError::NoDestination`] without key and hint.
    pub fn route_with_hint(
        &self,
        key: Option<Id>,
        payload: impl Into<Bytes>,
        hint: Option<NodeHandle>,
    ) -> Result<u64, RouteError> {
        let payload = payload.into();
        let max = self.status.max_payload;
        if payload.len() > max {
            return Err(RouteError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        if key.is_none() && hint.is_none() {
            return Err(RouteError::NoDestination);
        }
        match self.phase() {
            Phase::Active => {}
            Phase::Stopped => return Err(RouteError::Stopped),
            _ => return Err(RouteError::NotActive),
        }
        if !self.status.take_in_flight() {
            return Err(RouteError::Overloaded);
        }
        let msg_id = super::fresh_msg_id();
        let cmd = Command::Route {
            token: self.status.token,
            msg_id,
            key,
            payload,
            hint,
        };
        let r = stopped_or(self.push(cmd), RouteError::Overloaded, RouteError::Stopped);
        if r.is_err() {
            self.status.release_in_flight();
        }
        r.map(|()| msg_id)
    }

    /// Runs `f` with the node on the loop thread and returns its result: the general form of
    /// the queries below. `f` must not block.
    ///
    /// # Errors
    /// [`CallError::Stopped`], [`CallError::OnLoopThread`], [`CallError::Panicked`].
    pub fn call<T, F>(&self, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&Node) -> T + Send + 'static,
    {
        if self.shared.on_loop_thread() {
            return Err(CallError::OnLoopThread);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let run = move |n: &Node| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(n)));
            let _ = tx.send(r.ok());
        };
        let cmd = Command::Call(self.status.token, Box::new(run));
        stopped_or(self.push(cmd), CallError::Stopped, CallError::Stopped)?;
        match rx.recv() {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(CallError::Panicked),
            Err(_) => Err(CallError::Stopped),
        }
    }

    /// Up to `num` next-hop candidates toward `key` (the Common API `local_lookup`).
    ///
    /// # Errors
    /// As [`Handle::call`].
    pub fn local_lookup(
        &self,
        key: Id,
        num: usize,
        safe: bool,
    ) -> Result<Vec<NodeHandle>, CallError> {
        self.call(move |n| n.local_lookup(key, num, safe))
    }

    /// Up to `num` leaf-set members (the Common API `neighborSet`).
    ///
    /// # Errors
    /// As [`Handle::call`].
    pub fn neighbor_set(&self, num: usize) -> Result<Vec<NodeHandle>, CallError> {
        self.call(move |n| n.neighbor_set(num))
    }

    /// The nodes that would become root of `key` (the Common API `replicaSet`).
    ///
    /// # Errors
    /// As [`Handle::call`].
    pub fn replica_set(&self, key: Id, max_rank: usize) -> Result<Vec<NodeHandle>, CallError> {
        self.call(move |n| n.replica_set(key, max_rank))
    }

    /// The key range for which `node` is an r-root (the Common API `range`); `Ok(None)` when it
    /// cannot be determined here.
    ///
    /// # Errors
    /// As [`Handle::call`].
    pub fn range(&self, node: Id, rank: usize) -> Result<Option<(Id, Id)>, CallError> {
        self.call(move |n| n.range(node, rank))
    }

    /// The node's counters.
    ///
    /// # Errors
    /// As [`Handle::call`].
    pub fn stats(&self) -> Result<NodeStats, CallError> {
        let (stats, heap_bytes) = self.call(|n| (n.stats().clone(), n.heap_bytes()))?;
        Ok(self.assemble_stats(stats, heap_bytes))
    }

    /// The node's counters read from `node`, the node itself as an upcall receives it (no
    /// round trip through the loop: usable inside the node's upcalls).
    pub fn stats_of(&self, node: &Node) -> NodeStats {
        self.assemble_stats(node.stats().clone(), node.heap_bytes())
    }

    fn assemble_stats(&self, stats: Stats, heap_bytes: usize) -> NodeStats {
        let s = &self.status;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        NodeStats {
            node: stats,
            upcall_panics: get(&s.upcall_panics),
            send_errors: get(&s.send_errors),
            send_drops: get(&s.send_drops),
            recv_errors: get(&s.recv_errors),
            routes_refused: get(&s.routes_refused),
            heap_bytes,
        }
    }

    /// Leaves gracefully: the node tells its leaf set it is leaving, its queued datagrams are
    /// flushed, then it is removed from the runtime (its socket closed). Waits up to `timeout`
    /// for that. Called from an upcall, the leave is deferred until the upcall returns, and
    /// this returns at once.
    ///
    /// # Errors
    /// [`CallError::Stopped`] if the node is gone already, [`CallError::Timeout`].
    pub fn leave(&self, timeout: StdDuration) -> Result<(), CallError> {
        if self.shared.on_loop_thread() {
            let cmd = Command::Leave(self.status.token, None);
            return stopped_or(self.push(cmd), CallError::Stopped, CallError::Stopped);
        }
        let (tx, rx) = mpsc::channel();
        let cmd = Command::Leave(self.status.token, Some(tx));
        stopped_or(self.push(cmd), CallError::Stopped, CallError::Stopped)?;
        match rx.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(CallError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(CallError::Stopped),
        }
    }

    /// Removes the node at once without telling anyone, as if its host had crashed (its
    /// socket is closed). Returns at once. For tests of failure detection and repair.
    pub fn crash(&self) {
        let _ = self.push(Command::Crash(self.status.token, None));
    }

    /// Stops the node abruptly, as a crash would: no goodbye to its leaf set (which notices by
    /// failure detection), queued datagrams and messages in flight dropped, the socket closed
    /// and the node removed from the runtime. Waits up to `timeout` for that; called from an
    /// upcall, it is done after the upcall returns, and this returns at once.
    ///
    /// # Errors
    /// [`CallError::Stopped`] if the node is gone already, [`CallError::Timeout`].
    pub fn abort(&self, timeout: StdDuration) -> Result<(), CallError> {
        if self.shared.on_loop_thread() {
            let cmd = Command::Crash(self.status.token, None);
            return stopped_or(self.push(cmd), CallError::Stopped, CallError::Stopped);
        }
        let (tx, rx) = mpsc::channel();
        let cmd = Command::Crash(self.status.token, Some(tx));
        stopped_or(self.push(cmd), CallError::Stopped, CallError::Stopped)?;
        match rx.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(CallError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(CallError::Stopped),
        }
    }

    /// Messages routed through this node's handles that have not finished yet (acknowledged
    /// by their root, delivered here, or reported undeliverable); see
    /// [`NodeConfig::max_in_flight`](super::NodeConfig::max_in_flight).
    pub fn in_flight(&self) -> usize {
        self.status.in_flight.load(Ordering::Acquire)
    }
}
