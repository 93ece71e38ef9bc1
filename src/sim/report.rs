//! Simulation results: counters, histograms, and the report printed by `pastry sim`.

use core::fmt::Write as _;

use serde::Serialize;

/// A histogram of small non-negative integers (hops) or of microseconds (latency) with exact
/// quantiles over the recorded values' buckets.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    max: u64,
    /// Bucket width (1 for hops; latency uses 100 µs buckets).
    width: u64,
}

impl Histogram {
    /// A histogram whose buckets are `width` wide.
    pub fn with_width(width: u64) -> Histogram {
        Histogram {
            width: width.max(1),
            ..Histogram::default()
        }
    }

    /// Records `v`.
    pub fn add(&mut self, v: u64) {
        let w = self.width.max(1);
        let b = (v / w).min(100_000) as usize;
        if self.counts.len() <= b {
            self.counts.resize(b + 1, 0);
        }
        self.counts[b] += 1;
        self.n += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }
    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.n
    }
    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }
    /// Largest value.
    pub fn max(&self) -> u64 {
        self.max
    }
    /// The `q` quantile (bucket lower bound).
    pub fn quantile(&self, q: f64) -> u64 {
        let target = (q * self.n as f64).ceil() as u64;
        let mut acc = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= target.max(1) {
                return b as u64 * self.width.max(1);
            }
        }
        self.max
    }
    /// Bucket counts.
    pub fn buckets(&self) -> &[u64] {
        &self.counts
    }
}

/// Everything a simulation measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Nodes that became active.
    pub joined: u64,
    /// Joins that gave up.
    pub join_failed: u64,
    /// Time from a node's start to its activation, µs.
    pub join_time_us: Histogram,
    /// For each (live node, crashed leaf-set member) pair: how long after the crash the node
    /// removed it, µs (the crashed node's keys wait that long at its neighbours).
    pub dead_leaf_us: Histogram,
    /// Nodes crashed.
    pub crashed: u64,
    /// Nodes that left gracefully.
    pub left: u64,
    /// Lookups issued.
    pub lookups: u64,
    /// Lookups refused by `route` (node not active, overloaded).
    pub refused: u64,
    /// Lookups delivered (first delivery).
    pub delivered: u64,
    /// Delivered at the oracle's root.
    pub correct: u64,
    /// Delivered elsewhere.
    pub incorrect: u64,
    /// Extra deliveries of a lookup already delivered.
    pub duplicates: u64,
    /// Lookups reported undeliverable to their source.
    pub undeliverable: u64,
    /// Hops per delivered lookup.
    pub hops: Histogram,
    /// Source-to-root latency per delivered lookup, µs.
    pub latency_us: Histogram,
    /// Sum of delay stretch samples.
    pub stretch_sum: f64,
    /// Stretch samples.
    pub stretch_n: u64,
    /// Sum of overlay path latencies of the stretch samples, µs.
    pub path_us_sum: f64,
    /// Sum of direct latencies of the stretch samples, µs.
    pub direct_us_sum: f64,
    /// Delay stretch of each sample, in thousandths (for quantiles).
    pub stretch_milli: Histogram,
    /// Sum of the first hops' latencies of the stretch samples, µs.
    pub first_hop_us_sum: f64,
    /// Sum of the last hops' latencies of the stretch samples, µs.
    pub last_hop_us_sum: f64,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Datagrams dropped by the fault model.
    pub dropped: u64,
    /// Node inputs processed.
    pub events: u64,
    /// Maintenance messages sent by live nodes.
    pub maintenance_msgs: u64,
    /// Maintenance bytes sent by live nodes.
    pub maintenance_bytes: u64,
    /// Join messages sent by live nodes.
    pub join_msgs: u64,
    /// Messages sent by live nodes, by wire message type number.
    pub msgs_by_type: [u64; 16],
    /// Messages sent while joining (discovery included), by wire message type number.
    pub join_by_type: [u64; 16],
    /// Approximate memory of live nodes, bytes.
    pub node_bytes: u64,
    /// Live nodes at collection.
    pub live_nodes: u64,
    /// Nodes counted for per-node join cost: live ones plus those that departed.
    pub joined_nodes: u64,
    /// Sum over live nodes of their lifetime, seconds.
    pub node_seconds: f64,
}

