//! What a stranger may cost this node: QUIC's anti-amplification rule (RFC 9000 §8.1),
//! address validation by nonce round trip, and per-source token buckets.
//!
//! Every field of every frame is chosen by someone else, and UDP source addresses are forged
//! at will. So:
//!
//! - **An address is validated** when it has echoed one of our random nonces (a probe's, or
//!   a validation ping's), or belongs to a peer our tables hold (which got there the same way).
//! - **To an address not validated**, a node sends replies of at most [`AMPLIFICATION`] times
//!   the bytes it received from that address, and never more datagrams than it received (the
//!   ledger below). Larger answers (a join's rows and leaf set) wait for a validation ping's
//!   pong ([`Node::validate_then`]).
//! - **An address named inside a frame** (a joiner's, a listed handle's) gets at most one small
//!   probe at a time, none for a while after it stayed silent, and only within a global budget
//!   of probes in flight that nothing bypasses (see `Node::probe`).
//! - **Requests that cost work** (join, row, leaf-set, ping, routed traffic from strangers)
//!   are metered per source address by token buckets; a source over its rate is dropped and
//!   counted.
//!
//! Every map here is bounded in entries (and so in bytes); none grows with a flood.

use core::net::SocketAddr;

use smallvec::SmallVec;

use super::Node;
use crate::id::{Id, NodeHandle};
use crate::time::{Duration, Instant};
use crate::util::FxHashMap;
use crate::wire::{Message, MessageType};

/// Bytes a node may send to an unvalidated address per byte received from it (QUIC's factor).
pub const AMPLIFICATION: u64 = 3;

/// The `sent_at` of an address-validation ping (never a real timestamp): it asks only for the
/// echo of its nonce, and a joining node answers it even before it answers probes.
pub const VALIDATION_PING: u64 = u64::MAX;

/// Most unvalidated addresses whose bytes in and out are tracked.
const LEDGER_CAP: usize = 4096;
/// A ledger entry idle this long may be forgotten (its credit with it).
const LEDGER_IDLE: Duration = Duration::from_secs(30);
/// Most addresses remembered as validated beyond the peers the tables hold.
const VALIDATED_CAP: usize = 4096;
/// How long a validation (beyond table membership) lasts.
const VALIDATED_TTL: Duration = Duration::from_secs(600);
/// Most address validations in flight.
const CHECKS_CAP: usize = 256;
/// A validation unanswered this long has failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// A new request from an address whose validation ping is older than this pings it again (one
/// small datagram per request: its ping or pong may have been lost).
const CHECK_RESEND: Duration = Duration::from_secs(1);
/// Requests waiting on one validation (more are dropped: the requester retries).
const ACTIONS_PER_CHECK: usize = 4;
/// Most silent addresses remembered.
const SILENT_CAP: usize = 4096;
/// Most sources with a token bucket.
const BUCKETS_CAP: usize = 4096;

/// Control requests (join, row, leaf set, ping) per second from one address, and their burst.
const CONTROL_RATE: u64 = 50;
const CONTROL_BURST: u64 = 100;
/// Routed messages per second from one unvalidated address, and their burst (validated peers
/// forward through us without a limit: the pending-message and byte budgets bound them).
const ROUTED_RATE: u64 = 2000;
const ROUTED_BURST: u64 = 2000;

/// Micro-tokens per token (buckets refill in µs).
const TOKEN: u64 = 1_000_000;

/// What to do once an address is validated.
#[derive(Clone, Debug)]
pub(super) enum Action {
    /// Handle this join request (answer the joiner, pass the request on).
    Join {
        joiner: NodeHandle,
        join_id: u64,
        hops: u8,
    },
}

/// An address validation in flight.
#[derive(Debug)]
struct Check {
    nonce: u64,
    sent_at: Instant,
    started: Instant,
    actions: SmallVec<[Action; 2]>,
}

/// Bytes and datagrams exchanged with one unvalidated address.
#[derive(Clone, Copy, Debug)]
struct Credit {
    bytes_in: u64,
    bytes_out: u64,
    dgrams_in: u64,
    dgrams_out: u64,
    last: Instant,
}

/// One source's token buckets (µ-tokens), for control requests and for routed messages.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    control: u64,
    routed: u64,
    last: Instant,
}

