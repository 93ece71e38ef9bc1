//! Membership: the one rule by which nodes enter, stay in and leave this node's tables.
//!
//! **Admission on proof.** Every way of learning of a node goes through [`Node::learn`], which
//! decides alone what enters the leaf set, the routing table and the neighbourhood set:
//!
//! | how we learned of node T | [`Learned`] | what happens |
//! |---|---|---|
//! | T answered a probe of ours (a ping or leaf-set request with a fresh random nonce) with that nonce, from the probed address | `Answered` | T enters every table that wants it; a tombstone on T is lifted |
//! | a datagram came from T's address claiming T's id (anyone can send one) | `Contact` | T known at that address: refreshed (and probed if it would now enter the leaf set, which takes only freshly proven nodes). T unknown: probed if a table wants it (even if tombstoned: only T's own answer can bring it back). T known at another address: ignored and counted, the incumbent address stays while it answers |
//! | T was named in a list (join reply, leaf-set request or reply, row reply, leave) | `Listed` | probed if a table wants it and it is not tombstoned |
//!
//! So a table never holds a node whose address has not echoed one of our nonces, a known node's
//! address never changes while the old one answers, an address holds one id (the first proven
//! there keeps it while it answers: one socket cannot fill a leaf set with made-up ids), and
//! nothing a third party says puts a node in. Lists are read only up to the size a legitimate
//! one has (a leaf set, a row), so one datagram cannot make us probe hundreds of addresses. **Reports about a node** (a `Leave`) take effect only from that node's own validated
//! address; from anywhere else they only make us probe it. Nodes that failed or left are
//! tombstoned: lists do not bring them back, only a fresh answer of their own does.
//!
//! The invariant (checked in debug builds by [`Node::check_tables`]): every node in a table has
//! a peer record holding the address it was validated at, and the tables hold it at that address.

use super::maintenance::{Offered, ProbeKind};
use super::{Node, Peer};
use crate::id::NodeHandle;
use crate::routing_table::UNMEASURED;
use crate::time::Instant;
use crate::wire::Message;

/// How a node came to our attention (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Learned {
    /// It answered our probe: right nonce, from the probed address. `rtt` is a clean round-trip
    /// sample in µs, if the exchange gave one (Karn's rule: not for retransmissions).
    Answered {
        /// A clean RTT sample, µs.
        rtt: Option<u32>,
    },
    /// A datagram arrived from its address with its id as the sender.
    Contact,
    /// Someone else named it.
    Listed(Offered),
}

impl Node {
    /// Whether another node we hold was validated at `h`'s address (one id per address: the
    /// incumbent keeps it while it answers).
    pub(super) fn address_taken(&self, h: NodeHandle) -> bool {
        self.guard
            .peer_addrs
            .get(&h.addr)
            .is_some_and(|id| *id != h.id)
    }

    /// Whether `h` is a peer we validated at exactly this address.
    pub(super) fn validated(&self, h: NodeHandle) -> bool {
        self.peers.get(&h.id).is_some_and(|p| p.addr == h.addr)
    }

    /// The admission function: the only way into the tables. See the module docs.
    pub(super) fn learn(&mut self, now: Instant, h: NodeHandle, how: Learned) {
        if h.id == self.me.id {
            return;
        }
        match how {
            Learned::Answered { rtt } => self.admit(now, h, rtt),
            Learned::Contact => self.contact(now, h),
            Learned::Listed(offered) => self.candidate(now, h, offered),
        }
    }

    /// `h` proved its address: take it into every table that wants it.
    fn admit(&mut self, now: Instant, h: NodeHandle, rtt: Option<u32>) {
        if self.peers.get(&h.id).is_some_and(|p| p.addr != h.addr) || self.address_taken(h) {
            // The incumbent address keeps the id while it answers; if it stops, the node is
            // removed and may then be admitted at the new address.
            self.stats.addr_conflicts += 1;
            return;
        }
        self.tombstones.remove(&h.id);
        if let Some(r) = rtt {
            self.rtt_sample(h.id, r);
        }
        let srtt = match self.peers.get_mut(&h.id) {
            Some(p) => {
                p.last_heard = now;
                p.suspect = false;
                p.srtt
            }
            None => rtt.unwrap_or(UNMEASURED),
        };
        self.consider(now, h, srtt);
    }

