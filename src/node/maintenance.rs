//! Keeping the tables healthy: probes (liveness and RTT), leaf-set heartbeats and exchange,
//! leaf-set and routing-table repair, periodic routing-table maintenance, graceful leave.
//!
//! Second-hand knowledge (a node named in someone else's list) never enters the tables directly:
//! it is probed first, and only an answer puts it in. Failed nodes are remembered for a while
//! (tombstones) so stale lists do not bring them back.

use super::timers::Timer;
use super::{Node, Phase};
use crate::id::{Id, NodeHandle};
use crate::routing_table::UNMEASURED;
use crate::time::{Duration, Instant};
use crate::util::FxHashMap;
use crate::wire::{Message, RowEntries};

/// Leaves per side checked every probe period; farther ones every `FAR_FACTOR` periods.
const NEAR_LEAVES: usize = 2;
/// How many probe periods a far leaf may stay silent before it is pinged.
const FAR_FACTOR: u64 = 3;

/// Unknown nodes of a received routing-table row measured for proximity (beyond empty cells).
const PNS_PER_ROW: usize = 4;

/// What a probe asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeKind {
    /// A ping: liveness and RTT.
    Ping,
    /// A leaf-set request: liveness plus the target's leaf set.
    LeafSet,
}

/// An outstanding probe.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe {
    pub(super) handle: NodeHandle,
    kind: ProbeKind,
    nonce: u64,
    attempts: u32,
    sent_at: Instant,
    deadline: Instant,
}

/// Maintenance bookkeeping of one node.
#[derive(Debug, Default)]
pub(super) struct MaintState {
    pub(super) leaf_tick_at: Instant,
    pub(super) rt_tick_at: Instant,
    /// The leaf set changed since the last exchange.
    pub(super) leaf_changed: bool,
    ticks: u32,
    /// Current exchange interval in ticks (self-tuning).
    exchange_every: u32,
    /// Outstanding probes, one per target.
    pub(super) probes: FxHashMap<Id, Probe>,
}

impl MaintState {
    pub(super) fn heap_bytes(&self) -> usize {
        self.probes.capacity() * (16 + core::mem::size_of::<Probe>() + 8)
    }
}

impl Node {
    /// A node named second-hand: probe it if it would improve a table.
    /// With `pns`, unknown nodes are probed even for filled routing-table cells (a closer one
    /// replaces the occupant: proximity neighbour selection).
    pub(super) fn candidate(&mut self, now: Instant, h: NodeHandle, pns: bool) {
        if h.id == self.me.id || self.maint.probes.contains_key(&h.id) {
            return;
        }
        if self.is_tombstoned(now, h.id) {
            return;
        }
        // A node we hold elsewhere (say in the routing table) may belong in the leaf set now
        // that a closer leaf is gone: probe it before taking it in.
        let leaf_gap = self.leaf.would_accept(h.id);
        if !leaf_gap && self.knows(h.id) {
            return;
        }
        if leaf_gap {
            let kind = if self.may_announce() {
                ProbeKind::LeafSet
            } else {
                ProbeKind::Ping
            };
            self.probe(now, h, kind, true);
        } else if pns || self.rt.would_accept(h.id, UNMEASURED) {
            self.probe(now, h, ProbeKind::Ping, false);
        }
    }

    /// Sends a probe to `h` (at most one outstanding per target). `force` ignores the probe cap
    /// (used for leaf-set members, which correctness depends on).
    pub(super) fn probe(&mut self, now: Instant, h: NodeHandle, kind: ProbeKind, force: bool) {
        if self.maint.probes.contains_key(&h.id)
            || (!force && self.maint.probes.len() >= self.cfg.max_probes)
        {
            return;
        }
        let nonce = self.rng.next_u64();
        let deadline = now + self.rto(h.id, 0);
        self.maint.probes.insert(
            h.id,
            Probe {
                handle: h,
                kind,
                nonce,
                attempts: 1,
                sent_at: now,
                deadline,
            },
        );
        self.timers.set(deadline, Timer::Probe(h.id));
        self.send_probe(now, h, kind, nonce);
    }

    fn send_probe(&mut self, now: Instant, h: NodeHandle, kind: ProbeKind, nonce: u64) {
        let msg = match kind {
            ProbeKind::Ping => Message::Ping {
                nonce,
                sent_at: now.as_micros(),
            },
            ProbeKind::LeafSet => Message::LeafSetRequest { nonce },
        };
        self.send(h.addr, &msg);
    }

    pub(super) fn cancel_probe(&mut self, id: Id) {
        self.maint.probes.remove(&id);
    }

