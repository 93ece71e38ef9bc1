//! Keeping the tables healthy: probes (liveness and RTT), leaf-set heartbeats and exchange,
//! leaf-set and routing-table repair, periodic routing-table maintenance, graceful leave.
//!
//! What enters the tables is decided by the admission function of [`super::membership`]: a node
//! named second-hand, or heard from for the first time, is a *candidate*, probed here, and only
//! its answer to our nonce puts it in. Failed nodes are remembered for a while (tombstones) so
//! stale lists do not bring them back.

use super::membership::Learned;
use super::timers::Timer;
use super::{Node, Phase};
use core::net::SocketAddr;

use crate::id::{Id, NodeHandle};
use crate::routing_table::UNMEASURED;
use crate::time::{Duration, Instant};
use crate::util::FxHashMap;
use crate::wire::{Message, RowEntries};

/// Leaves per side checked every probe period; farther ones every `FAR_FACTOR` periods.
const NEAR_LEAVES: usize = 1;
/// How many probe periods a far leaf may stay silent before it is pinged while the leaf set
/// changes; `FAR_FACTOR_QUIET` once it has not changed for `QUIET_TICKS` ticks (a dead far leaf
/// is then mostly found by its own neighbours, whose `Failed` notice reaches us at once).
const FAR_FACTOR: u64 = 3;
/// See [`FAR_FACTOR`].
const FAR_FACTOR_QUIET: u64 = 6;
/// Ticks without a leaf-set change after which maintenance slows down.
const QUIET_TICKS: u32 = 6;

/// Unknown nodes of a received routing-table row measured for proximity (beyond empty cells).
/// The newcomer's rows, asked of each row's nodes on activation (constrained gossip), and the
/// periodic exchanges alike.
const PNS_PER_ROW: usize = 2;

/// The size of a ping probe on the wire (the smallest probe).
const PROBE_BYTES: usize = crate::wire::HEADER_LEN + 17 + crate::wire::TRAILER_LEN;

/// Probe retransmissions for a node not (yet) in any table.
const CANDIDATE_RETRIES: u32 = 1;
/// Probe retransmissions for a stranger that would enter the leaf set (consistency depends on
/// finding every live neighbour, so a lost datagram or two must not hide one).
const LEAF_CANDIDATE_RETRIES: u32 = 2;
/// How long a candidate that never answered is not probed again because of a list.
const CANDIDATE_TOMBSTONE: Duration = Duration::from_secs(20);
/// The same for a node that is still joining.
const CANDIDATE_TOMBSTONE_JOINING: Duration = Duration::from_secs(2);

/// A round-trip time in µs, saturated to fit the tables' `u32`.
fn rtt_us(d: Duration) -> u32 {
    d.as_micros().min(u64::from(u32::MAX - 1)) as u32
}

/// Where a second-hand node was named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offered {
    /// In someone's leaf set: it lives near them in the id space.
    LeafList,
    /// In a routing-table row (or a neighbourhood set); with `pns`, worth measuring even for a
    /// filled cell.
    Row {
        /// Probe it even if its cell is filled (proximity neighbour selection).
        pns: bool,
    },
    /// It sent us a datagram itself: its address is where it claims to be, if it answers.
    Contact,
    /// It asked us for a routing-table row (a newcomer telling its table, or maintenance): it
    /// shares that row's prefix with us, so it is a candidate for our own table, measured even
    /// for a filled cell (proximity neighbour selection; how old nodes' tables keep converging
    /// as nearer nodes join). Its own datagram, like [`Offered::Contact`].
    RowAsker,
}

/// What a probe asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeKind {
    /// A ping: liveness and RTT.
    Ping,
    /// A leaf-set request: liveness plus the target's leaf set.
    LeafSet,
}

/// A leaf-set request from a node whose address we had not validated: answered only once it
/// has answered our challenge (so a forged source address gets one small ping, not a list).
#[derive(Clone, Debug)]
pub(super) struct Deferred {
    /// The request's nonce, echoed in our reply (`None`: answered already).
    nonce: Option<u64>,
    /// The requester's leaf set (at most our own leaf set's size), offered once it is proven.
    list: Vec<NodeHandle>,
}

