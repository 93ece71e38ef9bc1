//! The runtime on real sockets, loopback only (127.0.0.1, ephemeral ports). Every wait is bounded;
//! deadlines are generous "give up" limits, never timing assertions.

// Real-socket tests use the wall clock (give-up deadlines) and application threads.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration as StdDuration, Instant as WallClock};

use pastry::node::Node;
use pastry::runtime::{
    Application, CallError, Delivery, Handle, JoinError, NodeConfig, RouteError, Runtime,
    StartError,
};
use pastry::{Duration, Id, NodeHandle, Rng};

/// What the test applications report.
#[derive(Debug)]
enum Seen {
    Delivered {
        at: Id,
        key: Id,
        seq: u64,
    },
    Update {
        at: Id,
        peer: NodeHandle,
        joined: bool,
    },
}

struct Recorder(Sender<Seen>);

impl Application for Recorder {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let mut b = [0u8; 8];
        let n = msg.payload.len().min(8);
        b[..n].copy_from_slice(&msg.payload[..n]);
        let _ = self.0.send(Seen::Delivered {
            at: node.id(),
            key: msg.key,
            seq: u64::from_le_bytes(b),
        });
    }
    fn update(&mut self, node: &Node, peer: NodeHandle, joined: bool) {
        let _ = self.0.send(Seen::Update {
            at: node.id(),
            peer,
            joined,
        });
    }
}

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Short timers so failures are found and repaired within seconds.
fn fast_config(rng: &mut Rng) -> NodeConfig {
    let mut c = NodeConfig::new(loopback())
        .with_id(Id(rng.next_u128()))
        .with_seed(rng.next_u64() | 1)
        .with_maintenance(Duration::from_millis(500), Duration::from_secs(2));
    c.node.join_timeout = Duration::from_millis(500);
    c.node.rto_initial = Duration::from_millis(100);
    // A dead next hop is given up after ~0.7 s instead of seconds.
    c.node.max_retries = 2;
    c.node.rto_max = Duration::from_millis(400);
    c
}

struct Overlay {
    runtimes: Vec<Runtime>,
    nodes: Vec<Handle>,
    rx: Receiver<Seen>,
    tx: Sender<Seen>,
    rng: Rng,
}

impl Overlay {
    /// `per_runtime` nodes on each of `runtimes` runtimes, joined one by one through random
    /// active nodes (of any runtime).
    fn grow(
        runtimes: usize,
        per_runtime: usize,
        seed: u64,
        cfg: fn(&mut Rng) -> NodeConfig,
    ) -> Overlay {
        let (tx, rx) = mpsc::channel();
        let mut o = Overlay {
            runtimes: (0..runtimes).map(|_| Runtime::new().unwrap()).collect(),
            nodes: Vec::new(),
            rx,
            tx,
            rng: Rng::new(seed),
        };
        for i in 0..runtimes * per_runtime {
            let c = cfg(&mut o.rng);
            let h = o.runtimes[i % runtimes]
                .add_node(c, Recorder(o.tx.clone()))
                .unwrap();
            if o.nodes.is_empty() {
                h.start_alone().unwrap();
                h.wait_joined(StdDuration::from_secs(10)).unwrap();
            } else {
                let boot = o.nodes[o.rng.below(o.nodes.len() as u64) as usize].addr();
                h.join(&[boot], StdDuration::from_secs(30)).unwrap();
            }
            o.nodes.push(h);
        }
        o.settle();
        o.drain();
        o
    }

    fn ids(&self) -> BTreeSet<Id> {
        self.nodes.iter().map(Handle::id).collect()
    }

