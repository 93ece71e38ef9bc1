//! Runtime benchmarks on loopback, in one process (`cargo bench --bench runtime`):
//!
//! 1. the machine's raw UDP datagram rate (a sender and a receiver thread), measured in the same
//!    run, against the datagrams per second a 256-node overlay handles while routing at full
//!    speed (target: ≥ 50%);
//! 2. route latency p50/p99 with 256 nodes, one message in flight (target: p50 ≤ 100 µs);
//! 3. the time 1,000 nodes take to join in one process (target: ≤ 30 s);
//! 4. the CPU an idle 100-node process uses (target: ≤ 1% of a core).

// A benchmark of real sockets reads the wall clock and runs threads.
#![allow(clippy::disallowed_methods)]

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pastry::node::Node;
use pastry::runtime::{Application, Delivery, Handle, NodeConfig, RouteError, Runtime};
use pastry::{Id, Rng};

/// Deliveries counted by every node's application.
#[derive(Default)]
struct Counter {
    n: AtomicU64,
    lock: Mutex<()>,
    more: Condvar,
}

struct CountApp(Arc<Counter>);

impl Application for CountApp {
    fn deliver(&mut self, _node: &Node, _msg: Delivery) {
        self.0.n.fetch_add(1, Ordering::Release);
        self.0.more.notify_all();
    }
}

struct Overlay {
    runtimes: Vec<Runtime>,
    nodes: Vec<Handle>,
    count: Arc<Counter>,
}

/// `n` nodes over `threads` runtimes, joined 8 at a time through random active nodes.
fn grow(n: usize, threads: usize, seed: u64) -> Overlay {
    let runtimes: Vec<Runtime> = (0..threads).map(|_| Runtime::new().unwrap()).collect();
    let count = Arc::new(Counter::default());
    let mut rng = Rng::new(seed);
    let mut nodes: Vec<Handle> = Vec::new();
    while nodes.len() < n {
        let wave = (n - nodes.len()).min(if nodes.is_empty() { 1 } else { 8 });
        let mut joining = Vec::new();
        for _ in 0..wave {
            let cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap())
                .with_id(Id(rng.next_u128()))
                .with_seed(rng.next_u64() | 1);
            let i = nodes.len() + joining.len();
            let h = runtimes[i % threads]
                .add_node(cfg, CountApp(count.clone()))
                .unwrap();
            if nodes.is_empty() {
                h.start_alone().unwrap();
            } else {
                let boot = nodes[rng.below(nodes.len() as u64) as usize].addr();
                h.start_join(&[boot]).unwrap();
            }
            joining.push(h);
        }
        for h in joining {
            h.wait_joined(Duration::from_secs(60)).unwrap();
            nodes.push(h);
        }
    }
    Overlay {
        runtimes,
        nodes,
        count,
    }
}

