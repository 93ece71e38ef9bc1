//! The leaf set: the `L/2` numerically closest nodes on each side of this node's id.
//!
//! Invariant: `cw` holds at most `half` members sorted by increasing clockwise distance from the
//! own id, `ccw` at most `half` sorted by increasing counter-clockwise distance; each side holds
//! the closest known nodes in its direction, the own id never appears, and no id appears twice on
//! one side. When the ring has fewer than `L + 1` nodes the two sides overlap (a node may sit on
//! both); the leaf set then knows the whole ring and covers every key.

use smallvec::SmallVec;

use crate::id::{Id, NodeHandle};

type Side = SmallVec<[NodeHandle; 8]>;

/// The leaf set of one node.
#[derive(Clone, Debug)]
pub struct LeafSet {
    own: Id,
    half: usize,
    cw: Side,
    ccw: Side,
}

impl LeafSet {
    /// An empty leaf set of `size` members (`size / 2` per side; `size` at least 2).
    pub fn new(own: Id, size: usize) -> LeafSet {
        let half = (size / 2).max(1);
        LeafSet {
            own,
            half,
            cw: Side::new(),
            ccw: Side::new(),
        }
    }

    /// The owner's id.
    pub fn own(&self) -> Id {
        self.own
    }

    /// Members per side.
    pub fn half(&self) -> usize {
        self.half
    }

    /// Whether no other node is known.
    pub fn is_empty(&self) -> bool {
        self.cw.is_empty() && self.ccw.is_empty()
    }

    /// Distinct members.
    pub fn len(&self) -> usize {
        self.cw.len() + self.ccw.iter().filter(|h| !self.in_cw(h.id)).count()
    }

    fn in_cw(&self, id: Id) -> bool {
        self.cw.iter().any(|h| h.id == id)
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: Id) -> bool {
        self.in_cw(id) || self.ccw.iter().any(|h| h.id == id)
    }

    /// The member with this id.
    pub fn find(&self, id: Id) -> Option<&NodeHandle> {
        self.cw.iter().chain(self.ccw.iter()).find(|h| h.id == id)
    }

    /// Whether the two sides meet: the leaf set then holds every node of the ring.
    pub fn is_complete(&self) -> bool {
        match (self.cw.last(), self.ccw.last()) {
            (Some(c), Some(a)) => self.own.cw_distance(c.id) >= self.own.cw_distance(a.id),
            _ => false,
        }
    }

    /// Whether `key` falls within the leaf set's range, so that its root is the numerically
    /// closest of the members and the owner.
    pub fn covers(&self, key: Id) -> bool {
        if self.is_empty() || self.is_complete() {
            return true;
        }
        let from = self.ccw.last().map_or(self.own, |h| h.id);
        let to = self.cw.last().map_or(self.own, |h| h.id);
        Id::in_cw_arc(key, from, to)
    }

    /// The member (or the owner, as `None`) numerically closest to `key`, among members for which
    /// `usable` holds.
    pub fn closest(&self, key: Id, usable: impl Fn(&NodeHandle) -> bool) -> Option<NodeHandle> {
        let mut best: Option<NodeHandle> = None;
        let mut best_id = self.own;
        for h in self.cw.iter().chain(self.ccw.iter()) {
            if key.closer_to(h.id, best_id) && usable(h) {
                best = Some(*h);
                best_id = h.id;
            }
        }
        best
    }

    /// Whether inserting `id` would make it a member.
    pub fn would_accept(&self, id: Id) -> bool {
        if id == self.own || self.contains(id) {
            return false;
        }
        let fits = |side: &Side, d: u128, dist: &dyn Fn(Id) -> u128| {
            side.len() < self.half || side.last().is_some_and(|l| d < dist(l.id))
        };
        let own = self.own;
        fits(&self.cw, own.cw_distance(id), &|x| own.cw_distance(x))
            || fits(&self.ccw, id.cw_distance(own), &|x| x.cw_distance(own))
    }

    /// Adds `node` where it belongs; returns `true` when it became a member. A known id gets its
    /// address refreshed (and is placed on a side it was missing from, if it belongs there).
    /// Members pushed beyond `half` on a side drop out.
    pub fn insert(&mut self, node: NodeHandle) -> bool {
        if node.id == self.own {
            return false;
        }
        let was_member = self.contains(node.id);
        // Refresh the address of a known member wherever it sits.
        for h in self.cw.iter_mut().chain(self.ccw.iter_mut()) {
            if h.id == node.id {
                h.addr = node.addr;
            }
        }
        let own = self.own;
        // A member may sit on one side and still belong on the other (it was pushed out there).
        insert_sorted(&mut self.cw, self.half, node, |x| own.cw_distance(x));
        insert_sorted(&mut self.ccw, self.half, node, |x| x.cw_distance(own));
        !was_member && self.contains(node.id)
    }

