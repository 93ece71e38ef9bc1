//! The neighbourhood set: the `M` proximity-closest known nodes.
//!
//! Invariant: at most `cap` members, sorted by increasing RTT, no id twice, never the own id.
//! Pastry uses it to seed a newcomer's routing table with nearby nodes (locality).

use crate::id::{Id, NodeHandle};

/// The neighbourhood set of one node.
#[derive(Clone, Debug)]
pub struct NeighborhoodSet {
    own: Id,
    cap: usize,
    members: Vec<(NodeHandle, u32)>,
}

impl NeighborhoodSet {
    /// An empty set of at most `cap` members.
    pub fn new(own: Id, cap: usize) -> NeighborhoodSet {
        NeighborhoodSet {
            own,
            cap,
            members: Vec::new(),
        }
    }

    /// Offers `node` measured at `rtt_us`; returns whether it is a member afterwards.
    pub fn insert(&mut self, node: NodeHandle, rtt_us: u32) -> bool {
        if node.id == self.own || self.cap == 0 {
            return false;
        }
        self.members.retain(|(h, _)| h.id != node.id);
        let pos = self.members.partition_point(|&(_, r)| r <= rtt_us);
        if pos >= self.cap {
            return false;
        }
        self.members.insert(pos, (node, rtt_us));
        self.members.truncate(self.cap);
        true
    }

    /// Removes `id`; returns whether it was a member.
    pub fn remove(&mut self, id: Id) -> bool {
        let n = self.members.len();
        self.members.retain(|(h, _)| h.id != id);
        n != self.members.len()
    }

    /// Members, closest first.
    pub fn members(&self) -> impl Iterator<Item = &NodeHandle> + '_ {
        self.members.iter().map(|(h, _)| h)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddr};

    fn h(i: u128) -> NodeHandle {
        NodeHandle::new(Id(i), SocketAddr::from((Ipv4Addr::LOCALHOST, 1)))
    }

    #[test]
    fn keeps_the_closest_sorted_and_capped() {
        let mut m = NeighborhoodSet::new(Id(0), 3);
        assert!(!m.insert(h(0), 1));
        for (i, rtt) in [(1, 50), (2, 10), (3, 30), (4, 40), (5, 5)] {
            m.insert(h(i), rtt);
        }
        let ids: Vec<u128> = m.members().map(|h| h.id.0).collect();
        assert_eq!(ids, vec![5, 2, 3]);
        // Re-measuring moves a member.
        m.insert(h(3), 1);
        assert_eq!(m.members().next().unwrap().id, Id(3));
        assert!(m.remove(Id(3)));
        assert!(!m.remove(Id(3)));
        assert_eq!(m.len(), 2);
    }
}
