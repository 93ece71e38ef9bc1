//! The sans-IO Pastry node: join, routing with hop-by-hop acknowledgements, maintenance, repair.
//!
//! # The run-loop contract
//!
//! A [`Node`] never touches a socket, a clock or the OS. Its driver (the runtime, the simulator,
//! a test, or a C host through the FFI) does this, in this order, forever:
//!
//! 1. feed one input: [`Node::handle_datagram`] for a received datagram,
//!    [`Node::handle_timeout`] when the deadline from step 4 has passed, or an application call
//!    ([`Node::route`], [`Node::join`], [`Node::leave`], …), each with the current time `now`;
//! 2. drain [`Node::poll_transmit`] until it returns `None`, sending each datagram;
//! 3. drain [`Node::poll_event`] until it returns `None`, handing each event to the application;
//! 4. ask [`Node::poll_timeout`] for the next deadline and wake up then at the latest.
//!
//! The node is `&mut self` throughout, with no `Rc`, `Mutex` or channel: it has one owner, the
//! thread driving it, and is `Send` so that owner can be any thread.
//!
//! ```
//! use pastry::node::{Config, Node, Event};
//! use pastry::Instant;
//!
//! let addr = "127.0.0.1:4000".parse().unwrap();
//! let mut node = Node::new(Config::default(), addr).unwrap();
//! node.start_alone(Instant::ZERO); // the first node of a new overlay
//! let key = node.id();
//! node.route(Instant::ZERO, Some(key), b"hello".as_slice(), None).unwrap();
//! let mut buf = Vec::new();
//! while let Some(_dst) = node.poll_transmit(&mut buf) { /* send buf to _dst */ }
//! assert_eq!(node.poll_event(), Some(Event::Joined));
//! match node.poll_event() {
//!     Some(Event::Delivered { payload, .. }) => assert_eq!(&payload[..], b"hello"),
//!     other => panic!("{other:?}"),
//! }
//! let _wake_at = node.poll_timeout();
//! ```

mod config;
mod discovery;
mod guard;
mod join;
pub use join::JoinError;
mod maintenance;
mod membership;
mod routing;
mod timers;

use core::net::SocketAddr;
use std::collections::VecDeque;

use bytes::Bytes;

pub use config::{
    Config, ConfigError, DEFAULT_MAX_BUFFER_BYTES, MAX_PAYLOAD_LIMIT, MIN_BUFFER_BYTES,
};
pub use guard::{AMPLIFICATION, VALIDATION_PING};
pub use routing::{ForwardAction, ForwardCtx, Forwarder, RouteError};

use crate::id::{Id, NodeHandle};
use crate::leafset::LeafSet;
use crate::neighborhood::NeighborhoodSet;
use crate::rng::Rng;
use crate::routing_table::{Inserted, RoutingTable, UNMEASURED};
use crate::time::{Duration, Instant};
use crate::util::FxHashMap;
use crate::wire::{self, Message, MessageType};

use membership::Learned;
use timers::{Timer, Timers};

/// TCP's smoothed RTT estimator (RFC 6298): folds the sample `rtt` (µs) into `srtt` and
/// `rttvar`; the first sample (while `srtt` is [`UNMEASURED`]) sets both.
fn smooth_rtt(srtt: &mut u32, rttvar: &mut u32, rtt: u32) {
    if *srtt == UNMEASURED {
        *srtt = rtt;
        *rttvar = rtt / 2;
    } else {
        let err = srtt.abs_diff(rtt);
        *rttvar = (3 * u64::from(*rttvar) / 4 + u64::from(err) / 4) as u32;
        *srtt = (7 * u64::from(*srtt) / 8 + u64::from(rtt) / 8) as u32;
    }
}

/// Spare send buffers kept for reuse (each holds up to one frame).
const POOL_CAP: usize = 4;
/// Pooled send buffers larger than this are released at the next compaction.
const POOLED_MAX: usize = 2048;

