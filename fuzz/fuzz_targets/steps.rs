//! The step model shared by the `node` and `cluster` fuzz targets and the main crate's
//! `tests/fuzz_corpus.rs` (which includes this file with `#[path]`, so stable CI replays the
//! corpora through the same steps and the same checks).
//!
//! The fuzzer's bytes are read with `arbitrary` into a sequence of typed [`Step`]s (for the node
//! target) or [`ClusterStep`]s: well-formed frames of every message type with arbitrary fields,
//! answers that echo nonces the node really sent (read back from its output), garbage, time
//! advances, application calls. After every step the outputs are drained and the invariants
//! checked ([`check_node`]); a broken one panics, which the fuzzer reports as a crash.
//!
//! The frame builders ([`MsgSpec::build`], [`answer`]) are the only code here that knows the
//! message types' fields: adapt them there when the wire protocol changes.
//!
//! The fuzzer builds the library with `cfg(fuzzing)` (the decoder does not check the crc); so
//! that an input behaves the same in the fuzzer and in the replay test, every datagram this
//! model hands a node carries a correct crc (garbage included, when it is long enough).
#![allow(dead_code)] // each fuzz target uses one half of the model

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use pastry::node::{Config, Event, Node, Phase};
use pastry::sim::{cluster_addr, Cluster};
use pastry::wire::{
    decode, encode, join_flags, Message, RoutedFlags, RowEntries, HEADER_LEN, MAX_LIST, MAX_ROWS,
    TRAILER_LEN,
};
use pastry::{Duration, Id, Instant, NodeHandle};

// ---------------------------------------------------------------------------------------------
// Configuration and bounds
// ---------------------------------------------------------------------------------------------

/// The overlay id every fake peer uses (frames of another network are a bad-input case).
pub(crate) const NETWORK: u32 = 0x4655_5a5a;
/// The fuzzed node's id (node target).
pub(crate) const NODE_ID: Id = Id(0x5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a);
/// The fuzzed node's address (node target).
pub(crate) const NODE_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 4000);
/// How many fake peers there are; peer `i` lives at `127.0.0.1:(20_000 + i)`.
pub(crate) const PEERS: usize = 6;
/// Steps read from one input at most (keeps one run short).
pub(crate) const MAX_STEPS: usize = 400;
/// Largest UDP payload.
pub(crate) const MAX_DATAGRAM: usize = 65_507;

/// A small configuration, so the bounds below are tight: short timers (time advances reach
/// every timer), small tables, few pending messages and probes, a short outbox.
pub(crate) fn config() -> Config {
    Config {
        id: Some(NODE_ID),
        leaf_set_size: 8,
        neighborhood_size: 8,
        network: NETWORK,
        seed: 7,
        max_payload: 512,
        leaf_probe_period: Duration::from_secs(2),
        leaf_exchange_every: 2,
        rt_maintenance_period: Duration::from_secs(3),
        rto_initial: Duration::from_millis(200),
        rto_min: Duration::from_millis(50),
        rto_max: Duration::from_secs(2),
        max_retries: 3,
        probe_retries: 2,
        join_timeout: Duration::from_secs(1),
        join_attempts: 3,
        max_hops: 16,
        delivery_timeout: Duration::from_secs(1),
        delivery_attempts: 2,
        max_pending: 8,
        max_probes: 16,
        max_outbox: 64,
        tombstone_ttl: Duration::from_secs(10),
        ..Config::default()
    }
}

/// Bytes of one encoded node handle at most (id, family, IPv6 address, port).
const HANDLE_MAX: usize = 16 + 1 + 16 + 2;

/// The largest frame a node with `cfg` ever builds: a routed message with the largest payload,
/// or a join reply with every routing-table row full plus a leaf set and neighbourhood set.
pub(crate) fn max_frame(cfg: &Config) -> usize {
    let rows = cfg.b.digits();
    let base = cfg.b.base();
    let routed = 8 + 16 + HANDLE_MAX + 1 + 1 + 4 + cfg.max_payload;
    let join_reply = 8
        + 1
        + 1
        + rows * (1 + 2 + base * HANDLE_MAX)
        + 2 * (2 + cfg.leaf_set_size.max(cfg.neighborhood_size) * HANDLE_MAX);
    HEADER_LEN + TRAILER_LEN + routed.max(join_reply)
}

/// Capacity a hash map or growable queue may reach holding at most `n` entries (hashbrown keeps
/// 7/8 of a power of two; `Vec`/`VecDeque` double): at most `2n + 8`.
fn grown(n: usize) -> usize {
    2 * n + 8
}

/// Caps inside the node that are constants, not configuration (`src/node`): tombstones
/// (`Node::tombstone`), the two duplicate filters (`SEEN_CAP`), messages held while joining
/// (`HELD_CAP`), held join requests (`HELD_JOINS`), spare send buffers (`POOL_CAP`).
const TOMBSTONES: usize = 4096;
const SEEN_CAP: usize = 4096;
const HELD_CAP: usize = 256;
const POOL_CAP: usize = 4;

