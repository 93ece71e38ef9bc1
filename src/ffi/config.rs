//! The opaque configuration builder: `pastry_config_new`, `pastry_config_set_*`,
//! `pastry_config_free`.
//!
//! Every setter checks its value at once (`PASTRY_ERR_INVALID_CONFIG`, leaving the builder
//! unchanged), so a builder always holds a valid configuration.

use core::ffi::c_char;
use core::net::SocketAddr;

use super::error::pastry_result::{self, *};
use super::id::pastry_id;
use crate::id::DigitBits;
use crate::node::Config;
use crate::runtime::NodeConfig;
use crate::time::Duration;

/// The largest payload limit `pastry_config_set_max_payload` accepts: what fits a UDP datagram
/// with the frame around it.
pub const PASTRY_MAX_PAYLOAD_LIMIT: usize = 65_379;

/// The default payload limit (`pastry_config_set_max_payload`): 16 KiB.
pub const PASTRY_DEFAULT_MAX_PAYLOAD: usize = 16_384;

/// The default budget of messages in flight per runtime node
/// (`pastry_config_set_max_in_flight`).
pub const PASTRY_DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// The default byte budget of a node (`pastry_config_set_max_buffer_bytes`): 8 MiB.
pub const PASTRY_DEFAULT_MAX_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// The smallest byte budget `pastry_config_set_max_buffer_bytes` accepts: 256 KiB.
pub const PASTRY_MIN_BUFFER_BYTES: usize = 256 * 1024;

/// The largest budget of messages in flight `pastry_config_set_max_in_flight` accepts.
pub const PASTRY_MAX_IN_FLIGHT_LIMIT: usize = 65_536;

/// The longest period or timeout any `pastry_config_set_*_ms` setter accepts: one day, in
/// milliseconds.
pub const PASTRY_MAX_TIMER_MS: u64 = 86_400_000;

/// The most join attempts `pastry_config_set_join_timeout_ms` accepts.
pub const PASTRY_MAX_JOIN_ATTEMPTS: u32 = 1024;

/// The most hop retransmissions `pastry_config_set_retransmit` accepts.
pub const PASTRY_MAX_RETRANSMITS: u32 = 16;

/// A node configuration being built (opaque). Made by `pastry_config_new`, changed by the
/// `pastry_config_set_*` functions, read (copied) by `pastry_node_new` and
/// `pastry_node_new_driven`, released by `pastry_config_free`. One builder may configure any
/// number of nodes. Not thread-safe: do not change it while another thread uses it.
///
/// Defaults and ranges (each setter says its own):
///
/// | setting | default | range |
/// |---|---|---|
/// | bind | `127.0.0.1:0` (an ephemeral loopback port) | a specific address (not `0.0.0.0` / `::`) |
/// | id | random | any |
/// | digit bits `b` | 4 | 1, 2, 4 |
/// | leaf-set size | 16 | even, 2..=64 |
/// | neighbourhood size | 32 | 0..=256 |
/// | network | 0 | any `uint32_t` |
/// | payload limit | `PASTRY_DEFAULT_MAX_PAYLOAD` (16384) | 0..=`PASTRY_MAX_PAYLOAD_LIMIT` |
/// | seed | 0 (from the OS) | any |
/// | leaf probe period | 20000 ms | 1..=`PASTRY_MAX_TIMER_MS` |
/// | routing-table maintenance | 30000 ms | 1..=`PASTRY_MAX_TIMER_MS` |
/// | join timeout, attempts | 3000 ms, 8 | 1..=`PASTRY_MAX_TIMER_MS`, 1..=`PASTRY_MAX_JOIN_ATTEMPTS` |
/// | retransmission timeout initial, min, max | 500, 50, 10000 ms | 1..=`PASTRY_MAX_TIMER_MS`, min <= max |
/// | hop retransmissions | 5 | 0..=`PASTRY_MAX_RETRANSMITS` |
/// | messages in flight | `PASTRY_DEFAULT_MAX_IN_FLIGHT` (1024) | 1..=`PASTRY_MAX_IN_FLIGHT_LIMIT` |
#[derive(Debug)]
pub struct pastry_config {
    _private: [u8; 0],
}

/// The builder behind a `pastry_config *`.
pub(crate) fn config_ref<'a>(p: *const pastry_config) -> Option<&'a NodeConfig> {
    // SAFETY: a non-NULL `pastry_config *` comes from `pastry_config_new` (a leaked
    // `Box<NodeConfig>`) and, by the header's contract, is not freed or changed during the
    // call.
    unsafe { p.cast::<NodeConfig>().as_ref() }
}

