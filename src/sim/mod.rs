//! A deterministic discrete-event simulator that drives many [`Node`]s — the same code the
//! runtime drives — over a virtual clock.
//!
//! Events sit in a heap ordered by `(time, sequence)`, so equal times resolve in insertion order
//! and a run is a pure function of its seed. Links follow a [`Topology`] latency model with seeded
//! loss, duplication, reordering (jitter) and corruption. A global [`Oracle`] (the numerically
//! closest live active node) checks every delivery. Nodes get virtual addresses in 127.0.0.0/8 —
//! nothing here touches a socket.
//!
//! The parts, one file each:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the engine: event heap, nodes, links ([`Sim`]) and the oracle's bookkeeping of events |
//! | `workload.rs` | lookups from random nodes to random keys, recorded for the oracle |
//! | `churn.rs` | arrivals and departures (crash or graceful) around a target population |
//! | `measure.rs`, `report.rs` | measurements against the oracle, and the [`Report`] |
//! | `scenario.rs` | experiments as one API ([`Scenario`]): what `pastry sim` and `pastry sweep` run |
//! | `cluster.rs` | the small-cluster harness ([`Cluster`]) for message-level protocol tests |
//! | `topology.rs`, `oracle.rs` | the latency models, and the numerically-closest-live-node oracle |

mod churn;
mod cluster;
pub mod hostile;
mod measure;
mod oracle;
mod report;
mod scenario;
mod topology;
mod workload;

use core::net::{Ipv4Addr, SocketAddr};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub use cluster::{cluster_addr, Cluster, Datagram};
pub use oracle::Oracle;
pub use report::{Histogram, Report, Summary};
pub use scenario::{ChurnSpec, Outcome, Scenario};
pub use topology::{Point, Topology};

use crate::id::Id;
use crate::node::{Config, Event, Node, Phase};
use crate::rng::Rng;
use crate::time::{Duration, Instant};
use crate::util::{FxHashMap, FxHasher};
use core::hash::Hasher;

/// Latency histogram resolution: 1 ms buckets (up to 100 s).
const LATENCY_BUCKET_US: u64 = 1_000;
/// Stretch histogram resolution, in thousandths: buckets 0.01 wide.
const STRETCH_BUCKET_MILLI: u64 = 10;

/// Index of a node in the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeIdx(pub u32);

/// Network impairments, each a probability per datagram.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Drop the datagram.
    pub loss: f64,
    /// Deliver it twice.
    pub duplicate: f64,
    /// Flip one random byte.
    pub corrupt: f64,
    /// Add a uniform random delay up to this much (reorders datagrams).
    pub jitter: Duration,
}

/// Simulation settings.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Proximity model.
    pub topology: Topology,
    /// Link impairments.
    pub faults: Faults,
    /// Template for every node's configuration (`seed` and `id` are set per node).
    pub node: Config,
    /// How a newcomer's bootstrap node is chosen.
    pub bootstrap: Bootstrap,
}

/// How the simulator picks the node a newcomer joins through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bootstrap {
    /// A uniformly random active node: finding a nearby one is the join protocol's job.
    #[default]
    Random,
    /// The proximity-closest of 32 random active nodes, as the Pastry paper assumed.
    Near,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            topology: Topology::Sphere,
            faults: Faults::default(),
            node: Config::default(),
            bootstrap: Bootstrap::default(),
        }
    }
}

#[derive(Debug)]
enum Ev {
    Datagram {
        to: NodeIdx,
        from: SocketAddr,
        data: Vec<u8>,
    },
    Timer(NodeIdx),
    Lookup,
    Churn,
}

/// Traffic counters of nodes that crashed or left (for the report).
#[derive(Clone, Debug, Default)]
struct Departed {
    maint: u64,
    maint_bytes: u64,
    join: u64,
    node_seconds: f64,
    nodes: u64,
    by_type: [u64; 16],
    join_by_type: [u64; 16],
}

/// A churn process: nodes arrive (Poisson) and depart after exponential sessions.
#[derive(Clone, Copy, Debug)]
struct Churn {
    mean_session: Duration,
    graceful: f64,
    until: Instant,
    target: usize,
}