/// Figures computed at the end of a run, added to the [`Report`] for printing.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Nodes requested.
    pub nodes: u64,
    /// Lookups lost (neither delivered nor reported).
    pub lost: u64,
    /// Routing-table fill against a perfect table.
    pub rt_fill: f64,
    /// Mean filled routing-table cells.
    pub rt_entries_mean: f64,
    /// Per (node, used row): filled cells that do not hold the proximity-closest live active
    /// node that qualifies for them (the Pastry paper's Fig. 7 measure; NaN if not measured).
    pub rt_non_best_per_row: f64,
    /// Leaf sets that differ from the oracle's.
    pub wrong_leaf_sets: u64,
    /// Lookups whose source was still alive at the end.
    pub live_source_lookups: u64,
    /// Of those, how many were delivered.
    pub live_source_delivered: u64,
    /// Leaf-set entries naming nodes that crashed or left, at the end (after the drain).
    pub stale_leaf_entries: u64,
    /// Seconds from the end of churn (or failures) until every leaf set equalled the oracle's;
    /// NaN when that did not happen within the limit, or was not measured.
    pub converge_s: f64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Virtual seconds simulated.
    pub virtual_s: f64,
    /// Whether latencies are modelled (always true in this simulator).
    pub latency_modelled: bool,
}

impl Report {
    /// Mean delay stretch.
    pub fn stretch_mean(&self) -> f64 {
        if self.stretch_n == 0 {
            0.0
        } else {
            self.stretch_sum / self.stretch_n as f64
        }
    }

    /// Delay stretch as the ratio of total overlay latency to total direct latency.
    pub fn stretch_of_sums(&self) -> f64 {
        if self.direct_us_sum == 0.0 {
            0.0
        } else {
            self.path_us_sum / self.direct_us_sum
        }
    }

    /// The `q` quantile of the per-lookup delay stretch (to 0.01).
    pub fn stretch_quantile(&self, q: f64) -> f64 {
        self.stretch_milli.quantile(q) as f64 / 1e3
    }

    /// The first hops' share of the stretch: their summed latency over the summed direct
    /// latency (the whole path's is [`Report::stretch_of_sums`]).
    pub fn stretch_first_hop(&self) -> f64 {
        self.first_hop_us_sum / self.direct_us_sum
    }

    /// The last hops' share of the stretch (see [`Report::stretch_first_hop`]).
    pub fn stretch_last_hop(&self) -> f64 {
        self.last_hop_us_sum / self.direct_us_sum
    }

