//! The application's upcalls: `pastry_callbacks` (`deliver`, `forward`, `update`,
//! `undeliverable`, `drop`), the structs they receive, and the trampolines that call them.
//!
//! Every call runs inside a `CallbackScope`: a thread-local record that lets the entry points
//! refuse what would deadlock or re-enter a node from inside its own callback, and lets the KBR
//! queries reach the node directly from `deliver` and `update`.

use core::ffi::c_void;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::error::pastry_result::{self, *};
use super::id::{pastry_id, pastry_peer};
use super::inner::NodeInner;
use super::log::{log, pastry_log_level::*};
use super::node::pastry_node;
use crate::id::{Id, NodeHandle};
use crate::node::{ForwardAction, ForwardCtx, Node};
use crate::runtime::{Application, Delivery};

/// `forward` returns this to let the message go on (to `msg->next_hop`, possibly changed, or
/// delivered here when `msg->has_next_hop` is false).
pub const PASTRY_FORWARD_CONTINUE: u32 = 0;
/// `forward` returns this to drop the message here, silently. Any value other than
/// `PASTRY_FORWARD_CONTINUE` drops the message too.
pub const PASTRY_FORWARD_DROP: u32 = 1;

/// A message that arrived at its root (this node), passed to `deliver`. Valid only during the
/// call: copy what you keep.
///
/// Delivery is at least once: when the root's acknowledgement is lost, the source sends the
/// message again, and a root that changed meanwhile (or lost its duplicate filter) delivers it
/// a second time with the same `msg_id`. Deduplicate by `msg_id` where it matters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pastry_delivery {
    /// The key it was routed to (for a direct send: the id given in the hint).
    pub key: pastry_id,
    /// The node that sent it: the message's original source (where a reply goes, e.g. with a
    /// direct send to it), not the last hop.
    pub source: pastry_peer,
    /// Its end-to-end id.
    pub msg_id: u64,
    /// The application's bytes (`payload_len` of them; NULL when empty).
    pub payload: *const u8,
    /// Number of payload bytes.
    pub payload_len: usize,
    /// Overlay hops it took.
    pub hops: u32,
}

/// A message passing this node, passed to `forward` (at its source, at every hop, and at its
/// root). The callback may change `key`, `has_next_hop` / `next_hop`, and the payload (with
/// `pastry_forward_set_payload`), then return `PASTRY_FORWARD_CONTINUE` or
/// `PASTRY_FORWARD_DROP`. Valid only during the call.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pastry_forward {
    /// The key it is routed to. May be changed: later hops route toward the new key.
    pub key: pastry_id,
    /// The node that sent it.
    pub source: pastry_peer,
    /// Where this node will send it, when `has_next_hop` is true. May be changed to send it
    /// elsewhere.
    pub next_hop: pastry_peer,
    /// Its end-to-end id.
    pub msg_id: u64,
    /// The application's bytes (`payload_len` of them; NULL when empty). Read-only: replace
    /// them with `pastry_forward_set_payload`.
    pub payload: *const u8,
    /// Number of payload bytes.
    pub payload_len: usize,
    /// Hops taken so far (0 at the source).
    pub hops: u32,
    /// False when this node is the key's root and will deliver the message. Set it to false to
    /// deliver here, or to true (with `next_hop`) to send the message on.
    pub has_next_hop: bool,
    /// Internal: the ticket by which `pastry_forward_set_payload` recognises a live message
    /// (never dereferenced). Do not change.
    pub _private: *mut c_void,
}

