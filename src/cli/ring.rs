//! `pastry ring`: a local overlay on loopback in one process. Joins N nodes (127.0.0.1,
//! ephemeral ports), routes M messages to random keys from random nodes, checks every delivery
//! against the oracle (the numerically closest live node) and reports join time, hops against
//! log16 N, latency, throughput and memory per node. Exits non-zero if any message was not
//! delivered at its oracle root.

// The CLI drives real sockets: it reads the wall clock and runs application threads.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as WallClock};

use clap::builder::RangedU64ValueParser;
use clap::Args;
use parking_lot::{Condvar, Mutex};
use pastry::node::Node;
use pastry::runtime::{Application, Delivery, Handle, NodeConfig, RouteError, Runtime};
use pastry::{Id, Rng};
use serde::Serialize;

use super::sim::peak_rss_bytes;
use super::Failure;

/// Joins started at once.
const JOIN_PARALLEL: usize = 8;

/// One delivery, as seen by the application at the node that delivered it.
struct Rec {
    seq: u64,
    at: Id,
    hops: u8,
    when: WallClock,
}

/// Deliveries from every node, shared with the application upcalls.
#[derive(Default)]
struct Collector {
    recs: Mutex<Vec<Rec>>,
    count: AtomicU64,
    more: Condvar,
}

struct RingApp(Arc<Collector>);

impl Application for RingApp {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let mut b = [0u8; 8];
        if msg.payload.len() >= 8 {
            b.copy_from_slice(&msg.payload[..8]);
        }
        let rec = Rec {
            seq: u64::from_le_bytes(b),
            at: node.id(),
            hops: msg.hops,
            when: WallClock::now(),
        };
        self.0.recs.lock().push(rec);
        self.0.count.fetch_add(1, Ordering::Release);
        self.0.more.notify_all();
    }
}