    /// The readable report.
    pub fn human(&self, s: &Summary) -> String {
        let mut o = String::new();
        let log16 = (s.nodes.max(1) as f64).log(16.0);
        let pct = |a: u64, b: u64| {
            if b == 0 {
                100.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        let _ = writeln!(
            o,
            "pastry simulation: {} nodes ({} live, {} joined, {} join failures, {} crashed)",
            s.nodes, self.live_nodes, self.joined, self.join_failed, self.crashed
        );
        let _ = writeln!(o, "  lookups      {} issued, {} delivered ({:.3}%), {} at the oracle root ({:.3}%), {} lost, {} duplicates, {} undeliverable, {} refused",
            self.lookups, self.delivered, pct(self.delivered, self.lookups), self.correct, pct(self.correct, self.delivered), s.lost, self.duplicates, self.undeliverable, self.refused);
        let _ = writeln!(
            o,
            "  hops         mean {:.3} (log16 N = {:.2}), max {}, p50 {}, p99 {}",
            self.hops.mean(),
            log16,
            self.hops.max(),
            self.hops.quantile(0.5),
            self.hops.quantile(0.99)
        );
        let mut hist = String::new();
        for (h, c) in self.hops.buckets().iter().enumerate() {
            if *c > 0 {
                let _ = write!(hist, " {h}:{c}");
            }
        }
        let _ = writeln!(o, "  hop counts  {hist}");
        let _ = writeln!(
            o,
            "  latency      p50 {:.1} ms, p99 {:.1} ms; delay stretch mean {:.3} (of ratios), {:.3} (of sums)",
            self.latency_us.quantile(0.5) as f64 / 1e3,
            self.latency_us.quantile(0.99) as f64 / 1e3,
            self.stretch_mean(),
            self.stretch_of_sums()
        );
        let _ = writeln!(
            o,
            "  stretch      p50 {:.2}, p90 {:.2}; first hop {:.3}, last hop {:.3} (of the direct latency)",
            self.stretch_quantile(0.5),
            self.stretch_quantile(0.9),
            self.stretch_first_hop(),
            self.stretch_last_hop()
        );
        let _ = writeln!(
            o,
            "  joins        time to active p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.join_time_us.quantile(0.5) as f64 / 1e3,
            self.join_time_us.quantile(0.99) as f64 / 1e3,
            self.join_time_us.max() as f64 / 1e3
        );
        if s.live_source_lookups > 0 {
            let _ = writeln!(
                o,
                "  live sources {} lookups whose source outlived them (or every retry), {} delivered ({:.3}%)",
                s.live_source_lookups,
                s.live_source_delivered,
                pct(s.live_source_delivered, s.live_source_lookups)
            );
        }
        let _ = writeln!(
            o,
            "  invariants   {} wrong-root deliveries; {} stale leaf-set entries at the end; crashed leaves removed after p50 {:.1} s, p99 {:.1} s; leaf sets converged {}",
            self.incorrect,
            s.stale_leaf_entries,
            self.dead_leaf_us.quantile(0.5) as f64 / 1e6,
            self.dead_leaf_us.quantile(0.99) as f64 / 1e6,
            if s.converge_s.is_finite() {
                format!("{:.1} s after the last change", s.converge_s)
            } else {
                "(not measured, or not within the limit)".to_string()
            }
        );
        let _ = writeln!(o, "  tables       routing table {:.1}% of a perfect table, {:.1} entries mean, {:.2} not the closest per row; {} leaf sets differ from the oracle", s.rt_fill * 100.0, s.rt_entries_mean, s.rt_non_best_per_row, s.wrong_leaf_sets);
        let per = |x: u64| {
            if self.node_seconds > 0.0 {
                x as f64 / self.node_seconds
            } else {
                0.0
            }
        };
        let _ = writeln!(o, "  traffic      join {:.1} msgs/node; maintenance {:.3} msgs/node/s, {:.1} bytes/node/s; {} datagrams ({} dropped)",
            self.join_msgs as f64 / self.joined_nodes.max(1) as f64, per(self.maintenance_msgs), per(self.maintenance_bytes), self.datagrams, self.dropped);
        let names = [
            "",
            "join-req",
            "join-reply",
            "ls-req",
            "ls-reply",
            "row-req",
            "row-reply",
            "ping",
            "pong",
            "routed",
            "ack",
            "leave",
            "undeliv",
            "dlv-ack",
            "failed",
        ];
        let by_type = |counts: &[u64; 16]| {
            let mut by = String::new();
            for (t, c) in counts.iter().enumerate() {
                if *c > 0 {
                    let _ = write!(by, " {}:{}", names.get(t).copied().unwrap_or("?"), c);
                }
            }
            by
        };
        let _ = writeln!(o, "  by type     {}", by_type(&self.msgs_by_type));
        let _ = writeln!(o, "  join by type{}", by_type(&self.join_by_type));
        let _ = writeln!(
            o,
            "  memory       {:.1} KiB/node (peak RSS / nodes)",
            self.node_bytes as f64 / self.live_nodes.max(1) as f64 / 1024.0
        );
        let _ = writeln!(
            o,
            "  time         {:.1} s virtual, {:.1} s wall, {} node inputs ({:.0}/s)",
            s.virtual_s,
            s.wall_s,
            self.events,
            self.events as f64 / s.wall_s.max(1e-9)
        );
        o
    }

    /// One JSON object (a single line), written by serde_json: a figure that is NaN or
    /// infinite (nothing to divide by) is `null`.
    pub fn json(&self, s: &Summary) -> String {
        // Serializing a struct of numbers and vectors into a String cannot fail.
        serde_json::to_string(&self.json_fields(s)).unwrap_or_default()
    }

    fn json_fields(&self, s: &Summary) -> JsonReport {
        let per = |x: u64| {
            if self.node_seconds > 0.0 {
                x as f64 / self.node_seconds
            } else {
                0.0
            }
        };
        JsonReport {
            nodes: s.nodes,
            live_nodes: self.live_nodes,
            lookups: self.lookups,
            delivered: self.delivered,
            correct: self.correct,
            incorrect: self.incorrect,
            lost: s.lost,
            duplicates: self.duplicates,
            undeliverable: self.undeliverable,
            refused: self.refused,
            mean_hops: round(self.hops.mean(), 4),
            max_hops: self.hops.max(),
            hops_histogram: self.hops.buckets().to_vec(),
            log16_n: round((s.nodes.max(1) as f64).log(16.0), 4),
            stretch_mean: round(self.stretch_mean(), 4),
            stretch_of_sums: round(self.stretch_of_sums(), 4),
            stretch_p50: round(self.stretch_quantile(0.5), 2),
            stretch_p90: round(self.stretch_quantile(0.9), 2),
            stretch_first_hop: round(self.stretch_first_hop(), 4),
            stretch_last_hop: round(self.stretch_last_hop(), 4),
            latency_p50_us: self.latency_us.quantile(0.5),
            latency_p99_us: self.latency_us.quantile(0.99),
            join_msgs_per_node: round(self.join_msgs as f64 / self.joined_nodes.max(1) as f64, 2),
            rt_entries_mean: round(s.rt_entries_mean, 2),
            rt_fill: round(s.rt_fill, 4),
            rt_non_best_per_row: round(s.rt_non_best_per_row, 4),
            wrong_leaf_sets: s.wrong_leaf_sets,
            live_source_lookups: s.live_source_lookups,
            live_source_delivered: s.live_source_delivered,
            stale_leaf_entries: s.stale_leaf_entries,
            converge_s: round(s.converge_s, 2),
            join_time_p50_us: self.join_time_us.quantile(0.5),
            join_time_p99_us: self.join_time_us.quantile(0.99),
            dead_leaf_p99_us: self.dead_leaf_us.quantile(0.99),
            maintenance_msgs_per_node_per_s: round(per(self.maintenance_msgs), 4),
            maintenance_bytes_per_node_per_s: round(per(self.maintenance_bytes), 2),
            mem_bytes_per_node: self.node_bytes / self.live_nodes.max(1),
            join_failed: self.join_failed,
            crashed: self.crashed,
            virtual_s: round(s.virtual_s, 2),
            wall_s: round(s.wall_s, 3),
        }
    }
}

/// `x` rounded to `digits` decimals, as the report prints it; NaN and infinities are kept
/// (serde_json writes them as `null`).
fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    if x.is_finite() {
        (x * k).round() / k
    } else {
        x
    }
}

/// The fields of [`Report::json`], in their order.
#[derive(Serialize)]
struct JsonReport {
    nodes: u64,
    live_nodes: u64,
    lookups: u64,
    delivered: u64,
    correct: u64,
    incorrect: u64,
    lost: u64,
    duplicates: u64,
    undeliverable: u64,
    refused: u64,
    mean_hops: f64,
    max_hops: u64,
    hops_histogram: Vec<u64>,
    log16_n: f64,
    stretch_mean: f64,
    stretch_of_sums: f64,
    stretch_p50: f64,
    stretch_p90: f64,
    stretch_first_hop: f64,
    stretch_last_hop: f64,
    latency_p50_us: u64,
    latency_p99_us: u64,
    join_msgs_per_node: f64,
    rt_entries_mean: f64,
    rt_fill: f64,
    rt_non_best_per_row: f64,
    wrong_leaf_sets: u64,
    live_source_lookups: u64,
    live_source_delivered: u64,
    stale_leaf_entries: u64,
    converge_s: f64,
    join_time_p50_us: u64,
    join_time_p99_us: u64,
    dead_leaf_p99_us: u64,
    maintenance_msgs_per_node_per_s: f64,
    maintenance_bytes_per_node_per_s: f64,
    mem_bytes_per_node: u64,
    join_failed: u64,
    crashed: u64,
    virtual_s: f64,
    wall_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::with_width(1);
        for v in [1, 2, 2, 3, 3, 3, 4] {
            h.add(v);
        }
        assert_eq!(h.count(), 7);
        assert_eq!(h.quantile(0.5), 3);
        assert_eq!(h.quantile(1.0), 4);
        assert_eq!(h.max(), 4);
        assert!((h.mean() - 18.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn json_is_valid_with_nan_and_infinities() {
        let r = Report {
            stretch_sum: f64::NAN,
            stretch_n: 1,
            path_us_sum: f64::INFINITY,
            direct_us_sum: 1.0,
            ..Report::default()
        };
        let s = Summary {
            rt_fill: f64::NAN,
            wall_s: f64::NEG_INFINITY,
            ..Summary::default()
        };
        let text = r.json(&s);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["stretch_mean"].is_null(), "{text}");
        assert!(v["stretch_of_sums"].is_null(), "{text}");
        assert!(v["rt_fill"].is_null() && v["wall_s"].is_null(), "{text}");
        assert_eq!(v["hops_histogram"], serde_json::json!([]));
        assert!(!text.contains('\n'));
    }
}
