//! Joining (paper §3.1, with MSPastry's consistency rule): the newcomer finds a node near it
//! (see [`super::discovery`]) and asks it to route a join request toward the newcomer's id; every node on the path sends it the routing
//! rows it shares, the bootstrap its neighbourhood set, the root its leaf set. The newcomer probes
//! what it learns, announces itself to every leaf-set member, and becomes active only when each
//! of them has answered.

use core::fmt;
use core::net::SocketAddr;

use super::maintenance::Offered;
use super::timers::Timer;
use super::{Event, Node, Phase};
use crate::id::{Id, NodeHandle};
use crate::time::{Duration, Instant};
use crate::util::FxHashSet;
use crate::wire::{join_flags, Message, RowEntries};

/// Why `join` refused to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The bootstrap list is empty.
    NoBootstrap,
    /// The node has already started (or stopped).
    AlreadyStarted,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinError::NoBootstrap => "join needs at least one bootstrap address",
            JoinError::AlreadyStarted => "the node has already started",
        })
    }
}

impl std::error::Error for JoinError {}

/// The newcomer's side of a join.
#[derive(Debug, Default)]
pub(super) struct JoinState {
    pub(super) bootstraps: Vec<SocketAddr>,
    pub(super) next: usize,
    attempts: u32,
    join_id: u64,
    /// The ids of this join's attempts (the latest last): replies carrying another are forged.
    sent_ids: Vec<u64>,
    retry_at: Instant,
    root_replied: bool,
    /// A root has answered at least once (unlike `root_replied`, not reset when the join starts
    /// over): from then on the newcomer may be in others' tables, and answers their pings.
    pub(super) announced: bool,
    /// The node that answered as the join's root: it must answer our probe (and so enter our
    /// leaf set) before we may activate; if it does not, the join starts over.
    root: Option<NodeHandle>,
    /// Leaf-set members announced to that have not answered yet.
    awaiting: FxHashSet<Id>,
    /// Nodes that answered one of our leaf-set requests (so they know us already).
    answered: FxHashSet<Id>,
    /// Others' join requests that reached us while we were joining ourselves: answered once we
    /// are active (we may be their root).
    held: Vec<(NodeHandle, NodeHandle, u64, u8)>,
    /// The nearest-node walk that comes before the join request (see [`super::discovery`]).
    pub(super) discovery: Option<Box<super::discovery::Discovery>>,
}

/// Most held join requests.
const HELD_JOINS: usize = 64;
/// Join attempts whose replies are still accepted.
const SENT_IDS: usize = 16;

impl Node {
    /// Joins the overlay through `bootstraps` (tried round robin, with backoff). Progress is
    /// reported by [`Event::Joined`] or, after `join_attempts` tries, [`Event::JoinFailed`].
    ///
    /// # Errors
    /// [`JoinError`] when the list is empty or the node has started already.
    pub fn join(&mut self, now: Instant, bootstraps: &[SocketAddr]) -> Result<(), JoinError> {
        if bootstraps.is_empty() {
            return Err(JoinError::NoBootstrap);
        }
        if self.phase != Phase::Idle {
            return Err(JoinError::AlreadyStarted);
        }
        self.phase = Phase::Joining;
        self.join = JoinState {
            bootstraps: bootstraps.to_vec(),
            ..JoinState::default()
        };
        // First a node near us (its rows and neighbours are near us too); the join follows.
        self.start_discovery(now, bootstraps[0]);
        Ok(())
    }

    pub(super) fn send_join_request(&mut self, now: Instant) {
        // A retry goes to the nearest live node already learned (it is probably the root or one
        // hop from it, so a lossy path is short), every other retry to the next bootstrap.
        let me = self.me.id;
        let nearest = [self.leaf.cw_side().first(), self.leaf.ccw_side().first()]
            .into_iter()
            .flatten()
            .min_by_key(|h| me.distance(h.id))
            .copied();
        let j = &mut self.join;
        j.attempts += 1;
        j.join_id = self.rng.next_u64();
        if j.sent_ids.len() >= SENT_IDS {
            j.sent_ids.remove(0);
        }
        j.sent_ids.push(j.join_id);
        let dst = match nearest {
            Some(h) if j.attempts % 2 == 0 => h.addr,
            _ => {
                let b = j.bootstraps[j.next % j.bootstraps.len()];
                j.next += 1;
                b
            }
        };
        let backoff = 1u64 << (j.attempts - 1).min(2);
        j.retry_at = now + Duration(self.cfg.join_timeout.as_micros() * backoff);
        let (at, join_id) = (j.retry_at, j.join_id);
        self.timers.set(at, Timer::JoinRetry);
        let msg = Message::JoinRequest {
            joiner: self.me,
            join_id,
            hops: 0,
        };
        self.send(dst, &msg);
    }

