//! Simulations of whole overlays (deterministic, seeded, virtual clock). Every delivery is checked
//! against the oracle: the numerically closest live active node.

use pastry::sim::{Faults, NodeIdx, Sim, SimConfig, Topology};
use pastry::{Duration, Instant};

fn sim(seed: u64) -> Sim {
    Sim::new(SimConfig {
        seed,
        topology: Topology::Sphere,
        ..SimConfig::default()
    })
}

/// Grows an overlay of `n` nodes, lets it settle.
fn grown(seed: u64, n: usize) -> Sim {
    let mut s = sim(seed);
    s.grow(n, Duration::from_millis(20));
    s.run_for(Duration::from_secs(30));
    s
}

fn lookups(s: &mut Sim, n: u64) {
    s.reset_lookups();
    s.schedule_lookups(n, Duration::from_micros(200), 32);
    s.run_for(Duration::from_micros(200 * n) + Duration::from_secs(60));
}

#[test]
fn small_overlay_joins_and_delivers_at_the_root() {
    let mut s = grown(1, 50);
    assert_eq!(s.report.joined, 50, "{:?}", s.report);
    let bad = s.wrong_leaf_sets();
    assert!(bad.is_empty(), "{} wrong leaf sets", bad.len());
    lookups(&mut s, 2000);
    let r = &s.report;
    assert_eq!(r.lookups, 2000);
    assert_eq!(r.delivered, 2000, "{r:?}");
    assert_eq!(r.correct, 2000, "{r:?}");
    assert_eq!(s.lost_lookups(), 0);
    let _ = (NodeIdx(0), Instant::ZERO, Faults::default());
}

#[test]
fn debug_joins() {
    let mut s = grown(1, 50);
    for i in s.live().collect::<Vec<_>>() {
        let n = s.node(i).unwrap();
        if !n.is_active() {
            println!("{i:?} {n:?}");
        }
    }
}
