//! The replicated store (issue 11) against the simulator's oracle: placement after joins,
//! leaves and crashes, corrupted replicas, quotas, named objects, large objects, and a disk
//! store that survives being killed in the middle of its puts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use bytes::Bytes;
use pastry::node::{Config, Node};
use pastry::sim::{NodeIdx, Sim, SimConfig};
use pastry::store::{
    content_key, name_key, Backend, DiskBackend, OpId, Outcome, Placement, Store, StoreConfig,
    StoreError, StoreSim,
};
use pastry::{Duration, Id, Instant, Rng};

fn overlay(n: usize, seed: u64, cfg: StoreConfig) -> StoreSim {
    let sim = Sim::new(SimConfig {
        seed,
        ..SimConfig::default()
    });
    let mut s = StoreSim::new(sim, cfg);
    s.grow(n, Duration::from_millis(200));
    s.run_for(Duration::from_secs(10));
    s
}

fn value(i: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(i);
    (0..len).map(|_| rng.below(256) as u8).collect()
}

/// An operation: the node it runs at and its id there.
type Op = (NodeIdx, OpId);

/// Runs until every operation in `ops` has an outcome (or `limit` passes); their outcomes.
fn wait(s: &mut StoreSim, ops: &[Op], limit: Duration) -> BTreeMap<Op, Outcome> {
    let mut got = BTreeMap::new();
    let end = s.sim.now() + limit;
    while s.sim.now() < end && ops.iter().any(|o| !got.contains_key(o)) {
        s.run_for(Duration::from_millis(100));
        for (i, op, out) in s.take_outcomes() {
            got.insert((i, op), out);
        }
    }
    got
}

fn random_active(s: &mut StoreSim) -> NodeIdx {
    s.sim.random_active().expect("an active node")
}

/// Puts `n` objects of `len` bytes from random nodes; their keys (every put must succeed).
fn put_many(s: &mut StoreSim, n: u64, len: usize) -> Vec<(Id, Vec<u8>)> {
    let mut ops = Vec::new();
    let mut objs = Vec::new();
    for i in 0..n {
        let v = value(i, len);
        let at = random_active(s);
        let (op, key) = s.put(at, v.clone()).unwrap();
        assert_eq!(key, content_key(&v));
        ops.push((at, op));
        objs.push((key, v));
    }
    let got = wait(s, &ops, Duration::from_secs(60));
    for (op, (key, _)) in ops.iter().zip(&objs) {
        assert_eq!(got.get(op), Some(&Outcome::Put(Ok(*key))), "put {op:?}");
    }
    objs
}

/// Gets every object from a random node; how many came back verified and equal.
fn get_all(s: &mut StoreSim, objs: &[(Id, Vec<u8>)]) -> (usize, BTreeMap<Op, Outcome>) {
    let mut ops = Vec::new();
    for (key, _) in objs {
        let at = random_active(s);
        ops.push((at, s.get(at, *key).unwrap()));
    }
    let got = wait(s, &ops, Duration::from_secs(60));
    let ok = ops
        .iter()
        .zip(objs)
        .filter(|(op, (_, v))| got.get(op) == Some(&Outcome::Get(Ok(Bytes::from(v.clone())))))
        .count();
    (ok, got)
}

fn keys(objs: &[(Id, Vec<u8>)]) -> Vec<Id> {
    objs.iter().map(|(k, _)| *k).collect()
}

#[test]
fn puts_land_on_exactly_the_k_oracle_replicas_and_gets_return_them() {
    let mut s = overlay(30, 1, StoreConfig::default());
    let objs = put_many(&mut s, 60, 500);
    s.run_for(Duration::from_secs(5));
    let p = s.placement(&keys(&objs));
    assert_eq!(
        p,
        Placement {
            objects: 60,
            ..Placement::default()
        }
    );
    let (ok, _) = get_all(&mut s, &objs);
    assert_eq!(ok, objs.len());
    let st = s.stats_sum();
    assert!(st.gets_served >= objs.len() as u64);
    assert_eq!(st.bad_replicas, 0);
}

