//! The workload: lookups routed from random active nodes to random keys, each recorded so its
//! delivery is checked against the oracle (see [`Sim::on_event`](super::Sim)).

use bytes::Bytes;

use super::NodeIdx;
use super::{Ev, LookupRec, Sim, LATENCY_BUCKET_US};
use crate::id::Id;
use crate::sim::Histogram;
use crate::time::Duration;
use crate::wire::{self, Message};

/// The node `msg_id` goes to first from `node`, which has just routed it: the destination of its
/// queued `Routed` datagram (looked up without draining the queue).
fn first_hop(node: &crate::node::Node, msg_id: u64) -> Option<NodeIdx> {
    node.queued()
        .find_map(|(dst, frame)| match wire::decode(frame) {
            Ok((_, Message::Routed { msg_id: m, .. })) if m == msg_id => super::idx_of(dst),
            _ => None,
        })
}

impl Sim {
    /// Routes one message to a random key from a random active node, recorded for the oracle.
    pub fn one_lookup(&mut self) -> Option<u64> {
        let src = self.random_active()?;
        let key = Id(self.rng.next_u128());
        let now = self.now;
        let payload = Bytes::from(vec![0u8; self.lookup_payload]);
        let node = self.slots[src.0 as usize].node.as_mut()?;
        let msg_id = match node.route(now, Some(key), payload, None) {
            Ok(id) => id,
            Err(_) => {
                self.report.refused += 1;
                return None;
            }
        };
        self.report.lookups += 1;
        let first_hop = first_hop(node, msg_id);
        self.lookups.insert(
            msg_id,
            LookupRec {
                key,
                src,
                sent: now,
                deliveries: 0,
                reported: false,
                first_hop,
            },
        );
        self.pump(src);
        Some(msg_id)
    }

    /// Schedules `n` lookups, one every `gap`, starting now (run the clock to perform them).
    pub fn schedule_lookups(&mut self, n: u64, gap: Duration, payload: usize) {
        self.lookup_gap = gap;
        self.lookup_payload = payload;
        let start = self.pending_lookups == 0;
        self.pending_lookups += n;
        if start && n > 0 {
            let now = self.now;
            self.push(now, Ev::Lookup);
        }
    }

    /// Lookups scheduled or in flight: neither delivered nor reported undeliverable yet.
    pub fn outstanding_lookups(&self) -> u64 {
        let r = &self.report;
        self.pending_lookups + r.lookups.saturating_sub(r.delivered + r.undeliverable)
    }

    /// Runs until every lookup is delivered or reported, for at most `limit`.
    pub fn drain_lookups(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.outstanding_lookups() > 0 && self.now < end {
            let t = (self.now + Duration::from_millis(100)).min(end);
            self.run_until(t);
        }
    }

    /// Lookups sent and never delivered nor reported (call after the network drained).
    pub fn lost_lookups(&self) -> u64 {
        self.lookups
            .values()
            .filter(|r| r.deliveries == 0 && !r.reported)
            .count() as u64
    }

    /// Lookups whose source stayed alive while the lookup was its concern: delivered ones,
    /// and undelivered ones whose source lived through every end-to-end retry (a lookup whose
    /// source crashed may die with it, and nobody is left to retry it). How many, and how many
    /// of those were delivered; churn targets count these.
    pub fn live_source_lookups(&self) -> (u64, u64) {
        let c = &self.cfg.node;
        let retries = (1u64 << c.delivery_attempts.min(16)) - 1;
        let budget = c.delivery_timeout.saturating_mul(retries);
        let (mut issued, mut delivered) = (0, 0);
        for r in self.lookups.values() {
            let gone = self.slots[r.src.0 as usize].gone_at;
            if r.deliveries > 0 {
                issued += 1;
                delivered += 1;
            } else if gone.is_none_or(|g| g >= r.sent + budget) {
                issued += 1;
            }
        }
        (issued, delivered)
    }

    /// Forgets lookup records (so a new phase counts afresh) and resets delivery counters.
    pub fn reset_lookups(&mut self) {
        self.lookups.clear();
        let r = &mut self.report;
        r.lookups = 0;
        r.delivered = 0;
        r.correct = 0;
        r.incorrect = 0;
        r.duplicates = 0;
        r.undeliverable = 0;
        r.refused = 0;
        r.hops = Histogram::default();
        r.latency_us = Histogram::with_width(LATENCY_BUCKET_US);
        r.stretch_sum = 0.0;
        r.stretch_milli = Histogram::with_width(super::STRETCH_BUCKET_MILLI);
        r.first_hop_us_sum = 0.0;
        r.last_hop_us_sum = 0.0;
        r.stretch_n = 0;
        r.path_us_sum = 0.0;
        r.direct_us_sum = 0.0;
    }
}
