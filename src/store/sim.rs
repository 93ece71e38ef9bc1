//! The store in the simulator: a [`StoreSim`] puts a [`Store`] beside every live node of a
//! [`Sim`] and drives both, and checks where replicas live against the oracle.
//!
//! The simulator keeps node events to itself while it runs, so the store sees them in steps:
//! the simulation runs for [`StoreSim::step`] of virtual time, then every recorded event goes
//! to its node's store, due store timers fire and the stores' messages are routed. A store's
//! reaction is thus up to one step late (1 ms by default, below one network hop). The `forward`
//! interception runs inside the node, at once.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{OpId, Outcome, Store, StoreConfig, StoreError};
use crate::id::Id;
use crate::node::{ForwardAction, ForwardCtx, Forwarder, Node};
use crate::sim::{NodeIdx, Sim};
use crate::time::Duration;

/// A store shared by its driver and the node's `forward` upcall (one thread; never contended).
type Shared = Arc<Mutex<Store>>;

struct Upcall(Shared);

impl Forwarder for Upcall {
    fn forward(&mut self, ctx: &mut ForwardCtx<'_>) -> ForwardAction {
        self.0.lock().handle_forward(ctx)
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
            step: Duration::from_millis(1),
        };
        s.attach();
        s
    }

    /// Gives every live node without a store one (nodes created since the last step), and
    /// forgets the stores of nodes that are gone.
    fn attach(&mut self) {
        let n = self.sim.len();
        self.stores.resize_with(n, || None);
        for i in 0..n {
            let idx = NodeIdx(i as u32);
            match (self.sim.node_mut(idx), self.stores[i].is_some()) {
                (Some(node), false) => {
                    let s: Shared = Arc::new(Mutex::new(Store::new(self.cfg.clone())));
                    node.set_forwarder(Some(Box::new(Upcall(s.clone()))));
                    self.stores[i] = Some(s);
                }
                (None, true) => self.stores[i] = None,
                _ => {}
            }
        }
    }

    /// Node `i`'s store, if the node is alive.
    pub fn store(&self, i: NodeIdx) -> Option<parking_lot::MutexGuard<'_, Store>> {
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

    /// One round of store work at the current time.
    fn work(&mut self) {
        self.attach();
        let now = self.sim.now();
        for (i, ev) in self.sim.take_events() {
            let (Some(s), Some(node)) = (self.stores[i.0 as usize].clone(), self.sim.node(i))
            else {
                continue;
            };
            s.lock().handle_event(now, node, &ev);
        }
        for i in 0..self.stores.len() {
            let Some(s) = self.stores[i].clone() else {
                continue;
            };
            let idx = NodeIdx(i as u32);
            let mut st = s.lock();
            let due = st.poll_timeout().is_some_and(|t| t <= now);
            if due {
                if let Some(node) = self.sim.node(idx) {
                    st.handle_timeout(now, node);
                }
            }
            self.collect(idx, &mut st);
            let has = st.has_transmit();
            drop(st);
            if has {
                self.flush(idx, &s);
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

    /// Re-replication traffic so far: the stores' maintenance bytes summed over live nodes.
    pub fn sync_bytes(&self) -> u64 {
        self.stores
            .iter()
            .flatten()
            .map(|s| s.lock().stats().sync_bytes)
            .sum()
    }

    /// The stores' counters summed over live nodes.
    pub fn stats_sum(&self) -> super::StoreStats {
        let mut t = super::StoreStats::default();
        for s in self.stores.iter().flatten() {
            let s = s.lock();
            let x = s.stats();
            t.stored += x.stored;
            t.refused_full += x.refused_full;
            t.handed_off += x.handed_off;
            t.bad_replicas += x.bad_replicas;
            t.bad_msgs += x.bad_msgs;
            t.gets_served += x.gets_served;
            t.gets_intercepted += x.gets_intercepted;
            t.out_drops += x.out_drops;
            t.sync_msgs += x.sync_msgs;
            t.sync_bytes += x.sync_bytes;
            t.digests_matched += x.digests_matched;
            t.io_errors += x.io_errors;
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
