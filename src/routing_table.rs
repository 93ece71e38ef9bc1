//! The prefix routing table: `⌈128/b⌉` rows of `2^b` cells.
//!
//! Invariant: the cell `(r, c)` holds only a node whose id shares exactly `r` leading digits with
//! the own id and whose digit `r` is `c` (so never the own id); of the candidates offered for a
//! cell it keeps the proximity-closest (smallest measured RTT; unmeasured counts as farthest).
//! Rows are allocated on first use: with N nodes only about `log_{2^b} N` rows ever fill.

use crate::id::{DigitBits, Id, NodeHandle};

/// Proximity (round-trip time, µs) of a node not yet measured.
pub const UNMEASURED: u32 = u32::MAX;

/// One routing-table cell's occupant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The node.
    pub node: NodeHandle,
    /// Its proximity: smoothed round-trip time in µs, [`UNMEASURED`] if unknown.
    pub rtt_us: u32,
}

type Row = Box<[Option<Entry>]>;

/// The routing table of one node.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: Id,
    b: DigitBits,
    rows: Vec<Option<Row>>,
    len: usize,
}

/// What [`RoutingTable::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// The node is the own id, or the cell keeps a closer occupant.
    Rejected,
    /// The node filled an empty cell.
    Filled,
    /// The node displaced a farther occupant (returned).
    Replaced(NodeHandle),
    /// The node was already there; its address and proximity were refreshed.
    Refreshed,
}

impl RoutingTable {
    /// An empty table for `own` with digits of `b` bits.
    pub fn new(own: Id, b: DigitBits) -> RoutingTable {
        RoutingTable {
            own,
            b,
            rows: vec![None; b.digits()],
            len: 0,
        }
    }

    /// The digit width.
    pub fn digit_bits(&self) -> DigitBits {
        self.b
    }

    /// Number of rows (`128 / b`).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Filled cells.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no cell is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cell `(row, col)` for `id`, or `None` for the own id.
    pub fn cell_of(&self, id: Id) -> Option<(usize, usize)> {
        let row = self.own.shared_prefix_len(id, self.b);
        (row < self.rows.len()).then(|| (row, id.digit(row, self.b)))
    }

    /// The occupant of `(row, col)`.
    #[inline]
    pub fn get(&self, row: usize, col: usize) -> Option<&Entry> {
        self.rows.get(row)?.as_ref()?.get(col)?.as_ref()
    }

    /// The entry for `id` if it is in the table.
    pub fn find(&self, id: Id) -> Option<&Entry> {
        let (r, c) = self.cell_of(id)?;
        self.get(r, c).filter(|e| e.node.id == id)
    }

    /// Whether `id` would take its cell if offered with proximity `rtt_us`.
    pub fn would_accept(&self, id: Id, rtt_us: u32) -> bool {
        match self.cell_of(id) {
            None => false,
            Some((r, c)) => match self.get(r, c) {
                None => true,
                Some(e) => e.node.id != id && rtt_us < e.rtt_us,
            },
        }
    }

    /// Offers `node` with proximity `rtt_us` for its cell.
    pub fn insert(&mut self, node: NodeHandle, rtt_us: u32) -> Inserted {
        let Some((r, c)) = self.cell_of(node.id) else {
            return Inserted::Rejected;
        };
        let base = self.b.base();
        let row = self.rows[r].get_or_insert_with(|| vec![None; base].into_boxed_slice());
        let cell = &mut row[c];
        match cell {
            None => {
                *cell = Some(Entry { node, rtt_us });
                self.len += 1;
                Inserted::Filled
            }
            Some(e) if e.node.id == node.id => {
                e.node.addr = node.addr;
                if rtt_us != UNMEASURED {
                    e.rtt_us = rtt_us;
                }
                Inserted::Refreshed
            }
            Some(e) if rtt_us < e.rtt_us => {
                let old = e.node;
                *e = Entry { node, rtt_us };
                Inserted::Replaced(old)
            }
            Some(_) => Inserted::Rejected,
        }
    }

    /// Removes `id`; returns its cell when it was there.
    pub fn remove(&mut self, id: Id) -> Option<(usize, usize)> {
        let (r, c) = self.cell_of(id)?;
        let cell = self.rows[r].as_mut()?.get_mut(c)?;
        if cell.is_some_and(|e| e.node.id == id) {
            *cell = None;
            self.len -= 1;
            return Some((r, c));
        }
        None
    }

    /// The filled cells of `row`, in column order.
    pub fn row(&self, row: usize) -> impl Iterator<Item = &Entry> + '_ {
        self.rows
            .get(row)
            .and_then(|r| r.as_deref())
            .unwrap_or(&[])
            .iter()
            .flatten()
    }

    /// Every filled cell, row by row.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries_from(0)
    }

    /// Every filled cell of rows `from..`.
    pub fn entries_from(&self, from: usize) -> impl Iterator<Item = &Entry> + '_ {
        self.rows
            .iter()
            .skip(from)
            .flat_map(|r| r.as_deref().unwrap_or(&[]).iter().flatten())
    }

    /// Index of the highest row with a filled cell, plus one (0 when empty).
    pub fn used_rows(&self) -> usize {
        self.rows
            .iter()
            .rposition(|r| r.as_ref().is_some_and(|r| r.iter().any(Option::is_some)))
            .map_or(0, |i| i + 1)
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        let per_row = self.b.base() * core::mem::size_of::<Option<Entry>>();
        self.rows.capacity() * core::mem::size_of::<Option<Row>>()
            + self.rows.iter().filter(|r| r.is_some()).count() * per_row
    }
}
