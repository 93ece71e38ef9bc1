//! A small-cluster harness for message-level tests of one sub-protocol: a handful of [`Node`]s
//! on a virtual clock, every datagram in flight visible and scriptable (drop, delay, reorder,
//! forge), in the style of quinn-proto's `Pair` / `drive`.
//!
//! Node `i` lives at `127.0.0.1:(10_000 + i)`. Datagrams to any other address (an attacker, a
//! third party named in a forged frame) are kept in [`Cluster::outside`] for the test to read.
//!
//! ```
//! use pastry::sim::Cluster;
//! use pastry::{Duration, Id};
//!
//! let mut c = Cluster::new(&[Id(1 << 100), Id(2 << 100), Id(3 << 100)]);
//! c.start_alone(0);
//! c.join(1, 0);
//! c.join(2, 0);
//! c.drive_for(Duration::from_secs(2));
//! assert!(c.node(0).leaf_set().contains(Id(2 << 100)));
//! ```

use core::net::{Ipv4Addr, SocketAddr};

use crate::id::Id;
use crate::node::{Config, Event, Node};
use crate::time::{Duration, Instant};

/// One datagram in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// When it arrives.
    pub at: Instant,
    /// The sender's address.
    pub from: SocketAddr,
    /// The receiver's address.
    pub to: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A handful of nodes and the datagrams between them. See the module docs.
#[derive(Debug)]
pub struct Cluster {
    now: Instant,
    nodes: Vec<Option<Node>>,
    /// One-way latency of every datagram sent from now on.
    pub latency: Duration,
    /// Datagrams in flight between nodes, in the order they arrive (ties: the order sent).
    pub in_flight: Vec<Datagram>,
    /// Datagrams the nodes sent to addresses outside the cluster.
    pub outside: Vec<Datagram>,
    events: Vec<(usize, Event)>,
    buf: Vec<u8>,
}

/// The address of node `i` of a cluster.
pub fn cluster_addr(i: usize) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000 + i as u16))
}

impl Cluster {
    /// Idle nodes with these ids and the default configuration; 100 µs links.
    pub fn new(ids: &[Id]) -> Cluster {
        Cluster::with_config(ids, &Config::default())
    }