#[test]
fn placement_is_restored_after_joins_leaves_and_crashes() {
    let mut s = overlay(40, 2, StoreConfig::default());
    let objs = put_many(&mut s, 150, 200);
    s.run_for(Duration::from_secs(5));
    assert_eq!(s.placement(&keys(&objs)).misplaced, 0);
    // Eight joins, four graceful leaves, four crashes, interleaved.
    for round in 0..4 {
        s.grow(2, Duration::from_millis(500));
        let v = random_active(&mut s);
        s.sim.leave(v);
        let c = random_active(&mut s);
        s.sim.crash(c);
        s.run_for(Duration::from_secs(2 + round));
    }
    // Failure detection (leaf probes every 20 s, a few retries) plus one digest round.
    let mut settled = None;
    for t in 0..24 {
        s.run_for(Duration::from_secs(10));
        let p = s.placement(&keys(&objs));
        if p.misplaced == 0 {
            settled = Some((t + 1) * 10);
            break;
        }
    }
    let p = s.placement(&keys(&objs));
    eprintln!("placement after churn: {p:?}, settled after {settled:?} s");
    assert_eq!(p.lost, 0, "{p:?}");
    assert_eq!(p.misplaced, 0, "{p:?}");
    let (ok, _) = get_all(&mut s, &objs);
    assert_eq!(ok, objs.len());
    assert!(s.stats_sum().handed_off > 0, "joiners took keys over");
}

#[test]
fn a_corrupted_replica_is_ignored_and_counted() {
    let mut s = overlay(20, 3, StoreConfig::default());
    let objs = put_many(&mut s, 1, 1000);
    let key = objs[0].0;
    s.run_for(Duration::from_secs(2));
    let holders: Vec<NodeIdx> = s
        .sim
        .live()
        .filter(|&i| s.store(i).is_some_and(|st| st.holds(key)))
        .collect();
    assert_eq!(holders.len(), 4);
    // Every holder but one returns garbage (with the right length).
    let mut bad = objs[0].1.clone();
    bad[10] ^= 0xff;
    let mut rec = vec![0u8];
    rec.extend_from_slice(&bad);
    for &h in &holders[1..] {
        assert!(s.store(h).unwrap().tamper(key, Bytes::from(rec.clone())));
    }
    let others: Vec<NodeIdx> = s.sim.live().filter(|i| !holders.contains(i)).collect();
    let ops: Vec<Op> = others
        .iter()
        .map(|&i| (i, s.get(i, key).unwrap()))
        .collect();
    let got = wait(&mut s, &ops, Duration::from_secs(60));
    for op in &ops {
        assert_eq!(got[op], Outcome::Get(Ok(Bytes::from(objs[0].1.clone()))));
    }
    assert!(s.stats_sum().bad_replicas > 0, "some get met a bad replica");
    // With every copy corrupt, a get fails as Corrupt instead of returning bad bytes.
    s.store(holders[0])
        .unwrap()
        .tamper(key, Bytes::from(rec.clone()));
    let op = (others[0], s.get(others[0], key).unwrap());
    let got = wait(&mut s, &[op], Duration::from_secs(60));
    assert_eq!(got[&op], Outcome::Get(Err(StoreError::Corrupt)));
}

#[test]
fn quotas_refuse_with_store_full_and_are_never_exceeded() {
    let cfg = StoreConfig {
        replicas: 2,
        max_objects: 5,
        max_bytes: 20_000,
        ..StoreConfig::default()
    };
    let mut s = overlay(10, 4, cfg);
    let mut ops = Vec::new();
    for i in 0..60 {
        let at = random_active(&mut s);
        ops.push((at, s.put(at, value(i, 100)).unwrap().0));
    }
    let got = wait(&mut s, &ops, Duration::from_secs(60));
    let full = got
        .values()
        .filter(|o| **o == Outcome::Put(Err(StoreError::StoreFull)))
        .count();
    let ok = got
        .values()
        .filter(|o| matches!(o, Outcome::Put(Ok(_))))
        .count();
    eprintln!("quota: {ok} stored, {full} refused");
    assert_eq!(ok + full, 60);
    assert!(full > 0 && ok > 0);
    for i in s.sim.live().collect::<Vec<_>>() {
        let st = s.store(i).unwrap();
        assert!(st.len() <= 5 && st.bytes() <= 20_000);
    }
    // An object larger than a node's byte quota.
    let at = random_active(&mut s);
    let op = (at, s.put(at, value(99, 15_000)).unwrap().0);
    let op2 = (at, s.put(at, value(98, 15_000)).unwrap().0);
    let got = wait(&mut s, &[op, op2], Duration::from_secs(60));
    assert!(got
        .values()
        .any(|o| *o == Outcome::Put(Err(StoreError::StoreFull))));
}

