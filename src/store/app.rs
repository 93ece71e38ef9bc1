//! The store on the runtime: [`StoreApp`] is the node's [`Application`] (it feeds the upcalls to
//! a [`Store`] and routes the store's messages through the node's [`Handle`]), and
//! [`StoreHandle`] is what the rest of the program calls: blocking [`StoreHandle::put`] /
//! [`StoreHandle::get`] from any thread but the loop's, callback variants from anywhere,
//! upcalls included.
//!
//! The runtime has no timers for applications, so a small thread per store (started by
//! [`StoreHandle::bind`]) ticks the store's retries, timeouts and digest exchange through
//! [`Handle::call`]; it ends when the node does.
//!
//! ```
//! use pastry::store::{StoreApp, StoreConfig};
//! use pastry::{NodeConfig, Runtime};
//! use std::time::Duration;
//!
//! let rt = Runtime::new().unwrap();
//! let (app, store) = StoreApp::new(StoreConfig::default());
//! let node = rt.add_node(NodeConfig::new("127.0.0.1:0".parse().unwrap()), app).unwrap();
//! store.bind(node.clone());
//! node.start_alone().unwrap();
//! node.wait_joined(Duration::from_secs(5)).unwrap();
//! let key = store.put(b"hello".to_vec(), Duration::from_secs(5)).unwrap();
//! assert_eq!(&store.get(key, Duration::from_secs(5)).unwrap()[..], b"hello");
//! rt.shutdown();
//! ```

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration as StdDuration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{OpId, Outcome, Store, StoreConfig, StoreError};
use crate::id::{Id, NodeHandle};
use crate::node::{Event, ForwardAction, ForwardCtx, Node, RouteError};
use crate::runtime::{Application, CallError, Delivery, Handle};
use crate::time::Instant;

/// A callback receiving an operation's outcome (on the runtime's loop thread: must not block).
type Callback = Box<dyn FnOnce(Outcome) + Send>;

struct State {
    store: Store,
    waiters: BTreeMap<OpId, Callback>,
}

struct Inner {
    state: Mutex<State>,
    handle: OnceLock<Handle>,
    epoch: std::time::Instant,
}

impl Inner {
    /// Time since the store was created, as the core's clock.
    fn now(&self) -> Instant {
        Instant(self.epoch.elapsed().as_micros() as u64)
    }

    /// Routes the store's queued messages and hands out finished outcomes (callbacks run after
    /// the lock is released).
    fn drain(&self, st: &mut State) -> Vec<(Callback, Outcome)> {
        if let Some(h) = self.handle.get() {
            while let Some(m) = st.store.poll_transmit() {
                if let Err(e) = h.route_with_hint(m.key, m.payload.clone(), m.hint) {
                    let stop = e == RouteError::Overloaded;
                    st.store.transmit_failed(m, e);
                    if stop {
                        break;
                    }
                }
            }
        }
        let mut done = Vec::new();
        while let Some((op, out)) = st.store.poll_outcome() {
            if let Some(cb) = st.waiters.remove(&op) {
                done.push((cb, out));
            }
        }
        done
    }

    fn with(&self, f: impl FnOnce(&mut Store, Instant)) {
        let now = self.now();
        let done = {
            let mut st = self.state.lock();
            f(&mut st.store, now);
            self.drain(&mut st)
        };
        for (cb, out) in done {
            cb(out);
        }
    }
}

/// The store as a node's [`Application`] (see the module docs). An application of its own can
/// hold a `StoreApp` and pass its upcalls on to it.
pub struct StoreApp {
    inner: Arc<Inner>,
}

/// The program's side of a [`StoreApp`]: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

impl core::fmt::Debug for StoreApp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoreApp").finish_non_exhaustive()
    }
}

impl core::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

impl StoreApp {
    /// A store in memory.
    pub fn new(cfg: StoreConfig) -> (StoreApp, StoreHandle) {
        StoreApp::with_store(Store::new(cfg))
    }

    /// Around an existing store (one over a [`super::DiskBackend`], say).
    pub fn with_store(store: Store) -> (StoreApp, StoreHandle) {
        #[allow(clippy::disallowed_methods)] // the runtime side reads the OS clock
        let epoch = std::time::Instant::now();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                store,
                waiters: BTreeMap::new(),
            }),
            handle: OnceLock::new(),
            epoch,
        });
        (
            StoreApp {
                inner: inner.clone(),
            },
            StoreHandle { inner },
        )
    }

    fn event(&self, node: &Node, ev: &Event) {
        self.inner.with(|s, now| s.handle_event(now, node, ev));
    }
}

impl Application for StoreApp {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let ev = Event::Delivered {
            key: msg.key,
            msg_id: msg.msg_id,
            source: msg.source,
            hops: msg.hops,
            payload: msg.payload,
        };
        self.event(node, &ev);
    }

    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        let mut action = ForwardAction::Forward;
        self.inner.with(|s, _| action = s.handle_forward(ctx));
        action
    }

    fn update(&mut self, node: &Node, peer: NodeHandle, joined: bool) {
        let ev = if joined {
            Event::NeighborJoined(peer)
        } else {
            Event::NeighborLeft(peer)
        };
        self.event(node, &ev);
    }

    fn joined(&mut self, node: &Node) {
        self.event(node, &Event::Joined);
    }
}

impl StoreHandle {
    /// Ties the store to its node's handle (the one `add_node` returned for the [`StoreApp`])
    /// and starts its timer thread. Until then the store sends nothing.
    pub fn bind(&self, handle: Handle) {
        if self.inner.handle.set(handle.clone()).is_err() {
            return;
        }
        let inner = self.inner.clone();
        #[allow(clippy::disallowed_methods)] // the runtime side may spawn threads
        std::thread::spawn(move || ticker(&inner, &handle));
    }

