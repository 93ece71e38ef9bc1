//! Wire codec benchmarks: encode and decode (crc included) of `Routed` frames.
//!
//! Run with `cargo bench --bench wire`.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use pastry::wire::{decode, encode, Message, RoutedFlags};
use pastry::{Id, NodeHandle};

fn routed(payload_len: usize) -> Message {
    Message::Routed {
        msg_id: 0x0123_4567_89ab_cdef,
        key: Id(0xfedc_ba98_7654_3210_0123_4567_89ab_cdef),
        source: NodeHandle::new(
            Id(0x1111_2222_3333_4444_5555_6666_7777_8888),
            SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 4000),
        ),
        hops: 3,
        flags: RoutedFlags(RoutedFlags::DIRECT),
        payload: Bytes::from(vec![0xab; payload_len]),
    }
}

const SIZES: [(usize, &str); 2] = [(64, "64B"), (1024, "1KiB")];

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_routed");
    for (len, name) in SIZES {
        let msg = routed(len);
        // One reused buffer, as a node would: encode allocates nothing once it is big enough.
        let mut out = Vec::with_capacity(2048);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &msg, |b, msg| {
            b.iter(|| {
                encode(black_box(42), black_box(Id(7)), black_box(msg), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_routed");
    for (len, name) in SIZES {
        let mut frame = Vec::new();
        encode(42, Id(7), &routed(len), &mut frame);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
            // Includes the crc check and copying the payload into a fresh `Bytes`.
            b.iter(|| decode(black_box(frame)).expect("a valid frame"))
        });
    }
    group.finish();
}

// `criterion_group!` defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_encode, super::bench_decode);
}
criterion_main!(group::benches);
