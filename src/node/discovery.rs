//! Nearest-node discovery at join (Castro, Druschel, Hu, Rowstron, "Exploiting network proximity
//! in peer-to-peer overlay networks", 2002; FreePastry's PNS application): the join is routed
//! from a node near the newcomer, so the first hop's rows and neighbourhood set, which seed the
//! newcomer's table, are near it too.
//!
//! The walk, one [`Step`] at a time:
//! 1. The bootstrap (any node) is asked for its routing-table rows `0..=TOP_GUESS`; the nodes of
//!    its highest non-empty row, spread over the network like a leaf set, and the bootstrap
//!    itself are measured, and the closest becomes the current node.
//! 2. Walking down the rows, the current node is asked for its next row, whose nodes are
//!    measured, and the closest measured node becomes the current one.
//! 3. At row 0, while the current node's row 0 shows a closer node, that node is asked for its
//!    row 0 in turn; when nothing closer turns up, the join goes to the current node.
//!
//! Measurements are the node's ordinary nonce pings (see [`super::membership`]): a node that
//! answers is admitted to the newcomer's own tables like any measured node. Rows are asked with
//! `RowRequest`, which any node answers; a row reply counts only from an address we asked, and
//! only names nodes to measure. While discovering, the newcomer answers nobody's ping: it is not
//! part of the overlay yet and must not enter anyone's table (the nodes it asks for rows may try
//! to measure it).
//!
//! Bounded: at most [`MAX_PINGS`] measurements and [`MAX_ASKS`] row requests; a step that gets no
//! answer within [`STEP_WAIT`] moves on with what it has, and a walk that measured nothing
//! routes the join through the bootstrap as before.

use core::net::SocketAddr;

use super::maintenance::ProbeKind;
use super::timers::Timer;
use super::Node;
use crate::id::{Id, NodeHandle};
use crate::routing_table::UNMEASURED;
use crate::time::{Duration, Instant};
use crate::util::FxHashSet;
use crate::wire::{Message, RowEntries};

/// Highest bootstrap row asked for, with `b = 4` (`16^4` = 65,536: a row above it is empty below
/// about a million nodes); scaled by `4 / b` for narrower digits.
const TOP_GUESS_B4: usize = 3;
/// Most nodes measured by one walk.
pub(super) const MAX_PINGS: usize = 48;
/// Most row requests of one walk (the bootstrap's included).
const MAX_ASKS: usize = 10;
/// How long a step waits for its row reply or its measurements before it moves on.
pub(super) const STEP_WAIT: Duration = Duration::from_millis(700);

/// What the walk waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The bootstrap's rows.
    BootstrapRows,
    /// The current node's row `row`.
    Row(u8),
    /// The measurements of the nodes named in row `row`.
    Measure(u8),
}

/// The newcomer's nearest-node walk (see the module docs).
#[derive(Debug)]
pub(super) struct Discovery {
    step: Step,
    deadline: Instant,
    /// The bootstrap's address, and the rows it sent (index = row).
    bootstrap: SocketAddr,
    boot_rows: Vec<Option<Vec<NodeHandle>>>,
    boot_id: Option<Id>,
    /// Whom the current step asked for a row.
    asked: Option<SocketAddr>,
    /// Every node measured, with its RTT in µs.
    measured: Vec<(NodeHandle, u32)>,
    /// Measured nodes that did not answer a row request (still joining, or gone): not used.
    unusable: FxHashSet<Id>,
    /// The node whose rows the walk is reading.
    current: Option<NodeHandle>,
    /// Measurements of this step not answered yet.
    pending: FxHashSet<Id>,
    /// Nodes measured (or being measured) by the walk.
    seen: FxHashSet<Id>,
    pings: usize,
    asks: usize,
}

impl Discovery {
    /// The closest measured node that may still answer.
    fn closest(&self) -> Option<NodeHandle> {
        self.measured
            .iter()
            .filter(|(h, _)| !self.unusable.contains(&h.id))
            .min_by_key(|(h, rtt)| (*rtt, h.id))
            .map(|(h, _)| *h)
    }
}

