//! A PAST-style replicated store of immutable objects, built only on the public KBR API of a
//! [`Node`]: `route` (with a key, or a hint for direct sends), `forward`, `deliver`, `update`
//! (the `NeighborJoined` / `NeighborLeft` events) and `replica_set`.
//!
//! # What it does
//!
//! - **Naming.** An object's key is the first 128 bits of the SHA-256 of its content
//!   ([`content_key`]); a named object's key is that of its name ([`name_key`]), first put wins,
//!   a different value for the same name is refused with [`StoreError::Conflict`]. Every get
//!   checks the bytes it receives against the key; a replica that returns anything else is
//!   ignored, counted ([`StoreStats::bad_replicas`]) and excluded from the retry.
//! - **Replication.** A put is routed to the key's root, which stores the record and copies it
//!   to the rest of the key's replica set (`replica_set(key, k - 1)`): k copies on the k
//!   numerically closest live nodes. After every change of the leaf set (and every
//!   [`StoreConfig::sync_period`]), a node sends each neighbour it shares keys with a digest (a
//!   hash over the sorted keys both should hold); only when digests differ are key lists
//!   exchanged and the missing records pushed or fetched. A node that is no longer among a
//!   key's replicas offers the key to those that are, and drops its copy once every one of
//!   them has confirmed holding it.
//! - **Retrieval.** A get is routed toward the key; the first node on the path that holds the
//!   key answers directly to the requester from its `forward` upcall (as PAST does). A root
//!   without a copy relays the get to the other replicas. A get without an answer ends in
//!   [`StoreError::Timeout`].
//! - **Large objects.** Values larger than one payload are cut into content-addressed chunks
//!   plus a manifest; the object's key is the manifest's. Chunks move in parallel with a
//!   bounded window ([`StoreConfig::window`]).
//! - **Bounds.** A quota in bytes and objects per node ([`StoreConfig::max_bytes`],
//!   [`StoreConfig::max_objects`]); a put the replicas cannot take fails with
//!   [`StoreError::StoreFull`]. Operations in flight, root-side puts awaiting replicas, key lists
//!   and the outgoing queue are all capped.
//! - **Storage.** In memory by default ([`MemoryBackend`]); crash-safe on disk with
//!   [`DiskBackend`].
//!
//! # Driving it
//!
//! A [`Store`] sits beside a [`Node`] and is sans-IO like it (a [`DiskBackend`] is the one
//! exception: it writes files). After every input to the node, its driver:
//!
//! 1. hands each event from `poll_event` to [`Store::handle_event`];
//! 2. lets the store see routed messages passing the node: install [`Store::handle_forward`]
//!    in the node's `forward` upcall (the runtime's [`StoreApp`] and the simulator's
//!    [`StoreSim`] do this);
//! 3. calls [`Store::handle_timeout`] once [`Store::poll_timeout`] has passed;
//! 4. drains [`Store::poll_transmit`] into the node's `route` ([`Store::flush`] does this for a
//!    [`Node`] it can borrow mutably), then the node's outputs as usual.
//!
//! Results of [`Store::put`] and [`Store::get`] come out of [`Store::poll_outcome`].
//!
//! ```
//! use pastry::node::{Config, Node};
//! use pastry::store::{OpId, Outcome, Store, StoreConfig};
//! use pastry::Instant;
//!
//! let mut node = Node::new(Config::default(), "127.0.0.1:4000".parse().unwrap()).unwrap();
//! node.start_alone(Instant::ZERO);
//! let mut store = Store::new(StoreConfig::default());
//! let now = Instant::ZERO;
//! // Drive the node and the store until the results are out (one node: a few rounds).
//! fn drive(store: &mut Store, node: &mut Node, now: Instant) -> Vec<(OpId, Outcome)> {
//!     let mut results = Vec::new();
//!     for _ in 0..4 {
//!         store.flush(now, node);
//!         while let Some(ev) = node.poll_event() {
//!             store.handle_event(now, node, &ev);
//!         }
//!         while let Some(r) = store.poll_outcome() {
//!             results.push(r);
//!         }
//!     }
//!     results
//! }
//! let (put, key) = store.put(now, &node, b"hello".to_vec()).unwrap();
//! assert_eq!(drive(&mut store, &mut node, now), vec![(put, Outcome::Put(Ok(key)))]);
//! let get = store.get(now, &node, key).unwrap();
//! let value = b"hello".to_vec().into();
//! assert_eq!(drive(&mut store, &mut node, now), vec![(get, Outcome::Get(Ok(value)))]);
//! ```