/// How long after activation a joined node exchanges leaf sets with its adjacent members once.
const JOIN_EXCHANGE_DELAY: Duration = Duration::from_secs(3);

/// What happened, for the application. Drained with [`Node::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node's leaf set is confirmed: it is active and may deliver.
    Joined,
    /// No bootstrap node led to a completed join after every attempt.
    JoinFailed,
    /// A message arrived at this node, the root of its key (or the target of a direct send).
    Delivered {
        /// The key it was routed to.
        key: Id,
        /// Its end-to-end id (as returned by `route` at the source).
        msg_id: u64,
        /// The node that sent it.
        source: NodeHandle,
        /// Overlay hops it took.
        hops: u8,
        /// The application's bytes.
        payload: Bytes,
    },
    /// A node entered this node's leaf set (the Common API `update(node, joined = true)`).
    NeighborJoined(NodeHandle),
    /// A node left this node's leaf set (failed, left, or pushed out by closer nodes).
    NeighborLeft(NodeHandle),
    /// A message this node sent could not be delivered.
    Undeliverable {
        /// Its id.
        msg_id: u64,
        /// Its key.
        key: Id,
        /// One of [`crate::wire::undeliverable_reason`].
        reason: u8,
    },
}

/// The node's life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Created; not started.
    Idle,
    /// Joining through a bootstrap node; not yet allowed to deliver.
    Joining,
    /// Part of the overlay.
    Active,
    /// Left (or gave up joining); inert.
    Stopped,
}

/// Counters, for reports and tests. All monotone.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_in: u64,
    /// Datagrams queued for sending.
    pub datagrams_out: u64,
    /// Bytes queued for sending.
    pub bytes_out: u64,
    /// Datagrams dropped because they did not decode.
    pub bad_frames: u64,
    /// Datagrams dropped because of another network id or our own id as sender.
    pub foreign_frames: u64,
    /// Datagrams dropped because the send queue was full.
    pub outbox_drops: u64,
    /// Messages sent, by [`MessageType`] number.
    pub sent_by_type: [u64; 16],
    /// Messages sent while joining (requests, probes, announcements), of any type.
    pub sent_while_joining: u64,
    /// Messages sent while joining, by [`MessageType`] number.
    pub joining_by_type: [u64; 16],
    /// Bytes sent while joining.
    pub bytes_while_joining: u64,
    /// Bytes sent, by [`MessageType`] number.
    pub bytes_by_type: [u64; 16],
    /// Routed messages forwarded to another node.
    pub forwarded: u64,
    /// Messages delivered here.
    pub delivered: u64,
    /// Hop retransmissions.
    pub retransmits: u64,
    /// Messages sent another way after their next hop stopped answering.
    pub reroutes: u64,
    /// End-to-end retries of messages this node sent (no acknowledgement from the root in time).
    pub retries: u64,
    /// Duplicate hop transmissions suppressed.
    pub duplicates: u64,
    /// Nodes declared failed.
    pub failures_detected: u64,
    /// Routed messages refused for lack of space (pending or buffer limits).
    pub overload_drops: u64,
    /// Datagrams claiming a known node's id from another address than the validated one
    /// (ignored for membership: the incumbent address keeps the id while it answers).
    pub addr_conflicts: u64,
    /// Reports about a node (a `Leave`) that did not come from its own validated address, so
    /// were checked with a probe instead of believed.
    pub unproven_reports: u64,
    /// Maintenance messages sent: neither routed data, acknowledgements and reports, nor the
    /// node's own join (see [`Stats::maintenance_msgs`]).
    pub maint_msgs: u64,
    /// Bytes of those maintenance messages.
    pub maint_bytes: u64,
    /// Replies not sent because they would have gone to an address that has not proved itself
    /// with more than [`AMPLIFICATION`] times the bytes (or more datagrams than) it sent us.
    pub amplification_drops: u64,
    /// Requests dropped because their source address exceeded its rate (token buckets per
    /// source for join, row, leaf-set and ping requests, and for routed messages from
    /// unvalidated addresses).
    pub rate_limited: u64,
    /// Address validations started (a small ping whose pong proves an address before a large
    /// answer, such as a join reply, goes to it).
    pub validations: u64,
    /// Requests dropped waiting for an address validation: no room for another, or too many
    /// waiting on one address.
    pub validation_drops: u64,
    /// Probes not sent: the probe budget was spent, a probe to that address was already out,
    /// or the address stayed silent recently.
    pub probe_drops: u64,
    /// Routed messages dropped on arrival for breaking a limit (payload over `max_payload`,
    /// hop count at `max_hops`).
    pub limit_drops: u64,
    /// Replies that answered no request of ours (pongs, leaf-set, row and join replies with an
    /// unknown nonce or id, or from an unexpected address).
    pub unsolicited: u64,
}