/// The bound asserted on [`Node::heap_bytes`], from the configuration: every table and queue at
/// its cap, with the per-entry sizes `heap_breakdown` charges (rounded up), plus the fixed
/// internal caps above. With [`config`] it is 1,673,688 bytes (the default configuration's
/// `max_pending` alone allows 8192 frames of 16 KiB).
///
/// Timers are charged for every message and probe the caps allow, twice (lazy deletion keeps a
/// fired-and-rearmed timer until its old deadline), plus `8 × max_outbox` stale ones: a step's
/// datagrams are bounded by `max_outbox`, and few set more than one timer each.
pub(crate) fn heap_bound(cfg: &Config) -> usize {
    let rows = cfg.b.digits();
    let base = cfg.b.base();
    let (l, m) = (cfg.leaf_set_size, cfg.neighborhood_size);
    let frame = max_frame(cfg);
    let routing_table = grown(rows) * 16 + rows * base * 64;
    let neighborhood = m * 64;
    let peers = grown(l + rows * base + m + cfg.max_probes) * 128;
    let tombstones = grown(TOMBSTONES) * 40;
    let outbox = grown(cfg.max_outbox) * 48;
    let pool = POOL_CAP * frame;
    let seen = 2 * (grown(SEEN_CAP) * 16 + grown(SEEN_CAP) * 16);
    let routing = grown(cfg.max_pending) * (64 + frame) + seen + grown(HELD_CAP) * 96;
    let probes = grown(cfg.max_probes) * 160 + grown(4 * l) * 56;
    let timers = grown(2 * (2 * cfg.max_pending + cfg.max_probes) + 8 * cfg.max_outbox + 8) * 48;
    routing_table + neighborhood + peers + tombstones + outbox + pool + routing + probes + timers
}

// ---------------------------------------------------------------------------------------------
// The fake world: peers, addresses, ids
// ---------------------------------------------------------------------------------------------

/// Fake peer `i`'s address.
pub(crate) fn peer_addr(i: usize) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 20_000 + (i % PEERS) as u16))
}

/// Fake peer `i`'s id, relative to `target` (the fuzzed node's id): peers 0–2 are near it
/// (leaf-set material), 3 shares its first two digits, 4–5 differ in the first.
pub(crate) fn peer_id(target: Id, i: usize) -> Id {
    match i % PEERS {
        0 => target.wrapping_add(1 << 64),
        1 => target.wrapping_sub(1 << 70),
        2 => target.wrapping_add(1 << 90),
        3 => Id(target.0 ^ (0x3 << 118)),
        4 => Id(target.0 ^ (0x9 << 124)),
        _ => Id(target.0 ^ (0xf << 124) ^ 0x1234),
    }
}

/// An id, mostly relative to the target node's id so that it lands in the leaf set, a routing
/// table row, or far away.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum IdSpec {
    /// Fake peer `i`'s id.
    Peer(u8),
    /// The target's id plus `delta << shift`.
    Near { delta: i16, shift: u8 },
    /// Shares exactly `len % 32` digits (b = 4) with the target; `rest` below.
    Prefix { len: u8, rest: u128 },
    /// The target's own id.
    Target,
    /// Any id.
    Raw(u128),
}

impl IdSpec {
    fn id(self, target: Id) -> Id {
        match self {
            IdSpec::Peer(i) => peer_id(target, i.into()),
            IdSpec::Near { delta, shift } => {
                let d = (i128::from(delta) as u128) << (u32::from(shift) % 120);
                target.wrapping_add(d)
            }
            IdSpec::Prefix { len, rest } => {
                // Differs from the target first in the bit right after `len` digits.
                let bits = 4 * (u32::from(len) % 32);
                Id(target.0 ^ ((rest | 1 << 127) >> bits))
            }
            IdSpec::Target => target,
            IdSpec::Raw(x) => Id(x),
        }
    }
}

/// An address a frame comes from, or that a listed handle names.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum AddrSpec {
    /// Fake peer `i`.
    Peer(u8),
    /// The target node's own address.
    Target,
    /// A third party on another loopback address.
    Third(u8),
    /// An IPv6 address.
    V6(u8),
    /// A cluster node's address (only meaningful in the cluster target).
    Member(u8),
}

impl AddrSpec {
    fn addr(self, target: SocketAddr) -> SocketAddr {
        match self {
            AddrSpec::Peer(i) => peer_addr(i.into()),
            AddrSpec::Target => target,
            AddrSpec::Third(i) => {
                SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 30_000 + u16::from(i % 16)))
            }
            AddrSpec::V6(i) => {
                let ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + u16::from(i % 4));
                SocketAddrV6::new(ip, 4000, 0, 0).into()
            }
            AddrSpec::Member(i) => cluster_addr(usize::from(i % 5)),
        }
    }
}

/// A node handle in a frame.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum HandleSpec {
    /// Fake peer `i` as it really is.
    Peer(u8),
    /// Anything.
    Made { id: IdSpec, addr: AddrSpec },
}

/// A list of handles: a few chosen ones, then `fill` made-up ones (ids next to `base`, at
/// third-party addresses) so that lists reach their caps for a few bytes of input.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct ListSpec {
    items: Vec<HandleSpec>,
    fill: u16,
    base: IdSpec,
}

/// A nonce, message id or timestamp: one the node sent (so that admission paths are reached)
/// or any.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Nonce {
    /// The `i`-th most recent value the node sent (nonces, `sent_at`s, join ids, message ids).
    Echo(u8),
    /// Any value.
    Raw(u64),
}

/// Who a frame claims to be (the header's sender id).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum SenderSpec {
    /// The id that lives at the frame's source address (a fake peer's own, or the one last
    /// listed there), so the frame is consistent.
    Expected,
    /// Any id.
    Id(IdSpec),
}

// ---------------------------------------------------------------------------------------------
// The frame builders (the one place that knows the message types' fields)
// ---------------------------------------------------------------------------------------------

