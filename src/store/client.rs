//! The requester's side: puts and gets of this node's application, with retries, timeouts,
//! verification of every answer, and large objects as chunks under a manifest.

use std::collections::VecDeque;

use bytes::Bytes;

use super::msg::{status, StoreMsg, MAX_EXCLUDE, OVERHEAD};
use super::record::{self, Manifest};
use super::{OpId, Outcome, Store, StoreError, MAX_VALUE};
use crate::id::{Id, NodeHandle};
use crate::node::Node;
use crate::time::Instant;

/// "Not found" answers after which a get gives up with [`StoreError::NotFound`] (the first may
/// come from a new root the record is still on its way to).
const NOT_FOUND_ANSWERS: u8 = 3;

/// One operation of this node's application (or a chunk of one).
#[derive(Debug)]
pub(super) struct Op {
    kind: Kind,
    /// When it fails with `Timeout`.
    deadline: Instant,
    /// When the request is sent again.
    retry_at: Instant,
    /// The large operation this is a chunk of, and the chunk's index.
    parent: Option<(u64, u32)>,
}

#[derive(Debug)]
enum Kind {
    Put {
        key: Id,
        record: Bytes,
    },
    Get {
        key: Id,
        exclude: Vec<Id>,
        /// "Not found" answers so far.
        not_found: u8,
        corrupt: bool,
    },
    /// Chunks not yet sent wait in `queue`; the manifest goes last.
    LargePut {
        key: Id,
        manifest: Bytes,
        queue: VecDeque<(u32, Id, Bytes)>,
        in_flight: usize,
    },
    LargeGet {
        manifest: Manifest,
        next: u32,
        in_flight: usize,
        done: u32,
        buf: Vec<u8>,
    },
}

impl Op {
    pub(super) fn next_deadline(&self) -> Instant {
        self.deadline.min(self.retry_at)
    }
}

/// What a finished child operation hands its parent.
enum Done {
    Put(Result<Id, StoreError>),
    Get(Result<Bytes, StoreError>),
}

impl Store {
    /// The largest record one message carries for `node`.
    fn max_record(node: &Node) -> usize {
        node.config().max_payload.saturating_sub(OVERHEAD)
    }

    fn new_op(&mut self, now: Instant, kind: Kind, parent: Option<(u64, u32)>) -> u64 {
        let id = self.next_op;
        self.next_op += 1;
        let op = Op {
            kind,
            deadline: now + self.cfg.op_timeout,
            retry_at: now + self.cfg.retry_after,
            parent,
        };
        self.ops.insert(id, op);
        id
    }

    fn check_room(&self, node: &Node, n: usize) -> Result<(), StoreError> {
        self.cfg
            .validate(node.config().leaf_set_size)
            .map_err(StoreError::Config)?;
        if self.ops.len() + n > self.cfg.max_ops {
            return Err(StoreError::Busy);
        }
        Ok(())
    }

    /// Stores the immutable object `value` on the k replicas of its key; returns the operation
    /// (its [`Outcome::Put`] comes out of [`Store::poll_outcome`]) and the object's key. A value
    /// larger than one payload is stored as chunks under a manifest, and the key is the
    /// manifest's.
    ///
    /// A put fails with [`StoreError::StoreFull`] when the root or a replica had no room; the
    /// copies that were taken stay (an immutable object is the same wherever it lies) and the
    /// digest exchange treats them as any other.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] above [`MAX_VALUE`]; [`StoreError::Busy`] when
    /// [`super::StoreConfig::max_ops`] operations are in flight; [`StoreError::Config`] when
    /// the configuration does not fit the node.
    pub fn put(
        &mut self,
        now: Instant,
        node: &Node,
        value: impl Into<Bytes>,
    ) -> Result<(OpId, Id), StoreError> {
        let value: Bytes = value.into();
        self.now = now;
        self.me_handle = Some(node.handle());
        if value.len() > MAX_VALUE {
            return Err(StoreError::TooLarge);
        }
        let max = Store::max_record(node) - 1;
        if value.len() <= max {
            self.check_room(node, 1)?;
            let (key, record) = record::content(&value);
            let id = self.start_put(now, node, key, record, None);
            return Ok((OpId(id), key));
        }
        // Chunks of `max` bytes, listed in a manifest that must fit one record itself.
        let chunks: Vec<Bytes> = (0..value.len())
            .step_by(max)
            .map(|at| value.slice(at..(at + max).min(value.len())))
            .collect();
        let keys: Vec<Id> = chunks.iter().map(|c| record::content_key(c)).collect();
        let (key, manifest) = record::manifest(value.len() as u64, max as u32, &keys);
        if manifest.len() > max + 1 {
            return Err(StoreError::TooLarge);
        }
        self.check_room(node, 1 + self.cfg.window)?;
        let queue = chunks
            .into_iter()
            .zip(keys)
            .enumerate()
            .map(|(i, (c, k))| (i as u32, k, c))
            .collect();
        let kind = Kind::LargePut {
            key,
            manifest,
            queue,
            in_flight: 0,
        };
        let id = self.new_op(now, kind, None);
        self.large_put_step(now, node, id);
        Ok((OpId(id), key))
    }

