//! Hostile traffic against a small cluster: what forged, reflected and flooding datagrams of
//! every message type make the overlay send to addresses outside it (the attacker's, or a
//! victim's the attacker forged or named), as ratios to what the attacker sent. Used by
//! `tests/hostile.rs` (which asserts the bounds) and `pastry amplification` (which prints the
//! table).
//!
//! Each [`Attack`] is one frame sent to node 0 of a settled [`Cluster`] of
//! [`CLUSTER_NODES`] nodes, from the attacker's address ([`attacker`]), from the victim's
//! (a spoofed source: the reply goes to the victim), or from a member's (a member turned
//! hostile, or its address spoofed). Frames name the victim's address ([`victim`]) wherever a
//! field holds an address, and claim ids next to node 0's wherever that makes them more
//! attractive. [`measure`] sends one or many (a flood: every copy varies its ids and nonces),
//! lets the cluster run on, and counts every datagram that leaves the cluster.

use core::net::SocketAddr;

use bytes::Bytes;

use super::cluster::{cluster_addr, Cluster};
use crate::id::{Id, NodeHandle};
use crate::node::Config;
use crate::time::Duration;
use crate::wire::{self, join_flags, Message, RoutedFlags, RowEntries};

/// Nodes of the attacked cluster.
pub const CLUSTER_NODES: usize = 8;

/// The attacker's own address (outside the cluster).
pub fn attacker() -> SocketAddr {
    "127.0.0.9:6666".parse().expect("a valid address")
}

/// The victim's address: forged as a source, or named in frames (outside the cluster).
pub fn victim() -> SocketAddr {
    "127.0.0.8:7777".parse().expect("a valid address")
}

/// Where an attack's frames come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The attacker's own address: replies come back to it.
    Attacker,
    /// The victim's address, forged: replies go to the victim (reflection).
    Spoofed,
    /// Member 1's address and id: a member turned hostile (or its address forged).
    Member,
}

/// One kind of hostile datagram.
#[derive(Clone, Copy, Debug)]
pub struct Attack {
    /// A short name, e.g. `join-request (spoofed source)`.
    pub name: &'static str,
    /// Where it comes from.
    pub source: Source,
    /// Builds copy `k` (copies differ in ids and nonces, so none is a duplicate).
    build: fn(&Ctx, u64) -> Message,
}

/// What the frames may refer to.
struct Ctx {
    /// Node 0's id.
    target: Id,
    /// Member 1's handle.
    member: NodeHandle,
}

impl Ctx {
    /// A made-up id `k + 1` places after node 0's (so inside its leaf-set range).
    fn near(&self, k: u64) -> Id {
        Id(self.target.0.wrapping_add(u128::from(k) + 1))
    }
    /// A made-up handle at the victim's address.
    fn at_victim(&self, k: u64) -> NodeHandle {
        NodeHandle::new(self.near(k), victim())
    }
    /// `n` made-up handles at the victim's address.
    fn list(&self, k: u64, n: u64) -> Vec<NodeHandle> {
        (0..n).map(|i| self.at_victim(k * 1000 + i)).collect()
    }
}

fn routed(ctx: &Ctx, k: u64, hops: u8, flags: u8, payload: usize) -> Message {
    Message::Routed {
        msg_id: 0x5eed_0000 + k,
        key: ctx.near(k),
        source: NodeHandle::new(Id(0xbad0 + u128::from(k)), victim()),
        hops,
        flags: RoutedFlags(flags),
        payload: Bytes::from(vec![0x41; payload]),
    }
}

fn join_naming_victim(c: &Ctx, k: u64) -> Message {
    Message::JoinRequest {
        joiner: c.at_victim(k),
        join_id: k,
        hops: 1,
    }
}

fn row_listing_victim(c: &Ctx, k: u64) -> Message {
    Message::RowReply {
        row: RowEntries {
            row: 0,
            nodes: c.list(k, 256),
        },
    }
}

fn leave_listing_victim(c: &Ctx, k: u64) -> Message {
    Message::Leave {
        leaf_set: c.list(k, 256),
    }
}