impl Node {
    /// Starts the walk through `bootstrap` (called by `join`).
    pub(super) fn start_discovery(&mut self, now: Instant, bootstrap: SocketAddr) {
        let top = (TOP_GUESS_B4 * 4 / self.cfg.b.bits() as usize).min(self.rt.rows() - 1);
        let mut d = Discovery {
            step: Step::BootstrapRows,
            deadline: now + STEP_WAIT,
            bootstrap,
            boot_rows: vec![None; top + 1],
            boot_id: None,
            asked: Some(bootstrap),
            measured: Vec::new(),
            unusable: FxHashSet::default(),
            current: None,
            pending: FxHashSet::default(),
            seen: FxHashSet::default(),
            pings: 0,
            asks: top + 1,
        };
        d.deadline = now + STEP_WAIT;
        self.join.discovery = Some(Box::new(d));
        for row in 0..=top {
            self.send(bootstrap, &Message::RowRequest { row: row as u8 });
        }
        self.timers.set(now + STEP_WAIT, Timer::Discovery);
    }

    /// Whether the newcomer is still looking for a nearby node (it answers no pings meanwhile).
    pub(super) fn discovering(&self) -> bool {
        self.join.discovery.is_some()
    }

    /// A row reply while discovering: the walk's, if it comes from the address asked.
    pub(super) fn discovery_row(&mut self, now: Instant, from: NodeHandle, row: RowEntries) {
        let Some(d) = self.join.discovery.as_mut() else {
            return;
        };
        if d.asked != Some(from.addr) {
            return;
        }
        let cells = self.cfg.b.base();
        let nodes: Vec<NodeHandle> = row.nodes.into_iter().take(cells).collect();
        match d.step {
            Step::BootstrapRows => {
                d.boot_id = Some(from.id);
                let r = usize::from(row.row);
                if r < d.boot_rows.len() {
                    d.boot_rows[r] = Some(nodes);
                }
                if d.boot_rows.iter().all(Option::is_some) {
                    self.discovery_bootstrap_rows(now);
                }
            }
            Step::Row(r) if r == row.row => {
                d.asked = None;
                self.discovery_measure(now, r, nodes);
            }
            _ => {}
        }
    }

    /// The bootstrap's rows are in (or the wait is over): measure it and its top row.
    fn discovery_bootstrap_rows(&mut self, now: Instant) {
        let Some(d) = self.join.discovery.as_mut() else {
            return;
        };
        d.asked = None;
        let top = d
            .boot_rows
            .iter()
            .rposition(|r| r.as_ref().is_some_and(|r| !r.is_empty()));
        let mut nodes = top.and_then(|t| d.boot_rows[t].clone()).unwrap_or_default();
        if let Some(id) = d.boot_id {
            nodes.push(NodeHandle::new(id, d.bootstrap));
        }
        if nodes.is_empty() {
            // The bootstrap did not answer, or knows nobody: join through it as before.
            self.finish_discovery(now);
            return;
        }
        self.discovery_measure(now, top.unwrap_or(0) as u8, nodes);
    }

    /// Measures the not yet measured of `nodes` (named in row `row`), then moves on.
    fn discovery_measure(&mut self, now: Instant, row: u8, nodes: Vec<NodeHandle>) {
        let mut fresh = Vec::new();
        let peers = &self.peers;
        if let Some(d) = self.join.discovery.as_mut() {
            d.step = Step::Measure(row);
            d.deadline = now + STEP_WAIT;
            d.pending.clear();
            for h in nodes {
                if h.id == self.me.id || d.pings >= MAX_PINGS || !d.seen.insert(h.id) {
                    continue;
                }
                // Measured already (the bootstrap, probed on its first datagram, say).
                let known = peers
                    .get(&h.id)
                    .filter(|p| p.addr == h.addr && p.srtt != UNMEASURED)
                    .map(|p| p.srtt);
                if let Some(rtt) = known {
                    d.measured.push((h, rtt));
                    continue;
                }
                d.pings += 1;
                d.pending.insert(h.id);
                fresh.push(h);
            }
        }
        for h in fresh {
            // Already being probed (say, the bootstrap after its first datagram): its answer
            // counts all the same.
            self.probe(now, h, ProbeKind::Ping, true);
        }
        if self
            .join
            .discovery
            .as_ref()
            .is_some_and(|d| d.pending.is_empty())
        {
            self.discovery_next(now);
        } else {
            self.timers.set(now + STEP_WAIT, Timer::Discovery);
        }
    }