#[test]
fn a_name_keeps_its_first_value() {
    let mut s = overlay(12, 5, StoreConfig::default());
    let a = random_active(&mut s);
    let b = random_active(&mut s);
    let (op1, key) = s.put_named(a, b"config", b"v1").unwrap();
    let op1 = (a, op1);
    assert_eq!(key, name_key(b"config"));
    let got = wait(&mut s, &[op1], Duration::from_secs(30));
    assert_eq!(got[&op1], Outcome::Put(Ok(key)));
    let op2 = (b, s.put_named(b, b"config", b"v2").unwrap().0);
    let op3 = (b, s.put_named(b, b"config", b"v1").unwrap().0);
    let got = wait(&mut s, &[op2, op3], Duration::from_secs(30));
    assert_eq!(got[&op2], Outcome::Put(Err(StoreError::Conflict)));
    assert_eq!(got[&op3], Outcome::Put(Ok(key)));
    let op4 = (b, s.get(b, key).unwrap());
    let got = wait(&mut s, &[op4], Duration::from_secs(30));
    assert_eq!(got[&op4], Outcome::Get(Ok(Bytes::from_static(b"v1"))));
}

#[test]
fn large_objects_round_trip_in_chunks() {
    let mut s = overlay(16, 6, StoreConfig::default());
    let v = value(7, 300_000); // ~19 chunks of one 16 KiB payload each
    let a = random_active(&mut s);
    let (op, key) = s.put(a, v.clone()).unwrap();
    let op = (a, op);
    assert_ne!(key, content_key(&v), "the key is the manifest's");
    let got = wait(&mut s, &[op], Duration::from_secs(60));
    assert_eq!(got[&op], Outcome::Put(Ok(key)));
    let objects: usize = s
        .sim
        .live()
        .map(|i| s.store(i).unwrap().len())
        .sum::<usize>();
    assert!(
        objects >= 4 * 20,
        "chunks and manifest replicated: {objects}"
    );
    let b = random_active(&mut s);
    let op = (b, s.get(b, key).unwrap());
    let got = wait(&mut s, &[op], Duration::from_secs(60));
    assert_eq!(got[&op], Outcome::Get(Ok(Bytes::from(v))));
    assert_eq!(s.store(b).unwrap().ops_in_flight(), 0);
    // Too large for the store at all.
    let huge = vec![0u8; pastry::store::MAX_VALUE + 1];
    assert_eq!(s.put(b, huge).unwrap_err(), StoreError::TooLarge);
}

#[test]
fn a_missing_key_is_not_found_and_a_silent_overlay_times_out() {
    let cfg = StoreConfig {
        op_timeout: Duration::from_secs(5),
        ..StoreConfig::default()
    };
    let mut s = overlay(10, 7, cfg);
    let a = random_active(&mut s);
    let op = (a, s.get(a, Id(12345)).unwrap());
    let got = wait(&mut s, &[op], Duration::from_secs(30));
    assert_eq!(got[&op], Outcome::Get(Err(StoreError::NotFound)));
    // Every other node crashes: the get cannot reach anyone and ends by timeout.
    let others: Vec<NodeIdx> = s.sim.live().filter(|&i| i != a).collect();
    let key = Id(u128::MAX / 3);
    let op = (a, s.get(a, key).unwrap());
    for i in others {
        s.sim.crash(i);
    }
    let got = wait(&mut s, &[op], Duration::from_secs(30));
    assert!(
        matches!(
            got[&op],
            Outcome::Get(Err(StoreError::Timeout | StoreError::NotFound))
        ),
        "{:?}",
        got[&op]
    );
}

#[test]
fn same_seed_same_store_run() {
    let run = || {
        let mut s = overlay(12, 8, StoreConfig::default());
        put_many(&mut s, 10, 300);
        (s.sim.trace_digest(), s.stats_sum())
    };
    assert_eq!(run(), run());
}

// ----- persistence: a child process killed in the middle of its puts -----

/// Drives a one-node overlay with a disk store until `stop` says so.
fn drive_one(store: &mut Store, node: &mut Node, now: Instant) -> Vec<(OpId, Outcome)> {
    let mut out = Vec::new();
    for _ in 0..4 {
        store.flush(now, node);
        while let Some(ev) = node.poll_event() {
            store.handle_event(now, node, &ev);
        }
        let mut buf = Vec::new();
        while node.poll_transmit(&mut buf).is_some() {}
        while let Some(r) = store.poll_outcome() {
            out.push(r);
        }
    }
    out
}

fn one_node() -> Node {
    let mut node = Node::new(Config::default(), "127.0.0.1:1".parse().unwrap()).unwrap();
    node.start_alone(Instant::ZERO);
    node
}

const DIR_VAR: &str = "PASTRY_STORE_TEST_DIR";