/// Every attack [`measure`] knows, one or more per message type.
pub fn attacks() -> Vec<Attack> {
    use Source::*;
    let a = |name, source, build| Attack {
        name,
        source,
        build,
    };
    vec![
        a("join-request", Attacker, |c, k| Message::JoinRequest {
            joiner: NodeHandle::new(c.near(k), attacker()),
            join_id: k,
            hops: 0,
        }),
        a("join-request (spoofed source)", Spoofed, |c, k| {
            Message::JoinRequest {
                joiner: c.at_victim(k),
                join_id: k,
                hops: 0,
            }
        }),
        a(
            "join-request naming victim, hops 1",
            Attacker,
            join_naming_victim,
        ),
        a(
            "join-request naming victim, hops 1",
            Member,
            join_naming_victim,
        ),
        a("join-reply listing victim", Attacker, |c, k| {
            Message::JoinReply {
                join_id: k,
                flags: join_flags::ROOT | join_flags::FIRST,
                rows: (0..4)
                    .map(|r| RowEntries {
                        row: r,
                        nodes: c.list(k * 10 + u64::from(r), 16),
                    })
                    .collect(),
                leaf_set: c.list(k, 16),
                neighbors: c.list(k + 500, 32),
            }
        }),
        a("leaf-set-request listing victim", Attacker, |c, k| {
            Message::LeafSetRequest {
                nonce: k,
                leaf_set: c.list(k, 16),
            }
        }),
        a("leaf-set-request (spoofed source)", Spoofed, |c, k| {
            Message::LeafSetRequest {
                nonce: k,
                leaf_set: c.list(k, 16),
            }
        }),
        a("leaf-set-reply listing victim", Attacker, |c, k| {
            Message::LeafSetReply {
                nonce: k,
                active: true,
                admitted: true,
                leaf_set: c.list(k, 256),
            }
        }),
        a("row-request", Attacker, |_, k| Message::RowRequest {
            row: (k % 4) as u8,
        }),
        a("row-request (spoofed source)", Spoofed, |_, k| {
            Message::RowRequest { row: (k % 4) as u8 }
        }),
        a("row-reply listing victim", Attacker, row_listing_victim),
        a("row-reply listing victim", Member, row_listing_victim),
        a("ping", Attacker, |_, k| Message::Ping {
            nonce: k,
            sent_at: k,
            active: true,
        }),
        a("ping (spoofed source)", Spoofed, |_, k| Message::Ping {
            nonce: k,
            sent_at: k,
            active: true,
        }),
        a("pong", Attacker, |_, k| Message::Pong {
            nonce: k,
            sent_at: k,
        }),
        a("routed, source named victim", Attacker, |c, k| {
            routed(c, k, 1, 0, 64)
        }),
        a("routed, source named victim (spoofed)", Spoofed, |c, k| {
            routed(c, k, 1, 0, 64)
        }),
        a("routed direct, oversized payload", Attacker, |c, k| {
            routed(c, k, 1, RoutedFlags::DIRECT, 60_000)
        }),
        a("routed direct, hops 255", Attacker, |c, k| {
            routed(c, k, 255, RoutedFlags::DIRECT, 64)
        }),
        a("ack", Attacker, |_, k| Message::Ack { msg_id: k, hops: 1 }),
        a("leave listing victim", Attacker, leave_listing_victim),
        a("leave listing victim", Member, leave_listing_victim),
        a("undeliverable", Attacker, |c, k| Message::Undeliverable {
            msg_id: k,
            key: c.near(k),
            reason: 1,
        }),
        a("delivery-ack", Attacker, |_, k| Message::DeliveryAck {
            msg_id: k,
        }),
        a("failed naming a member", Attacker, |c, _| Message::Failed {
            node: c.member,
        }),
        a("failed naming victim", Member, |c, k| Message::Failed {
            node: c.at_victim(k),
        }),
    ]
}