/// The application's upcalls for one node, passed to `pastry_node_new` (or
/// `pastry_node_new_driven`), which copies the struct. Every function pointer may be NULL
/// (that upcall is skipped; a NULL `forward` lets every message go on).
///
/// **Threads.** With a runtime, every upcall runs on the runtime's event-loop thread, one at a
/// time, and must not block: the loop serves every node of the runtime. For a caller-driven
/// node, only `forward` and `drop` are called (deliveries and leaf-set changes come out of
/// `pastry_node_poll_event`), on the thread that called into the node.
///
/// **What may be called from inside.** `pastry_route` (on any node; on the calling node too:
/// the message is queued and routed after the upcall), the KBR queries on the node passed in
/// (from `deliver`, `update` and `undeliverable` of a runtime node), the id, address and text
/// helpers, `pastry_node_shutdown` (the leave is queued, not waited for). Refused with
/// `PASTRY_ERR_IN_CALLBACK`, never a deadlock: `pastry_node_free`, `pastry_runtime_free`,
/// the blocking waits (`pastry_node_join`, `pastry_node_wait_joined`), queries and stats from
/// `forward`, and calls into a caller-driven node from its own `forward` (other than
/// `pastry_route`). `pastry_node_stats` works from `deliver`, `update` and `undeliverable` like
/// the queries.
///
/// **Pointers** passed to an upcall (`msg`, `peer`, `key`) are valid only during the call.
/// The `node` argument is the handle the upcall belongs to (the value `pastry_node_new`
/// returned; after `pastry_node_free` calls with it are refused).
///
/// **drop** runs exactly once, after the last upcall has returned: when the node has left
/// (`pastry_node_shutdown`, `pastry_node_free`) or its runtime is freed; at the latest when
/// `pastry_runtime_free` returns; for a caller-driven node, in `pastry_node_free`. If
/// `pastry_node_new` fails, `drop` has run before it returns.
///
/// Upcalls must not unwind (no C++ exception, no `longjmp`) out of the callback.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pastry_callbacks {
    /// Passed as the first argument of every callback.
    pub userdata: *mut c_void,
    /// A message arrived at this node, the root of its key (the Common API `deliver`); at
    /// least once (see `pastry_delivery`).
    pub deliver: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            node: *mut pastry_node,
            msg: *const pastry_delivery,
        ),
    >,
    /// A message passes this node on its way (the Common API `forward`). Returns
    /// `PASTRY_FORWARD_CONTINUE` or `PASTRY_FORWARD_DROP`.
    pub forward: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            node: *mut pastry_node,
            msg: *mut pastry_forward,
        ) -> u32,
    >,
    /// `peer` joined (`joined` true) or left this node's leaf set (the Common API `update`).
    pub update: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            node: *mut pastry_node,
            peer: *const pastry_peer,
            joined: bool,
        ),
    >,
    /// A message this node sent could not be delivered (`reason`: a
    /// `PASTRY_UNDELIVERABLE_*` code).
    pub undeliverable: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            node: *mut pastry_node,
            key: *const pastry_id,
            msg_id: u64,
            reason: u32,
        ),
    >,
    /// Releases `userdata`: called once, after the last upcall.
    pub drop: Option<unsafe extern "C" fn(userdata: *mut c_void)>,
}

impl Default for pastry_callbacks {
    fn default() -> Self {
        pastry_callbacks {
            userdata: core::ptr::null_mut(),
            deliver: None,
            forward: None,
            update: None,
            undeliverable: None,
            drop: None,
        }
    }
}

/// The routed message went over the hop limit (a routing loop or broken tables).
pub const PASTRY_UNDELIVERABLE_HOP_LIMIT: u32 = 1;
/// A node on the way ran out of buffer space for it.
pub const PASTRY_UNDELIVERABLE_OVERLOAD: u32 = 2;
/// The direct-send target (the hint) could not be reached.
pub const PASTRY_UNDELIVERABLE_UNREACHABLE: u32 = 3;
/// No delivery was acknowledged after every end-to-end attempt (a node holding the message may
/// have crashed; it may still have been delivered).
pub const PASTRY_UNDELIVERABLE_LOST: u32 = 4;
/// An application's `forward` upcall on the way dropped it (this node's own included), or its
/// payload exceeded the `max_payload` of a node it reached.
pub const PASTRY_UNDELIVERABLE_DROPPED: u32 = 5;

/// Replaces the payload of the message in a `forward` call with a copy of `len` bytes at
/// `data` (NULL is fine when `len` is 0). Only on the `msg` passed to `forward`, during that
/// call, on the thread running it; `msg->payload` and `msg->payload_len` then show the new
/// bytes. A `pastry_forward` kept (copied) after its call has returned is refused: the library
/// recognises live messages by a ticket in `_private`, looked up in its own table, and never
/// follows a pointer from the struct.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_ARGUMENT` (not a live `forward` message:
/// kept after its call, or from another thread), `PASTRY_ERR_PAYLOAD_TOO_LARGE` (over the
/// node's payload limit).
#[no_mangle]
pub unsafe extern "C" fn pastry_forward_set_payload(
    msg: *mut pastry_forward,
    data: *const u8,
    len: usize,
) -> pastry_result {
    ffi_boundary!("pastry_forward_set_payload", {
        let msg = try_mut!(msg);
        let bytes = try_slice!(data, len);
        let ticket = msg._private.addr();
        let new = with_live_forward(ticket, |extra| {
            if len > extra.max_payload {
                return Err(PASTRY_ERR_PAYLOAD_TOO_LARGE);
            }
            let new = extra.payload.insert(bytes.to_vec());
            Ok((payload_ptr(new), new.len()))
        })
        .ok_or(PASTRY_ERR_INVALID_ARGUMENT)??;
        (msg.payload, msg.payload_len) = new;
        Ok(())
    })
}