/// An outstanding probe.
#[derive(Clone, Debug)]
pub(super) struct Probe {
    pub(super) handle: NodeHandle,
    kind: ProbeKind,
    nonce: u64,
    attempts: u32,
    /// Retransmissions allowed before the target is declared failed.
    retries: u32,
    sent_at: Instant,
    /// When the first transmission left.
    started: Instant,
    /// Something arrived from the target's address meanwhile (it is there, but this exchange's
    /// datagrams are being lost): on running out of retries it gets one more round.
    heard: bool,
    /// It had that one more round already.
    rearmed: bool,
    /// Started on someone's `Failed` report: if it fails, the reporter has told the leaf set
    /// already, so we do not tell it again.
    pub(super) on_report: bool,
    /// Started because the target's own datagram made it a candidate: each transmission is a
    /// reply to what it sent, paid for out of its 3x credit while its address is unproven.
    charged: bool,
    /// Probes a stranger because of its own datagram: if it does not answer, it is not
    /// tombstoned (a newcomer looking for a nearby node asks rows but answers nobody yet; lists
    /// may name it once it has joined).
    contacted: bool,
    deadline: Instant,
    /// A leaf-set request of the target's to answer once the probe is answered.
    deferred: Option<Box<Deferred>>,
}

/// The outstanding probes, one per target id, with a count per address (so a stranger's address
/// gets one probe at a time however many ids are claimed at it).
#[derive(Debug, Default)]
pub(super) struct Probes {
    by_id: FxHashMap<Id, Probe>,
    addrs: FxHashMap<SocketAddr, u32>,
}

impl Probes {
    pub(super) fn get(&self, id: &Id) -> Option<&Probe> {
        self.by_id.get(id)
    }
    /// The probe of `id`, to update its progress (never its target).
    pub(super) fn get_mut(&mut self, id: &Id) -> Option<&mut Probe> {
        self.by_id.get_mut(id)
    }
    pub(super) fn contains_key(&self, id: &Id) -> bool {
        self.by_id.contains_key(id)
    }
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &Probe> {
        self.by_id.values()
    }
    /// Whether a probe to `addr` is outstanding.
    pub(super) fn addr_busy(&self, addr: SocketAddr) -> bool {
        self.addrs.contains_key(&addr)
    }
    fn insert(&mut self, id: Id, p: Probe) {
        *self.addrs.entry(p.handle.addr).or_insert(0) += 1;
        if let Some(old) = self.by_id.insert(id, p) {
            self.unref(old.handle.addr);
        }
    }
    pub(super) fn remove(&mut self, id: &Id) -> Option<Probe> {
        let p = self.by_id.remove(id)?;
        self.unref(p.handle.addr);
        Some(p)
    }
    fn unref(&mut self, addr: SocketAddr) {
        if let Some(n) = self.addrs.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.addrs.remove(&addr);
            }
        }
    }
    pub(super) fn shrink(&mut self) {
        if self.by_id.capacity() > 4 * self.by_id.len() + 16 {
            self.by_id.shrink_to(2 * self.by_id.len());
            self.addrs.shrink_to(2 * self.addrs.len());
        }
    }
    fn capacity(&self) -> usize {
        self.by_id.capacity() + self.addrs.capacity() / 2
    }
}

/// Maintenance bookkeeping of one node.
#[derive(Debug, Default)]
pub(super) struct MaintState {
    pub(super) leaf_tick_at: Instant,
    pub(super) rt_tick_at: Instant,
    /// The leaf set changed since the last exchange.
    pub(super) leaf_changed: bool,
    /// Counts leaf-set changes.
    pub(super) leaf_version: u64,
    /// `leaf_version` at the last tick, and the ticks since it last moved.
    seen_version: u64,
    quiet_ticks: u32,
    ticks: u32,
    /// Current exchange interval in ticks (self-tuning).
    exchange_every: u32,
    /// Outstanding probes, one per target.
    pub(super) probes: Probes,
    /// The row asker being offered as a candidate right now (see `contact_or_listed_probe`).
    asking: Option<Id>,
    /// Nodes that recently pinged us as active members or asked for our leaf set: they hold us
    /// in their leaf sets (maybe since a moment ago, before we hold them), so a graceful leave
    /// tells them too. Bounded (see [`Node::note_holder`]).
    pub(super) holders: FxHashMap<Id, (SocketAddr, Instant)>,
}

impl MaintState {
    pub(super) fn heap_bytes(&self) -> usize {
        self.probes.capacity() * (16 + core::mem::size_of::<Probe>() + 8)
            + self.holders.capacity() * (16 + 40)
    }
}

