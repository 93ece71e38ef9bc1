//! Experiments as one API: grow an overlay through the join protocol, optionally crash a fraction
//! of it, route lookups (optionally under churn), let the stragglers drain, and measure against
//! the oracle. `pastry sim`, the churn sweep (`pastry sweep`) and the tests all run a
//! [`Scenario`], so an experiment means the same thing everywhere.
//!
//! ```
//! use pastry::sim::{Scenario, SimConfig};
//!
//! let out = Scenario::new(50, 500, SimConfig::default()).run(&mut |_| {});
//! assert_eq!(out.report.delivered, 500);
//! assert_eq!(out.report.incorrect, 0);
//! ```

use super::{NodeIdx, Report, Sim, SimConfig, Summary};
use crate::rng::Rng;
use crate::time::Duration;

/// Nodes whose routing tables the oracle checks for proximity (each against every node).
const RT_ORACLE_SAMPLE: usize = 2000;

/// Churn during the lookup phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChurnSpec {
    /// Mean session time (exponential sessions: the median is `ln 2` of this).
    pub mean_session: Duration,
    /// Fraction of departures that are graceful leaves; the rest crash.
    pub graceful: f64,
}

/// One experiment. Build it with [`Scenario::new`], adjust the public fields, then
/// [`Scenario::run`] it.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Nodes to join.
    pub nodes: usize,
    /// Lookups to route (random keys from random active nodes).
    pub lookups: u64,
    /// Joins per virtual second while growing.
    pub join_rate: f64,
    /// Fraction of the nodes to crash at once before the lookups (then 60 s to repair).
    pub fail: f64,
    /// Churn during the lookup phase.
    pub churn: Option<ChurnSpec>,
    /// Length of the lookup phase (default: 600 s under churn, else 100 µs per lookup and at
    /// least a minute, so maintenance covers several probe periods).
    pub phase: Option<Duration>,
    /// After the lookups, wait up to this long for every leaf set to equal the oracle's and
    /// report how long it took (`None`: do not measure).
    pub converge_limit: Option<Duration>,
    /// The simulator's settings (seed, topology, faults, node template).
    pub sim: SimConfig,
}

/// What a [`Scenario`] measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The simulator's counters.
    pub report: Report,
    /// Figures computed at the end.
    pub summary: Summary,
}

impl Scenario {
    /// `nodes` nodes and `lookups` lookups on `sim`; joins at N/20 per second (within 50..2000),
    /// no failures, no churn, convergence measured within 120 s.
    pub fn new(nodes: usize, lookups: u64, sim: SimConfig) -> Scenario {
        Scenario {
            nodes,
            lookups,
            join_rate: (nodes as f64 / 20.0).clamp(50.0, 2000.0),
            fail: 0.0,
            churn: None,
            phase: None,
            converge_limit: Some(Duration::from_secs(120)),
            sim,
        }
    }

    /// Runs the experiment; `progress` hears a line at each milestone.
    pub fn run(&self, progress: &mut dyn FnMut(&str)) -> Outcome {
        let mut sim = Sim::new(self.sim.clone());
        self.grow(&mut sim, progress);
        if self.fail > 0.0 {
            self.fail_some(&mut sim, progress);
        }
        self.lookup_phase(&mut sim, progress);
        // Churn has stopped: how long until every leaf set is right again?
        let converge_s = match self.converge_limit {
            Some(limit) => converge(&mut sim, limit),
            None => f64::NAN,
        };
        // Retransmissions may still be under way: wait for the stragglers (at most 120 s).
        sim.drain_lookups(Duration::from_secs(120));
        let (live_source_lookups, live_source_delivered) = sim.live_source_lookups();
        let stale_leaf_entries = sim.stale_leaf_entries();
        sim.collect_traffic();
        let (rt_fill, rt_entries_mean) = sim.routing_table_fill();
        let rt_non_best_per_row = sim.rt_non_best_per_row(RT_ORACLE_SAMPLE);
        let summary = Summary {
            nodes: self.nodes as u64,
            lost: sim.lost_lookups(),
            rt_fill,
            rt_entries_mean,
            rt_non_best_per_row,
            wrong_leaf_sets: sim.wrong_leaf_sets().len() as u64,
            live_source_lookups,
            live_source_delivered,
            stale_leaf_entries,
            converge_s,
            wall_s: 0.0,
            virtual_s: sim.now().as_micros() as f64 / 1e6,
            latency_modelled: true,
        };
        Outcome {
            report: sim.report.clone(),
            summary,
        }
    }

