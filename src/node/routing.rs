//! Routing of application messages: the Common API `route` / `forward` / `deliver`, hop-by-hop
//! acknowledgements with RTT-based retransmission, rerouting around failed hops, duplicate
//! suppression, and the KBR queries.

use core::fmt;
use std::collections::VecDeque;

use bytes::Bytes;

use super::timers::{SeenFilter, Timer};
use super::{Event, Node, Phase};
use crate::id::{Id, NodeHandle};
use crate::router::{self, NextHop};
use crate::routing_table::UNMEASURED;
use crate::time::{Duration, Instant};
use crate::util::FxHashMap;
use crate::wire::{undeliverable_reason, Message, RoutedFlags};

/// How many recent hop transmissions / deliveries are remembered for duplicate suppression.
const SEEN_CAP: usize = 4096;
/// Unanswered transmissions of one hop after which its target is suspected and avoided.
const SUSPECT_AFTER: u32 = 1;
/// Messages held while the node is joining (it may be their root but may not deliver yet).
const HELD_CAP: usize = 256;

/// Why `route` refused a message (from [`Node::route`] and the runtime's `Handle::route`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The payload is larger than the configured `max_payload`.
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The node has not joined an overlay yet.
    NotActive,
    /// Neither a key nor a hint was given.
    NoDestination,
    /// Too many messages await acknowledgement (or the runtime's command queue is full); try
    /// again later.
    Overloaded,
    /// The node was removed from its runtime, or the runtime stopped (a sans-IO node that has
    /// left reports [`RouteError::NotActive`]).
    Stopped,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the limit of {max} bytes")
            }
            RouteError::NotActive => f.write_str("the node has not joined an overlay yet"),
            RouteError::NoDestination => f.write_str("route needs a key, a hint, or both"),
            RouteError::Overloaded => {
                f.write_str("too many messages queued or awaiting acknowledgement")
            }
            RouteError::Stopped => f.write_str("the node has left, or its runtime stopped"),
        }
    }
}

impl std::error::Error for RouteError {}

/// The message at hand in a `forward` upcall. The application may change `key`, `payload` and
/// `next_hop` (`None` = deliver at this node), or return [`ForwardAction::Drop`].
#[derive(Debug)]
pub struct ForwardCtx<'a> {
    /// The key it is routed to.
    pub key: Id,
    /// Its end-to-end id.
    pub msg_id: u64,
    /// The node that sent it.
    pub source: NodeHandle,
    /// Hops taken so far.
    pub hops: u8,
    /// The application's bytes.
    pub payload: &'a mut Bytes,
    /// Where the node will send it; `None` means this node is its root and delivers it.
    pub next_hop: Option<NodeHandle>,
}

/// The application's decision in `forward`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardAction {
    /// Go on (to `ctx.next_hop`, possibly changed).
    Forward,
    /// Drop the message here silently.
    Drop,
}

/// The Common API `forward` upcall, called at every node a message passes (its source and its
/// root included) before the node acts on its routing decision. Must not block.
pub trait Forwarder {
    /// Inspect or change the message and its next hop.
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction;
}

/// A routed message as the node handles it.
#[derive(Clone, Debug)]
pub(super) struct Routed {
    pub(super) msg_id: u64,
    pub(super) key: Id,
    pub(super) source: NodeHandle,
    pub(super) hops: u8,
    pub(super) flags: RoutedFlags,
    pub(super) payload: Bytes,
}

/// A message this node originated, until the root acknowledges it.
#[derive(Debug)]
struct Sent {
    msg: Routed,
    hint: Option<NodeHandle>,
    attempts: u8,
    /// When the first attempt left (for the end-to-end RTT sample).
    first_sent: Instant,
    deadline: Instant,
}

/// The smallest end-to-end timeout, however fast the overlay answers (a root's acknowledgement
/// travels back directly, so the sample is path latency plus one direct trip).
const E2E_RTO_MIN: Duration = Duration::from_millis(250);

