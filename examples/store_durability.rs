//! The store's durability measurement in the simulator (issue 11):
//!
//! ```text
//! cargo run --release --example store_durability -- NODES OBJECTS MEDIAN_SESSION_MIN CHURN_MIN [SEED]
//! cargo run --release --example store_durability -- 1000 10000 15 60
//! ```
//!
//! Grows the overlay, puts OBJECTS objects of 1 KiB (k = 4), checks placement against the
//! oracle, runs CHURN_MIN minutes of churn with exponential sessions of median
//! MEDIAN_SESSION_MIN minutes (half graceful leaves, half crashes) with 10 gets per second,
//! then fetches every object once and checks placement again after 3 quiet minutes.

use pastry::sim::SimConfig;
use pastry::store::StoreWorkload;
use pastry::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let mut w = StoreWorkload::new(num(0, 1000.0) as usize, num(1, 10_000.0) as usize);
    w.median_session = Some(Duration((num(2, 15.0) * 60e6) as u64));
    w.churn_for = Duration((num(3, 60.0) * 60e6) as u64);
    w.sim = SimConfig {
        seed: num(4, 1.0) as u64,
        ..SimConfig::default()
    };
    #[allow(clippy::disallowed_methods)] // wall time for the progress lines
    let wall = std::time::Instant::now();
    let r = w.run(&mut |line| eprintln!("[{:7.1}s] {line}", wall.elapsed().as_secs_f64()));
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "nodes {} objects {} k {}",
        w.nodes, w.objects, w.store.replicas
    );
    println!("puts ok: {}/{}", r.puts_ok, w.objects);
    println!("placement after puts: {:?}", r.placement_after_puts);
    println!(
        "churn: {} arrivals, {} departures; gets during churn verified: {}/{} ({:.3}%)",
        r.arrivals,
        r.departures,
        r.churn_gets_ok,
        r.churn_gets,
        pct(r.churn_gets_ok, r.churn_gets)
    );
    println!(
        "gets orphaned by their requester leaving: {}; failures by error: {:?}",
        r.churn_gets_orphaned, r.churn_get_errors
    );
    println!("placement right after churn: {:?}", r.placement_after_churn);
    println!(
        "retrievable and verified after churn: {}/{} ({:.3}%)",
        r.final_gets_ok,
        w.objects,
        pct(r.final_gets_ok, w.objects)
    );
    println!("placement after settling: {:?}", r.placement_settled);
    println!(
        "store maintenance (digests, key lists, re-replication) during churn: {:.1} B/s/node",
        r.sync_bytes_per_node_s
    );
    println!("counters: {:?}", r.stats);
    println!("live nodes at end: {}", r.live_at_end);
    println!("wall time: {:.1} s", wall.elapsed().as_secs_f64());
}
