//! Fuzz target: `wire::decode` on arbitrary bytes (see `check.rs` for what is checked).
//!
//! Run: `cargo +nightly fuzz run decode` from `fuzz/`. The library is built with
//! `cfg(fuzzing)`, so the crc is not checked and mutations reach the body parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod check;

fuzz_target!(|data: &[u8]| check::check_decode(data));