impl Stats {
    /// Messages sent that were maintenance: not routed data or acknowledgements, not sent while
    /// joining, and not join requests or replies for others' joins. Monotone.
    pub fn maintenance_msgs(&self) -> u64 {
        self.maint_msgs
    }
    /// Bytes of maintenance messages sent (see [`Stats::maintenance_msgs`]). Monotone.
    pub fn maintenance_bytes(&self) -> u64 {
        self.maint_bytes
    }
    /// Routed messages, hop and delivery acknowledgements, and undeliverable reports sent.
    pub fn data_msgs(&self) -> u64 {
        let t = |m: MessageType| self.sent_by_type[m as usize];
        t(MessageType::Routed)
            + t(MessageType::Ack)
            + t(MessageType::Undeliverable)
            + t(MessageType::DeliveryAck)
    }
    /// What joining cost this node: every message it sent while joining.
    pub fn join_msgs(&self) -> u64 {
        self.sent_while_joining
    }
}

/// What the node knows of a peer it keeps in its tables (see [`membership`]: a record exists
/// only for a node that answered one of our nonces from `addr`).
#[derive(Clone, Copy, Debug)]
struct Peer {
    /// The address the peer was validated at.
    addr: SocketAddr,
    /// Smoothed RTT, µs ([`UNMEASURED`] until the first sample).
    srtt: u32,
    /// RTT variation, µs.
    rttvar: u32,
    /// Last time anything arrived from it.
    last_heard: Instant,
    /// Retransmissions to it went unanswered: avoid it for routing-table hops.
    suspect: bool,
}