    /// 1. Joins every node through the protocol, each through a bootstrap chosen as
    ///    [`SimConfig::bootstrap`] says.
    fn grow(&self, sim: &mut Sim, progress: &mut dyn FnMut(&str)) {
        let gap = Duration((1e6 / self.join_rate.max(1e-3)) as u64);
        let step = (self.nodes / 10).max(1);
        for k in 0..self.nodes {
            let i = sim.add_node(None);
            let boot = sim.bootstrap_for(i);
            sim.start(i, boot);
            sim.run_for(gap);
            if (k + 1) % step == 0 {
                progress(&format!(
                    "{} nodes started, {} active, {} node inputs",
                    k + 1,
                    sim.oracle().len(),
                    sim.report.events
                ));
            }
        }
        sim.run_for(Duration::from_secs(10));
        progress(&format!(
            "joined: {} active of {}",
            sim.oracle().len(),
            self.nodes
        ));
    }

    /// 2. Crashes a `fail` fraction at once, then gives the overlay 60 s to repair.
    fn fail_some(&self, sim: &mut Sim, progress: &mut dyn FnMut(&str)) {
        let mut victims: Vec<NodeIdx> = sim.live().collect();
        let k = (victims.len() as f64 * self.fail).round() as usize;
        let mut rng = Rng::new(self.sim.seed ^ 0xfa11);
        for i in 0..k {
            let j = i + rng.below((victims.len() - i) as u64) as usize;
            victims.swap(i, j);
        }
        for &v in &victims[..k] {
            sim.crash(v);
        }
        progress(&format!(
            "crashed {k} nodes; repairing for 60 s of virtual time"
        ));
        sim.run_for(Duration::from_secs(60));
    }

    /// 3. The lookups, under churn if asked; maintenance is measured over this phase.
    fn lookup_phase(&self, sim: &mut Sim, progress: &mut dyn FnMut(&str)) {
        sim.reset_lookups();
        sim.mark_traffic();
        let phase = self.phase.unwrap_or(match self.churn {
            Some(_) => Duration::from_secs(600),
            None => Duration((self.lookups * 100).max(60_000_000)),
        });
        let gap = Duration((phase.as_micros() / self.lookups.max(1)).max(1));
        if let Some(c) = self.churn {
            let until = sim.now() + phase;
            sim.start_churn(c.mean_session, c.graceful, until);
            progress(&format!(
                "churn: mean session {:.1} s for {:?} of virtual time",
                c.mean_session.as_secs_f64(),
                phase
            ));
        }
        sim.schedule_lookups(self.lookups, gap, 32);
        let chunks = 10u64;
        for c in 0..chunks {
            sim.run_for(Duration(phase.as_micros() / chunks + 1));
            progress(&format!(
                "lookups {}%: {} delivered",
                (c + 1) * 100 / chunks,
                sim.report.delivered
            ));
        }
    }
}

/// Runs until every leaf set equals the oracle's, at most `limit`: the seconds it took, NaN if
/// it did not happen.
fn converge(sim: &mut Sim, limit: Duration) -> f64 {
    let start = sim.now();
    while !sim.wrong_leaf_sets().is_empty() {
        if sim.now() - start >= limit {
            return f64::NAN;
        }
        sim.run_for(Duration::from_millis(250));
    }
    (sim.now() - start).as_secs_f64()
}
