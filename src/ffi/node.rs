//! A node's life cycle and the Common API `route`: `pastry_node_new`, `pastry_node_start`,
//! `pastry_node_join`, `pastry_node_shutdown`, `pastry_node_free`, `pastry_route`, and the
//! node's id, address and phase.

use core::ffi::c_char;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::callbacks::{in_callback, pastry_callbacks, Callbacks, FfiApp};
use super::config::{config_ref, pastry_config};
use super::error::pastry_result::{self, *};
use super::guard::{write_c_str, Out};
use super::id::{pastry_addr, pastry_id, pastry_peer};
use super::inner::{into_ptr, node_ref, take_ptr, Mode, NodeInner};
use super::log::{log, pastry_log_level::*};
use super::runtime::{pastry_runtime, runtime_ref};
use crate::id::{Id, NodeHandle};
use crate::node::Phase;
use crate::runtime::{CallError, Handle, JoinError};

/// One overlay node (opaque): run by a runtime (`pastry_node_new`) or driven by the caller
/// (`pastry_node_new_driven`). Released with `pastry_node_free`.
///
/// A `pastry_node *` is a handle, not an address: the library looks it up in its own table on
/// every call and never dereferences it.
///
/// A runtime node is thread-safe: any thread may call `pastry_route`, the queries and the
/// other functions at once. A caller-driven node may be used from any thread (calls from
/// several threads are serialised). `pastry_node_free` may race with calls on other threads:
/// calls in progress finish normally (the node is kept alive, reference-counted, until the last
/// returns), and every call made with the handle after `pastry_node_free` is refused with
/// `PASTRY_ERR_INVALID_ARGUMENT`, as is a second free.
#[derive(Debug)]
pub struct pastry_node {
    _private: [u8; 0],
}

/// Where a node is in its life cycle.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pastry_phase {
    /// Created, not started.
    PASTRY_PHASE_IDLE = 0,
    /// Joining through a bootstrap node; not yet allowed to deliver.
    PASTRY_PHASE_JOINING = 1,
    /// Part of the overlay: routes and delivers.
    PASTRY_PHASE_ACTIVE = 2,
    /// Left or shut down; inert.
    PASTRY_PHASE_STOPPED = 3,
}

impl From<Phase> for pastry_phase {
    fn from(p: Phase) -> pastry_phase {
        match p {
            Phase::Idle => pastry_phase::PASTRY_PHASE_IDLE,
            Phase::Joining => pastry_phase::PASTRY_PHASE_JOINING,
            Phase::Active => pastry_phase::PASTRY_PHASE_ACTIVE,
            Phase::Stopped => pastry_phase::PASTRY_PHASE_STOPPED,
        }
    }
}

/// How long `pastry_node_free` waits for a node that has not left to leave gracefully.
const FREE_LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Creates a node on `runtime` from `*config`: binds its UDP socket at once (a busy port is
/// reported here) and stores the node, idle, in `*out`. Start it with `pastry_node_start` (a
/// new overlay) or `pastry_node_join`. Release it with `pastry_node_free`.
///
/// `*callbacks` (NULL: no upcalls) is copied; see `pastry_callbacks` for the threads and
/// rules of the upcalls. The callbacks belong to the library from this call on: on failure
/// their `drop` has run before it returns.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG`, `PASTRY_ERR_ADDR_IN_USE`,
/// `PASTRY_ERR_BIND`, `PASTRY_ERR_IO`, `PASTRY_ERR_STOPPED` (the runtime has stopped).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_new(
    runtime: *mut pastry_runtime,
    config: *const pastry_config,
    callbacks: *const pastry_callbacks,
    out: *mut *mut pastry_node,
) -> pastry_result {
    ffi_boundary!("pastry_node_new", {
        let cb = Callbacks::take(callbacks);
        let out = try_out!(out);
        let rt = runtime_ref(runtime)?;
        let cfg = config_ref(config).ok_or(PASTRY_ERR_NULL_ARGUMENT)?.clone();
        let max_payload = cfg.node.max_payload;
        if crate::runtime::is_unspecified_ip(cfg.bind.ip()) {
            log(PASTRY_LOG_WARN, || {
                format!("cannot create a node bound to {}: peers cannot reach an unspecified address; bind a specific one", cfg.bind)
            });
            return Err(PASTRY_ERR_BAD_ADDRESS);
        }
        let inner = Arc::new(NodeInner::new(max_payload, Mode::Runtime(OnceLock::new())));
        let app = FfiApp {
            cb,
            node: inner.clone(),
            max_payload,
        };
        let handle = rt.add_node(cfg, app).map_err(|e| {
            log(PASTRY_LOG_WARN, || format!("cannot create a node: {e}"));
            pastry_result::from(e)
        })?;
        log(PASTRY_LOG_INFO, || {
            format!("node {} created", handle.node_handle())
        });
        if let Mode::Runtime(slot) = &inner.mode {
            // The cell is new: `set` cannot fail.
            let _ = slot.set(handle);
        }
        out.write(into_ptr(inner));
        Ok(())
    })
}

