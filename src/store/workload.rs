//! The store workload in the simulator: grow an overlay, put objects, check placement against
//! the oracle, then get objects during churn, and at the end fetch every object once.

use bytes::Bytes;

use super::sim::{Placement, StoreSim};
use super::{OpId, Outcome, StoreConfig, StoreStats};
use crate::id::Id;
use crate::rng::Rng;
use crate::sim::{NodeIdx, Sim, SimConfig};
use crate::time::Duration;

/// One store experiment. Build it with [`StoreWorkload::new`], adjust the fields, then
/// [`StoreWorkload::run`] it.
#[derive(Clone, Debug)]
pub struct StoreWorkload {
    /// Nodes to join.
    pub nodes: usize,
    /// Objects to put.
    pub objects: usize,
    /// Bytes per object.
    pub object_size: usize,
    /// Median session time under churn (`None`: no churn); sessions are exponential.
    pub median_session: Option<Duration>,
    /// Fraction of departures that are graceful leaves; the rest crash.
    pub graceful: f64,
    /// Length of the churn phase.
    pub churn_for: Duration,
    /// Gets of random objects from random nodes per virtual second during churn.
    pub gets_per_s: f64,
    /// Quiet time after churn before the final placement check.
    pub settle: Duration,
    /// Virtual time between store work rounds (see [`StoreSim::step`]).
    pub step: Duration,
    /// The store's settings.
    pub store: StoreConfig,
    /// The simulator's settings.
    pub sim: SimConfig,
}

/// What a [`StoreWorkload`] measured.
#[derive(Clone, Debug, Default)]
pub struct StoreReport {
    /// Puts that succeeded.
    pub puts_ok: usize,
    /// Placement against the oracle after the puts.
    pub placement_after_puts: Placement,
    /// Gets during churn, and how many returned the verified object.
    pub churn_gets: usize,
    /// Of those, verified.
    pub churn_gets_ok: usize,
    /// Gets during churn whose requesting node departed before an answer (not counted above).
    pub churn_gets_orphaned: usize,
    /// Failed gets during churn, by error.
    pub churn_get_errors: std::collections::BTreeMap<String, usize>,
    /// Nodes that joined and departed during churn.
    pub arrivals: u64,
    /// Departures during churn (leaves and crashes).
    pub departures: u64,
    /// Placement against the oracle right after churn.
    pub placement_after_churn: Placement,
    /// Objects fetched at the end, and how many returned verified.
    pub final_gets_ok: usize,
    /// Placement after the settle time.
    pub placement_settled: Placement,
    /// Store maintenance bytes (digests, key lists, offers, re-replication) per live node per
    /// second during churn: store payload bytes, without the overlay's frame headers and hop
    /// acknowledgements.
    pub sync_bytes_per_node_s: f64,
    /// The stores' counters over the whole run (departed nodes included).
    pub stats: StoreStats,
    /// Live nodes at the end.
    pub live_at_end: usize,
}

impl StoreWorkload {
    /// `objects` objects of 1 KiB on `nodes` nodes, no churn.
    pub fn new(nodes: usize, objects: usize) -> StoreWorkload {
        StoreWorkload {
            nodes,
            objects,
            object_size: 1024,
            median_session: None,
            graceful: 0.5,
            churn_for: Duration::from_secs(600),
            gets_per_s: 10.0,
            settle: Duration::from_secs(180),
            step: Duration::from_millis(1),
            store: StoreConfig::default(),
            sim: SimConfig::default(),
        }
    }

    /// Runs the experiment; `progress` hears one line per phase.
    pub fn run(&self, progress: &mut dyn FnMut(&str)) -> StoreReport {
        let mut rng = Rng::new(self.sim.seed ^ 0x5702e);
        let mut s = StoreSim::new(Sim::new(self.sim.clone()), self.store.clone());
        s.step = self.step;
        s.grow(self.nodes, Duration::from_millis(100));
        s.run_for(Duration::from_secs(30));
        progress(&format!("{} nodes joined", s.sim.active().len()));
        let mut rep = StoreReport::default();
        let objs: Vec<Id> = self.put_all(&mut s, &mut rng, &mut rep);
        s.run_for(Duration::from_secs(10));
        rep.placement_after_puts = s.placement(&objs);
        progress(&format!(
            "{} puts ok; placement {:?}",
            rep.puts_ok, rep.placement_after_puts
        ));
        if let Some(median) = self.median_session {
            self.churn(&mut s, &mut rng, &objs, median, &mut rep);
            progress(&format!(
                "churn done: {}/{} gets ok, placement {:?}",
                rep.churn_gets_ok, rep.churn_gets, rep.placement_after_churn
            ));
        }
        rep.final_gets_ok = get_all(&mut s, &mut rng, &objs, self.object_size);
        s.run_for(self.settle);
        rep.placement_settled = s.placement(&objs);
        rep.stats = s.stats_all();
        rep.live_at_end = s.sim.active().len();
        rep
    }