mod app;
mod backend;
mod client;
mod msg;
mod record;
mod server;
mod sim;
mod workload;

use core::fmt;
use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

pub use app::{StoreApp, StoreHandle};
pub use backend::{Backend, DiskBackend, MemoryBackend};
pub use record::{content_key, name_key};
pub use sim::{Placement, StoreSim};
pub use workload::{StoreReport, StoreWorkload};

use crate::id::{Id, NodeHandle};
use crate::node::{Event, ForwardAction, ForwardCtx, Node, RouteError};
use crate::time::{Duration, Instant};

use client::Op;
use msg::StoreMsg;
use server::RootPut;

/// Whether `payload` is a store message (it decodes as one): lets an application that shares a
/// node with a store tell the store's deliveries from its own.
pub fn is_store_message(payload: &Bytes) -> bool {
    StoreMsg::decode(payload).is_ok()
}

/// Largest value a put accepts: 64 MiB.
pub const MAX_VALUE: usize = 64 << 20;

/// Most messages waiting in a store's outgoing queue; beyond it new ones are dropped (and
/// counted in [`StoreStats::out_drops`]).
const OUT_CAP: usize = 16_384;

/// A store's settings.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Copies of each object, `k` (1..=L/2, where L is the leaf-set size).
    pub replicas: usize,
    /// Most record bytes this node holds.
    pub max_bytes: u64,
    /// Most records this node holds.
    pub max_objects: usize,
    /// A put or get not answered within this time fails with [`StoreError::Timeout`].
    pub op_timeout: Duration,
    /// An unanswered request is sent again after this long.
    pub retry_after: Duration,
    /// Period of the digest exchange with neighbours.
    pub sync_period: Duration,
    /// Delay from a leaf-set change to the digest exchange it triggers (changes within it are
    /// handled together).
    pub sync_delay: Duration,
    /// Chunks of one large object in flight at once.
    pub window: usize,
    /// Most puts and gets of this node's application in flight at once (chunks included).
    pub max_ops: usize,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            replicas: 4,
            max_bytes: 1 << 30,
            max_objects: 1 << 20,
            op_timeout: Duration::from_secs(20),
            retry_after: Duration::from_secs(3),
            sync_period: Duration::from_secs(60),
            sync_delay: Duration::from_secs(1),
            window: 16,
            max_ops: 4096,
        }
    }
}

impl StoreConfig {
    /// Checks the settings against a node's leaf-set size.
    ///
    /// # Errors
    /// The field that is out of range, by name.
    pub fn validate(&self, leaf_set_size: usize) -> Result<(), &'static str> {
        if self.replicas == 0 || self.replicas > leaf_set_size / 2 {
            return Err("replicas must be 1..=L/2");
        }
        if self.window == 0 || self.max_ops == 0 {
            return Err("window and max_ops must be positive");
        }
        if self.op_timeout.as_micros() == 0 || self.retry_after.as_micros() == 0 {
            return Err("timeouts must be positive");
        }
        Ok(())
    }
}

