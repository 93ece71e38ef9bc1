//! The C ABI driven from Rust, as a C program would use it: helpers, error paths, a
//! caller-driven overlay on a virtual clock, and a runtime overlay on loopback with upcalls.
//! (The C, C++, sanitizer, valgrind and Python tests run the same scenarios from `.ci/test`.)
// Calling the C ABI means calling `unsafe extern "C"` functions with raw pointers: every call
// site states why its pointers are valid.
#![allow(unsafe_code)]
#![allow(clippy::undocumented_unsafe_blocks)]

use core::ffi::{c_char, c_void, CStr};
use core::ptr::{null, null_mut};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pastry::ffi::callbacks::*;
use pastry::ffi::config::*;
use pastry::ffi::driven::*;
use pastry::ffi::error::pastry_result::{self, *};
use pastry::ffi::error::pastry_result_str;
use pastry::ffi::id::*;
use pastry::ffi::node::*;
use pastry::ffi::query::*;
use pastry::ffi::runtime::*;
use pastry::Id;

fn hex(id: &pastry_id) -> String {
    let mut buf = [0 as c_char; PASTRY_ID_HEX_BUF];
    // SAFETY: `id` and `buf` are live locals; the capacity is the buffer's.
    assert_eq!(
        unsafe { pastry_id_to_hex(id, buf.as_mut_ptr(), buf.len()) },
        PASTRY_OK
    );
    // SAFETY: the call wrote a NUL-terminated string into `buf`.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string()
}

fn id_of(hex: &CStr) -> pastry_id {
    let mut id = pastry_id::default();
    // SAFETY: a valid C string and out-pointer.
    assert_eq!(
        unsafe { pastry_id_from_hex(hex.as_ptr(), &mut id) },
        PASTRY_OK
    );
    id
}

/// The numerically closest of `ids` to `key` (ties: the smaller id): the key's root.
fn oracle(key: Id, ids: &[Id]) -> Id {
    *ids.iter()
        .min_by(|a, b| {
            key.distance(**a)
                .cmp(&key.distance(**b))
                .then(a.0.cmp(&b.0))
        })
        .unwrap()
}