/// Creates a builder with the defaults and stores it in `*out`. Release it with
/// `pastry_config_free`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_new(out: *mut *mut pastry_config) -> pastry_result {
    ffi_boundary!("pastry_config_new", {
        let out = try_out!(out);
        let cfg = NodeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        out.write(Box::into_raw(Box::new(cfg)).cast());
        Ok(())
    })
}

/// Releases a builder. NULL is fine (nothing happens). Nodes made from it keep their copy.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_free(config: *mut pastry_config) {
    ffi_boundary_value!("pastry_config_free", {
        if !config.is_null() {
            // SAFETY: a non-NULL `pastry_config *` is a leaked `Box<NodeConfig>` from
            // `pastry_config_new`, freed once (the caller's contract).
            drop(unsafe { Box::from_raw(config.cast::<NodeConfig>()) });
        }
    })
}

/// Applies `f` to a copy of the builder's configuration and keeps the copy if it validates.
fn update(
    config: *mut pastry_config,
    f: impl FnOnce(&mut NodeConfig) -> Result<(), pastry_result>,
) -> Result<(), pastry_result> {
    // SAFETY: a non-NULL `pastry_config *` is a live `Box<NodeConfig>` from
    // `pastry_config_new`, used by this thread alone during the call (the header's contract).
    let cfg = match unsafe { config.cast::<NodeConfig>().as_mut() } {
        Some(c) => c,
        None => return Err(PASTRY_ERR_NULL_ARGUMENT),
    };
    let mut copy = cfg.clone();
    f(&mut copy)?;
    copy.node.validate()?;
    *cfg = copy;
    Ok(())
}

/// Sets a node field of the configuration (no other check than `Config::validate`).
fn set(config: *mut pastry_config, f: impl FnOnce(&mut Config)) -> Result<(), pastry_result> {
    update(config, |c| {
        f(&mut c.node);
        Ok(())
    })
}

/// Milliseconds as the crate's `Duration`; 0 or more than `PASTRY_MAX_TIMER_MS` is
/// `PASTRY_ERR_INVALID_CONFIG`.
fn millis(ms: u64) -> Result<Duration, pastry_result> {
    if ms == 0 || ms > PASTRY_MAX_TIMER_MS {
        return Err(PASTRY_ERR_INVALID_CONFIG);
    }
    Ok(Duration::from_micros(ms * 1_000))
}

/// Sets the UDP address to bind (`"0.0.0.0:4000"`, `"[::1]:0"`; port 0 picks a free port).
/// For a caller-driven node it is the address the node advertises to its peers: the address
/// the host's own socket receives on.
///
/// A node tells its peers the address it is bound to, so bind a specific address that they
/// can reach: `pastry_node_new` refuses an unspecified one (`0.0.0.0`, `::`, or the
/// IPv4-mapped `::ffff:0.0.0.0`) with `PASTRY_ERR_BAD_ADDRESS`, as `pastry_node_new_driven`
/// does (this setter accepts it, since a later setter call may change it).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_ADDRESS`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_bind(
    config: *mut pastry_config,
    addr: *const c_char,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_bind", {
        let text = try_str!(addr, PASTRY_ERR_BAD_ADDRESS);
        let a: SocketAddr = text.parse().map_err(|_| PASTRY_ERR_BAD_ADDRESS)?;
        update(config, |c| {
            c.bind = a;
            Ok(())
        })
    })
}

/// Sets the node's id; NULL restores the default (a random id, drawn when the node is
/// created). Ids must be unique within an overlay: a join with an id that a live member
/// already has is not answered, and fails with `PASTRY_ERR_JOIN_FAILED` once its attempts are
/// spent.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT` (config NULL).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_id(
    config: *mut pastry_config,
    id: *const pastry_id,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_id", {
        // SAFETY: the header's contract: NULL or a readable id for the call.
        let id = unsafe { id.as_ref() }.map(pastry_id::id);
        set(config, |c| c.id = id)
    })
}

/// Sets the digit width `b` in bits: 1, 2 or 4 (default 4). Every node of an overlay must use
/// the same.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_digit_bits(
    config: *mut pastry_config,
    b: u32,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_digit_bits", {
        let b = u8::try_from(b)
            .ok()
            .and_then(DigitBits::new)
            .ok_or(PASTRY_ERR_INVALID_CONFIG);
        update(config, |c| {
            c.node.b = b?;
            Ok(())
        })
    })
}

/// Sets the leaf-set size `L`: even, 2 to 64 (default 16). Replica sets have at most
/// `L/2 + 1` members.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_leaf_set_size(
    config: *mut pastry_config,
    size: u32,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_leaf_set_size", {
        set(config, |c| c.leaf_set_size = size as usize)
    })
}

