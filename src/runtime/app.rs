//! The application's side of a node: the Common API upcalls `deliver`, `forward` and `update`.

use bytes::Bytes;

use crate::id::{Id, NodeHandle};
use crate::node::{ForwardAction, ForwardCtx, Node};

/// A message that arrived at its root (or at the target of a direct send).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The key it was routed to.
    pub key: Id,
    /// Its end-to-end id.
    pub msg_id: u64,
    /// The node that sent it.
    pub source: NodeHandle,
    /// Overlay hops it took.
    pub hops: u8,
    /// The application's bytes.
    pub payload: Bytes,
}

/// The application sitting on a node: its upcalls, called on the runtime's event-loop thread.
///
/// Every method has a default that does nothing (forward lets the message go on), so an
/// application implements only what it needs; `()` is the application that ignores everything.
///
/// Rules:
/// - Upcalls must not block: the loop thread serves every node of its runtime.
/// - Queries go through the `node` argument (`node.replica_set(..)`, `node.local_lookup(..)`,
///   …). A [`Handle`](super::Handle)'s blocking calls refuse to run on the loop thread
///   ([`CallError::OnLoopThread`](super::CallError::OnLoopThread)).
/// - [`Handle::route`](super::Handle::route) may be called from any upcall: it queues the message
///   and returns, and the loop routes it after the upcall.
/// - A panic inside an upcall is caught: it is counted in
///   [`NodeStats::upcall_panics`](super::NodeStats) (the panic hook prints it as usual) and the
///   node keeps running. A panicking `forward` drops the message it was given.
///
/// ```
/// use pastry::runtime::{Application, Delivery};
/// use pastry::node::Node;
///
/// struct Printer;
/// impl Application for Printer {
///     fn deliver(&mut self, node: &Node, msg: Delivery) {
///         println!("{} got {} bytes for {}", node.id(), msg.payload.len(), msg.key);
///     }
/// }
/// ```
pub trait Application: Send + 'static {
    /// A message arrived at this node, the root of its key (the Common API `deliver`).
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let _ = (node, msg);
    }

    /// A message passes this node (its source and its root included) on its way to
    /// `ctx.next_hop` (`None`: this node delivers it). The application may change the key, the
    /// payload and the next hop, or return [`ForwardAction::Drop`] (the Common API `forward`).
    /// Called from inside the node: the node cannot be queried here.
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        let _ = ctx;
        ForwardAction::Forward
    }

    /// `peer` joined (`joined = true`) or left this node's leaf set (the Common API `update`).
    fn update(&mut self, node: &Node, peer: NodeHandle, joined: bool) {
        let _ = (node, peer, joined);
    }

    /// A message this node sent could not be delivered (`reason`: one of
    /// [`crate::wire::undeliverable_reason`]).
    fn undeliverable(&mut self, node: &Node, msg_id: u64, key: Id, reason: u8) {
        let _ = (node, msg_id, key, reason);
    }

    /// This node's join completed: it is active.
    fn joined(&mut self, node: &Node) {
        let _ = node;
    }
}

impl Application for () {}
