//! Property tests of the pure state against brute-force models: leaf set, routing table, the
//! next-hop rule (strict progress, greedy walks end at the numerically closest node), KBR queries.

use core::net::{Ipv4Addr, SocketAddr};

use pastry::router::{local_lookup, next_hop, NextHop};
use pastry::routing_table::Inserted;
use pastry::{DigitBits, Id, LeafSet, NodeHandle, Rng, RoutingTable};

fn handle(id: Id, i: usize) -> NodeHandle {
    let port = 1000 + (i % 60000) as u16;
    NodeHandle::new(id, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Random ids; some runs cluster them in a narrow arc (adjacent ids) or around the wrap point.
fn population(rng: &mut Rng, n: usize) -> Vec<Id> {
    let mode = rng.below(3);
    let mut ids: Vec<Id> = (0..n)
        .map(|_| match mode {
            0 => Id(rng.next_u128()),
            1 => Id(rng.next_u128() >> 100),
            _ => Id((rng.next_u128() >> 100).wrapping_sub(1u128 << 26)),
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn root(key: Id, ids: &[Id]) -> Id {
    let mut best = ids[0];
    for &x in ids {
        if key.closer_to(x, best) {
            best = x;
        }
    }
    best
}

/// The brute-force leaf set: the `half` closest each way.
fn naive_sides(own: Id, others: &[Id], half: usize) -> (Vec<Id>, Vec<Id>) {
    let mut cw: Vec<Id> = others.iter().copied().filter(|&x| x != own).collect();
    cw.sort_by_key(|&x| own.cw_distance(x));
    let mut ccw = cw.clone();
    ccw.sort_by_key(|&x| x.cw_distance(own));
    cw.truncate(half);
    ccw.truncate(half);
    (cw, ccw)
}

fn ids(side: &[NodeHandle]) -> Vec<Id> {
    side.iter().map(|h| h.id).collect()
}

#[test]
fn leaf_set_equals_brute_force_after_inserts_and_removals() {
    let mut rng = Rng::new(11);
    for round in 0..400 {
        let n = 1 + rng.below(if round % 2 == 0 { 24 } else { 200 }) as usize;
        let pop = population(&mut rng, n);
        let size = [2, 4, 8, 16, 24][rng.below(5) as usize];
        let own = pop[rng.below(pop.len() as u64) as usize];
        let mut ls = LeafSet::new(own, size);
        let mut order = pop.clone();
        shuffle(&mut rng, &mut order);
        for (i, &x) in order.iter().enumerate() {
            ls.insert(handle(x, i));
        }
        let (cw, ccw) = naive_sides(own, &pop, size / 2);
        assert_eq!(ids(ls.cw_side()), cw, "round {round}");
        assert_eq!(ids(ls.ccw_side()), ccw, "round {round}");
        let others = pop.len() - 1;
        assert_eq!(
            ls.is_complete() || others == 0,
            others < size,
            "round {round} n {n}"
        );

        // Remove a random third, then offer the survivors again (what repair does).
        let survivors: Vec<Id> = pop
            .iter()
            .copied()
            .filter(|&x| x == own || !rng.chance(0.33))
            .collect();
        for &x in &pop {
            if !survivors.contains(&x) {
                ls.remove(x);
                assert!(!ls.contains(x));
            }
        }
        for (i, &x) in survivors.iter().enumerate() {
            ls.insert(handle(x, i));
        }
        let (cw, ccw) = naive_sides(own, &survivors, size / 2);
        assert_eq!(ids(ls.cw_side()), cw, "round {round} after removals");
        assert_eq!(ids(ls.ccw_side()), ccw, "round {round} after removals");

        // Every covered key's root is the owner or a member, and `closest` finds it.
        for _ in 0..50 {
            let key = Id(rng.next_u128());
            let key = if rng.chance(0.5) {
                own.wrapping_add(rng.next_u128() >> 104)
            } else {
                key
            };
            if ls.covers(key) {
                let want = root(key, &survivors);
                let got = ls.closest(key, |_| true).map_or(own, |h| h.id);
                assert_eq!(got, want, "round {round}");
            }
        }
    }
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

#[test]
fn routing_table_keeps_the_proximity_closest_per_cell() {
    let mut rng = Rng::new(5);
    for b in [1u8, 2, 4] {
        let b = DigitBits::new(b).unwrap();
        for _ in 0..30 {
            let n = 1 + rng.below(400) as usize;
            let pop = population(&mut rng, n);
            let own = pop[0];
            let rtt: Vec<u32> = pop.iter().map(|_| rng.below(100_000) as u32).collect();
            let mut rt = RoutingTable::new(own, b);
            let mut alive = vec![true; pop.len()];
            for _step in 0..3 {
                for (i, &x) in pop.iter().enumerate() {
                    if alive[i] {
                        let r = rt.insert(handle(x, i), rtt[i]);
                        if x == own {
                            assert_eq!(r, Inserted::Rejected);
                        }
                    }
                }
                // Brute force: each cell holds the min-rtt live candidate (first offered on ties).
                let mut filled = 0;
                for row in 0..rt.rows() {
                    for col in 0..b.base() {
                        let best = pop
                            .iter()
                            .enumerate()
                            .filter(|&(i, &x)| {
                                alive[i]
                                    && x != own
                                    && own.shared_prefix_len(x, b) == row
                                    && x.digit(row, b) == col
                            })
                            .min_by_key(|&(i, _)| rtt[i])
                            .map(|(i, _)| rtt[i]);
                        let got = rt.get(row, col).map(|e| e.rtt_us);
                        assert_eq!(got, best, "b {b:?} cell ({row},{col})");
                        if let Some(e) = rt.get(row, col) {
                            assert_eq!(rt.cell_of(e.node.id), Some((row, col)));
                            filled += 1;
                        }
                    }
                }
                assert_eq!(filled, rt.len());
                assert_eq!(rt.entries().count(), rt.len());
                // Kill a random quarter; removal empties their cells.
                for (i, &x) in pop.iter().enumerate() {
                    if alive[i] && x != own && rng.chance(0.25) {
                        alive[i] = false;
                        let was = rt.find(x).is_some();
                        assert_eq!(rt.remove(x).is_some(), was);
                        assert!(rt.find(x).is_none());
                    }
                }
            }
        }
    }
}

/// A node's complete tables over a static population: what a converged overlay holds.
struct Tables {
    leaf: LeafSet,
    rt: RoutingTable,
}

fn tables(own: usize, pop: &[Id], rtt_seed: u64, b: DigitBits) -> Tables {
    let mut leaf = LeafSet::new(pop[own], 16);
    let mut rt = RoutingTable::new(pop[own], b);
    let mut r = Rng::new(rtt_seed ^ own as u64);
    for (i, &x) in pop.iter().enumerate() {
        let h = handle(x, i);
        leaf.insert(h);
        rt.insert(h, r.below(200_000) as u32);
    }
    Tables { leaf, rt }
}

#[test]
fn greedy_walks_over_10000_ids_make_strict_progress_and_end_at_the_root() {
    let b = DigitBits::FOUR;
    let mut rng = Rng::new(99);
    let pop = population_uniform(&mut rng, 10_000);
    let index = |id: Id| pop.binary_search(&id).unwrap();
    let mut cache: Vec<Option<Box<Tables>>> = (0..pop.len()).map(|_| None).collect();
    let mut total_hops = 0usize;
    let walks = 3_000;
    for w in 0..walks {
        let key = if w % 10 == 0 {
            pop[rng.below(pop.len() as u64) as usize]
        } else {
            Id(rng.next_u128())
        };
        let mut at = rng.below(pop.len() as u64) as usize;
        let mut hops = 0;
        loop {
            let t = cache[at].get_or_insert_with(|| Box::new(tables(at, &pop, 7, b)));
            match next_hop(key, &t.leaf, &t.rt, |_| true) {
                NextHop::Deliver => break,
                NextHop::Forward(h) => {
                    let here = pop[at];
                    let (p0, p1) = (
                        here.shared_prefix_len(key, b),
                        h.id.shared_prefix_len(key, b),
                    );
                    assert!(
                        p1 > p0 || key.closer_to(h.id, here),
                        "hop {here:?} -> {:?} made no progress toward {key:?}",
                        h.id
                    );
                    at = index(h.id);
                    hops += 1;
                    assert!(hops <= 12, "walk too long");
                }
            }
        }
        assert_eq!(
            pop[at],
            root(key, &pop),
            "walk {w} ended away from the root"
        );
        total_hops += hops;
    }
    let mean = total_hops as f64 / walks as f64;
    let log16 = (pop.len() as f64).log(16.0);
    assert!(mean < log16, "mean hops {mean} not below log16 N = {log16}");
}

fn population_uniform(rng: &mut Rng, n: usize) -> Vec<Id> {
    let mut ids: Vec<Id> = (0..n).map(|_| Id(rng.next_u128())).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn every_rule_makes_progress_with_sparse_tables_and_exclusions() {
    // Partial tables (random subsets) exercise the rare case and exclusions; every forward must
    // still make progress, and the walk must terminate.
    let b = DigitBits::FOUR;
    let mut rng = Rng::new(3);
    for _ in 0..200 {
        let n = 2 + rng.below(300) as usize;
        let pop = population(&mut rng, n);
        let own = rng.below(pop.len() as u64) as usize;
        let mut leaf = LeafSet::new(pop[own], 8);
        let mut rt = RoutingTable::new(pop[own], b);
        for (i, &x) in pop.iter().enumerate() {
            if rng.chance(0.3) {
                leaf.insert(handle(x, i));
            }
            if rng.chance(0.3) {
                rt.insert(handle(x, i), rng.below(1000) as u32);
            }
        }
        let banned = pop[rng.below(pop.len() as u64) as usize];
        for _ in 0..50 {
            let key = Id(rng.next_u128());
            if let NextHop::Forward(h) = next_hop(key, &leaf, &rt, |h| h.id != banned) {
                assert_ne!(h.id, banned);
                let here = pop[own];
                let (p0, p1) = (
                    here.shared_prefix_len(key, b),
                    h.id.shared_prefix_len(key, b),
                );
                assert!(p1 > p0 || key.closer_to(h.id, here));
            }
            let mut out = Vec::new();
            local_lookup(key, 5, &leaf, &rt, &mut out);
            assert!(out.len() <= 5);
            for h in &out {
                let here = pop[own];
                let (p0, p1) = (
                    here.shared_prefix_len(key, b),
                    h.id.shared_prefix_len(key, b),
                );
                assert!(
                    p1 > p0 || key.closer_to(h.id, here),
                    "local_lookup offered a regress"
                );
            }
        }
    }
}

#[test]
fn replica_set_and_range_agree_with_brute_force() {
    let mut rng = Rng::new(17);
    for round in 0..200 {
        let n = 3 + rng.below(60) as usize;
        let pop = population_uniform(&mut rng, n);
        let own_i = rng.below(pop.len() as u64) as usize;
        let own = handle(pop[own_i], own_i);
        let mut ls = LeafSet::new(own.id, 16);
        for (i, &x) in pop.iter().enumerate() {
            ls.insert(handle(x, i));
        }
        for _ in 0..40 {
            let key = own.id.wrapping_add(rng.next_u128() >> 110);
            let key = if rng.chance(0.3) {
                Id(rng.next_u128())
            } else {
                key
            };
            if !ls.covers(key) {
                continue;
            }
            let mut out = Vec::new();
            ls.replica_set(key, own, 4, &mut out);
            let mut want = pop.clone();
            want.sort_by(|a, c| {
                if a == c {
                    core::cmp::Ordering::Equal
                } else if key.closer_to(*a, *c) {
                    core::cmp::Ordering::Less
                } else {
                    core::cmp::Ordering::Greater
                }
            });
            want.truncate(4);
            if ls.is_complete() || n <= 9 {
                assert_eq!(ids(&out), want, "round {round}");
            } else {
                // Only the first few are guaranteed close enough to be in the leaf set.
                assert_eq!(out[0].id, want[0], "round {round}");
            }
            // range(): the root of the key has the key in its rank-0 range (when determinable),
            // and every node of the 4 closest has it in its rank-3 range.
            for (rank, node) in [(0usize, want[0]), (3, want[3.min(want.len() - 1)])] {
                if let Some((lo, hi)) = ls.range(node, rank) {
                    assert!(
                        Id::in_cw_arc(key, lo, hi)
                            || key.distance(lo) <= 1
                            || key.distance(hi) <= 1,
                        "round {round}: key {key:?} outside the rank-{rank} range of {node:?}"
                    );
                }
            }
        }
    }
}