#[test]
fn helpers_and_error_paths() {
    // SAFETY: every pointer below is NULL on purpose or a live local.
    unsafe {
        let id = id_of(c"0x000102030405060708090a0b0c0d0e0F");
        assert_eq!(id.bytes[1], 1);
        assert_eq!(hex(&id), "000102030405060708090a0b0c0d0e0f");
        let mut out = pastry_id::default();
        assert_eq!(
            pastry_id_from_hex(c"xyz".as_ptr(), &mut out),
            PASTRY_ERR_BAD_HEX
        );
        assert_eq!(
            pastry_id_from_hex(null(), &mut out),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(out, pastry_id::default(), "nothing written on error");
        let mut small = [0 as c_char; 8];
        assert_eq!(
            pastry_id_to_hex(&id, small.as_mut_ptr(), small.len()),
            PASTRY_ERR_BUFFER_TOO_SMALL
        );
        let mut a = pastry_addr::default();
        assert_eq!(pastry_addr_parse(c"[::1]:7".as_ptr(), &mut a), PASTRY_OK);
        assert_eq!((a.family, a.port, a.ip[15]), (PASTRY_AF_INET6, 7, 1));
        assert_eq!(
            pastry_addr_parse(c"host:1".as_ptr(), &mut a),
            PASTRY_ERR_BAD_ADDRESS
        );
        for code in 0..30 {
            assert!(!CStr::from_ptr(pastry_result_str(code))
                .to_bytes()
                .is_empty());
        }
        assert_eq!(pastry_node_free(null_mut()), PASTRY_OK);
        assert_eq!(pastry_runtime_free(null_mut()), PASTRY_OK);
        assert_eq!(pastry_node_start(null_mut()), PASTRY_ERR_NULL_ARGUMENT);
        assert_eq!(
            pastry_route(null_mut(), &id, null(), 0, null()),
            PASTRY_ERR_NULL_ARGUMENT
        );
    }
}

/// Three caller-driven nodes exchanging datagrams in memory on a virtual clock.
struct Sim {
    nodes: Vec<*mut pastry_node>,
    addrs: Vec<pastry_addr>,
    now: u64,
    delivered: Vec<(usize, pastry_id, Vec<u8>)>,
    joined: Vec<bool>,
}

impl Sim {
    fn new(ids: &[&CStr], forward: Option<pastry_callbacks>) -> Sim {
        let mut sim = Sim {
            nodes: Vec::new(),
            addrs: Vec::new(),
            now: 0,
            delivered: Vec::new(),
            joined: vec![false; ids.len()],
        };
        for (i, h) in ids.iter().enumerate() {
            let id = id_of(h);
            let mut cfg = null_mut();
            let mut node = null_mut();
            let bind = std::ffi::CString::new(format!("127.0.0.1:{}", 41000 + i)).unwrap();
            // SAFETY: live locals; the config is freed below, the node in `Drop`.
            unsafe {
                assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
                assert_eq!(pastry_config_set_id(cfg, &id), PASTRY_OK);
                assert_eq!(pastry_config_set_bind(cfg, bind.as_ptr()), PASTRY_OK);
                assert_eq!(pastry_config_set_seed(cfg, 7 + i as u64), PASTRY_OK);
                let cb = forward.as_ref().map_or(null(), |c| c as *const _);
                assert_eq!(pastry_node_new_driven(cfg, cb, &mut node), PASTRY_OK);
                pastry_config_free(cfg);
                let mut a = pastry_addr::default();
                assert_eq!(pastry_node_addr(node, &mut a), PASTRY_OK);
                sim.addrs.push(a);
            }
            sim.nodes.push(node);
        }
        sim
    }

    /// Moves datagrams and events until nothing is in flight, then advances to the next
    /// deadline; `rounds` times.
    fn run(&mut self, rounds: usize) {
        let mut buf = vec![0u8; PASTRY_MAX_DATAGRAM];
        for _ in 0..rounds {
            let mut moved = true;
            while moved {
                moved = false;
                for i in 0..self.nodes.len() {
                    let (mut len, mut dst) = (0usize, pastry_addr::default());
                    // SAFETY: live node and buffers.
                    while unsafe {
                        pastry_node_poll_transmit(
                            self.nodes[i],
                            buf.as_mut_ptr(),
                            buf.len(),
                            &mut len,
                            &mut dst,
                        )
                    } == PASTRY_OK
                    {
                        moved = true;
                        if let Some(j) = self.addrs.iter().position(|a| *a == dst) {
                            let from = self.addrs[i];
                            // SAFETY: live node; `buf` holds `len` bytes.
                            let r = unsafe {
                                pastry_node_handle_datagram(
                                    self.nodes[j],
                                    &from,
                                    buf.as_ptr(),
                                    len,
                                    self.now,
                                )
                            };
                            assert_eq!(r, PASTRY_OK);
                        }
                    }
                    self.drain_events(i);
                }
            }
            let next = self
                .nodes
                .iter()
                .filter_map(|&n| {
                    let mut at = 0u64;
                    // SAFETY: live node and out-pointer.
                    (unsafe { pastry_node_poll_timeout(n, &mut at) } == PASTRY_OK).then_some(at)
                })
                .min();
            let Some(at) = next else { return };
            self.now = self.now.max(at);
            for &n in &self.nodes {
                // SAFETY: live node.
                assert_eq!(
                    unsafe { pastry_node_handle_timeout(n, self.now) },
                    PASTRY_OK
                );
            }
        }
    }

    fn drain_events(&mut self, i: usize) {
        let mut ev = std::mem::MaybeUninit::<pastry_event>::uninit();
        let mut payload = vec![0u8; 1024];
        loop {
            // SAFETY: live node; `ev` is written on PASTRY_OK only.
            let r = unsafe {
                pastry_node_poll_event(
                    self.nodes[i],
                    ev.as_mut_ptr(),
                    payload.as_mut_ptr(),
                    payload.len(),
                )
            };
            if r == PASTRY_NONE {
                return;
            }
            assert_eq!(r, PASTRY_OK);
            // SAFETY: written by the successful call.
            let e = unsafe { ev.assume_init() };
            match e.kind {
                pastry_event_kind::PASTRY_EVENT_JOINED => self.joined[i] = true,
                pastry_event_kind::PASTRY_EVENT_DELIVERED => {
                    self.delivered
                        .push((i, e.key, payload[..e.payload_len].to_vec()))
                }
                _ => {}
            }
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for &n in &self.nodes {
            // SAFETY: each node is freed once.
            assert_eq!(unsafe { pastry_node_free(n) }, PASTRY_OK);
        }
    }
}

const IDS: [&CStr; 3] = [
    c"10000000000000000000000000000000",
    c"50000000000000000000000000000000",
    c"a0000000000000000000000000000000",
];

fn start_overlay(sim: &mut Sim) {
    // SAFETY: live nodes and address array.
    unsafe {
        assert_eq!(pastry_node_start(sim.nodes[0]), PASTRY_OK);
        assert_eq!(pastry_node_start(sim.nodes[0]), PASTRY_ERR_ALREADY_STARTED);
        for i in 1..sim.nodes.len() {
            assert_eq!(
                pastry_node_start_join(sim.nodes[i], &sim.addrs[0], 1),
                PASTRY_OK
            );
            sim.run(50);
        }
    }
    sim.run(20);
    assert!(sim.joined.iter().all(|&j| j), "{:?}", sim.joined);
}

#[test]
fn caller_driven_overlay_delivers_at_the_root() {
    let mut sim = Sim::new(&IDS, None);
    start_overlay(&mut sim);
    let ids: Vec<Id> = IDS.iter().map(|h| id_of(h).id()).collect();
    let keys = [
        c"20000000000000000000000000000000",
        c"90000000000000000000000000000000",
        c"f0000000000000000000000000000000",
    ];
    for (n, key) in keys.iter().enumerate() {
        let k = id_of(key);
        let msg = format!("m{n}");
        // SAFETY: live node, key and payload.
        let r = unsafe { pastry_route(sim.nodes[n % 3], &k, msg.as_ptr(), msg.len(), null()) };
        assert_eq!(r, PASTRY_OK);
    }
    sim.run(20);
    assert_eq!(sim.delivered.len(), 3, "{:?}", sim.delivered);
    for (i, key, _) in &sim.delivered {
        let root = oracle(key.id(), &ids);
        assert_eq!(ids[*i], root, "key {}", hex(key));
    }
    // Replica set at the root of a key: the closest nodes, root first.
    let k = id_of(keys[0]);
    let mut out = [pastry_peer::default(); 8];
    let mut count = out.len();
    // SAFETY: live node, key, array of `count` entries.
    let r = unsafe { pastry_node_replica_set(sim.nodes[0], &k, 1, out.as_mut_ptr(), &mut count) };
    assert_eq!(r, PASTRY_OK);
    assert_eq!(count, 2);
    assert_eq!(out[0].id.id(), ids[0]);
    assert_eq!(out[1].id.id(), ids[1]);
    // Payload over the limit.
    let big = vec![0u8; 20_000];
    // SAFETY: as above.
    let r = unsafe { pastry_route(sim.nodes[0], &k, big.as_ptr(), big.len(), null()) };
    assert_eq!(r, PASTRY_ERR_PAYLOAD_TOO_LARGE);
}

// ---- runtime mode ----

#[derive(Default)]
struct Seen {
    delivered: Mutex<Vec<(Id, Vec<u8>)>>,
    drops: AtomicUsize,
    free_in_callback: Mutex<Option<pastry_result>>,
    replicas_in_callback: AtomicUsize,
}

struct Ctx {
    seen: Arc<Seen>,
    me: Id,
}

unsafe extern "C" fn on_deliver(
    ud: *mut c_void,
    node: *mut pastry_node,
    msg: *const pastry_delivery,
) {
    // SAFETY: `ud` is the `Box<Ctx>` given to pastry_node_new; `msg` is valid for the call.
    let (ctx, msg) = unsafe { (&*(ud as *const Ctx), &*msg) };
    let payload = if msg.payload_len == 0 {
        Vec::new()
    } else {
        // SAFETY: `payload` points to `payload_len` bytes during the call.
        unsafe { std::slice::from_raw_parts(msg.payload, msg.payload_len) }.to_vec()
    };
    if payload == b"free me" {
        // SAFETY: `node` is valid during the call; freeing it here must be refused.
        let r = unsafe { pastry_node_free(node) };
        *ctx.seen.free_in_callback.lock().unwrap() = Some(r);
        let mut out = [pastry_peer::default(); 4];
        let mut count = out.len();
        // SAFETY: queries on the node passed in are allowed from deliver.
        let r = unsafe { pastry_node_replica_set(node, &msg.key, 3, out.as_mut_ptr(), &mut count) };
        if r == PASTRY_OK {
            ctx.seen.replicas_in_callback.store(count, Ordering::SeqCst);
        }
    }
    ctx.seen.delivered.lock().unwrap().push((ctx.me, payload));
}

unsafe extern "C" fn on_drop(ud: *mut c_void) {
    // SAFETY: `ud` is the `Box<Ctx>` leaked for the callbacks; drop runs once.
    let ctx = unsafe { Box::from_raw(ud as *mut Ctx) };
    ctx.seen.drops.fetch_add(1, Ordering::SeqCst);
}

/// Polls `f` until it holds; fails after 20 s. (This test drives real sockets and a runtime
/// thread: it needs the wall clock, unlike the sans-IO tests.)
#[allow(clippy::disallowed_methods)]
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn runtime_overlay_with_upcalls() {
    let seen = Arc::new(Seen::default());
    let mut rt = null_mut();
    let mut nodes = Vec::new();
    let mut ids = Vec::new();
    // SAFETY: live locals throughout; every object is freed at the end.
    unsafe {
        assert_eq!(pastry_runtime_new(&mut rt), PASTRY_OK);
        let mut cfg = null_mut();
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        let mut first = pastry_addr::default();
        for i in 0..4u8 {
            let id = pastry_id {
                bytes: [i * 0x40 + 0x10; 16],
            };
            assert_eq!(pastry_config_set_id(cfg, &id), PASTRY_OK);
            let ctx = Box::into_raw(Box::new(Ctx {
                seen: seen.clone(),
                me: id.id(),
            }));
            let cb = pastry_callbacks {
                userdata: ctx.cast(),
                deliver: Some(on_deliver),
                drop: Some(on_drop),
                ..pastry_callbacks::default()
            };
            let mut node = null_mut();
            assert_eq!(pastry_node_new(rt, cfg, &cb, &mut node), PASTRY_OK);
            if i == 0 {
                assert_eq!(pastry_node_start(node), PASTRY_OK);
                assert_eq!(pastry_node_wait_joined(node, 5_000), PASTRY_OK);
                assert_eq!(pastry_node_addr(node, &mut first), PASTRY_OK);
            } else {
                assert_eq!(pastry_node_join(node, &first, 1, 10_000), PASTRY_OK);
            }
            nodes.push(node);
            ids.push(id.id());
        }
        pastry_config_free(cfg);
        // Wait until every leaf set holds the others.
        wait_until("full leaf sets", || {
            nodes.iter().all(|&n| {
                let mut out = [pastry_peer::default(); 8];
                let mut count = out.len();
                pastry_node_neighbor_set(n, out.as_mut_ptr(), &mut count) == PASTRY_OK && count == 3
            })
        });
        let mut expected = BTreeMap::new();
        for k in 0..16u8 {
            let key = pastry_id {
                bytes: [k * 16 + 3; 16],
            };
            let msg = [k];
            assert_eq!(
                pastry_route(nodes[k as usize % 4], &key, msg.as_ptr(), 1, null()),
                PASTRY_OK
            );
            expected.insert(vec![k], oracle(key.id(), &ids));
        }
        wait_until("16 deliveries", || {
            seen.delivered.lock().unwrap().len() == 16
        });
        for (at, payload) in seen.delivered.lock().unwrap().iter() {
            assert_eq!(expected[payload], *at, "message {payload:?}");
        }
        // Free from inside deliver is refused; queries work there.
        let key = pastry_id::from(ids[2]);
        assert_eq!(
            pastry_route(nodes[0], &key, b"free me".as_ptr(), 7, null()),
            PASTRY_OK
        );
        wait_until("free in callback", || {
            seen.free_in_callback.lock().unwrap().is_some()
        });
        assert_eq!(
            *seen.free_in_callback.lock().unwrap(),
            Some(PASTRY_ERR_IN_CALLBACK)
        );
        assert_eq!(seen.replicas_in_callback.load(Ordering::SeqCst), 4);
        let mut stats = pastry_stats::default();
        assert_eq!(
            pastry_node_stats(nodes[2], &mut stats, std::mem::size_of::<pastry_stats>()),
            PASTRY_OK
        );
        assert!(stats.delivered >= 1);
        // Graceful shutdown of one node runs its drop; the rest go with the runtime.
        assert_eq!(pastry_node_shutdown(nodes[3], 5_000), PASTRY_OK);
        assert_eq!(seen.drops.load(Ordering::SeqCst), 1);
        assert_eq!(
            pastry_route(nodes[3], &key, null(), 0, null()),
            PASTRY_ERR_STOPPED
        );
        assert_eq!(pastry_runtime_free(rt), PASTRY_OK);
        assert_eq!(seen.drops.load(Ordering::SeqCst), 4);
        for n in nodes {
            assert_eq!(pastry_node_free(n), PASTRY_OK);
        }
    }
    assert_eq!(
        seen.drops.load(Ordering::SeqCst),
        4,
        "drop ran exactly once per node"
    );
}

// ---------------------------------------------------------------------------------------------
// Misuse (issue 9): each of these was undefined behaviour, a hang or a wrong code before.

/// A caller-driven node alone in its overlay (started at `now`), with `cb` as its callbacks.
fn lone_driven(port: u16, cb: Option<&pastry_callbacks>, now: u64) -> *mut pastry_node {
    let mut cfg = null_mut();
    let mut node = null_mut();
    let bind = std::ffi::CString::new(format!("127.0.0.1:{port}")).unwrap();
    // SAFETY: live locals; the config is freed here, the node by the caller.
    unsafe {
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        assert_eq!(pastry_config_set_bind(cfg, bind.as_ptr()), PASTRY_OK);
        let cb = cb.map_or(null(), |c| c as *const _);
        assert_eq!(pastry_node_new_driven(cfg, cb, &mut node), PASTRY_OK);
        pastry_config_free(cfg);
        assert_eq!(pastry_node_start_at(node, now), PASTRY_OK);
    }
    node
}

unsafe extern "C" fn keep_forward(
    ud: *mut c_void,
    _n: *mut pastry_node,
    m: *mut pastry_forward,
) -> u32 {
    // SAFETY: `ud` is the test's `Mutex<Option<pastry_forward>>`; `m` is live for the call.
    unsafe {
        let kept = &*ud.cast::<Mutex<Option<pastry_forward>>>();
        *kept.lock().unwrap() = Some(*m);
        // During the call the same message may be changed.
        assert_eq!(pastry_forward_set_payload(m, b"new".as_ptr(), 3), PASTRY_OK);
    }
    PASTRY_FORWARD_CONTINUE
}

#[test]
fn a_forward_kept_after_its_call_is_refused() {
    let kept: Mutex<Option<pastry_forward>> = Mutex::new(None);
    let cb = pastry_callbacks {
        userdata: (&kept as *const Mutex<_>).cast_mut().cast(),
        forward: Some(keep_forward),
        ..pastry_callbacks::default()
    };
    let node = lone_driven(41100, Some(&cb), 0);
    // SAFETY: live node; `kept` outlives it (freed below).
    unsafe {
        let key = pastry_id { bytes: [9; 16] };
        assert_eq!(
            pastry_route(node, &key, b"x".as_ptr(), 1, null()),
            PASTRY_OK
        );
        let mut m = kept.lock().unwrap().take().expect("forward ran");
        assert_eq!(
            pastry_forward_set_payload(&mut m, b"late".as_ptr(), 4),
            PASTRY_ERR_INVALID_ARGUMENT
        );
        // A forged ticket is refused the same way.
        m._private = core::ptr::without_provenance_mut(0x1234);
        assert_eq!(
            pastry_forward_set_payload(&mut m, null(), 0),
            PASTRY_ERR_INVALID_ARGUMENT
        );
        // The change made during the call was applied.
        let mut ev = std::mem::MaybeUninit::<pastry_event>::uninit();
        let mut buf = [0u8; 16];
        assert_eq!(
            pastry_node_poll_event(node, ev.as_mut_ptr(), buf.as_mut_ptr(), buf.len()),
            PASTRY_OK
        ); // joined
        assert_eq!(
            pastry_node_poll_event(node, ev.as_mut_ptr(), buf.as_mut_ptr(), buf.len()),
            PASTRY_OK
        );
        let ev = ev.assume_init();
        assert_eq!(ev.kind, pastry_event_kind::PASTRY_EVENT_DELIVERED);
        assert_eq!(&buf[..ev.payload_len], b"new");
        assert_eq!(pastry_node_free(node), PASTRY_OK);
    }
}

/// Found by an outside tester: with nothing queued, a NULL `buf` with a non-zero `cap` got
/// `PASTRY_NONE` (and a NULL out-pointer on a runtime node `PASTRY_ERR_WRONG_MODE`); pointers
/// are now checked first, whatever is queued and whatever the node's mode.
#[test]
fn poll_functions_check_their_pointers_first() {
    let node = lone_driven(41110, None, 0);
    // SAFETY: live node and locals; NULLs are what is being tested.
    unsafe {
        let mut ev = std::mem::MaybeUninit::<pastry_event>::uninit();
        let mut buf = [0u8; 16];
        let (mut len, mut dst, mut at) = (0usize, pastry_addr::default(), 0u64);
        // Drain what the start queued, so that nothing is pending.
        while pastry_node_poll_event(node, ev.as_mut_ptr(), buf.as_mut_ptr(), buf.len())
            == PASTRY_OK
        {}
        let mut tx = [0u8; 2048];
        while pastry_node_poll_transmit(node, tx.as_mut_ptr(), tx.len(), &mut len, &mut dst)
            == PASTRY_OK
        {}
        assert_eq!(
            pastry_node_poll_event(node, ev.as_mut_ptr(), buf.as_mut_ptr(), buf.len()),
            PASTRY_NONE
        );
        assert_eq!(
            pastry_node_poll_event(node, ev.as_mut_ptr(), null_mut(), 10),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            pastry_node_poll_event(node, null_mut(), buf.as_mut_ptr(), buf.len()),
            PASTRY_ERR_NULL_ARGUMENT
        );
        // NULL with a capacity of 0 stays fine.
        assert_eq!(
            pastry_node_poll_event(node, ev.as_mut_ptr(), null_mut(), 0),
            PASTRY_NONE
        );
        assert_eq!(
            pastry_node_poll_transmit(node, tx.as_mut_ptr(), tx.len(), &mut len, &mut dst),
            PASTRY_NONE
        );
        assert_eq!(
            pastry_node_poll_transmit(node, null_mut(), 10, &mut len, &mut dst),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            pastry_node_poll_transmit(node, tx.as_mut_ptr(), tx.len(), null_mut(), &mut dst),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            pastry_node_poll_transmit(node, tx.as_mut_ptr(), tx.len(), &mut len, null_mut()),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            pastry_node_handle_datagram(node, null(), b"x".as_ptr(), 1, 0),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(pastry_node_free(node), PASTRY_OK);

        // On a runtime node too: NULL first, then the wrong mode.
        let (mut rt, mut cfg, mut rn) = (null_mut(), null_mut(), null_mut());
        assert_eq!(pastry_runtime_new(&mut rt), PASTRY_OK);
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        assert_eq!(
            pastry_config_set_bind(cfg, c"127.0.0.1:0".as_ptr()),
            PASTRY_OK
        );
        assert_eq!(pastry_node_new(rt, cfg, null(), &mut rn), PASTRY_OK);
        assert_eq!(
            pastry_node_poll_event(rn, null_mut(), null_mut(), 0),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            pastry_node_poll_event(rn, ev.as_mut_ptr(), null_mut(), 10),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            pastry_node_poll_timeout(rn, null_mut()),
            PASTRY_ERR_NULL_ARGUMENT
        );
        assert_eq!(pastry_node_poll_timeout(rn, &mut at), PASTRY_ERR_WRONG_MODE);
        assert_eq!(
            pastry_node_poll_event(rn, ev.as_mut_ptr(), null_mut(), 0),
            PASTRY_ERR_WRONG_MODE
        );
        assert_eq!(pastry_node_free(rn), PASTRY_OK);
        pastry_config_free(cfg);
        assert_eq!(pastry_runtime_free(rt), PASTRY_OK);
    }
}

/// Found by an outside tester: `[::ffff:0.0.0.0]` (0.0.0.0, IPv4-mapped) was accepted as a
/// runtime node's bind address, and the node advertised it. Every spelling of an unspecified
/// address is refused, by runtime and caller-driven nodes alike.
#[test]
fn every_spelling_of_an_unspecified_bind_address_is_refused() {
    let (mut rt, mut cfg) = (null_mut(), null_mut());
    // SAFETY: live locals, freed at the end.
    unsafe {
        assert_eq!(pastry_runtime_new(&mut rt), PASTRY_OK);
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        for any in [
            c"0.0.0.0:0",
            c"[::]:0",
            c"[::ffff:0.0.0.0]:0",
            c"[::ffff:0:0]:0",
            c"[::0.0.0.0]:0",
        ] {
            assert_eq!(pastry_config_set_bind(cfg, any.as_ptr()), PASTRY_OK);
            let mut node = null_mut();
            assert_eq!(
                pastry_node_new(rt, cfg, null(), &mut node),
                PASTRY_ERR_BAD_ADDRESS,
                "{any:?}"
            );
            assert!(node.is_null());
        }
        for any in [
            c"[::ffff:0.0.0.0]:4000",
            c"[::ffff:0:0]:4000",
            c"[::0.0.0.0]:4000",
        ] {
            assert_eq!(pastry_config_set_bind(cfg, any.as_ptr()), PASTRY_OK);
            let mut node = null_mut();
            assert_eq!(
                pastry_node_new_driven(cfg, null(), &mut node),
                PASTRY_ERR_BAD_ADDRESS,
                "{any:?}"
            );
        }
        // A mapped address that is not unspecified is fine.
        assert_eq!(
            pastry_config_set_bind(cfg, c"[::ffff:127.0.0.1]:4000".as_ptr()),
            PASTRY_OK
        );
        let mut node = null_mut();
        assert_eq!(pastry_node_new_driven(cfg, null(), &mut node), PASTRY_OK);
        assert_eq!(pastry_node_free(node), PASTRY_OK);
        pastry_config_free(cfg);
        assert_eq!(pastry_runtime_free(rt), PASTRY_OK);
    }
}

#[test]
// A watchdog thread: a hang must fail the test, not stall CI.
#[allow(clippy::disallowed_methods)]
fn handle_timeout_at_the_end_of_time_returns() {
    let node = lone_driven(41101, None, 0) as usize;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: a live node, freed only after this thread reports.
        let r = unsafe { pastry_node_handle_timeout(node as *mut pastry_node, u64::MAX) };
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("pastry_node_handle_timeout(UINT64_MAX) never returned");
    assert_eq!(r, PASTRY_OK);
    // SAFETY: live node, freed once.
    assert_eq!(
        unsafe { pastry_node_free(node as *mut pastry_node) },
        PASTRY_OK
    );
}

#[test]
fn a_driven_node_after_shutdown_reports_stopped() {
    let node = lone_driven(41102, None, 5);
    let key = pastry_id { bytes: [1; 16] };
    let boot = {
        let mut a = pastry_addr::default();
        // SAFETY: valid string and out-pointer.
        assert_eq!(
            unsafe { pastry_addr_parse(c"127.0.0.1:9".as_ptr(), &mut a) },
            PASTRY_OK
        );
        a
    };
    // SAFETY: live node and locals; freed once at the end.
    unsafe {
        assert_eq!(pastry_node_shutdown(node, 0), PASTRY_OK);
        assert_eq!(
            pastry_route(node, &key, null(), 0, null()),
            PASTRY_ERR_STOPPED
        );
        assert_eq!(pastry_node_start(node), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_start_join(node, &boot, 1), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_shutdown(node, 0), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_shutdown_at(node, 10), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_abort(node, 0), PASTRY_ERR_STOPPED);
        let mut phase = pastry_phase::PASTRY_PHASE_IDLE;
        assert_eq!(pastry_node_phase(node, &mut phase), PASTRY_OK);
        assert_eq!(phase, pastry_phase::PASTRY_PHASE_STOPPED);
        assert_eq!(pastry_node_free(node), PASTRY_OK);
    }
}

#[test]
fn a_driven_clock_starts_where_the_host_says() {
    // A host whose monotonic clock reads 10^12 µs: the join's first timer (a step of the
    // nearest-node walk that comes before the join request) is counted from there, not from 0.
    let now = 1_000_000_000_000u64;
    let mut cfg = null_mut();
    let mut node = null_mut();
    // SAFETY: live locals; everything is freed at the end.
    unsafe {
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        assert_eq!(
            pastry_config_set_bind(cfg, c"127.0.0.1:41103".as_ptr()),
            PASTRY_OK
        );
        assert_eq!(pastry_config_set_join_timeout_ms(cfg, 3_000, 2), PASTRY_OK);
        assert_eq!(pastry_node_new_driven(cfg, null(), &mut node), PASTRY_OK);
        pastry_config_free(cfg);
        let mut boot = pastry_addr::default();
        assert_eq!(
            pastry_addr_parse(c"127.0.0.1:9".as_ptr(), &mut boot),
            PASTRY_OK
        );
        assert_eq!(pastry_node_start_join_at(node, &boot, 1, now), PASTRY_OK);
        let mut at = 0u64;
        assert_eq!(pastry_node_poll_timeout(node, &mut at), PASTRY_OK);
        assert!(
            at > now && at <= now + 3_000_000,
            "deadline {at} not within the join timeout of now"
        );
        // Routing is refused while joining, with its own clock, and `_at` works on the
        // runtime-less node only.
        let key = pastry_id { bytes: [2; 16] };
        let mut id = 0u64;
        assert_eq!(
            pastry_route_at(node, &key, null(), 0, null(), now + 1, &mut id),
            PASTRY_ERR_NOT_ACTIVE
        );
        assert_eq!(pastry_node_shutdown_at(node, now + 2), PASTRY_OK);
        assert_eq!(pastry_node_free(node), PASTRY_OK);
    }
}

#[test]
// Threads racing a free are the point of the test.
#[allow(clippy::disallowed_methods)]
fn freed_handles_are_refused_and_free_races_calls_safely() {
    let node = lone_driven(41104, None, 0);
    let key = pastry_id { bytes: [3; 16] };
    // SAFETY: `node` is freed once; every later use is a misuse the library must refuse.
    unsafe {
        assert_eq!(pastry_node_free(node), PASTRY_OK);
        assert_eq!(
            pastry_route(node, &key, null(), 0, null()),
            PASTRY_ERR_INVALID_ARGUMENT
        );
        assert_eq!(pastry_node_start(node), PASTRY_ERR_INVALID_ARGUMENT);
        assert_eq!(pastry_node_free(node), PASTRY_ERR_INVALID_ARGUMENT);
        let bogus: *mut pastry_node = core::ptr::without_provenance_mut(0x10);
        assert_eq!(pastry_node_free(bogus), PASTRY_ERR_INVALID_ARGUMENT);
    }
    // Runtime nodes freed while other threads route on them: every call returns a code.
    let mut rt = null_mut();
    // SAFETY: live locals; the runtime is freed at the end.
    unsafe { assert_eq!(pastry_runtime_new(&mut rt), PASTRY_OK) };
    for round in 0..5 {
        let mut cfg = null_mut();
        let mut node = null_mut();
        // SAFETY: live locals.
        unsafe {
            assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
            assert_eq!(pastry_node_new(rt, cfg, null(), &mut node), PASTRY_OK);
            pastry_config_free(cfg);
            assert_eq!(pastry_node_start(node), PASTRY_OK);
            assert_eq!(pastry_node_wait_joined(node, 5_000), PASTRY_OK);
        }
        let handle = node as usize;
        let threads: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let key = pastry_id { bytes: [round; 16] };
                    for _ in 0..200_000 {
                        // SAFETY: the handle may be freed meanwhile: the library refuses it.
                        let r = unsafe {
                            pastry_route(handle as *mut pastry_node, &key, b"r".as_ptr(), 1, null())
                        };
                        match r {
                            PASTRY_OK | PASTRY_ERR_OVERLOADED | PASTRY_ERR_STOPPED => {}
                            PASTRY_ERR_INVALID_ARGUMENT => return true,
                            other => panic!("route returned {other:?}"),
                        }
                    }
                    false
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        // SAFETY: freed once, while the threads route.
        assert_eq!(unsafe { pastry_node_free(node) }, PASTRY_OK);
        for t in threads {
            t.join().expect("a routing thread panicked");
        }
    }
    // SAFETY: freed once.
    assert_eq!(unsafe { pastry_runtime_free(rt) }, PASTRY_OK);
}

#[derive(Default)]
struct Flags {
    drops: AtomicUsize,
    undeliverable: AtomicUsize,
    stats_rc: Mutex<Option<pastry_result>>,
}

unsafe extern "C" fn flag_drop(ud: *mut c_void) {
    // SAFETY: `ud` is the test's `Flags`, alive until the runtime is freed.
    unsafe { &*ud.cast::<Flags>() }
        .drops
        .fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn flag_undeliverable(
    ud: *mut c_void,
    _n: *mut pastry_node,
    _k: *const pastry_id,
    _id: u64,
    _reason: u32,
) {
    // SAFETY: as in `flag_drop`.
    unsafe { &*ud.cast::<Flags>() }
        .undeliverable
        .fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn stats_in_deliver(
    ud: *mut c_void,
    n: *mut pastry_node,
    _m: *const pastry_delivery,
) {
    let mut s = pastry_stats::default();
    // SAFETY: `n` is the upcall's node, `ud` the test's `Flags`.
    unsafe {
        let rc = pastry_node_stats(n, &mut s, std::mem::size_of::<pastry_stats>());
        *(*ud.cast::<Flags>()).stats_rc.lock().unwrap() = Some(rc);
    }
}

/// A runtime node with `flags` as its userdata, started alone.
unsafe fn runtime_node(
    rt: *mut pastry_runtime,
    cfg: *const pastry_config,
    flags: &Flags,
) -> *mut pastry_node {
    let cb = pastry_callbacks {
        userdata: (flags as *const Flags).cast_mut().cast(),
        deliver: Some(stats_in_deliver),
        undeliverable: Some(flag_undeliverable),
        drop: Some(flag_drop),
        ..pastry_callbacks::default()
    };
    let mut node = null_mut();
    // SAFETY: the caller's live runtime and config.
    unsafe {
        assert_eq!(pastry_node_new(rt, cfg, &cb, &mut node), PASTRY_OK);
        assert_eq!(pastry_node_start(node), PASTRY_OK);
        assert_eq!(pastry_node_wait_joined(node, 5_000), PASTRY_OK);
    }
    node
}

#[test]
fn runtime_misuse_abort_backpressure_and_stats_in_an_upcall() {
    let flags = Flags::default();
    let mut rt = null_mut();
    let mut cfg = null_mut();
    // SAFETY: live locals; everything is freed at the end, `flags` outlives the runtime.
    unsafe {
        assert_eq!(pastry_runtime_new(&mut rt), PASTRY_OK);
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        // An unspecified address is refused (peers would be told 0.0.0.0).
        assert_eq!(
            pastry_config_set_bind(cfg, c"0.0.0.0:0".as_ptr()),
            PASTRY_OK
        );
        let mut node = null_mut();
        assert_eq!(
            pastry_node_new(rt, cfg, null(), &mut node),
            PASTRY_ERR_BAD_ADDRESS
        );
        assert_eq!(pastry_config_set_bind(cfg, c"[::]:0".as_ptr()), PASTRY_OK);
        assert_eq!(
            pastry_node_new(rt, cfg, null(), &mut node),
            PASTRY_ERR_BAD_ADDRESS
        );
        assert!(node.is_null());
        assert_eq!(
            pastry_config_set_bind(cfg, c"127.0.0.1:0".as_ptr()),
            PASTRY_OK
        );
        assert_eq!(
            pastry_config_set_max_in_flight(cfg, 0),
            PASTRY_ERR_INVALID_CONFIG
        );
        assert_eq!(
            pastry_config_set_max_in_flight(cfg, PASTRY_MAX_IN_FLIGHT_LIMIT + 1),
            PASTRY_ERR_INVALID_CONFIG
        );
        assert_eq!(pastry_config_set_max_in_flight(cfg, 4), PASTRY_OK);
        assert_eq!(pastry_config_set_retransmit(cfg, 20, 20, 40, 1), PASTRY_OK);
        assert_eq!(
            pastry_config_set_leaf_probe_period_ms(cfg, PASTRY_MAX_TIMER_MS + 1),
            PASTRY_ERR_INVALID_CONFIG
        );
        let a = runtime_node(rt, cfg, &flags);

        // stats() from inside deliver works like the queries.
        let own = {
            let mut id = pastry_id::default();
            assert_eq!(pastry_node_id(a, &mut id), PASTRY_OK);
            id
        };
        assert_eq!(pastry_route(a, &own, b"s".as_ptr(), 1, null()), PASTRY_OK);
        wait_until("deliver", || flags.stats_rc.lock().unwrap().is_some());
        assert_eq!(*flags.stats_rc.lock().unwrap(), Some(PASTRY_OK));

        // Backpressure: direct sends to a port nobody listens on stay in flight until their
        // hop fails; the fifth is refused at once.
        let mut dead = pastry_peer::default();
        assert_eq!(
            pastry_addr_parse(c"127.0.0.1:9".as_ptr(), &mut dead.addr),
            PASTRY_OK
        );
        wait_until("the budget to be free", || {
            let mut s = pastry_stats::default();
            pastry_node_stats(a, &mut s, std::mem::size_of::<pastry_stats>()) == PASTRY_OK
        });
        for _ in 0..4 {
            assert_eq!(pastry_route(a, null(), b"d".as_ptr(), 1, &dead), PASTRY_OK);
        }
        assert_eq!(
            pastry_route(a, null(), b"d".as_ptr(), 1, &dead),
            PASTRY_ERR_OVERLOADED
        );
        // The failures are reported, which frees the budget.
        wait_until("4 undeliverable reports", || {
            flags.undeliverable.load(Ordering::SeqCst) >= 4
        });
        wait_until("a route accepted again", || {
            pastry_route(a, &own, b"again".as_ptr(), 5, null()) == PASTRY_OK
        });

        // Abort: no goodbye, the node is gone and its drop has run when it returns.
        assert_eq!(
            pastry_config_set_max_in_flight(cfg, PASTRY_DEFAULT_MAX_IN_FLIGHT),
            PASTRY_OK
        );
        let b = runtime_node(rt, cfg, &flags);
        let drops = flags.drops.load(Ordering::SeqCst);
        assert_eq!(pastry_node_abort(b, 5_000), PASTRY_OK);
        assert_eq!(flags.drops.load(Ordering::SeqCst), drops + 1);
        let mut phase = pastry_phase::PASTRY_PHASE_IDLE;
        assert_eq!(pastry_node_phase(b, &mut phase), PASTRY_OK);
        assert_eq!(phase, pastry_phase::PASTRY_PHASE_STOPPED);
        assert_eq!(pastry_route(b, &own, null(), 0, null()), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_abort(b, 5_000), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_shutdown(b, 5_000), PASTRY_ERR_STOPPED);
        assert_eq!(pastry_node_free(b), PASTRY_OK);

        pastry_config_free(cfg);
        assert_eq!(pastry_runtime_free(rt), PASTRY_OK);
        assert_eq!(pastry_node_free(a), PASTRY_OK);
    }
    assert_eq!(flags.drops.load(Ordering::SeqCst), 2);
}

#[test]
fn abort_is_seen_as_a_failure_by_the_leaf_set() {
    let flags = Flags::default();
    let mut rt = null_mut();
    let mut cfg = null_mut();
    // SAFETY: live locals; everything is freed at the end.
    unsafe {
        assert_eq!(pastry_runtime_new(&mut rt), PASTRY_OK);
        assert_eq!(pastry_config_new(&mut cfg), PASTRY_OK);
        assert_eq!(pastry_config_set_leaf_probe_period_ms(cfg, 100), PASTRY_OK);
        assert_eq!(pastry_config_set_retransmit(cfg, 50, 20, 200, 2), PASTRY_OK);
        let a = runtime_node(rt, cfg, &flags);
        let mut boot = pastry_addr::default();
        assert_eq!(pastry_node_addr(a, &mut boot), PASTRY_OK);
        let cb = pastry_callbacks::default();
        let mut b = null_mut();
        assert_eq!(pastry_node_new(rt, cfg, &cb, &mut b), PASTRY_OK);
        assert_eq!(pastry_node_join(b, &boot, 1, 10_000), PASTRY_OK);
        let leaves = |n: *mut pastry_node| {
            let mut out = [pastry_peer::default(); 4];
            let mut count = out.len();
            assert_eq!(
                pastry_node_neighbor_set(n, out.as_mut_ptr(), &mut count),
                PASTRY_OK
            );
            count
        };
        wait_until("a knows b", || leaves(a) == 1);
        assert_eq!(pastry_node_abort(b, 5_000), PASTRY_OK);
        // No goodbye was sent: a finds out by probing.
        wait_until("a notices b's failure", || leaves(a) == 0);
        let mut s = pastry_stats::default();
        assert_eq!(
            pastry_node_stats(a, &mut s, std::mem::size_of::<pastry_stats>()),
            PASTRY_OK
        );
        assert!(
            s.failures_detected >= 1,
            "the leaf left by failure detection"
        );
        assert_eq!(pastry_node_free(b), PASTRY_OK);
        assert_eq!(pastry_node_free(a), PASTRY_OK);
        pastry_config_free(cfg);
        assert_eq!(pastry_runtime_free(rt), PASTRY_OK);
    }
}