    /// Stores `value` under the name `name` (key [`super::name_key`]): the first put of a name
    /// wins; another value for it fails with [`StoreError::Conflict`], the same value succeeds.
    ///
    /// # Errors
    /// [`StoreError::TooLarge`] when name and value do not fit one payload;
    /// [`StoreError::Busy`].
    pub fn put_named(
        &mut self,
        now: Instant,
        node: &Node,
        name: &[u8],
        value: &[u8],
    ) -> Result<(OpId, Id), StoreError> {
        self.now = now;
        self.me_handle = Some(node.handle());
        let (key, record) = record::named(name, value).ok_or(StoreError::TooLarge)?;
        if record.len() > Store::max_record(node) {
            return Err(StoreError::TooLarge);
        }
        self.check_room(node, 1)?;
        let id = self.start_put(now, node, key, record, None);
        Ok((OpId(id), key))
    }

    fn start_put(
        &mut self,
        now: Instant,
        node: &Node,
        key: Id,
        record: Bytes,
        parent: Option<(u64, u32)>,
    ) -> u64 {
        let kind = Kind::Put {
            key,
            record: record.clone(),
        };
        let id = self.new_op(now, kind, parent);
        self.send_put(node.handle(), id, key, record);
        id
    }

    fn send_put(&mut self, me: NodeHandle, op: u64, key: Id, record: Bytes) {
        let m = StoreMsg::Put {
            op,
            requester: me,
            record,
        };
        self.send(Some(key), None, &m);
    }

    /// Fetches the object under `key`, verified against the key (a large object is assembled
    /// from its chunks); the [`Outcome::Get`] comes out of [`Store::poll_outcome`].
    ///
    /// # Errors
    /// [`StoreError::Busy`] when [`super::StoreConfig::max_ops`] operations are in flight.
    pub fn get(&mut self, now: Instant, node: &Node, key: Id) -> Result<OpId, StoreError> {
        self.now = now;
        self.me_handle = Some(node.handle());
        self.check_room(node, 1)?;
        Ok(OpId(self.start_get(now, node, key, None)))
    }

    fn start_get(&mut self, now: Instant, node: &Node, key: Id, parent: Option<(u64, u32)>) -> u64 {
        let kind = Kind::Get {
            key,
            exclude: Vec::new(),
            not_found: 0,
            corrupt: false,
        };
        let id = self.new_op(now, kind, parent);
        self.send_get(node.handle(), id, key, Vec::new());
        id
    }

    fn send_get(&mut self, me: NodeHandle, op: u64, key: Id, exclude: Vec<Id>) {
        let m = StoreMsg::Get {
            op,
            requester: me,
            key,
            relays: 0,
            exclude,
        };
        self.send(Some(key), None, &m);
    }