/// A hop transmission awaiting its acknowledgement. It keeps the message, not its encoded
/// frame: the payload is shared (one copy for the source's end-to-end record and every hop it
/// waits on) and a retransmission encodes it again.
#[derive(Debug)]
struct Pending {
    msg: Routed,
    dst: NodeHandle,
    attempts: u32,
    first_sent: Instant,
    deadline: Instant,
}

/// Bytes a buffered routed message is counted for beyond its payload (the record, the map slot,
/// its timer).
const RECORD_BYTES: usize = 160;

/// What a buffered value costs, in bytes.
trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for Pending {
    fn weight(&self) -> usize {
        RECORD_BYTES + self.msg.payload.len()
    }
}

impl Weigh for Sent {
    fn weight(&self) -> usize {
        RECORD_BYTES + self.msg.payload.len()
    }
}

impl Weigh for Routed {
    fn weight(&self) -> usize {
        RECORD_BYTES + self.payload.len()
    }
}

/// A map that keeps the total weight of its values (so byte budgets are checked in O(1)).
/// Values are changed in place only in ways that keep their weight.
#[derive(Debug)]
struct Weighed<K, V> {
    map: FxHashMap<K, V>,
    bytes: usize,
}

impl<K: Eq + core::hash::Hash, V: Weigh> Weighed<K, V> {
    fn new() -> Self {
        Weighed {
            map: FxHashMap::default(),
            bytes: 0,
        }
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k)
    }
    fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k)
    }
    fn contains_key(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }
    fn insert(&mut self, k: K, v: V) {
        self.bytes += v.weight();
        if let Some(old) = self.map.insert(k, v) {
            self.bytes -= old.weight();
        }
    }
    fn remove(&mut self, k: &K) -> Option<V> {
        let v = self.map.remove(k)?;
        self.bytes -= v.weight();
        Some(v)
    }
    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }
    fn capacity(&self) -> usize {
        self.map.capacity()
    }
    fn shrink(&mut self) {
        if self.map.capacity() > 4 * self.map.len() + 16 {
            self.map.shrink_to(2 * self.map.len());
        }
    }
}

/// Routing bookkeeping of one node.
#[derive(Debug)]
pub(super) struct RoutingState {
    pending: Weighed<(u64, u8), Pending>,
    /// Messages this node sent, awaiting the root's end-to-end acknowledgement.
    sent: Weighed<u64, Sent>,
    seen: SeenFilter,
    delivered: SeenFilter,
    held: VecDeque<Routed>,
    /// Bytes of `held` (see [`Weigh`]).
    held_bytes: usize,
    /// Smoothed end-to-end RTT of this node's messages (send to the root's acknowledgement),
    /// µs; `UNMEASURED` before the first sample.
    e2e_srtt: u32,
    /// Its variation, µs.
    e2e_rttvar: u32,
}

impl RoutingState {
    pub(super) fn new() -> RoutingState {
        RoutingState {
            pending: Weighed::new(),
            sent: Weighed::new(),
            seen: SeenFilter::new(SEEN_CAP),
            delivered: SeenFilter::new(SEEN_CAP),
            held: VecDeque::new(),
            held_bytes: 0,
            e2e_srtt: UNMEASURED,
            e2e_rttvar: 0,
        }
    }

    /// An end-to-end RTT sample, µs (TCP's estimator).
    fn e2e_sample(&mut self, rtt: u32) {
        super::smooth_rtt(&mut self.e2e_srtt, &mut self.e2e_rttvar, rtt);
    }

    /// The end-to-end timeout of a first attempt: from the measured RTTs once there are any
    /// (a message lost with a crashed node is sent again after about one round trip, not after
    /// seconds), within `E2E_RTO_MIN..=max`; `max` (the configured delivery timeout) before.
    fn e2e_rto(&self, max: Duration) -> Duration {
        if self.e2e_srtt == UNMEASURED {
            return max;
        }
        let rto = Duration(u64::from(self.e2e_srtt) + 4 * u64::from(self.e2e_rttvar));
        rto.max(E2E_RTO_MIN).min(max)
    }

    /// Bytes of routed messages this node buffers: hops awaiting acknowledgement, its own
    /// messages awaiting the root's, and messages held while joining.
    pub(super) fn buffered_bytes(&self) -> usize {
        self.pending.bytes + self.sent.bytes + self.held_bytes
    }