impl Node {
    /// A node named second-hand: probe it if it would improve a table.
    /// With `pns`, unknown nodes are probed even for filled routing-table cells (a closer one
    /// replaces the occupant: proximity neighbour selection).
    pub(super) fn candidate(&mut self, now: Instant, h: NodeHandle, from: Offered) {
        if h.id == self.me.id {
            return;
        }
        if self.maint.probes.contains_key(&h.id) {
            return;
        }
        // Lists do not bring back the dead, nor an address that stayed silent whatever id they
        // claim there; a node's own datagram may (if it answers).
        let own_datagram = matches!(from, Offered::Contact | Offered::RowAsker);
        if !own_datagram && (self.is_tombstoned(now, h.id) || self.guard.is_silent(now, h.addr)) {
            self.stats.probe_drops += u64::from(!self.is_tombstoned(now, h.id));
            return;
        }
        // A node we hold elsewhere (say in the routing table) may belong in the leaf set now
        // that a closer leaf is gone: probe it before taking it in.
        let leaf_gap = self.leaf.would_accept(h.id);
        if !leaf_gap && self.knows(h.id) {
            return;
        }
        // One id per address: a second id claimed at the address of a node we hold is not
        // even probed (one socket must not fill a leaf set with made-up ids).
        if self.address_taken(h) {
            self.stats.addr_conflicts += 1;
            return;
        }
        let pns = matches!(from, Offered::Row { pns: true } | Offered::RowAsker);
        if leaf_gap {
            // A would-be leaf named by a neighbour gets a leaf-set request, which announces us
            // (it learns of us as we learn of it, even if its answers are lost); to an unproven
            // address the request carries no list (see `send_probe`). A stranger that contacted
            // us knows us already and gets a ping. Before the join's root has answered, a
            // joiner only pings. A stranger's own datagram counts against the probe budget like
            // anything else.
            let kind = if self.may_announce() && !own_datagram {
                ProbeKind::LeafSet
            } else {
                ProbeKind::Ping
            };
            self.contact_or_listed_probe(now, h, kind, own_datagram, !own_datagram);
        } else if pns || self.rt.would_accept(h.id, UNMEASURED) {
            self.contact_or_listed_probe(now, h, ProbeKind::Ping, own_datagram, false);
        }
    }

    /// Probes a candidate (`force`: see `probe`). One whose own datagram made it a candidate
    /// is probed out of what it sent (QUIC's 3x its bytes and one datagram per datagram,
    /// retransmissions included), so a stranger's datagram buys at most that much.
    /// (`own_datagram`: its own datagram made it a candidate; such a probe also does not
    /// tombstone it if it stays silent: a newcomer looking for a nearby node asks rows but
    /// answers nobody yet.)
    fn contact_or_listed_probe(
        &mut self,
        now: Instant,
        h: NodeHandle,
        kind: ProbeKind,
        own_datagram: bool,
        force: bool,
    ) {
        // (A joiner's contacts are the nodes of its join path, which it must measure to join:
        // it probes them as it did before it had any credit rule.)
        // A row asker (an active node that asked us for a row: its table may be worth
        // measuring, see `on_row_request`) is probed like a named node, one exchange at a time,
        // and not while its address is silent; not charged, so proximity tables keep converging.
        let asker = own_datagram && self.maint.asking == Some(h.id);
        if asker && self.guard.is_silent(now, h.addr) {
            self.stats.probe_drops += 1;
            return;
        }
        if !own_datagram || asker || self.phase == Phase::Joining {
            self.probe(now, h, kind, force);
            if let Some(p) = self.maint.probes.get_mut(&h.id).filter(|_| own_datagram) {
                p.contacted = true;
            }
            return;
        }
        if !self.validated_addr(h.addr) && !self.guard.can_spend(h.addr, PROBE_BYTES) {
            self.stats.probe_drops += 1;
            return;
        }
        self.charged_probe(now, h, kind);
        if let Some(p) = self.maint.probes.get_mut(&h.id) {
            p.contacted = true;
        }
    }

    /// Starts a probe of `h` paid for by what `h`'s address sent us (see `Probe::charged`).
    fn charged_probe(&mut self, now: Instant, h: NodeHandle, kind: ProbeKind) {
        let fresh = !self.maint.probes.contains_key(&h.id);
        self.probe(now, h, kind, false);
        if let Some(p) = self.maint.probes.get_mut(&h.id).filter(|_| fresh) {
            p.charged = true;
            // Its first transmission has left already: book it.
            let _ = self.guard.spend(h.addr, PROBE_BYTES);
        }
    }

