//! Robustness of `wire::decode` against hostile input: a seeded, deterministic fuzz run of
//! 1,000,000 inputs in total (random bytes, random bodies behind valid headers, and mutations of
//! valid frames of every type, half of them with the crc recomputed so the body parsers are
//! reached), checking for each input that
//!
//! - `decode` does not panic,
//! - it allocates at most a small multiple of the input's length (a counting allocator),
//! - a success re-encodes to exactly the input (the encoding is canonical) and decodes again to
//!   the same header and message.
//!
//! A failure prints the seed, the input number and the input in hex.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use pastry::wire::{
    decode, encode, join_flags, DecodeError, FrameHeader, Message, RoutedFlags, RowEntries,
    HEADER_LEN, MAX_LIST, MAX_ROWS, TRAILER_LEN,
};
use pastry::{Id, NodeHandle, Rng};

// ---- a counting allocator, to bound what one decode allocates ----

/// Counts the bytes requested on each thread (tests run on several threads).
///
/// This is the only `unsafe` outside `src/ffi/`: a `GlobalAlloc` cannot be written without it,
/// and the bound on decode allocations cannot be checked without a `GlobalAlloc`. It only
/// forwards to `System`.
struct Counting;

thread_local! {
    static REQUESTED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = REQUESTED.try_with(|c| c.set(c.get().saturating_add(bytes)));
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees carry over; the counting touches only a `Cell<usize>` and does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded unchanged; `ptr` came from `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn requested() -> usize {
    REQUESTED.with(Cell::get)
}

/// The most one decode may request: a small multiple of the datagram plus a little.
///
/// The worst case is a `JoinReply` full of empty rows: 3 wire bytes become one 32-byte
/// `RowEntries`.
fn allocation_bound(len: usize) -> usize {
    16 * len + 64
}

// ---- the budget: at least 1,000,000 inputs in all ----

const RANDOM_BYTES: u64 = 250_000;
const RANDOM_BODIES: u64 = 150_000;
const MUTATIONS_PER_TEST: u64 = 300_000;
const MUTATION_TESTS: u64 = 2;
const _: () =
    assert!(RANDOM_BYTES + RANDOM_BODIES + MUTATIONS_PER_TEST * MUTATION_TESTS >= 1_000_000);

// ---- random valid messages ----

fn random_handle(rng: &mut Rng) -> NodeHandle {
    let id = Id(rng.next_u128());
    let port = rng.below(65536) as u16;
    let addr = if rng.chance(0.5) {
        SocketAddr::new(Ipv4Addr::from(rng.next_u64() as u32).into(), port)
    } else {
        // No flowinfo or scope: they are not carried, so they would not round-trip.
        SocketAddrV6::new(Ipv6Addr::from(rng.next_u128()), port, 0, 0).into()
    };
    NodeHandle::new(id, addr)
}

/// Mostly short lists, sometimes long, rarely full.
fn random_len(rng: &mut Rng, cap: usize) -> usize {
    match rng.below(16) {
        0..=3 => 0,
        4..=11 => rng.below(4) as usize,
        12..=14 => rng.below(20) as usize,
        _ => rng.below(cap as u64 + 1) as usize,
    }
}

fn random_list(rng: &mut Rng) -> Vec<NodeHandle> {
    let n = random_len(rng, MAX_LIST);
    (0..n).map(|_| random_handle(rng)).collect()
}

fn random_row(rng: &mut Rng) -> RowEntries {
    RowEntries {
        row: rng.next_u64() as u8,
        nodes: random_list(rng),
    }
}

/// A random valid message of type `ty` (1..=14).
fn random_message(rng: &mut Rng, ty: u8) -> Message {
    let u8_ = |rng: &mut Rng| rng.next_u64() as u8;
    match ty {
        1 => Message::JoinRequest {
            joiner: random_handle(rng),
            join_id: rng.next_u64(),
            hops: u8_(rng),
        },
        2 => {
            let rows = if rng.chance(0.05) {
                // Many rows of short lists.
                let n = rng.below(MAX_ROWS as u64 + 1) as usize;
                (0..n)
                    .map(|r| RowEntries {
                        row: r as u8,
                        nodes: (0..rng.below(3)).map(|_| random_handle(rng)).collect(),
                    })
                    .collect()
            } else {
                (0..rng.below(5)).map(|_| random_row(rng)).collect()
            };
            Message::JoinReply {
                join_id: rng.next_u64(),
                flags: u8_(rng) & join_flags::KNOWN,
                rows,
                leaf_set: random_list(rng),
                neighbors: random_list(rng),
            }
        }
        3 => Message::LeafSetRequest {
            nonce: rng.next_u64(),
            leaf_set: random_list(rng),
        },
        4 => Message::LeafSetReply {
            nonce: rng.next_u64(),
            active: rng.chance(0.5),
            admitted: rng.chance(0.5),
            leaf_set: random_list(rng),
        },
        5 => Message::RowRequest { row: u8_(rng) },
        6 => Message::RowReply {
            row: random_row(rng),
        },
        7 => Message::Ping {
            nonce: rng.next_u64(),
            sent_at: rng.next_u64(),
            active: rng.chance(0.5),
        },
        8 => Message::Pong {
            nonce: rng.next_u64(),
            sent_at: rng.next_u64(),
        },
        9 => {
            let len = match rng.below(8) {
                0 => 0,
                1..=5 => rng.below(64),
                _ => rng.below(1400),
            };
            let mut payload = vec![0; len as usize];
            rng.fill(&mut payload);
            Message::Routed {
                msg_id: rng.next_u64(),
                key: Id(rng.next_u128()),
                source: random_handle(rng),
                hops: u8_(rng),
                flags: RoutedFlags(u8_(rng) & RoutedFlags::KNOWN),
                payload: Bytes::from(payload),
            }
        }
        10 => Message::Ack {
            msg_id: rng.next_u64(),
            hops: u8_(rng),
        },
        11 => Message::Leave {
            leaf_set: random_list(rng),
        },
        12 => Message::Undeliverable {
            msg_id: rng.next_u64(),
            key: Id(rng.next_u128()),
            reason: u8_(rng),
        },
        13 => Message::DeliveryAck {
            msg_id: rng.next_u64(),
        },
        14 => Message::Failed {
            node: random_handle(rng),
        },
        _ => unreachable!("message types are 1..=14"),
    }
}

/// Count fields of a frame: (frame offset, width in bytes).
type CountFields = Vec<(usize, usize)>;

/// Where the counts of an encoded `msg` are. Computed from the layout independently of the
/// codec.
fn count_fields(msg: &Message) -> CountFields {
    fn handle_len(h: &NodeHandle) -> usize {
        16 + 1 + if h.addr.is_ipv4() { 4 } else { 16 } + 2
    }
    fn list(pos: &mut usize, nodes: &[NodeHandle], out: &mut CountFields) {
        out.push((*pos, 2));
        *pos += 2 + nodes.iter().map(handle_len).sum::<usize>();
    }
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    match msg {
        Message::JoinReply {
            rows,
            leaf_set,
            neighbors,
            ..
        } => {
            pos += 9;
            out.push((pos, 1));
            pos += 1;
            for row in rows {
                pos += 1;
                list(&mut pos, &row.nodes, &mut out);
            }
            list(&mut pos, leaf_set, &mut out);
            list(&mut pos, neighbors, &mut out);
        }
        Message::LeafSetRequest { leaf_set, .. } => {
            pos += 8;
            list(&mut pos, leaf_set, &mut out);
        }
        Message::LeafSetReply { leaf_set, .. } => {
            pos += 10;
            list(&mut pos, leaf_set, &mut out);
        }
        Message::RowReply { row } => {
            pos += 1;
            list(&mut pos, &row.nodes, &mut out);
        }
        Message::Leave { leaf_set } => list(&mut pos, leaf_set, &mut out),
        Message::Routed { source, .. } => out.push((pos + 8 + 16 + handle_len(source) + 2, 4)),
        _ => {}
    }
    out
}

/// Valid frames of every type, each with its count fields.
fn frame_pool(rng: &mut Rng, per_type: usize) -> Vec<(Vec<u8>, CountFields)> {
    let mut pool = Vec::new();
    for ty in 1..=14 {
        for _ in 0..per_type {
            let msg = random_message(rng, ty);
            let mut frame = Vec::new();
            encode(rng.next_u64() as u32, Id(rng.next_u128()), &msg, &mut frame);
            pool.push((frame, count_fields(&msg)));
        }
    }
    pool
}

// ---- the check applied to every input ----

/// What the inputs did, to show that every way of failing (and succeeding) was reached.
#[derive(Default)]
struct Outcomes {
    inputs: u64,
    by_kind: BTreeMap<&'static str, u64>,
}

fn kind(result: &Result<(FrameHeader, Message), DecodeError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(DecodeError::Truncated) => "Truncated",
        Err(DecodeError::BadMagic) => "BadMagic",
        Err(DecodeError::UnsupportedVersion(_)) => "UnsupportedVersion",
        Err(DecodeError::UnknownType(_)) => "UnknownType",
        Err(DecodeError::BadChecksum) => "BadChecksum",
        Err(DecodeError::ListTooLong) => "ListTooLong",
        Err(DecodeError::TooManyRows) => "TooManyRows",
        Err(DecodeError::BadAddressFamily(_)) => "BadAddressFamily",
        Err(DecodeError::BadFlags) => "BadFlags",
        Err(DecodeError::BadBool) => "BadBool",
        Err(DecodeError::PayloadLength) => "PayloadLength",
        Err(DecodeError::TrailingBytes) => "TrailingBytes",
        Err(_) => "other",
    }
}

impl Outcomes {
    /// Decodes `input` and checks everything the module doc promises.
    fn check(&mut self, seed: u64, input: &[u8], scratch: &mut Vec<u8>) {
        let before = requested();
        let result = catch_unwind(AssertUnwindSafe(|| decode(input)));
        let allocated = requested() - before;
        let fail = |what: &str| -> ! {
            panic!(
                "{what}\nseed {seed}, input #{}, {} bytes: {}",
                self.inputs,
                input.len(),
                hex(input)
            )
        };
        let Ok(result) = result else {
            fail("decode panicked")
        };
        if allocated > allocation_bound(input.len()) {
            fail(&format!("decode requested {allocated} bytes"));
        }
        if let Ok((header, msg)) = &result {
            if header.msg_type != msg.message_type() {
                fail("header type differs from the message's");
            }
            encode(header.network, header.sender, msg, scratch);
            if scratch[..] != *input {
                fail(&format!("re-encoded differently: {}", hex(scratch)));
            }
            if decode(scratch).as_ref() != Ok(&(*header, msg.clone())) {
                fail("re-encoded frame decodes differently");
            }
        }
        self.inputs += 1;
        *self.by_kind.entry(kind(&result)).or_default() += 1;
    }

    fn assert_reached(&self, kinds: &[&str]) {
        // Shown with `--nocapture`.
        eprintln!("{} inputs: {:?}", self.inputs, self.by_kind);
        for k in kinds {
            assert!(
                self.by_kind.get(k).copied().unwrap_or(0) > 0,
                "no input gave {k}: {:?}",
                self.by_kind
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fix_crc(frame: &mut [u8]) {
    if frame.len() >= HEADER_LEN + TRAILER_LEN {
        let (covered, trailer) = frame.split_at_mut(frame.len() - TRAILER_LEN);
        trailer.copy_from_slice(&crc32fast::hash(covered).to_be_bytes());
    }
}

// ---- the tests ----

/// Random byte strings of random length `0..1500`.
#[test]
fn random_bytes() {
    let seed = 0x5eed_0001;
    let mut rng = Rng::new(seed);
    let (mut out, mut buf, mut scratch) = (Outcomes::default(), vec![0u8; 1500], Vec::new());
    for _ in 0..RANDOM_BYTES {
        let len = rng.below(1500) as usize;
        rng.fill(&mut buf[..len]);
        out.check(seed, &buf[..len], &mut scratch);
    }
    assert_eq!(out.inputs, RANDOM_BYTES);
    out.assert_reached(&["Truncated", "BadMagic"]);
}

/// Random bodies of random length behind a valid header (any type byte, some unknown), with a
/// valid crc: every body parser gets noise.
#[test]
fn random_bodies_behind_valid_headers() {
    let seed = 0x5eed_0002;
    let mut rng = Rng::new(seed);
    let (mut out, mut buf, mut scratch) = (Outcomes::default(), Vec::new(), Vec::new());
    for _ in 0..RANDOM_BODIES {
        // Mostly short bodies: noise rarely parses far.
        let body = if rng.chance(0.9) {
            rng.below(64)
        } else {
            rng.below(1500)
        } as usize;
        buf.clear();
        buf.resize(HEADER_LEN + body + TRAILER_LEN, 0);
        rng.fill(&mut buf);
        buf[..2].copy_from_slice(b"Py");
        buf[2] = pastry::wire::VERSION;
        buf[3] = rng.below(15) as u8;
        fix_crc(&mut buf);
        out.check(seed, &buf, &mut scratch);
    }
    assert_eq!(out.inputs, RANDOM_BODIES);
    out.assert_reached(&[
        "ok",
        "Truncated",
        "UnknownType",
        "TrailingBytes",
        "BadFlags",
    ]);
}

/// One random mutation of `buf`; `counts` are the frame's count fields before mutating.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, counts: &[(usize, usize)]) {
    let pos = |rng: &mut Rng, buf: &Vec<u8>| rng.below(buf.len() as u64) as usize;
    match rng.below(8) {
        // Bit flip.
        0 if !buf.is_empty() => {
            let i = pos(rng, buf);
            buf[i] ^= 1 << rng.below(8);
        }
        // Byte overwrite, with an interesting or a random value.
        1 if !buf.is_empty() => {
            let i = pos(rng, buf);
            const VALUES: [u8; 8] = [0, 1, 2, 4, 6, 0x7f, 0x80, 0xff];
            buf[i] = if rng.chance(0.5) {
                VALUES[rng.below(8) as usize]
            } else {
                rng.next_u64() as u8
            };
        }
        // Truncation.
        2 => {
            let len = rng.below(buf.len() as u64 + 1) as usize;
            buf.truncate(len);
        }
        // Extension with random bytes.
        3 => {
            let n = 1 + rng.below(16) as usize;
            let start = buf.len();
            buf.resize(start + n, 0);
            rng.fill(&mut buf[start..]);
        }
        // Insert or delete a byte in the middle (shifts every later field).
        4 if !buf.is_empty() => {
            let i = pos(rng, buf);
            if rng.chance(0.5) {
                buf.remove(i);
            } else {
                buf.insert(i, rng.next_u64() as u8);
            }
        }
        // Another message type: the body is parsed as the wrong type.
        5 if buf.len() > 3 => buf[3] = 1 + rng.below(14) as u8,
        // Count tampering (the common case, as it is the most targeted).
        _ if !counts.is_empty() => {
            let (at, width) = counts[rng.below(counts.len() as u64) as usize];
            tamper_count(rng, buf, at, width);
        }
        _ => {}
    }
}

/// Rewrites the `width`-byte big-endian count at `at` with a value near a boundary.
fn tamper_count(rng: &mut Rng, buf: &mut [u8], at: usize, width: usize) {
    let Some(field) = buf.get_mut(at..at + width) else {
        return; // Cut off by an earlier truncation.
    };
    let current = field.iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
    let max = (1u64 << (8 * width)) - 1;
    let cap = match width {
        1 => MAX_ROWS as u64,
        2 => MAX_LIST as u64,
        _ => current,
    };
    let value = match rng.below(8) {
        0 => 0,
        1 => current + 1,
        2 => current.wrapping_sub(1),
        3 => cap,
        4 => cap + 1,
        5 => max,
        6 => current + rng.below(4),
        _ => rng.next_u64(),
    } & max;
    for (i, b) in field.iter_mut().enumerate() {
        *b = (value >> (8 * (width - 1 - i))) as u8;
    }
}

/// Mutations of valid frames of every type: one to three mutations each, and the crc
/// recomputed afterwards for half of them.
fn mutated_frames(seed: u64) {
    let mut rng = Rng::new(seed);
    let pool = frame_pool(&mut rng, 24);
    let (mut out, mut buf, mut scratch) = (Outcomes::default(), Vec::new(), Vec::new());
    for _ in 0..MUTATIONS_PER_TEST {
        let (frame, counts) = &pool[rng.below(pool.len() as u64) as usize];
        buf.clear();
        buf.extend_from_slice(frame);
        for _ in 0..=rng.below(3) {
            mutate(&mut rng, &mut buf, counts);
        }
        if rng.chance(0.5) {
            fix_crc(&mut buf);
        }
        out.check(seed, &buf, &mut scratch);
    }
    assert_eq!(out.inputs, MUTATIONS_PER_TEST);
    // Every error a frame can have, and successes, were reached.
    out.assert_reached(&[
        "ok",
        "Truncated",
        "BadMagic",
        "UnsupportedVersion",
        "UnknownType",
        "BadChecksum",
        "ListTooLong",
        "TooManyRows",
        "BadAddressFamily",
        "BadFlags",
        "BadBool",
        "PayloadLength",
        "TrailingBytes",
    ]);
}

#[test]
fn mutated_frames_a() {
    mutated_frames(0x5eed_0003);
}

#[test]
fn mutated_frames_b() {
    mutated_frames(0x5eed_0004);
}

/// Random valid messages of every type round-trip, and decoding them stays within the
/// allocation bound.
#[test]
fn random_messages_round_trip() {
    let seed = 0x5eed_0005;
    let mut rng = Rng::new(seed);
    let (mut out, mut frame, mut scratch) = (Outcomes::default(), Vec::new(), Vec::new());
    for i in 0..12_000u64 {
        let msg = random_message(&mut rng, (i % 13) as u8 + 1);
        let (network, sender) = (rng.next_u64() as u32, Id(rng.next_u128()));
        encode(network, sender, &msg, &mut frame);
        assert_eq!(frame.len(), HEADER_LEN + msg.buffer_len() + TRAILER_LEN);
        let (header, back) = decode(&frame).unwrap_or_else(|e| panic!("{e}: {msg:?}"));
        assert_eq!(
            (header.network, header.sender, &back),
            (network, sender, &msg)
        );
        out.check(seed, &frame, &mut scratch);
    }
    assert_eq!(out.by_kind.get("ok"), Some(&12_000));
}

/// The allocation check itself works: a decode that keeps a big payload is charged for it, and
/// the bound would catch a decoder that trusted a count.
#[test]
fn allocation_counting_works() {
    let before = requested();
    let v: Vec<u8> = Vec::with_capacity(1000);
    assert!(requested() - before >= 1000);
    drop(v);
    // A Vec sized by a 16-bit count alone, as a careless decoder would, breaks the bound for a
    // datagram that only carries the count.
    let careless = 0xffff * std::mem::size_of::<NodeHandle>();
    assert!(careless > allocation_bound(HEADER_LEN + 2 + TRAILER_LEN));
}
