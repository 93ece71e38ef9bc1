//! Measurements against the oracle: leaf-set correctness, routing-table fill, traffic.

use super::{Departed, NodeIdx, Sim};
use crate::id::Id;
use crate::node::Node;
use crate::time::Instant;

impl Sim {
    /// Live active nodes whose leaf set differs from the oracle's.
    pub fn wrong_leaf_sets(&self) -> Vec<NodeIdx> {
        let mut bad = Vec::new();
        for i in self.live() {
            let n = self.node(i).expect("live");
            if !n.is_active() {
                continue;
            }
            let half = n.leaf_set().half();
            let (cw, ccw) = self.oracle.leaf_sides(n.id(), half);
            let got_cw: Vec<Id> = n.leaf_set().cw_side().iter().map(|h| h.id).collect();
            let got_ccw: Vec<Id> = n.leaf_set().ccw_side().iter().map(|h| h.id).collect();
            if got_cw != cw || got_ccw != ccw {
                bad.push(i);
            }
        }
        bad
    }

    /// Leaf-set entries, over all live active nodes, that name a node no longer alive (one
    /// that crashed or left): after a detection period there should be none.
    pub fn stale_leaf_entries(&self) -> u64 {
        let live: crate::util::FxHashSet<Id> = self
            .live()
            .filter_map(|i| self.node(i).map(Node::id))
            .collect();
        self.live()
            .filter_map(|i| self.node(i))
            .filter(|n| n.is_active())
            .map(|n| {
                n.leaf_set()
                    .members()
                    .filter(|h| !live.contains(&h.id))
                    .count() as u64
            })
            .sum()
    }

    /// Filled routing-table cells over the cells a perfect table would fill, over all live
    /// active nodes; and the mean number of filled cells.
    pub fn routing_table_fill(&self) -> (f64, f64) {
        let (mut have, mut could, mut nodes) = (0usize, 0usize, 0usize);
        let b = self.cfg.node.b;
        for i in self.live() {
            let n = self.node(i).expect("live");
            if !n.is_active() {
                continue;
            }
            nodes += 1;
            have += n.routing_table().len();
            could += self.oracle.fillable_cells(n.id(), b);
        }
        let fill = if could == 0 {
            1.0
        } else {
            have as f64 / could as f64
        };
        (fill, have as f64 / nodes.max(1) as f64)
    }

    /// The Pastry paper's measure of proximity neighbour selection (its Fig. 7): for each live
    /// active node and each row of its routing table with a filled cell, how many filled cells do
    /// not hold the proximity-closest live active node that qualifies for the cell; averaged
    /// over those (node, row) pairs. The oracle looks at every live active node for each node
    /// measured, so with more than `sample` nodes only an evenly spread `sample` of them are
    /// measured. NaN when no node has a filled cell.
    pub fn rt_non_best_per_row(&self, sample: usize) -> f64 {
        let b = self.cfg.node.b;
        let topo = self.cfg.topology;
        let active: Vec<(Id, NodeIdx)> = self
            .live()
            .filter_map(|i| self.node(i).filter(|n| n.is_active()).map(|n| (n.id(), i)))
            .collect();
        let step = active.len().div_ceil(sample.max(1)).max(1);
        let (mut non_best, mut rows) = (0u64, 0u64);
        for &(_, i) in active.iter().step_by(step) {
            let rt = self.node(i).expect("live").routing_table();
            let used = rt.used_rows();
            let pos = self.slots[i.0 as usize].pos;
            // The closest qualifying latency of every cell of the used rows.
            let mut best = vec![u64::MAX; used * b.base()];
            for &(id, j) in &active {
                let Some((r, c)) = rt.cell_of(id).filter(|&(r, _)| r < used) else {
                    continue;
                };
                let d = topo.latency(pos, self.slots[j.0 as usize].pos).as_micros();
                let cell = &mut best[r * b.base() + c];
                *cell = (*cell).min(d);
            }
            for r in 0..used {
                let mut filled = false;
                for c in 0..b.base() {
                    let Some(e) = rt.get(r, c) else { continue };
                    filled = true;
                    let held = super::idx_of(e.node.addr).map_or(u64::MAX, |k| {
                        topo.latency(pos, self.slots[k.0 as usize].pos).as_micros()
                    });
                    if held > best[r * b.base() + c] {
                        non_best += 1;
                    }
                }
                rows += u64::from(filled);
            }
        }
        non_best as f64 / rows as f64
    }

    /// Maintenance rates count from here on (so a steady phase is measured apart from the
    /// overlay's growth). Without a mark they count from each node's start.
    pub fn mark_traffic(&mut self) {
        self.traffic_mark = Some(self.now);
        let join = self.gone.join;
        self.gone = Departed {
            join,
            ..Departed::default()
        };
        for s in &mut self.slots {
            s.maint_mark = s.node.as_ref().map_or((0, 0), |n| {
                (n.stats().maintenance_msgs(), n.stats().maintenance_bytes())
            });
        }
    }

    /// Sums every live node's counters into the report's traffic figures.
    pub fn collect_traffic(&mut self) {
        let (mut maint, mut maint_bytes, mut join, mut mem) = (0u64, 0u64, 0u64, 0usize);
        self.report.msgs_by_type = [0; 16];
        self.report.join_by_type = [0; 16];
        let mut n = 0u64;
        let mut alive_s = 0.0;
        let mark = self.traffic_mark.unwrap_or(Instant::ZERO);
        for s in &self.slots {
            if let Some(node) = &s.node {
                alive_s += (self.now - s.started.max(mark)).as_secs_f64();
                let st = node.stats();
                for (t, c) in st.sent_by_type.iter().enumerate() {
                    self.report.msgs_by_type[t] += c;
                }
                for (t, c) in st.joining_by_type.iter().enumerate() {
                    self.report.join_by_type[t] += c;
                }
                maint += st.maintenance_msgs() - s.maint_mark.0;
                maint_bytes += st.maintenance_bytes() - s.maint_mark.1;
                join += st.join_msgs();
                mem += node.heap_bytes() + core::mem::size_of::<Node>();
                n += 1;
            }
        }
        let g = &self.gone;
        let r = &mut self.report;
        for (t, c) in g.by_type.iter().enumerate() {
            r.msgs_by_type[t] += c;
        }
        for (t, c) in g.join_by_type.iter().enumerate() {
            r.join_by_type[t] += c;
        }
        r.maintenance_msgs = maint + g.maint;
        r.maintenance_bytes = maint_bytes + g.maint_bytes;
        r.join_msgs = join + g.join;
        r.joined_nodes = n + g.nodes;
        r.node_bytes = mem as u64;
        r.live_nodes = n;
        r.node_seconds = alive_s + g.node_seconds;
    }
}