    /// Sends a probe to `h` (at most one outstanding per target). `force` ignores the probe cap
    /// for an address that has proved itself (leaf-set members, which correctness depends on:
    /// at most one probe per table entry). An address that has not gets one probe at a time
    /// whatever ids are claimed at it, and only within the cap (plus a leaf set's worth for
    /// would-be leaves): nothing a frame names bypasses it. (Lists do not even name an address
    /// that stayed silent recently: see `candidate`.)
    pub(super) fn probe(&mut self, now: Instant, h: NodeHandle, kind: ProbeKind, force: bool) {
        if self.maint.probes.contains_key(&h.id) {
            return;
        }
        if self.validated_addr(h.addr) {
            if !force && self.maint.probes.len() >= self.cfg.max_probes {
                self.stats.probe_drops += 1;
                return;
            }
        } else {
            let reserve = if self.leaf.would_accept(h.id) {
                self.cfg.leaf_set_size
            } else {
                0
            };
            if self.maint.probes.addr_busy(h.addr)
                || self.maint.probes.len() >= self.cfg.max_probes + reserve
            {
                self.stats.probe_drops += 1;
                return;
            }
        }
        let nonce = self.rng.next_u64();
        let deadline = now + self.rto(h.id, 0);
        // A node already in our tables gets the full benefit of the doubt; a stranger gets one
        // or two retransmissions (joins must not stall on the dead).
        let retries = if self.knows(h.id) {
            self.cfg.probe_retries
        } else if self.leaf.would_accept(h.id) {
            LEAF_CANDIDATE_RETRIES
        } else {
            CANDIDATE_RETRIES
        };
        self.maint.probes.insert(
            h.id,
            Probe {
                handle: h,
                kind,
                nonce,
                attempts: 1,
                retries: retries.min(self.cfg.probe_retries),
                sent_at: now,
                started: now,
                heard: false,
                rearmed: false,
                on_report: false,
                charged: false,
                contacted: false,
                deadline,
                deferred: None,
            },
        );
        self.timers.set(deadline, Timer::Probe(h.id));
        self.send_probe(now, h, kind, nonce);
    }

    fn send_probe(&mut self, now: Instant, h: NodeHandle, kind: ProbeKind, nonce: u64) {
        let charged = self.maint.probes.get(&h.id).is_some_and(|p| p.charged);
        if charged && !self.validated_addr(h.addr) && !self.guard.spend(h.addr, PROBE_BYTES) {
            self.stats.probe_drops += 1;
            return;
        }
        let msg = match kind {
            ProbeKind::Ping => Message::Ping {
                nonce,
                sent_at: now.as_micros(),
                active: self.phase == Phase::Active,
            },
            // Our leaf set goes only to an address that proved itself, or from a joiner to the
            // leaf set its join path named (its announcement: the receivers learn the joiner's
            // other neighbours, some maybe joining at the same moment). Any other named address
            // may be anyone's, and gets a request no larger than a ping.
            ProbeKind::LeafSet => {
                let full = Message::LeafSetRequest {
                    nonce,
                    leaf_set: self.leaf.members().copied().collect(),
                };
                // (To a stranger that sent us something, the list must also fit in what it
                // sent: three times its bytes.)
                let fits = !self.guard.has_ledger(h.addr)
                    || self.guard.can_spend(
                        h.addr,
                        crate::wire::HEADER_LEN + full.buffer_len() + crate::wire::TRAILER_LEN,
                    );
                if self.validated(h) || (self.phase == Phase::Joining && fits) {
                    full
                } else {
                    Message::LeafSetRequest {
                        nonce,
                        leaf_set: Vec::new(),
                    }
                }
            }
        };
        self.send(h.addr, &msg);
    }

    /// A datagram came from `from`: if we are probing it at that address, it is there.
    pub(super) fn probe_heard(&mut self, from: NodeHandle) {
        if let Some(p) = self.maint.probes.get_mut(&from.id) {
            if p.handle.addr == from.addr {
                p.heard = true;
            }
        }
    }

    pub(super) fn cancel_probe(&mut self, id: Id) {
        self.maint.probes.remove(&id);
    }

