//! The node's timer heap and bounded duplicate filters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::id::Id;
use crate::time::Instant;
use crate::util::FxHashSet;

/// What a timer is for. Entries are checked when they fire (lazy deletion): a timer whose owner
/// has moved on (acked message, answered probe, rescheduled tick) is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Leaf-set liveness check and periodic leaf-set exchange.
    LeafMaintenance,
    /// Routing-table maintenance.
    RtMaintenance,
    /// The join's root has not answered yet.
    JoinRetry,
    /// A hop acknowledgement is due for `(msg_id, hops)`.
    Retransmit(u64, u8),
    /// A probe of the node with this id is due an answer.
    Probe(Id),
    /// A message this node sent is due its end-to-end acknowledgement.
    Delivery(u64),
    /// A few seconds after activation: one leaf-set exchange with the adjacent members.
    JoinExchange,
    /// A step of the nearest-node walk before the join is due its answers.
    Discovery,
}

/// A min-heap of `(deadline, timer, sequence)`.
///
/// Every timer gets a sequence number when it is set. A pass of [`Timers::pop_due`] calls (up
/// to the `None` that ends it) fires only timers set before the pass began: a timer re-armed
/// by a handler at or before `now` (a period added to `Instant(u64::MAX)` saturates to `now`)
/// waits for the next pass instead of firing again and again in this one.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer, u64)>>,
    /// The sequence number the next `set` gives.
    next_seq: u64,
    /// During a pass: timers with a sequence number below this may fire.
    pass_limit: Option<u64>,
}

impl Timers {
    pub(crate) fn set(&mut self, at: Instant, t: Timer) {
        self.heap.push(Reverse((at, t, self.next_seq)));
        self.next_seq += 1;
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Pops one timer due at or before `now` that was set before this pass began (the first
    /// call after a `None` begins a pass); `None` ends the pass.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        let limit = *self.pass_limit.get_or_insert(self.next_seq);
        match self.heap.peek() {
            Some(Reverse((t, _, seq))) if *t <= now && *seq < limit => {
                self.heap.pop().map(|Reverse((at, timer, _))| (at, timer))
            }
            _ => {
                self.pass_limit = None;
                None
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.pass_limit = None;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.heap.capacity()
    }

    /// Releases spare capacity left by a burst.
    pub(crate) fn shrink(&mut self) {
        let n = self.heap.len();
        if self.heap.capacity() > 4 * n + 16 {
            self.heap.shrink_to(2 * n + 8);
        }
    }
}

/// Remembers up to `cap` recent keys, each for at most `ttl`; answers "seen before?".
#[derive(Debug)]
pub(crate) struct SeenFilter {
    set: FxHashSet<u64>,
    order: VecDeque<(Instant, u64)>,
    cap: usize,
}

impl SeenFilter {
    pub(crate) fn new(cap: usize) -> SeenFilter {
        SeenFilter {
            set: FxHashSet::default(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// Records `key` until `expires`; returns `false` if it was already recorded.
    pub(crate) fn insert(&mut self, now: Instant, key: u64, expires: Instant) -> bool {
        while let Some(&(t, k)) = self.order.front() {
            if t > now && self.order.len() < self.cap {
                break;
            }
            self.order.pop_front();
            self.set.remove(&k);
        }
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back((expires, key));
        true
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Releases spare capacity left by a burst.
    pub(crate) fn shrink(&mut self) {
        let n = self.order.len();
        if self.order.capacity() > 4 * n + 16 {
            self.order.shrink_to(2 * n);
            self.set.shrink_to(2 * n);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.set.capacity() * 16 + self.order.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_filter_forgets_by_age_and_by_cap() {
        let mut f = SeenFilter::new(3);
        let t = Instant(0);
        assert!(f.insert(t, 1, Instant(10)));
        assert!(!f.insert(t, 1, Instant(10)));
        assert!(f.insert(t, 2, Instant(10)));
        assert!(f.insert(t, 3, Instant(10)));
        assert!(f.insert(t, 4, Instant(10))); // evicts 1 (cap)
        assert!(f.insert(t, 1, Instant(10)));
        assert!(f.len() <= 3);
        assert!(f.insert(Instant(11), 4, Instant(20))); // everything expired
    }

    #[test]
    fn timers_pop_in_deadline_order() {
        let mut t = Timers::default();
        t.set(Instant(5), Timer::RtMaintenance);
        t.set(Instant(3), Timer::LeafMaintenance);
        assert_eq!(t.next_deadline(), Some(Instant(3)));
        assert_eq!(t.pop_due(Instant(2)), None);
        assert_eq!(
            t.pop_due(Instant(9)),
            Some((Instant(3), Timer::LeafMaintenance))
        );
        assert_eq!(
            t.pop_due(Instant(9)),
            Some((Instant(5), Timer::RtMaintenance))
        );
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_timer_rearmed_at_or_before_now_waits_for_the_next_pass() {
        // A periodic timer handled at `Instant(u64::MAX)` re-arms at `now + period`, which
        // saturates to `now`: the pass must still end.
        let mut t = Timers::default();
        let end = Instant(u64::MAX);
        t.set(Instant(3), Timer::LeafMaintenance);
        let mut fired = 0;
        while let Some((_, timer)) = t.pop_due(end) {
            fired += 1;
            assert!(fired < 10, "the pass never ends");
            t.set(end, timer);
        }
        assert_eq!(fired, 1);
        // The next pass fires the re-armed timer (once).
        assert_eq!(t.pop_due(end), Some((end, Timer::LeafMaintenance)));
        assert_eq!(t.pop_due(end), None);
    }
}
