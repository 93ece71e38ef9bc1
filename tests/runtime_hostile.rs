//! Hostile input sprayed at a node's port (loopback only): random bytes, truncated and oversized
//! frames, bad checksums, a wrong network id or version, a flood from one source. Every such
//! datagram is counted (`bad_frames`, `foreign_frames`) and dropped; the node keeps serving and
//! its memory stays bounded. Sends are paced (the node must have counted a burst before the next
//! one goes) so the kernel never drops any, which lets the counts be exact.

// Real-socket tests use the wall clock (give-up deadlines).
#![allow(clippy::disallowed_methods)]

use std::net::UdpSocket;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration as StdDuration, Instant as WallClock};

use pastry::node::Node;
use pastry::runtime::{Application, Delivery, Handle, NodeConfig, NodeStats, Runtime};
use pastry::wire::{encode, Frame, Message};
use pastry::{Duration, Id, Rng};

struct Inbox(Sender<(Id, Id)>);

impl Application for Inbox {
    fn deliver(&mut self, node: &Node, msg: Delivery) {
        let _ = self.0.send((node.id(), msg.key));
    }
}

fn ping(network: u32, sender: Id) -> Vec<u8> {
    let mut out = Vec::new();
    let msg = Message::Ping {
        nonce: 7,
        sent_at: 1,
        active: true,
    };
    encode(network, sender, &msg, &mut out);
    out
}

fn refill_crc(buf: &mut [u8]) {
    Frame::new_unchecked(buf).fill_checksum();
}

/// The hostile datagrams, each tagged with the counter it must land in (`true`: foreign).
fn hostile(rng: &mut Rng) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    for _ in 0..300 {
        let mut b = vec![0u8; rng.below(200) as usize];
        rng.fill(&mut b);
        out.push((b, false)); // random bytes
        let p = ping(0, Id(rng.next_u128()));
        out.push((p[..rng.below(p.len() as u64) as usize].to_vec(), false)); // truncated
        let mut p = ping(0, Id(rng.next_u128()));
        let last = p.len() - 1;
        p[last] ^= 0x5a;
        out.push((p, false)); // bad crc
        let mut p = ping(0, Id(rng.next_u128()));
        p[2] = 9;
        refill_crc(&mut p);
        out.push((p, false)); // unsupported version
        out.push((ping(0xbad, Id(rng.next_u128())), true)); // another network
    }
    for _ in 0..20 {
        // Oversized: a Routed header over 64,000 bytes of garbage, with a valid crc.
        let mut p = ping(0, Id(rng.next_u128()));
        p.resize(64_000, 0);
        rng.fill(&mut p[24..63_996]);
        p[3] = 7; // Routed
        refill_crc(&mut p);
        out.push((p, false));
    }
    out
}

fn stats(h: &Handle) -> NodeStats {
    h.stats().unwrap()
}

/// Waits (bounded) until `done(stats)` holds.
fn wait_until(h: &Handle, what: &str, done: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let deadline = WallClock::now() + StdDuration::from_secs(20);
    loop {
        let s = stats(h);
        if done(&s) {
            return s;
        }
        assert!(
            WallClock::now() < deadline,
            "gave up waiting for {what}: {s:?}"
        );
        std::thread::sleep(StdDuration::from_millis(2));
    }
}

#[test]
fn hostile_input_is_counted_and_dropped_and_the_node_keeps_serving() {
    let rt = Runtime::new().unwrap();
    let mut rng = Rng::new(11);
    let (tx, rx) = mpsc::channel();
    let mut nodes: Vec<Handle> = Vec::new();
    for i in 0..8 {
        let cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap())
            .with_id(Id(rng.next_u128()))
            .with_seed(rng.next_u64() | 1)
            .with_maintenance(Duration::from_millis(500), Duration::from_secs(2));
        let h = rt.add_node(cfg, Inbox(tx.clone())).unwrap();
        if i == 0 {
            h.start_alone().unwrap();
        } else {
            h.join(&[nodes[0].addr()], StdDuration::from_secs(20))
                .unwrap();
        }
        nodes.push(h);
    }
    let target = nodes[3].clone();
    let before = stats(&target);
    let spray = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut bad, mut foreign) = (0u64, 0u64);
    for chunk in hostile(&mut rng).chunks(32) {
        for (d, is_foreign) in chunk {
            spray.send_to(d, target.addr()).unwrap();
            if *is_foreign {
                foreign += 1;
            } else {
                bad += 1;
            }
            if d.len() > 10_000 {
                // One oversized datagram at a time: the socket buffer holds only a few.
                let want = before.node.bad_frames + bad;
                wait_until(&target, "an oversized frame", |s| s.node.bad_frames >= want);
            }
        }
        let (b, f) = (
            before.node.bad_frames + bad,
            before.node.foreign_frames + foreign,
        );
        wait_until(&target, "a burst", |s| {
            s.node.bad_frames >= b && s.node.foreign_frames >= f
        });
    }
    // A flood of well-formed pings from one source (with made-up sender ids): answered, not kept.
    let flood = 5_000u64;
    for chunk in 0..flood / 50 {
        for _ in 0..50 {
            spray
                .send_to(&ping(0, Id(rng.next_u128())), target.addr())
                .unwrap();
        }
        let want = before.node.datagrams_in + (chunk + 1) * 50;
        wait_until(&target, "the flood", |s| s.node.datagrams_in >= want);
    }
    let after = stats(&target);
    assert_eq!(after.node.bad_frames - before.node.bad_frames, bad);
    assert_eq!(
        after.node.foreign_frames - before.node.foreign_frames,
        foreign
    );
    assert_eq!(after.upcall_panics, 0);
    assert!(
        after.heap_bytes <= before.heap_bytes + (1 << 20),
        "heap grew from {} to {} bytes",
        before.heap_bytes,
        after.heap_bytes
    );
    // Still serving: messages through the target reach their roots.
    let ids: Vec<Id> = nodes.iter().map(Handle::id).collect();
    for _ in 0..50 {
        target.route(Id(rng.next_u128()), vec![1]).unwrap();
    }
    let deadline = WallClock::now() + StdDuration::from_secs(20);
    let mut got = 0;
    while got < 50 {
        assert!(WallClock::now() < deadline, "only {got} of 50 delivered");
        if let Ok((at, key)) = rx.recv_timeout(StdDuration::from_millis(100)) {
            let root = ids
                .iter()
                .copied()
                .reduce(|a, b| if key.closer_to(a, b) { a } else { b })
                .unwrap();
            assert_eq!(at, root);
            got += 1;
        }
    }
}