    pub(super) fn on_probe_timer(&mut self, now: Instant, at: Instant, id: Id) {
        let Some(p) = self.maint.probes.get(&id) else {
            return;
        };
        let (handle, kind, nonce) = (p.handle, p.kind, p.nonce);
        if p.attempts > p.retries && p.heard && !p.rearmed {
            // It is there: give the exchange one more round rather than declaring it failed.
            let deadline = now + self.rto(id, 1);
            if let Some(q) = self.maint.probes.get_mut(&id) {
                q.attempts = 1;
                q.rearmed = true;
                q.deadline = deadline;
                q.sent_at = now;
            }
            self.timers.set(deadline, Timer::Probe(id));
            self.send_probe(now, handle, kind, nonce);
            return;
        }
        if p.deadline != at {
            return;
        }
        if p.attempts > p.retries {
            let (started, on_report, contacted) = (p.started, p.on_report, p.contacted);
            self.maint.probes.remove(&id);
            // Heard from it meanwhile (say, its own challenge pings): alive, though this
            // exchange lost its datagrams. Not a failure; maintenance will ask again.
            let alive = self.peers.get(&id).is_some_and(|q| q.last_heard > started);
            if alive {
                self.join_check_complete(now);
            } else if self.knows(id) {
                self.peer_failed(now, id, !on_report);
            } else {
                // A candidate that never answered: keep stale lists from offering it again for
                // a little while (briefly: on a lossy path it may well be alive; it may also
                // prove itself sooner by contacting us).
                // A joiner keeps it short: its leaf set must be complete before it activates,
                // and the answers to its announcements name its neighbours again soon.
                let ttl = if self.phase == Phase::Joining {
                    CANDIDATE_TOMBSTONE_JOINING
                } else {
                    CANDIDATE_TOMBSTONE
                };
                if !contacted {
                    self.tombstone(now, id, ttl.min(self.cfg.tombstone_ttl));
                    // Its address stays unprobed as long, whatever id the next list claims
                    // there.
                    self.guard
                        .mark_silent(now, handle.addr, ttl.min(self.cfg.tombstone_ttl));
                }
                self.remove_peer_record(id);
                self.join_check_complete(now);
            }
            return;
        }
        let deadline = now + self.rto(id, p.attempts);
        if let Some(q) = self.maint.probes.get_mut(&id) {
            q.attempts += 1;
            q.deadline = deadline;
            q.sent_at = now;
        }
        self.timers.set(deadline, Timer::Probe(id));
        self.send_probe(now, handle, kind, nonce);
    }

    /// Resolves the probe of `from` if it answers it: the right nonce, from the address the
    /// probe went to. Returns the probe.
    fn answer_probe(&mut self, now: Instant, from: NodeHandle, nonce: u64) -> Option<Probe> {
        let p = self.maint.probes.get(&from.id)?;
        if p.nonce != nonce || p.handle.addr != from.addr {
            return None;
        }
        self.guard.mark_validated(now, from.addr);
        self.maint.probes.remove(&from.id)
    }

    /// `from` answered probe `p`: it is admitted (the tables that want it take it), and a
    /// leaf-set request it made while unproven gets its answer now.
    fn probe_answered(&mut self, now: Instant, from: NodeHandle, p: Probe, rtt: Option<u32>) {
        let was_leaf = self.leaf.contains(from.id);
        self.learn(now, from, Learned::Answered { rtt });
        if self.discovering() {
            self.discovery_measured(now, from, rtt);
        }
        // A new leaf proven by a ping, that did not ask us for our leaf set itself: exchange
        // leaf sets with it now, which announces us to it (leaf sets stay symmetric).
        if p.kind == ProbeKind::Ping
            && p.deferred.is_none()
            && !was_leaf
            && self.leaf.contains(from.id)
            && self.may_announce()
        {
            self.probe(now, from, ProbeKind::LeafSet, true);
        }
        if let Some(d) = p.deferred {
            if let Some(nonce) = d.nonce {
                self.send_leaf_set_reply(from, nonce);
            }
            for h in d.list {
                self.learn(now, h, Learned::Listed(Offered::LeafList));
            }
        }
        self.join_check_complete(now);
    }