/// A message of every type with arbitrary field values.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum MsgSpec {
    JoinRequest {
        joiner: HandleSpec,
        join_id: Nonce,
        hops: u8,
    },
    JoinReply {
        join_id: Nonce,
        flags: u8,
        rows: Vec<(u8, ListSpec)>,
        leaf_set: ListSpec,
        neighbors: ListSpec,
    },
    LeafSetRequest {
        nonce: Nonce,
        leaf_set: ListSpec,
    },
    LeafSetReply {
        nonce: Nonce,
        active: bool,
        admitted: bool,
        leaf_set: ListSpec,
    },
    RowRequest {
        row: u8,
    },
    RowReply {
        row: u8,
        nodes: ListSpec,
    },
    Ping {
        nonce: Nonce,
        sent_at: Nonce,
        active: bool,
    },
    Pong {
        nonce: Nonce,
        sent_at: Nonce,
    },
    Routed {
        msg_id: Nonce,
        key: IdSpec,
        source: HandleSpec,
        hops: u8,
        flags: u8,
        len: u16,
    },
    Ack {
        msg_id: Nonce,
        hops: u8,
    },
    Leave {
        leaf_set: ListSpec,
    },
    Undeliverable {
        msg_id: Nonce,
        key: IdSpec,
        reason: u8,
    },
    DeliveryAck {
        msg_id: Nonce,
    },
    Failed {
        node: HandleSpec,
    },
}

/// What the model knows of the world while it builds frames for one target node.
#[derive(Debug, Default)]
pub(crate) struct World {
    /// The target node's id and address.
    target: Option<NodeHandle>,
    /// Values the target sent (nonces, timestamps, join and message ids), newest last.
    echoes: Vec<u64>,
    /// Datagrams the target sent (destination, message), newest last, for answers.
    sent: Vec<(SocketAddr, Message)>,
    /// The id last named at each address (so an answer from there claims that id).
    named: BTreeMap<SocketAddr, Id>,
}

const ECHOES: usize = 64;
const SENT: usize = 32;

impl World {
    fn new(target: NodeHandle) -> World {
        World {
            target: Some(target),
            ..World::default()
        }
    }

    fn target(&self) -> NodeHandle {
        self.target.expect("a target")
    }

    /// Remembers what the target sent in `msg` to `dst`.
    fn record(&mut self, dst: SocketAddr, msg: Message) {
        let mut echo = |v: u64| {
            if self.echoes.len() >= ECHOES {
                self.echoes.remove(0);
            }
            self.echoes.push(v);
        };
        match &msg {
            Message::JoinRequest { join_id, .. } | Message::JoinReply { join_id, .. } => {
                echo(*join_id)
            }
            Message::LeafSetRequest { nonce, .. } | Message::LeafSetReply { nonce, .. } => {
                echo(*nonce)
            }
            Message::Ping { nonce, sent_at, .. } | Message::Pong { nonce, sent_at } => {
                echo(*nonce);
                echo(*sent_at);
            }
            Message::Routed { msg_id, .. }
            | Message::Ack { msg_id, .. }
            | Message::Undeliverable { msg_id, .. }
            | Message::DeliveryAck { msg_id } => echo(*msg_id),
            _ => {}
        }
        if self.sent.len() >= SENT {
            self.sent.remove(0);
        }
        self.sent.push((dst, msg));
    }

    fn nonce(&self, n: Nonce) -> u64 {
        match n {
            Nonce::Echo(i) if !self.echoes.is_empty() => {
                let i = usize::from(i) % self.echoes.len();
                self.echoes[self.echoes.len() - 1 - i]
            }
            Nonce::Echo(i) => u64::from(i),
            Nonce::Raw(v) => v,
        }
    }

    fn handle(&mut self, h: HandleSpec) -> NodeHandle {
        let t = self.target();
        let h = match h {
            HandleSpec::Peer(i) => NodeHandle::new(peer_id(t.id, i.into()), peer_addr(i.into())),
            HandleSpec::Made { id, addr } => NodeHandle::new(id.id(t.id), addr.addr(t.addr)),
        };
        self.named.insert(h.addr, h.id);
        h
    }

    fn list(&mut self, l: &ListSpec, cap: usize) -> Vec<NodeHandle> {
        let t = self.target();
        let mut v: Vec<NodeHandle> = l.items.iter().take(cap).map(|&h| self.handle(h)).collect();
        let base = l.base.id(t.id);
        let fill = usize::from(l.fill) % (cap + 1);
        for k in 0..fill.saturating_sub(v.len()) {
            let addr = SocketAddr::from((
                Ipv4Addr::new(127, 0, 1 + (k / 250) as u8, 1 + (k % 250) as u8),
                5000,
            ));
            v.push(NodeHandle::new(
                base.wrapping_add((k as u128 + 1) << 80),
                addr,
            ));
        }
        v
    }

    /// The sender id a frame from `from` claims.
    fn sender(&self, from: SocketAddr, s: SenderSpec) -> Id {
        let t = self.target();
        match s {
            SenderSpec::Id(id) => id.id(t.id),
            SenderSpec::Expected => match (0..PEERS).find(|&i| peer_addr(i) == from) {
                Some(i) => peer_id(t.id, i),
                None => self.named.get(&from).copied().unwrap_or(Id(0x0bad_cafe)),
            },
        }
    }
}