/// Why a put or a get failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// No replica holds the key.
    NotFound,
    /// A named object of that name already holds another value.
    Conflict,
    /// The replicas have no room for the object (quota in bytes or objects).
    StoreFull,
    /// No answer came within [`StoreConfig::op_timeout`].
    Timeout,
    /// The value is larger than [`MAX_VALUE`] (or a named value larger than one payload).
    TooLarge,
    /// Every answer failed verification against the key.
    Corrupt,
    /// Too many operations are in flight; try again later.
    Busy,
    /// The node refused to route the request.
    Route(RouteError),
    /// The [`StoreConfig`] does not fit the node (see [`StoreConfig::validate`]).
    Config(&'static str),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("no replica holds the key"),
            StoreError::Conflict => f.write_str("the name is taken by another value"),
            StoreError::StoreFull => f.write_str("the replicas have no room for the object"),
            StoreError::Timeout => f.write_str("no answer in time"),
            StoreError::TooLarge => f.write_str("the value is too large"),
            StoreError::Corrupt => f.write_str("every answer failed verification"),
            StoreError::Busy => f.write_str("too many operations in flight"),
            StoreError::Route(e) => write!(f, "route refused: {e}"),
            StoreError::Config(e) => write!(f, "bad store configuration: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Names one put or get of this store, as returned by [`Store::put`] and [`Store::get`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// How an operation ended (from [`Store::poll_outcome`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A put: the object's key.
    Put(Result<Id, StoreError>),
    /// A get: the verified value.
    Get(Result<Bytes, StoreError>),
}

/// A message for the node to send (from [`Store::poll_transmit`]): `route(key, payload, hint)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Route toward this key (`None`: a direct send to `hint`).
    pub key: Option<Id>,
    /// The first hop, or the target of a direct send.
    pub hint: Option<NodeHandle>,
    /// The store message.
    pub payload: Bytes,
}

/// Counters of one store. All monotone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Records this node took (puts, replicas, re-replication).
    pub stored: u64,
    /// Records refused for lack of room.
    pub refused_full: u64,
    /// Records dropped because this node is no longer among their replicas.
    pub handed_off: u64,
    /// Answers to gets that did not verify against their key (ignored).
    pub bad_replicas: u64,
    /// Received messages that did not decode, or records that did not verify.
    pub bad_msgs: u64,
    /// Gets answered by this node.
    pub gets_served: u64,
    /// Gets answered from the `forward` upcall (before reaching the root).
    pub gets_intercepted: u64,
    /// Messages the node refused to route, or the outgoing queue had no room for.
    pub out_drops: u64,
    /// Maintenance messages sent: digests, key lists, fetches, offers, re-replication.
    pub sync_msgs: u64,
    /// Bytes of those maintenance messages.
    pub sync_bytes: u64,
    /// Digests that matched (no transfer needed).
    pub digests_matched: u64,
    /// Storage backend writes that failed.
    pub io_errors: u64,
}

impl StoreStats {
    /// Adds `o`'s counters to these.
    pub fn add(&mut self, o: &StoreStats) {
        self.stored += o.stored;
        self.refused_full += o.refused_full;
        self.handed_off += o.handed_off;
        self.bad_replicas += o.bad_replicas;
        self.bad_msgs += o.bad_msgs;
        self.gets_served += o.gets_served;
        self.gets_intercepted += o.gets_intercepted;
        self.out_drops += o.out_drops;
        self.sync_msgs += o.sync_msgs;
        self.sync_bytes += o.sync_bytes;
        self.digests_matched += o.digests_matched;
        self.io_errors += o.io_errors;
    }
}

