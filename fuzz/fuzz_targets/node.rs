//! Fuzz target: one `Node` driven by a sequence of steps from several fake peers (well-formed
//! frames of every type, answers echoing its nonces, garbage, timeouts, route calls, leave);
//! see `steps.rs` for the model and the invariants checked after every step.
//!
//! Run: `cargo +nightly fuzz run node` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod steps;

fuzz_target!(|data: &[u8]| {
    steps::run_node(data);
});
