//! The holder's side: puts at the root, replicas, gets answered from the store, and the
//! digest exchange that keeps k copies on the k closest nodes.

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::msg::{status, StoreMsg, MAX_EXCLUDE, MAX_KEYS};
use super::{record, Store};
use crate::id::{Id, NodeHandle};
use crate::node::Node;
use crate::time::{Duration, Instant};

/// Most puts a root waits on replicas for at once; more are refused as busy.
const MAX_ROOT_PUTS: usize = 4096;
/// How long a root waits for its replicas' acknowledgements.
const ROOT_WAIT: Duration = Duration::from_secs(5);
/// Most records pushed to one neighbour per message received.
const PUSH_CAP: usize = 256;
/// Sync rounds a key stays after this node left its replica set when it is outside the leaf
/// set's range (re-inserted through its root, unconfirmed).
const HANDOFF_ROUNDS: u8 = 2;
/// Most confirmations remembered per handed-off key.
const MAX_CONFIRMED: usize = 16;

/// A key this node holds but is no longer among the replicas of.
#[derive(Debug, Default)]
pub(super) struct Handoff {
    rounds: u8,
    /// Nodes that confirmed holding the key (`Have`).
    confirmed: Vec<Id>,
}

/// A put this node is the root of, waiting for its replicas.
#[derive(Debug)]
pub(super) struct RootPut {
    requester: NodeHandle,
    op: u64,
    key: Id,
    waiting: usize,
    /// The worst status a replica answered.
    worst: u8,
    pub(super) deadline: Instant,
}

fn digest(keys: &[Id]) -> [u8; 16] {
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.0.to_be_bytes());
    }
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

impl Store {
    /// The key's replica set as `node` sees it (k nodes, closest first).
    fn replicas(&self, node: &Node, key: Id) -> Vec<NodeHandle> {
        node.replica_set(key, self.cfg.replicas - 1)
    }

    fn responsible(&self, node: &Node, key: Id) -> bool {
        let me = node.id();
        self.replicas(node, key).iter().any(|h| h.id == me)
    }

