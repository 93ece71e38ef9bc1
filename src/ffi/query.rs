//! The KBR queries (`pastry_node_local_lookup`, `pastry_node_neighbor_set`,
//! `pastry_node_replica_set`, `pastry_node_range`) and the node's counters
//! (`pastry_node_stats`).
//!
//! Lists are written into the caller's array: `*count` holds its capacity on entry and the
//! number of entries written on success (best first; a longer answer is cut to the
//! capacity).

use super::callbacks::with_current_node;
use super::error::pastry_result::{self, *};
use super::id::{pastry_id, pastry_peer};
use super::inner::{node_ref, Mode, NodeInner};
use super::node::pastry_node;
use crate::id::{Id, NodeHandle};
use crate::node::Node;

/// Runs the query `f` on the node: directly from inside the node's own `deliver` / `update` /
/// `undeliverable` upcall, through the runtime's loop otherwise, or under a caller-driven
/// node's lock.
fn query<T: Send + 'static>(
    inner: &NodeInner,
    f: impl FnOnce(&Node) -> T + Send + 'static,
) -> Result<T, pastry_result> {
    match &inner.mode {
        Mode::Runtime(_) => {
            let h = inner.handle()?;
            let mut f = Some(f);
            let me: *const NodeInner = inner;
            let direct = with_current_node(me, |n| f.take().map(|f| f(n)));
            match (direct.flatten(), f) {
                (Some(v), _) => Ok(v),
                (None, Some(f)) => Ok(h.call(f)?),
                (None, None) => Err(PASTRY_ERR_PANIC),
            }
        }
        Mode::Driven(st) => Ok(f(&st.lock()?.node)),
    }
}

/// Copies `list` into the caller's array `out` (capacity `*count`) and sets `*count`.
fn write_peers(
    out: *mut pastry_peer,
    count: *mut usize,
    list: &[NodeHandle],
) -> Result<(), pastry_result> {
    let count = try_mut!(count);
    let n = list.len().min(*count);
    let dst = try_slice_mut!(out, n);
    for (d, h) in dst.iter_mut().zip(list) {
        *d = (*h).into();
    }
    *count = n;
    Ok(())
}

/// The capacity the caller gave in `*count` (checked before the query runs).
fn capacity(out: *mut pastry_peer, count: *mut usize) -> Result<usize, pastry_result> {
    let cap = *try_ref!(count);
    if cap > 0 && out.is_null() {
        return Err(PASTRY_ERR_NULL_ARGUMENT);
    }
    Ok(cap)
}

/// Writes up to `*count` next-hop candidates toward `*key` into `out`, best first (the Common
/// API `local_lookup`); with `safe`, only leaf-set members (probed most often). When this node
/// is the key's root no node is closer: it returns `PASTRY_OK` with `*count` set to 0.
///
/// Callable from any thread, and from the node's own `deliver` / `update` / `undeliverable`
/// upcalls. Blocks until the node's loop answers (a runtime node).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_STOPPED`, `PASTRY_ERR_IN_CALLBACK` (from
/// `forward`, or from an upcall of another node of the same runtime).
#[no_mangle]
pub unsafe extern "C" fn pastry_node_local_lookup(
    node: *const pastry_node,
    key: *const pastry_id,
    safe: bool,
    out: *mut pastry_peer,
    count: *mut usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_local_lookup", {
        let inner = node_ref(node)?;
        let key = try_ref!(key).id();
        let num = capacity(out, count)?;
        let list = query(&inner, move |n| n.local_lookup(key, num, safe))?;
        write_peers(out, count, &list)
    })
}

/// Writes up to `*count` leaf-set members into `out`, nearest first, alternating sides (the
/// Common API `neighborSet`).
///
/// # Errors
/// As `pastry_node_local_lookup`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_neighbor_set(
    node: *const pastry_node,
    out: *mut pastry_peer,
    count: *mut usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_neighbor_set", {
        let inner = node_ref(node)?;
        let num = capacity(out, count)?;
        let list = query(&inner, move |n| n.neighbor_set(num))?;
        write_peers(out, count, &list)
    })
}