/// Starts a new overlay with this node as its only member. A runtime node is active once the
/// loop has run the command (at once for practical purposes; `pastry_node_wait_joined` waits
/// for it); a caller-driven node is active at once (its `PASTRY_EVENT_JOINED` is queued).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_ALREADY_STARTED`, `PASTRY_ERR_STOPPED`,
/// `PASTRY_ERR_IN_CALLBACK` (a caller-driven node from its own `forward`).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_start(node: *mut pastry_node) -> pastry_result {
    ffi_boundary!("pastry_node_start", { start(node, None) })
}

/// `pastry_node_start` and `pastry_node_start_at`.
fn start(node: *mut pastry_node, now_us: Option<u64>) -> Result<(), pastry_result> {
    let inner = node_ref(node)?;
    match &inner.mode {
        Mode::Runtime(_) if now_us.is_some() => Err(PASTRY_ERR_WRONG_MODE),
        Mode::Runtime(_) => Ok(inner.handle()?.start_alone()?),
        Mode::Driven(st) => st.input(now_us, |d| {
            match d.node.phase() {
                Phase::Idle => {}
                Phase::Stopped => return Err(PASTRY_ERR_STOPPED),
                _ => return Err(PASTRY_ERR_ALREADY_STARTED),
            }
            d.node.start_alone(d.now);
            Ok(())
        })?,
    }
}

/// The bootstrap list as Rust addresses.
fn bootstrap_list(p: *const pastry_addr, count: usize) -> Result<Vec<SocketAddr>, pastry_result> {
    let list = try_slice!(p, count);
    list.iter().map(pastry_addr::socket_addr).collect()
}

/// Starts joining the overlay through the `count` bootstrap nodes at `bootstraps` (tried
/// round robin, with backoff) and returns at once. A runtime node's progress shows in
/// `pastry_node_phase` / `pastry_node_wait_joined`; a caller-driven node reports
/// `PASTRY_EVENT_JOINED` or `PASTRY_EVENT_JOIN_FAILED` (drive it meanwhile).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_ADDRESS`, `PASTRY_ERR_NO_BOOTSTRAP` (count
/// 0), `PASTRY_ERR_ALREADY_STARTED`, `PASTRY_ERR_STOPPED`, `PASTRY_ERR_IN_CALLBACK` (a
/// caller-driven node from its own `forward`).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_start_join(
    node: *mut pastry_node,
    bootstraps: *const pastry_addr,
    count: usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_start_join", {
        start_join(node, bootstraps, count, None)
    })
}

/// `pastry_node_start_join` and `pastry_node_start_join_at`.
fn start_join(
    node: *mut pastry_node,
    bootstraps: *const pastry_addr,
    count: usize,
    now_us: Option<u64>,
) -> Result<(), pastry_result> {
    let inner = node_ref(node)?;
    let list = bootstrap_list(bootstraps, count)?;
    match &inner.mode {
        Mode::Runtime(_) if now_us.is_some() => Err(PASTRY_ERR_WRONG_MODE),
        Mode::Runtime(_) => Ok(inner.handle()?.start_join(&list)?),
        Mode::Driven(st) => st.input(now_us, |d| {
            if d.node.phase() == Phase::Stopped {
                return Err(PASTRY_ERR_STOPPED);
            }
            Ok(d.node.join(d.now, &list)?)
        })?,
    }
}