    pub(super) fn on_put_result(&mut self, now: Instant, op: u64, key: Id, st: u8) {
        let matches = matches!(self.ops.get(&op), Some(Op { kind: Kind::Put { key: k, .. }, .. }) if *k == key);
        if !matches {
            return;
        }
        let r = match st {
            status::OK => Ok(key),
            status::CONFLICT => Err(StoreError::Conflict),
            status::FULL => Err(StoreError::StoreFull),
            status::BUSY => Err(StoreError::Busy),
            _ => Err(StoreError::Corrupt),
        };
        self.finish(now, op, Done::Put(r));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_get_reply(
        &mut self,
        now: Instant,
        node: &Node,
        from: NodeHandle,
        op: u64,
        key: Id,
        st: u8,
        rec: Bytes,
    ) {
        let Some(Op {
            kind:
                Kind::Get {
                    key: k,
                    exclude,
                    not_found,
                    corrupt,
                },
            retry_at,
            ..
        }) = self.ops.get_mut(&op)
        else {
            return;
        };
        if *k != key {
            return;
        }
        if st == status::NOT_FOUND {
            // Maybe in transit to a new replica: ask again a little later, three times.
            *not_found += 1;
            if *not_found >= NOT_FOUND_ANSWERS {
                // Only bad copies exist, or none.
                let e = if *corrupt {
                    StoreError::Corrupt
                } else {
                    StoreError::NotFound
                };
                return self.finish(now, op, Done::Get(Err(e)));
            }
            *retry_at = now + crate::time::Duration(self.cfg.retry_after.as_micros() / 3);
            return;
        }
        if st != status::OK || !record::verify(key, &rec) {
            self.stats.bad_replicas += 1;
            *corrupt = true;
            if exclude.len() < MAX_EXCLUDE && !exclude.contains(&from.id) {
                exclude.push(from.id);
            }
            let ex = exclude.clone();
            *retry_at = now + self.cfg.retry_after;
            self.send_get(node.handle(), op, key, ex);
            return;
        }
        if rec.first() == Some(&record::MANIFEST) {
            if let Some(m) = record::parse_manifest(&rec) {
                return self.start_large_get(now, node, op, m);
            }
        }
        self.finish(now, op, Done::Get(Ok(record::value(&rec))));
    }

    /// Retries and timeouts of operations due at `now`.
    pub(super) fn ops_timeout(&mut self, now: Instant, node: &Node) {
        let due: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, o)| o.next_deadline() <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(op) = self.ops.get_mut(&id) else {
                continue;
            };
            if op.deadline <= now {
                let err = match &op.kind {
                    Kind::Get { corrupt: true, .. } => StoreError::Corrupt,
                    Kind::Get { not_found, .. } if *not_found > 0 => StoreError::NotFound,
                    _ => StoreError::Timeout,
                };
                let done = match op.kind {
                    Kind::Put { .. } | Kind::LargePut { .. } => Done::Put(Err(err)),
                    _ => Done::Get(Err(err)),
                };
                self.finish(now, id, done);
                continue;
            }
            op.retry_at = now + self.cfg.retry_after;
            match &op.kind {
                Kind::Put { key, record } => {
                    let (key, record) = (*key, record.clone());
                    self.send_put(node.handle(), id, key, record);
                }
                Kind::Get { key, exclude, .. } => {
                    let (key, ex) = (*key, exclude.clone());
                    self.send_get(node.handle(), id, key, ex);
                }
                // Large operations retry through their chunks.
                _ => {}
            }
        }
    }

    /// Ends operation `id`: its parent hears of it, or the application does.
    fn finish(&mut self, now: Instant, id: u64, done: Done) {
        let Some(op) = self.ops.remove(&id) else {
            return;
        };
        match op.parent {
            Some((parent, index)) => self.child_done(now, parent, index, done),
            None => {
                let out = match done {
                    Done::Put(r) => Outcome::Put(r),
                    Done::Get(r) => Outcome::Get(r),
                };
                self.outcomes.push_back((OpId(id), out));
            }
        }
    }

    fn child_done(&mut self, now: Instant, parent: u64, index: u32, done: Done) {
        let Some(me) = self.me_handle.filter(|_| self.ops.contains_key(&parent)) else {
            return; // the parent failed already
        };
        match done {
            Done::Put(Err(e)) | Done::Get(Err(e)) => {
                let d = match self.ops[&parent].kind {
                    Kind::LargePut { .. } => Done::Put(Err(e)),
                    _ => Done::Get(Err(e)),
                };
                self.finish(now, parent, d);
            }
            Done::Put(Ok(_)) => {
                if let Some(Kind::LargePut { in_flight, .. }) =
                    self.ops.get_mut(&parent).map(|o| &mut o.kind)
                {
                    *in_flight -= 1;
                }
                if index == u32::MAX {
                    let Some(Kind::LargePut { key, .. }) = self.ops.get(&parent).map(|o| &o.kind)
                    else {
                        return;
                    };
                    let key = *key;
                    return self.finish(now, parent, Done::Put(Ok(key)));
                }
                self.large_put_next(now, me, parent);
            }
            Done::Get(Ok(chunk)) => self.large_get_chunk(now, me, parent, index, &chunk),
        }
    }

    fn large_put_step(&mut self, now: Instant, node: &Node, id: u64) {
        self.me_handle = Some(node.handle());
        self.large_put_next(now, node.handle(), id);
    }

    /// Sends chunks up to the window; the manifest once every chunk is stored.
    fn large_put_next(&mut self, now: Instant, me: NodeHandle, id: u64) {
        let window = self.cfg.window;
        loop {
            let Some(Op {
                kind:
                    Kind::LargePut {
                        key,
                        manifest,
                        queue,
                        in_flight,
                    },
                deadline,
                ..
            }) = self.ops.get_mut(&id)
            else {
                return;
            };
            // Progress keeps a large operation alive.
            *deadline = now + self.cfg.op_timeout;
            let next = if *in_flight >= window {
                return;
            } else if let Some(c) = queue.pop_front() {
                c
            } else if *in_flight == 0 && !manifest.is_empty() {
                let m = core::mem::take(manifest);
                (u32::MAX, *key, m)
            } else {
                return;
            };
            *in_flight += 1;
            let (index, key, record) = if next.0 == u32::MAX {
                next
            } else {
                let (_, rec) = record::content(&next.2);
                (next.0, next.1, rec)
            };
            let kind = Kind::Put {
                key,
                record: record.clone(),
            };
            let child = self.new_op(now, kind, Some((id, index)));
            self.send_put(me, child, key, record);
        }
    }

    fn start_large_get(&mut self, now: Instant, node: &Node, op: u64, m: Manifest) {
        self.me_handle = Some(node.handle());
        let Some(o) = self.ops.get_mut(&op) else {
            return;
        };
        // The manifest was verified and bounds the total by MAX_VALUE.
        o.kind = Kind::LargeGet {
            buf: vec![0; m.total as usize],
            manifest: m,
            next: 0,
            in_flight: 0,
            done: 0,
        };
        o.retry_at = Instant::MAX;
        self.large_get_next(now, node.handle(), op);
    }

    fn large_get_next(&mut self, now: Instant, me: NodeHandle, id: u64) {
        let window = self.cfg.window;
        loop {
            let Some(Op {
                kind:
                    Kind::LargeGet {
                        manifest,
                        next,
                        in_flight,
                        ..
                    },
                deadline,
                ..
            }) = self.ops.get_mut(&id)
            else {
                return;
            };
            *deadline = now + self.cfg.op_timeout;
            if *in_flight >= window || *next as usize >= manifest.keys.len() {
                return;
            }
            let (index, key) = (*next, manifest.keys[*next as usize]);
            *next += 1;
            *in_flight += 1;
            let kind = Kind::Get {
                key,
                exclude: Vec::new(),
                not_found: 0,
                corrupt: false,
            };
            let child = self.new_op(now, kind, Some((id, index)));
            self.send_get(me, child, key, Vec::new());
        }
    }

    fn large_get_chunk(&mut self, now: Instant, me: NodeHandle, id: u64, index: u32, chunk: &[u8]) {
        let Some(Op {
            kind:
                Kind::LargeGet {
                    manifest,
                    in_flight,
                    done,
                    buf,
                    ..
                },
            ..
        }) = self.ops.get_mut(&id)
        else {
            return;
        };
        *in_flight -= 1;
        let size = manifest.chunk as usize;
        let at = index as usize * size;
        let want = size.min(buf.len().saturating_sub(at));
        if chunk.len() != want {
            return self.finish(now, id, Done::Get(Err(StoreError::Corrupt)));
        }
        buf[at..at + want].copy_from_slice(chunk);
        *done += 1;
        if *done as usize == manifest.keys.len() {
            let v = core::mem::take(buf);
            return self.finish(now, id, Done::Get(Ok(Bytes::from(v))));
        }
        self.large_get_next(now, me, id);
    }
}