/// One Pastry node. See the module docs for the run-loop contract.
pub struct Node {
    cfg: Config,
    me: NodeHandle,
    phase: Phase,
    rng: Rng,
    leaf: LeafSet,
    rt: RoutingTable,
    nbr: NeighborhoodSet,
    peers: FxHashMap<Id, Peer>,
    guard: guard::Guard,
    tombstones: FxHashMap<Id, Instant>,
    timers: Timers,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Bytes of the datagrams in `outbox`.
    outbox_bytes: usize,
    pool: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    stats: Stats,
    join: join::JoinState,
    maint: maintenance::MaintState,
    routing: routing::RoutingState,
    forwarder: Option<Box<dyn Forwarder + Send>>,
    /// Messages sent now count as join cost (the join's second stage).
    join_accounting: bool,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("me", &self.me)
            .field("phase", &self.phase)
            .field("leaf_set", &self.leaf.len())
            .field("routing_table", &self.rt.len())
            .field("join", &self.join)
            .field("probes", &self.maint.probes.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node bound (by its driver) to `addr`, idle until [`Node::start_alone`] or [`Node::join`].
    ///
    /// # Errors
    /// The configuration is invalid.
    pub fn new(cfg: Config, addr: SocketAddr) -> Result<Node, ConfigError> {
        cfg.validate()?;
        let mut rng = Rng::new(cfg.seed);
        let id = cfg.id.unwrap_or_else(|| Id(rng.next_u128()));
        let me = NodeHandle::new(id, addr);
        Ok(Node {
            leaf: LeafSet::new(id, cfg.leaf_set_size),
            rt: RoutingTable::new(id, cfg.b),
            nbr: NeighborhoodSet::new(id, cfg.neighborhood_size),
            routing: routing::RoutingState::new(),
            join: join::JoinState::default(),
            maint: maintenance::MaintState::default(),
            cfg,
            me,
            phase: Phase::Idle,
            rng,
            peers: FxHashMap::default(),
            guard: guard::Guard::default(),
            tombstones: FxHashMap::default(),
            timers: Timers::default(),
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            pool: Vec::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            forwarder: None,
            join_accounting: false,
        })
    }

    /// This node's id.
    pub fn id(&self) -> Id {
        self.me.id
    }
    /// This node's handle.
    pub fn handle(&self) -> NodeHandle {
        self.me
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// Where the node is in its life cycle.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// Whether the node is active (may deliver).
    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The leaf set.
    pub fn leaf_set(&self) -> &LeafSet {
        &self.leaf
    }
    /// The routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.rt
    }
    /// The neighbourhood set.
    pub fn neighborhood(&self) -> &NeighborhoodSet {
        &self.nbr
    }

    /// Installs (or removes) the application's `forward` upcall.
    pub fn set_forwarder(&mut self, f: Option<Box<dyn Forwarder + Send>>) {
        self.forwarder = f;
    }

    /// Starts a new overlay with this node as its only member: active at once.
    pub fn start_alone(&mut self, now: Instant) {
        if self.phase != Phase::Idle {
            return;
        }
        self.activate(now);
    }

    /// The next datagram to send: swaps it into `buf` and returns its destination.
    /// (`buf`'s previous allocation is kept for reuse.)
    #[must_use]
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<SocketAddr> {
        let (dst, mut data) = self.outbox.pop_front()?;
        self.outbox_bytes -= data.len();
        core::mem::swap(buf, &mut data);
        if data.capacity() > 0 && self.pool.len() < POOL_CAP {
            data.clear();
            self.pool.push(data);
        }
        Some(dst)
    }

    /// The datagrams queued for sending, oldest first, without taking them (for simulators and
    /// tests that look at what a call produced before [`Node::poll_transmit`] drains it).
    pub fn queued(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.outbox
            .iter()
            .map(|(dst, frame)| (*dst, frame.as_slice()))
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should be called next (`None`: no timer pending).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Feeds one received datagram from `from`. Bad frames are counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.stats.datagrams_in += 1;
        if self.phase == Phase::Idle || self.phase == Phase::Stopped {
            return;
        }
        let (hdr, msg) = match wire::decode(datagram) {
            Ok(x) => x,
            Err(_) => {
                self.stats.bad_frames += 1;
                return;
            }
        };
        if hdr.network != self.cfg.network || hdr.sender == self.me.id {
            self.stats.foreign_frames += 1;
            return;
        }
        if !self.admit_datagram(now, from, datagram.len(), &msg) {
            return;
        }
        let sender = NodeHandle::new(hdr.sender, from);
        self.probe_heard(sender);
        // A stranger that asked for an answer (a pong, an acknowledgement, a row) is learned of
        // after it is answered: the answer comes before any probe of ours, both paid for out of
        // what it sent (see `guard`). Anything else is learned of first (a join reply's sender,
        // say, is probed before the reply is read).
        let answer_first = matches!(
            msg,
            Message::Ping { .. } | Message::RowRequest { .. } | Message::Routed { .. }
        );
        let contact = match msg {
            // A leaf-set request is judged by its own challenge (its sender holds us, or is
            // about to); a joiner is not part of the overlay yet; a leaver no longer is; a pong
            // is judged by the probe it answers.
            Message::LeafSetRequest { .. } => {
                self.note_holder(now, sender);
                false
            }
            Message::JoinRequest { .. } | Message::Leave { .. } | Message::Pong { .. } => false,
            // Joining nodes probe with pings: refresh known senders, but do not take new ones in
            // (a joiner must not become anyone's next hop before it has announced itself). An
            // active node that pings us holds us in its tables: if we do not hold it (we
            // declared it failed, say), it may prove itself again.
            Message::Ping { active: true, .. } => {
                self.note_holder(now, sender);
                true
            }
            Message::Ping { .. } => {
                self.refresh(now, sender);
                false
            }
            _ => true,
        };
        if contact && !answer_first {
            self.learn(now, sender, Learned::Contact);
        }
        self.dispatch(now, sender, msg);
        if contact && answer_first && self.phase != Phase::Stopped {
            self.learn(now, sender, Learned::Contact);
        }
    }

    fn dispatch(&mut self, now: Instant, from: NodeHandle, msg: Message) {
        match msg {
            Message::JoinRequest {
                joiner,
                join_id,
                hops,
            } => self.on_join_request(now, from, joiner, join_id, hops),
            Message::JoinReply {
                join_id,
                flags,
                rows,
                leaf_set,
                neighbors,
            } => self.on_join_reply(now, from, join_id, flags, rows, leaf_set, neighbors),
            Message::LeafSetRequest { nonce, leaf_set } => {
                self.on_leaf_set_request(now, from, nonce, leaf_set)
            }
            Message::LeafSetReply {
                nonce,
                admitted,
                leaf_set,
                ..
            } => self.on_leaf_set_reply(now, from, nonce, admitted, &leaf_set),
            Message::RowRequest { row } => self.on_row_request(now, from, row),
            Message::RowReply { row } => self.on_row_reply(now, from, row),
            // A newcomer is in nobody's tables until its join's root has first answered, and
            // must not enter any before (it would be handed messages and joins it cannot
            // route): it proves its address to nobody, though the nodes it asked for rows while
            // looking for a nearby one (see `discovery`) may try to measure it.
            // Validation pings (a join path checking the joiner's address, see `guard`) are
            // answered: they admit nobody anywhere.
            Message::Ping { sent_at, .. }
                if sent_at != guard::VALIDATION_PING
                    && self.phase == Phase::Joining
                    && !self.join.announced => {}
            Message::Ping { nonce, sent_at, .. } => {
                self.send(from.addr, &Message::Pong { nonce, sent_at })
            }
            Message::Pong { nonce, sent_at } => self.on_pong(now, from, nonce, sent_at),
            Message::Routed {
                msg_id,
                key,
                source,
                hops,
                flags,
                payload,
            } => {
                let msg = routing::Routed {
                    msg_id,
                    key,
                    source,
                    hops,
                    flags,
                    payload,
                };
                self.on_routed(now, from, msg)
            }
            Message::Ack { msg_id, hops } => self.on_ack(now, from, msg_id, hops),
            Message::Leave { leaf_set } => self.on_leave(now, from, &leaf_set),
            Message::Undeliverable {
                msg_id,
                key,
                reason,
            } => self.on_undeliverable(msg_id, key, reason),
            Message::DeliveryAck { msg_id } => self.on_delivery_ack(now, msg_id),
            Message::Failed { node } => self.on_failed_report(now, from, node),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, t)) = self.timers.pop_due(now) {
            if self.phase == Phase::Stopped {
                self.timers.clear();
                return;
            }
            match t {
                Timer::LeafMaintenance => self.on_leaf_tick(now, at),
                Timer::RtMaintenance => self.on_rt_tick(now, at),
                Timer::JoinRetry => self.on_join_timeout(now, at),
                Timer::Retransmit(msg_id, hops) => self.on_retransmit_timer(now, at, msg_id, hops),
                Timer::Probe(id) => self.on_probe_timer(now, at, id),
                Timer::Delivery(msg_id) => self.on_delivery_timer(now, at, msg_id),
                Timer::JoinExchange => self.exchange_with_adjacent(now),
                Timer::Discovery => self.on_discovery_timer(now),
            }
        }
    }

