//! `pastry sim`: join N nodes through the protocol in the simulator, optionally fail some or
//! churn, route lookups, check every delivery against the oracle, and report.

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant as WallClock};

use clap::builder::RangedU64ValueParser;
use clap::{Args, ValueEnum};
use pastry::node::Config;
use pastry::sim::{Faults, NodeIdx, Sim, SimConfig, Summary, Topology};
use pastry::{DigitBits, Duration};

use super::{args, Failure};

/// The proximity model of `--topology`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TopologyArg {
    /// Nodes on a sphere, latency from the great-circle distance.
    Sphere,
    /// Nodes on a plane, latency from the Euclidean distance.
    Plane,
}

/// Options of `pastry sim`.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Nodes to join.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    nodes: usize,
    /// Lookups to route (to random keys from random live nodes).
    #[arg(long, value_name = "M", default_value_t = 10_000)]
    lookups: u64,
    /// Bits per digit of the ids: 1, 2 or 4.
    #[arg(long = "b", value_name = "B", default_value = "4", value_parser = args::digit_bits)]
    b: DigitBits,
    /// Leaf-set size L (even).
    #[arg(long, value_name = "L", default_value_t = 16)]
    leaf: usize,
    /// Probability that a datagram is lost.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = args::probability)]
    loss: f64,
    /// Probability that a datagram is duplicated.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = args::probability)]
    dup: f64,
    /// Extra random delay per datagram, up to this (a bare number is milliseconds).
    #[arg(long = "jitter-ms", value_name = "TIME", default_value = "0", value_parser = args::millis)]
    jitter: StdDuration,
    /// Churn during the lookups: mean session time (`84s`, `1.4m`; a bare number is seconds).
    #[arg(long = "churn-session", value_name = "TIME", value_parser = args::secs)]
    pub(crate) churn_session: Option<StdDuration>,
    /// Under churn, the fraction of departures that are graceful leaves (the rest crash).
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = args::probability)]
    graceful: f64,
    /// Fraction of the nodes to crash at once before the lookups (then 60 s to repair).
    #[arg(long, value_name = "F", default_value_t = 0.0, value_parser = args::fraction_below_one)]
    fail: f64,
    /// Seed of everything random in the run.
    #[arg(long, value_name = "S", default_value_t = 7)]
    seed: u64,
    /// Proximity model.
    #[arg(long, value_enum, default_value_t = TopologyArg::Sphere)]
    topology: TopologyArg,
    /// Joins per virtual second (default N/20, within 50..2000).
    #[arg(long = "join-rate", value_name = "R", value_parser = args::positive)]
    join_rate: Option<f64>,
    /// Print the report as one JSON object (and no progress).
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Also draw the hop distribution and the latency CDF into this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// Peak resident memory of this process, from /proc (Linux); 0 elsewhere.
pub(crate) fn peak_rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs `pastry sim`.
pub(crate) fn main(a: &SimArgs) -> Result<(), Failure> {
    super::logger::init(log::LevelFilter::Warn);
    let (nodes, lookups, seed, fail) = (a.nodes, a.lookups, a.seed, a.fail);
    let churn_session = a.churn_session.map(|d| d.as_secs_f64());
    let topology = match a.topology {
        TopologyArg::Sphere => Topology::Sphere,
        TopologyArg::Plane => Topology::Plane,
    };
    let join_rate = a
        .join_rate
        .unwrap_or_else(|| (nodes as f64 / 20.0).clamp(50.0, 2000.0));
    let quiet = a.quiet || a.json;

    let node = Config {
        b: a.b,
        leaf_set_size: a.leaf,
        ..Config::default()
    };
    node.validate().map_err(|e| e.to_string())?;
    let cfg = SimConfig {
        seed,
        topology,
        faults: Faults {
            loss: a.loss,
            duplicate: a.dup,
            corrupt: 0.0,
            jitter: Duration(a.jitter.as_micros() as u64),
        },
        node,
    };
    // The CLI measures real elapsed time for its report; the simulation itself never reads it.
    #[allow(clippy::disallowed_methods)]
    let wall = WallClock::now();
    let mut sim = Sim::new(cfg);
    let progress = |msg: &str| {
        if !quiet {
            eprintln!("[{:7.1}s] {msg}", wall.elapsed().as_secs_f64());
        }
    };

    // 1. Join every node through the protocol.
    let gap = Duration((1e6 / join_rate) as u64);
    let step = (nodes / 10).max(1);
    for k in 0..nodes {
        let i = sim.add_node(None);
        let boot = sim.nearby_active(i);
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
    progress(&format!("joined: {} active of {nodes}", sim.oracle().len()));

    // 2. Optional mass failure, then time to repair.
    if fail > 0.0 {
        let live: Vec<NodeIdx> = sim.live().collect();
        let k = (live.len() as f64 * fail).round() as usize;
        let mut rng = pastry::Rng::new(seed ^ 0xfa11);
        let mut victims = live;
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

    // 3. Lookups, under churn if asked. Maintenance is measured over this phase.
    sim.reset_lookups();
    sim.mark_traffic();
    let phase = match churn_session {
        Some(_) => Duration::from_secs(600),
        // At least a minute, so the maintenance rate covers several probe periods.
        None => Duration((lookups * 100).max(60_000_000)),
    };
    let lookup_gap = Duration((phase.as_micros() / lookups.max(1)).max(1));
    if let Some(s) = churn_session {
        let until = sim.now() + phase;
        sim.start_churn(Duration((s * 1e6) as u64), a.graceful, until);
        progress(&format!(
            "churn: mean session {s} s for {:?} of virtual time",
            phase
        ));
    }
    sim.schedule_lookups(lookups, lookup_gap, 32);
    let chunks = 10u64;
    for c in 0..chunks {
        sim.run_for(Duration(phase.as_micros() / chunks + 1));
        progress(&format!(
            "lookups {}%: {} delivered",
            (c + 1) * 100 / chunks,
            sim.report.delivered
        ));
    }
    // Retransmissions may still be under way: wait for the stragglers (at most 120 s).
    sim.drain_lookups(Duration::from_secs(120));

    // 4. Report.
    sim.collect_traffic();
    let (rt_fill, rt_entries_mean) = sim.routing_table_fill();
    let summary = Summary {
        nodes: nodes as u64,
        lost: sim.lost_lookups(),
        rt_fill,
        rt_entries_mean,
        wrong_leaf_sets: sim.wrong_leaf_sets().len() as u64,
        wall_s: wall.elapsed().as_secs_f64(),
        virtual_s: sim.now().as_micros() as f64 / 1e6,
        latency_modelled: true,
    };
    let mut report = sim.report.clone();
    let rss = peak_rss_bytes();
    if rss > 0 {
        // Prefer the process's measured peak over the estimate of table sizes.
        report.node_bytes = rss;
    }
    if let Some(path) = &a.svg {
        let topology = match a.topology {
            TopologyArg::Sphere => "sphere",
            TopologyArg::Plane => "plane",
        };
        let title = format!("pastry sim: {nodes} nodes, {topology} topology");
        let hops = report.hops.buckets();
        let cdf = super::figures::histogram_cdf_ms(&report.latency_us);
        super::figures::routes(path, &title, hops, (nodes as f64).log(16.0), &cdf)?;
    }
    if a.json {
        println!("{}", report.json(&summary));
    } else {
        print!("{}", report.human(&summary));
        println!(
            "  process      peak RSS {:.1} MiB",
            rss as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