impl MsgSpec {
    /// The message, with every list and flag within what the wire format allows.
    pub(crate) fn build(&self, w: &mut World, max_payload: usize) -> Message {
        match self {
            MsgSpec::JoinRequest {
                joiner,
                join_id,
                hops,
            } => Message::JoinRequest {
                joiner: w.handle(*joiner),
                join_id: w.nonce(*join_id),
                hops: *hops,
            },
            MsgSpec::JoinReply {
                join_id,
                flags,
                rows,
                leaf_set,
                neighbors,
            } => Message::JoinReply {
                join_id: w.nonce(*join_id),
                flags: flags & join_flags::KNOWN,
                rows: rows
                    .iter()
                    .take(MAX_ROWS)
                    .map(|(r, l)| RowEntries {
                        row: *r,
                        nodes: w.list(l, 16),
                    })
                    .collect(),
                leaf_set: w.list(leaf_set, MAX_LIST),
                neighbors: w.list(neighbors, MAX_LIST),
            },
            MsgSpec::LeafSetRequest { nonce, leaf_set } => Message::LeafSetRequest {
                nonce: w.nonce(*nonce),
                leaf_set: w.list(leaf_set, MAX_LIST),
            },
            MsgSpec::LeafSetReply {
                nonce,
                active,
                admitted,
                leaf_set,
            } => Message::LeafSetReply {
                nonce: w.nonce(*nonce),
                active: *active,
                admitted: *admitted,
                leaf_set: w.list(leaf_set, MAX_LIST),
            },
            MsgSpec::RowRequest { row } => Message::RowRequest { row: *row },
            MsgSpec::RowReply { row, nodes } => Message::RowReply {
                row: RowEntries {
                    row: *row,
                    nodes: w.list(nodes, MAX_LIST),
                },
            },
            MsgSpec::Ping {
                nonce,
                sent_at,
                active,
            } => Message::Ping {
                nonce: w.nonce(*nonce),
                sent_at: w.nonce(*sent_at),
                active: *active,
            },
            MsgSpec::Pong { nonce, sent_at } => Message::Pong {
                nonce: w.nonce(*nonce),
                sent_at: w.nonce(*sent_at),
            },
            MsgSpec::Routed {
                msg_id,
                key,
                source,
                hops,
                flags,
                len,
            } => {
                let t = w.target();
                // Up to twice the node's limit: over-limit payloads are an input case too.
                let len = usize::from(*len) % (2 * max_payload + 2);
                Message::Routed {
                    msg_id: w.nonce(*msg_id),
                    key: key.id(t.id),
                    source: w.handle(*source),
                    hops: *hops,
                    flags: RoutedFlags(flags & RoutedFlags::KNOWN),
                    payload: Bytes::from(vec![0xa5; len]),
                }
            }
            MsgSpec::Ack { msg_id, hops } => Message::Ack {
                msg_id: w.nonce(*msg_id),
                hops: *hops,
            },
            MsgSpec::Leave { leaf_set } => Message::Leave {
                leaf_set: w.list(leaf_set, MAX_LIST),
            },
            MsgSpec::Undeliverable {
                msg_id,
                key,
                reason,
            } => Message::Undeliverable {
                msg_id: w.nonce(*msg_id),
                key: key.id(w.target().id),
                reason: *reason,
            },
            MsgSpec::DeliveryAck { msg_id } => Message::DeliveryAck {
                msg_id: w.nonce(*msg_id),
            },
            MsgSpec::Failed { node } => Message::Failed {
                node: w.handle(*node),
            },
        }
    }
}

/// Extra content of an answer (lists and flags the echoed request does not fix).
#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct AnswerSpec {
    /// Which recent datagram of the target's to answer (0 = the newest).
    which: u8,
    sender: SenderSpec,
    /// Leaf-set and row answers: `active` / `admitted`; join replies: the flags.
    flags: u8,
    list: ListSpec,
    /// Routed messages: answer with a `DeliveryAck` instead of a hop `Ack`.
    end_to_end: bool,
}

/// The answer a well-behaved node at the destination of one of the target's recent datagrams
/// would send (echoing its nonce, join id or message id), from that destination; an active
/// ping when that datagram asks for nothing.
pub(crate) fn answer(w: &mut World, a: &AnswerSpec) -> Option<(SocketAddr, Id, Message)> {
    if w.sent.is_empty() {
        return None;
    }
    let i = w.sent.len() - 1 - usize::from(a.which) % w.sent.len();
    let (dst, req) = w.sent[i].clone();
    let msg = reply(w, &req, a.flags, &a.list, a.end_to_end).unwrap_or(Message::Ping {
        nonce: u64::from(a.flags),
        sent_at: 0,
        active: true,
    });
    let sender = w.sender(dst, a.sender);
    Some((dst, sender, msg))
}

/// A well-behaved node's reply to `req` (`None` when `req` asks for nothing): the echoed nonce,
/// join id or message id, `flags` for the reply's flags, lists from `list`.
pub(crate) fn reply(
    w: &mut World,
    req: &Message,
    flags: u8,
    list: &ListSpec,
    end_to_end: bool,
) -> Option<Message> {
    Some(match *req {
        Message::Ping { nonce, sent_at, .. } => Message::Pong { nonce, sent_at },
        Message::LeafSetRequest { nonce, .. } => Message::LeafSetReply {
            nonce,
            active: flags & 1 != 0,
            admitted: flags & 2 != 0,
            leaf_set: w.list(list, 16),
        },
        Message::RowRequest { row } => Message::RowReply {
            row: RowEntries {
                row,
                nodes: w.list(list, 16),
            },
        },
        Message::JoinRequest { join_id, .. } => Message::JoinReply {
            join_id,
            flags: flags & join_flags::KNOWN,
            rows: vec![RowEntries {
                row: flags >> 3,
                nodes: w.list(list, 16),
            }],
            leaf_set: w.list(list, 8),
            neighbors: w.list(list, 8),
        },
        Message::Routed { msg_id, .. } if end_to_end => Message::DeliveryAck { msg_id },
        Message::Routed { msg_id, hops, .. } => Message::Ack { msg_id, hops },
        _ => return None,
    })
}

/// Frames `msg` as sent by `sender`.
pub(crate) fn frame(sender: Id, msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    encode(NETWORK, sender, msg, &mut out);
    out
}

/// `data` with a correct crc (when it is long enough to have one).
pub(crate) fn fix_crc(data: &mut [u8]) {
    if data.len() >= HEADER_LEN + TRAILER_LEN {
        let covered = data.len() - TRAILER_LEN;
        let crc = crc32(&data[..covered]);
        data[covered..].copy_from_slice(&crc.to_be_bytes());
    }
}