impl Bucket {
    /// The bucket as it stands at `now` (refilled for the time since it was last used).
    fn refilled(self, now: Instant) -> Bucket {
        let idle = (now - self.last).as_micros();
        let fill = |tokens: u64, rate: u64, burst: u64| {
            tokens
                .saturating_add(idle.saturating_mul(rate))
                .min(burst * TOKEN)
        };
        Bucket {
            control: fill(self.control, CONTROL_RATE, CONTROL_BURST),
            routed: fill(self.routed, ROUTED_RATE, ROUTED_BURST),
            last: now,
        }
    }
}

/// What one request costs, for rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cost {
    /// Free: answers to our own requests (checked against them), acknowledgements, notices.
    None,
    /// A request that makes us compute and answer.
    Control,
    /// A routed message from an address we have not validated.
    Routed,
}

/// The anti-amplification and rate-limiting state of one node.
#[derive(Debug, Default)]
pub(super) struct Guard {
    /// The address each peer record was validated at (one id per address).
    pub(super) peer_addrs: FxHashMap<SocketAddr, Id>,
    /// Addresses that echoed a nonce of ours, until when that counts.
    validated: FxHashMap<SocketAddr, Instant>,
    /// Unvalidated addresses: what they sent us and what we sent them.
    ledger: FxHashMap<SocketAddr, Credit>,
    /// Validations in flight, one per address.
    checks: FxHashMap<SocketAddr, Check>,
    /// Addresses that did not answer a probe or validation, until when they are left alone.
    silent: FxHashMap<SocketAddr, Instant>,
    /// Per-source token buckets.
    buckets: FxHashMap<SocketAddr, Bucket>,
}

/// Drops entries of `m` that `keep` refuses when it is at `cap`; whether there is room now.
fn make_room<V>(
    m: &mut FxHashMap<SocketAddr, V>,
    cap: usize,
    keep: impl FnMut(&V) -> bool,
) -> bool {
    if m.len() < cap {
        return true;
    }
    let mut keep = keep;
    m.retain(|_, v| keep(v));
    m.len() < cap
}

impl Guard {
    /// Whether `addr` has proved itself (a peer's, or a recent nonce echo).
    pub(super) fn is_validated(&self, addr: SocketAddr) -> bool {
        self.peer_addrs.contains_key(&addr) || self.validated.contains_key(&addr)
    }

    /// `addr` echoed a nonce of ours at `now`.
    pub(super) fn mark_validated(&mut self, now: Instant, addr: SocketAddr) {
        self.ledger.remove(&addr);
        self.silent.remove(&addr);
        if !self.validated.contains_key(&addr)
            && !make_room(&mut self.validated, VALIDATED_CAP, |&until| until > now)
        {
            return;
        }
        self.validated.insert(addr, now + VALIDATED_TTL);
    }

    /// Whether `addr` stayed silent recently (not to be probed or validated again yet).
    pub(super) fn is_silent(&self, now: Instant, addr: SocketAddr) -> bool {
        self.silent.get(&addr).is_some_and(|&until| until > now)
    }

    /// `addr` did not answer: leave it alone for `ttl`.
    pub(super) fn mark_silent(&mut self, now: Instant, addr: SocketAddr, ttl: Duration) {
        if self.is_validated(addr) {
            return;
        }
        if make_room(&mut self.silent, SILENT_CAP, |&until| until > now) {
            self.silent.insert(addr, now + ttl);
        }
    }

    /// A datagram of `len` bytes arrived from `addr`: credit for replies if it is unvalidated.
    fn received(&mut self, now: Instant, addr: SocketAddr, len: usize) {
        if self.is_validated(addr) {
            return;
        }
        if !self.ledger.contains_key(&addr)
            && !make_room(&mut self.ledger, LEDGER_CAP, |c| c.last + LEDGER_IDLE > now)
        {
            return;
        }
        let c = self.ledger.entry(addr).or_insert(Credit {
            bytes_in: 0,
            bytes_out: 0,
            dgrams_in: 0,
            dgrams_out: 0,
            last: now,
        });
        c.bytes_in = c.bytes_in.saturating_add(len as u64);
        c.dgrams_in += 1;
        c.last = now;
    }

    /// Whether unvalidated `addr` has sent us anything we keep account of.
    pub(super) fn has_ledger(&self, addr: SocketAddr) -> bool {
        self.ledger.contains_key(&addr)
    }