    pub(super) fn on_probe_timer(&mut self, now: Instant, at: Instant, id: Id) {
        let Some(p) = self.maint.probes.get(&id).copied() else {
            return;
        };
        if p.deadline != at {
            return;
        }
        if p.attempts > self.cfg.probe_retries {
            self.maint.probes.remove(&id);
            if self.knows(id) {
                self.peer_failed(now, id);
            } else {
                // A candidate that never answered: keep stale lists from offering it again.
                self.tombstone(now, id);
                self.peers.remove(&id);
                self.join_check_complete(now);
            }
            return;
        }
        let deadline = now + self.rto(id, p.attempts);
        if let Some(q) = self.maint.probes.get_mut(&id) {
            q.attempts += 1;
            q.deadline = deadline;
        }
        self.timers.set(deadline, Timer::Probe(id));
        self.send_probe(now, p.handle, p.kind, p.nonce);
    }

    /// Resolves the probe of `from` if `nonce` matches; returns the RTT sample it gives (µs).
    fn answer_probe(&mut self, now: Instant, from: Id, nonce: u64) -> Option<u32> {
        let p = self.maint.probes.get(&from)?;
        if p.nonce != nonce {
            return None;
        }
        let p = self.maint.probes.remove(&from)?;
        self.join_answered(now, from);
        // Karn: a retransmitted probe's answer is ambiguous.
        (p.attempts == 1).then(|| (now - p.sent_at).as_micros().min(u64::from(u32::MAX - 1)) as u32)
    }

    pub(super) fn on_pong(&mut self, now: Instant, from: NodeHandle, nonce: u64, sent_at: u64) {
        if self.answer_probe(now, from.id, nonce).is_none() && !self.knows(from.id) {
            return;
        }
        let rtt = now
            .as_micros()
            .saturating_sub(sent_at)
            .min(u64::from(u32::MAX - 1)) as u32;
        self.measured(now, from, rtt);
    }

    /// A fresh RTT measurement of `h`: refresh its estimator and re-offer it to the tables.
    fn measured(&mut self, now: Instant, h: NodeHandle, rtt: u32) {
        if let Some(p) = self.peers.get(&h.id) {
            let _ = p;
            self.rtt_sample(h.id, rtt);
            let srtt = self.peers.get(&h.id).map_or(rtt, |p| p.srtt);
            self.consider(now, h, srtt);
        } else {
            self.consider(now, h, rtt);
        }
        self.join_check_complete(now);
    }

    pub(super) fn on_leaf_set_request(&mut self, _now: Instant, from: NodeHandle, nonce: u64) {
        let leaf_set: Vec<NodeHandle> = self
            .leaf
            .members()
            .copied()
            .filter(|h| h.id != from.id)
            .collect();
        let msg = Message::LeafSetReply {
            nonce,
            active: self.phase == Phase::Active,
            leaf_set,
        };
        self.send(from.addr, &msg);
    }

    pub(super) fn on_leaf_set_reply(
        &mut self,
        now: Instant,
        from: NodeHandle,
        nonce: u64,
        list: &[NodeHandle],
    ) {
        if let Some(rtt) = self.answer_probe(now, from.id, nonce) {
            self.measured(now, from, rtt);
        }
        for h in list {
            self.candidate(now, *h, false);
        }
        self.join_check_complete(now);
    }

    pub(super) fn on_row_request(&mut self, from: NodeHandle, row: u8) {
        let nodes: Vec<NodeHandle> = self
            .rt
            .row(usize::from(row))
            .map(|e| e.node)
            .filter(|h| h.id != from.id)
            .collect();
        let msg = Message::RowReply {
            row: RowEntries { row, nodes },
        };
        self.send(from.addr, &msg);
    }

    pub(super) fn on_row_reply(&mut self, now: Instant, _from: NodeHandle, row: RowEntries) {
        // Fill empty cells; also measure a few unknown nodes for filled cells (PNS).
        let mut pns_budget = PNS_PER_ROW;
        for h in row.nodes {
            let pns = pns_budget > 0 && !self.knows(h.id);
            if pns && !self.rt.would_accept(h.id, UNMEASURED) {
                pns_budget -= 1;
            }
            self.candidate(now, h, pns);
        }
    }

    pub(super) fn on_leave(&mut self, now: Instant, from: NodeHandle, list: &[NodeHandle]) {
        self.tombstone(now, from.id);
        self.remove_peer(now, from.id);
        self.routing_reroute_all(now, from.id);
        for h in list {
            self.candidate(now, *h, false);
        }
    }

    /// Leaves the overlay gracefully: tells the leaf set, then stops (no more timers, inputs
    /// ignored). Pending messages are abandoned.
    pub fn leave(&mut self, now: Instant) {
        let _ = now;
        if self.phase == Phase::Stopped {
            return;
        }
        let members: Vec<NodeHandle> = self.leaf.members().copied().collect();
        for h in &members {
            let list = members.iter().copied().filter(|m| m.id != h.id).collect();
            self.send(h.addr, &Message::Leave { leaf_set: list });
        }
        self.phase = Phase::Stopped;
        self.timers.clear();
    }