    // ----- shared plumbing -----

    fn send(&mut self, dst: SocketAddr, msg: &Message) {
        let len = wire::HEADER_LEN + msg.buffer_len() + wire::TRAILER_LEN;
        if self.outbox.len() >= self.cfg.max_outbox
            || self.routing.buffered_bytes() + self.outbox_bytes + len > self.cfg.max_buffer_bytes
        {
            self.stats.outbox_drops += 1;
            return;
        }
        if !self.may_send(dst, msg.message_type(), len) {
            return;
        }
        let mut buf = self.pool.pop().unwrap_or_default();
        wire::encode(self.cfg.network, self.me.id, msg, &mut buf);
        self.count_sent(msg.message_type(), buf.len());
        self.outbox_bytes += buf.len();
        self.outbox.push_back((dst, buf));
    }

    /// Counts a datagram sent, once in its category: the node's own join, data (routed
    /// messages, acknowledgements, reports), others' joins, or maintenance.
    fn count_sent(&mut self, ty: MessageType, len: usize) {
        let st = &mut self.stats;
        st.sent_by_type[ty as usize] += 1;
        st.bytes_by_type[ty as usize] += len as u64;
        st.datagrams_out += 1;
        st.bytes_out += len as u64;
        let data = matches!(
            ty,
            MessageType::Routed
                | MessageType::Ack
                | MessageType::Undeliverable
                | MessageType::DeliveryAck
        );
        let others_join = matches!(ty, MessageType::JoinRequest | MessageType::JoinReply);
        if self.phase == Phase::Joining || self.join_accounting {
            st.sent_while_joining += 1;
            st.joining_by_type[ty as usize] += 1;
            st.bytes_while_joining += len as u64;
        } else if !data && !others_join {
            st.maint_msgs += 1;
            st.maint_bytes += len as u64;
        }
    }