/// The replicated store beside one node. See the module docs for how to drive it.
pub struct Store {
    cfg: StoreConfig,
    backend: Box<dyn Backend>,
    /// Every key held here, with its record's length.
    index: BTreeMap<Id, u32>,
    bytes: u64,
    now: Instant,
    next_op: u64,
    ops: BTreeMap<u64, Op>,
    outcomes: VecDeque<(OpId, Outcome)>,
    out: VecDeque<Outgoing>,
    roots: BTreeMap<u64, RootPut>,
    next_tag: u64,
    sync_at: Option<Instant>,
    /// This node (known from the first call that passes the node).
    me_handle: Option<NodeHandle>,
    /// Keys held here whose replica set no longer includes this node.
    handoff: BTreeMap<Id, server::Handoff>,
    stats: StoreStats,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("objects", &self.index.len())
            .field("bytes", &self.bytes)
            .field("ops", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store keeping its records in memory.
    pub fn new(cfg: StoreConfig) -> Store {
        Store::with_backend(cfg, Box::new(MemoryBackend::new()))
    }

    /// A store over `backend`; records already there are indexed (and count against the quota).
    pub fn with_backend(cfg: StoreConfig, backend: Box<dyn Backend>) -> Store {
        let mut index = BTreeMap::new();
        let mut bytes = 0;
        for (k, len) in backend.scan() {
            index.insert(k, len as u32);
            bytes += len;
        }
        Store {
            cfg,
            backend,
            index,
            bytes,
            now: Instant::ZERO,
            next_op: 1,
            ops: BTreeMap::new(),
            outcomes: VecDeque::new(),
            out: VecDeque::new(),
            roots: BTreeMap::new(),
            next_tag: 1,
            sync_at: None,
            me_handle: None,
            handoff: BTreeMap::new(),
            stats: StoreStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }
    /// Counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }
    /// Records held here.
    pub fn len(&self) -> usize {
        self.index.len()
    }
    /// Whether no record is held here.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// Record bytes held here.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// Whether a record for `key` is held here.
    pub fn holds(&self, key: Id) -> bool {
        self.index.contains_key(&key)
    }
    /// The keys held here, in order.
    pub fn keys(&self) -> impl Iterator<Item = Id> + '_ {
        self.index.keys().copied()
    }
    /// Operations of this node's application in flight.
    pub fn ops_in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Replaces the record under `key` by `record` without any check (for tests that need a
    /// corrupt replica). Returns whether `key` was held.
    pub fn tamper(&mut self, key: Id, record: Bytes) -> bool {
        if !self.index.contains_key(&key) {
            return false;
        }
        self.backend.save(key, &record).is_ok()
    }

    /// One event of the node (drained from `poll_event`): deliveries carry store messages,
    /// leaf-set changes schedule a digest exchange.
    pub fn handle_event(&mut self, now: Instant, node: &Node, ev: &Event) {
        self.now = now;
        self.me_handle = Some(node.handle());
        match ev {
            Event::Joined => self.schedule_sync(now),
            Event::NeighborJoined(_) | Event::NeighborLeft(_) if node.is_active() => {
                self.schedule_sync(now)
            }
            Event::Delivered {
                key,
                source,
                payload,
                ..
            } => match StoreMsg::decode(payload) {
                Ok(m) => self.on_message(now, node, *key, *source, m),
                Err(_) => self.stats.bad_msgs += 1,
            },
            _ => {}
        }
    }

    /// The `forward` upcall: a get passing a node that holds its key is answered here, directly
    /// to the requester, and dropped. Everything else goes on.
    pub fn handle_forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        if !msg::is_get(ctx.payload) {
            return ForwardAction::Forward;
        }
        let Ok(StoreMsg::Get {
            op,
            requester,
            key,
            exclude,
            ..
        }) = StoreMsg::decode(ctx.payload)
        else {
            return ForwardAction::Forward;
        };
        let me = self.me_handle.map(|h| h.id);
        if self.answer_get(op, requester, key, &exclude, me) {
            if ctx.next_hop.is_some() {
                self.stats.gets_intercepted += 1;
            }
            ForwardAction::Drop
        } else {
            ForwardAction::Forward
        }
    }

    /// When [`Store::handle_timeout`] should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ops = self.ops.values().map(Op::next_deadline).min();
        let roots = self.roots.values().map(|r| r.deadline).min();
        [ops, roots, self.sync_at].into_iter().flatten().min()
    }

    /// Fires what is due at `now`: retries, timeouts, the digest exchange.
    pub fn handle_timeout(&mut self, now: Instant, node: &Node) {
        self.now = now;
        self.me_handle = Some(node.handle());
        self.ops_timeout(now, node);
        self.roots_timeout(now);
        if self.sync_at.is_some_and(|t| t <= now) {
            self.sync(now, node);
        }
    }

    /// The next message for the node to route.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// Puts back a message the node refused with [`RouteError::Overloaded`], to go first next
    /// time; any other refusal drops it (counted).
    pub fn transmit_failed(&mut self, m: Outgoing, err: RouteError) {
        if err == RouteError::Overloaded {
            self.out.push_front(m);
        } else {
            self.stats.out_drops += 1;
        }
    }