    fn put_all(&self, s: &mut StoreSim, rng: &mut Rng, rep: &mut StoreReport) -> Vec<Id> {
        let mut keys = Vec::with_capacity(self.objects);
        let mut pending = 0usize;
        for i in 0..self.objects {
            let v = object(i as u64, self.object_size);
            let at = random_active(s, rng);
            keys.push(super::content_key(&v));
            if s.put(at, v).is_ok() {
                pending += 1;
            }
            // About 100 puts per virtual second.
            if i % 10 == 9 {
                s.run_for(Duration::from_millis(100));
            }
            let (done, ok) = finished_puts(s);
            pending -= done.min(pending);
            rep.puts_ok += ok;
        }
        for _ in 0..600 {
            if pending == 0 {
                break;
            }
            s.run_for(Duration::from_millis(100));
            let (done, ok) = finished_puts(s);
            pending -= done.min(pending);
            rep.puts_ok += ok;
        }
        keys
    }

    fn churn(
        &self,
        s: &mut StoreSim,
        rng: &mut Rng,
        objs: &[Id],
        median: Duration,
        rep: &mut StoreReport,
    ) {
        let mean = Duration((median.as_micros() as f64 / core::f64::consts::LN_2) as u64);
        let (joined0, crashed0, left0) =
            (s.sim.report.joined, s.sim.report.crashed, s.sim.report.left);
        let until = s.sim.now() + self.churn_for;
        s.sim.start_churn(mean, self.graceful, until);
        let sync0 = s.stats_all().sync_bytes;
        let t0 = s.sim.now();
        let gap = Duration((1e6 / self.gets_per_s.max(1e-3)) as u64);
        let mut node_seconds = 0.0;
        let mut asked: Vec<(NodeIdx, OpId, usize)> = Vec::new();
        // Gets whose requester departed are dropped from `asked` as they are found.
        while s.sim.now() < until {
            s.run_for(gap);
            node_seconds += s.sim.active().len() as f64 * gap.as_secs_f64();
            let k = rng.below(objs.len() as u64) as usize;
            let at = random_active(s, rng);
            if let Ok(op) = s.get(at, objs[k]) {
                asked.push((at, op, k));
            }
            self.score(s, &mut asked, rep);
        }
        s.run_for(Duration::from_secs(30));
        self.score(s, &mut asked, rep);
        for (i, _, _) in asked {
            if s.sim.node(i).is_some() {
                rep.churn_gets += 1; // never answered
                *rep.churn_get_errors.entry("no outcome".into()).or_default() += 1;
            } else {
                rep.churn_gets_orphaned += 1;
            }
        }
        let sync = s.stats_all().sync_bytes - sync0;
        let _ = t0;
        rep.sync_bytes_per_node_s = sync as f64 / node_seconds.max(1e-9);
        rep.arrivals = s.sim.report.joined - joined0;
        rep.departures = s.sim.report.crashed - crashed0 + s.sim.report.left - left0;
        rep.placement_after_churn = s.placement(objs);
    }

    /// Scores the gets in `asked` that finished.
    fn score(
        &self,
        s: &mut StoreSim,
        asked: &mut Vec<(NodeIdx, OpId, usize)>,
        rep: &mut StoreReport,
    ) {
        for (i, op, out) in s.take_outcomes() {
            let Some(p) = asked.iter().position(|&(a, o, _)| a == i && o == op) else {
                continue;
            };
            let (_, _, k) = asked.swap_remove(p);
            rep.churn_gets += 1;
            if out == Outcome::Get(Ok(Bytes::from(object(k as u64, self.object_size)))) {
                rep.churn_gets_ok += 1;
            } else {
                let e = match out {
                    Outcome::Get(Err(e)) => format!("{e:?}"),
                    _ => "wrong value".into(),
                };
                *rep.churn_get_errors.entry(e).or_default() += 1;
            }
        }
    }
}

/// Object `i`'s bytes: `len` bytes from a PRNG seeded with `i`.
pub(crate) fn object(i: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0b1ec7);
    (0..len).map(|_| rng.below(256) as u8).collect()
}

fn random_active(s: &mut StoreSim, rng: &mut Rng) -> NodeIdx {
    let act = s.sim.active();
    act[rng.below(act.len() as u64) as usize]
}

/// Takes finished outcomes: puts finished, and of those, successful.
fn finished_puts(s: &mut StoreSim) -> (usize, usize) {
    let outs = s.take_outcomes();
    let ok = outs
        .iter()
        .filter(|(_, _, o)| matches!(o, Outcome::Put(Ok(_))))
        .count();
    (outs.len(), ok)
}

/// Fetches every object once (from random nodes, 100 at a time); how many came back verified.
fn get_all(s: &mut StoreSim, rng: &mut Rng, objs: &[Id], size: usize) -> usize {
    let mut ok = 0;
    for (b, batch) in objs.chunks(100).enumerate() {
        let mut asked = Vec::new();
        for (j, &key) in batch.iter().enumerate() {
            let at = random_active(s, rng);
            if let Ok(op) = s.get(at, key) {
                asked.push((at, op, b * 100 + j));
            }
        }
        for _ in 0..600 {
            if asked.is_empty() {
                break;
            }
            s.run_for(Duration::from_millis(100));
            for (i, op, out) in s.take_outcomes() {
                if let Some(p) = asked.iter().position(|&(a, o, _)| a == i && o == op) {
                    let (_, _, k) = asked.swap_remove(p);
                    if out == Outcome::Get(Ok(Bytes::from(object(k as u64, size)))) {
                        ok += 1;
                    }
                }
            }
        }
    }
    ok
}
