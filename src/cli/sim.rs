//! `pastry sim`: join N nodes through the protocol in the simulator, optionally fail some or
//! churn, route lookups, check every delivery against the oracle, and report.

use std::time::Instant as WallClock;

use pastry::node::Config;
use pastry::sim::{Faults, NodeIdx, Sim, SimConfig, Summary, Topology};
use pastry::{DigitBits, Duration};

use super::args::Args;

/// Peak resident memory of this process, from /proc (Linux); 0 elsewhere.
pub(crate) fn peak_rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

pub(crate) fn main(argv: &[String]) -> Result<(), String> {
    let mut a = Args::parse(argv, &["json", "quiet"])?;
    let nodes: usize = a.get("nodes", 1000)?;
    let lookups: u64 = a.get("lookups", 10_000)?;
    let b: u8 = a.get("b", 4)?;
    let leaf: usize = a.get("leaf", 16)?;
    let loss: f64 = a.get("loss", 0.0)?;
    let dup: f64 = a.get("dup", 0.0)?;
    let jitter_ms: u64 = a.get("jitter-ms", 0)?;
    let churn_session: Option<f64> = a
        .get_opt::<String>("churn-session")?
        .map(|s| parse_secs(&s))
        .transpose()?;
    let graceful: f64 = a.get("graceful", 0.0)?;
    let fail: f64 = a.get("fail", 0.0)?;
    let seed: u64 = a.get("seed", 7)?;
    let topology = match a.get::<String>("topology", "sphere".into())?.as_str() {
        "sphere" => Topology::Sphere,
        "plane" => Topology::Plane,
        t => return Err(format!("--topology {t}: expected sphere or plane")),
    };
    let default_rate = (nodes as f64 / 20.0).clamp(50.0, 2000.0);
    let join_rate: f64 = a.get("join-rate", default_rate)?;
    let json = a.flag("json");
    let quiet = a.flag("quiet") || json;
    a.finish()?;
    if nodes == 0 || !(0.0..1.0).contains(&fail) || !(0.0..=1.0).contains(&loss) || join_rate <= 0.0
    {
        return Err("need --nodes > 0, 0 <= --fail < 1, 0 <= --loss <= 1, --join-rate > 0".into());
    }

    let node = Config {
        b: DigitBits::new(b).ok_or_else(|| format!("--b {b}: expected 1, 2 or 4"))?,
        leaf_set_size: leaf,
        ..Config::default()
    };
    node.validate().map_err(|e| e.to_string())?;
    let cfg = SimConfig {
        seed,
        topology,
        faults: Faults {
            loss,
            duplicate: dup,
            corrupt: 0.0,
            jitter: Duration::from_millis(jitter_ms),
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
    sim.run_for(Duration::from_secs(30));
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
        None => Duration((lookups * 100).max(1)),
    };
    let lookup_gap = Duration((phase.as_micros() / lookups.max(1)).max(1));
    if let Some(s) = churn_session {
        let until = sim.now() + phase;
        sim.start_churn(Duration((s * 1e6) as u64), graceful, until);
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
    sim.run_for(Duration::from_secs(120));

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
    if json {
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

fn parse_secs(s: &str) -> Result<f64, String> {
    let (num, mul) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>()
        .map(|v| v * mul)
        .map_err(|e| format!("--churn-session {s}: {e}"))
}