    pub(super) fn shrink(&mut self) {
        self.pending.shrink();
        self.sent.shrink();
        self.seen.shrink();
        self.delivered.shrink();
        if self.held.is_empty() {
            self.held.shrink_to(0);
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        // Payloads are counted once each (a source's record and its first hop share one).
        self.pending.capacity() * (16 + core::mem::size_of::<Pending>())
            + self.sent.capacity() * (8 + core::mem::size_of::<Sent>())
            + self.pending.bytes.max(self.sent.bytes)
            + self.held_bytes
            + self.seen.heap_bytes()
            + self.delivered.heap_bytes()
            + self.held.capacity() * 96
    }
}

/// The duplicate-suppression key of one hop transmission: the message, its hop count and the
/// source's attempt (an end-to-end retry is a new transmission, not a duplicate).
fn hop_key(msg_id: u64, hops: u8, attempt: u8) -> u64 {
    msg_id
        ^ u64::from(hops).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(attempt).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

impl Node {
    /// Routes `payload` toward the root of `key` (the Common API `route`). With a `hint`, the
    /// first hop goes to that node; with a hint and no key, the message is a direct send that is
    /// delivered at the hint. Returns the message id (as in [`Event::Delivered`] and
    /// [`Event::Undeliverable`]).
    ///
    /// # Errors
    /// See [`RouteError`].
    pub fn route(
        &mut self,
        now: Instant,
        key: Option<Id>,
        payload: impl Into<Bytes>,
        hint: Option<NodeHandle>,
    ) -> Result<u64, RouteError> {
        let msg_id = self.rng.next_u64();
        self.route_with_id(now, msg_id, key, payload, hint)
    }

    /// [`Node::route`] with a message id chosen by the caller (a driver that must hand the id
    /// back before the node runs, like the runtime's `Handle::route`). Ids must be unique among
    /// the overlay's messages in flight: the root suppresses a repeated id as a duplicate, so
    /// draw them at random (or from a random-seeded bijection).
    ///
    /// # Errors
    /// See [`RouteError`].
    pub fn route_with_id(
        &mut self,
        now: Instant,
        msg_id: u64,
        key: Option<Id>,
        payload: impl Into<Bytes>,
        hint: Option<NodeHandle>,
    ) -> Result<u64, RouteError> {
        let payload = payload.into();
        if payload.len() > self.cfg.max_payload {
            return Err(RouteError::PayloadTooLarge {
                len: payload.len(),
                max: self.cfg.max_payload,
            });
        }
        if self.phase != Phase::Active {
            return Err(RouteError::NotActive);
        }
        if self.routing.pending.len() >= self.cfg.max_pending
            || self.routing.sent.len() >= self.cfg.max_pending
            || !self.has_room(2 * (RECORD_BYTES + payload.len()))
        {
            return Err(RouteError::Overloaded);
        }
        let (key, flags) = match (key, hint) {
            (Some(k), _) => (k, RoutedFlags::default()),
            (None, Some(h)) => (h.id, RoutedFlags(RoutedFlags::DIRECT)),
            (None, None) => return Err(RouteError::NoDestination),
        };
        let msg = Routed {
            msg_id,
            key,
            source: self.me,
            hops: 0,
            flags,
            payload,
        };
        let deadline = now + self.routing.e2e_rto(self.cfg.delivery_timeout);
        self.routing.sent.insert(
            msg_id,
            Sent {
                msg: msg.clone(),
                hint,
                attempts: 1,
                first_sent: now,
                deadline,
            },
        );
        self.timers.set(deadline, Timer::Delivery(msg_id));
        self.send_attempt(now, msg, hint);
        Ok(msg_id)
    }

    /// One end-to-end attempt of a message this node originates.
    fn send_attempt(&mut self, now: Instant, msg: Routed, hint: Option<NodeHandle>) {
        match hint {
            Some(h) if h.id != self.me.id => self.forward_to(now, h, msg),
            Some(_) if msg.flags.direct() => self.deliver(now, msg),
            _ => self.route_step(now, msg),
        }
    }

    /// The root acknowledged a message we sent.
    pub(super) fn on_delivery_ack(&mut self, now: Instant, msg_id: u64) {
        let Some(rec) = self.routing.sent.remove(&msg_id) else {
            self.stats.unsolicited += 1;
            return;
        };
        {
            // Karn: only a message sent once gives an unambiguous sample.
            if rec.attempts == 1 {
                let rtt = (now - rec.first_sent)
                    .as_micros()
                    .min(u64::from(u32::MAX - 1));
                self.routing.e2e_sample(rtt as u32);
            }
        }
    }

    /// A node on the way reports a message we sent as undeliverable.
    pub(super) fn on_undeliverable(&mut self, msg_id: u64, key: Id, reason: u8) {
        // Only for messages still awaited: a late report after a delivery is stale.
        if self.routing.sent.remove(&msg_id).is_some() {
            self.events.push_back(Event::Undeliverable {
                msg_id,
                key,
                reason,
            });
        } else {
            self.stats.unsolicited += 1;
        }
    }

    /// No end-to-end acknowledgement yet: send the message again (a fresh path; the root
    /// suppresses a second delivery), or give up and tell the application.
    pub(super) fn on_delivery_timer(&mut self, now: Instant, at: Instant, msg_id: u64) {
        let limit = self.cfg.delivery_attempts;
        let Some(rec) = self.routing.sent.get_mut(&msg_id) else {
            return;
        };
        if rec.deadline != at {
            return;
        }
        if rec.attempts >= limit || self.phase != Phase::Active {
            let key = rec.msg.key;
            self.routing.sent.remove(&msg_id);
            self.events.push_back(Event::Undeliverable {
                msg_id,
                key,
                reason: undeliverable_reason::LOST,
            });
            return;
        }
        rec.msg.flags = rec.msg.flags.with_attempt(rec.attempts);
        rec.attempts += 1;
        // The first retry comes after about one measured round trip (the message most likely
        // died with a crashed holder); the later ones back off from the configured timeout, so
        // the attempts still span the seconds a failure takes to be detected and repaired.
        rec.deadline = now
            + self
                .cfg
                .delivery_timeout
                .saturating_mul(1 << (rec.attempts - 1));
        let (msg, hint, deadline) = (rec.msg.clone(), rec.hint, rec.deadline);
        self.timers.set(deadline, Timer::Delivery(msg_id));
        self.stats.retries += 1;
        self.send_attempt(now, msg, hint);
    }

    pub(super) fn on_routed(&mut self, now: Instant, from: NodeHandle, msg: Routed) {
        if self.phase == Phase::Stopped {
            return;
        }
        let (msg_id, hops, flags) = (msg.msg_id, msg.hops, msg.flags);
        self.send(from.addr, &Message::Ack { msg_id, hops });
        let expires = now
            + self
                .cfg
                .rto_max
                .saturating_mul(u64::from(self.cfg.max_retries) + 2);
        if !self
            .routing
            .seen
            .insert(now, hop_key(msg_id, hops, flags.attempt()), expires)
        {
            self.stats.duplicates += 1;
            return;
        }
        // The limits hold on every path, direct sends included: a frame is checked here, not
        // trusted to have been checked by its sender.
        // Its source hears of it only when it came from a peer we hold (a frame breaking the
        // limits from anywhere else is forged or broken, and a report to the source it names
        // would be a second datagram to a stranger for one received).
        let report = self.validated_addr(from.addr);
        if msg.payload.len() > self.cfg.max_payload {
            self.stats.limit_drops += 1;
            if report {
                self.report_undeliverable(now, &msg, undeliverable_reason::DROPPED);
            }
            return;
        }
        if msg.hops >= self.cfg.max_hops {
            self.stats.limit_drops += 1;
            if report {
                self.report_undeliverable(now, &msg, undeliverable_reason::HOP_LIMIT);
            }
            return;
        }
        if flags.direct() {
            self.deliver(now, msg);
        } else {
            self.route_step(now, msg);
        }
    }

    /// Where a message for `key` goes from here: `None` = this node is the root.
    /// Leaf-set decisions use every live leaf (consistency needs the true closest); routing-table
    /// hops avoid suspected nodes.
    pub(super) fn decide(&self, key: Id) -> Option<NodeHandle> {
        if self.leaf.covers(key) {
            return self.leaf.closest(key, |_| true);
        }
        let peers = &self.peers;
        match router::next_hop(key, &self.leaf, &self.rt, |h| {
            !peers.get(&h.id).is_some_and(|p| p.suspect)
        }) {
            NextHop::Deliver => None,
            NextHop::Forward(h) => Some(h),
        }
    }

    /// One routing decision at this node: forward upcall, then deliver, hold or forward.
    fn route_step(&mut self, now: Instant, mut msg: Routed) {
        if msg.hops >= self.cfg.max_hops {
            self.report_undeliverable(now, &msg, undeliverable_reason::HOP_LIMIT);
            return;
        }
        let mut next = self.decide(msg.key);
        if let Some(f) = self.forwarder.as_mut() {
            let mut ctx = ForwardCtx {
                key: msg.key,
                msg_id: msg.msg_id,
                source: msg.source,
                hops: msg.hops,
                payload: &mut msg.payload,
                next_hop: next,
            };
            let action = f.forward(&mut ctx);
            msg.key = ctx.key;
            next = ctx.next_hop.filter(|h| h.id != self.me.id);
            if action == ForwardAction::Drop || msg.payload.len() > self.cfg.max_payload {
                // The source is told, so it stops waiting for a delivery (and retrying).
                self.report_undeliverable(now, &msg, undeliverable_reason::DROPPED);
                return;
            }
        }
        match next {
            Some(h) => self.forward_to(now, h, msg),
            None if self.phase == Phase::Active => self.deliver(now, msg),
            None => self.hold(now, msg),
        }
    }

    fn hold(&mut self, now: Instant, msg: Routed) {
        if self.routing.held.len() >= HELD_CAP || !self.has_room(msg.weight()) {
            self.stats.overload_drops += 1;
            self.report_undeliverable(now, &msg, undeliverable_reason::OVERLOAD);
            return;
        }
        self.routing.held_bytes += msg.weight();
        self.routing.held.push_back(msg);
    }

    /// Whether `bytes` more fit the node's buffer budget (`Config::max_buffer_bytes`: routed
    /// messages buffered plus datagrams queued for sending).
    pub(super) fn has_room(&self, bytes: usize) -> bool {
        self.routing.buffered_bytes() + self.outbox_bytes + bytes <= self.cfg.max_buffer_bytes
    }

    /// Routes the messages held while joining (called on activation).
    pub(super) fn flush_held(&mut self, now: Instant) {
        let held = core::mem::take(&mut self.routing.held);
        self.routing.held_bytes = 0;
        for msg in held {
            self.route_step(now, msg);
        }
    }

    /// Reports every held message as undeliverable (the join failed).
    pub(super) fn fail_held(&mut self, now: Instant) {
        let held = core::mem::take(&mut self.routing.held);
        self.routing.held_bytes = 0;
        for msg in held {
            self.report_undeliverable(now, &msg, undeliverable_reason::UNREACHABLE);
        }
    }

    fn deliver(&mut self, now: Instant, msg: Routed) {
        // Acknowledge end to end every copy that arrives: an earlier acknowledgement may have
        // been lost.
        if msg.source.id == self.me.id {
            self.routing.sent.remove(&msg.msg_id);
        } else {
            let ack = Message::DeliveryAck { msg_id: msg.msg_id };
            self.send(msg.source.addr, &ack);
        }
        let expires = now
            + self
                .cfg
                .rto_max
                .saturating_mul(u64::from(self.cfg.max_retries) + 2);
        if !self.routing.delivered.insert(now, msg.msg_id, expires) {
            self.stats.duplicates += 1;
            return;
        }
        self.stats.delivered += 1;
        self.events.push_back(Event::Delivered {
            key: msg.key,
            msg_id: msg.msg_id,
            source: msg.source,
            hops: msg.hops,
            payload: msg.payload,
        });
    }

    fn report_undeliverable(&mut self, now: Instant, msg: &Routed, reason: u8) {
        let _ = now;
        if msg.source.id == self.me.id {
            self.on_undeliverable(msg.msg_id, msg.key, reason);
        } else {
            let m = Message::Undeliverable {
                msg_id: msg.msg_id,
                key: msg.key,
                reason,
            };
            self.send(msg.source.addr, &m);
        }
    }

    /// Sends `msg` one hop to `to` and waits for the acknowledgement.
    fn forward_to(&mut self, now: Instant, to: NodeHandle, mut msg: Routed) {
        // A message of our own is already counted in `sent` (the hop shares its payload).
        let own = msg.source.id == self.me.id && self.routing.sent.contains_key(&msg.msg_id);
        let extra = if own { 0 } else { msg.weight() };
        if self.routing.pending.len() >= self.cfg.max_pending || !self.has_room(extra) {
            self.stats.overload_drops += 1;
            self.report_undeliverable(now, &msg, undeliverable_reason::OVERLOAD);
            return;
        }
        msg.hops = msg.hops.saturating_add(1);
        self.send_routed(to.addr, &msg);
        if msg.source.id != self.me.id {
            self.stats.forwarded += 1;
        }
        let deadline = now + self.rto(to.id, 0);
        let key = (msg.msg_id, msg.hops);
        self.timers.set(deadline, Timer::Retransmit(key.0, key.1));
        self.routing.pending.insert(
            key,
            Pending {
                msg,
                dst: to,
                attempts: 1,
                first_sent: now,
                deadline,
            },
        );
    }

    pub(super) fn on_ack(&mut self, now: Instant, from: NodeHandle, msg_id: u64, hops: u8) {
        let k = (msg_id, hops);
        match self.routing.pending.get(&k) {
            Some(p) if p.dst.id == from.id => {}
            _ => {
                self.stats.unsolicited += 1;
                return;
            }
        }
        let Some(p) = self.routing.pending.remove(&k) else {
            return;
        };
        if p.attempts == 1 {
            // Karn: only unambiguous samples.
            let rtt = (now - p.first_sent)
                .as_micros()
                .min(u64::from(u32::MAX - 1)) as u32;
            self.rtt_sample(from.id, rtt);
        }
    }

    /// Encodes `msg` (one hop transmission) into a pooled buffer and queues it for `dst`.
    fn send_routed(&mut self, dst: core::net::SocketAddr, msg: &Routed) {
        let wire_msg = Message::Routed {
            msg_id: msg.msg_id,
            key: msg.key,
            source: msg.source,
            hops: msg.hops,
            flags: msg.flags,
            payload: msg.payload.clone(),
        };
        self.send(dst, &wire_msg);
    }

    pub(super) fn on_retransmit_timer(&mut self, now: Instant, at: Instant, msg_id: u64, hops: u8) {
        let k = (msg_id, hops);
        let Some(p) = self.routing.pending.get(&k) else {
            return;
        };
        if p.deadline != at {
            return;
        }
        let (dst, attempts) = (p.dst, p.attempts);
        if attempts > self.cfg.max_retries {
            self.peer_failed(now, dst.id, true);
            return;
        }
        if attempts >= SUSPECT_AFTER {
            // Two transmissions unanswered: suspect the hop, probe it, and route around it if
            // the tables offer another way (the probe decides whether it is really gone).
            if let Some(peer) = self.peers.get_mut(&dst.id) {
                peer.suspect = true;
            }
            self.probe(now, dst, super::maintenance::ProbeKind::Ping, true);
            if self.reroute_around(now, k, dst) {
                return;
            }
        }
        let rto = self.rto(dst.id, attempts);
        let Some(p) = self.routing.pending.get_mut(&k) else {
            return;
        };
        p.attempts += 1;
        p.deadline = now + rto;
        let msg = p.msg.clone();
        self.send_routed(dst.addr, &msg);
        self.stats.retransmits += 1;
        self.timers.set(now + rto, Timer::Retransmit(msg_id, hops));
    }

    /// Sends the message pending at `k` another way when the tables (suspects excluded) offer a
    /// different next hop than `dst`. Leaf-set decisions never exclude a suspect (the root must
    /// be the true closest node), and a message is never delivered here for lack of a route:
    /// it then keeps waiting on `dst`.
    fn reroute_around(&mut self, now: Instant, k: (u64, u8), dst: NodeHandle) -> bool {
        let Some(p) = self.routing.pending.get(&k) else {
            return false;
        };
        if p.msg.flags.direct() {
            return false;
        }
        match self.decide(p.msg.key) {
            Some(alt) if alt.id != dst.id => {}
            _ => return false,
        }
        let Some(p) = self.routing.pending.remove(&k) else {
            return false;
        };
        let mut msg = p.msg;
        msg.hops = msg.hops.saturating_sub(1);
        self.stats.reroutes += 1;
        self.route_step(now, msg);
        true
    }

    /// Reroutes every message waiting on `failed` (which has just been removed from the tables).
    pub(super) fn routing_reroute_all(&mut self, now: Instant, failed: Id) {
        let keys: Vec<(u64, u8)> = self
            .routing
            .pending
            .iter()
            .filter(|(_, p)| p.dst.id == failed)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            let Some(p) = self.routing.pending.remove(&k) else {
                continue;
            };
            let mut msg = p.msg;
            msg.hops = msg.hops.saturating_sub(1);
            if msg.flags.direct() || self.phase == Phase::Stopped {
                self.report_undeliverable(now, &msg, undeliverable_reason::UNREACHABLE);
            } else {
                self.route_step(now, msg);
            }
        }
    }

    /// Messages awaiting a hop acknowledgement.
    pub fn pending_len(&self) -> usize {
        self.routing.pending.len()
    }

    // ----- KBR queries -----

    /// Up to `num` next-hop candidates toward `key`, best first (the Common API
    /// `local_lookup`). With `safe`, only leaf-set members are offered (they are probed most
    /// often). Empty when this node is the key's root.
    pub fn local_lookup(&self, key: Id, num: usize, safe: bool) -> Vec<NodeHandle> {
        let mut out = Vec::new();
        if safe {
            let mut all: Vec<NodeHandle> = self.leaf.members().copied().collect();
            all.retain(|h| key.closer_to(h.id, self.me.id));
            all.sort_by(|a, b| key.cmp_closeness(a.id, b.id));
            all.truncate(num);
            return all;
        }
        router::local_lookup(key, num, &self.leaf, &self.rt, &mut out);
        out
    }

    /// Up to `num` leaf-set members, nearest first alternating sides (the Common API
    /// `neighborSet`).
    pub fn neighbor_set(&self, num: usize) -> Vec<NodeHandle> {
        let (cw, ccw) = (self.leaf.cw_side(), self.leaf.ccw_side());
        let mut out: Vec<NodeHandle> = Vec::with_capacity(num.min(cw.len() + ccw.len()));
        for i in 0..cw.len().max(ccw.len()) {
            for side in [cw, ccw] {
                if let Some(h) = side.get(i) {
                    if out.len() < num && !out.iter().any(|o| o.id == h.id) {
                        out.push(*h);
                    }
                }
            }
        }
        out
    }

    /// The nodes that would become root of `key` if closer ones failed, closest first, at most
    /// `max_rank + 1` and at most `L/2 + 1` (the Common API `replicaSet`). This node is included
    /// when it is among them. Meaningful when the key is in the leaf set's range.
    pub fn replica_set(&self, key: Id, max_rank: usize) -> Vec<NodeHandle> {
        let k = (max_rank + 1).min(self.leaf.half() + 1);
        let mut out = Vec::new();
        self.leaf.replica_set(key, self.me, k, &mut out);
        out
    }

    /// The arc `[lo, hi]` of keys for which `node` is among the `rank + 1` closest (the Common
    /// API `range`), or `None` when it cannot be determined here.
    pub fn range(&self, node: Id, rank: usize) -> Option<(Id, Id)> {
        self.leaf.range(node, rank)
    }

    /// When the next retransmission timer of any pending message is due (for tests).
    pub fn rto_for(&self, id: Id) -> Duration {
        self.rto(id, 0)
    }
}