/// Not a test: the child process of `a_disk_store_killed_mid_put_loses_nothing`. It puts
/// objects into a disk store as fast as it can and prints `PUT <key>` after each put returned.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // the child learns its directory from its parent
fn child_disk_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let mut store = Store::with_backend(
        StoreConfig::default(),
        Box::new(DiskBackend::open(&dir).unwrap()),
    );
    let mut node = one_node();
    for i in 0..20_000u64 {
        let now = Instant(i);
        let (op, key) = store.put(now, &node, value(i, 8_000)).unwrap();
        let out = drive_one(&mut store, &mut node, now);
        assert_eq!(out, vec![(op, Outcome::Put(Ok(key)))]);
        println!("PUT {key}");
    }
}

#[test]
#[allow(clippy::disallowed_methods)] // a reader thread for the child's pipe
fn a_disk_store_killed_mid_put_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("pastry-store-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_disk_writer", "--ignored", "--nocapture"])
        .env(DIR_VAR, &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read acknowledgements on another thread, so the child never waits on its pipe: the kill
    // lands while it is writing (fsync dominates its time), not while it is blocked.
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.strip_prefix("PUT ") {
                let _ = tx.send(k.parse::<Id>().unwrap());
            }
        }
    });
    for _ in 0..300 {
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("the writer acknowledges puts");
    }
    child.kill().unwrap(); // SIGKILL, in the middle of some later put
    child.wait().unwrap();
    reader.join().unwrap();
    // Puts are acknowledged in order: objects 0..n.
    let n = 300 + core::iter::from_fn(|| rx.try_recv().ok()).count() as u64;
    let acked: Vec<Id> = (0..n).map(|i| content_key(&value(i, 8_000))).collect();
    let disk = DiskBackend::open(&dir).unwrap();
    eprintln!(
        "killed after {n} acknowledged puts: {} temp files removed, {} corrupt records removed",
        disk.removed_temp, disk.removed_corrupt
    );
    assert_eq!(disk.removed_corrupt, 0);
    // Every acknowledged put is there and verifies (reopening removes anything that does not).
    let on_disk: Vec<Id> = disk.scan().into_iter().map(|(k, _)| k).collect();
    for k in &acked {
        assert!(on_disk.contains(k), "{k} lost");
    }
    // And a store over the directory serves them again.
    let mut store = Store::with_backend(StoreConfig::default(), Box::new(disk));
    let mut node = one_node();
    for (i, k) in acked.iter().enumerate().take(50) {
        let now = Instant(1_000_000 + i as u64);
        let op = store.get(now, &node, *k).unwrap();
        let out = drive_one(&mut store, &mut node, now);
        assert_eq!(
            out,
            vec![(op, Outcome::Get(Ok(Bytes::from(value(i as u64, 8_000)))))]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reopening_a_disk_store_removes_torn_writes_and_corrupt_records() {
    let dir = std::env::temp_dir().join(format!("pastry-store-torn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut disk = DiskBackend::open(&dir).unwrap();
    let (good, bad) = (value(1, 100), value(2, 100));
    let mut rec = vec![0u8];
    rec.extend_from_slice(&good);
    disk.save(content_key(&good), &Bytes::from(rec.clone()))
        .unwrap();
    rec[5] ^= 1; // stored under the key of `bad`, but not its content: corrupt
    std::fs::write(dir.join(content_key(&bad).to_hex()), &rec).unwrap();
    std::fs::write(dir.join(".tmp-torn-1"), b"half a rec").unwrap();
    let disk = DiskBackend::open(&dir).unwrap();
    assert_eq!((disk.removed_temp, disk.removed_corrupt), (1, 1));
    let keys: Vec<Id> = disk.scan().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![content_key(&good)]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_store_workload_keeps_every_object_through_churn() {
    // 80 nodes, 800 objects, 5 minutes of churn at a 2-minute median session (about as many
    // departures as nodes), gets throughout.
    let mut w = pastry::store::StoreWorkload::new(80, 800);
    w.median_session = Some(Duration::from_secs(120));
    w.churn_for = Duration::from_secs(300);
    w.sim.seed = 11;
    let r = w.run(&mut |_| {});
    eprintln!("{r:?}");
    assert_eq!(r.puts_ok, 800);
    assert_eq!(r.placement_after_puts.misplaced, 0);
    assert!(r.departures > 50, "churn happened: {}", r.departures);
    assert_eq!(
        r.final_gets_ok, 800,
        "every object retrievable and verified"
    );
    assert_eq!(r.placement_settled.lost, 0);
    assert_eq!(
        r.placement_settled.misplaced, 0,
        "{:?}",
        r.placement_settled
    );
    assert!(
        r.churn_gets_ok * 1000 >= r.churn_gets * 999,
        "{}/{}",
        r.churn_gets_ok,
        r.churn_gets
    );
}
