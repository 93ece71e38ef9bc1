//! What a `pastry_node *` points to: an `Arc<NodeInner>` turned into a raw pointer, holding
//! either a runtime [`Handle`] or a caller-driven node.

use std::sync::{Arc, OnceLock};

use super::driven::DrivenState;
use super::error::pastry_result::{self, *};
use super::node::pastry_node;
use crate::id::NodeHandle;
use crate::runtime::Handle;

/// The state behind one `pastry_node *`.
pub(crate) struct NodeInner {
    /// The largest payload `pastry_route` accepts.
    pub(crate) max_payload: usize,
    pub(crate) mode: Mode,
}

/// How the node runs.
// One per node, already behind an `Arc`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Mode {
    /// On a runtime's event-loop thread. The handle is set right after the node is added (no
    /// upcall can run before: the node is idle until started through this handle).
    Runtime(OnceLock<Handle>),
    /// Driven by the application's own loop.
    Driven(DrivenState),
}

impl NodeInner {
    /// The runtime handle, or `PASTRY_ERR_WRONG_MODE` for a caller-driven node.
    pub(crate) fn handle(&self) -> Result<&Handle, pastry_result> {
        match &self.mode {
            Mode::Runtime(h) => h.get().ok_or(PASTRY_ERR_STOPPED),
            Mode::Driven(_) => Err(PASTRY_ERR_WRONG_MODE),
        }
    }

    /// The caller-driven state, or `PASTRY_ERR_WRONG_MODE` for a runtime node.
    pub(crate) fn driven(&self) -> Result<&DrivenState, pastry_result> {
        match &self.mode {
            Mode::Driven(d) => Ok(d),
            Mode::Runtime(_) => Err(PASTRY_ERR_WRONG_MODE),
        }
    }

    /// The node as others address it.
    pub(crate) fn me(&self) -> Result<NodeHandle, pastry_result> {
        match &self.mode {
            Mode::Runtime(_) => self.handle().map(Handle::node_handle),
            Mode::Driven(d) => Ok(d.me),
        }
    }
}

/// Hands a new node to the application.
pub(crate) fn into_ptr(inner: Arc<NodeInner>) -> *mut pastry_node {
    Arc::into_raw(inner).cast_mut().cast()
}

/// Borrows the node behind `p` for the call, or `PASTRY_ERR_NULL_ARGUMENT`.
pub(crate) fn node_ref<'a>(p: *const pastry_node) -> Result<&'a NodeInner, pastry_result> {
    // SAFETY: a non-NULL `pastry_node *` is the pointer `into_ptr` returned (or passed to an
    // upcall) and, by the header's contract, not freed before this call returns; the
    // application's reference or the runtime's keeps the `Arc` alive.
    unsafe { p.cast::<NodeInner>().as_ref() }.ok_or(PASTRY_ERR_NULL_ARGUMENT)
}

/// Takes back the application's reference to the node behind `p` (not NULL).
///
/// # Safety
/// `p` came from [`into_ptr`] and is released once (the caller's contract for `_free`).
pub(crate) unsafe fn take_ptr(p: *mut pastry_node) -> Arc<NodeInner> {
    // SAFETY: see the function's contract.
    unsafe { Arc::from_raw(p.cast_const().cast::<NodeInner>()) }
}