    pub(super) fn on_put(
        &mut self,
        now: Instant,
        node: &Node,
        key: Id,
        op: u64,
        requester: NodeHandle,
        record: Bytes,
    ) {
        let reply =
            |s: &mut Store, status| s.direct(requester, &StoreMsg::PutResult { op, key, status });
        if !record::verify(key, &record) {
            self.stats.bad_msgs += 1;
            return reply(self, status::INVALID);
        }
        let st = self.accept(key, &record);
        if st != status::OK {
            return reply(self, st);
        }
        let me = node.id();
        let others: Vec<NodeHandle> = self
            .replicas(node, key)
            .into_iter()
            .filter(|h| h.id != me)
            .collect();
        if others.is_empty() || op == 0 {
            // A re-insertion (op 0) wants no answer; the digest exchange spreads it.
            if op != 0 {
                reply(self, status::OK);
            } else {
                for h in others {
                    self.direct(
                        h,
                        &StoreMsg::Replicate {
                            tag: 0,
                            key,
                            record: record.clone(),
                        },
                    );
                }
            }
            return;
        }
        if self.roots.len() >= MAX_ROOT_PUTS {
            return reply(self, status::BUSY);
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        self.roots.insert(
            tag,
            RootPut {
                requester,
                op,
                key,
                waiting: others.len(),
                worst: status::OK,
                deadline: now + ROOT_WAIT,
            },
        );
        for h in others {
            self.direct(
                h,
                &StoreMsg::Replicate {
                    tag,
                    key,
                    record: record.clone(),
                },
            );
        }
    }

    pub(super) fn on_replica_ack(&mut self, tag: u64, key: Id, st: u8) {
        let Some(r) = self.roots.get_mut(&tag) else {
            return;
        };
        if r.key != key {
            return;
        }
        r.waiting = r.waiting.saturating_sub(1);
        r.worst = r.worst.max(st);
        if r.waiting == 0 {
            self.finish_root(tag);
        }
    }

    fn finish_root(&mut self, tag: u64) {
        if let Some(r) = self.roots.remove(&tag) {
            let (op, key, status) = (r.op, r.key, r.worst);
            self.direct(r.requester, &StoreMsg::PutResult { op, key, status });
        }
    }

    /// Roots whose replicas did not all answer: the copies that exist are enough to answer
    /// (the digest exchange restores the rest).
    pub(super) fn roots_timeout(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .roots
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for t in due {
            self.finish_root(t);
        }
    }

    pub(super) fn on_replicate(&mut self, from: NodeHandle, tag: u64, key: Id, record: Bytes) {
        let st = if record::verify(key, &record) {
            self.accept(key, &record)
        } else {
            self.stats.bad_msgs += 1;
            status::INVALID
        };
        if tag != 0 {
            self.direct(
                from,
                &StoreMsg::ReplicaAck {
                    tag,
                    key,
                    status: st,
                },
            );
        }
    }

    /// Answers a get from the local copy unless this node is excluded; whether it did.
    pub(super) fn answer_get(
        &mut self,
        op: u64,
        requester: NodeHandle,
        key: Id,
        exclude: &[Id],
        me: Option<Id>,
    ) -> bool {
        if me.is_some_and(|m| exclude.contains(&m)) || !self.index.contains_key(&key) {
            return false;
        }
        let Some(record) = self.backend.load(key) else {
            return false;
        };
        self.stats.gets_served += 1;
        self.direct(
            requester,
            &StoreMsg::GetReply {
                op,
                key,
                status: status::OK,
                record,
            },
        );
        true
    }

    /// A get that reached the root (or was relayed here) without being answered on the way.
    pub(super) fn on_get(
        &mut self,
        node: &Node,
        op: u64,
        requester: NodeHandle,
        key: Id,
        relays: u8,
        mut exclude: Vec<Id>,
    ) {
        let me = node.id();
        if self.answer_get(op, requester, key, &exclude, Some(me)) {
            return;
        }
        if !exclude.contains(&me) && exclude.len() < MAX_EXCLUDE {
            exclude.push(me);
        }
        let next = self
            .replicas(node, key)
            .into_iter()
            .find(|h| !exclude.contains(&h.id));
        match next {
            Some(h) if usize::from(relays) < self.cfg.replicas => {
                let m = StoreMsg::Get {
                    op,
                    requester,
                    key,
                    relays: relays + 1,
                    exclude,
                };
                self.direct(h, &m);
            }
            _ => {
                let m = StoreMsg::GetReply {
                    op,
                    key,
                    status: status::NOT_FOUND,
                    record: Bytes::new(),
                };
                self.direct(requester, &m);
            }
        }
    }

    /// The keys held here that both this node and `peer` should hold, in order.
    fn shared_with(&self, node: &Node, peer: Id) -> Vec<Id> {
        let me = node.id();
        let mut rs = Vec::new();
        self.index
            .keys()
            .copied()
            .filter(|&k| {
                rs = self.replicas(node, k);
                rs.iter().any(|h| h.id == me) && rs.iter().any(|h| h.id == peer)
            })
            .collect()
    }

    /// One digest-exchange round: a digest to every neighbour this node shares keys with (or
    /// could), offers of keys it is no longer responsible for, drops of keys offered a round ago.
    pub(super) fn sync(&mut self, now: Instant, node: &Node) {
        self.sync_at = Some(now + self.cfg.sync_period);
        if !node.is_active() {
            return;
        }
        let me = node.id();
        let k = self.cfg.replicas;
        let mut partners: Vec<NodeHandle> = node.neighbor_set(2 * (k - 1));
        let mut offers: Vec<(NodeHandle, Vec<Id>)> = Vec::new();
        let mut drops = Vec::new();
        let mut reinsert = Vec::new();
        let keys: Vec<Id> = self.index.keys().copied().collect();
        for key in keys {
            if !node.leaf_set().covers(key) && node.leaf_set().is_complete() {
                reinsert.push(key);
                continue;
            }
            let rs = self.replicas(node, key);
            if rs.iter().any(|h| h.id == me) {
                self.handoff.remove(&key);
                for h in rs.iter().filter(|h| h.id != me) {
                    if !partners.iter().any(|p| p.id == h.id) {
                        partners.push(*h);
                    }
                }
                continue;
            }
            // Dropped once every current replica confirmed holding it; offered to the others.
            let h = self.handoff.entry(key).or_default();
            h.rounds = h.rounds.saturating_add(1);
            if rs.iter().all(|r| h.confirmed.contains(&r.id)) {
                drops.push(key);
                continue;
            }
            for r in rs.into_iter().filter(|r| !h.confirmed.contains(&r.id)) {
                match offers.iter_mut().find(|(p, _)| p.id == r.id) {
                    Some((_, v)) => v.push(key),
                    None => offers.push((r, vec![key])),
                }
            }
        }
        for key in drops {
            self.drop_record(key);
            self.stats.handed_off += 1;
        }
        for key in reinsert {
            // Far from this node's part of the ring (it moved, or the ring grew around it):
            // route the record to its root, which spreads it, and let it go next round.
            if let Some(record) = self.backend.load(key) {
                let m = StoreMsg::Put {
                    op: 0,
                    requester: node.handle(),
                    record,
                };
                self.send(Some(key), None, &m);
                self.stats.sync_msgs += 1;
            }
            let h = self.handoff.entry(key).or_default();
            h.rounds = h.rounds.saturating_add(1);
            if h.rounds > HANDOFF_ROUNDS {
                self.drop_record(key);
                self.stats.handed_off += 1;
            }
        }
        for (h, keys) in offers {
            for part in keys.chunks(MAX_KEYS) {
                self.direct(
                    h,
                    &StoreMsg::Offer {
                        keys: part.to_vec(),
                    },
                );
            }
        }
        for p in partners {
            let keys = self.shared_with(node, p.id);
            let m = StoreMsg::Digest {
                count: keys.len() as u32,
                hash: digest(&keys),
            };
            self.direct(p, &m);
        }
    }

    pub(super) fn on_digest(&mut self, node: &Node, from: NodeHandle, count: u32, hash: [u8; 16]) {
        if !node.is_active() {
            return;
        }
        let keys = self.shared_with(node, from.id);
        if keys.len() as u32 == count && digest(&keys) == hash {
            self.stats.digests_matched += 1;
            return;
        }
        let more = keys.len() > MAX_KEYS;
        let keys = keys[..keys.len().min(MAX_KEYS)].to_vec();
        self.direct(from, &StoreMsg::KeyList { more, keys });
    }

    /// A neighbour's list of the keys we should both hold: push what it lacks, fetch what we
    /// lack.
    pub(super) fn on_key_list(&mut self, node: &Node, from: NodeHandle, more: bool, theirs: &[Id]) {
        if !node.is_active() || theirs.windows(2).any(|w| w[0] >= w[1]) {
            self.stats.bad_msgs += 1;
            return;
        }
        let limit = if more { theirs.last().copied() } else { None };
        let mine = self.shared_with(node, from.id);
        let push: Vec<Id> = mine
            .iter()
            .copied()
            .filter(|k| limit.is_none_or(|l| *k <= l) && theirs.binary_search(k).is_err())
            .take(PUSH_CAP)
            .collect();
        for key in push {
            self.push_record(from, key);
        }
        let fetch: Vec<Id> = theirs
            .iter()
            .copied()
            .filter(|&k| !self.index.contains_key(&k) && self.responsible(node, k))
            .collect();
        if !fetch.is_empty() {
            self.direct(from, &StoreMsg::Fetch { keys: fetch });
        }
    }

    fn push_record(&mut self, to: NodeHandle, key: Id) {
        if let Some(record) = self.backend.load(key) {
            self.direct(
                to,
                &StoreMsg::Replicate {
                    tag: 0,
                    key,
                    record,
                },
            );
        }
    }

    pub(super) fn on_fetch(&mut self, from: NodeHandle, keys: &[Id]) {
        for &key in keys.iter().take(PUSH_CAP) {
            self.push_record(from, key);
        }
    }

    pub(super) fn on_offer(&mut self, node: &Node, from: NodeHandle, keys: &[Id]) {
        if !node.is_active() {
            return;
        }
        let held: Vec<Id> = keys
            .iter()
            .copied()
            .filter(|k| self.index.contains_key(k))
            .collect();
        if !held.is_empty() {
            self.direct(from, &StoreMsg::Have { keys: held });
        }
        let want: Vec<Id> = keys
            .iter()
            .copied()
            .filter(|&k| !self.index.contains_key(&k) && self.responsible(node, k))
            .collect();
        if !want.is_empty() {
            self.direct(from, &StoreMsg::Fetch { keys: want });
        }
    }
}

impl Store {
    /// A neighbour confirms holding keys this node offered.
    pub(super) fn on_have(&mut self, from: NodeHandle, keys: &[Id]) {
        for k in keys {
            if let Some(h) = self.handoff.get_mut(k) {
                if !h.confirmed.contains(&from.id) && h.confirmed.len() < MAX_CONFIRMED {
                    h.confirmed.push(from.id);
                }
            }
        }
    }
}
