//! Fuzz target: a 3–5 node `pastry::sim::Cluster` with an attacker injecting frames and the
//! network dropping, delaying, duplicating and redirecting datagrams; see `steps.rs` for the
//! model and the invariants checked for every node after every step.
//!
//! Run: `cargo +nightly fuzz run cluster` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod steps;

fuzz_target!(|data: &[u8]| {
    steps::run_cluster(data);
});
