//! What a `pastry_node *` stands for: not an address but a handle — a slot index and a
//! generation — into one process-wide table of `Arc<NodeInner>`. The library never
//! dereferences a `pastry_node *`.
//!
//! Every call looks its handle up (a read lock held for the lookup only) and holds a clone of
//! the `Arc` for its duration, so `pastry_node_free` on another thread cannot free the node
//! under a call in progress: it removes the entry (bumping the slot's generation), and the
//! node is dropped when the last call holding it returns. A handle used after its free (or
//! twice freed, or never made) is found nowhere in the table and refused with
//! `PASTRY_ERR_INVALID_ARGUMENT`, never followed.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use super::driven::DrivenState;
use super::error::pastry_result::{self, *};
use super::node::pastry_node;
use crate::id::NodeHandle;
use crate::runtime::Handle;

/// The state behind one `pastry_node *`.
pub(crate) struct NodeInner {
    /// The largest payload `pastry_route` accepts.
    pub(crate) max_payload: usize,
    pub(crate) mode: Mode,
    /// The handle value the application holds (set once the node is in the table, before
    /// any upcall can run: a node is idle until started through its handle).
    pub(crate) token: OnceLock<usize>,
}

/// How the node runs.
// One per node, already behind an `Arc`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Mode {
    /// On a runtime's event-loop thread. The handle is set right after the node is added (no
    /// upcall can run before: the node is idle until started through this handle).
    Runtime(OnceLock<Handle>),
    /// Driven by the application's own loop.
    Driven(DrivenState),
}

impl NodeInner {
    /// A node of `mode`, not yet in the table.
    pub(crate) fn new(max_payload: usize, mode: Mode) -> NodeInner {
        NodeInner {
            max_payload,
            mode,
            token: OnceLock::new(),
        }
    }

    /// The runtime handle, or `PASTRY_ERR_WRONG_MODE` for a caller-driven node.
    pub(crate) fn handle(&self) -> Result<&Handle, pastry_result> {
        match &self.mode {
            Mode::Runtime(h) => h.get().ok_or(PASTRY_ERR_STOPPED),
            Mode::Driven(_) => Err(PASTRY_ERR_WRONG_MODE),
        }
    }

    /// The caller-driven state, or `PASTRY_ERR_WRONG_MODE` for a runtime node.
    pub(crate) fn driven(&self) -> Result<&DrivenState, pastry_result> {
        match &self.mode {
            Mode::Driven(d) => Ok(d),
            Mode::Runtime(_) => Err(PASTRY_ERR_WRONG_MODE),
        }
    }

    /// The node as others address it.
    pub(crate) fn me(&self) -> Result<NodeHandle, pastry_result> {
        match &self.mode {
            Mode::Runtime(_) => self.handle().map(Handle::node_handle),
            Mode::Driven(d) => Ok(d.me),
        }
    }

    /// The `pastry_node *` the application holds for this node (passed to its upcalls).
    pub(crate) fn ptr(&self) -> *mut pastry_node {
        core::ptr::without_provenance_mut(self.token.get().copied().unwrap_or(0))
    }
}

/// Bits of a handle that hold the slot index (plus one, so no handle is NULL); the rest hold
/// the slot's generation.
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: usize = usize::MAX >> INDEX_BITS;

/// One slot of the table.
struct Entry {
    /// Bumped each time the slot is emptied, so an old handle never matches a new node.
    generation: usize,
    node: Option<Arc<NodeInner>>,
}

/// Every live node of the process.
struct Table {
    entries: Vec<Entry>,
    /// Empty slots, reused last-freed first.
    free: Vec<usize>,
}

static TABLE: RwLock<Table> = RwLock::new(Table {
    entries: Vec::new(),
    free: Vec::new(),
});

fn encode(index: usize, generation: usize) -> usize {
    (generation << INDEX_BITS) | (index + 1)
}

/// The slot index and generation of a handle (`None` for 0).
fn decode(h: usize) -> Option<(usize, usize)> {
    let i = h & INDEX_MASK;
    (i != 0).then(|| (i - 1, h >> INDEX_BITS))
}

