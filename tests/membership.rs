//! Membership under loopback-like timing: concurrent joins, graceful leaves a millisecond apart,
//! crashes. Deterministic (seeded simulator); every case was first seen on real sockets.

use pastry::node::Event;
use pastry::sim::{ChurnSpec, Faults, NodeIdx, Scenario, Sim, SimConfig, Tapped, Topology};
use pastry::wire::decode;
use pastry::{Duration, Instant};

/// Loopback-like links: 10 µs plus up to 190 µs of jitter, so datagrams overtake each other;
/// `loss` stands for the bursts a busy loop thread's socket buffers drop.
fn loopback(seed: u64, loss: f64) -> Sim {
    Sim::new(SimConfig {
        seed,
        topology: Topology::Loopback,
        faults: Faults {
            jitter: Duration::from_micros(190),
            loss,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
}

/// `n` nodes: one starts alone, the others all call join through it within a millisecond.
fn concurrent_joins(seed: u64, n: usize, loss: f64) -> (Sim, Vec<NodeIdx>) {
    let mut s = loopback(seed, loss);
    let first = s.add_node(None);
    s.start(first, None);
    let mut all = vec![first];
    for _ in 1..n {
        all.push(s.add_node(None));
    }
    for (k, &i) in all.iter().enumerate().skip(1) {
        s.start(i, Some(first));
        if k % 8 == 0 {
            s.run_for(Duration::from_micros(100));
        }
    }
    (s, all)
}

/// Runs until every node has joined (at most `limit`); the time the last one did.
fn until_all_joined(s: &mut Sim, n: u64, limit: Duration) -> Option<Instant> {
    let end = s.now() + limit;
    while s.report.joined < n && s.now() < end {
        s.run_for(Duration::from_millis(10));
    }
    (s.report.joined == n).then(|| s.now())
}

/// Runs until every leaf set equals the oracle's (at most `limit`); how long that took.
fn until_converged(s: &mut Sim, limit: Duration) -> Option<Duration> {
    let start = s.now();
    while !s.wrong_leaf_sets().is_empty() {
        if s.now() - start >= limit {
            return None;
        }
        s.run_for(Duration::from_millis(10));
    }
    Some(s.now() - start)
}

/// Prints every datagram to or from the nodes whose id starts with one of `prefixes` (hex):
/// install it in a failing seed to see the exchange.
#[allow(dead_code)]
fn trace(s: &mut Sim, prefixes: &'static [&'static str]) {
    let ids: Vec<(NodeIdx, String)> = s
        .live()
        .map(|i| (i, s.node(i).unwrap().id().to_hex()))
        .collect();
    let name = move |i: NodeIdx| {
        ids.iter()
            .find(|(j, _)| *j == i)
            .map(|(_, h)| h[..6].to_string())
    };
    let hit = |h: &str| prefixes.iter().any(|p| h.starts_with(p));
    s.set_tap(move |t| {
        let (at, to, data, lost) = match t {
            Tapped::Received { at, to, data, .. } => (at, to, data, false),
            Tapped::Lost { at, to, data, .. } => (at, to, data, true),
        };
        if let (Ok((h, m)), Some(to)) = (decode(data), name(to)) {
            let from = h.sender.to_hex();
            if hit(&from) && hit(&to) {
                let lost = if lost { " LOST" } else { "" };
                println!("{at:?} {} -> {to} {:?}{lost}", &from[..6], m.message_type());
            }
        }
    });
}

/// 64 nodes joining at once, over `seeds`: all join within 2 minutes, and every leaf set equals
/// the oracle's within `limit` of the last join. Returns the worst time to converge.
fn joins_converge(seeds: core::ops::Range<u64>, loss: f64, limit: Duration) -> Duration {
    let mut failures = Vec::new();
    let mut worst = Duration::ZERO;
    for seed in seeds {
        let (mut s, _all) = concurrent_joins(seed, 64, loss);
        if until_all_joined(&mut s, 64, Duration::from_secs(120)).is_none() {
            failures.push((seed, "joins", s.report.joined));
            continue;
        }
        match until_converged(&mut s, limit) {
            Some(d) => worst = worst.max(d),
            None => failures.push((seed, "leaf sets", s.wrong_leaf_sets().len() as u64)),
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    worst
}

#[test]
fn concurrent_joins_converge_on_loopback_timing() {
    // Seen on real sockets: 2 runs in 20 left a leaf set missing its neighbours for good.
    let worst = joins_converge(0..40, 0.0, Duration::from_secs(2));
    println!("no loss: worst convergence after the last join {worst:?}");
}

#[test]
fn concurrent_joins_converge_under_loss() {
    // With 5% loss a live neighbour is now and then declared failed (all of a probe's datagrams
    // lost); it pings us at its next leaf tick (within two probe periods of its activation, as
    // ticks are jittered) and proves itself again.
    // (45 s until nearest-node discovery came: a newcomer now answers no prober before its
    // join's root has, so one of the 40 seeds, 35, needs one more probe period: 60-75 s.)
    let worst = joins_converge(0..40, 0.05, Duration::from_secs(75));
    println!("5% loss: worst convergence after the last join {worst:?}");
}

#[test]
fn graceful_leaves_a_millisecond_apart_leave_no_trace() {
    // Seen on real sockets: survivors got update(joined) for a node 0–100 ms after it left, and
    // 10–15% of runs kept it in a leaf set for a minute. Here: 48 nodes settled on loopback
    // timing, then 12 leave 1 ms apart (the departures race their own earlier datagrams).
    for seed in 0..20 {
        let (mut s, all) = concurrent_joins(seed, 48, 0.0);
        until_all_joined(&mut s, 48, Duration::from_secs(60)).expect("all joined");
        s.run_for(Duration::from_secs(5));
        s.record_events();
        let leaving: Vec<NodeIdx> = all.iter().copied().skip(3).step_by(4).collect();
        let gone: Vec<pastry::Id> = leaving.iter().map(|&i| s.node(i).unwrap().id()).collect();
        // update(joined) for a node after it left is a violation; before, it may be legitimate
        // (a node pushed back into a leaf set by an earlier departure).
        let mut back = Vec::new();
        let mut check = |s: &mut Sim, departed: &[pastry::Id]| {
            for (i, e) in s.take_events() {
                if matches!(e, Event::NeighborJoined(h) if departed.contains(&h.id)) {
                    back.push((i, e));
                }
            }
        };
        for (k, &i) in leaving.iter().enumerate() {
            check(&mut s, &gone[..k]);
            s.leave(i);
            s.run_for(Duration::from_millis(1));
        }
        s.run_for(Duration::from_secs(1));
        check(&mut s, &gone);
        for i in s.live() {
            let n = s.node(i).unwrap();
            for g in &gone {
                assert!(
                    !n.leaf_set().contains(*g),
                    "seed {seed}: {i:?} still holds {g}"
                );
            }
        }
        assert!(
            back.is_empty(),
            "seed {seed}: departed nodes rejoined: {back:?}"
        );
        assert!(
            s.wrong_leaf_sets().is_empty(),
            "seed {seed}: leaf sets not repaired"
        );
    }
}

#[test]
fn churn_at_84_s_sessions_keeps_every_delivery_at_the_root() {
    // 500 nodes, exponential sessions of mean 84 s (median 58 s), all crashes, 300 s of lookups.
    let mut sc = Scenario::new(
        500,
        3000,
        SimConfig {
            seed: 5,
            ..SimConfig::default()
        },
    );
    sc.churn = Some(ChurnSpec {
        mean_session: Duration::from_secs(84),
        graceful: 0.0,
    });
    sc.phase = Some(Duration::from_secs(300));
    let out = sc.run(&mut |_| {});
    let (r, s) = (&out.report, &out.summary);
    println!(
        "churn 84 s: {} of {} lookups whose source outlived them delivered, {} wrong root, p50 {} ms, p99 {} ms, {} joins ({} failed), converged after {:.1} s, {} stale leaf entries",
        s.live_source_delivered,
        s.live_source_lookups,
        r.incorrect,
        r.latency_us.quantile(0.5) / 1000,
        r.latency_us.quantile(0.99) / 1000,
        r.joined,
        r.join_failed,
        s.converge_s,
        s.stale_leaf_entries
    );
    assert!(r.crashed > 500, "churn too weak: {} crashes", r.crashed);
    assert_eq!(r.incorrect, 0, "deliveries at a node that was not the root");
    assert!(
        s.live_source_delivered * 1000 >= s.live_source_lookups * 999,
        "{} of {} delivered",
        s.live_source_delivered,
        s.live_source_lookups
    );
    assert!(
        s.converge_s.is_finite(),
        "leaf sets never converged after churn"
    );
    assert_eq!(s.stale_leaf_entries, 0, "departed nodes left in leaf sets");
}

#[test]
#[ignore]
fn diag() {
    let (mut s, _) = concurrent_joins(35, 64, 0.05);
    until_all_joined(&mut s, 64, Duration::from_secs(120));
    for k in 0..12 {
        s.run_for(Duration::from_secs(15));
        println!("{}s: {} wrong", 15 * (k + 1), s.wrong_leaf_sets().len());
    }
    for i in s.wrong_leaf_sets() {
        let n = s.node(i).unwrap();
        let (cw, ccw) = s.oracle().leaf_sides(n.id(), n.leaf_set().half());
        let hex = |v: Vec<pastry::Id>| {
            v.iter()
                .map(|x| x.to_hex()[..6].to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{i:?} {}\n cw  {}\n got {}\n ccw {}\n got {}",
            n.id(),
            hex(cw),
            hex(n.leaf_set().cw_side().iter().map(|h| h.id).collect()),
            hex(ccw),
            hex(n.leaf_set().ccw_side().iter().map(|h| h.id).collect())
        );
    }
}