    /// Routes every queued message through `node` (the driver's step 4 for a node it owns),
    /// stopping early when the node is overloaded. Only for a node whose `forward` upcall does
    /// not reach this store (the node calls `forward` from inside `route`): a driver that
    /// shares the store with the upcall drains [`Store::poll_transmit`] first, then routes.
    pub fn flush(&mut self, now: Instant, node: &mut Node) {
        while let Some(m) = self.poll_transmit() {
            if let Err(e) = node.route(now, m.key, m.payload.clone(), m.hint) {
                let overloaded = e == RouteError::Overloaded;
                self.transmit_failed(m, e);
                if overloaded {
                    break;
                }
            }
        }
    }

    /// Whether messages wait in the outgoing queue.
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// The result of a finished put or get.
    #[must_use]
    pub fn poll_outcome(&mut self) -> Option<(OpId, Outcome)> {
        self.outcomes.pop_front()
    }

    fn send(&mut self, key: Option<Id>, hint: Option<NodeHandle>, m: &StoreMsg) {
        if self.out.len() >= OUT_CAP {
            self.stats.out_drops += 1;
            return;
        }
        let payload = m.encode();
        if m.is_sync() {
            self.stats.sync_msgs += 1;
            self.stats.sync_bytes += payload.len() as u64;
        }
        self.out.push_back(Outgoing { key, hint, payload });
    }

    fn direct(&mut self, to: NodeHandle, m: &StoreMsg) {
        self.send(None, Some(to), m);
    }

    fn on_message(&mut self, now: Instant, node: &Node, key: Id, from: NodeHandle, m: StoreMsg) {
        match m {
            StoreMsg::Put {
                op,
                requester,
                record,
            } => self.on_put(now, node, key, op, requester, record),
            StoreMsg::PutResult { op, key, status } => self.on_put_result(now, op, key, status),
            StoreMsg::Get {
                op,
                requester,
                key,
                relays,
                exclude,
            } => self.on_get(node, op, requester, key, relays, exclude),
            StoreMsg::GetReply {
                op,
                key,
                status,
                record,
            } => self.on_get_reply(now, node, from, op, key, status, record),
            StoreMsg::Replicate { tag, key, record } => self.on_replicate(from, tag, key, record),
            StoreMsg::ReplicaAck { tag, key, status } => self.on_replica_ack(tag, key, status),
            StoreMsg::Digest { count, hash } => self.on_digest(node, from, count, hash),
            StoreMsg::KeyList { more, keys } => self.on_key_list(node, from, more, &keys),
            StoreMsg::Fetch { keys } => self.on_fetch(from, &keys),
            StoreMsg::Offer { keys } => self.on_offer(node, from, &keys),
            StoreMsg::Have { keys } => self.on_have(from, &keys),
        }
    }

    /// Takes `record` under `key` if there is room: a [`msg::status`] code.
    fn accept(&mut self, key: Id, record: &Bytes) -> u8 {
        if self.index.contains_key(&key) {
            if record.first() == Some(&record::NAMED)
                && self.backend.load(key).as_ref() != Some(record)
            {
                return msg::status::CONFLICT;
            }
            self.handoff.remove(&key);
            return msg::status::OK;
        }
        let len = record.len() as u64;
        if self.index.len() >= self.cfg.max_objects || self.bytes + len > self.cfg.max_bytes {
            self.stats.refused_full += 1;
            return msg::status::FULL;
        }
        if self.backend.save(key, record).is_err() {
            self.stats.io_errors += 1;
            return msg::status::FULL;
        }
        self.index.insert(key, len as u32);
        self.bytes += len;
        self.stats.stored += 1;
        msg::status::OK
    }

    /// Drops the record under `key`.
    fn drop_record(&mut self, key: Id) {
        if let Some(len) = self.index.remove(&key) {
            self.bytes -= u64::from(len);
            self.backend.remove(key);
        }
        self.handoff.remove(&key);
    }

    fn schedule_sync(&mut self, now: Instant) {
        let at = now + self.cfg.sync_delay;
        if self.sync_at.is_none_or(|t| t > at) {
            self.sync_at = Some(at);
        }
    }
}