    /// Removes the member with this id; returns whether it was one.
    pub fn remove(&mut self, id: Id) -> bool {
        let before = self.cw.len() + self.ccw.len();
        self.cw.retain(|h| h.id != id);
        self.ccw.retain(|h| h.id != id);
        before != self.cw.len() + self.ccw.len()
    }

    /// Members, clockwise side first (nearest first), then the counter-clockwise side; a member
    /// on both sides appears once.
    pub fn members(&self) -> impl Iterator<Item = &NodeHandle> + '_ {
        self.cw
            .iter()
            .chain(self.ccw.iter().filter(move |h| !self.in_cw(h.id)))
    }

    /// The clockwise side, nearest first.
    pub fn cw_side(&self) -> &[NodeHandle] {
        &self.cw
    }

    /// The counter-clockwise side, nearest first.
    pub fn ccw_side(&self) -> &[NodeHandle] {
        &self.ccw
    }

    /// The nodes (owner included, as `own`) numerically closest to `key`, closest first, at most
    /// `k`. Only meaningful for keys the leaf set covers.
    pub fn replica_set(&self, key: Id, own: NodeHandle, k: usize, out: &mut Vec<NodeHandle>) {
        out.clear();
        out.push(own);
        out.extend(self.members().copied());
        out.sort_by(|a, b| order(key, a.id, b.id));
        out.truncate(k);
    }

    /// The clockwise arc `[lo, hi]` of keys for which `node` (the owner or a member) is among the
    /// `rank + 1` numerically closest nodes, or `None` when the leaf set does not know enough
    /// nodes on both sides of it to tell. Boundaries are ring midpoints between nodes.
    pub fn range(&self, node: Id, rank: usize) -> Option<(Id, Id)> {
        // The ring as known here, sorted clockwise starting at the owner.
        let mut ring: Vec<Id> = Vec::with_capacity(self.cw.len() + self.ccw.len() + 1);
        ring.push(self.own);
        ring.extend(self.members().map(|h| h.id));
        let own = self.own;
        ring.sort_by_key(|&x| own.cw_distance(x));
        let n = ring.len();
        let p = ring.iter().position(|&x| x == node)?;
        if self.is_complete() || self.is_empty() {
            if rank + 1 >= n {
                // Every key: the whole ring, as the arc starting just after `node`.
                return Some((node.wrapping_add(1), node));
            }
            let left = ring[(p + n - (rank + 1)) % n];
            let right = ring[(p + rank + 1) % n];
            return Some(arc_between(left, node, right));
        }
        // Not complete: the ring list runs ccw.last .. own .. cw.last without wrapping around;
        // re-sort as a line starting at the ccw extreme.
        let start = self.ccw.last().map_or(own, |h| h.id);
        ring.sort_by_key(|&x| start.cw_distance(x));
        let p = ring.iter().position(|&x| x == node)?;
        if p < rank + 1 || p + rank + 1 >= n {
            return None;
        }
        Some(arc_between(ring[p - rank - 1], node, ring[p + rank + 1]))
    }
}

/// The arc of keys closer to `node` than to `left` and `right` (its ring neighbours at the
/// wanted rank): from just past the midpoint with `left` to the midpoint with `right`.
fn arc_between(left: Id, node: Id, right: Id) -> (Id, Id) {
    let lo = left
        .wrapping_add(left.cw_distance(node) / 2)
        .wrapping_add(1);
    let hi = node.wrapping_add(node.cw_distance(right) / 2);
    (lo, hi)
}

/// Orders ids by closeness to `key` (the crate-wide root order).
fn order(key: Id, a: Id, b: Id) -> core::cmp::Ordering {
    if a == b {
        core::cmp::Ordering::Equal
    } else if key.closer_to(a, b) {
        core::cmp::Ordering::Less
    } else {
        core::cmp::Ordering::Greater
    }
}

fn insert_sorted(
    side: &mut Side,
    half: usize,
    node: NodeHandle,
    dist: impl Fn(Id) -> u128,
) -> bool {
    let d = dist(node.id);
    let pos = side.partition_point(|h| dist(h.id) < d);
    if pos >= half || side.get(pos).is_some_and(|h| h.id == node.id) {
        return false;
    }
    side.insert(pos, node);
    side.truncate(half);
    true
}