    /// Whether a reply of `len` bytes to unvalidated `addr` would be within its credit (3x its
    /// bytes, and its datagrams).
    pub(super) fn can_spend(&self, addr: SocketAddr, len: usize) -> bool {
        self.ledger.get(&addr).is_some_and(|c| {
            c.dgrams_out < c.dgrams_in
                && c.bytes_out + len as u64 <= c.bytes_in.saturating_mul(AMPLIFICATION)
        })
    }

    /// Whether a reply of `len` bytes may go to unvalidated `addr` (and books it if so): within
    /// 3x its bytes and within its datagrams.
    pub(super) fn spend(&mut self, addr: SocketAddr, len: usize) -> bool {
        let Some(c) = self.ledger.get_mut(&addr) else {
            return false;
        };
        let len = len as u64;
        if c.dgrams_out >= c.dgrams_in
            || c.bytes_out + len > c.bytes_in.saturating_mul(AMPLIFICATION)
        {
            return false;
        }
        c.bytes_out += len;
        c.dgrams_out += 1;
        true
    }

    /// Takes one token of `cost` from `addr`'s bucket; whether there was one.
    fn take_token(&mut self, now: Instant, addr: SocketAddr, cost: Cost) -> bool {
        if cost == Cost::None {
            return true;
        }
        if !self.buckets.contains_key(&addr) {
            // Full buckets carry no information: forget them first when room runs out.
            let not_full = |b: &Bucket| {
                let b = b.refilled(now);
                b.control < CONTROL_BURST * TOKEN || b.routed < ROUTED_BURST * TOKEN
            };
            if !make_room(&mut self.buckets, BUCKETS_CAP, not_full) {
                return false;
            }
        }
        let b = self.buckets.entry(addr).or_insert(Bucket {
            control: CONTROL_BURST * TOKEN,
            routed: ROUTED_BURST * TOKEN,
            last: now,
        });
        *b = b.refilled(now);
        let tokens = match cost {
            Cost::Routed => &mut b.routed,
            _ => &mut b.control,
        };
        if *tokens < TOKEN {
            return false;
        }
        *tokens -= TOKEN;
        true
    }

    /// Forgets what has expired (called every leaf tick).
    fn expire(&mut self, now: Instant) {
        self.validated.retain(|_, until| *until > now);
        self.silent.retain(|_, until| *until > now);
        self.ledger.retain(|_, c| c.last + LEDGER_IDLE > now);
        // A validation that went unanswered just ends (its requests with it): a new request
        // may start another, at most one small ping per request and per second.
        self.checks.retain(|_, c| c.started + CHECK_TIMEOUT > now);
        let idle = Duration::from_secs(60);
        self.buckets.retain(|_, b| b.last + idle > now);
        shrink(&mut self.validated);
        shrink(&mut self.silent);
        shrink(&mut self.ledger);
        shrink(&mut self.checks);
        shrink(&mut self.buckets);
        shrink(&mut self.peer_addrs);
    }

    /// Approximate heap bytes.
    pub(super) fn heap_bytes(&self) -> usize {
        let slot = |entry: usize| entry + core::mem::size_of::<SocketAddr>() + 8;
        self.peer_addrs.capacity() * slot(16)
            + self.validated.capacity() * slot(8)
            + self.ledger.capacity() * slot(core::mem::size_of::<Credit>())
            + self.checks.capacity() * slot(core::mem::size_of::<Check>())
            + self.silent.capacity() * slot(8)
            + self.buckets.capacity() * slot(core::mem::size_of::<Bucket>())
    }
}

fn shrink<V>(m: &mut FxHashMap<SocketAddr, V>) {
    if m.capacity() > 4 * m.len() + 16 {
        m.shrink_to(2 * m.len());
    }
}

/// The rate-limiting class of an incoming message.
fn cost_of(msg: &Message, validated: bool) -> Cost {
    match msg {
        Message::JoinRequest { .. }
        | Message::LeafSetRequest { .. }
        | Message::RowRequest { .. }
        | Message::Ping { .. } => Cost::Control,
        Message::Routed { .. } if !validated => Cost::Routed,
        _ => Cost::None,
    }
}

impl Node {
    /// Whether `addr` has proved itself (see the module docs).
    pub(super) fn validated_addr(&self, addr: SocketAddr) -> bool {
        self.guard.is_validated(addr)
    }

