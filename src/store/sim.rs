//! The store in the simulator: a [`StoreSim`] puts a [`Store`] beside every live node of a
//! [`Sim`] and drives both, and checks where replicas live against the oracle.
//!
//! The simulator keeps node events to itself while it runs, so the store sees them in steps:
//! the simulation runs for [`StoreSim::step`] of virtual time, then every recorded event goes
//! to its node's store, due store timers fire and the stores' messages are routed. A store's
//! reaction is thus up to one step late (1 ms by default, below one network hop). The `forward`
//! interception runs inside the node, at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{OpId, Outcome, Store, StoreConfig, StoreError};
use crate::id::Id;
use crate::node::{ForwardAction, ForwardCtx, Forwarder, Node};
use crate::sim::{NodeIdx, Sim};
use crate::time::{Duration, Instant};

/// A store shared by its driver and the node's `forward` upcall (one thread; never contended).
type Shared = Arc<Mutex<Store>>;

/// The `forward` upcall of node `idx`: a get it answers leaves a message in the store's queue,
/// so the node is noted in `dirty` for the next round.
struct Upcall {
    store: Shared,
    idx: u32,
    dirty: Arc<Mutex<Vec<u32>>>,
}

impl Forwarder for Upcall {
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        let a = self.store.lock().handle_forward(ctx);
        if a == ForwardAction::Drop {
            self.dirty.lock().push(self.idx);
        }
        a
    }
}

/// Where the replicas are, against the oracle (see [`StoreSim::placement`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Distinct keys held by any live node.
    pub objects: usize,
    /// Keys not held by exactly their k oracle replica nodes (a missing or an extra copy).
    pub misplaced: usize,
    /// Copies missing from an oracle replica node.
    pub missing_copies: usize,
    /// Copies on live nodes outside the key's oracle replica set.
    pub extra_copies: usize,
    /// Of the keys asked about, those no live node holds.
    pub lost: usize,
}

/// A simulation with a store on every node. See the module docs.
pub struct StoreSim {
    /// The simulation (grow it, crash or churn it through here).
    pub sim: Sim,
    cfg: StoreConfig,
    stores: Vec<Option<Shared>>,
    outcomes: Vec<(NodeIdx, OpId, Outcome)>,
    /// Stores whose `forward` upcall queued a message.
    dirty: Arc<Mutex<Vec<u32>>>,
    /// Store deadlines, `(when, node)`; an entry counts only while it equals `deadline[node]`.
    due: BinaryHeap<Reverse<(Instant, u32)>>,
    deadline: Vec<Option<Instant>>,
    /// Counters of the stores of nodes that are gone.
    departed: super::StoreStats,
    /// Virtual time between two rounds of store work.
    pub step: Duration,
}

impl core::fmt::Debug for StoreSim {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StoreSim")
            .field("sim", &self.sim)
            .field("stores", &self.stores.iter().flatten().count())
            .finish_non_exhaustive()
    }
}

impl StoreSim {
    /// Wraps `sim` (turning on its event recording); every node gets a store with `cfg`.
    pub fn new(mut sim: Sim, cfg: StoreConfig) -> StoreSim {
        sim.record_events();
        let mut s = StoreSim {
            sim,
            cfg,
            stores: Vec::new(),
            outcomes: Vec::new(),
            dirty: Arc::default(),
            due: BinaryHeap::new(),
            deadline: Vec::new(),
            departed: super::StoreStats::default(),
            step: Duration::from_millis(1),
        };
        s.attach();
        s
    }

    /// Gives every node created since the last call a store.
    fn attach(&mut self) {
        let n = self.sim.len();
        for i in self.stores.len()..n {
            let idx = NodeIdx(i as u32);
            let store = self.sim.node_mut(idx).map(|node| {
                let s: Shared = Arc::new(Mutex::new(Store::new(self.cfg.clone())));
                node.set_forwarder(Some(Box::new(Upcall {
                    store: s.clone(),
                    idx: i as u32,
                    dirty: self.dirty.clone(),
                })));
                s
            });
            self.stores.push(store);
            self.deadline.push(None);
        }
    }

    /// Forgets the store of node `i` if the node is gone (keeping its counters); whether it was.
    fn detach_if_gone(&mut self, i: usize) -> bool {
        if self.sim.node(NodeIdx(i as u32)).is_some() {
            return false;
        }
        if let Some(s) = self.stores[i].take() {
            self.departed.add(s.lock().stats());
        }
        true
    }