/// What a `forward` call may change besides the C struct.
struct ForwardExtra {
    max_payload: usize,
    payload: Option<Vec<u8>>,
}

thread_local! {
    /// The `forward` calls in progress on this thread (innermost last): their ticket and
    /// their extra state.
    static LIVE_FORWARDS: RefCell<Vec<(usize, ForwardExtra)>> = const { RefCell::new(Vec::new()) };
}

/// The next `forward` ticket: process-wide and never reused (a 64-bit counter), so a kept
/// struct never matches a later call.
static NEXT_TICKET: AtomicUsize = AtomicUsize::new(1);

/// Registers a `forward` call on this thread; unregistered (returning its extra state) by
/// [`end_forward`].
fn begin_forward(max_payload: usize) -> usize {
    let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
    LIVE_FORWARDS.with(|l| {
        l.borrow_mut().push((
            ticket,
            ForwardExtra {
                max_payload,
                payload: None,
            },
        ));
    });
    ticket
}

/// Ends the `forward` call of `ticket`: its new payload, if `pastry_forward_set_payload` set
/// one.
fn end_forward(ticket: usize) -> Option<Vec<u8>> {
    LIVE_FORWARDS.with(|l| {
        let mut l = l.borrow_mut();
        let i = l.iter().rposition(|(t, _)| *t == ticket)?;
        l.remove(i).1.payload
    })
}

/// Runs `f` on the extra state of the live `forward` call `ticket` of this thread.
fn with_live_forward<T>(ticket: usize, f: impl FnOnce(&mut ForwardExtra) -> T) -> Option<T> {
    LIVE_FORWARDS.with(|l| {
        let mut l = l.borrow_mut();
        l.iter_mut()
            .rev()
            .find(|(t, _)| *t == ticket)
            .map(|(_, e)| f(e))
    })
}

/// Unregisters a `forward` call when dropped (also when the callback panics).
struct ForwardTicket(usize);