struct Slot {
    node: Option<Node>,
    pos: Point,
    timer_at: Option<Instant>,
    /// Counted in the oracle (active and alive).
    in_oracle: bool,
    /// When the node was created.
    started: Instant,
    /// Maintenance (messages, bytes) at the last [`Sim::mark_traffic`].
    maint_mark: (u64, u64),
    /// When the node crashed or left.
    gone_at: Option<Instant>,
}

/// What is known about one lookup.
#[derive(Clone, Copy, Debug)]
struct LookupRec {
    key: Id,
    src: NodeIdx,
    sent: Instant,
    deliveries: u32,
    /// Reported undeliverable to its source.
    reported: bool,
    /// Where the source sent it first.
    first_hop: Option<NodeIdx>,
}

/// The simulator.
pub struct Sim {
    cfg: SimConfig,
    now: Instant,
    seq: u64,
    /// `(time, sequence, slab index)`: small entries keep the heap's sifting cheap; the events
    /// themselves wait in `slab`.
    queue: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    slots: Vec<Slot>,
    rng: Rng,
    oracle: Oracle,
    lookups: FxHashMap<u64, LookupRec>,
    pending_lookups: u64,
    lookup_gap: Duration,
    lookup_payload: usize,
    churn: Option<Churn>,
    traffic_mark: Option<Instant>,
    gone: Departed,
    live_count: usize,
    recorded: Option<Vec<(NodeIdx, Event)>>,
    /// Crashed nodes still held in some leaf set: when each crashed.
    crashed_at: FxHashMap<Id, Instant>,
    digest: FxHasher,
    buf: Vec<u8>,
    tap: Option<Tap>,
    /// The sender of the datagram being handled (for the last hop of a delivery).
    last_from: Option<NodeIdx>,
    /// Aggregated results.
    pub report: Report,
}

/// A datagram seen by a [`Sim::set_tap`] observer.
#[derive(Debug)]
pub enum Tapped<'a> {
    /// Handed to node `to`.
    Received {
        /// Virtual time.
        at: Instant,
        /// The receiver.
        to: NodeIdx,
        /// The sender's address.
        from: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// Dropped by the simulated network (loss).
    Lost {
        /// Virtual time it was sent.
        at: Instant,
        /// The sender.
        from: NodeIdx,
        /// The intended receiver.
        to: NodeIdx,
        /// The datagram.
        data: &'a [u8],
    },
}

/// An observer of every datagram (see [`Sim::set_tap`]).
type Tap = Box<dyn FnMut(Tapped<'_>)>;

impl core::fmt::Debug for Sim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("nodes", &self.slots.len())
            .field("live", &self.oracle.len())
            .finish_non_exhaustive()
    }
}