/// Puts a new node in the table and hands its handle to the application.
pub(crate) fn into_ptr(inner: Arc<NodeInner>) -> *mut pastry_node {
    let mut t = TABLE.write();
    let index = match t.free.pop() {
        Some(i) => i,
        None => {
            t.entries.push(Entry {
                generation: 1,
                node: None,
            });
            t.entries.len() - 1
        }
    };
    // Index overflow would need 2^32 live nodes (2^16 on a 32-bit target).
    assert!(index < INDEX_MASK, "node table full");
    let h = encode(index, t.entries[index].generation);
    // The cell is new: `set` cannot fail.
    let _ = inner.token.set(h);
    t.entries[index].node = Some(inner);
    core::ptr::without_provenance_mut(h)
}

/// The node behind `p`, held for the call: `PASTRY_ERR_NULL_ARGUMENT` for NULL,
/// `PASTRY_ERR_INVALID_ARGUMENT` for a handle that is not (or no longer) a live node.
pub(crate) fn node_ref(p: *const pastry_node) -> Result<Arc<NodeInner>, pastry_result> {
    if p.is_null() {
        return Err(PASTRY_ERR_NULL_ARGUMENT);
    }
    let (index, generation) = decode(p.addr()).ok_or(PASTRY_ERR_INVALID_ARGUMENT)?;
    let t = TABLE.read();
    match t.entries.get(index) {
        Some(e) if e.generation == generation => e.node.clone().ok_or(PASTRY_ERR_INVALID_ARGUMENT),
        _ => Err(PASTRY_ERR_INVALID_ARGUMENT),
    }
}

/// Takes the node behind `p` out of the table (later calls with `p` are refused) and returns
/// it; `PASTRY_ERR_INVALID_ARGUMENT` when `p` is not a live node (freed already).
pub(crate) fn take_ptr(p: *mut pastry_node) -> Result<Arc<NodeInner>, pastry_result> {
    let (index, generation) = decode(p.addr()).ok_or(PASTRY_ERR_INVALID_ARGUMENT)?;
    let mut t = TABLE.write();
    let e = match t.entries.get_mut(index) {
        Some(e) if e.generation == generation && e.node.is_some() => e,
        _ => return Err(PASTRY_ERR_INVALID_ARGUMENT),
    };
    let node = e.node.take();
    e.generation = (e.generation + 1) & GENERATION_MASK;
    if e.generation == 0 {
        e.generation = 1;
    }
    t.free.push(index);
    drop(t);
    node.ok_or(PASTRY_ERR_INVALID_ARGUMENT)
}

/// Whether `p` is a live node of this table (for tests).
#[cfg(test)]
pub(crate) fn is_live(p: *const pastry_node) -> bool {
    node_ref(p).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_never_null_and_round_trip() {
        for (i, g) in [(0, 1), (5, 7), (INDEX_MASK - 1, GENERATION_MASK)] {
            let h = encode(i, g);
            assert_ne!(h, 0);
            assert_eq!(decode(h), Some((i, g)));
        }
        assert_eq!(decode(0), None);
    }

    #[test]
    fn a_freed_handle_is_refused_and_its_slot_reused_with_a_new_generation() {
        let make = || {
            Arc::new(NodeInner::new(
                1,
                Mode::Runtime(OnceLock::new()), // never started: no runtime needed
            ))
        };
        let a = into_ptr(make());
        assert!(is_live(a));
        let held = node_ref(a).unwrap();
        assert!(take_ptr(a).is_ok());
        assert!(!is_live(a));
        assert_eq!(take_ptr(a).err(), Some(PASTRY_ERR_INVALID_ARGUMENT));
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "the call in progress keeps it alive"
        );
        let b = into_ptr(make());
        assert_ne!(a, b);
        assert!(!is_live(a));
        assert!(is_live(b));
        take_ptr(b).unwrap();
        let bogus = core::ptr::without_provenance::<pastry_node>(0xdead_beef);
        assert_eq!(node_ref(bogus).err(), Some(PASTRY_ERR_INVALID_ARGUMENT));
    }
}