    /// Leaf tick: ping leaves not heard from within a period; every few ticks exchange leaf sets
    /// with the two adjacent leaves (less often while nothing changes).
    pub(super) fn on_leaf_tick(&mut self, now: Instant, at: Instant) {
        if at != self.maint.leaf_tick_at || self.phase != Phase::Active {
            return;
        }
        let period = self.cfg.leaf_probe_period;
        // The two nearest leaves each side are checked every period, the others every
        // `FAR_FACTOR` periods: a far leaf that dies is also found by the hop acknowledgements
        // of any message routed to it, and by its own neighbours' repair.
        let far_period = period.saturating_mul(FAR_FACTOR);
        let (cw, ccw) = (self.leaf.cw_side(), self.leaf.ccw_side());
        let mut quiet: smallvec::SmallVec<[NodeHandle; 16]> = smallvec::SmallVec::new();
        for side in [cw, ccw] {
            for (rank, h) in side.iter().enumerate() {
                let limit = if rank < NEAR_LEAVES {
                    period
                } else {
                    far_period
                };
                let stale = self
                    .peers
                    .get(&h.id)
                    .is_none_or(|p| p.last_heard + limit <= now);
                if stale && !quiet.iter().any(|q| q.id == h.id) {
                    quiet.push(*h);
                }
            }
        }
        for h in quiet {
            self.probe(now, h, ProbeKind::Ping, true);
        }
        self.maint.ticks += 1;
        if self.maint.exchange_every == 0 {
            self.maint.exchange_every = self.cfg.leaf_exchange_every;
        }
        if self.maint.ticks >= self.maint.exchange_every {
            self.maint.ticks = 0;
            let adjacent = [self.leaf.cw_side().first(), self.leaf.ccw_side().first()];
            for h in adjacent.into_iter().flatten().copied().collect::<Vec<_>>() {
                self.maint.probes.remove(&h.id);
                self.probe(now, h, ProbeKind::LeafSet, true);
            }
            let base = self.cfg.leaf_exchange_every;
            self.maint.exchange_every = if self.maint.leaf_changed {
                base
            } else {
                (self.maint.exchange_every * 2).min(base * 8)
            };
            self.maint.leaf_changed = false;
        }
        self.compact();
        let jitter = Duration(self.rng.below(period.as_micros() / 10 + 1));
        self.maint.leaf_tick_at = now + period + jitter;
        self.timers
            .set(self.maint.leaf_tick_at, Timer::LeafMaintenance);
    }

    /// Routing-table tick: ask a random entry of a random used row for its row.
    pub(super) fn on_rt_tick(&mut self, now: Instant, at: Instant) {
        if at != self.maint.rt_tick_at || self.phase != Phase::Active {
            return;
        }
        let used = self.rt.used_rows();
        if used > 0 {
            let row = self.rng.below(used as u64) as usize;
            self.ask_row(row, None);
        }
        let period = self.cfg.rt_maintenance_period;
        let jitter = Duration(self.rng.below(period.as_micros() / 10 + 1));
        self.maint.rt_tick_at = now + period + jitter;
        self.timers.set(self.maint.rt_tick_at, Timer::RtMaintenance);
    }

    /// Asks a random entry of `row` (other than `skip`) for its row `row`.
    pub(super) fn ask_row(&mut self, row: usize, skip: Option<Id>) {
        let entries: smallvec::SmallVec<[NodeHandle; 16]> = self
            .rt
            .row(row)
            .map(|e| e.node)
            .filter(|h| Some(h.id) != skip)
            .collect();
        if entries.is_empty() {
            return;
        }
        let h = entries[self.rng.below(entries.len() as u64) as usize];
        self.send(h.addr, &Message::RowRequest { row: row as u8 });
    }

    /// A routing-table cell of `row` lost its occupant: ask another node of the row (or of the
    /// next rows) for a replacement.
    pub(super) fn repair_rt_row(&mut self, row: usize) {
        for r in row..self.rt.rows().min(row + 3) {
            if self.rt.row(r).next().is_some() {
                self.ask_row(r, None);
                // The reply is for row r; ask for `row` itself when r differs.
                return;
            }
        }
    }

    /// A leaf left: ask the farthest remaining member of each side for its leaf set, so the
    /// gap fills with the next nodes out. With a side empty, ask the routing-table entry
    /// numerically closest to us.
    pub(super) fn repair_leaf_set(&mut self, now: Instant, _gone: Id) {
        let far = [self.leaf.cw_side().last(), self.leaf.ccw_side().last()];
        let far: smallvec::SmallVec<[NodeHandle; 2]> = far.into_iter().flatten().copied().collect();
        for h in far.iter().copied() {
            self.maint.probes.remove(&h.id);
            self.probe(now, h, ProbeKind::LeafSet, true);
        }
        if self.leaf.cw_side().is_empty() || self.leaf.ccw_side().is_empty() {
            let me = self.me.id;
            let closest = self
                .rt
                .entries()
                .map(|e| e.node)
                .filter(|h| !self.leaf.contains(h.id))
                .min_by(|a, b| {
                    if me.closer_to(a.id, b.id) {
                        core::cmp::Ordering::Less
                    } else {
                        core::cmp::Ordering::Greater
                    }
                });
            if let Some(h) = closest {
                self.probe(now, h, ProbeKind::LeafSet, true);
            }
        }
    }
}