/// Waits up to `timeout_ms` milliseconds for a runtime node's join (or start) to complete.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_TIMEOUT` (still joining),
/// `PASTRY_ERR_JOIN_FAILED` (no bootstrap answered; the node is idle again),
/// `PASTRY_ERR_NOT_STARTED` (never started), `PASTRY_ERR_STOPPED`,
/// `PASTRY_ERR_IN_CALLBACK`, `PASTRY_ERR_WRONG_MODE` (a caller-driven node: watch its events).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_wait_joined(
    node: *mut pastry_node,
    timeout_ms: u32,
) -> pastry_result {
    ffi_boundary!("pastry_node_wait_joined", {
        let inner = node_ref(node)?;
        let h = inner.handle()?;
        if in_callback() {
            return Err(PASTRY_ERR_IN_CALLBACK);
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let r = h.wait_joined(timeout);
        settle_phase(h, &r, timeout);
        Ok(r?)
    })
}

/// Joins a runtime node to the overlay through the `count` bootstrap nodes at `bootstraps`
/// and waits up to `timeout_ms` milliseconds for the join to complete
/// (`pastry_node_start_join` + `pastry_node_wait_joined`).
///
/// # Errors
/// As `pastry_node_start_join` and `pastry_node_wait_joined`; `PASTRY_ERR_WRONG_MODE` for a
/// caller-driven node; `PASTRY_ERR_IN_CALLBACK` from inside a callback (nothing started).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_join(
    node: *mut pastry_node,
    bootstraps: *const pastry_addr,
    count: usize,
    timeout_ms: u32,
) -> pastry_result {
    ffi_boundary!("pastry_node_join", {
        let inner = node_ref(node)?;
        let h = inner.handle()?;
        let list = bootstrap_list(bootstraps, count)?;
        if in_callback() {
            return Err(PASTRY_ERR_IN_CALLBACK);
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let r = h.join(&list, timeout);
        settle_phase(h, &r, timeout);
        Ok(r?)
    })
}

/// After a join ended (completed or given up): waits (up to `timeout`) until the loop has also
/// published the node's phase, so that a call right after the wait sees the node active (or
/// idle again). The runtime wakes join waiters just before it publishes the phase.
// A blocking wait on the application's thread needs the OS clock, as in the runtime.
#[allow(clippy::disallowed_methods)]
fn settle_phase(h: &Handle, r: &Result<(), JoinError>, timeout: Duration) {
    let settled = |p: Phase| match r {
        Ok(()) => p != Phase::Idle && p != Phase::Joining,
        Err(JoinError::NoBootstrapAnswered { .. }) => p != Phase::Joining,
        Err(_) => true,
    };
    let deadline = std::time::Instant::now() + timeout;
    while !settled(h.phase()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Stores the node's life-cycle phase in `*out`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_IN_CALLBACK` (a caller-driven node from its own
/// `forward`).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_phase(
    node: *const pastry_node,
    out: *mut pastry_phase,
) -> pastry_result {
    ffi_boundary!("pastry_node_phase", {
        let inner = node_ref(node)?;
        let out = try_out!(out);
        let phase = match &inner.mode {
            Mode::Runtime(_) => inner.handle()?.phase(),
            Mode::Driven(st) => st.lock()?.node.phase(),
        };
        out.write(phase.into());
        Ok(())
    })
}

/// Leaves the overlay gracefully: the node tells its leaf set it is leaving and stops.
///
/// A runtime node's queued datagrams are flushed and it is removed from its runtime (socket
/// closed, `drop(userdata)` run); this waits up to `timeout_ms` milliseconds for that. From
/// inside a callback it does not wait: the leave is queued and `PASTRY_OK` returned.
///
/// A caller-driven node queues its goodbye datagrams: send them (`pastry_node_poll_transmit`)
/// before freeing it.
///
/// The handle stays valid (calls fail with `PASTRY_ERR_STOPPED`) until `pastry_node_free`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_STOPPED` (the node has left or was aborted
/// already: a second shutdown), `PASTRY_ERR_TIMEOUT` (the leave goes on in the background),
/// `PASTRY_ERR_IN_CALLBACK` (a caller-driven node from its own `forward`),
/// `PASTRY_ERR_INVALID_ARGUMENT` (a freed handle).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_shutdown(
    node: *mut pastry_node,
    timeout_ms: u32,
) -> pastry_result {
    ffi_boundary!("pastry_node_shutdown", {
        let inner = node_ref(node)?;
        match &inner.mode {
            Mode::Runtime(_) => {
                let h = inner.handle()?;
                if in_callback() {
                    return match h.leave(Duration::ZERO) {
                        Ok(()) | Err(CallError::Timeout) => Ok(()),
                        Err(e) => Err(e.into()),
                    };
                }
                h.leave(Duration::from_millis(u64::from(timeout_ms)))?;
                log(PASTRY_LOG_INFO, || format!("node {} left", h.node_handle()));
                Ok(())
            }
            Mode::Driven(_) => shutdown_driven(&inner, None),
        }
    })
}

/// Leaves a caller-driven node at `now_us` (`None`: its latest time).
fn shutdown_driven(inner: &NodeInner, now_us: Option<u64>) -> Result<(), pastry_result> {
    inner.driven()?.input(now_us, |d| {
        if d.node.phase() == Phase::Stopped {
            return Err(PASTRY_ERR_STOPPED);
        }
        d.node.leave(d.now);
        Ok(())
    })?
}

/// Releases a node. A runtime node that has not left leaves gracefully first (waiting up to 2
/// s; then it is abandoned to its runtime, which removes it when it stops); its
/// `drop(userdata)` has run when this returns, unless that wait timed out (then it runs on the
/// loop thread later, at the latest in `pastry_runtime_free`). A caller-driven node is dropped
/// at once (send its goodbye first with `pastry_node_shutdown`), and its `drop(userdata)`
/// runs here. NULL is fine (`PASTRY_OK`, nothing happens).
///
/// # Errors
/// `PASTRY_ERR_IN_CALLBACK` from inside any callback: nothing is freed (free it after the
/// callback returns; `pastry_node_shutdown` may be called from the callback).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_free(node: *mut pastry_node) -> pastry_result {
    ffi_boundary!("pastry_node_free", {
        if node.is_null() {
            return Ok(());
        }
        if in_callback() {
            return Err(PASTRY_ERR_IN_CALLBACK);
        }
        // Out of the table: later calls with this handle are refused. Calls in progress on
        // other threads hold their own reference; the node is dropped after the last.
        let inner = take_ptr(node)?;
        if let Mode::Runtime(slot) = &inner.mode {
            if let Some(h) = slot.get() {
                match h.leave(FREE_LEAVE_TIMEOUT) {
                    Ok(()) | Err(CallError::Stopped) => {}
                    Err(e) => log(PASTRY_LOG_WARN, || {
                        format!("node {}: leave on free failed: {e}", h.node_handle())
                    }),
                }
            }
        }
        drop(inner);
        Ok(())
    })
}

