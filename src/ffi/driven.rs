//! Caller-driven nodes: no thread, no socket. The host's own event loop feeds datagrams and
//! timeouts in and takes datagrams, events and deadlines out (`pastry_node_new_driven`,
//! `pastry_node_handle_datagram`, `pastry_node_handle_timeout`, `pastry_node_poll_transmit`,
//! `pastry_node_poll_timeout`, `pastry_node_poll_event`).
//!
//! The host's loop, for each caller-driven node (the sans-IO run-loop contract):
//!
//! 1. feed one input: a received datagram (`pastry_node_handle_datagram`), a passed deadline
//!    (`pastry_node_handle_timeout`), or an application call (`pastry_node_start`,
//!    `pastry_node_start_join`, `pastry_route`, `pastry_node_shutdown`);
//! 2. send every datagram `pastry_node_poll_transmit` gives, until it returns `PASTRY_NONE`;
//! 3. handle every event `pastry_node_poll_event` gives, until it returns `PASTRY_NONE`;
//! 4. ask `pastry_node_poll_timeout` for the next deadline and wake up then at the latest.
//!
//! Time is the host's: microseconds on any monotonic clock (a virtual one in tests), passed
//! as `now_us` to the two `handle` functions and to the `_at` variants of the application
//! calls (`pastry_node_start_at`, `pastry_node_start_join_at`, `pastry_route_at`,
//! `pastry_node_shutdown_at`). The node's clock starts at 0 and never goes back (an earlier
//! `now_us` counts as the latest one given); the calls without `_at` use the latest time given,
//! so a host whose clock is not near 0 uses the `_at` variants (or feeds
//! `pastry_node_handle_timeout(node, now)` first).

use core::net::SocketAddr;
use std::cell::RefCell;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};

use super::callbacks::{pastry_callbacks, Callbacks, DrivenForwarder};
use super::config::{config_ref, pastry_config};
use super::error::pastry_result::{self, *};
use super::id::{is_unspecified, pastry_addr, pastry_id, pastry_peer};
use super::inner::{into_ptr, node_ref, Mode, NodeInner};
use super::log::{log, pastry_log_level::*};
use super::node::pastry_node;
use crate::id::{Id, NodeHandle};
use crate::node::{Event, Node, Phase};
use crate::time::Instant;

/// The largest datagram `pastry_node_poll_transmit` can give: a buffer of this size always
/// suffices.
pub const PASTRY_MAX_DATAGRAM: usize = 65_536;

/// What a `pastry_event` reports.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pastry_event_kind {
    /// The node's join completed (or `pastry_node_start` made it active): it may deliver.
    PASTRY_EVENT_JOINED = 1,
    /// No bootstrap node answered after every join attempt; the node is idle again.
    PASTRY_EVENT_JOIN_FAILED = 2,
    /// A message arrived at this node, the root of `key`: `peer` is its source, the payload
    /// was copied into the caller's buffer.
    PASTRY_EVENT_DELIVERED = 3,
    /// `peer` entered this node's leaf set (the Common API `update`, joined).
    PASTRY_EVENT_NEIGHBOR_JOINED = 4,
    /// `peer` left this node's leaf set (failed, left, or pushed out by closer nodes).
    PASTRY_EVENT_NEIGHBOR_LEFT = 5,
    /// A message this node sent (`msg_id`, `key`) could not be delivered (`reason`: a
    /// `PASTRY_UNDELIVERABLE_*` code).
    PASTRY_EVENT_UNDELIVERABLE = 6,
}

