//! The stretch the standard Pastry routing rule gives over *perfect* proximity tables: every
//! routing-table cell holds the proximity-closest node that qualifies, every leaf set is exact.
//! A bound for what better tables alone can achieve (issue 10), in the simulator's latency
//! models (`src/sim/topology.rs`: plane 0.1 ms per unit, sphere 150 ms antipode, 0.5 ms floor).
//!
//! `cargo run --release --example pns_bound -- 1000 plane` (or `sphere`); O(N²): fine to
//! 10,000 nodes. b = 4, |L| = 16, 20,000 lookups between random nodes and keys.

/// xorshift64: a fixed, seeded sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn id(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }
}

fn digit(id: u128, r: usize) -> usize {
    ((id >> (124 - 4 * r)) & 15) as usize
}

fn shared(a: u128, b: u128) -> usize {
    ((a ^ b).leading_zeros() / 4) as usize
}

fn ring_distance(a: u128, b: u128) -> u128 {
    a.wrapping_sub(b).min(b.wrapping_sub(a))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let sphere = args.get(2).is_some_and(|t| t == "sphere");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ids: Vec<u128> = (0..n).map(|_| rng.id()).collect();
    ids.sort_unstable();
    let pos: Vec<[f64; 3]> = (0..n)
        .map(|_| {
            if !sphere {
                return [rng.unit() * 1000.0, rng.unit() * 1000.0, 0.0];
            }
            loop {
                let (a, b) = (rng.unit() * 2.0 - 1.0, rng.unit() * 2.0 - 1.0);
                let s = a * a + b * b;
                if s < 1.0 {
                    let k = 2.0 * (1.0 - s).sqrt();
                    break [a * k, b * k, 1.0 - 2.0 * s];
                }
            }
        })
        .collect();
    let latency = |i: usize, j: usize| -> f64 {
        let d2: f64 = (0..3).map(|k| (pos[i][k] - pos[j][k]).powi(2)).sum();
        let us = if sphere {
            2.0 * (d2.sqrt().min(2.0) / 2.0).asin() / std::f64::consts::PI * 150_000.0
        } else {
            d2.sqrt() * 100.0
        };
        us + 500.0
    };
    const ROWS: usize = 6;
    const HALF: usize = 8;
    // Perfect tables: the closest qualifying node per cell.
    let mut table = vec![[[usize::MAX; 16]; ROWS]; n];
    for (i, row) in table.iter_mut().enumerate() {
        let mut best = [[f64::MAX; 16]; ROWS];
        for j in (0..n).filter(|&j| j != i) {
            let r = shared(ids[i], ids[j]);
            if r < ROWS {
                let (c, d) = (digit(ids[j], r), latency(i, j));
                if d < best[r][c] {
                    best[r][c] = d;
                    row[r][c] = j;
                }
            }
        }
    }
    let covers = |i: usize, key: u128| {
        let (lo, hi) = (ids[(i + n - HALF) % n], ids[(i + HALF) % n]);
        key.wrapping_sub(lo) <= hi.wrapping_sub(lo)
    };
    let closest_leaf = |i: usize, key: u128, min_prefix: usize| {
        let mut best = i;
        for k in 1..=HALF {
            for y in [(i + k) % n, (i + n - k) % n] {
                let progress = shared(ids[y], key) >= min_prefix;
                if progress && ring_distance(ids[y], key) < ring_distance(ids[best], key) {
                    best = y;
                }
            }
        }
        best
    };
    let (mut path_sum, mut direct_sum, mut lookups) = (0.0, 0.0, 0);
    for _ in 0..20_000 {
        let (src, key) = ((rng.next() % n as u64) as usize, rng.id());
        let p = ids.partition_point(|&x| x < key);
        let (a, b) = (p % n, (p + n - 1) % n);
        let root = if ring_distance(ids[a], key) < ring_distance(ids[b], key) {
            a
        } else {
            b
        };
        if root == src {
            continue;
        }
        let (mut at, mut path) = (src, 0.0);
        loop {
            let next = if covers(at, key) {
                closest_leaf(at, key, 0)
            } else {
                let l = shared(ids[at], key);
                match table[at][l][digit(key, l)] {
                    usize::MAX => closest_leaf(at, key, l),
                    e => e,
                }
            };
            if next == at {
                break;
            }
            path += latency(at, next);
            at = next;
        }
        assert_eq!(at, root, "routing ended away from the root");
        path_sum += path;
        direct_sum += latency(src, root);
        lookups += 1;
    }
    println!(
        "{n} nodes, {}: stretch (ratio of sums) {:.3} over {lookups} lookups",
        if sphere { "sphere" } else { "plane" },
        path_sum / direct_sum
    );
}