/// Routes `len` bytes at `msg` (NULL is fine when `len` is 0) toward the root of `*key` (the
/// Common API `route`). The bytes are copied; the call returns once the message is queued (a
/// runtime node) or handed to the node (a caller-driven node). `hint` (NULL: none) is a first
/// hop to try.
///
/// With a hint and a NULL key the message is a **direct send**: it goes to the hint's address
/// and is delivered by the node that receives it there, whatever its id (the hint's id is not
/// checked; it becomes the delivery's key). Like a routed message it is acknowledged hop by
/// hop and end to end, retried, and reported to `undeliverable` when it cannot be delivered
/// (`PASTRY_UNDELIVERABLE_UNREACHABLE`, `PASTRY_UNDELIVERABLE_LOST`).
///
/// Delivery is at least once (see `pastry_delivery`). A runtime node has a budget of messages
/// in flight (`pastry_config_set_max_in_flight`, default `PASTRY_DEFAULT_MAX_IN_FLIGHT`): past
/// it the route is refused with `PASTRY_ERR_OVERLOADED` at once; route again after deliveries
/// or `undeliverable` reports have freed some.
///
/// Callable from any thread and from inside any upcall (also of this node: the message is
/// then routed after the upcall returns). The root's application sees the message in
/// `deliver` (or as a `PASTRY_EVENT_DELIVERED`); a failure is reported to this node's
/// `undeliverable` upcall (or `PASTRY_EVENT_UNDELIVERABLE`).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_NO_DESTINATION` (no key and no hint),
/// `PASTRY_ERR_PAYLOAD_TOO_LARGE`, `PASTRY_ERR_BAD_ADDRESS` (hint),
/// `PASTRY_ERR_NOT_ACTIVE` (not joined yet), `PASTRY_ERR_OVERLOADED` (the in-flight budget is
/// spent), `PASTRY_ERR_STOPPED` (shut down, aborted, or the runtime stopped),
/// `PASTRY_ERR_INVALID_ARGUMENT` (a freed handle).
#[no_mangle]
pub unsafe extern "C" fn pastry_route(
    node: *mut pastry_node,
    key: *const pastry_id,
    msg: *const u8,
    len: usize,
    hint: *const pastry_peer,
) -> pastry_result {
    ffi_boundary!("pastry_route", {
        let inner = node_ref(node)?;
        // SAFETY: the header's contract: `key` and `hint` are NULL or readable for the call.
        let (key, hint) = unsafe { (key.as_ref(), hint.as_ref()) };
        let key = key.map(pastry_id::id);
        let hint = hint.map(pastry_peer::handle).transpose()?;
        let payload = try_slice!(msg, len);
        route(&inner, None, key, payload, hint).map(drop)
    })
}