/// Options of `pastry ring`.
#[derive(Debug, Args)]
pub(crate) struct RingArgs {
    /// Nodes to start on 127.0.0.1 (ephemeral ports).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) nodes: usize,
    /// Messages to route, each to a random key from a random node.
    #[arg(long, value_name = "M", default_value_t = 10_000)]
    messages: u64,
    /// Messages in flight at most.
    #[arg(long, value_name = "W", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Runtime threads (event loops) the nodes are spread over.
    #[arg(long, value_name = "T", default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    threads: usize,
    /// Seed of the node ids and of the workload.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also draw the hop distribution and the latency CDF into this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

/// What the run measured.
#[derive(Default)]
struct Outcome {
    join_s: f64,
    settle_s: f64,
    delivered: u64,
    correct: u64,
    duplicates: u64,
    hops: Vec<u64>,
    latencies_us: Vec<u64>,
    route_s: f64,
}

/// Runs `pastry ring`.
pub(crate) fn main(o: &RingArgs) -> Result<(), Failure> {
    super::logger::init(log::LevelFilter::Warn);
    let wall = WallClock::now();
    let progress = |msg: &str| eprintln!("[{:6.2}s] {msg}", wall.elapsed().as_secs_f64());
    let collector = Arc::new(Collector::default());
    let runtimes: Vec<Runtime> = (0..o.threads)
        .map(|_| Runtime::new().map_err(|e| format!("cannot start a runtime: {e}")))
        .collect::<Result<_, _>>()?;
    let mut rng = Rng::new(o.seed);
    let mut out = Outcome::default();
    let t = WallClock::now();
    let nodes = grow(&runtimes, o, &mut rng, &collector, &progress)?;
    out.join_s = t.elapsed().as_secs_f64();
    progress(&format!(
        "{} nodes joined in {:.2} s",
        nodes.len(),
        out.join_s
    ));
    let t = WallClock::now();
    let wrong = settle(&nodes, StdDuration::from_secs(30));
    out.settle_s = t.elapsed().as_secs_f64();
    if wrong > 0 {
        progress(&format!(
            "{wrong} leaf sets still differ from the oracle after 30 s"
        ));
    }
    let sent = route_all(&nodes, o, &mut rng, &collector, &progress);
    tally(&nodes, &collector, &sent, &mut out);
    for rt in runtimes {
        rt.shutdown();
    }
    report(o, &out)?;
    let bad = o.messages - out.correct;
    if bad > 0 {
        return Err(format!(
            "{bad} of {} messages were not delivered at their oracle root",
            o.messages
        ));
    }
    Ok(())
}

/// Starts the first node alone, then joins the others through random active nodes,
/// [`JOIN_PARALLEL`] at a time, spread over the runtimes.
fn grow(
    runtimes: &[Runtime],
    o: &RingArgs,
    rng: &mut Rng,
    collector: &Arc<Collector>,
    progress: &dyn Fn(&str),
) -> Result<Vec<Handle>, String> {
    let wait = StdDuration::from_secs(60);
    let mut nodes: Vec<Handle> = Vec::with_capacity(o.nodes);
    let step = (o.nodes / 10).max(1);
    while nodes.len() < o.nodes {
        let wave = (o.nodes - nodes.len()).min(if nodes.is_empty() { 1 } else { JOIN_PARALLEL });
        let mut joining = Vec::with_capacity(wave);
        for _ in 0..wave {
            let i = nodes.len() + joining.len();
            let cfg = NodeConfig::new(([127, 0, 0, 1], 0).into())
                .with_id(Id(rng.next_u128()))
                .with_seed(rng.next_u64() | 1);
            let h = runtimes[i % runtimes.len()]
                .add_node(cfg, RingApp(collector.clone()))
                .map_err(|e| e.to_string())?;
            if nodes.is_empty() {
                h.start_alone().map_err(|e| e.to_string())?;
            } else {
                let boot = nodes[rng.below(nodes.len() as u64) as usize].addr();
                h.start_join(&[boot]).map_err(|e| e.to_string())?;
            }
            joining.push(h);
        }
        for h in joining {
            h.wait_joined(wait)
                .map_err(|e| format!("node {}: {e}", h.id()))?;
            nodes.push(h);
            if nodes.len() % step == 0 {
                progress(&format!("{} of {} nodes joined", nodes.len(), o.nodes));
            }
        }
    }
    Ok(nodes)
}

/// The numerically closest id to `key` (ties to the smaller id).
fn oracle_root(ids: &BTreeSet<Id>, key: Id) -> Option<Id> {
    let succ = ids.range(key..).next().or_else(|| ids.iter().next())?;
    let pred = ids
        .range(..key)
        .next_back()
        .or_else(|| ids.iter().next_back())?;
    Some(if key.closer_to(*pred, *succ) {
        *pred
    } else {
        *succ
    })
}

/// Waits (bounded) until every node's leaf set holds its oracle neighbours; returns how many
/// still differ.
fn settle(nodes: &[Handle], limit: StdDuration) -> usize {
    let ids: BTreeSet<Id> = nodes.iter().map(Handle::id).collect();
    let deadline = WallClock::now() + limit;
    loop {
        let wrong = nodes.iter().filter(|h| !leaf_set_ok(h, &ids)).count();
        if wrong == 0 || WallClock::now() >= deadline {
            return wrong;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
}

fn leaf_set_ok(h: &Handle, ids: &BTreeSet<Id>) -> bool {
    let Ok((cw, ccw, half)) = h.call(|n| {
        let l = n.leaf_set();
        let ids = |s: &[pastry::NodeHandle]| s.iter().map(|m| m.id).collect::<Vec<Id>>();
        (ids(l.cw_side()), ids(l.ccw_side()), l.half())
    }) else {
        return false;
    };
    let me = h.id();
    let n = (ids.len() - 1).min(half);
    let want_cw: Vec<Id> = ids
        .range(me..)
        .chain(ids.iter())
        .filter(|&&x| x != me)
        .take(n)
        .copied()
        .collect();
    let want_ccw: Vec<Id> = ids
        .range(..me)
        .rev()
        .chain(ids.iter().rev())
        .filter(|&&x| x != me)
        .take(n)
        .copied()
        .collect();
    cw == want_cw && ccw == want_ccw
}

/// Routes every message (at most `window` in flight); returns each one's key and send time.
fn route_all(
    nodes: &[Handle],
    o: &RingArgs,
    rng: &mut Rng,
    c: &Collector,
    progress: &dyn Fn(&str),
) -> Vec<(Id, WallClock)> {
    let mut sent = Vec::with_capacity(o.messages as usize);
    let step = (o.messages / 10).max(1);
    for seq in 0..o.messages {
        wait_window(c, seq, o.window);
        let src = &nodes[rng.below(nodes.len() as u64) as usize];
        let key = Id(rng.next_u128());
        let mut payload = vec![0u8; 32];
        payload[..8].copy_from_slice(&seq.to_le_bytes());
        sent.push((key, WallClock::now()));
        let mut tries = 0;
        while let Err(RouteError::Overloaded) = src.route(key, payload.clone()) {
            tries += 1;
            if tries > 10_000 {
                break;
            }
            std::thread::sleep(StdDuration::from_micros(100));
        }
        if (seq + 1) % step == 0 {
            progress(&format!(
                "{} of {} messages routed, {} delivered",
                seq + 1,
                o.messages,
                c.count.load(Ordering::Acquire)
            ));
        }
    }
    wait_all(c, o.messages);
    sent
}

/// Blocks while `window` messages are in flight (a lost message stops counting after 2 s).
fn wait_window(c: &Collector, seq: u64, window: u64) {
    let mut recs = c.recs.lock();
    let mut waited = 0;
    while seq.saturating_sub(c.count.load(Ordering::Acquire)) >= window && waited < 20 {
        if c.more
            .wait_for(&mut recs, StdDuration::from_millis(100))
            .timed_out()
        {
            waited += 1;
        }
    }
}

/// Waits until `total` deliveries arrived, or 5 s pass without one.
fn wait_all(c: &Collector, total: u64) {
    let mut recs = c.recs.lock();
    let mut last = c.count.load(Ordering::Acquire);
    let mut idle = WallClock::now();
    while last < total && idle.elapsed() < StdDuration::from_secs(5) {
        c.more.wait_for(&mut recs, StdDuration::from_millis(100));
        let now = c.count.load(Ordering::Acquire);
        if now != last {
            last = now;
            idle = WallClock::now();
        }
    }
}

/// Checks every delivery against the oracle and gathers the figures.
fn tally(nodes: &[Handle], c: &Collector, sent: &[(Id, WallClock)], out: &mut Outcome) {
    let ids: BTreeSet<Id> = nodes.iter().map(Handle::id).collect();
    let recs = c.recs.lock();
    let mut seen = vec![false; sent.len()];
    let mut last = sent.first().map(|s| s.1);
    for r in recs.iter() {
        let Some(&(key, at)) = sent.get(r.seq as usize) else {
            continue;
        };
        if std::mem::replace(&mut seen[r.seq as usize], true) {
            out.duplicates += 1;
            continue;
        }
        out.delivered += 1;
        out.correct += u64::from(oracle_root(&ids, key) == Some(r.at));
        let h = usize::from(r.hops);
        if out.hops.len() <= h {
            out.hops.resize(h + 1, 0);
        }
        out.hops[h] += 1;
        out.latencies_us
            .push(r.when.saturating_duration_since(at).as_micros() as u64);
        last = last.max(Some(r.when));
    }
    out.latencies_us.sort_unstable();
    if let (Some(first), Some(last)) = (sent.first(), last) {
        out.route_s = last.saturating_duration_since(first.1).as_secs_f64();
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The machine-readable report (`--json`): one object, field names stable.
#[derive(Debug, Serialize)]
struct RingJson {
    nodes: usize,
    messages: u64,
    delivered: u64,
    correct: u64,
    duplicates: u64,
    mean_hops: f64,
    max_hops: usize,
    hops_histogram: Vec<u64>,
    log16_n: f64,
    p50_us: u64,
    p99_us: u64,
    msgs_per_s: f64,
    join_s: f64,
    settle_s: f64,
    rss_bytes: u64,
    rss_bytes_per_node: u64,
}

/// `x` rounded to `digits` decimals (NaN and infinities stay as they are: JSON `null`).
fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    if x.is_finite() {
        (x * k).round() / k
    } else {
        x
    }
}

fn report(o: &RingArgs, out: &Outcome) -> Result<(), Failure> {
    let n = o.nodes as f64;
    let hops_total: u64 = out.hops.iter().enumerate().map(|(h, c)| h as u64 * c).sum();
    let mean_hops = hops_total as f64 / out.delivered.max(1) as f64;
    let (p50, p99) = (
        percentile(&out.latencies_us, 0.5),
        percentile(&out.latencies_us, 0.99),
    );
    let rate = out.delivered as f64 / out.route_s.max(1e-9);
    let rss = peak_rss_bytes();
    let per_node = rss / o.nodes as u64;
    if let Some(path) = &o.svg {
        let cdf = super::figures::cdf_ms(out.latencies_us.iter().copied());
        let title = format!("pastry ring: {} nodes on loopback", o.nodes);
        super::figures::routes(path, &title, &out.hops, n.log(16.0), &cdf)?;
    }
    if o.json {
        let j = RingJson {
            nodes: o.nodes,
            messages: o.messages,
            delivered: out.delivered,
            correct: out.correct,
            duplicates: out.duplicates,
            mean_hops: round(mean_hops, 4),
            max_hops: out.hops.len().saturating_sub(1),
            hops_histogram: out.hops.clone(),
            log16_n: round(n.log(16.0), 4),
            p50_us: p50,
            p99_us: p99,
            msgs_per_s: round(rate, 1),
            join_s: round(out.join_s, 4),
            settle_s: round(out.settle_s, 4),
            rss_bytes: rss,
            rss_bytes_per_node: per_node,
        };
        let line = serde_json::to_string(&j).map_err(|e| e.to_string())?;
        super::out(&format!("{line}\n"));
        return Ok(());
    }
    let hist: Vec<String> = out
        .hops
        .iter()
        .enumerate()
        .map(|(h, c)| format!("{h}: {c}"))
        .collect();
    use core::fmt::Write as _;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "pastry ring: {} nodes on 127.0.0.1, {} runtime thread(s)",
        o.nodes, o.threads
    );
    let _ = writeln!(
        text,
        "  join        {:.2} s (leaf sets settled {:.2} s later)",
        out.join_s, out.settle_s
    );
    let _ = writeln!(
        text,
        "  messages    {} routed, {} delivered, {} at the oracle root, {} duplicates",
        o.messages, out.delivered, out.correct, out.duplicates
    );
    let _ = writeln!(
        text,
        "  hops        mean {mean_hops:.3} (log16 N = {:.3}); {}",
        n.log(16.0),
        hist.join("  ")
    );
    let _ = writeln!(
        text,
        "  latency     p50 {p50} µs, p99 {p99} µs (at most {} in flight)",
        o.window
    );
    let _ = writeln!(text, "  throughput  {rate:.0} messages/s");
    let _ = writeln!(
        text,
        "  memory      peak RSS {:.1} MiB, {:.1} KiB per node",
        rss as f64 / (1 << 20) as f64,
        per_node as f64 / 1024.0
    );
    super::out(&text);
    Ok(())
}