/// Datagrams per second one receiver thread gets from one sender thread (100-byte datagrams).
fn raw_udp_rate(secs: f64) -> f64 {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dst = rx.local_addr().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let buf = [7u8; 100];
            while !stop.load(Ordering::Relaxed) {
                let _ = tx.send_to(&buf, dst);
            }
        })
    };
    let mut buf = [0u8; 2048];
    // Warm up, then count for `secs`.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        let _ = rx.recv_from(&mut buf);
    }
    let (start, mut n) = (Instant::now(), 0u64);
    while start.elapsed().as_secs_f64() < secs {
        if rx.recv_from(&mut buf).is_ok() {
            n += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    rate
}

fn datagrams_in(nodes: &[Handle]) -> u64 {
    nodes
        .iter()
        .map(|h| h.stats().unwrap().node.datagrams_in)
        .sum()
}

/// Routes at full speed (at most `window` in flight) for `secs`; returns (datagrams received
/// per second over all nodes, messages delivered per second).
fn overlay_rate(o: &Overlay, secs: f64, window: u64) -> (f64, f64) {
    let mut rng = Rng::new(99);
    let (d0, m0) = (datagrams_in(&o.nodes), o.count.n.load(Ordering::Acquire));
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let delivered = o.count.n.load(Ordering::Acquire) - m0;
        if sent - delivered >= window {
            let mut g = o.count.lock.lock();
            o.count.more.wait_for(&mut g, Duration::from_millis(10));
            continue;
        }
        let src = &o.nodes[rng.below(o.nodes.len() as u64) as usize];
        match src.route(Id(rng.next_u128()), vec![0u8; 32]) {
            Ok(_) => sent += 1,
            Err(RouteError::Overloaded) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
    let el = start.elapsed().as_secs_f64();
    let (d1, m1) = (datagrams_in(&o.nodes), o.count.n.load(Ordering::Acquire));
    ((d1 - d0) as f64 / el, (m1 - m0) as f64 / el)
}

/// One message in flight at a time: route, wait for its delivery. Sorted latencies (µs).
fn latencies(o: &Overlay, samples: usize) -> Vec<u64> {
    let mut rng = Rng::new(5);
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let before = o.count.n.load(Ordering::Acquire);
        let src = &o.nodes[rng.below(o.nodes.len() as u64) as usize];
        let t = Instant::now();
        src.route(Id(rng.next_u128()), vec![0u8; 32]).unwrap();
        let mut g = o.count.lock.lock();
        while o.count.n.load(Ordering::Acquire) == before && t.elapsed() < Duration::from_secs(2) {
            o.count.more.wait_for(&mut g, Duration::from_millis(1));
        }
        out.push(t.elapsed().as_micros() as u64);
    }
    out.sort_unstable();
    out
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// CPU time this process has used (every thread), from /proc (Linux).
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets target"
    } else {
        "MISSES target"
    }
}

/// `cargo test --all-targets` runs this binary without `--bench`: a quick smoke run then.
fn smoke() {
    let raw = raw_udp_rate(0.1);
    let o = grow(16, 1, 1);
    let (dgrams, _) = overlay_rate(&o, 0.2, 64);
    let l = latencies(&o, 50);
    println!(
        "smoke run (use `cargo bench --bench runtime` for the measurements): raw {raw:.0}/s, \
         overlay {dgrams:.0}/s, p50 {} µs",
        pct(&l, 0.5)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // a harness asking for a list: nothing to list
    }
    if !args.iter().any(|a| a == "--bench") {
        return smoke();
    }
    let raw = raw_udp_rate(1.5);
    println!("raw UDP loopback: {raw:.0} datagrams/s (1 sender + 1 receiver thread, 100 B)");
    for threads in [1, 2] {
        let o = grow(256, threads, 1);
        let (dgrams, msgs) = overlay_rate(&o, 3.0, 2048);
        let ratio = dgrams / raw;
        println!(
            "overlay, 256 nodes, {threads} runtime thread(s): {dgrams:.0} datagrams/s received \
             ({msgs:.0} messages/s delivered) = {:.0}% of raw: {}",
            ratio * 100.0,
            verdict(ratio >= 0.5)
        );
        if threads == 1 {
            let l = latencies(&o, 3000);
            let (p50, p99) = (pct(&l, 0.5), pct(&l, 0.99));
            println!(
                "route latency, 256 nodes, one in flight: p50 {p50} µs, p99 {p99} µs: {}",
                verdict(p50 <= 100)
            );
        }
        drop(o);
    }
    let t = Instant::now();
    let o = grow(1000, 2, 2);
    let join = t.elapsed().as_secs_f64();
    println!(
        "1000 nodes joined in one process (2 runtime threads): {join:.2} s: {}",
        verdict(join <= 30.0)
    );
    drop(o);
    let o = grow(100, 1, 3);
    std::thread::sleep(Duration::from_secs(2));
    let (c0, t0) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let share = (cpu_time() - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
    println!(
        "idle 100-node process: {:.3}% of a core over 10 s: {}",
        share * 100.0,
        verdict(share <= 0.01)
    );
    drop(o.runtimes);
}