    pub(super) fn on_join_timeout(&mut self, now: Instant, at: Instant) {
        if self.phase != Phase::Joining || at != self.join.retry_at || self.join.root_replied {
            return;
        }
        if self.join.attempts >= self.cfg.join_attempts {
            self.phase = Phase::Idle;
            self.timers.clear();
            self.fail_held(now);
            self.events.push_back(Event::JoinFailed);
            return;
        }
        self.send_join_request(now);
    }

    /// A node on the path of someone's join: answer the joiner, pass the request on.
    pub(super) fn on_join_request(
        &mut self,
        now: Instant,
        from: NodeHandle,
        joiner: NodeHandle,
        join_id: u64,
        hops: u8,
    ) {
        if joiner.id == self.me.id || hops >= self.cfg.max_hops {
            return;
        }
        if self.phase == Phase::Joining {
            if self.join.held.len() < HELD_JOINS {
                self.join.held.push((from, joiner, join_id, hops));
            }
            return;
        }
        if self.phase != Phase::Active {
            return;
        }
        // The first hop hears the joiner itself: trust the address the datagram came from.
        let joiner = if hops == 0 {
            NodeHandle::new(joiner.id, from.addr)
        } else {
            joiner
        };
        // Rows and leaf sets are large, and the joiner's address is anyone's word (forged as
        // the source at the first hop, named in the frame after it): answer, and pass the
        // request on, only once that address has echoed a validation ping. A forged request
        // costs its victim one small ping from one node, not a reply from every node of a path.
        let action = super::guard::Action::Join {
            joiner,
            join_id,
            hops,
        };
        self.validate_then(now, joiner.addr, action);
    }

    /// Answers a join request whose joiner's address is validated, and passes it on.
    pub(super) fn answer_join_request(
        &mut self,
        now: Instant,
        joiner: NodeHandle,
        join_id: u64,
        hops: u8,
    ) {
        if self.phase != Phase::Active {
            return;
        }
        let b = self.cfg.b;
        let l = self
            .me
            .id
            .shared_prefix_len(joiner.id, b)
            .min(self.rt.rows() - 1);
        // Every row this node shares with the joiner (the paper hands over row i at hop i; the
        // earlier rows too give the joiner more candidates to measure for proximity).
        let rows: Vec<RowEntries> = (0..=l)
            .filter_map(|r| {
                let nodes: Vec<NodeHandle> = self
                    .rt
                    .row(r)
                    .map(|e| e.node)
                    .filter(|h| h.id != joiner.id)
                    .collect();
                (!nodes.is_empty()).then_some(RowEntries {
                    row: r as u8,
                    nodes,
                })
            })
            .collect();
        let mut flags = 0;
        let mut neighbors = Vec::new();
        if hops == 0 {
            flags |= join_flags::FIRST;
            neighbors = self
                .nbr
                .members()
                .copied()
                .filter(|h| h.id != joiner.id)
                .collect();
        }
        let next = self.decide_excluding(joiner.id);
        let mut leaf_set = Vec::new();
        match next {
            None => {
                flags |= join_flags::ROOT;
                leaf_set = self
                    .leaf
                    .members()
                    .copied()
                    .filter(|h| h.id != joiner.id)
                    .collect();
            }
            Some(h) => {
                let fwd = Message::JoinRequest {
                    joiner,
                    join_id,
                    hops: hops + 1,
                };
                self.send(h.addr, &fwd);
                // Join requests are not acknowledged: make sure a silent next hop gets noticed
                // (and dropped from the tables) before the joiner's retry comes by.
                let quiet = self
                    .peers
                    .get(&h.id)
                    .is_none_or(|p| p.last_heard + self.cfg.leaf_probe_period <= now);
                if quiet {
                    self.probe(now, h, super::maintenance::ProbeKind::Ping, false);
                }
            }
        }
        let reply = Message::JoinReply {
            join_id,
            flags,
            rows,
            leaf_set,
            neighbors,
        };
        self.send(joiner.addr, &reply);
    }