/// What one attack cost the overlay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    /// Datagrams the attacker sent.
    pub dgrams_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams the cluster sent to addresses outside it (the attacker's, the victim's).
    pub dgrams_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// The largest of those datagrams.
    pub largest_out: u64,
    /// Of those, datagrams to the victim's address (reflection).
    pub dgrams_to_victim: u64,
    /// The largest datagram the attacker sent.
    pub largest_in: u64,
    /// Node 0's heap growth over the attack, bytes (its largest minus before).
    pub heap_growth: u64,
    /// Node 0's heap 30 s after the attack minus before, bytes (memory given back).
    pub heap_after: i64,
    /// Legitimate messages routed among members during the attack, and how many arrived.
    pub legit_sent: u64,
    /// See `legit_sent`.
    pub legit_delivered: u64,
}

impl Measured {
    /// Bytes out per byte in.
    pub fn byte_ratio(&self) -> f64 {
        self.bytes_out as f64 / self.bytes_in.max(1) as f64
    }
    /// Datagrams out per datagram in.
    pub fn dgram_ratio(&self) -> f64 {
        self.dgrams_out as f64 / self.dgrams_in.max(1) as f64
    }
}

/// Ids spread over the ring (every node is in every other's leaf set).
fn ids() -> Vec<Id> {
    (0..CLUSTER_NODES)
        .map(|i| Id((i as u128 + 1) << 120))
        .collect()
}

/// A settled cluster of [`CLUSTER_NODES`] nodes (`seed` varies their random choices).
pub fn settled_cluster(seed: u64) -> Cluster {
    let cfg = Config {
        seed,
        ..Config::default()
    };
    let mut c = Cluster::with_config(&ids(), &cfg);
    c.start_alone(0);
    for i in 1..CLUSTER_NODES {
        c.join(i, 0);
        c.drive_for(Duration::from_millis(300));
    }
    c.drive_for(Duration::from_secs(5));
    c.outside.clear();
    c
}

/// Sends `copies` datagrams of `attack` to node 0, `gap` apart, while members route a light
/// legitimate stream among themselves; then lets the cluster run 30 s more and counts what
/// left it.
pub fn measure(attack: &Attack, copies: u64, gap: Duration) -> Measured {
    let mut c = settled_cluster(7);
    let ids = ids();
    let ctx = Ctx {
        target: ids[0],
        member: NodeHandle::new(ids[1], cluster_addr(1)),
    };
    let from = match attack.source {
        Source::Attacker => attacker(),
        Source::Spoofed => victim(),
        Source::Member => cluster_addr(1),
    };
    let sender = |k: u64| match attack.source {
        Source::Member => ids[1],
        _ => Id(0xa77a_c4e5_0000_0000 + u128::from(k)),
    };
    let heap_before = c.node(0).heap_bytes() as i64;
    let mut m = Measured::default();
    c.take_events();
    for k in 0..copies {
        let mut frame = Vec::new();
        wire::encode(0, sender(k), &(attack.build)(&ctx, k), &mut frame);
        m.dgrams_in += 1;
        m.bytes_in += frame.len() as u64;
        m.largest_in = m.largest_in.max(frame.len() as u64);
        if c.is_live(0) {
            c.inject(0, from, &frame);
        }
        // One legitimate message every 10 copies, from a member other than 0 and 1.
        if k % 10 == 0 {
            let src = 2 + (k / 10) as usize % (CLUSTER_NODES - 2);
            let now = c.now();
            let key = Id(u128::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            if c.node_mut(src)
                .route(now, Some(key), &b"legit"[..], None)
                .is_ok()
            {
                m.legit_sent += 1;
            }
            c.pump(src);
        }
        c.drive_for(gap);
        m.heap_growth = m
            .heap_growth
            .max((c.node(0).heap_bytes() as i64 - heap_before).max(0) as u64);
    }
    c.drive_for(Duration::from_secs(30));
    m.heap_after = c.node(0).heap_bytes() as i64 - heap_before;
    m.legit_delivered = c
        .take_events()
        .iter()
        .filter(|(_, e)| {
            matches!(e, crate::node::Event::Delivered { payload, .. } if &payload[..] == b"legit")
        })
        .count() as u64;
    for d in &c.outside {
        m.dgrams_out += 1;
        m.bytes_out += d.data.len() as u64;
        m.largest_out = m.largest_out.max(d.data.len() as u64);
        if d.to == victim() {
            m.dgrams_to_victim += 1;
        }
    }
    m
}