/// Writes the nodes that would become root of `*key` if closer ones failed into `out`,
/// closest first, this node included when it is among them (the Common API `replicaSet`): at
/// most `max_rank + 1`, at most `L/2 + 1` (L: the leaf-set size) and at most `*count`.
/// Meaningful when the key is within the leaf set's range (this node is near its root).
///
/// # Errors
/// As `pastry_node_local_lookup`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_replica_set(
    node: *const pastry_node,
    key: *const pastry_id,
    max_rank: u32,
    out: *mut pastry_peer,
    count: *mut usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_replica_set", {
        let inner = node_ref(node)?;
        let key = try_ref!(key).id();
        capacity(out, count)?;
        let list = query(&inner, move |n| n.replica_set(key, max_rank as usize))?;
        write_peers(out, count, &list)
    })
}

/// Stores in `*lo` and `*hi` the arc of keys (clockwise from `lo` to `hi`, both included) for
/// which the node `*peer` (this node or a leaf-set member) is among the `rank + 1` numerically
/// closest nodes (the Common API `range`). Returns `PASTRY_NONE` when it cannot be determined
/// here (the node is unknown, or the leaf set does not reach far enough).
///
/// # Errors
/// As `pastry_node_local_lookup`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_range(
    node: *const pastry_node,
    peer: *const pastry_id,
    rank: u32,
    lo: *mut pastry_id,
    hi: *mut pastry_id,
) -> pastry_result {
    ffi_boundary!("pastry_node_range", {
        let inner = node_ref(node)?;
        let peer: Id = try_ref!(peer).id();
        let (lo, hi) = (try_out!(lo), try_out!(hi));
        let r = query(&inner, move |n| n.range(peer, rank as usize))?;
        let (a, b) = r.ok_or(PASTRY_NONE)?;
        lo.write(a.into());
        hi.write(b.into());
        Ok(())
    })
}

/// A node's counters (all monotone except `heap_bytes`), from `pastry_node_stats`.
///
/// Fields are only ever appended: pass `sizeof(pastry_stats)` to `pastry_node_stats`, and a
/// newer library fills the fields your header knows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct pastry_stats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent (queued for sending).
    pub datagrams_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams dropped because they did not decode.
    pub bad_frames: u64,
    /// Datagrams dropped because of another network id (or this node's own id as sender).
    pub foreign_frames: u64,
    /// Datagrams dropped because the node's send queue was full.
    pub outbox_drops: u64,
    /// Routed messages passed on to another node.
    pub forwarded: u64,
    /// Messages delivered at this node.
    pub delivered: u64,
    /// Hop retransmissions.
    pub retransmits: u64,
    /// Duplicate transmissions suppressed.
    pub duplicates: u64,
    /// Nodes declared failed.
    pub failures_detected: u64,
    /// Routed messages refused for lack of space.
    pub overload_drops: u64,
    /// Maintenance messages sent (not routed data, not joining).
    pub maintenance_msgs: u64,
    /// Upcalls that panicked inside the library (caught; the node kept running).
    pub upcall_panics: u64,
    /// Datagrams the operating system refused to send (runtime nodes).
    pub send_errors: u64,
    /// Datagrams dropped because too many waited for the socket (runtime nodes).
    pub send_drops: u64,
    /// Receive errors (runtime nodes).
    pub recv_errors: u64,
    /// Routes queued by `pastry_route` that the node then refused (runtime nodes).
    pub routes_refused: u64,
    /// Approximate heap bytes the node holds.
    pub heap_bytes: u64,
    /// Replies not sent to an address that has not proved itself, because they would have
    /// exceeded 3 times its bytes (or its datagrams) in: anti-amplification.
    pub amplification_drops: u64,
    /// Requests dropped because their source address exceeded its rate.
    pub rate_limited: u64,
    /// Address validations started (a small ping before a large answer such as a join reply).
    pub validations: u64,
    /// Requests dropped waiting for an address validation (no room for another).
    pub validation_drops: u64,
    /// Probes not sent: probe budget spent, a probe to that address already out, or the address
    /// stayed silent recently.
    pub probe_drops: u64,
    /// Routed messages dropped on arrival for breaking a limit (payload size, hop count).
    pub limit_drops: u64,
    /// Replies that answered no request of this node's.
    pub unsolicited: u64,
    /// Datagrams claiming a known node's id from another address (ignored).
    pub addr_conflicts: u64,
    /// Reports about a node (a leave) not from its own address: checked, not believed.
    pub unproven_reports: u64,
}