    /// `decide`, ignoring the node `skip` (the joiner, which may already sit in our tables).
    fn decide_excluding(&self, skip: Id) -> Option<NodeHandle> {
        if self.leaf.covers(skip) {
            return self.leaf.closest(skip, |h| h.id != skip);
        }
        let peers = &self.peers;
        match crate::router::next_hop(skip, &self.leaf, &self.rt, |h| {
            h.id != skip && !peers.get(&h.id).is_some_and(|p| p.suspect)
        }) {
            crate::router::NextHop::Deliver => None,
            crate::router::NextHop::Forward(h) => Some(h),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_join_reply(
        &mut self,
        now: Instant,
        from: NodeHandle,
        join_id: u64,
        flags: u8,
        rows: Vec<RowEntries>,
        leaf_set: Vec<NodeHandle>,
        neighbors: Vec<NodeHandle>,
    ) {
        // Replies to an earlier attempt are as good as replies to the latest; a reply to no
        // attempt of ours (its id is a random 64-bit number only our join path has seen) is
        // forged, and must not make us probe what it lists.
        if self.phase != Phase::Joining || !self.join.sent_ids.contains(&join_id) {
            self.stats.unsolicited += 1;
            return;
        }
        if flags & join_flags::ROOT != 0 {
            self.join.root_replied = true;
            self.join.announced = true;
            self.join.root = Some(from);
        }
        // Probe everything offered (leaf-set members first, so they are asked for their leaf
        // sets): the measured RTTs pick the nearest per cell (PNS).
        // Lists are read up to the size a legitimate one has (a leaf set, a row, a
        // neighbourhood set), so one reply cannot make us probe hundreds of addresses.
        for h in leaf_set.into_iter().take(self.cfg.leaf_set_size) {
            self.candidate(now, h, Offered::LeafList);
        }
        let cells = 1usize << self.cfg.b.bits();
        let row_nodes: Vec<NodeHandle> = rows
            .iter()
            .take(self.rt.rows())
            .flat_map(|r| r.nodes.iter().take(cells))
            .chain(neighbors.iter().take(self.cfg.neighborhood_size))
            .copied()
            .collect();
        for h in row_nodes {
            self.candidate(now, h, Offered::Row { pns: true });
        }
        self.join_check_complete(now);
    }

    /// A member joined the leaf set (announcements wait until the leaf set has settled: see
    /// [`Node::join_check_complete`]).
    pub(super) fn on_leaf_member_added(&mut self, _now: Instant, _h: NodeHandle) {}

    /// Whether the newcomer may show itself to others yet: only once the join's root has
    /// answered (before that it probes with pings, which nobody takes into their tables).
    pub(super) fn may_announce(&self) -> bool {
        self.phase != Phase::Joining || self.join.root_replied
    }

    /// Sends a leaf-set request to `h`, which makes it take us in; we wait for its answer.
    fn announce(&mut self, now: Instant, h: NodeHandle) {
        self.join.awaiting.insert(h.id);
        self.cancel_probe(h.id);
        self.probe(now, h, super::maintenance::ProbeKind::LeafSet, true);
    }

    /// `id` answered a leaf-set request of ours, saying it has taken us in.
    pub(super) fn join_heard_leaf_set(&mut self, id: Id) {
        if self.phase == Phase::Joining {
            self.join.answered.insert(id);
            self.join.awaiting.remove(&id);
        }
    }

    /// Activates the node once the root has answered and every leaf has confirmed. The leaf set
    /// settles first (no candidate that would enter it is still being probed); then every member
    /// that has not yet answered a leaf-set request of ours is asked (which makes it take us in),
    /// and the node activates when all have answered.
    pub(super) fn join_check_complete(&mut self, now: Instant) {
        if self.phase != Phase::Joining || !self.join.root_replied {
            return;
        }
        if let Some(root) = self.join.root {
            if self.leaf.is_empty() && !self.maint.probes.contains_key(&root.id) {
                // The root's reply came, but the root never answered our probe and nobody else
                // did either: activating now would make us the whole overlay. Start over (we
                // are in nobody's tables, so nobody routes joins to us meanwhile).
                self.join.root_replied = false;
                self.join.root = None;
                self.join.awaiting.clear();
                self.send_join_request(now);
                return;
            }
        }
        // Waiting only makes sense for a member whose request is still out (a probe that ended
        // some other way, say answered without admission, means asking again below).
        let (leaf, probes) = (&self.leaf, &self.maint.probes);
        self.join
            .awaiting
            .retain(|id| leaf.contains(*id) && probes.contains_key(id));
        let probing_leaves = self.maint.probes.values().any(|p| {
            self.leaf.would_accept(p.handle.id) && !self.join.awaiting.contains(&p.handle.id)
        });
        if probing_leaves {
            return;
        }
        let unannounced: Vec<NodeHandle> = self
            .leaf
            .members()
            .filter(|h| !self.join.answered.contains(&h.id) && !self.join.awaiting.contains(&h.id))
            .copied()
            .collect();
        for h in unannounced {
            self.announce(now, h);
        }
        if self.join.awaiting.is_empty() {
            self.join.bootstraps = Vec::new();
            self.join.answered = FxHashSet::default();
            self.activate(now);
            for (from, joiner, join_id, hops) in core::mem::take(&mut self.join.held) {
                self.on_join_request(now, from, joiner, join_id, hops);
            }
        }
    }
}