    /// A pong answers our ping only with the right nonce; the RTT comes from our own record of
    /// when the answered transmission left (the echoed time only tells which one it was), so a
    /// peer cannot claim to be closer than it is. Unsolicited pongs are ignored.
    pub(super) fn on_pong(&mut self, now: Instant, from: NodeHandle, nonce: u64, sent_at: u64) {
        if self.validation_answered(now, from.addr, nonce) {
            return;
        }
        let Some(p) = self.answer_probe(now, from, nonce) else {
            self.stats.unsolicited += 1;
            self.refresh(now, from);
            return;
        };
        // An earlier transmission answered: alive, but no clean sample (Karn).
        let rtt = (sent_at == p.sent_at.as_micros()).then(|| rtt_us(now - p.sent_at));
        self.probe_answered(now, from, p, rtt);
    }

    /// A leaf-set request (an exchange, or a newcomer announcing itself). A validated requester
    /// gets our leaf set at once; a stranger is challenged with a ping first and answered when
    /// its pong comes back from the same address (so a forged source address gets one small
    /// ping, and nobody enters our tables by claiming to).
    pub(super) fn on_leaf_set_request(
        &mut self,
        now: Instant,
        from: NodeHandle,
        nonce: u64,
        mut list: Vec<NodeHandle>,
    ) {
        if self.validated(from) {
            self.refresh(now, from);
            self.send_leaf_set_reply(from, nonce);
            // It may belong in our leaf set now (a closer member left).
            self.learn(now, from, Learned::Contact);
            list.truncate(self.cfg.leaf_set_size);
            for h in list {
                self.learn(now, h, Learned::Listed(Offered::LeafList));
            }
            return;
        }
        if self.peers.contains_key(&from.id) {
            self.stats.addr_conflicts += 1;
            return;
        }
        list.truncate(self.cfg.leaf_set_size);
        let mut nonce = Some(nonce);
        match self.maint.probes.get(&from.id) {
            // We are probing it already, maybe with a leaf-set request that it holds back until
            // it has validated us: answer now (our answer proves our address to it; its answer
            // to our probe will prove its address to us). Both sides doing this at once is how
            // two nodes that learn of each other at the same moment meet.
            Some(p) if p.handle.addr == from.addr && p.kind == ProbeKind::LeafSet => {
                let ours = p.nonce;
                if let Some(n) = nonce.take() {
                    self.send_leaf_set_reply(from, n);
                }
                // Our own request may be held back by it (or lost): ask again now that it is
                // known to be there, so it can validate us in return.
                if let Some(q) = self.maint.probes.get_mut(&from.id) {
                    q.sent_at = now;
                }
                self.send_probe(now, from, ProbeKind::LeafSet, ours);
            }
            // Our challenge is out: its ping or the pong may have been lost, and the requester,
            // retrying on its own (shorter) timer, is still waiting. Ping again at once (one
            // small datagram per request: nothing to amplify).
            Some(p) if p.handle.addr == from.addr => {
                let nonce = p.nonce;
                if let Some(q) = self.maint.probes.get_mut(&from.id) {
                    q.sent_at = now;
                }
                self.send_probe(now, from, ProbeKind::Ping, nonce);
            }
            Some(_) => return,
            // (The challenge is not charged to the requester: its retransmissions, up to three
            // small pings per request, are what lets a joiner's announcement through loss.)
            None => self.probe(now, from, ProbeKind::Ping, false),
        }
        if let Some(p) = self.maint.probes.get_mut(&from.id) {
            p.deferred = Some(Box::new(Deferred { nonce, list }));
        }
    }

    fn send_leaf_set_reply(&mut self, to: NodeHandle, nonce: u64) {
        let leaf_set: Vec<NodeHandle> = self
            .leaf
            .members()
            .copied()
            .filter(|h| h.id != to.id)
            .collect();
        let msg = Message::LeafSetReply {
            nonce,
            active: self.phase == Phase::Active,
            // Taken in, or no room for it in our leaf set anyway (closer nodes fill that side:
            // its own view is missing them, and our list shows them).
            admitted: self.validated(to) || !self.leaf.would_accept(to.id),
            leaf_set,
        };
        self.send(to.addr, &msg);
    }