/// One event of a caller-driven node, from `pastry_node_poll_event`. Fields a kind does not use
/// are zero.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pastry_event {
    /// What happened.
    pub kind: pastry_event_kind,
    /// `PASTRY_EVENT_UNDELIVERABLE`: why (a `PASTRY_UNDELIVERABLE_*` code).
    pub reason: u32,
    /// `PASTRY_EVENT_DELIVERED`, `PASTRY_EVENT_UNDELIVERABLE`: the message's key.
    pub key: pastry_id,
    /// `PASTRY_EVENT_DELIVERED`: the source; `PASTRY_EVENT_NEIGHBOR_*`: the neighbour.
    pub peer: pastry_peer,
    /// `PASTRY_EVENT_DELIVERED`, `PASTRY_EVENT_UNDELIVERABLE`: the message's id.
    pub msg_id: u64,
    /// `PASTRY_EVENT_DELIVERED`: the payload bytes written to the caller's buffer.
    pub payload_len: usize,
    /// `PASTRY_EVENT_DELIVERED`: overlay hops taken.
    pub hops: u32,
}

/// A route asked from inside the node's own `forward` upcall, run after the current input.
struct Deferred {
    msg_id: u64,
    key: Option<Id>,
    payload: Bytes,
    hint: Option<NodeHandle>,
}

/// The sans-IO node with the host's clock and the outputs held back for a too-small buffer.
pub(crate) struct Driven {
    pub(crate) node: Node,
    pub(crate) now: Instant,
    staged_tx: Option<SocketAddr>,
    tx_buf: Vec<u8>,
    staged_event: Option<Event>,
}

impl Driven {
    /// Drops every queued datagram unsent (an abort).
    pub(crate) fn discard_outputs(&mut self) {
        self.staged_tx = None;
        while self.node.poll_transmit(&mut self.tx_buf).is_some() {}
        self.tx_buf.clear();
    }
}

/// A caller-driven node: the node behind a mutex (any thread, one at a time) and the routes
/// its own `forward` upcall asked for.
pub(crate) struct DrivenState {
    pub(crate) me: NodeHandle,
    pub(crate) max_payload: usize,
    core: Mutex<Driven>,
    deferred: Mutex<Vec<Deferred>>,
}

thread_local! {
    /// The caller-driven nodes this thread has locked (innermost last).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A locked caller-driven node; unlocks (and forgets it in `HELD`) when dropped.
pub(crate) struct Locked<'a> {
    guard: MutexGuard<'a, Driven>,
    key: usize,
}

impl core::ops::Deref for Locked<'_> {
    type Target = Driven;
    fn deref(&self) -> &Driven {
        &self.guard
    }
}

impl core::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Driven {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|&k| k == self.key) {
                h.remove(i);
            }
        });
    }
}

/// Most rounds of deferred routes run after one input (routes asked by the upcalls of those
/// routes go to the next input beyond that).
const DEFERRED_ROUNDS: usize = 16;

impl DrivenState {
    fn key(&self) -> usize {
        self as *const DrivenState as usize
    }

    /// Whether this thread holds the node's lock: it is inside one of the node's upcalls.
    pub(crate) fn held_here(&self) -> bool {
        let k = self.key();
        HELD.with(|h| h.borrow().contains(&k))
    }