/// `pastry_route`, and on success the message's id in `*out_msg_id`: the id the root's
/// `deliver` upcall (or `PASTRY_EVENT_DELIVERED`) and this node's `undeliverable` upcall (or
/// `PASTRY_EVENT_UNDELIVERABLE`) carry, so a report can be matched to the message sent.
///
/// # Errors
/// As `pastry_route`; `PASTRY_ERR_NULL_ARGUMENT` also for a NULL `out_msg_id`.
#[no_mangle]
pub unsafe extern "C" fn pastry_route_with_id(
    node: *mut pastry_node,
    key: *const pastry_id,
    msg: *const u8,
    len: usize,
    hint: *const pastry_peer,
    out_msg_id: *mut u64,
) -> pastry_result {
    ffi_boundary!("pastry_route_with_id", {
        let inner = node_ref(node)?;
        let out = try_out!(out_msg_id);
        // SAFETY: the header's contract: `key` and `hint` are NULL or readable for the call.
        let (key, hint) = unsafe { (key.as_ref(), hint.as_ref()) };
        let key = key.map(pastry_id::id);
        let hint = hint.map(pastry_peer::handle).transpose()?;
        let payload = try_slice!(msg, len);
        out.write(route(&inner, None, key, payload, hint)?);
        Ok(())
    })
}

/// The common part of the two route entry points: checks, then queues or runs the route.
fn route(
    inner: &NodeInner,
    now_us: Option<u64>,
    key: Option<Id>,
    payload: &[u8],
    hint: Option<NodeHandle>,
) -> Result<u64, pastry_result> {
    if key.is_none() && hint.is_none() {
        return Err(PASTRY_ERR_NO_DESTINATION);
    }
    if payload.len() > inner.max_payload {
        return Err(PASTRY_ERR_PAYLOAD_TOO_LARGE);
    }
    match &inner.mode {
        Mode::Runtime(_) if now_us.is_some() => Err(PASTRY_ERR_WRONG_MODE),
        Mode::Runtime(_) => {
            let bytes = Bytes::copy_from_slice(payload);
            Ok(inner.handle()?.route_with_hint(key, bytes, hint)?)
        }
        Mode::Driven(st) => st.route(now_us, key, payload, hint),
    }
}

/// Stores the node's id in `*out`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_id(
    node: *const pastry_node,
    out: *mut pastry_id,
) -> pastry_result {
    ffi_boundary!("pastry_node_id", {
        let me = node_ref(node)?.me()?;
        try_out!(out).write(me.id.into());
        Ok(())
    })
}

/// Stores the node's address in `*out`: the address its socket is bound to (the actual port
/// when 0 was asked), or a caller-driven node's advertised address.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_addr(
    node: *const pastry_node,
    out: *mut pastry_addr,
) -> pastry_result {
    ffi_boundary!("pastry_node_addr", {
        let me = node_ref(node)?.me()?;
        try_out!(out).write(me.addr.into());
        Ok(())
    })
}

/// Writes the node's address as text (`"127.0.0.1:4000"`) and a NUL into `buf` (`cap` bytes;
/// `PASTRY_ADDR_STR_BUF` always suffices).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BUFFER_TOO_SMALL` (nothing written).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_addr_str(
    node: *const pastry_node,
    buf: *mut c_char,
    cap: usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_addr_str", {
        let me = node_ref(node)?.me()?;
        if buf.is_null() {
            return Err(PASTRY_ERR_NULL_ARGUMENT);
        }
        write_c_str(&me.addr.to_string(), try_slice_mut!(buf, cap))
    })
}

/// `pastry_node_start` for a caller-driven node at time `now_us` (the host's clock, as given
/// to `pastry_node_handle_timeout`): its first timers are due from then on.
///
/// # Errors
/// As `pastry_node_start`; `PASTRY_ERR_WRONG_MODE` for a runtime node (its clock is the
/// runtime's).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_start_at(
    node: *mut pastry_node,
    now_us: u64,
) -> pastry_result {
    ffi_boundary!("pastry_node_start_at", { start(node, Some(now_us)) })
}