    fn activate(&mut self, now: Instant) {
        let joined = self.phase == Phase::Joining;
        self.phase = Phase::Active;
        self.events.push_back(Event::Joined);
        let jitter = Duration(
            self.rng
                .below(self.cfg.leaf_probe_period.as_micros().max(1)),
        );
        self.maint.leaf_tick_at = now + jitter + self.cfg.leaf_probe_period;
        self.timers
            .set(self.maint.leaf_tick_at, Timer::LeafMaintenance);
        let jitter = Duration(
            self.rng
                .below(self.cfg.rt_maintenance_period.as_micros().max(1)),
        );
        self.maint.rt_tick_at = now + jitter + self.cfg.rt_maintenance_period;
        self.timers.set(self.maint.rt_tick_at, Timer::RtMaintenance);
        // Joins that race ours may have lost us a neighbour (every probe of it lost, say):
        // one early exchange with the adjacent members names it again.
        if joined {
            self.timers
                .set(now + JOIN_EXCHANGE_DELAY, Timer::JoinExchange);
        }
        self.compact();
        // Second stage of a join (the paper's "X informs every node of its state", with the
        // locality-aware table refinement of Castro et al.): every routing-table and
        // neighbourhood entry hears from us, so it can take us into its own tables, and answers
        // with the row we share, whose nodes we measure (empty cells, plus a little PNS).
        let mut told: smallvec::SmallVec<[NodeHandle; 64]> =
            self.rt.entries().map(|e| e.node).collect();
        told.extend(self.nbr.members().copied());
        told.sort_by_key(|h| h.id);
        told.dedup_by_key(|h| h.id);
        self.join_accounting = true;
        for h in told {
            let row = self.me.id.shared_prefix_len(h.id, self.cfg.b) as u8;
            self.send(h.addr, &Message::RowRequest { row });
        }
        self.join_accounting = false;
        self.flush_held(now);
    }