    /// Locks the node (waiting for another thread using it); `PASTRY_ERR_IN_CALLBACK` from
    /// inside the node's own upcall.
    pub(crate) fn lock(&self) -> Result<Locked<'_>, pastry_result> {
        if self.held_here() {
            return Err(PASTRY_ERR_IN_CALLBACK);
        }
        let guard = self.core.lock();
        let key = self.key();
        HELD.with(|h| h.borrow_mut().push(key));
        Ok(Locked { guard, key })
    }

    /// Runs one input at `now_us` (`None`: the node's current time), then the routes its
    /// upcalls deferred.
    pub(crate) fn input<R>(
        &self,
        now_us: Option<u64>,
        f: impl FnOnce(&mut Driven) -> R,
    ) -> Result<R, pastry_result> {
        let mut d = self.lock()?;
        if let Some(t) = now_us {
            d.now = d.now.max(Instant(t));
        }
        let r = f(&mut d);
        self.run_deferred(&mut d);
        Ok(r)
    }

    fn run_deferred(&self, d: &mut Driven) {
        for _ in 0..DEFERRED_ROUNDS {
            let batch = core::mem::take(&mut *self.deferred.lock());
            if batch.is_empty() {
                return;
            }
            for r in batch {
                if let Err(e) = d
                    .node
                    .route_with_id(d.now, r.msg_id, r.key, r.payload, r.hint)
                {
                    log(PASTRY_LOG_WARN, || {
                        format!("a route asked from a forward upcall was refused: {e}")
                    });
                }
            }
        }
    }

    /// `pastry_route` on this node.
    pub(crate) fn route(
        &self,
        now_us: Option<u64>,
        key: Option<Id>,
        payload: &[u8],
        hint: Option<NodeHandle>,
    ) -> Result<u64, pastry_result> {
        if payload.len() > self.max_payload {
            return Err(PASTRY_ERR_PAYLOAD_TOO_LARGE);
        }
        if key.is_none() && hint.is_none() {
            return Err(PASTRY_ERR_NO_DESTINATION);
        }
        let payload = Bytes::copy_from_slice(payload);
        let msg_id = crate::runtime::fresh_msg_id();
        if self.held_here() {
            // From inside the node's own upcall: the node is busy; route after the input.
            self.deferred.lock().push(Deferred {
                msg_id,
                key,
                payload,
                hint,
            });
            return Ok(msg_id);
        }
        self.input(now_us, |d| {
            if d.node.phase() == Phase::Stopped {
                return Err(PASTRY_ERR_STOPPED);
            }
            d.node
                .route_with_id(d.now, msg_id, key, payload, hint)
                .map_err(pastry_result::from)
        })??;
        Ok(msg_id)
    }
}

/// Creates a caller-driven node (idle) from `*config` and stores it in `*out`: no thread and
/// no socket; the configuration's bind address is the address the node advertises (where the
/// host's socket receives its datagrams; it must not be unspecified, as `0.0.0.0`, `::` or
/// `::ffff:0.0.0.0`, nor port 0). Only `forward`
/// and `drop` of `*callbacks` (NULL: none) are used. Start it with `pastry_node_start` or
/// `pastry_node_start_join`, then drive it (see `pastry_node_handle_datagram`). Release it
/// with `pastry_node_free`.
///
/// The callbacks belong to the library from this call on: on failure their `drop` has run
/// before it returns.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_ADDRESS` (unusable bind address),
/// `PASTRY_ERR_INVALID_CONFIG`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_new_driven(
    config: *const pastry_config,
    callbacks: *const pastry_callbacks,
    out: *mut *mut pastry_node,
) -> pastry_result {
    ffi_boundary!("pastry_node_new_driven", {
        let cb = Callbacks::take(callbacks);
        let out = try_out!(out);
        let cfg = config_ref(config).ok_or(PASTRY_ERR_NULL_ARGUMENT)?;
        if is_unspecified(&cfg.bind) {
            return Err(PASTRY_ERR_BAD_ADDRESS);
        }
        let mut node_cfg = cfg.node.clone();
        if node_cfg.seed == 0 {
            node_cfg.seed = crate::runtime::os_seed();
        }
        let max_payload = node_cfg.max_payload;
        let mut node = Node::new(node_cfg, cfg.bind)?;
        let me = node.handle();
        let inner = std::sync::Arc::new_cyclic(|weak| {
            node.set_forwarder(Some(Box::new(DrivenForwarder {
                cb,
                node: weak.as_ptr(),
                max_payload,
            })));
            NodeInner::new(
                max_payload,
                Mode::Driven(DrivenState {
                    me,
                    max_payload,
                    core: Mutex::new(Driven {
                        node,
                        now: Instant::ZERO,
                        staged_tx: None,
                        tx_buf: Vec::new(),
                        staged_event: None,
                    }),
                    deferred: Mutex::new(Vec::new()),
                }),
            )
        });
        log(PASTRY_LOG_INFO, || {
            format!("caller-driven node {me} created")
        });
        out.write(into_ptr(inner));
        Ok(())
    })
}