    /// `from` answered a ping of ours with a clean RTT sample while we discover.
    pub(super) fn discovery_measured(&mut self, now: Instant, from: NodeHandle, rtt: Option<u32>) {
        let Some(d) = self.join.discovery.as_mut() else {
            return;
        };
        let rtt = rtt.or_else(|| self.peers.get(&from.id).map(|p| p.srtt));
        if let Some(rtt) = rtt.filter(|&r| r != UNMEASURED) {
            if d.pending.contains(&from.id) {
                d.measured.push((from, rtt));
            }
        }
        if d.pending.remove(&from.id) && d.pending.is_empty() {
            if let Step::Measure(_) = d.step {
                self.discovery_next(now);
            }
        }
    }

    /// This step's measurements are in: move to the closest node, down a row or to the join.
    fn discovery_next(&mut self, now: Instant) {
        let Some(d) = self.join.discovery.as_mut() else {
            return;
        };
        let Step::Measure(row) = d.step else {
            return;
        };
        d.pending.clear();
        let Some(best) = d.closest() else {
            self.finish_discovery(now);
            return;
        };
        let moved = d.current.is_none_or(|c| c.id != best.id);
        d.current = Some(best);
        // Down a row, or at row 0 again while it keeps finding closer nodes.
        let next = match row {
            0 if moved => 0,
            0 => {
                self.finish_discovery(now);
                return;
            }
            r => r - 1,
        };
        if d.asks >= MAX_ASKS || d.pings >= MAX_PINGS {
            self.finish_discovery(now);
            return;
        }
        // The bootstrap's rows are known already.
        if Some(best.id) == d.boot_id {
            if let Some(Some(nodes)) = d.boot_rows.get(usize::from(next)).cloned() {
                self.discovery_measure(now, next, nodes);
                return;
            }
        }
        d.asks += 1;
        d.step = Step::Row(next);
        d.asked = Some(best.addr);
        d.deadline = now + STEP_WAIT;
        self.send(best.addr, &Message::RowRequest { row: next });
        self.timers.set(now + STEP_WAIT, Timer::Discovery);
    }

    /// A step's wait is over: move on with what arrived.
    pub(super) fn on_discovery_timer(&mut self, now: Instant) {
        let Some(d) = self.join.discovery.as_ref() else {
            return;
        };
        if now < d.deadline {
            return;
        }
        match d.step {
            Step::BootstrapRows => self.discovery_bootstrap_rows(now),
            // The current node did not answer (it is joining itself, or gone): the next closest
            // takes its place, one row up (so the walk asks it for the same row).
            Step::Row(r) => {
                if let Some(d) = self.join.discovery.as_mut() {
                    d.asked = None;
                    if let Some(c) = d.current.take() {
                        d.unusable.insert(c.id);
                    }
                }
                self.discovery_measure(now, r.saturating_add(1), Vec::new())
            }
            Step::Measure(_) => self.discovery_next(now),
        }
    }

    /// The walk is over: route the join from the closest node found (the bootstraps stay as
    /// fallbacks for retries).
    fn finish_discovery(&mut self, now: Instant) {
        let Some(d) = self.join.discovery.take() else {
            return;
        };
        if let Some(near) = d.closest() {
            if near.addr != d.bootstrap {
                self.join.bootstraps.insert(0, near.addr);
            }
        }
        self.join.next = 0;
        self.send_join_request(now);
    }
}