    /// Idle nodes with these ids and configuration `cfg` (its `id` is replaced, its seed varied
    /// per node).
    ///
    /// # Panics
    /// If `cfg` is invalid (a test's own mistake).
    pub fn with_config(ids: &[Id], cfg: &Config) -> Cluster {
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let cfg = Config {
                    id: Some(id),
                    seed: cfg.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    ..cfg.clone()
                };
                Some(Node::new(cfg, cluster_addr(i)).expect("a valid test configuration"))
            })
            .collect();
        Cluster {
            now: Instant::ZERO,
            nodes,
            latency: Duration::from_micros(100),
            in_flight: Vec::new(),
            outside: Vec::new(),
            events: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Node `i`.
    ///
    /// # Panics
    /// If node `i` does not exist or was removed.
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("a live node")
    }

    /// Node `i`, for application calls; [`Cluster::pump`] it afterwards.
    ///
    /// # Panics
    /// If node `i` does not exist or was removed.
    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("a live node")
    }

    /// The address of node `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        cluster_addr(i)
    }

    /// Starts node `i` as a new overlay's first member.
    pub fn start_alone(&mut self, i: usize) {
        let now = self.now;
        self.node_mut(i).start_alone(now);
        self.pump(i);
    }

    /// Starts node `i` joining through node `via`.
    pub fn join(&mut self, i: usize, via: usize) {
        let (now, boot) = (self.now, cluster_addr(via));
        // An idle node with a bootstrap cannot refuse.
        let _ = self.node_mut(i).join(now, &[boot]);
        self.pump(i);
    }

    /// Node `i` leaves gracefully (its `Leave` frames go in flight) and is removed.
    pub fn leave(&mut self, i: usize) {
        let now = self.now;
        self.node_mut(i).leave(now);
        self.pump(i);
        self.nodes[i] = None;
    }

    /// Node `i` crashes: it is removed without a word; datagrams to it are lost.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Whether node `i` is still there.
    pub fn is_live(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(Option::is_some)
    }

    /// Moves node `i`'s queued datagrams in flight (or to [`Cluster::outside`]) and its events
    /// to the event log.
    pub fn pump(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let (from, at) = (cluster_addr(i), self.now + self.latency);
        let mut sent = Vec::new();
        while let Some(to) = node.poll_transmit(&mut self.buf) {
            sent.push(Datagram {
                at,
                from,
                to,
                data: self.buf.clone(),
            });
        }
        while let Some(ev) = node.poll_event() {
            self.events.push((i, ev));
        }
        for d in sent {
            if self.index_of(d.to).is_some() {
                self.in_flight.push(d);
            } else {
                self.outside.push(d);
            }
        }
        self.in_flight.sort_by_key(|d| d.at);
    }

    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| cluster_addr(i) == addr)
    }

    /// Hands `data` to node `i` now as if it came from `from` (a forged or replayed frame).
    pub fn inject(&mut self, i: usize, from: SocketAddr, data: &[u8]) {
        let now = self.now;
        if let Some(n) = self.nodes[i].as_mut() {
            n.handle_datagram(now, from, data);
            self.pump(i);
        }
    }

    /// Removes the datagrams in flight that match `pred`; how many.
    pub fn drop_where(&mut self, mut pred: impl FnMut(&Datagram) -> bool) -> usize {
        let before = self.in_flight.len();
        self.in_flight.retain(|d| !pred(d));
        before - self.in_flight.len()
    }

    /// Delays the datagrams in flight that match `pred` by `by`; how many.
    pub fn delay_where(&mut self, mut pred: impl FnMut(&Datagram) -> bool, by: Duration) -> usize {
        let mut n = 0;
        for d in self.in_flight.iter_mut().filter(|d| pred(d)) {
            d.at += by;
            n += 1;
        }
        self.in_flight.sort_by_key(|d| d.at);
        n
    }

    /// The next moment something happens: a datagram arrives or a node's timer fires.
    fn next_at(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .flatten()
            .filter_map(Node::poll_timeout)
            .min();
        let arrival = self.in_flight.first().map(|d| d.at);
        match (timers, arrival) {
            (Some(t), Some(a)) => Some(t.min(a)),
            (t, a) => t.or(a),
        }
    }

    /// Processes the next event (arrivals before timers at the same instant); false if there is
    /// none before `limit`.
    pub fn step(&mut self, limit: Instant) -> bool {
        let Some(at) = self.next_at().filter(|&t| t <= limit) else {
            return false;
        };
        self.now = self.now.max(at);
        if self.in_flight.first().is_some_and(|d| d.at <= self.now) {
            let d = self.in_flight.remove(0);
            if let Some(i) = self.index_of(d.to) {
                self.inject(i, d.from, &d.data);
            }
            return true;
        }
        let now = self.now;
        for i in 0..self.nodes.len() {
            let due = self.nodes[i]
                .as_ref()
                .and_then(Node::poll_timeout)
                .is_some_and(|t| t <= now);
            if due {
                self.node_mut(i).handle_timeout(now);
                self.pump(i);
            }
        }
        true
    }

    /// Runs for `d` of virtual time.
    pub fn drive_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = end;
    }

    /// Runs until nothing is in flight (timers keep firing meanwhile), at most `limit`; whether
    /// the network went quiet.
    pub fn drive_quiet(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        while !self.in_flight.is_empty() {
            if !self.step(end) {
                return false;
            }
        }
        true
    }

    /// The events raised since the last call, with the node that raised each.
    pub fn take_events(&mut self) -> Vec<(usize, Event)> {
        core::mem::take(&mut self.events)
    }
}