    pub(super) fn on_leaf_set_reply(
        &mut self,
        now: Instant,
        from: NodeHandle,
        nonce: u64,
        admitted: bool,
        list: &[NodeHandle],
    ) {
        // Only an answer to our own request counts (an unsolicited list could make us probe
        // anything on anyone's behalf).
        let Some(p) = self.answer_probe(now, from, nonce) else {
            self.stats.unsolicited += 1;
            return;
        };
        // A leaf set holds at most `leaf_set_size` members: read no more.
        for h in list.iter().take(self.cfg.leaf_set_size) {
            self.learn(now, *h, Learned::Listed(Offered::LeafList));
        }
        if self.phase == Phase::Joining && !admitted {
            // It answered before it had validated us (we met while probing each other), or it
            // has no room for us (its list will show us closer nodes): it proved its address,
            // but has not taken us in. Keep asking on the probe's own backed-off timer while
            // it stays in our leaf set; it never counts as a failure.
            self.learn(now, from, Learned::Answered { rtt: None });
            if !self.leaf.contains(from.id) {
                self.join_check_complete(now);
                return;
            }
            self.maint.probes.insert(
                from.id,
                Probe {
                    retries: p.retries + 1,
                    ..p
                },
            );
            return;
        }
        self.join_heard_leaf_set(from.id);
        // Karn: a retransmitted request's answer is ambiguous. A first answer from a node that
        // did not know us yet waited for its challenge too: no clean sample either.
        let clean = p.attempts == 1 && self.validated(from);
        let rtt = clean.then(|| rtt_us(now - p.sent_at));
        self.probe_answered(now, from, p, rtt);
    }

    pub(super) fn on_row_request(&mut self, now: Instant, from: NodeHandle, row: u8) {
        // A joining node's rows are not complete yet, and a newcomer looking for a nearby node
        // must not pick one still joining (see `discovery`): only active nodes answer.
        if self.phase != Phase::Active {
            return;
        }
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
        // (A would-be leaf was offered already by its datagram, as a contact.) Measured after
        // it has its answer: both are paid for out of what it sent (see `guard`).
        if !self.knows(from.id) && !self.leaf.would_accept(from.id) {
            self.maint.asking = Some(from.id);
            self.candidate(now, from, Offered::RowAsker);
            self.maint.asking = None;
        }
    }

    pub(super) fn on_row_reply(&mut self, now: Instant, from: NodeHandle, row: RowEntries) {
        if self.discovering() {
            self.discovery_row(now, from, row);
            return;
        }
        // We ask only nodes we hold: a row from anyone else is unsolicited.
        if !self.validated(from) {
            self.stats.unsolicited += 1;
            return;
        }
        // Fill empty cells; also measure a few unknown nodes for filled cells (proximity
        // neighbour selection): those whose cell holds the farthest occupant first, where a
        // closer node is likeliest and gains most. A closer one replaces the occupant.
        let cells = 1usize << self.cfg.b.bits();
        let mut pns: smallvec::SmallVec<[(u32, NodeHandle); 16]> = smallvec::SmallVec::new();
        for h in row.nodes.into_iter().take(cells) {
            if h.id == self.me.id || self.knows(h.id) {
                continue;
            }
            if self.rt.would_accept(h.id, UNMEASURED) {
                self.learn(now, h, Learned::Listed(Offered::Row { pns: false }));
                continue;
            }
            let held = self
                .rt
                .cell_of(h.id)
                .and_then(|(r, c)| self.rt.get(r, c))
                .map_or(0, |e| e.rtt_us);
            pns.push((held, h));
        }
        pns.sort_by_key(|&(held, h)| (core::cmp::Reverse(held), h.id));
        for (_, h) in pns.into_iter().take(PNS_PER_ROW) {
            self.learn(now, h, Learned::Listed(Offered::Row { pns: true }));
        }
    }

    /// A node says it leaves. Believed only from its own validated address (see
    /// [`Node::reported_gone`]); then its leaf set offers candidates for the gap.
    pub(super) fn on_leave(&mut self, now: Instant, from: NodeHandle, list: &[NodeHandle]) {
        if !self.reported_gone(now, from) {
            return;
        }
        self.tombstone(now, from.id, self.cfg.tombstone_ttl);
        self.remove_peer(now, from.id);
        self.routing_reroute_all(now, from.id);
        for h in list.iter().take(self.cfg.leaf_set_size) {
            self.learn(now, *h, Learned::Listed(Offered::LeafList));
        }
    }

    /// `from` probed us as a leaf-set member would (an active ping, a leaf-set request):
    /// remember it, so a graceful leave reaches it even if we do not hold it.
    pub(super) fn note_holder(&mut self, now: Instant, from: NodeHandle) {
        let cap = 4 * self.cfg.leaf_set_size;
        let holders = &mut self.maint.holders;
        if holders.len() >= cap && !holders.contains_key(&from.id) {
            let horizon = self.cfg.leaf_probe_period.saturating_mul(2 * FAR_FACTOR);
            holders.retain(|_, (_, at)| *at + horizon > now);
            if holders.len() >= cap {
                return;
            }
        }
        holders.insert(from.id, (from.addr, now));
    }

