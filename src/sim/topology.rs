//! Proximity models: each node gets coordinates, each pair a one-way latency.
//!
//! As in the Pastry paper's emulation: points uniform in a Euclidean plane, or on a sphere.

use crate::rng::Rng;
use crate::time::Duration;

/// Which space nodes live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// A 1000 × 1000 square; one unit of distance is 0.1 ms one way (corner to corner ≈ 141 ms).
    Plane,
    /// A sphere; the antipode is 150 ms one way.
    Sphere,
    /// One host's loopback: every pair 10 µs one way (no proximity to exploit). With
    /// [`Faults::jitter`](super::Faults) of about 200 µs this has the timing of many nodes in one
    /// process on real sockets, where datagrams overtake each other and joins race.
    Loopback,
}

/// One-way latency of [`Topology::Loopback`], µs.
pub(crate) const LOOPBACK_US: u64 = 10;

/// A node's position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point([f64; 3]);

impl Point {
    /// The point `(x, y)` of the plane ([`Topology::Plane`]: 0..1000 each way, one unit is
    /// 0.1 ms one way), for scripted topologies.
    pub fn plane(x: f64, y: f64) -> Point {
        Point([x, y, 0.0])
    }
}

/// One-way latency floor (local processing, last mile).
const FLOOR_US: f64 = 500.0;

impl Topology {
    /// A random position.
    pub fn place(self, rng: &mut Rng) -> Point {
        match self {
            Topology::Plane | Topology::Loopback => {
                Point([rng.unit_f64() * 1000.0, rng.unit_f64() * 1000.0, 0.0])
            }
            Topology::Sphere => {
                // Uniform on the unit sphere (Marsaglia).
                loop {
                    let (a, b) = (rng.unit_f64() * 2.0 - 1.0, rng.unit_f64() * 2.0 - 1.0);
                    let s = a * a + b * b;
                    if s < 1.0 {
                        let k = 2.0 * (1.0 - s).sqrt();
                        return Point([a * k, b * k, 1.0 - 2.0 * s]);
                    }
                }
            }
        }
    }

    /// One-way latency between two positions.
    pub fn latency(self, p: Point, q: Point) -> Duration {
        if self == Topology::Loopback {
            return Duration(LOOPBACK_US);
        }
        let d2: f64 = (0..3).map(|i| (p.0[i] - q.0[i]).powi(2)).sum();
        let us = match self {
            Topology::Plane => d2.sqrt() * 100.0,
            Topology::Sphere => {
                let chord = d2.sqrt().min(2.0);
                let angle = 2.0 * (chord / 2.0).asin();
                angle / core::f64::consts::PI * 150_000.0
            }
            Topology::Loopback => 0.0,
        };
        Duration((us + FLOOR_US) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_symmetric_and_bounded() {
        let mut r = Rng::new(1);
        for t in [Topology::Plane, Topology::Sphere] {
            for _ in 0..1000 {
                let (p, q) = (t.place(&mut r), t.place(&mut r));
                let (a, b) = (t.latency(p, q), t.latency(q, p));
                assert_eq!(a, b);
                assert!(a.as_micros() >= 500 && a.as_micros() <= 151_000, "{a:?}");
                assert_eq!(t.latency(p, p), Duration(500));
            }
        }
    }
}