    fn is_tombstoned(&mut self, now: Instant, id: Id) -> bool {
        match self.tombstones.get(&id) {
            Some(&until) if until > now => true,
            Some(_) => {
                self.tombstones.remove(&id);
                false
            }
            None => false,
        }
    }

    /// Keeps lists from bringing `id` back for `ttl` (an existing longer tombstone stays).
    fn tombstone(&mut self, now: Instant, id: Id, ttl: Duration) {
        if self.tombstones.len() >= 4096 {
            self.tombstones.retain(|_, &mut until| until > now);
            if self.tombstones.len() >= 4096 {
                return;
            }
        }
        let until = self.tombstones.entry(id).or_insert(now + ttl);
        *until = (*until).max(now + ttl);
    }

    /// Offers a node that proved its address to every table (called only by the admission
    /// function, [`Node::learn`]).
    fn consider(&mut self, now: Instant, h: NodeHandle, rtt: u32) {
        if h.id == self.me.id {
            return;
        }
        let mut kept = self.leaf.contains(h.id);
        if self.leaf.would_accept(h.id) {
            let before: smallvec::SmallVec<[NodeHandle; 16]> =
                self.leaf.members().copied().collect();
            if self.leaf.insert(h) {
                self.events.push_back(Event::NeighborJoined(h));
                self.maint.leaf_changed = true;
                self.maint.leaf_version += 1;
                self.maint.leaf_version += 1;
                kept = true;
                // Members pushed out by the newcomer have left this leaf set.
                for old in before {
                    if !self.leaf.contains(old.id) {
                        self.events.push_back(Event::NeighborLeft(old));
                        self.forget_if_unused(old.id);
                    }
                }
                self.on_leaf_member_added(now, h);
            }
        } else if kept {
            self.leaf.insert(h); // refresh its address
        }
        match self.rt.insert(h, rtt) {
            Inserted::Rejected => {}
            Inserted::Replaced(old) => {
                kept = true;
                self.forget_if_unused(old.id);
            }
            Inserted::Filled | Inserted::Refreshed => kept = true,
        }
        if rtt != UNMEASURED {
            let before: Option<NodeHandle> = self.nbr.members().last().copied();
            kept |= self.nbr.insert(h, rtt);
            // A member pushed out of a full neighbourhood set may be unused now.
            if let Some(old) = before.filter(|o| !self.nbr.members().any(|m| m.id == o.id)) {
                self.forget_if_unused(old.id);
            }
        }
        if kept && !self.peers.contains_key(&h.id) {
            self.peers.insert(h.id, Node::new_peer(now, h, rtt));
            self.guard.peer_addrs.insert(h.addr, h.id);
        }
    }

    /// Whether `id` is in any table.
    fn knows(&self, id: Id) -> bool {
        self.leaf.contains(id)
            || self.rt.find(id).is_some()
            || self.nbr.members().any(|h| h.id == id)
    }

    /// Drops peer records of nodes no table holds any more (keeps state bounded).
    fn forget_if_unused(&mut self, id: Id) {
        if !self.knows(id) && !self.maint.probes.contains_key(&id) {
            self.remove_peer_record(id);
        }
    }

    /// Drops `id`'s peer record (and its address from the validated peers' index).
    fn remove_peer_record(&mut self, id: Id) {
        if let Some(p) = self.peers.remove(&id) {
            if self.guard.peer_addrs.get(&p.addr) == Some(&id) {
                self.guard.peer_addrs.remove(&p.addr);
            }
        }
    }

    /// The RTT sample `rtt` from `id` (µs).
    fn rtt_sample(&mut self, id: Id, rtt: u32) {
        if let Some(p) = self.peers.get_mut(&id) {
            smooth_rtt(&mut p.srtt, &mut p.rttvar, rtt);
        }
    }

