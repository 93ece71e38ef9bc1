//! `next_hop` over tables filled from a 100,000-id population (b = 4, |L| = 16).
#![allow(unsafe_code, missing_docs)] // the counting allocator needs unsafe; criterion macros lack docs
//!
//! A counting global allocator checks that the routing decision allocates nothing: the bench
//! prints the allocation count per call and panics if it is not zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};
use pastry::router::{local_lookup, next_hop};
use pastry::{DigitBits, Id, LeafSet, NodeHandle, Rng, RoutingTable};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn tables() -> (LeafSet, RoutingTable, Vec<Id>) {
    let mut rng = Rng::new(42);
    let own = Id(rng.next_u128());
    let mut leaf = LeafSet::new(own, 16);
    let mut rt = RoutingTable::new(own, DigitBits::FOUR);
    for i in 0..100_000u32 {
        let h = NodeHandle::new(
            Id(rng.next_u128()),
            SocketAddr::from((Ipv4Addr::LOCALHOST, (i % 60_000) as u16 + 1)),
        );
        leaf.insert(h);
        rt.insert(h, rng.below(200_000) as u32);
    }
    let keys: Vec<Id> = (0..4096).map(|_| Id(rng.next_u128())).collect();
    (leaf, rt, keys)
}

fn bench(c: &mut Criterion) {
    let (leaf, rt, keys) = tables();
    // Allocation check outside criterion's own bookkeeping.
    let before = ALLOCS.load(Ordering::Relaxed);
    for k in &keys {
        black_box(next_hop(black_box(*k), &leaf, &rt, |_| true));
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "next_hop heap allocations over {} calls: {allocs}",
        keys.len()
    );
    assert_eq!(allocs, 0, "next_hop allocated");

    let mut i = 0usize;
    c.bench_function("next_hop/100k_population", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            next_hop(black_box(keys[i]), &leaf, &rt, |_| true)
        })
    });
    // Keys inside the leaf-set range take rule 1.
    let near: Vec<Id> = keys
        .iter()
        .map(|k| leaf.own().wrapping_add(k.0 >> 100))
        .collect();
    c.bench_function("next_hop/leaf_range", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            next_hop(black_box(near[i]), &leaf, &rt, |_| true)
        })
    });
    let mut out = Vec::with_capacity(16);
    c.bench_function("local_lookup/8", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            local_lookup(black_box(keys[i]), 8, &leaf, &rt, &mut out);
            out.len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