    /// Starts a put of `value`; `done` gets its [`Outcome::Put`] on the loop thread. Callable
    /// from an upcall with the upcall's `node`.
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn put_from(
        &self,
        node: &Node,
        value: impl Into<Bytes>,
        done: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<Id, StoreError> {
        let value = value.into();
        let mut r = Err(StoreError::Busy);
        let done: Callback = Box::new(done);
        self.start(|s, now, waiters| {
            r = s.put(now, node, value).map(|(op, key)| {
                waiters.insert(op, done);
                key
            });
        });
        r
    }

    /// Starts a put of `value` under the name `name` (first put wins); `done` gets its
    /// [`Outcome::Put`] on the loop thread. Callable from an upcall with the upcall's `node`.
    ///
    /// # Errors
    /// As [`Store::put_named`].
    pub fn put_named_from(
        &self,
        node: &Node,
        name: &[u8],
        value: &[u8],
        done: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<Id, StoreError> {
        let mut r = Err(StoreError::Busy);
        let done: Callback = Box::new(done);
        self.start(|s, now, waiters| {
            r = s.put_named(now, node, name, value).map(|(op, key)| {
                waiters.insert(op, done);
                key
            });
        });
        r
    }

    /// Starts a get of `key`; `done` gets its [`Outcome::Get`] on the loop thread. Callable
    /// from an upcall with the upcall's `node`.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn get_from(
        &self,
        node: &Node,
        key: Id,
        done: impl FnOnce(Outcome) + Send + 'static,
    ) -> Result<(), StoreError> {
        let mut r = Err(StoreError::Busy);
        let done: Callback = Box::new(done);
        self.start(|s, now, waiters| {
            r = s.get(now, node, key).map(|op| {
                waiters.insert(op, done);
            });
        });
        r
    }

    fn start(&self, f: impl FnOnce(&mut Store, Instant, &mut BTreeMap<OpId, Callback>)) {
        let now = self.inner.now();
        let done = {
            let mut st = self.inner.state.lock();
            let State { store, waiters } = &mut *st;
            f(store, now, waiters);
            self.inner.drain(&mut st)
        };
        for (cb, out) in done {
            cb(out);
        }
    }

    /// Runs `f` with the node on the loop thread, then waits for the outcome it registered.
    fn blocking(
        &self,
        timeout: StdDuration,
        f: impl FnOnce(&StoreHandle, &Node, Callback) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<Outcome, StoreError> {
        let h = self
            .inner
            .handle
            .get()
            .ok_or(StoreError::Route(RouteError::NotActive))?;
        let (tx, rx) = mpsc::sync_channel(1);
        let me = self.clone();
        let cb: Callback = Box::new(move |o| {
            let _ = tx.send(o);
        });
        h.call(move |node| f(&me, node, cb)).map_err(call_error)??;
        rx.recv_timeout(timeout).map_err(|_| StoreError::Timeout)
    }

    /// Stores `value` and waits for its key.
    ///
    /// # Errors
    /// As [`Store::put`], the put's own failure, [`StoreError::Timeout`] after `timeout`, and
    /// [`StoreError::Route`] when not bound, stopped, or called on the loop thread.
    pub fn put(&self, value: impl Into<Bytes>, timeout: StdDuration) -> Result<Id, StoreError> {
        let value = value.into();
        match self.blocking(timeout, move |me, node, cb| {
            me.put_from(node, value, cb).map(drop)
        })? {
            Outcome::Put(r) => r,
            Outcome::Get(_) => Err(StoreError::Corrupt),
        }
    }

    /// Stores `value` under the name `name` and waits: the first put of a name wins.
    ///
    /// # Errors
    /// As [`StoreHandle::put`]; [`StoreError::Conflict`] when the name holds another value.
    pub fn put_named(
        &self,
        name: &[u8],
        value: &[u8],
        timeout: StdDuration,
    ) -> Result<Id, StoreError> {
        let (name, value) = (name.to_vec(), value.to_vec());
        let put = move |me: &StoreHandle, node: &Node, cb| {
            me.put_named_from(node, &name, &value, cb).map(drop)
        };
        match self.blocking(timeout, put)? {
            Outcome::Put(r) => r,
            Outcome::Get(_) => Err(StoreError::Corrupt),
        }
    }

    /// Fetches the object under `key`, verified, and waits for it.
    ///
    /// # Errors
    /// As [`StoreHandle::put`], and the get's own failure.
    pub fn get(&self, key: Id, timeout: StdDuration) -> Result<Bytes, StoreError> {
        match self.blocking(timeout, move |me, node, cb| me.get_from(node, key, cb))? {
            Outcome::Get(r) => r,
            Outcome::Put(_) => Err(StoreError::Corrupt),
        }
    }

    /// Runs `f` on the store (for counters and inspection). Must not block.
    pub fn with_store<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.inner.state.lock().store)
    }
}

fn call_error(e: CallError) -> StoreError {
    StoreError::Route(match e {
        CallError::Stopped => RouteError::Stopped,
        _ => RouteError::NotActive,
    })
}

/// The store's timer thread: fires due timers on the loop thread until the node is gone.
fn ticker(inner: &Arc<Inner>, handle: &Handle) {
    const TICK: StdDuration = StdDuration::from_millis(20);
    loop {
        std::thread::sleep(TICK);
        let i = inner.clone();
        let r = handle.call(move |node| {
            let now = i.now();
            i.with(|s, _| {
                if s.poll_timeout().is_some_and(|t| t <= now) || s.has_transmit() {
                    s.handle_timeout(now, node);
                }
            });
        });
        if r.is_err() || Arc::strong_count(inner) <= 1 {
            return;
        }
    }
}