    /// The retransmission timeout toward `id` for attempt `attempt` (0 = first), doubling.
    fn rto(&self, id: Id, attempt: u32) -> Duration {
        let base = match self.peers.get(&id) {
            Some(p) if p.srtt != UNMEASURED => {
                Duration(u64::from(p.srtt) + 4 * u64::from(p.rttvar))
            }
            _ => self.cfg.rto_initial,
        };
        let base = base.max(self.cfg.rto_min);
        base.saturating_mul(1 << attempt.min(10))
            .min(self.cfg.rto_max)
    }

    /// Declares `id` failed: removes it everywhere, remembers it, repairs, reroutes its messages;
    /// with `notify`, a leaf's failure is announced to the leaf set (`Failed`).
    fn peer_failed(&mut self, now: Instant, id: Id, notify: bool) {
        self.stats.failures_detected += 1;
        let leaf = self.leaf.find(id).copied();
        self.tombstone(now, id, self.cfg.tombstone_ttl);
        self.remove_peer(now, id);
        self.routing_reroute_all(now, id);
        if let Some(dead) = leaf.filter(|_| notify) {
            self.tell_leaf_set_failed(dead);
        }
    }

    /// Removes `id` from every table and starts repairs.
    fn remove_peer(&mut self, now: Instant, id: Id) {
        let handle = self.leaf.find(id).copied();
        if self.leaf.remove(id) {
            if let Some(h) = handle {
                self.events.push_back(Event::NeighborLeft(h));
            }
            self.maint.leaf_changed = true;
            self.maint.leaf_version += 1;
            self.repair_leaf_set(now, id);
        }
        if let Some((row, _col)) = self.rt.remove(id) {
            self.repair_rt_row(row);
        }
        self.nbr.remove(id);
        self.remove_peer_record(id);
        self.cancel_probe(id);
        if self.phase == Phase::Joining {
            self.join_check_complete(now);
        }
    }

    /// Gives back memory that bursts (a join's probing, a flood of traffic) left allocated, so a
    /// node's footprint follows its current state. Called every leaf tick and on activation.
    fn compact(&mut self) {
        fn shrink_map<K: Eq + core::hash::Hash, V>(m: &mut FxHashMap<K, V>) {
            if m.capacity() > 4 * m.len() + 16 {
                m.shrink_to(2 * m.len());
            }
        }
        shrink_map(&mut self.peers);
        shrink_map(&mut self.tombstones);
        self.maint.probes.shrink();
        shrink_map(&mut self.maint.holders);
        self.routing.shrink();
        self.timers.shrink();
        if self.outbox.is_empty() {
            self.outbox.shrink_to(4);
        }
        // Buffers that carried a large frame go back to the allocator.
        self.pool.retain(|b| b.capacity() <= POOLED_MAX);
    }

    /// Approximate heap bytes this node holds (tables, maps, queues).
    pub fn heap_bytes(&self) -> usize {
        self.heap_breakdown().iter().map(|(_, b)| b).sum()
    }

    /// [`Node::heap_bytes`] by part, for memory reports.
    pub fn heap_breakdown(&self) -> [(&'static str, usize); 10] {
        use core::mem::size_of;
        [
            ("routing_table", self.rt.heap_bytes()),
            (
                "neighborhood",
                self.nbr.len() * (size_of::<NodeHandle>() + 4),
            ),
            (
                "peers",
                self.peers.capacity() * (size_of::<Id>() + size_of::<Peer>() + 8),
            ),
            ("tombstones", self.tombstones.capacity() * 40),
            ("outbox", self.outbox.capacity() * 48),
            ("pool", self.pool.iter().map(Vec::capacity).sum::<usize>()),
            ("routing", self.routing.heap_bytes()),
            ("probes", self.maint.heap_bytes()),
            ("timers", self.timers.capacity() * 48),
            ("guard", self.guard.heap_bytes()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn node_is_send() {
        assert_send::<Node>();
    }
}