/// Sets the neighbourhood-set size `M`: 0 to 256 (default 32).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_neighborhood_size(
    config: *mut pastry_config,
    size: u32,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_neighborhood_size", {
        set(config, |c| c.neighborhood_size = size as usize)
    })
}

/// Sets the overlay's network id (default 0): datagrams of other networks are dropped, so
/// several overlays can share hosts and ports.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_network(
    config: *mut pastry_config,
    network: u32,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_network", {
        set(config, |c| c.network = network)
    })
}

/// Sets the largest payload `pastry_route` accepts, in bytes: at most
/// `PASTRY_MAX_PAYLOAD_LIMIT` (default `PASTRY_DEFAULT_MAX_PAYLOAD`, 16384). Larger routes fail
/// with `PASTRY_ERR_PAYLOAD_TOO_LARGE`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_max_payload(
    config: *mut pastry_config,
    max: usize,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_max_payload", {
        set(config, |c| c.max_payload = max)
    })
}

/// Sets the seed of the node's random numbers (id, nonces, jitter). 0 (the default) draws a
/// seed from the operating system when the node is created; any other value makes the node's
/// random choices reproducible.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_seed(
    config: *mut pastry_config,
    seed: u64,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_seed", { set(config, |c| c.seed = seed) })
}

/// Sets the leaf-set probe period in milliseconds (default 20000, at most
/// `PASTRY_MAX_TIMER_MS`): how soon a silent leaf is checked, and so how fast a failed
/// neighbour is detected.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG` (0 or over the maximum).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_leaf_probe_period_ms(
    config: *mut pastry_config,
    ms: u64,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_leaf_probe_period_ms", {
        let d = millis(ms)?;
        set(config, |c| c.leaf_probe_period = d)
    })
}

/// Sets the routing-table maintenance period in milliseconds (default 30000, at most
/// `PASTRY_MAX_TIMER_MS`).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG` (0 or over the maximum).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_rt_maintenance_period_ms(
    config: *mut pastry_config,
    ms: u64,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_rt_maintenance_period_ms", {
        let d = millis(ms)?;
        set(config, |c| c.rt_maintenance_period = d)
    })
}

/// Sets how long a join waits for an answer before trying again, in milliseconds (default
/// 3000, at most `PASTRY_MAX_TIMER_MS`; doubled on each retry up to 8x), and the number of
/// attempts over the bootstrap list before the join fails (default 8, 1 to
/// `PASTRY_MAX_JOIN_ATTEMPTS`).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG` (0 or over a maximum).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_join_timeout_ms(
    config: *mut pastry_config,
    ms: u64,
    attempts: u32,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_join_timeout_ms", {
        let d = millis(ms)?;
        if attempts > PASTRY_MAX_JOIN_ATTEMPTS {
            return Err(PASTRY_ERR_INVALID_CONFIG);
        }
        set(config, |c| {
            c.join_timeout = d;
            c.join_attempts = attempts;
        })
    })
}

/// Sets the hop retransmission timeout in milliseconds: the value used before any round trip
/// is measured, and its bounds (defaults 500, 50, 10000; each at most `PASTRY_MAX_TIMER_MS`),
/// with the retransmissions of one hop before the next hop is declared failed and the message
/// rerouted (default 5, at most `PASTRY_MAX_RETRANSMITS`).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG` (0, over a maximum, or
/// `min > max`).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_retransmit(
    config: *mut pastry_config,
    initial_ms: u64,
    min_ms: u64,
    max_ms: u64,
    max_retries: u32,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_retransmit", {
        let (initial, min, max) = (millis(initial_ms)?, millis(min_ms)?, millis(max_ms)?);
        if max_retries > PASTRY_MAX_RETRANSMITS {
            return Err(PASTRY_ERR_INVALID_CONFIG);
        }
        set(config, |c| {
            c.rto_initial = initial;
            c.rto_min = min;
            c.rto_max = max;
            c.max_retries = max_retries;
        })
    })
}

/// Sets the budget of messages in flight of a runtime node: routed with `pastry_route` and
/// not yet finished (acknowledged by their root, delivered here, or reported undeliverable).
/// When it is spent, `pastry_route` returns `PASTRY_ERR_OVERLOADED` at once instead of
/// queueing more: wait for deliveries or `undeliverable` reports, then route again. 1 to
/// `PASTRY_MAX_IN_FLIGHT_LIMIT` (default `PASTRY_DEFAULT_MAX_IN_FLIGHT`). A caller-driven node
/// is bounded by its own limit of messages awaiting acknowledgement (8192).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG` (0 or over the maximum).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_max_in_flight(
    config: *mut pastry_config,
    max: usize,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_max_in_flight", {
        if !(1..=PASTRY_MAX_IN_FLIGHT_LIMIT).contains(&max) {
            return Err(PASTRY_ERR_INVALID_CONFIG);
        }
        update(config, |c| {
            c.max_in_flight = max;
            Ok(())
        })
    })
}