    /// Books a decoded datagram from `from` and meters it; whether to handle it.
    pub(super) fn admit_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        len: usize,
        msg: &Message,
    ) -> bool {
        let validated = self.guard.is_validated(from);
        self.guard.received(now, from, len);
        if self.guard.take_token(now, from, cost_of(msg, validated)) {
            return true;
        }
        self.stats.rate_limited += 1;
        false
    }

    /// Whether a frame of type `ty` and `len` bytes may go to `dst` (QUIC's rule for replies
    /// to unvalidated addresses; probes and notices are budgeted where they are made).
    pub(super) fn may_send(&mut self, dst: SocketAddr, ty: MessageType, len: usize) -> bool {
        if self.guard.is_validated(dst) {
            return true;
        }
        let allowed = match ty {
            // Probes: budgeted by `probe` (which starts one to a stranger that sent us something
            // only within 3x what it sent) and `validate_then`. Our own messages' hops (to table members, or where the application said), and
            // one small notice per routed message to its source.
            MessageType::Ping
            | MessageType::LeafSetRequest
            | MessageType::Routed
            | MessageType::DeliveryAck
            | MessageType::Undeliverable => true,
            // Our own join's first request (a forwarded one goes to a table member), and the
            // row requests of its nearest-node walk (at most 10 a join, see `discovery`).
            MessageType::JoinRequest | MessageType::RowRequest
                if self.phase == super::Phase::Joining =>
            {
                true
            }
            _ => self.guard.spend(dst, len),
        };
        if !allowed {
            self.stats.amplification_drops += 1;
        }
        allowed
    }

    /// Runs `action` once `addr` is validated: at once if it is, else after a validation ping's
    /// pong. One validation per address at a time (pinged again at most once a second, on a
    /// new request), within a global budget.
    pub(super) fn validate_then(&mut self, now: Instant, addr: SocketAddr, action: Action) {
        if self.guard.is_validated(addr) {
            self.run_action(now, action);
            return;
        }
        if let Some(c) = self.guard.checks.get_mut(&addr) {
            if c.actions.len() < ACTIONS_PER_CHECK {
                c.actions.push(action);
            } else {
                self.stats.validation_drops += 1;
            }
            if c.sent_at + CHECK_RESEND <= now {
                c.sent_at = now;
                let nonce = c.nonce;
                self.send_validation(now, addr, nonce);
            }
            return;
        }
        if self.guard.checks.len() >= CHECKS_CAP {
            self.guard.expire(now);
            if self.guard.checks.len() >= CHECKS_CAP {
                self.stats.validation_drops += 1;
                return;
            }
        }
        let nonce = self.rng.next_u64();
        let mut actions = SmallVec::new();
        actions.push(action);
        self.guard.checks.insert(
            addr,
            Check {
                nonce,
                sent_at: now,
                started: now,
                actions,
            },
        );
        self.stats.validations += 1;
        self.send_validation(now, addr, nonce);
    }

    fn send_validation(&mut self, now: Instant, addr: SocketAddr, nonce: u64) {
        // `active: false`: a validation says nothing about membership (the receiver does not
        // take us as a holder or candidate because of it). `sent_at` [`VALIDATION_PING`]
        // marks it, so a newcomer that answers no probe yet answers it (a join path checks the
        // joiner's address with it).
        let _ = now;
        let ping = Message::Ping {
            nonce,
            sent_at: VALIDATION_PING,
            active: false,
        };
        self.send(addr, &ping);
    }

    /// A pong from `from` with `nonce`: if it answers a validation, the address is validated
    /// and the waiting actions run. Whether it did.
    pub(super) fn validation_answered(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
    ) -> bool {
        match self.guard.checks.get(&from) {
            Some(c) if c.nonce == nonce => {}
            _ => return false,
        }
        let Some(check) = self.guard.checks.remove(&from) else {
            return false;
        };
        self.guard.mark_validated(now, from);
        for action in check.actions {
            self.run_action(now, action);
        }
        true
    }

    fn run_action(&mut self, now: Instant, action: Action) {
        match action {
            Action::Join {
                joiner,
                join_id,
                hops,
            } => self.answer_join_request(now, joiner, join_id, hops),
        }
    }

    /// Periodic upkeep of the guard's maps (every leaf tick).
    pub(super) fn guard_tick(&mut self, now: Instant) {
        self.guard.expire(now);
    }
}