    /// Waits (bounded) until every leaf set holds what a perfect one would.
    fn settle(&self) {
        let ids = self.ids();
        let deadline = WallClock::now() + StdDuration::from_secs(30);
        loop {
            let wrong = self
                .nodes
                .iter()
                .filter(|h| {
                    let mut got: Vec<Id> =
                        h.neighbor_set(64).unwrap().iter().map(|n| n.id).collect();
                    got.sort();
                    got != expected_leaves(&ids, h.id(), 8)
                })
                .count();
            if wrong == 0 {
                return;
            }
            assert!(
                WallClock::now() < deadline,
                "{wrong} leaf sets still wrong after 30 s"
            );
            std::thread::sleep(StdDuration::from_millis(100));
        }
    }

    fn drain(&self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Routes `n` messages to random keys from random nodes on `threads` threads at once;
    /// returns how many were delivered at the oracle root (all of them must be delivered).
    fn route_and_check(&mut self, n: u64, threads: u64) -> (u64, u64) {
        let ids = self.ids();
        let mut keys: HashMap<u64, Id> = HashMap::new();
        let mut plans = Vec::new();
        for t in 0..threads {
            let mut plan = Vec::new();
            for i in 0..n / threads {
                let seq = t * 1_000_000 + i;
                let key = Id(self.rng.next_u128());
                let src = self.nodes[self.rng.below(self.nodes.len() as u64) as usize].clone();
                keys.insert(seq, key);
                plan.push((seq, key, src));
            }
            plans.push(plan);
        }
        let total = keys.len() as u64;
        let senders: Vec<_> = plans
            .into_iter()
            .map(|plan| {
                std::thread::spawn(move || {
                    for (seq, key, src) in plan {
                        let mut tries = 0;
                        while let Err(RouteError::Overloaded) =
                            src.route(key, seq.to_le_bytes().to_vec())
                        {
                            tries += 1;
                            assert!(tries < 10_000, "queue stays full");
                            std::thread::sleep(StdDuration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        let (mut delivered, mut correct) = (0, 0);
        let mut seen = BTreeSet::new();
        let deadline = WallClock::now() + StdDuration::from_secs(30);
        while delivered < total && WallClock::now() < deadline {
            let Ok(Seen::Delivered { at, key, seq }) =
                self.rx.recv_timeout(StdDuration::from_millis(200))
            else {
                continue;
            };
            let Some(&k) = keys.get(&seq) else { continue };
            assert_eq!(k, key);
            if seen.insert(seq) {
                delivered += 1;
                correct += u64::from(oracle_root(&ids, key) == at);
            }
        }
        (delivered, correct)
    }
}

/// The numerically closest id to `key` (ties to the smaller id).
fn oracle_root(ids: &BTreeSet<Id>, key: Id) -> Id {
    *ids.iter()
        .min_by(|a, b| {
            if key.closer_to(**a, **b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
        .unwrap()
}

/// The ids a perfect leaf set of `own` holds: `half` nearest each way, sorted.
fn expected_leaves(ids: &BTreeSet<Id>, own: Id, half: usize) -> Vec<Id> {
    let others: Vec<Id> = ids.iter().copied().filter(|&i| i != own).collect();
    let n = others.len().min(half);
    let cw = ids
        .range(own..)
        .chain(ids.iter())
        .filter(|&&i| i != own)
        .take(n);
    let ccw = ids
        .range(..own)
        .rev()
        .chain(ids.iter().rev())
        .filter(|&&i| i != own)
        .take(n);
    let mut all: Vec<Id> = cw.chain(ccw).copied().collect();
    all.sort();
    all.dedup();
    all
}

#[test]
fn hundred_nodes_in_one_runtime_deliver_at_the_root_from_four_threads() {
    let mut o = Overlay::grow(1, 100, 1, fast_config);
    let (delivered, correct) = o.route_and_check(2000, 4);
    assert_eq!((delivered, correct), (2000, 2000));
    let panics: u64 = o
        .nodes
        .iter()
        .map(|h| h.stats().unwrap().upcall_panics)
        .sum();
    assert_eq!(panics, 0);
}

#[test]
fn three_runtimes_on_separate_threads_form_one_overlay() {
    let mut o = Overlay::grow(3, 20, 2, fast_config);
    assert_eq!(o.runtimes.len(), 3);
    let (delivered, correct) = o.route_and_check(900, 3);
    assert_eq!((delivered, correct), (900, 900));
}

#[test]
fn crashed_nodes_are_repaired_and_delivery_resumes_at_the_root() {
    let mut o = Overlay::grow(1, 40, 3, fast_config);
    // Crash 10%: they vanish without a word.
    for _ in 0..4 {
        let i = o.rng.below(o.nodes.len() as u64) as usize;
        let victim = o.nodes.swap_remove(i);
        victim.crash();
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds <= 30, "delivery at the oracle root did not resume");
        std::thread::sleep(StdDuration::from_millis(500));
        o.drain();
        let t = WallClock::now();
        let (delivered, correct) = o.route_and_check(100, 1);
        println!(
            "repair round {rounds}: {delivered} delivered, {correct} at the root ({:?})",
            t.elapsed()
        );
        if (delivered, correct) == (100, 100) {
            break;
        }
    }
    o.settle();
    let (delivered, correct) = o.route_and_check(400, 2);
    assert_eq!((delivered, correct), (400, 400));
}

fn slow_probes(rng: &mut Rng) -> NodeConfig {
    let mut c = fast_config(rng);
    c.node.leaf_probe_period = Duration::from_secs(600);
    c.node.rt_maintenance_period = Duration::from_secs(600);
    c
}

#[test]
fn graceful_leave_updates_the_neighbours_at_once() {
    // Probes every 10 minutes: only the Leave message can tell the neighbours in time.
    let o = Overlay::grow(1, 20, 4, slow_probes);
    let leaver = o.nodes[7].clone();
    let mut expect: BTreeSet<Id> = o
        .nodes
        .iter()
        .filter(|h| h.id() != leaver.id())
        .filter(|h| {
            h.neighbor_set(64)
                .unwrap()
                .iter()
                .any(|n| n.id == leaver.id())
        })
        .map(Handle::id)
        .collect();
    assert!(!expect.is_empty());
    leaver.leave(StdDuration::from_secs(10)).unwrap();
    assert_eq!(leaver.route(Id(1), vec![1]), Err(RouteError::Stopped));
    let deadline = WallClock::now() + StdDuration::from_secs(10);
    while !expect.is_empty() {
        assert!(
            WallClock::now() < deadline,
            "{} neighbours never heard",
            expect.len()
        );
        if let Ok(Seen::Update {
            at,
            peer,
            joined: false,
        }) = o.rx.recv_timeout(StdDuration::from_millis(100))
        {
            if peer.id == leaver.id() {
                expect.remove(&at);
            }
        }
    }
}

#[test]
fn typed_errors_name_what_is_wrong() {
    let rt = Runtime::new().unwrap();
    let mut rng = Rng::new(5);
    // Payload over the limit.
    let a = rt
        .add_node(fast_config(&mut rng).with_max_payload(100), ())
        .unwrap();
    a.start_alone().unwrap();
    a.wait_joined(StdDuration::from_secs(5)).unwrap();
    let e = a.route(Id(9), vec![0u8; 101]).unwrap_err();
    assert_eq!(e, RouteError::PayloadTooLarge { len: 101, max: 100 });
    assert!(
        e.to_string().contains("101 bytes exceeds the limit of 100"),
        "{e}"
    );
    // Not joined yet.
    let idle = rt.add_node(fast_config(&mut rng), ()).unwrap();
    assert_eq!(idle.route(Id(9), vec![1]), Err(RouteError::NotActive));
    // A bootstrap that never answers (a bound socket that nobody reads).
    let silent = std::net::UdpSocket::bind(loopback()).unwrap();
    let mut c = fast_config(&mut rng);
    c.node.join_timeout = Duration::from_millis(100);
    c.node.join_attempts = 3;
    let b = rt.add_node(c, ()).unwrap();
    let e = b
        .join(&[silent.local_addr().unwrap()], StdDuration::from_secs(30))
        .unwrap_err();
    assert!(
        matches!(e, JoinError::NoBootstrapAnswered { attempts: 3, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("no bootstrap node answered"), "{msg}");
    assert!(
        msg.contains(&silent.local_addr().unwrap().to_string()),
        "{msg}"
    );
    assert_eq!(
        b.join(&[], StdDuration::from_secs(1)),
        Err(JoinError::NoBootstrap)
    );
    // A busy port.
    let busy = a.addr();
    let e = rt.add_node(NodeConfig::new(busy), ()).unwrap_err();
    assert!(
        matches!(&e, StartError::Bind { addr, .. } if *addr == busy),
        "{e:?}"
    );
    assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AddrInUse));
    assert!(e.to_string().contains(&busy.to_string()), "{e}");
    assert!(e.to_string().contains("already in use"), "{e}");
    // An invalid configuration.
    let e = rt
        .add_node(NodeConfig::new(loopback()).with_leaf_set_size(7), ())
        .unwrap_err();
    assert!(matches!(e, StartError::Config(_)), "{e:?}");
    rt.shutdown();
    assert_eq!(a.route(Id(9), vec![1]), Err(RouteError::Stopped));
    assert_eq!(a.stats().unwrap_err(), CallError::Stopped);
}

/// Routes "pong" back from inside `deliver`, panics on "boom", and tries a blocking call.
struct Echo {
    me: Arc<OnceLock<Handle>>,
    tx: Sender<(Vec<u8>, Option<CallError>)>,
}

impl Application for Echo {
    fn deliver(&mut self, _node: &Node, msg: Delivery) {
        let h = self.me.get().expect("handle set before any message");
        match &msg.payload[..] {
            b"boom" => panic!("upcall panic (expected by the test)"),
            b"ping" => {
                h.route(msg.source.id, &b"pong"[..]).unwrap();
                let blocked = h.stats().err();
                let _ = self.tx.send((b"ping".to_vec(), blocked));
            }
            other => {
                let _ = self.tx.send((other.to_vec(), None));
            }
        }
    }
}

#[test]
fn upcalls_may_route_and_a_panicking_upcall_is_caught() {
    let rt = Runtime::new().unwrap();
    let mut rng = Rng::new(6);
    let (tx, rx) = mpsc::channel();
    let mut handles: Vec<Handle> = Vec::new();
    for i in 0..2 {
        let me = Arc::new(OnceLock::new());
        let h = rt
            .add_node(
                fast_config(&mut rng),
                Echo {
                    me: me.clone(),
                    tx: tx.clone(),
                },
            )
            .unwrap();
        me.set(h.clone()).unwrap();
        if i == 0 {
            h.start_alone().unwrap();
            h.wait_joined(StdDuration::from_secs(5)).unwrap();
        } else {
            h.join(&[handles[0].addr()], StdDuration::from_secs(10))
                .unwrap();
        }
        handles.push(h);
    }
    let (a, b) = (&handles[0], &handles[1]);
    b.route(a.id(), &b"boom"[..]).unwrap();
    b.route(a.id(), &b"ping"[..]).unwrap();
    let (got, blocked) = rx.recv_timeout(StdDuration::from_secs(10)).unwrap();
    assert_eq!(got, b"ping");
    assert_eq!(blocked, Some(CallError::OnLoopThread));
    let (got, _) = rx.recv_timeout(StdDuration::from_secs(10)).unwrap();
    assert_eq!(got, b"pong");
    assert_eq!(a.stats().unwrap().upcall_panics, 1);
    // Still serving.
    b.route(a.id(), &b"after"[..]).unwrap();
    assert_eq!(
        rx.recv_timeout(StdDuration::from_secs(10)).unwrap().0,
        b"after"
    );
}