/// crc32 (IEEE), bitwise: the fuzz crate does not depend on `crc32fast` for this alone.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Ways to spoil a well-formed frame.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Spoil {
    /// Flip bits of byte `at` (crc recomputed).
    Xor { at: u16, bits: u8 },
    /// Cut it at `at` (crc recomputed over what is left).
    Truncate { at: u16 },
    /// Append bytes (crc recomputed).
    Append { n: u8 },
    /// Another overlay's network id.
    Network,
    /// Another protocol version.
    Version(u8),
    /// The target's own id as the sender.
    SelfSender,
}

fn spoil(mut f: Vec<u8>, s: Spoil, target: Id) -> Vec<u8> {
    match s {
        Spoil::Xor { at, bits } => {
            let n = f.len();
            f[usize::from(at) % n] ^= bits.max(1);
        }
        Spoil::Truncate { at } => f.truncate(usize::from(at) % f.len()),
        Spoil::Append { n } => {
            let len = f.len() - TRAILER_LEN;
            f.splice(len..len, std::iter::repeat_n(0x5a, usize::from(n) + 1));
        }
        Spoil::Network => f[4..8].copy_from_slice(&(!NETWORK).to_be_bytes()),
        Spoil::Version(v) => f[2] = v,
        Spoil::SelfSender => f[8..24].copy_from_slice(&target.to_bytes()),
    }
    fix_crc(&mut f);
    f
}

// ---------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------

/// What one drain of a node's outputs saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) datagrams: usize,
    pub(crate) bytes: usize,
}

/// Checks a datagram the node `me` sent: it decodes (crc included), comes from `me`, on our
/// network, and is no larger than `max_frame`.
pub(crate) fn check_datagram(me: Id, cfg: &Config, data: &[u8]) -> Message {
    assert!(
        data.len() <= max_frame(cfg).min(MAX_DATAGRAM),
        "a {}-byte datagram",
        data.len()
    );
    let (hdr, msg) = decode(data).unwrap_or_else(|e| panic!("the node sent a bad frame: {e:?}"));
    let covered = data.len() - TRAILER_LEN;
    assert_eq!(
        crc32(&data[..covered]).to_be_bytes(),
        data[covered..],
        "the node sent a bad crc"
    );
    assert_eq!(
        (hdr.sender, hdr.network),
        (me, cfg.network),
        "the node sent another's frame"
    );
    msg
}

/// The invariants of one node, checked after every step:
///
/// - the membership invariant, [`Node::check_tables`] (no table entry without a peer record
///   validated at its address);
/// - one id per address across the tables, and the node itself in none;
/// - leaf set: at most `L/2` members each side, each side strictly ordered by distance from
///   the node (so no id twice on a side); routing table: every entry in the cell its id belongs to; neighbourhood set
///   at most `M`;
/// - [`Node::heap_bytes`] within [`heap_bound`].
pub(crate) fn check_node(node: &Node) {
    node.check_tables();
    let cfg = node.config();
    let me = node.id();
    let leaf = node.leaf_set();
    let half = cfg.leaf_set_size / 2;
    assert!(
        leaf.cw_side().len() <= half && leaf.ccw_side().len() <= half,
        "leaf set over L/2 a side"
    );
    for (side, cw) in [(leaf.cw_side(), true), (leaf.ccw_side(), false)] {
        let dist = |h: &NodeHandle| {
            if cw {
                me.cw_distance(h.id)
            } else {
                h.id.cw_distance(me)
            }
        };
        assert!(
            side.windows(2).all(|p| dist(&p[0]) < dist(&p[1])),
            "leaf set side out of order: {side:?}"
        );
    }
    let rt = node.routing_table();
    for row in 0..rt.rows() {
        for e in rt.row(row) {
            let id = e.node.id;
            assert_eq!(
                rt.cell_of(id).map(|(r, _)| r),
                Some(row),
                "{id:?} in row {row}"
            );
            let (r, c) = rt.cell_of(id).unwrap(); // just checked to be Some
            assert_eq!(
                rt.get(r, c).map(|e| e.node.id),
                Some(id),
                "{id:?} not in its cell"
            );
        }
    }
    assert!(
        node.neighborhood().len() <= cfg.neighborhood_size,
        "neighbourhood set over M"
    );
    let mut by_addr: BTreeMap<SocketAddr, Id> = BTreeMap::new();
    let entries = leaf
        .members()
        .copied()
        .chain(rt.entries().map(|e| e.node))
        .chain(node.neighborhood().members().copied());
    for h in entries {
        assert_ne!(h.id, me, "the node holds itself");
        let id = *by_addr.entry(h.addr).or_insert(h.id);
        assert_eq!(id, h.id, "two ids at {} in the tables", h.addr);
    }
    let (heap, bound) = (node.heap_bytes(), heap_bound(cfg));
    assert!(
        heap <= bound,
        "heap_bytes {heap} over the bound {bound}: {:?}",
        node.heap_breakdown()
    );
}

/// Drains a node's datagrams and events, checking each datagram ([`check_datagram`]) and the
/// count: at most `max_outbox` datagrams per step (the driver drains after every input, so a
/// step can send no more than the outbox holds), each at most [`max_frame`] bytes, so at most
/// `max_outbox × max_frame` bytes per step. `record` sees every datagram.
pub(crate) fn drain(
    node: &mut Node,
    buf: &mut Vec<u8>,
    mut record: impl FnMut(SocketAddr, Message),
) -> Out {
    let mut out = Out::default();
    let (me, cfg) = (node.id(), node.config().clone());
    while let Some(dst) = node.poll_transmit(buf) {
        out.datagrams += 1;
        out.bytes += buf.len();
        let msg = check_datagram(me, &cfg, buf);
        record(dst, msg);
    }
    while let Some(ev) = node.poll_event() {
        if let Event::Delivered { payload, hops, .. } = &ev {
            if CHECK_DELIVERED_LIMITS {
                assert!(
                    payload.len() <= cfg.max_payload,
                    "delivered a {}-byte payload",
                    payload.len()
                );
                assert!(*hops <= cfg.max_hops, "delivered after {hops} hops");
            }
        }
    }
    // Per step: no more datagrams than the outbox holds (the driver drains it every step).
    assert!(
        out.datagrams <= cfg.max_outbox,
        "{} datagrams in one step",
        out.datagrams
    );
    out
}