/// Feeds one datagram received from `*from` (`len` bytes at `bytes`) to a caller-driven node,
/// at time `now_us`. Bad or foreign datagrams are counted and dropped (still `PASTRY_OK`). Then
/// drain the node's outputs (see `pastry_node_poll_transmit`). The node's `forward` upcall may
/// run during this call, on this thread.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_ADDRESS`, `PASTRY_ERR_WRONG_MODE` (a runtime
/// node), `PASTRY_ERR_IN_CALLBACK` (from the node's own `forward`).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_handle_datagram(
    node: *mut pastry_node,
    from: *const pastry_addr,
    bytes: *const u8,
    len: usize,
    now_us: u64,
) -> pastry_result {
    ffi_boundary!("pastry_node_handle_datagram", {
        let from = try_ref!(from);
        let data = try_slice!(bytes, len);
        let inner = node_ref(node)?;
        let st = inner.driven()?;
        let from = from.socket_addr()?;
        st.input(Some(now_us), |d| d.node.handle_datagram(d.now, from, data))
    })
}

/// Tells a caller-driven node that time `now_us` has come (fires every timer due by then).
/// Call it when the deadline from `pastry_node_poll_timeout` has passed (calling it earlier or
/// more often is harmless), then drain the outputs.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_WRONG_MODE`, `PASTRY_ERR_IN_CALLBACK`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_handle_timeout(
    node: *mut pastry_node,
    now_us: u64,
) -> pastry_result {
    ffi_boundary!("pastry_node_handle_timeout", {
        let inner = node_ref(node)?;
        let st = inner.driven()?;
        st.input(Some(now_us), |d| d.node.handle_timeout(d.now))
    })
}

/// Takes the next datagram a caller-driven node wants sent: copies it into `buf` (`cap` bytes;
/// `PASTRY_MAX_DATAGRAM` always suffices; `buf` may be NULL only when `cap` is 0), its length
/// into `*len` and its destination into `*dst`. Returns `PASTRY_NONE` when nothing is left to
/// send.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT` (checked first, whether or not a datagram is queued), `PASTRY_ERR_WRONG_MODE`, `PASTRY_ERR_IN_CALLBACK`,
/// `PASTRY_ERR_BUFFER_TOO_SMALL` (the datagram stays queued).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_poll_transmit(
    node: *mut pastry_node,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
    dst: *mut pastry_addr,
) -> pastry_result {
    ffi_boundary!("pastry_node_poll_transmit", {
        // Every pointer is checked before the node is looked at, so a NULL is reported
        // whatever is queued (and whatever the node's mode).
        let (len, dst) = (try_out!(len), try_out!(dst));
        if buf.is_null() && cap > 0 {
            return Err(PASTRY_ERR_NULL_ARGUMENT);
        }
        let inner = node_ref(node)?;
        let st = inner.driven()?;
        let mut d = st.lock()?;
        if d.staged_tx.is_none() {
            let Driven {
                node,
                tx_buf,
                staged_tx,
                ..
            } = &mut *d;
            *staged_tx = node.poll_transmit(tx_buf);
        }
        let Some(to) = d.staged_tx else {
            return Err(PASTRY_NONE);
        };
        if d.tx_buf.len() > cap {
            return Err(PASTRY_ERR_BUFFER_TOO_SMALL);
        }
        let out = try_slice_mut!(buf, d.tx_buf.len());
        out.copy_from_slice(&d.tx_buf);
        len.write(d.tx_buf.len());
        dst.write(to.into());
        d.staged_tx = None;
        Ok(())
    })
}