fn node_stats(n: &Node) -> pastry_stats {
    pastry_stats {
        heap_bytes: n.heap_bytes() as u64,
        ..stats_of(n.stats())
    }
}

/// Copies the node's counters into `*out`: the first `size` bytes of a `pastry_stats` (pass
/// `sizeof(pastry_stats)`; a larger size gets the whole struct, the rest untouched).
///
/// Callable from any thread, and from the node's own `deliver` / `update` / `undeliverable`
/// upcalls (as the KBR queries); not from `forward`, nor from an upcall of another node of the
/// same runtime (that would wait for the loop thread it runs on).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_INVALID_ARGUMENT` (`size` 0),
/// `PASTRY_ERR_STOPPED`, `PASTRY_ERR_IN_CALLBACK`.
#[no_mangle]
pub unsafe extern "C" fn pastry_node_stats(
    node: *const pastry_node,
    out: *mut pastry_stats,
    size: usize,
) -> pastry_result {
    ffi_boundary!("pastry_node_stats", {
        let inner = node_ref(node)?;
        if out.is_null() {
            return Err(PASTRY_ERR_NULL_ARGUMENT);
        }
        if size == 0 {
            return Err(PASTRY_ERR_INVALID_ARGUMENT);
        }
        let stats = match &inner.mode {
            Mode::Runtime(_) => {
                let h = inner.handle()?;
                let me: *const NodeInner = &*inner;
                // From inside the node's own deliver / update / undeliverable: read it directly.
                let s = match with_current_node(me, |n| h.stats_of(n)) {
                    Some(s) => s,
                    None => h.stats()?,
                };
                pastry_stats {
                    upcall_panics: s.upcall_panics,
                    send_errors: s.send_errors,
                    send_drops: s.send_drops,
                    recv_errors: s.recv_errors,
                    routes_refused: s.routes_refused,
                    heap_bytes: s.heap_bytes as u64,
                    ..stats_of(&s.node)
                }
            }
            Mode::Driven(st) => node_stats(&st.lock()?.node),
        };
        let n = size.min(core::mem::size_of::<pastry_stats>());
        let src = (&stats as *const pastry_stats).cast::<u8>();
        // SAFETY: `src` is a live local of `size_of::<pastry_stats>()` bytes and `n` does not
        // exceed it; by the contract `out` points to at least `size >= n` writable bytes
        // (checked non-NULL above); the regions cannot overlap.
        unsafe { core::ptr::copy_nonoverlapping(src, out.cast::<u8>(), n) };
        Ok(())
    })
}

/// The protocol counters of `crate::node::Stats`.
fn stats_of(s: &crate::node::Stats) -> pastry_stats {
    pastry_stats {
        datagrams_in: s.datagrams_in,
        datagrams_out: s.datagrams_out,
        bytes_out: s.bytes_out,
        bad_frames: s.bad_frames,
        foreign_frames: s.foreign_frames,
        outbox_drops: s.outbox_drops,
        forwarded: s.forwarded,
        delivered: s.delivered,
        retransmits: s.retransmits,
        duplicates: s.duplicates,
        failures_detected: s.failures_detected,
        overload_drops: s.overload_drops,
        maintenance_msgs: s.maintenance_msgs(),
        amplification_drops: s.amplification_drops,
        rate_limited: s.rate_limited,
        validations: s.validations,
        validation_drops: s.validation_drops,
        probe_drops: s.probe_drops,
        limit_drops: s.limit_drops,
        unsolicited: s.unsolicited,
        addr_conflicts: s.addr_conflicts,
        unproven_reports: s.unproven_reports,
        ..pastry_stats::default()
    }
}
