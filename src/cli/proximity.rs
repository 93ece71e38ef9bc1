//! `pastry proximity`: stretch and routing-table quality against N. One simulation per
//! (topology, N) with random bootstraps; prints a table (or JSON lines) and optionally draws
//! stretch and `rt_non_best_per_row` against N, for the plane and the sphere, into an SVG.

use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::Args;
use pastry::plot::{Figure, LineChart, Panel, Series};
use pastry::sim::{Bootstrap, Outcome, Scenario, SimConfig, Topology};
use serde::Serialize;

use super::Failure;

/// Options of `pastry proximity`.
#[derive(Debug, Args)]
pub(crate) struct ProximityArgs {
    /// Overlay sizes, comma-separated.
    #[arg(long, value_name = "NS", value_delimiter = ',', default_value = "500,1000,2000,5000", value_parser = RangedU64ValueParser::<usize>::new().range(2..))]
    nodes: Vec<usize>,
    /// Lookups per node.
    #[arg(long, value_name = "K", default_value_t = 10)]
    lookups_per_node: u64,
    /// Seed of every simulation.
    #[arg(long, value_name = "S", default_value_t = 12)]
    seed: u64,
    /// Join through the nearest of 32 random nodes instead of a random one (the paper's
    /// assumption).
    #[arg(long)]
    near: bool,
    /// One JSON object per simulation, one per line (and no progress).
    #[arg(long)]
    json: bool,
    /// Draw stretch and not-best cells per row against N here.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// One simulation's figures.
#[derive(Clone, Debug, Serialize)]
struct Row {
    topology: &'static str,
    nodes: usize,
    stretch_of_sums: f64,
    stretch_p50: f64,
    stretch_p90: f64,
    stretch_first_hop: f64,
    stretch_last_hop: f64,
    rt_non_best_per_row: f64,
    join_msgs_per_node: f64,
    maintenance_msgs_per_node_per_s: f64,
}

/// Runs `pastry proximity`.
pub(crate) fn main(a: &ProximityArgs) -> Result<(), Failure> {
    super::logger::init(log::LevelFilter::Warn);
    let mut rows = Vec::new();
    for (name, topology) in [("plane", Topology::Plane), ("sphere", Topology::Sphere)] {
        for &n in &a.nodes {
            let cfg = SimConfig {
                seed: a.seed,
                topology,
                bootstrap: if a.near {
                    Bootstrap::Near
                } else {
                    Bootstrap::Random
                },
                ..SimConfig::default()
            };
            let Outcome { report: r, summary } =
                Scenario::new(n, n as u64 * a.lookups_per_node, cfg).run(&mut |_| {});
            let per_s = if r.node_seconds > 0.0 {
                r.maintenance_msgs as f64 / r.node_seconds
            } else {
                0.0
            };
            let row = Row {
                topology: name,
                nodes: n,
                stretch_of_sums: r.stretch_of_sums(),
                stretch_p50: r.stretch_quantile(0.5),
                stretch_p90: r.stretch_quantile(0.9),
                stretch_first_hop: r.stretch_first_hop(),
                stretch_last_hop: r.stretch_last_hop(),
                rt_non_best_per_row: summary.rt_non_best_per_row,
                join_msgs_per_node: r.join_msgs as f64 / r.joined_nodes.max(1) as f64,
                maintenance_msgs_per_node_per_s: per_s,
            };
            if a.json {
                super::out(&format!(
                    "{}\n",
                    serde_json::to_string(&row).map_err(|e| e.to_string())?
                ));
            } else {
                eprintln!(
                    "{name:6} N={n:6}: stretch {:.3} (p50 {:.2}, p90 {:.2}; first hop {:.3}, last hop {:.3}), not-best per row {:.2}, join {:.1} msgs/node, maintenance {:.3} msgs/node/s",
                    row.stretch_of_sums, row.stretch_p50, row.stretch_p90, row.stretch_first_hop,
                    row.stretch_last_hop, row.rt_non_best_per_row, row.join_msgs_per_node,
                    row.maintenance_msgs_per_node_per_s
                );
            }
            rows.push(row);
        }
    }
    if let Some(path) = &a.svg {
        figure(&rows).save_svg(path).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Stretch and not-best cells per row against N, one line per topology.
fn figure(rows: &[Row]) -> Figure {
    let series = |f: fn(&Row) -> f64| {
        ["plane", "sphere"]
            .iter()
            .map(|t| Series {
                label: (*t).to_string(),
                points: rows
                    .iter()
                    .filter(|r| r.topology == *t)
                    .map(|r| (r.nodes as f64, f(r)))
                    .collect(),
            })
            .collect()
    };
    let stretch = LineChart {
        title: "delay stretch (ratio of sums), random bootstraps".into(),
        x_label: "nodes".into(),
        y_label: "overlay latency / direct latency".into(),
        series: series(|r| r.stretch_of_sums),
    };
    let non_best = LineChart {
        title: "routing-table cells not the closest candidate".into(),
        x_label: "nodes".into(),
        y_label: "per used row".into(),
        series: series(|r| r.rt_non_best_per_row),
    };
    Figure {
        width: 1100,
        height: 420,
        panels: vec![Panel::Lines(stretch), Panel::Lines(non_best)],
    }
}
