//! `pastry sweep`: the churn sweep. One simulation per median session time, crash-only and
//! with half the departures graceful, plus a run without churn; prints a table (or JSON lines)
//! and optionally draws delivery, latency and maintenance against session time into an SVG.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant as WallClock};

use clap::builder::RangedU64ValueParser;
use clap::Args;
use pastry::plot::{Figure, LineChart, Panel, Series};
use pastry::sim::{ChurnSpec, Outcome, Scenario, SimConfig, Topology};
use pastry::Duration;
use serde::Serialize;

use super::{args, Failure};

/// Options of `pastry sweep`.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Nodes per simulation.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = RangedU64ValueParser::<usize>::new().range(2..))]
    nodes: usize,
    /// Lookups per simulation (spread over its 600 s of churn).
    #[arg(long, value_name = "M", default_value_t = 10_000)]
    lookups: u64,
    /// Median session times, comma-separated (`84s`, `1.4m`; a bare number is seconds).
    #[arg(long, value_name = "TIMES", value_delimiter = ',', default_value = "1.4m,5m,15m,60m", value_parser = args::secs)]
    sessions: Vec<StdDuration>,
    /// Seed of every simulation.
    #[arg(long, value_name = "S", default_value_t = 3)]
    seed: u64,
    /// Simulations run at once (each on its own thread).
    #[arg(long, value_name = "K", default_value_t = 2, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    jobs: usize,
    /// One JSON object per simulation, one per line (and no progress).
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Draw delivery rate, latency p50/p99 and maintenance bytes against session time here.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// One simulation of the sweep.
#[derive(Clone, Copy, Debug)]
struct Case {
    /// Median session, seconds; `None`: no churn.
    median_s: Option<f64>,
    /// Fraction of departures that leave gracefully.
    graceful: f64,
}

/// One row of the table, as printed and as JSON.
#[derive(Clone, Debug, Serialize)]
struct Row {
    median_session_s: Option<f64>,
    graceful: f64,
    /// Of the lookups whose source outlived them, the percentage delivered.
    delivered_pct: f64,
    wrong_root: u64,
    lost: u64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    maintenance_msgs_per_node_per_s: f64,
    maintenance_bytes_per_node_per_s: f64,
    joins: u64,
    joins_failed: u64,
    live_at_end: u64,
    join_p50_ms: f64,
    converge_s: f64,
    stale_leaf_entries: u64,
}

fn row(case: Case, out: &Outcome) -> Row {
    let (r, s) = (&out.report, &out.summary);
    let per = |x: u64| x as f64 / r.node_seconds.max(1e-9);
    Row {
        median_session_s: case.median_s,
        graceful: case.graceful,
        delivered_pct: 100.0 * s.live_source_delivered as f64 / s.live_source_lookups.max(1) as f64,
        wrong_root: r.incorrect,
        lost: s.lost,
        latency_p50_ms: r.latency_us.quantile(0.5) as f64 / 1e3,
        latency_p99_ms: r.latency_us.quantile(0.99) as f64 / 1e3,
        maintenance_msgs_per_node_per_s: per(r.maintenance_msgs),
        maintenance_bytes_per_node_per_s: per(r.maintenance_bytes),
        joins: r.joined,
        joins_failed: r.join_failed,
        live_at_end: r.live_nodes,
        join_p50_ms: r.join_time_us.quantile(0.5) as f64 / 1e3,
        converge_s: s.converge_s,
        stale_leaf_entries: s.stale_leaf_entries,
    }
}