/// `pastry_node_start_join` for a caller-driven node at time `now_us` (the host's clock): the
/// first join timeout is counted from then.
///
/// # Errors
/// As `pastry_node_start_join`; `PASTRY_ERR_WRONG_MODE` for a runtime node.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_start_join_at(
    node: *mut pastry_node,
    bootstraps: *const pastry_addr,
    count: usize,
    now_us: u64,
) -> pastry_result {
    ffi_boundary!("pastry_node_start_join_at", {
        start_join(node, bootstraps, count, Some(now_us))
    })
}

/// `pastry_route_with_id` for a caller-driven node at time `now_us` (the host's clock): the
/// message's retransmission and end-to-end timers are counted from then. `out_msg_id` may be
/// NULL (the id is then not reported).
///
/// # Errors
/// As `pastry_route`; `PASTRY_ERR_WRONG_MODE` for a runtime node.
#[no_mangle]
pub unsafe extern "C" fn pastry_route_at(
    node: *mut pastry_node,
    key: *const pastry_id,
    msg: *const u8,
    len: usize,
    hint: *const pastry_peer,
    now_us: u64,
    out_msg_id: *mut u64,
) -> pastry_result {
    ffi_boundary!("pastry_route_at", {
        let inner = node_ref(node)?;
        let out = Out::new(out_msg_id);
        // SAFETY: the header's contract: `key` and `hint` are NULL or readable for the call.
        let (key, hint) = unsafe { (key.as_ref(), hint.as_ref()) };
        let key = key.map(pastry_id::id);
        let hint = hint.map(pastry_peer::handle).transpose()?;
        let payload = try_slice!(msg, len);
        let id = route(&inner, Some(now_us), key, payload, hint)?;
        if let Some(out) = out {
            out.write(id);
        }
        Ok(())
    })
}

/// `pastry_node_shutdown` for a caller-driven node at time `now_us` (the host's clock).
///
/// # Errors
/// As `pastry_node_shutdown`; `PASTRY_ERR_WRONG_MODE` for a runtime node.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_shutdown_at(
    node: *mut pastry_node,
    now_us: u64,
) -> pastry_result {
    ffi_boundary!("pastry_node_shutdown_at", {
        let inner = node_ref(node)?;
        shutdown_driven(&inner, Some(now_us))
    })
}

/// Stops a node abruptly, without a graceful leave, as if its host had crashed: no goodbye is
/// sent (its leaf set notices through failure detection and repairs around it), and queued
/// datagrams and messages in flight are dropped. For applications that must stop at once, and
/// for tests of failure handling.
///
/// A runtime node's socket is closed and it is removed from its runtime (`drop(userdata)` has
/// run) before this returns, waiting up to `timeout_ms` milliseconds; from inside a callback it
/// does not wait (the abort is done after the callback returns, and `PASTRY_OK` returned). A
/// caller-driven node stops at once and queues nothing (`timeout_ms` is not used).
///
/// The handle stays valid (calls fail with `PASTRY_ERR_STOPPED`) until `pastry_node_free`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_ARGUMENT` (a freed handle),
/// `PASTRY_ERR_STOPPED` (already stopped), `PASTRY_ERR_TIMEOUT` (the runtime has not done it
/// yet; it will), `PASTRY_ERR_IN_CALLBACK` (a caller-driven node from its own `forward`).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_abort(
    node: *mut pastry_node,
    timeout_ms: u32,
) -> pastry_result {
    ffi_boundary!("pastry_node_abort", {
        let inner = node_ref(node)?;
        match &inner.mode {
            Mode::Runtime(_) => {
                let h = inner.handle()?;
                if h.phase() == Phase::Stopped {
                    return Err(PASTRY_ERR_STOPPED);
                }
                let timeout = if in_callback() {
                    Duration::ZERO
                } else {
                    Duration::from_millis(u64::from(timeout_ms))
                };
                match h.abort(timeout) {
                    Err(CallError::Timeout) if in_callback() => {}
                    r => r?,
                }
                log(PASTRY_LOG_INFO, || {
                    format!("node {} aborted", h.node_handle())
                });
                Ok(())
            }
            Mode::Driven(st) => st.input(None, |d| {
                if d.node.phase() == Phase::Stopped {
                    return Err(PASTRY_ERR_STOPPED);
                }
                // The node's leave is the only way to stop it; what it queues (the goodbye)
                // is thrown away unsent, with everything else queued.
                d.node.leave(d.now);
                d.discard_outputs();
                Ok(())
            })?,
        }
    })
}