/// Whether a delivered message must be within `max_payload` and `max_hops`. On since routed
/// frames are checked on arrival (issue 13's "payload limit bypass": a DIRECT frame was delivered
/// whatever its payload length and hop count; 79 of 3,700 inputs of the node target broke this
/// check then). `fuzz/artifacts/node/known-direct-send-over-payload-and-hop-limits` (a DIRECT
/// frame from an unknown address, 985-byte payload, hops 34) is its regression input.
pub(crate) const CHECK_DELIVERED_LIMITS: bool = true;

// ---------------------------------------------------------------------------------------------
// The node target
// ---------------------------------------------------------------------------------------------

/// How the fuzzed node starts.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Start {
    /// As a new overlay's only member.
    Alone,
    /// Joining through fake peer `i` (the model answers its join request when told to).
    Join(u8),
}

/// One step of the node target.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Step {
    /// A well-formed frame from `from`.
    Send {
        from: AddrSpec,
        sender: SenderSpec,
        msg: MsgSpec,
    },
    /// A well-formed answer to one of the node's recent datagrams, from its destination.
    Answer(AnswerSpec),
    /// A conversation with well-behaved peers: `msg` from fake peer `from`, then `rounds % 4`
    /// rounds in which every destination answers correctly ([`reply`]) each request the node
    /// sent it in the round before (the first round: in the previous step and to `msg`).
    /// Reaches admission, joins and table fills in few bytes.
    Converse {
        from: u8,
        msg: MsgSpec,
        rounds: u8,
        flags: u8,
        list: ListSpec,
    },
    /// A frame spoiled one way.
    Spoiled {
        from: AddrSpec,
        msg: MsgSpec,
        how: Spoil,
    },
    /// Any bytes.
    Garbage { from: AddrSpec, bytes: Vec<u8> },
    /// Time passes by `ms` milliseconds, then `handle_timeout`.
    Advance { ms: u16 },
    /// Time jumps to the node's next deadline, then `handle_timeout`.
    Fire,
    /// The application routes a message.
    Route {
        key: Option<IdSpec>,
        hint: Option<HandleSpec>,
        len: u16,
    },
    /// The node leaves.
    Leave,
}

/// An input of the node target.
#[derive(Arbitrary, Debug)]
pub(crate) struct NodeInput {
    pub(crate) start: Start,
    pub(crate) steps: Vec<Step>,
}

/// Runs one input of the node target: one node at [`NODE_ADDR`] with [`config`], driven by the
/// steps, its outputs drained and its invariants checked after every step.
pub(crate) fn run_node(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let Ok(input) = NodeInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return reached;
    };
    let cfg = config();
    let mut node = Node::new(cfg.clone(), NODE_ADDR).expect("a valid configuration");
    let mut w = World::new(node.handle());
    let mut now = Instant::ZERO;
    let alone = matches!(input.start, Start::Alone);
    match input.start {
        Start::Alone => node.start_alone(now),
        Start::Join(i) => node
            .join(now, &[peer_addr(i.into())])
            .expect("an idle node joins"),
    }
    let mut buf = Vec::new();
    drain(&mut node, &mut buf, |d, m| w.record(d, m));
    check_node(&node);
    // What the node sent in the previous step (a conversation answers it too).
    let mut before: Vec<(SocketAddr, Message)> = Vec::new();
    for step in input.steps.iter().take(MAX_STEPS) {
        let stopped = node.phase() == Phase::Stopped;
        let mut sent = Vec::new();
        if matches!(step, Step::Converse { .. }) {
            sent = core::mem::take(&mut before);
        }
        node_step(&mut node, &mut w, &mut now, step);
        let mut out = drain(&mut node, &mut buf, |d, m| {
            sent.push((d, m.clone()));
            w.record(d, m)
        });
        let mut check = |node: &Node, out: Out| {
            if stopped {
                assert_eq!(out.datagrams, 0, "a stopped node sent after {step:?}");
            }
            check_node(node);
            reached.note(node, out);
            reached.joined |= !alone && node.is_active();
        };
        check(&node, out);
        let Step::Converse {
            rounds,
            flags,
            list,
            ..
        } = step
        else {
            before = sent;
            continue;
        };
        for _ in 0..rounds % 4 {
            for (dst, req) in core::mem::take(&mut sent) {
                let Some(msg) = reply(&mut w, &req, *flags, list, false) else {
                    continue;
                };
                let sender = w.sender(dst, SenderSpec::Expected);
                node.handle_datagram(now, dst, &frame(sender, &msg));
                out = drain(&mut node, &mut buf, |d, m| {
                    sent.push((d, m.clone()));
                    w.record(d, m)
                });
                check(&node, out);
            }
        }
        before = sent;
    }
    reached
}

/// How far one input got (for the replay test's coverage guard and reports).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Reached {
    /// Checks made: one per step, and one per answered datagram of a conversation.
    pub(crate) steps: usize,
    /// Most leaf-set members, routing-table entries and `heap_bytes` at any step.
    pub(crate) leaf: usize,
    pub(crate) table: usize,
    pub(crate) heap: usize,
    /// Most datagrams and bytes sent in one step.
    pub(crate) datagrams: usize,
    pub(crate) bytes: usize,
    /// Whether a node was active after a join (node target) at some step.
    pub(crate) joined: bool,
}