    /// Leaves the overlay gracefully: tells the leaf set, and every node that recently probed
    /// us as its leaf (it may hold us though we do not hold it: a race with our departure),
    /// then stops (no more timers, inputs ignored). Pending messages are abandoned.
    pub fn leave(&mut self, now: Instant) {
        if self.phase == Phase::Stopped {
            return;
        }
        let members: Vec<NodeHandle> = self.leaf.members().copied().collect();
        let horizon = self.cfg.leaf_probe_period.saturating_mul(2 * FAR_FACTOR);
        let mut told: Vec<NodeHandle> = members.clone();
        let mut holders: Vec<NodeHandle> = self
            .maint
            .holders
            .iter()
            .filter(|(id, (_, at))| *at + horizon > now && !self.leaf.contains(**id))
            .map(|(id, (addr, _))| NodeHandle::new(*id, *addr))
            .collect();
        holders.sort_by_key(|h| h.id);
        told.extend(holders);
        for h in &told {
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
        if self.maint.seen_version == self.maint.leaf_version {
            self.maint.quiet_ticks = self.maint.quiet_ticks.saturating_add(1);
        } else {
            self.maint.seen_version = self.maint.leaf_version;
            self.maint.quiet_ticks = 0;
        }
        let far = if self.maint.quiet_ticks >= QUIET_TICKS {
            FAR_FACTOR_QUIET
        } else {
            FAR_FACTOR
        };
        let far_period = period.saturating_mul(far);
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
            self.exchange_with_adjacent(now);
            let base = self.cfg.leaf_exchange_every;
            self.maint.exchange_every = if self.maint.leaf_changed {
                base
            } else {
                (self.maint.exchange_every * 2).min(base * 8)
            };
            self.maint.leaf_changed = false;
        }
        let horizon = period.saturating_mul(2 * FAR_FACTOR);
        self.maint.holders.retain(|_, (_, at)| *at + horizon > now);
        self.guard_tick(now);
        self.compact();
        let jitter = Duration(self.rng.below(period.as_micros() / 10 + 1));
        self.maint.leaf_tick_at = now + period + jitter;
        self.timers
            .set(self.maint.leaf_tick_at, Timer::LeafMaintenance);
    }

    /// Exchanges leaf sets with the two adjacent members (each side's nearest).
    pub(super) fn exchange_with_adjacent(&mut self, now: Instant) {
        if self.phase != Phase::Active {
            return;
        }
        let adjacent = [self.leaf.cw_side().first(), self.leaf.ccw_side().first()];
        for h in adjacent.into_iter().flatten().copied().collect::<Vec<_>>() {
            self.maint.probes.remove(&h.id);
            self.probe(now, h, ProbeKind::LeafSet, true);
        }
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
        self.ask_row_of(row, row, skip);
    }

    /// Asks a random entry of our row `of` (other than `skip`) for its row `want` (`want <=
    /// of`: the entries of row `of` share our first `of` digits, so their row `want` is made of
    /// candidates for ours). Whether anyone was asked.
    fn ask_row_of(&mut self, of: usize, want: usize, skip: Option<Id>) -> bool {
        let entries: smallvec::SmallVec<[NodeHandle; 16]> = self
            .rt
            .row(of)
            .map(|e| e.node)
            .filter(|h| Some(h.id) != skip)
            .collect();
        if entries.is_empty() {
            return false;
        }
        let h = entries[self.rng.below(entries.len() as u64) as usize];
        self.send(h.addr, &Message::RowRequest { row: want as u8 });
        true
    }

    /// A routing-table cell of `row` lost its occupant: ask another node of the row for its
    /// row `row` (it shares the prefix, so its row holds candidates for the cell); with the row
    /// empty, ask nodes of the next rows, which share a longer prefix and so the same row.
    pub(super) fn repair_rt_row(&mut self, row: usize) {
        for r in row..self.rt.rows().min(row + 3) {
            if self.ask_row_of(r, row, None) {
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
                .min_by(|a, b| me.cmp_closeness(a.id, b.id));
            if let Some(h) = closest {
                self.probe(now, h, ProbeKind::LeafSet, true);
            }
        }
    }
}
