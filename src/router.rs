//! The next-hop rule (Pastry paper §2.2) and the KBR queries that read the same tables.
//!
//! [`next_hop`] is a pure function of the leaf set, the routing table and the key:
//! 1. key within the leaf-set range → the numerically closest of the leaves and the owner
//!    (the owner means: deliver here);
//! 2. else the routing-table cell that shares one more digit with the key;
//! 3. else (rare) any known node that shares at least as long a prefix with the key and is
//!    numerically closer to it than the owner; failing that, deliver here.
//!
//! Every forward makes progress: rule 2 lengthens the shared prefix, rule 3 keeps it and gets
//! numerically closer, rule 1 gets numerically closer.

use crate::id::{Id, NodeHandle};
use crate::leafset::LeafSet;
use crate::routing_table::RoutingTable;

/// Where a message for a key goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// This node is the root of the key: deliver here.
    Deliver,
    /// Forward to this node.
    Forward(NodeHandle),
}

/// The next hop toward `key` from the owner of `leaf` and `rt`, considering only nodes for which
/// `usable` holds (the node excludes ones it suspects of having failed).
#[inline]
pub fn next_hop(
    key: Id,
    leaf: &LeafSet,
    rt: &RoutingTable,
    usable: impl Fn(&NodeHandle) -> bool + Copy,
) -> NextHop {
    let own = leaf.own();
    if leaf.covers(key) {
        return match leaf.closest(key, usable) {
            Some(h) => NextHop::Forward(h),
            None => NextHop::Deliver,
        };
    }
    let b = rt.digit_bits();
    let l = own.shared_prefix_len(key, b);
    if l >= rt.rows() {
        return NextHop::Deliver;
    }
    if let Some(e) = rt.get(l, key.digit(l, b)) {
        if usable(&e.node) {
            return NextHop::Forward(e.node);
        }
    }
    match rare_case(key, l, leaf, rt, usable) {
        Some(h) => NextHop::Forward(h),
        None => NextHop::Deliver,
    }
}

/// Rule 3: the numerically closest known node that shares at least `l` digits with `key` and is
/// closer to it than the owner.
fn rare_case(
    key: Id,
    l: usize,
    leaf: &LeafSet,
    rt: &RoutingTable,
    usable: impl Fn(&NodeHandle) -> bool,
) -> Option<NodeHandle> {
    let b = rt.digit_bits();
    let mut best: Option<NodeHandle> = None;
    let mut best_id = leaf.own();
    // A node sharing >= l digits with the key shares >= l digits with the owner too, so it can
    // only sit in rows l.. of the table.
    let candidates = leaf.members().chain(rt.entries_from(l).map(|e| &e.node));
    for h in candidates {
        if key.closer_to(h.id, best_id) && h.id.shared_prefix_len(key, b) >= l && usable(h) {
            best = Some(*h);
            best_id = h.id;
        }
    }
    best
}

/// Up to `n` next-hop candidates toward `key`, best first: the rule's choice, then every other
/// known node that would also make progress (longer shared prefix, or as long and numerically
/// closer), by decreasing prefix and then closeness. Empty when this node is the root and knows
/// nobody closer. Writes into `out` (cleared first).
pub fn local_lookup(
    key: Id,
    n: usize,
    leaf: &LeafSet,
    rt: &RoutingTable,
    out: &mut Vec<NodeHandle>,
) {
    out.clear();
    if n == 0 {
        return;
    }
    let own = leaf.own();
    let b = rt.digit_bits();
    let first = match next_hop(key, leaf, rt, |_| true) {
        NextHop::Forward(h) => h,
        NextHop::Deliver => return,
    };
    out.push(first);
    let l = own.shared_prefix_len(key, b);
    let progress = |h: &NodeHandle| {
        let p = h.id.shared_prefix_len(key, b);
        p > l || (p == l && key.closer_to(h.id, own))
    };
    let mut rest: Vec<NodeHandle> = leaf
        .members()
        .chain(rt.entries().map(|e| &e.node))
        .filter(|h| h.id != first.id && progress(h))
        .copied()
        .collect();
    rest.sort_by(|a, c| {
        let (pa, pc) = (
            a.id.shared_prefix_len(key, b),
            c.id.shared_prefix_len(key, b),
        );
        pc.cmp(&pa).then_with(|| key.cmp_closeness(a.id, c.id))
    });
    rest.dedup_by_key(|h| h.id);
    out.extend(rest.into_iter().take(n - 1));
}