/// Sets the node's byte budget: routed messages it buffers (hops awaiting acknowledgement, its
/// own messages awaiting the root's, messages held while joining; each counted as its payload
/// plus about 160 bytes) and datagrams queued for sending, together. At least
/// `PASTRY_MIN_BUFFER_BYTES` (default `PASTRY_DEFAULT_MAX_BUFFER_BYTES`, 8 MiB). When it is
/// spent, `pastry_route` returns `PASTRY_ERR_OVERLOADED`, messages passing through are dropped
/// and reported to their source (`PASTRY_UNDELIVERABLE_OVERLOAD`), and datagrams are dropped
/// and counted (`outbox_drops`), so no flood grows a node's memory past it.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_CONFIG` (below the minimum).
#[no_mangle]
pub unsafe extern "C" fn pastry_config_set_max_buffer_bytes(
    config: *mut pastry_config,
    bytes: usize,
) -> pastry_result {
    ffi_boundary!("pastry_config_set_max_buffer_bytes", {
        set(config, |c| c.max_buffer_bytes = bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::MAX_PAYLOAD_LIMIT;

    #[test]
    fn limit_macro_matches_the_node() {
        assert_eq!(PASTRY_MAX_PAYLOAD_LIMIT, MAX_PAYLOAD_LIMIT);
        let d = crate::node::Config::default();
        assert_eq!(PASTRY_DEFAULT_MAX_PAYLOAD, d.max_payload);
        assert_eq!(PASTRY_DEFAULT_MAX_BUFFER_BYTES, d.max_buffer_bytes);
        assert_eq!(PASTRY_MIN_BUFFER_BYTES, crate::node::MIN_BUFFER_BYTES);
        assert_eq!(
            PASTRY_DEFAULT_MAX_IN_FLIGHT,
            crate::runtime::DEFAULT_MAX_IN_FLIGHT
        );
        assert_eq!(
            PASTRY_MAX_IN_FLIGHT_LIMIT,
            crate::runtime::MAX_IN_FLIGHT_LIMIT
        );
        assert_eq!(d.leaf_probe_period, Duration::from_millis(20_000));
        assert_eq!(d.rt_maintenance_period, Duration::from_millis(30_000));
    }

    #[test]
    fn setters_validate_and_leave_the_builder_unchanged_on_error() {
        let mut p = core::ptr::null_mut();
        // SAFETY: valid out-pointer; the builder is freed below.
        unsafe {
            assert_eq!(pastry_config_new(&mut p), PASTRY_OK);
            assert_eq!(pastry_config_set_leaf_set_size(p, 8), PASTRY_OK);
            assert_eq!(
                pastry_config_set_leaf_set_size(p, 7),
                PASTRY_ERR_INVALID_CONFIG
            );
            assert_eq!(config_ref(p).unwrap().node.leaf_set_size, 8);
            assert_eq!(
                pastry_config_set_digit_bits(p, 3),
                PASTRY_ERR_INVALID_CONFIG
            );
            assert_eq!(
                pastry_config_set_retransmit(p, 100, 200, 100, 3),
                PASTRY_ERR_INVALID_CONFIG
            );
            assert_eq!(
                pastry_config_set_max_payload(p, PASTRY_MAX_PAYLOAD_LIMIT + 1),
                PASTRY_ERR_INVALID_CONFIG
            );
            assert_eq!(
                pastry_config_set_max_buffer_bytes(p, PASTRY_MIN_BUFFER_BYTES - 1),
                PASTRY_ERR_INVALID_CONFIG
            );
            assert_eq!(
                pastry_config_set_max_buffer_bytes(p, PASTRY_MIN_BUFFER_BYTES),
                PASTRY_OK
            );
            assert_eq!(
                config_ref(p).unwrap().node.max_buffer_bytes,
                PASTRY_MIN_BUFFER_BYTES
            );
            assert_eq!(
                pastry_config_set_bind(p, c"nonsense".as_ptr()),
                PASTRY_ERR_BAD_ADDRESS
            );
            assert_eq!(pastry_config_set_bind(p, c"[::1]:0".as_ptr()), PASTRY_OK);
            assert_eq!(
                pastry_config_set_network(core::ptr::null_mut(), 1),
                PASTRY_ERR_NULL_ARGUMENT
            );
            pastry_config_free(p);
            pastry_config_free(core::ptr::null_mut());
        }
    }
}