/// Runs `pastry sweep`.
pub(crate) fn main(a: &SweepArgs) -> Result<(), Failure> {
    super::logger::init(log::LevelFilter::Warn);
    let mut cases = vec![Case {
        median_s: None,
        graceful: 0.0,
    }];
    for graceful in [0.0, 0.5] {
        for s in &a.sessions {
            cases.push(Case {
                median_s: Some(s.as_secs_f64()),
                graceful,
            });
        }
    }
    let quiet = a.quiet || a.json;
    #[allow(clippy::disallowed_methods)] // wall time for progress lines only
    let wall = WallClock::now();
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Row>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..a.jobs.min(cases.len()) {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&case) = cases.get(k) else {
                    return;
                };
                let out = scenario(a, case).run(&mut |_| {});
                let r = row(case, &out);
                if !quiet {
                    eprintln!(
                        "[{:7.1}s] done: median session {:?} s, graceful {}",
                        wall.elapsed().as_secs_f64(),
                        case.median_s,
                        case.graceful
                    );
                }
                // A poisoned lock means another worker panicked: the scope re-raises that.
                if let Ok(mut rows) = rows.lock() {
                    rows[k] = Some(r);
                }
            });
        }
    });
    let rows: Vec<Row> = rows
        .into_inner()
        .map_err(|_| "a simulation panicked".to_string())?
        .into_iter()
        .flatten()
        .collect();
    if a.json {
        let mut text = String::new();
        for r in &rows {
            text += &serde_json::to_string(r).map_err(|e| e.to_string())?;
            text.push('\n');
        }
        super::out(&text);
    } else {
        super::out(&table(a.nodes, &rows));
    }
    if let Some(path) = &a.svg {
        figure(a.nodes, &rows)
            .save_svg(path)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The simulation of one case: `--nodes` nodes on the sphere, 600 s of lookups under churn.
fn scenario(a: &SweepArgs, case: Case) -> Scenario {
    let cfg = SimConfig {
        seed: a.seed,
        topology: Topology::Sphere,
        ..SimConfig::default()
    };
    let mut s = Scenario::new(a.nodes, a.lookups, cfg);
    // Exponential sessions: mean = median / ln 2.
    s.churn = case.median_s.map(|m| ChurnSpec {
        mean_session: Duration((m / core::f64::consts::LN_2 * 1e6) as u64),
        graceful: case.graceful,
    });
    s.phase = Some(Duration::from_secs(600));
    s
}

fn table(nodes: usize, rows: &[Row]) -> String {
    use core::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "churn sweep: {nodes} nodes, 600 s of lookups per run, sphere topology; delivered = of lookups whose source outlived them");
    let _ = writeln!(o, "| median session | graceful | delivered | wrong root | lost | latency p50 / p99 | maint. msg/s/node | B/s/node | joins failed | live at end | join p50 | converged after |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let session = match r.median_session_s {
            Some(s) if s >= 60.0 => format!("{:.1} min", s / 60.0),
            Some(s) => format!("{s:.0} s"),
            None => "no churn".to_string(),
        };
        let converged = if r.converge_s.is_finite() {
            format!("{:.1} s", r.converge_s)
        } else {
            "not in 120 s".to_string()
        };
        let _ = writeln!(
            o,
            "| {session} | {:.0}% | {:.3}% | {} | {} | {:.0} ms / {:.0} ms | {:.2} | {:.0} | {} of {} | {} | {:.1} s | {converged} |",
            r.graceful * 100.0,
            r.delivered_pct,
            r.wrong_root,
            r.lost,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.maintenance_msgs_per_node_per_s,
            r.maintenance_bytes_per_node_per_s,
            r.joins_failed,
            r.joins + r.joins_failed,
            r.live_at_end,
            r.join_p50_ms / 1e3,
        );
    }
    o
}

/// One figure of a row, for a plot.
type Metric<'a> = dyn Fn(&Row) -> f64 + 'a;

/// `f` against median session (minutes) for the rows with this departure mix.
fn series(rows: &[Row], graceful: f64, f: &Metric<'_>) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.graceful == graceful)
        .filter_map(|r| Some((r.median_session_s? / 60.0, f(r))))
        .collect()
}

/// The no-churn row's `f` as a flat line across the sessions' range.
fn baseline(rows: &[Row], f: &Metric<'_>) -> Vec<(f64, f64)> {
    let xs: Vec<f64> = rows.iter().filter_map(|r| r.median_session_s).collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min) / 60.0;
    let hi = xs.iter().copied().fold(0.0, f64::max) / 60.0;
    rows.iter()
        .find(|r| r.median_session_s.is_none())
        .map(|r| vec![(lo, f(r)), (hi, f(r))])
        .unwrap_or_default()
}

/// Lookups not delivered (per 10,000), latency and maintenance against median session time
/// (minutes), a series per departure mix; the no-churn figures as flat reference lines.
fn figure(nodes: usize, rows: &[Row]) -> Figure {
    Figure {
        width: 1500,
        height: 460,
        panels: vec![
            chart(
                rows,
                &format!("not delivered ({nodes} nodes)"),
                "per 10,000 lookups whose source outlived them",
                &[("", &|r: &Row| (100.0 - r.delivered_pct) * 100.0)],
            ),
            chart(
                rows,
                "latency",
                "ms",
                &[
                    ("p50, ", &|r: &Row| r.latency_p50_ms),
                    ("p99, ", &|r: &Row| r.latency_p99_ms),
                ],
            ),
            chart(
                rows,
                "maintenance",
                "bytes / node / s",
                &[("", &|r: &Row| r.maintenance_bytes_per_node_per_s)],
            ),
        ],
    }
}

/// A line chart of `metrics`, each for both departure mixes and the no-churn reference.
fn chart(rows: &[Row], title: &str, y: &str, metrics: &[(&str, &Metric<'_>)]) -> Panel {
    let mixes = [(0.0, "crash only"), (0.5, "half graceful")];
    let mut s = Vec::new();
    for (name, f) in metrics {
        for (g, mix) in mixes {
            s.push(Series {
                label: format!("{name}{mix}"),
                points: series(rows, g, f),
            });
        }
        s.push(Series {
            label: format!("{name}no churn"),
            points: baseline(rows, f),
        });
    }
    Panel::Lines(LineChart {
        title: title.to_string(),
        x_label: "median session (min)".into(),
        y_label: y.to_string(),
        series: s,
    })
}
