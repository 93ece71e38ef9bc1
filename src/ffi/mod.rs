//! The stable C ABI: `extern "C"` functions over opaque handles, from which cbindgen generates
//! `include/pastry.h` (see `build.rs`). C, C++ (`bindings/cpp/pastry.hpp`) and Python
//! (`bindings/python`) applications use the overlay through it.
//!
//! # Conventions (the header's contract)
//!
//! - Every name starts with `pastry_` (functions, types) or `PASTRY_` (constants).
//! - Objects are opaque pointers made by a `_new` function and released by its `_free`
//!   function; `_free(NULL)` does nothing. Nothing the library hands out is released with libc
//!   `free`.
//! - Fallible functions return a [`pastry_result`](error::pastry_result) (a `uint32_t` with
//!   fixed numbers that are never reused) and write their out-parameters only when they return
//!   `PASTRY_OK`. `pastry_result_str` gives a static description of any code.
//! - Every pointer argument is checked for NULL (`PASTRY_ERR_NULL_ARGUMENT`) unless its
//!   documentation says NULL is allowed. Pointers that are not NULL must be valid for the
//!   duration of the call.
//! - No Rust panic crosses the boundary: every entry point runs inside a panic guard, and an
//!   internal bug is reported as `PASTRY_ERR_PANIC` (and logged), never an abort of the host.
//! - Callbacks (`pastry_callbacks`, `pastry_logger`) are `{userdata, functions…, drop}`
//!   bundles: `userdata` is the first argument of every call, and `drop(userdata)` runs exactly
//!   once, after the last call has returned. Pointers passed to a callback are valid only during
//!   that call.
//!
//! # Two ways to run a node
//!
//! - **With a runtime** (`pastry_runtime_new` + `pastry_node_new`): the library's event-loop
//!   thread owns the UDP socket and the timers, and calls the application's callbacks on that
//!   thread.
//! - **Caller-driven** (`pastry_node_new_driven`): no thread and no socket. The host feeds
//!   received datagrams (`pastry_node_handle_datagram`) and timeouts
//!   (`pastry_node_handle_timeout`), sends what `pastry_node_poll_transmit` gives, sleeps until
//!   `pastry_node_poll_timeout`, and takes deliveries and leaf-set changes from
//!   `pastry_node_poll_event` — for hosts that own their event loop (libuv, a game loop).
#![allow(unsafe_code)]
// The C names are the ABI: lower-case types, upper-case constants and enum variants.
#![allow(non_camel_case_types)]
// Every entry point has the same safety contract, stated once above and in the header's
// conventions (pointers NULL or valid for the call, handles from their `_new`, freed once);
// repeating it as a `# Safety` section on each would bury the C documentation.
#![allow(clippy::missing_safety_doc)]

#[macro_use]
mod guard;
mod inner;
mod sha256;

// The areas in the order the header presents them (cbindgen keeps the parse order; the blank
// lines keep rustfmt from sorting them).
pub mod version;

pub mod error;

pub mod id;

pub mod log;

pub mod config;

pub mod runtime;

pub mod node;

pub mod query;

pub mod callbacks;

pub mod driven;