    /// A datagram from `h`: liveness for a validated peer, a probe for a stranger.
    fn contact(&mut self, now: Instant, h: NodeHandle) {
        match self.peers.get_mut(&h.id) {
            Some(p) if p.addr == h.addr => {
                p.last_heard = now;
                p.suspect = false;
                // A peer we hold elsewhere (say, in the routing table) that the leaf set would
                // take now (a closer member left): ask it for its leaf set first. Its answer is
                // fresh proof it is still there (this datagram may be the last it sent before
                // leaving) and announces us to it.
                if self.leaf.would_accept(h.id) && self.may_announce() {
                    self.probe(now, h, ProbeKind::LeafSet, true);
                }
            }
            Some(_) => self.stats.addr_conflicts += 1,
            None => self.candidate(now, h, Offered::Contact),
        }
    }

    /// The sender of a `Ping` showed signs of life (joiners probe with pings before they
    /// announce themselves, so a ping never makes its sender a candidate).
    pub(super) fn refresh(&mut self, now: Instant, h: NodeHandle) {
        if let Some(p) = self.peers.get_mut(&h.id).filter(|p| p.addr == h.addr) {
            p.last_heard = now;
            p.suspect = false;
        }
    }

    /// A report that `gone` left the overlay, received from `from`. It counts only when it
    /// comes from `gone`'s own validated address; otherwise `gone` (if we hold it) is probed
    /// at the address we know, and removed only if it fails to answer.
    pub(super) fn reported_gone(&mut self, now: Instant, from: NodeHandle) -> bool {
        if self.validated(from) {
            return true;
        }
        self.stats.unproven_reports += 1;
        if let Some(p) = self.peers.get(&from.id) {
            let known = NodeHandle::new(from.id, p.addr);
            self.probe(now, known, ProbeKind::Ping, true);
        }
        false
    }

    /// `dead`, a leaf-set member, failed every probe: tell the rest of the leaf set, which
    /// holds it too (they check it themselves at once instead of at their next tick).
    pub(super) fn tell_leaf_set_failed(&mut self, dead: NodeHandle) {
        let members: smallvec::SmallVec<[NodeHandle; 16]> = self.leaf.members().copied().collect();
        for h in members {
            self.send(h.addr, &Message::Failed { node: dead });
        }
    }

    /// `from` says `node` failed. Only a member we hold that reports it counts, and even then
    /// it is not believed: if we hold `node` at that address, we probe it now (its own answer,
    /// or silence, decides).
    pub(super) fn on_failed_report(&mut self, now: Instant, from: NodeHandle, node: NodeHandle) {
        if !self.validated(from) || node.id == self.me.id || !self.validated(node) {
            self.stats.unproven_reports += 1;
            return;
        }
        if !self.maint.probes.contains_key(&node.id) {
            self.stats.unproven_reports += 1;
            self.probe(now, node, ProbeKind::Ping, true);
            if let Some(p) = self.maint.probes.get_mut(&node.id) {
                p.on_report = true;
            }
        }
    }

    /// A new peer record for `h`, validated at its address.
    pub(super) fn new_peer(now: Instant, h: NodeHandle, rtt: u32) -> Peer {
        Peer {
            addr: h.addr,
            srtt: rtt,
            rttvar: rtt / 2,
            last_heard: now,
            suspect: false,
        }
    }

    /// Checks the membership invariant: every table entry has a peer record at its address.
    /// Panics with the offending entry otherwise (a broken invariant, not bad input).
    pub fn check_tables(&self) {
        let entries = self
            .leaf
            .members()
            .copied()
            .chain(self.rt.entries().map(|e| e.node))
            .chain(self.nbr.members().copied());
        for h in entries {
            let p = self.peers.get(&h.id);
            assert!(
                p.is_some_and(|p| p.addr == h.addr),
                "{h:?} is in a table of {:?} without a validated peer record ({:?})",
                self.me,
                p.map(|p| p.addr)
            );
        }
    }
}