/// Stores in `*deadline_us` when `pastry_node_handle_timeout` should be called next (on the
/// host's clock, possibly already past). Returns `PASTRY_NONE` when no timer is pending.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_WRONG_MODE`, `PASTRY_ERR_IN_CALLBACK`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_poll_timeout(
    node: *mut pastry_node,
    deadline_us: *mut u64,
) -> pastry_result {
    ffi_boundary!("pastry_node_poll_timeout", {
        let out = try_out!(deadline_us);
        let inner = node_ref(node)?;
        let st = inner.driven()?;
        let at = st.lock()?.node.poll_timeout().ok_or(PASTRY_NONE)?;
        out.write(at.as_micros());
        Ok(())
    })
}

/// Takes the next event of a caller-driven node into `*event`; a delivery's payload is copied
/// into `buf` (`cap` bytes; the node's payload limit always suffices; `buf` may be NULL only
/// when `cap` is 0). Returns `PASTRY_NONE` when no event is pending.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT` (checked first, whether or not an event is pending), `PASTRY_ERR_WRONG_MODE`, `PASTRY_ERR_IN_CALLBACK`,
/// `PASTRY_ERR_BUFFER_TOO_SMALL` (the event stays queued).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_poll_event(
    node: *mut pastry_node,
    event: *mut pastry_event,
    buf: *mut u8,
    cap: usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_poll_event", {
        // Every pointer is checked before the node is looked at, so a NULL is reported
        // whatever is queued (and whatever the node's mode).
        let out = try_out!(event);
        if buf.is_null() && cap > 0 {
            return Err(PASTRY_ERR_NULL_ARGUMENT);
        }
        let inner = node_ref(node)?;
        let st = inner.driven()?;
        let mut d = st.lock()?;
        let ev = match d.staged_event.take() {
            Some(e) => e,
            None => d.node.poll_event().ok_or(PASTRY_NONE)?,
        };
        if let Event::Delivered { payload, .. } = &ev {
            if payload.len() > cap {
                d.staged_event = Some(ev);
                return Err(PASTRY_ERR_BUFFER_TOO_SMALL);
            }
            try_slice_mut!(buf, payload.len()).copy_from_slice(payload);
        }
        log_event(st.me, &ev);
        out.write(to_c_event(&ev));
        Ok(())
    })
}

fn log_event(me: NodeHandle, ev: &Event) {
    match ev {
        Event::Joined => log(PASTRY_LOG_INFO, || format!("node {me} joined")),
        Event::JoinFailed => log(PASTRY_LOG_WARN, || format!("node {me}: join failed")),
        _ => {}
    }
}

fn to_c_event(ev: &Event) -> pastry_event {
    use pastry_event_kind::*;
    let mut e = pastry_event {
        kind: PASTRY_EVENT_JOINED,
        reason: 0,
        key: pastry_id::default(),
        peer: pastry_peer::default(),
        msg_id: 0,
        payload_len: 0,
        hops: 0,
    };
    match ev {
        Event::Joined => {}
        Event::JoinFailed => e.kind = PASTRY_EVENT_JOIN_FAILED,
        Event::Delivered {
            key,
            msg_id,
            source,
            hops,
            payload,
        } => {
            e.kind = PASTRY_EVENT_DELIVERED;
            e.key = (*key).into();
            e.msg_id = *msg_id;
            e.peer = (*source).into();
            e.hops = u32::from(*hops);
            e.payload_len = payload.len();
        }
        Event::NeighborJoined(h) => {
            e.kind = PASTRY_EVENT_NEIGHBOR_JOINED;
            e.peer = (*h).into();
        }
        Event::NeighborLeft(h) => {
            e.kind = PASTRY_EVENT_NEIGHBOR_LEFT;
            e.peer = (*h).into();
        }
        Event::Undeliverable {
            msg_id,
            key,
            reason,
        } => {
            e.kind = PASTRY_EVENT_UNDELIVERABLE;
            e.msg_id = *msg_id;
            e.key = (*key).into();
            e.reason = u32::from(*reason);
        }
    }
    e
}