impl Drop for ForwardTicket {
    fn drop(&mut self) {
        end_forward(self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// The callback scope.

/// The innermost callback running on this thread.
#[derive(Clone, Copy)]
struct Frame {
    /// The node whose upcall runs (NULL for a log or drop call).
    node: *const NodeInner,
    /// The sans-IO node, readable during `deliver` / `update` / `undeliverable` of a runtime
    /// node (NULL otherwise).
    kbr: *const Node,
}

const NO_FRAME: Frame = Frame {
    node: core::ptr::null(),
    kbr: core::ptr::null(),
};

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static FRAME: Cell<Frame> = const { Cell::new(NO_FRAME) };
}

/// Marks this thread as running an application callback until dropped (panic-safe).
pub(crate) struct CallbackScope {
    prev: Frame,
}

impl CallbackScope {
    fn enter(frame: Frame) -> CallbackScope {
        DEPTH.with(|d| d.set(d.get() + 1));
        CallbackScope {
            prev: FRAME.with(|f| f.replace(frame)),
        }
    }

    /// An upcall of `node`; `kbr` when the node may be queried directly during it.
    pub(crate) fn enter_node(node: *const NodeInner, kbr: Option<&Node>) -> CallbackScope {
        CallbackScope::enter(Frame {
            node,
            kbr: kbr.map_or(core::ptr::null(), |n| n as *const Node),
        })
    }

    /// A callback not tied to a node (log, drop).
    pub(crate) fn enter_other() -> CallbackScope {
        CallbackScope::enter(NO_FRAME)
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        FRAME.with(|f| f.set(self.prev));
    }
}

/// Whether this thread is inside an application callback.
pub(crate) fn in_callback() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// Runs `f` with the sans-IO node of `node` when this thread is inside one of that node's
/// `deliver` / `update` / `undeliverable` upcalls; `None` otherwise.
pub(crate) fn with_current_node<T>(
    node: *const NodeInner,
    f: impl FnOnce(&Node) -> T,
) -> Option<T> {
    let frame = FRAME.with(Cell::get);
    if frame.node != node || frame.kbr.is_null() {
        return None;
    }
    // SAFETY: `kbr` was set from a `&Node` by the upcall trampoline that is still on this
    // thread's stack (the scope restores the previous frame when the upcall returns), so the
    // node is alive and only shared references to it exist.
    Some(f(unsafe { &*frame.kbr }))
}

// ---------------------------------------------------------------------------------------------
// The trampolines.

/// The application's callbacks, owned by the library; `drop(userdata)` runs when this is
/// dropped, which happens after the last upcall (its owner is the node's application slot).
pub(crate) struct Callbacks(pastry_callbacks);

// SAFETY: the callbacks contract allows the upcalls and `drop` to run on the library's threads
// (the runtime's loop thread); `userdata` is only passed back to the application.
unsafe impl Send for Callbacks {}

impl Callbacks {
    /// Copies the struct at `p` (NULL: no upcalls).
    pub(crate) fn take(p: *const pastry_callbacks) -> Callbacks {
        // SAFETY: the header's contract: NULL or a readable `pastry_callbacks` for the call.
        Callbacks(unsafe { p.as_ref() }.copied().unwrap_or_default())
    }
}

impl Drop for Callbacks {
    fn drop(&mut self) {
        if let Some(d) = self.0.drop {
            let _scope = CallbackScope::enter_other();
            // SAFETY: `drop` is the application's finaliser for `userdata`, called once (this
            // struct is not `Clone`) after every upcall, since its owner is being dropped.
            let r = catch_unwind(AssertUnwindSafe(|| unsafe { d(self.0.userdata) }));
            if r.is_err() {
                log(PASTRY_LOG_ERROR, || "the callbacks' drop panicked".into());
            }
        }
    }
}

fn peer(h: NodeHandle) -> pastry_peer {
    h.into()
}

/// The application's handle of the node at `node` (the `node` argument of its upcalls).
fn node_handle(node: *const NodeInner) -> *mut pastry_node {
    // SAFETY: the trampolines pass a node that is alive for the upcall: an `FfiApp` holds an
    // `Arc` of it, and a caller-driven node's forwarder lives inside it.
    unsafe { node.as_ref() }.map_or(core::ptr::null_mut(), NodeInner::ptr)
}

fn payload_ptr(b: &[u8]) -> *const u8 {
    if b.is_empty() {
        core::ptr::null()
    } else {
        b.as_ptr()
    }
}

/// Calls the application's `forward` for the message in `ctx` and applies its changes.
pub(crate) fn forward_upcall(
    cb: &Callbacks,
    node: *const NodeInner,
    max_payload: usize,
    ctx: &mut ForwardCtx<'_>,
) -> ForwardAction {
    let Some(f) = cb.0.forward else {
        return ForwardAction::Forward;
    };
    let r = catch_unwind(AssertUnwindSafe(|| {
        let ticket = ForwardTicket(begin_forward(max_payload));
        let mut msg = pastry_forward {
            key: ctx.key.into(),
            source: peer(ctx.source),
            next_hop: ctx.next_hop.map(peer).unwrap_or_default(),
            msg_id: ctx.msg_id,
            payload: payload_ptr(ctx.payload),
            payload_len: ctx.payload.len(),
            hops: u32::from(ctx.hops),
            has_next_hop: ctx.next_hop.is_some(),
            _private: core::ptr::without_provenance_mut(ticket.0),
        };
        let action = {
            let _scope = CallbackScope::enter_node(node, None);
            // SAFETY: the application's `forward` with its `userdata`; `msg` and the payload
            // it points to live until the call returns. The node argument is an opaque handle.
            unsafe { f(cb.0.userdata, node_handle(node), &mut msg) }
        };
        let payload = end_forward(ticket.0);
        apply_forward(&msg, payload, ctx, action)
    }));
    r.unwrap_or_else(|_| {
        log(PASTRY_LOG_ERROR, || {
            "forward upcall panicked: message dropped".into()
        });
        ForwardAction::Drop
    })
}

/// Copies what `forward` changed back into the node's context.
fn apply_forward(
    msg: &pastry_forward,
    payload: Option<Vec<u8>>,
    ctx: &mut ForwardCtx<'_>,
    action: u32,
) -> ForwardAction {
    if action != PASTRY_FORWARD_CONTINUE {
        return ForwardAction::Drop;
    }
    ctx.key = msg.key.id();
    ctx.next_hop = if msg.has_next_hop {
        match msg.next_hop.handle() {
            Ok(h) => Some(h),
            Err(_) => {
                log(PASTRY_LOG_WARN, || {
                    "forward set a next hop with a bad address: message dropped".into()
                });
                return ForwardAction::Drop;
            }
        }
    } else {
        None
    };
    if let Some(p) = payload {
        *ctx.payload = Bytes::from(p);
    }
    ForwardAction::Forward
}

/// The application of a node run by a runtime: the C callbacks behind the `Application` trait.
pub(crate) struct FfiApp {
    /// Declared first: dropped (running `drop(userdata)`) while `node` is still alive.
    pub(crate) cb: Callbacks,
    /// Keeps the `pastry_node` handle passed to the upcalls alive while they can run.
    pub(crate) node: std::sync::Arc<NodeInner>,
    /// The node's payload limit (for `pastry_forward_set_payload`).
    pub(crate) max_payload: usize,
}

impl FfiApp {
    fn node_ptr(&self) -> *const NodeInner {
        std::sync::Arc::as_ptr(&self.node)
    }
}

impl Application for FfiApp {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let Some(f) = self.cb.0.deliver else {
            return;
        };
        let d = pastry_delivery {
            key: msg.key.into(),
            source: peer(msg.source),
            msg_id: msg.msg_id,
            payload: payload_ptr(&msg.payload),
            payload_len: msg.payload.len(),
            hops: u32::from(msg.hops),
        };
        let me = self.node_ptr();
        let _scope = CallbackScope::enter_node(me, Some(node));
        // SAFETY: the application's `deliver` with its `userdata`; `d` and the payload live
        // until the call returns, and the node handle is kept alive by `self.node`.
        unsafe { f(self.cb.0.userdata, self.node.ptr(), &d) }
    }

    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        forward_upcall(&self.cb, self.node_ptr(), self.max_payload, ctx)
    }

