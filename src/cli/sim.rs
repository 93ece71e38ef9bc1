//! `pastry sim`: join N nodes through the protocol in the simulator, optionally fail some or
//! churn, route lookups, check every delivery against the oracle, and report.

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant as WallClock};

use clap::builder::RangedU64ValueParser;
use clap::{Args, ValueEnum};
use pastry::node::Config;
use pastry::sim::{Bootstrap, ChurnSpec, Faults, Outcome, Scenario, SimConfig, Topology};
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

/// How `--bootstrap` picks the node each newcomer joins through.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum BootstrapArg {
    /// A uniformly random active node (finding a nearby one is the protocol's job).
    Random,
    /// The proximity-closest of 32 random active nodes (the Pastry paper's assumption).
    Near,
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
    /// How each newcomer's bootstrap node is chosen.
    #[arg(long, value_enum, default_value_t = BootstrapArg::Random)]
    bootstrap: BootstrapArg,
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
        bootstrap: match a.bootstrap {
            BootstrapArg::Random => Bootstrap::Random,
            BootstrapArg::Near => Bootstrap::Near,
        },
    };
    let mut scenario = Scenario::new(nodes, lookups, cfg);
    scenario.join_rate = join_rate;
    scenario.fail = fail;
    scenario.churn = churn_session.map(|s| ChurnSpec {
        mean_session: Duration((s * 1e6) as u64),
        graceful: a.graceful,
    });
    // The CLI measures real elapsed time for its report; the simulation itself never reads it.
    #[allow(clippy::disallowed_methods)]
    let wall = WallClock::now();
    let mut progress = |msg: &str| {
        if !quiet {
            eprintln!("[{:7.1}s] {msg}", wall.elapsed().as_secs_f64());
        }
    };
    let Outcome {
        mut report,
        mut summary,
    } = scenario.run(&mut progress);
    summary.wall_s = wall.elapsed().as_secs_f64();
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
        super::out(&format!("{}\n", report.json(&summary)));
    } else {
        super::out(&format!(
            "{}  process      peak RSS {:.1} MiB\n",
            report.human(&summary),
            rss as f64 / (1 << 20) as f64
        ));
    }
    Ok(())
}