    /// Node `i`'s store, if the node is alive.
    pub fn store(&self, i: NodeIdx) -> Option<parking_lot::MutexGuard<'_, Store>> {
        self.sim.node(i)?;
        self.stores.get(i.0 as usize)?.as_ref().map(|s| s.lock())
    }

    /// Runs for `d` of virtual time, the stores working every [`StoreSim::step`].
    pub fn run_for(&mut self, d: Duration) {
        let end = self.sim.now() + d;
        while self.sim.now() < end {
            let t = (self.sim.now() + self.step).min(end);
            self.sim.run_until(t);
            self.work();
        }
    }

    /// Adds `n` nodes, one every `gap`, each joining through a nearby active node (the first
    /// starts alone), the stores working meanwhile.
    pub fn grow(&mut self, n: usize, gap: Duration) -> Vec<NodeIdx> {
        let mut added = Vec::with_capacity(n);
        for _ in 0..n {
            let i = self.sim.add_node(None);
            self.attach();
            let boot = self.sim.nearby_active(i);
            self.sim.start(i, boot);
            added.push(i);
            self.run_for(gap);
        }
        added
    }

    /// One round of store work at the current time: the stores with events, with messages
    /// queued by their `forward` upcall, or with a timer due.
    fn work(&mut self) {
        self.attach();
        let now = self.sim.now();
        let mut touched: Vec<u32> = core::mem::take(&mut *self.dirty.lock());
        for (i, ev) in self.sim.take_events() {
            let (Some(s), Some(node)) = (self.stores[i.0 as usize].clone(), self.sim.node(i))
            else {
                continue;
            };
            s.lock().handle_event(now, node, &ev);
            touched.push(i.0);
        }
        while let Some(&Reverse((t, i))) = self.due.peek() {
            if t > now {
                break;
            }
            self.due.pop();
            if self.deadline[i as usize] == Some(t) {
                self.deadline[i as usize] = None;
                touched.push(i);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for i in touched {
            self.touch(i as usize, now);
        }
    }

    /// Fires node `i`'s store timers if due, collects its outcomes, routes its messages and
    /// notes its next deadline.
    fn touch(&mut self, i: usize, now: Instant) {
        if self.detach_if_gone(i) {
            return;
        }
        let Some(s) = self.stores[i].clone() else {
            return;
        };
        let idx = NodeIdx(i as u32);
        let has = {
            let mut st = s.lock();
            if st.poll_timeout().is_some_and(|t| t <= now) {
                if let Some(node) = self.sim.node(idx) {
                    st.handle_timeout(now, node);
                }
            }
            self.collect(idx, &mut st);
            st.has_transmit()
        };
        if has {
            self.flush(idx, &s);
        }
        let next = s.lock().poll_timeout();
        if next != self.deadline[i] {
            self.deadline[i] = next;
            if let Some(t) = next {
                self.due.push(Reverse((t.max(now), i as u32)));
                self.deadline[i] = Some(t.max(now));
            }
        }
    }

    /// Routes the store's queued messages through its node. The store is not locked while the
    /// node routes: the node calls the store's `forward` upcall from inside `route`.
    fn flush(&mut self, i: NodeIdx, s: &Shared) {
        let now = self.sim.now();
        let msgs: Vec<super::Outgoing> = {
            let mut st = s.lock();
            core::iter::from_fn(|| st.poll_transmit()).collect()
        };
        let Some(node) = self.sim.node_mut(i) else {
            return;
        };
        let mut msgs = msgs.into_iter();
        while let Some(m) = msgs.next() {
            if let Err(e) = node.route(now, m.key, m.payload.clone(), m.hint) {
                let mut st = s.lock();
                if e != crate::node::RouteError::Overloaded {
                    st.transmit_failed(m, e);
                    continue;
                }
                // Back in their order: the refused one first, the rest behind it.
                let rest: Vec<super::Outgoing> = core::iter::once(m).chain(msgs.by_ref()).collect();
                for m in rest.into_iter().rev() {
                    st.transmit_failed(m, e);
                }
                break;
            }
        }
        self.sim.pump(i);
    }

    fn collect(&mut self, i: NodeIdx, st: &mut Store) {
        while let Some((op, out)) = st.poll_outcome() {
            self.outcomes.push((i, op, out));
        }
    }

    /// Starts a put of `value` at node `i` (results: [`StoreSim::take_outcomes`]).
    ///
    /// # Errors
    /// As [`Store::put`]; [`StoreError::Route`] when node `i` is gone.
    pub fn put(&mut self, i: NodeIdx, value: impl Into<Bytes>) -> Result<(OpId, Id), StoreError> {
        self.call(i, |s, now, node| s.put(now, node, value))
    }

    /// Starts a named put at node `i`.
    ///
    /// # Errors
    /// As [`Store::put_named`]; [`StoreError::Route`] when node `i` is gone.
    pub fn put_named(
        &mut self,
        i: NodeIdx,
        name: &[u8],
        value: &[u8],
    ) -> Result<(OpId, Id), StoreError> {
        self.call(i, |s, now, node| s.put_named(now, node, name, value))
    }

    /// Starts a get of `key` at node `i`.
    ///
    /// # Errors
    /// As [`Store::get`]; [`StoreError::Route`] when node `i` is gone.
    pub fn get(&mut self, i: NodeIdx, key: Id) -> Result<OpId, StoreError> {
        self.call(i, |s, now, node| s.get(now, node, key))
    }

    fn call<T>(
        &mut self,
        i: NodeIdx,
        f: impl FnOnce(&mut Store, crate::time::Instant, &Node) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.attach();
        let now = self.sim.now();
        let gone = StoreError::Route(crate::node::RouteError::Stopped);
        let s = self
            .stores
            .get(i.0 as usize)
            .cloned()
            .flatten()
            .ok_or(gone.clone())?;
        let r = {
            let node = self.sim.node(i).ok_or(gone)?;
            f(&mut s.lock(), now, node)
        };
        self.collect(i, &mut s.lock());
        self.flush(i, &s);
        let now = self.sim.now();
        self.touch(i.0 as usize, now);
        r
    }

    /// The results of finished operations since the last call, with the node they ran at.
    pub fn take_outcomes(&mut self) -> Vec<(NodeIdx, OpId, Outcome)> {
        core::mem::take(&mut self.outcomes)
    }

    /// Where every key held anywhere lives, against the oracle's k numerically closest live
    /// active nodes; `expected` keys that no live node holds count as lost.
    pub fn placement(&self, expected: &[Id]) -> Placement {
        let k = self.cfg.replicas;
        let ring: Vec<Id> = self.sim.oracle().iter().collect();
        let mut holders: std::collections::BTreeMap<Id, Vec<Id>> = Default::default();
        for i in self.sim.live() {
            let (Some(node), Some(s)) = (self.sim.node(i), self.store(i)) else {
                continue;
            };
            for key in s.keys() {
                holders.entry(key).or_default().push(node.id());
            }
        }
        let mut p = Placement {
            objects: holders.len(),
            lost: expected.iter().filter(|k| !holders.contains_key(k)).count(),
            ..Placement::default()
        };
        for (key, have) in &holders {
            let want = k_closest(&ring, *key, k);
            let missing = want.iter().filter(|w| !have.contains(w)).count();
            let extra = have.iter().filter(|h| !want.contains(h)).count();
            p.missing_copies += missing;
            p.extra_copies += extra;
            if missing + extra > 0 {
                p.misplaced += 1;
            }
        }
        for key in expected.iter().filter(|k| !holders.contains_key(k)) {
            p.misplaced += 1;
            p.missing_copies += k_closest(&ring, *key, k).len();
        }
        p
    }

    /// The counters of the live nodes' stores plus those of departed nodes.
    pub fn stats_all(&self) -> super::StoreStats {
        let mut t = self.departed.clone();
        for s in self.stores.iter().flatten() {
            t.add(s.lock().stats());
        }
        t
    }

    /// The counters of the live nodes' stores.
    pub fn stats_sum(&self) -> super::StoreStats {
        let mut t = super::StoreStats::default();
        for (i, s) in self.stores.iter().enumerate() {
            if let (Some(s), Some(_)) = (s, self.sim.node(NodeIdx(i as u32))) {
                t.add(s.lock().stats());
            }
        }
        t
    }
}

/// The `k` ids of sorted `ring` numerically closest to `key` (ring distance), closest first.
fn k_closest(ring: &[Id], key: Id, k: usize) -> Vec<Id> {
    let n = ring.len();
    if n == 0 {
        return Vec::new();
    }
    let p = ring.partition_point(|&x| x < key);
    let mut c: Vec<Id> = (0..k.min(n))
        .flat_map(|j| [ring[(p + j) % n], ring[(p + n - 1 - j) % n]])
        .collect();
    c.sort();
    c.dedup();
    c.sort_by(|&a, &b| key.cmp_closeness(a, b));
    c.truncate(k);
    c
}
