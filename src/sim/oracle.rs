//! The global oracle: the set of live active node ids, and what a perfect overlay would hold.

use std::collections::BTreeSet;

use crate::id::{DigitBits, Id};

/// The live, active nodes of the simulation, by id.
#[derive(Debug, Default, Clone)]
pub struct Oracle {
    ids: BTreeSet<Id>,
}

impl Oracle {
    /// Adds a live node.
    pub fn insert(&mut self, id: Id) {
        self.ids.insert(id);
    }
    /// Removes a node that died or left.
    pub fn remove(&mut self, id: Id) {
        self.ids.remove(&id);
    }
    /// Live nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    /// Whether no node is live.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The first id clockwise from `key` (inclusive), wrapping.
    fn succ(&self, key: Id) -> Option<Id> {
        self.ids
            .range(key..)
            .next()
            .or_else(|| self.ids.iter().next())
            .copied()
    }
    /// The first id counter-clockwise from `key` (exclusive), wrapping.
    fn pred(&self, key: Id) -> Option<Id> {
        self.ids
            .range(..key)
            .next_back()
            .or_else(|| self.ids.iter().next_back())
            .copied()
    }

    /// The root of `key`: the numerically closest live node (ties to the smaller id).
    pub fn root(&self, key: Id) -> Option<Id> {
        let (s, p) = (self.succ(key)?, self.pred(key)?);
        Some(if key.closer_to(p, s) { p } else { s })
    }

    /// What a correct leaf set of `own` holds: the `half` nearest live nodes each way.
    pub fn leaf_sides(&self, own: Id, half: usize) -> (Vec<Id>, Vec<Id>) {
        let n = self.ids.len().saturating_sub(1).min(half);
        let cw = self
            .ids
            .range(own.wrapping_add(1)..)
            .chain(self.ids.iter())
            .filter(|&&x| x != own)
            .take(n)
            .copied()
            .collect();
        let ccw = self
            .ids
            .range(..own)
            .rev()
            .chain(self.ids.iter().rev())
            .filter(|&&x| x != own)
            .take(n)
            .copied()
            .collect();
        (cw, ccw)
    }

    /// How many routing-table cells of `own` a perfect table would fill: cells `(r, c)` for which
    /// some live node shares exactly `r` digits with `own` and has digit `c` at `r`.
    pub fn fillable_cells(&self, own: Id, b: DigitBits) -> usize {
        let mut n = 0;
        for r in 0..b.digits() {
            let mut any_in_row = false;
            for c in 0..b.base() {
                if c == own.digit(r, b) {
                    continue;
                }
                let lo = own.with_digit(r, c, b);
                let span_bits = 128 - b.bits() as usize * (r + 1);
                let hi = if span_bits == 0 {
                    lo
                } else {
                    Id(lo.0 | ((1u128 << span_bits) - 1))
                };
                if self.ids.range(lo..=hi).next().is_some() {
                    n += 1;
                    any_in_row = true;
                }
            }
            // Deeper rows need nodes sharing r+1 digits: stop when none but `own` does.
            let lo = own.with_digit(r, own.digit(r, b), b);
            let span_bits = 128 - b.bits() as usize * (r + 1);
            let hi = if span_bits == 0 {
                lo
            } else {
                Id(lo.0 | ((1u128 << span_bits) - 1))
            };
            if self.ids.range(lo..=hi).nth(1).is_none() {
                break;
            }
            let _ = any_in_row;
        }
        n
    }

    /// Iterates the live ids in order.
    pub fn iter(&self) -> impl Iterator<Item = Id> + '_ {
        self.ids.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_wraps_and_breaks_ties_low() {
        let mut o = Oracle::default();
        for x in [10u128, 20, u128::MAX - 5] {
            o.insert(Id(x));
        }
        assert_eq!(o.root(Id(14)), Some(Id(10)));
        assert_eq!(o.root(Id(15)), Some(Id(10)));
        assert_eq!(o.root(Id(16)), Some(Id(20)));
        assert_eq!(o.root(Id(0)), Some(Id(u128::MAX - 5)));
        assert_eq!(o.root(Id(3)), Some(Id(10)));
        let (cw, ccw) = o.leaf_sides(Id(10), 8);
        assert_eq!(cw, vec![Id(20), Id(u128::MAX - 5)]);
        assert_eq!(ccw, vec![Id(u128::MAX - 5), Id(20)]);
    }

    #[test]
    fn fillable_cells_counts_prefix_ranges() {
        let b = DigitBits::FOUR;
        let mut o = Oracle::default();
        let own = Id(0x1234 << 112);
        o.insert(own);
        o.insert(Id(0x5 << 124)); // row 0
        o.insert(Id(0x13 << 120)); // row 1
        o.insert(Id(0x12f << 116)); // row 2
        assert_eq!(o.fillable_cells(own, b), 3);
    }
}