impl Reached {
    fn note(&mut self, node: &Node, out: Out) {
        self.steps += 1;
        self.leaf = self.leaf.max(node.leaf_set().len());
        self.table = self.table.max(node.routing_table().len());
        self.heap = self.heap.max(node.heap_bytes());
        self.datagrams = self.datagrams.max(out.datagrams);
        self.bytes = self.bytes.max(out.bytes);
    }
}

fn node_step(node: &mut Node, w: &mut World, now: &mut Instant, step: &Step) {
    let max_payload = node.config().max_payload;
    let t = w.target();
    match step {
        Step::Send { from, sender, msg } => {
            let from = from.addr(t.addr);
            let msg = msg.build(w, max_payload);
            let sender = w.sender(from, *sender);
            node.handle_datagram(*now, from, &frame(sender, &msg));
        }
        Step::Converse { from, msg, .. } => {
            let from = peer_addr((*from).into());
            let msg = msg.build(w, max_payload);
            let sender = w.sender(from, SenderSpec::Expected);
            node.handle_datagram(*now, from, &frame(sender, &msg));
        }
        Step::Answer(a) => {
            if let Some((from, sender, msg)) = answer(w, a) {
                node.handle_datagram(*now, from, &frame(sender, &msg));
            }
        }
        Step::Spoiled { from, msg, how } => {
            let from = from.addr(t.addr);
            let msg = msg.build(w, max_payload);
            let sender = w.sender(from, SenderSpec::Expected);
            node.handle_datagram(*now, from, &spoil(frame(sender, &msg), *how, t.id));
        }
        Step::Garbage { from, bytes } => {
            let mut bytes = bytes.clone();
            fix_crc(&mut bytes);
            node.handle_datagram(*now, from.addr(t.addr), &bytes);
        }
        Step::Advance { ms } => {
            *now += Duration::from_millis((*ms).into());
            node.handle_timeout(*now);
        }
        Step::Fire => {
            if let Some(at) = node.poll_timeout() {
                *now = (*now).max(at);
            }
            node.handle_timeout(*now);
        }
        Step::Route { key, hint, len } => {
            let key = key.map(|k| k.id(t.id));
            let hint = hint.map(|h| w.handle(h));
            let len = usize::from(*len) % (max_payload + 2);
            let _ = node.route(*now, key, vec![0x5a; len], hint);
        }
        Step::Leave => node.leave(*now),
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster target
// ---------------------------------------------------------------------------------------------

/// Cluster node ids: spread over the ring, two of them close together.
pub(crate) fn cluster_ids(n: usize) -> Vec<Id> {
    [
        Id(0x1111_u128 << 112),
        Id(0x5555_u128 << 112),
        Id(0x5556_u128 << 112),
        Id(0x9999_u128 << 112),
        Id(0xdddd_u128 << 112),
    ][..n]
        .to_vec()
}

/// The attacker's own address.
pub(crate) fn attacker_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, 66), 6666))
}

/// One step of the cluster target.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum ClusterStep {
    /// The next event happens (a datagram arrives or a timer fires).
    Next,
    /// The `i`-th datagram in flight is lost.
    Drop(u8),
    /// The `i`-th datagram in flight is delayed by `ms`.
    Delay { i: u8, ms: u16 },
    /// The `i`-th datagram in flight arrives twice.
    Duplicate(u8),
    /// The `i`-th datagram in flight also goes to node `to`, as if from where it came.
    Redirect { i: u8, to: u8 },
    /// The attacker sends node `to` a well-formed frame from `from` (its own address, a third
    /// party's, or a member's: UDP source addresses are not authenticated).
    Inject {
        to: u8,
        from: AddrSpec,
        sender: SenderSpec,
        msg: MsgSpec,
    },
    /// The attacker answers a datagram a node sent outside the cluster (to an address it named).
    Answer { to: u8, answer: AnswerSpec },
    /// A spoiled frame to node `to`.
    Spoiled {
        to: u8,
        from: AddrSpec,
        msg: MsgSpec,
        how: Spoil,
    },
    /// Time passes by `ms` (every event in between happens).
    Advance { ms: u16 },
    /// Node `i` routes a message.
    Route {
        i: u8,
        key: Option<IdSpec>,
        hint: Option<HandleSpec>,
        len: u16,
    },
    /// Node `i` leaves, or crashes.
    Leave { i: u8, crash: bool },
}

/// An input of the cluster target.
#[derive(Arbitrary, Debug)]
pub(crate) struct ClusterInput {
    /// 3–5 nodes.
    pub(crate) nodes: u8,
    /// Node 0 starts alone; node `i > 0` joins through node `via[i] % i`.
    pub(crate) via: [u8; 4],
    /// Let the joins run for 5 s (undisturbed) before the steps, so most inputs start from a
    /// formed overlay.
    pub(crate) settle: bool,
    pub(crate) steps: Vec<ClusterStep>,
}

/// Cluster steps read from one input at most, and the virtual time one run may cover.
pub(crate) const MAX_CLUSTER_STEPS: usize = 300;
const MAX_CLUSTER_TIME: Duration = Duration::from_secs(600);