/// The virtual address of node `i`: 127.a.b.c:port, unique per index.
pub fn sim_addr(i: NodeIdx) -> SocketAddr {
    let i = i.0;
    let ip = Ipv4Addr::new(127, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::from((ip, 10_000 + (i >> 24) as u16))
}

fn idx_of(addr: SocketAddr) -> Option<NodeIdx> {
    match addr {
        SocketAddr::V4(a) => {
            let o = a.ip().octets();
            let hi = u32::from(a.port().checked_sub(10_000)?);
            Some(NodeIdx(
                (hi << 24) | (u32::from(o[1]) << 16) | (u32::from(o[2]) << 8) | u32::from(o[3]),
            ))
        }
        SocketAddr::V6(_) => None,
    }
}

impl Sim {
    /// An empty simulation.
    pub fn new(cfg: SimConfig) -> Sim {
        Sim {
            rng: Rng::new(cfg.seed),
            cfg,
            now: Instant::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            slots: Vec::new(),
            oracle: Oracle::default(),
            lookups: FxHashMap::default(),
            pending_lookups: 0,
            lookup_gap: Duration::from_millis(1),
            lookup_payload: 32,
            churn: None,
            traffic_mark: None,
            gone: Departed::default(),
            live_count: 0,
            recorded: None,
            crashed_at: FxHashMap::default(),
            digest: FxHasher::default(),
            buf: Vec::new(),
            tap: None,
            last_from: None,
            report: Report {
                latency_us: Histogram::with_width(LATENCY_BUCKET_US),
                join_time_us: Histogram::with_width(100 * LATENCY_BUCKET_US),
                dead_leaf_us: Histogram::with_width(100 * LATENCY_BUCKET_US),
                stretch_milli: Histogram::with_width(STRETCH_BUCKET_MILLI),
                ..Report::default()
            },
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// The oracle.
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }
    /// Nodes ever created.
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// Whether no node was created.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    /// Node `i`, if alive.
    pub fn node(&self, i: NodeIdx) -> Option<&Node> {
        self.slots.get(i.0 as usize)?.node.as_ref()
    }
    /// Node `i`, if alive, for application calls (drive it with [`Sim::pump`] afterwards).
    pub fn node_mut(&mut self, i: NodeIdx) -> Option<&mut Node> {
        self.slots.get_mut(i.0 as usize)?.node.as_mut()
    }
    /// Live nodes' indices.
    pub fn live(&self) -> impl Iterator<Item = NodeIdx> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.node.is_some())
            .map(|(i, _)| NodeIdx(i as u32))
    }
    /// Live active nodes' indices.
    pub fn active(&self) -> Vec<NodeIdx> {
        self.live()
            .filter(|&i| self.node(i).is_some_and(Node::is_active))
            .collect()
    }

    /// A digest of every datagram delivered so far (time, receiver, bytes): equal seeds give
    /// equal digests.
    pub fn trace_digest(&self) -> u64 {
        self.digest.finish()
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        let k = match self.free.pop() {
            Some(k) => {
                self.slab[k as usize] = Some(ev);
                k
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, k)));
    }

    /// Creates a node with an id drawn from the simulation's seed (or `id`) and a random
    /// position; returns its index. The node is idle: start it with [`Sim::start`].
    pub fn add_node(&mut self, id: Option<Id>) -> NodeIdx {
        let idx = NodeIdx(self.slots.len() as u32);
        let mut cfg = self.cfg.node.clone();
        cfg.seed = self.rng.next_u64();
        cfg.id = Some(id.unwrap_or_else(|| Id(self.rng.next_u128())));
        // The template was validated by the caller; a bad template is a programming error.
        let node = Node::new(cfg, sim_addr(idx)).expect("valid node config");
        let pos = self.cfg.topology.place(&mut self.rng);
        self.live_count += 1;
        self.slots.push(Slot {
            node: Some(node),
            pos,
            timer_at: None,
            in_oracle: false,
            started: self.now,
            maint_mark: (0, 0),
            gone_at: None,
        });
        idx
    }

    /// Moves node `i` to `pos` (a scripted topology; do it before the node starts).
    pub fn place(&mut self, i: NodeIdx, pos: Point) {
        if let Some(s) = self.slots.get_mut(i.0 as usize) {
            s.pos = pos;
        }
    }

    /// The one-way latency between nodes `a` and `b` in the simulation's topology.
    pub fn latency(&self, a: NodeIdx, b: NodeIdx) -> Duration {
        let (pa, pb) = (self.slots[a.0 as usize].pos, self.slots[b.0 as usize].pos);
        self.cfg.topology.latency(pa, pb)
    }

    /// Starts node `i`: alone when `bootstrap` is `None`, else joining through it.
    pub fn start(&mut self, i: NodeIdx, bootstrap: Option<NodeIdx>) {
        let now = self.now;
        let fallbacks: Vec<NodeIdx> = match bootstrap {
            Some(_) => (0..2).filter_map(|_| self.random_active()).collect(),
            None => Vec::new(),
        };
        if let Some(n) = self.slots[i.0 as usize].node.as_mut() {
            match bootstrap {
                None => n.start_alone(now),
                Some(b) => {
                    // Two random fallbacks after the chosen bootstrap, as a real deployment
                    // would list several.
                    let mut boots = vec![sim_addr(b)];
                    boots.extend(fallbacks.iter().map(|&f| sim_addr(f)));
                    // The node is idle and the list non-empty: join cannot refuse.
                    let _ = n.join(now, &boots);
                }
            }
        }
        self.pump(i);
    }

    /// Adds `n` nodes, one every `gap`, each joining through a bootstrap chosen as
    /// [`SimConfig::bootstrap`] says (the first starts alone if the overlay is empty). Runs the
    /// clock while they join.
    pub fn grow(&mut self, n: usize, gap: Duration) -> Vec<NodeIdx> {
        let mut added = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self.add_node(None);
            let boot = self.bootstrap_for(i);
            self.start(i, boot);
            added.push(i);
            let t = self.now + gap;
            self.run_until(t);
        }
        added
    }

    /// A bootstrap for newcomer `i`, chosen as [`SimConfig::bootstrap`] says (`None` while no
    /// node is active).
    pub fn bootstrap_for(&mut self, i: NodeIdx) -> Option<NodeIdx> {
        match self.cfg.bootstrap {
            Bootstrap::Random => self.random_active(),
            Bootstrap::Near => self.nearby_active(i),
        }
    }

    /// A bootstrap for newcomer `i`, as the Pastry paper assumes one: a node near it in the
    /// proximity space (the nearest of 32 random active nodes).
    pub fn nearby_active(&mut self, i: NodeIdx) -> Option<NodeIdx> {
        let me = self.slots[i.0 as usize].pos;
        let topo = self.cfg.topology;
        let mut best: Option<(Duration, NodeIdx)> = None;
        for _ in 0..32 {
            let Some(c) = self.random_active() else {
                break;
            };
            let d = topo.latency(me, self.slots[c.0 as usize].pos);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, c));
            }
        }
        best.map(|(_, c)| c)
    }

    /// A uniformly random live node (active or still joining).
    pub fn random_live(&mut self) -> Option<NodeIdx> {
        for _ in 0..64 {
            let i = NodeIdx(self.rng.below(self.slots.len().max(1) as u64) as u32);
            if self
                .slots
                .get(i.0 as usize)
                .is_some_and(|s| s.node.is_some())
            {
                return Some(i);
            }
        }
        let live: Vec<NodeIdx> = self.live().collect();
        live.get(self.rng.below(live.len() as u64) as usize)
            .copied()
    }

    /// A uniformly random active node.
    pub fn random_active(&mut self) -> Option<NodeIdx> {
        if self.oracle.is_empty() {
            return None;
        }
        // Rejection sampling over slots: cheap while most nodes are active.
        for _ in 0..64 {
            let i = NodeIdx(self.rng.below(self.slots.len() as u64) as u32);
            if self.slots[i.0 as usize].in_oracle {
                return Some(i);
            }
        }
        let act = self.active();
        act.get(self.rng.below(act.len() as u64) as usize).copied()
    }

    /// Crashes node `i`: it vanishes without a word.
    pub fn crash(&mut self, i: NodeIdx) {
        let id = self.node(i).map(Node::id);
        if self.retire(i) {
            self.report.crashed += 1;
            if let Some(id) = id {
                if self.crashed_at.len() >= 1 << 16 {
                    // Forget crashes too old to still be held anywhere.
                    let now = self.now;
                    self.crashed_at
                        .retain(|_, t| now - *t < Duration::from_secs(600));
                }
                self.crashed_at.insert(id, self.now);
            }
        }
    }

    /// Node `i` leaves gracefully: it tells its leaf set, then is gone.
    pub fn leave(&mut self, i: NodeIdx) {
        let now = self.now;
        if let Some(n) = self.slots[i.0 as usize].node.as_mut() {
            n.leave(now);
        }
        self.pump(i);
        self.retire(i);
    }

    /// Removes node `i`, keeping its traffic counters for the report; whether it was alive.
    fn retire(&mut self, i: NodeIdx) -> bool {
        let mark = self.traffic_mark.unwrap_or(Instant::ZERO);
        let now = self.now;
        let s = &mut self.slots[i.0 as usize];
        let Some(n) = s.node.take() else {
            return false;
        };
        s.gone_at = Some(now);
        self.live_count -= 1;
        if s.in_oracle {
            self.oracle.remove(n.id());
            s.in_oracle = false;
        }
        let g = &mut self.gone;
        let st = n.stats();
        g.maint += st.maintenance_msgs() - s.maint_mark.0;
        g.maint_bytes += st.maintenance_bytes() - s.maint_mark.1;
        g.join += st.join_msgs();
        g.node_seconds += (now - s.started.max(mark)).as_secs_f64();
        g.nodes += 1;
        for (t, c) in st.sent_by_type.iter().enumerate() {
            g.by_type[t] += c;
        }
        for (t, c) in st.joining_by_type.iter().enumerate() {
            g.join_by_type[t] += c;
        }
        true
    }

    /// Drains node `i`'s outputs (datagrams, events, next deadline) after an input.
    pub fn pump(&mut self, i: NodeIdx) {
        let now = self.now;
        let Some(mut node) = self.slots[i.0 as usize].node.take() else {
            return;
        };
        let mut buf = core::mem::take(&mut self.buf);
        while let Some(dst) = node.poll_transmit(&mut buf) {
            self.transmit(i, dst, &buf);
        }
        self.buf = buf;
        while let Some(ev) = node.poll_event() {
            self.on_event(i, &node, ev);
        }
        if node.phase() == Phase::Idle {
            // It gave up joining: it is gone, like a crashed node.
            self.slots[i.0 as usize].node = Some(node);
            self.retire(i);
            return;
        }
        let slot = &mut self.slots[i.0 as usize];
        if let Some(t) = node.poll_timeout() {
            if slot.timer_at.is_none_or(|s| t < s || s < now) {
                slot.timer_at = Some(t);
                let at = t.max(now);
                slot.node = Some(node);
                self.push(at, Ev::Timer(i));
                return;
            }
        }
        slot.node = Some(node);
    }

    fn transmit(&mut self, from: NodeIdx, dst: SocketAddr, data: &[u8]) {
        self.report.datagrams += 1;
        let Some(to) = idx_of(dst).filter(|t| (t.0 as usize) < self.slots.len()) else {
            return;
        };
        let f = self.cfg.faults;
        if self.rng.chance(f.loss) {
            if let Some(tap) = self.tap.as_mut() {
                tap(Tapped::Lost {
                    at: self.now,
                    from,
                    to,
                    data,
                });
            }
            self.report.dropped += 1;
            return;
        }
        let copies = if self.rng.chance(f.duplicate) { 2 } else { 1 };
        let lat = self.cfg.topology.latency(
            self.slots[from.0 as usize].pos,
            self.slots[to.0 as usize].pos,
        );
        for _ in 0..copies {
            let mut d = data.to_vec();
            if self.rng.chance(f.corrupt) && !d.is_empty() {
                let k = self.rng.below(d.len() as u64) as usize;
                d[k] ^= 1 << self.rng.below(8);
            }
            let jitter = Duration(self.rng.below(f.jitter.as_micros() + 1));
            let at = self.now + lat + jitter;
            self.push(
                at,
                Ev::Datagram {
                    to,
                    from: sim_addr(from),
                    data: d,
                },
            );
        }
    }

    /// Shows every datagram received or lost to `tap` (for tests that count traffic, and for
    /// tracing a protocol exchange while debugging).
    pub fn set_tap(&mut self, tap: impl FnMut(Tapped<'_>) + 'static) {
        self.tap = Some(Box::new(tap));
    }

    /// Starts keeping a copy of every application event (see [`Sim::take_events`]).
    pub fn record_events(&mut self) {
        self.recorded.get_or_insert_with(Vec::new);
    }

    /// The application events recorded since the last call, with the node that raised them.
    pub fn take_events(&mut self) -> Vec<(NodeIdx, Event)> {
        self.recorded
            .as_mut()
            .map(core::mem::take)
            .unwrap_or_default()
    }

    fn on_event(&mut self, i: NodeIdx, node: &Node, ev: Event) {
        if let Some(log) = self.recorded.as_mut() {
            log.push((i, ev.clone()));
        }
        match ev {
            Event::Joined => {
                let took = self.now - self.slots[i.0 as usize].started;
                self.report.join_time_us.add(took.as_micros());
                self.slots[i.0 as usize].in_oracle = true;
                self.oracle.insert(node.id());
                self.report.joined += 1;
            }
            Event::JoinFailed => self.report.join_failed += 1,
            Event::Delivered {
                msg_id, key, hops, ..
            } => {
                let Some(rec) = self.lookups.get_mut(&msg_id) else {
                    return;
                };
                rec.deliveries += 1;
                if rec.deliveries > 1 {
                    self.report.duplicates += 1;
                    return;
                }
                let rec = *rec;
                self.report.delivered += 1;
                if self.oracle.root(key) == Some(node.id()) {
                    self.report.correct += 1;
                } else {
                    self.report.incorrect += 1;
                }
                self.report.hops.add(u64::from(hops));
                let took = self.now - rec.sent;
                let direct = self.cfg.topology.latency(
                    self.slots[rec.src.0 as usize].pos,
                    self.slots[i.0 as usize].pos,
                );
                if rec.src != i {
                    let ratio = took.as_micros() as f64 / direct.as_micros() as f64;
                    let r = &mut self.report;
                    r.stretch_sum += ratio;
                    r.stretch_n += 1;
                    r.stretch_milli.add((ratio * 1e3) as u64);
                    r.path_us_sum += took.as_micros() as f64;
                    r.direct_us_sum += direct.as_micros() as f64;
                    let hop = |a: NodeIdx, b: NodeIdx| {
                        let (pa, pb) = (self.slots[a.0 as usize].pos, self.slots[b.0 as usize].pos);
                        self.cfg.topology.latency(pa, pb).as_micros() as f64
                    };
                    let first = rec.first_hop.map_or(0.0, |f| hop(rec.src, f));
                    let last = self.last_from.map_or(0.0, |f| hop(f, i));
                    self.report.first_hop_us_sum += first;
                    self.report.last_hop_us_sum += last;
                }
                self.report.latency_us.add(took.as_micros());
                let _ = rec.key;
            }
            Event::Undeliverable { msg_id, .. } => {
                if let Some(r) = self.lookups.get_mut(&msg_id) {
                    if !r.reported && r.deliveries == 0 {
                        r.reported = true;
                        self.report.undeliverable += 1;
                    }
                }
            }
            Event::NeighborLeft(h) => {
                // How long a live node kept a crashed one in its leaf set (during which keys
                // the crashed node owned were routed to it and waited).
                if let Some(&t) = self.crashed_at.get(&h.id) {
                    self.report.dead_leaf_us.add((self.now - t).as_micros());
                }
            }
            Event::NeighborJoined(_) => {}
        }
    }

    /// Processes every event up to and including time `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Instant) {
        while self.queue.peek().is_some_and(|Reverse(q)| q.0 <= t) {
            let Some(Reverse((at, _, k))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            self.free.push(k);
            if let Some(ev) = self.slab[k as usize].take() {
                self.step(ev);
            }
        }
        self.now = self.now.max(t);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    fn step(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Datagram { to, from, data } => {
                let s = &mut self.slots[to.0 as usize];
                let Some(n) = s.node.as_mut() else {
                    return;
                };
                self.digest.write_u64(now.as_micros());
                self.digest.write_u32(to.0);
                self.digest.write(&data);
                self.last_from = idx_of(from);
                if let Some(tap) = self.tap.as_mut() {
                    tap(Tapped::Received {
                        at: now,
                        to,
                        from,
                        data: &data,
                    });
                }
                n.handle_datagram(now, from, &data);
                self.report.events += 1;
                self.pump(to);
                self.last_from = None;
            }
            Ev::Timer(i) => {
                let s = &mut self.slots[i.0 as usize];
                if s.timer_at != Some(now) {
                    return;
                }
                s.timer_at = None;
                let Some(n) = s.node.as_mut() else {
                    return;
                };
                n.handle_timeout(now);
                self.report.events += 1;
                self.pump(i);
            }
            Ev::Churn => self.churn_step(),
            Ev::Lookup => {
                if self.pending_lookups == 0 {
                    return;
                }
                self.pending_lookups -= 1;
                self.one_lookup();
                if self.pending_lookups > 0 {
                    let at = now + self.lookup_gap;
                    self.push(at, Ev::Lookup);
                }
            }
        }
    }

    /// Whether node `i` is alive and active.
    pub fn is_active(&self, i: NodeIdx) -> bool {
        self.node(i).is_some_and(|n| n.phase() == Phase::Active)
    }
}