    fn update(&mut self, node: &Node, p: NodeHandle, joined: bool) {
        log(PASTRY_LOG_DEBUG, || {
            let what = if joined { "joined" } else { "left" };
            format!("node {}: {p} {what} its leaf set", node.id())
        });
        let Some(f) = self.cb.0.update else {
            return;
        };
        let p = peer(p);
        let me = self.node_ptr();
        let _scope = CallbackScope::enter_node(me, Some(node));
        // SAFETY: the application's `update` with its `userdata`; `p` lives until it returns.
        unsafe { f(self.cb.0.userdata, self.node.ptr(), &p, joined) }
    }

    fn undeliverable(&mut self, node: &Node, msg_id: u64, key: Id, reason: u8) {
        log(PASTRY_LOG_DEBUG, || {
            format!(
                "node {}: message {msg_id:016x} for {key} undeliverable (reason {reason})",
                node.id()
            )
        });
        let Some(f) = self.cb.0.undeliverable else {
            return;
        };
        let k = pastry_id::from(key);
        let me = self.node_ptr();
        let _scope = CallbackScope::enter_node(me, Some(node));
        // SAFETY: the application's `undeliverable` with its `userdata`; `k` lives until it
        // returns.
        unsafe {
            f(
                self.cb.0.userdata,
                self.node.ptr(),
                &k,
                msg_id,
                u32::from(reason),
            )
        }
    }

    fn joined(&mut self, node: &Node) {
        log(PASTRY_LOG_INFO, || {
            format!("node {}@{} joined", node.id(), node.handle().addr)
        });
    }
}

/// The forward upcall of a caller-driven node, installed as its `Forwarder`.
pub(crate) struct DrivenForwarder {
    /// Owned by the node: dropped (running `drop(userdata)`) when the node is freed.
    pub(crate) cb: Callbacks,
    /// The node's handle, for the `node` argument (valid during every call: a caller-driven
    /// node only calls `forward` from inside a call on that handle).
    pub(crate) node: *const NodeInner,
    /// The node's payload limit.
    pub(crate) max_payload: usize,
}

// SAFETY: `node` is only used as an opaque value passed back to the application (and compared
// with the callback frame); `cb` is `Send`.
unsafe impl Send for DrivenForwarder {}

impl crate::node::Forwarder for DrivenForwarder {
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        forward_upcall(&self.cb, self.node, self.max_payload, ctx)
    }
}