/// Runs one input of the cluster target: 3–5 nodes with [`config`] (ids from [`cluster_ids`])
/// in [`Cluster`], an attacker injecting frames and the network dropping, delaying, duplicating
/// and redirecting datagrams; every live node's invariants ([`check_node`]) after every step,
/// and every datagram a node sent checked ([`check_datagram`]).
pub(crate) fn run_cluster(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let Ok(input) = ClusterInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return reached;
    };
    let n = 3 + usize::from(input.nodes % 3);
    let ids = cluster_ids(n);
    let mut c = Cluster::with_config(
        &ids,
        &Config {
            id: None,
            ..config()
        },
    );
    c.start_alone(0);
    for i in 1..n {
        c.join(i, usize::from(input.via[i - 1]) % i);
    }
    if input.settle {
        c.drive_for(Duration::from_secs(5));
    }
    let mut worlds: Vec<World> = (0..n)
        .map(|i| World::new(NodeHandle::new(ids[i], cluster_addr(i))))
        .collect();
    let mut seen_outside = 0;
    check_cluster(&mut c, &mut worlds, &mut seen_outside, n);
    for step in input.steps.iter().take(MAX_CLUSTER_STEPS) {
        if c.now() > Instant::ZERO + MAX_CLUSTER_TIME {
            break;
        }
        cluster_step(&mut c, &mut worlds, n, step);
        check_cluster(&mut c, &mut worlds, &mut seen_outside, n);
        for i in (0..n).filter(|&i| c.is_live(i)) {
            reached.note(c.node(i), Out::default());
        }
    }
    reached
}

fn live(c: &Cluster, n: usize, i: u8) -> Option<usize> {
    let i = usize::from(i) % n;
    c.is_live(i).then_some(i)
}

fn cluster_step(c: &mut Cluster, worlds: &mut [World], n: usize, step: &ClusterStep) {
    let now = c.now();
    let pick =
        |c: &Cluster, i: u8| (!c.in_flight.is_empty()).then(|| usize::from(i) % c.in_flight.len());
    match step {
        ClusterStep::Next => {
            c.step(now + Duration::from_secs(10));
        }
        ClusterStep::Drop(i) => {
            if let Some(i) = pick(c, *i) {
                c.in_flight.remove(i);
            }
        }
        ClusterStep::Delay { i, ms } => {
            if let Some(i) = pick(c, *i) {
                c.in_flight[i].at += Duration::from_millis((*ms).into());
                c.in_flight.sort_by_key(|d| d.at);
            }
        }
        ClusterStep::Duplicate(i) => {
            if let Some(i) = pick(c, *i) {
                let d = c.in_flight[i].clone();
                c.in_flight.insert(i + 1, d);
            }
        }
        ClusterStep::Redirect { i, to } => {
            if let (Some(i), Some(to)) = (pick(c, *i), live(c, n, *to)) {
                let d = c.in_flight[i].clone();
                c.inject(to, d.from, &d.data);
            }
        }
        ClusterStep::Inject {
            to,
            from,
            sender,
            msg,
        } => {
            if let Some(to) = live(c, n, *to) {
                let w = &mut worlds[to];
                let from = match from {
                    AddrSpec::Target => attacker_addr(),
                    a => a.addr(attacker_addr()),
                };
                let msg = msg.build(w, c.node(to).config().max_payload);
                let sender = w.sender(from, *sender);
                c.inject(to, from, &frame(sender, &msg));
            }
        }
        ClusterStep::Answer { to, answer: a } => {
            if let Some(to) = live(c, n, *to) {
                if let Some((from, sender, msg)) = answer(&mut worlds[to], a) {
                    c.inject(to, from, &frame(sender, &msg));
                }
            }
        }
        ClusterStep::Spoiled { to, from, msg, how } => {
            if let Some(to) = live(c, n, *to) {
                let w = &mut worlds[to];
                let from = from.addr(attacker_addr());
                let msg = msg.build(w, c.node(to).config().max_payload);
                let sender = w.sender(from, SenderSpec::Expected);
                c.inject(to, from, &spoil(frame(sender, &msg), *how, w.target().id));
            }
        }
        ClusterStep::Advance { ms } => c.drive_for(Duration::from_millis((*ms).into())),
        ClusterStep::Route { i, key, hint, len } => {
            if let Some(i) = live(c, n, *i) {
                let w = &mut worlds[i];
                let t = w.target();
                let key = key.map(|k| k.id(t.id));
                let hint = hint.map(|h| w.handle(h));
                let max = c.node(i).config().max_payload;
                let len = usize::from(*len) % (max + 2);
                let _ = c.node_mut(i).route(now, key, vec![0x5a; len], hint);
                c.pump(i);
            }
        }
        ClusterStep::Leave { i, crash } => {
            // Keep two nodes, so there is an overlay left to attack.
            let live_count = (0..n).filter(|&j| c.is_live(j)).count();
            if let Some(i) = live(c, n, *i).filter(|_| live_count > 2) {
                if *crash {
                    c.crash(i);
                } else {
                    c.leave(i);
                }
            }
        }
    }
}

/// Every live node's invariants; every datagram in flight or sent outside is a good frame from
/// its sender; what nodes sent outside the cluster is recorded so the attacker can answer it.
fn check_cluster(c: &mut Cluster, worlds: &mut [World], seen_outside: &mut usize, n: usize) {
    let cfg = config();
    for i in 0..n {
        if c.is_live(i) {
            check_node(c.node(i));
        }
    }
    let sender_of = |from: SocketAddr| (0..n).find(|&i| cluster_addr(i) == from);
    for d in &c.in_flight {
        if let Some(i) = sender_of(d.from) {
            check_datagram(worlds[i].target().id, &cfg, &d.data);
        }
    }
    for d in &c.outside[*seen_outside..] {
        let i = sender_of(d.from).expect("only nodes send outside");
        let msg = check_datagram(worlds[i].target().id, &cfg, &d.data);
        worlds[i].record(d.to, msg);
    }
    *seen_outside = c.outside.len();
    // Bound the harness's own log of outside datagrams (the checks above read only new ones).
    if c.outside.len() > 4096 {
        c.outside.clear();
        *seen_outside = 0;
    }
    let _ = c.take_events();
}
