//! Node configuration: every limit and timer, validated once.

use core::fmt;

use crate::id::{DigitBits, Id};
use crate::time::Duration;

/// The configuration of one node. Build it with [`Config::default`] and the `with_*` setters or by
/// assigning fields, then [`Config::validate`] (called by [`crate::node::Node::new`]).
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's id; `None` draws one from `seed`.
    pub id: Option<Id>,
    /// Digit width `b` (1, 2 or 4). Every node of an overlay must use the same.
    pub b: DigitBits,
    /// Leaf-set size `L` (even, 2..=64): `L/2` members each side.
    pub leaf_set_size: usize,
    /// Neighbourhood-set size `M` (0..=256).
    pub neighborhood_size: usize,
    /// Overlay id: frames from other networks are dropped.
    pub network: u32,
    /// Seed of the node's PRNG (ids, nonces, message ids, jitter).
    pub seed: u64,
    /// Largest application payload accepted by `route` (bytes, at most [`MAX_PAYLOAD_LIMIT`]).
    pub max_payload: usize,
    /// Period of leaf-set liveness checks: one of the two nearest leaves on each side not heard
    /// from for this long is pinged (farther leaves after three periods).
    pub leaf_probe_period: Duration,
    /// Leaf sets are exchanged with the two adjacent leaves every this many probe periods
    /// (doubling, up to 8×, while the leaf set does not change).
    pub leaf_exchange_every: u32,
    /// Period of routing-table maintenance (one row refreshed per period).
    pub rt_maintenance_period: Duration,
    /// Retransmission timeout before any RTT is measured.
    pub rto_initial: Duration,
    /// Lower bound of the retransmission timeout.
    pub rto_min: Duration,
    /// Upper bound of the retransmission timeout.
    pub rto_max: Duration,
    /// Retransmissions of one hop before the next hop is declared failed and the message rerouted.
    pub max_retries: u32,
    /// Probe retransmissions before a silent node is declared failed.
    pub probe_retries: u32,
    /// Time to wait for the join's root to answer before retrying.
    pub join_timeout: Duration,
    /// Join attempts (over the bootstrap list, round robin) before giving up.
    pub join_attempts: u32,
    /// Routed messages are dropped (and reported to their source) after this many hops.
    pub max_hops: u8,
    /// Time a source waits for the root's end-to-end acknowledgement before it sends the
    /// message again (doubling with each attempt).
    pub delivery_timeout: Duration,
    /// End-to-end attempts (1..=4) before the source reports the message undeliverable
    /// (`undeliverable_reason::LOST`).
    pub delivery_attempts: u8,
    /// Most messages awaiting a hop acknowledgement at once; more are refused.
    pub max_pending: usize,
    /// Most outstanding probes at once; further candidates are skipped until some finish.
    pub max_probes: usize,
    /// Most datagrams queued for sending; beyond it new ones are dropped and counted.
    pub max_outbox: usize,
    /// The node's byte budget (default [`DEFAULT_MAX_BUFFER_BYTES`], at least
    /// [`MIN_BUFFER_BYTES`]): routed messages it buffers (hops awaiting acknowledgement, its own
    /// messages awaiting the root's, messages held while joining; each counted as its payload
    /// plus about 160 bytes) and datagrams queued for sending, together. Beyond it, `route`
    /// returns `Overloaded`, messages passing through are dropped and reported to their source
    /// (`undeliverable_reason::OVERLOAD`), and datagrams are dropped and counted.
    pub max_buffer_bytes: usize,
    /// How long a failed node's id is remembered so stale lists do not bring it back.
    pub tombstone_ttl: Duration,
}

/// The default of [`Config::max_buffer_bytes`]: 8 MiB (512 messages of the default 16 KiB
/// payload limit in flight through one node).
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// The smallest [`Config::max_buffer_bytes`]: one message of the largest payload, with room
/// for control traffic.
pub const MIN_BUFFER_BYTES: usize = 256 * 1024;

/// Largest payload any node accepts: what fits a UDP datagram with the frame around it.
pub const MAX_PAYLOAD_LIMIT: usize = 65_507 - 128;

impl Default for Config {
    fn default() -> Config {
        Config {
            id: None,
            b: DigitBits::FOUR,
            leaf_set_size: 16,
            neighborhood_size: 32,
            network: 0,
            seed: 0,
            max_payload: 16 * 1024,
            leaf_probe_period: Duration::from_secs(20),
            leaf_exchange_every: 4,
            rt_maintenance_period: Duration::from_secs(30),
            rto_initial: Duration::from_millis(500),
            rto_min: Duration::from_millis(50),
            rto_max: Duration::from_secs(10),
            max_retries: 5,
            probe_retries: 3,
            join_timeout: Duration::from_secs(3),
            join_attempts: 8,
            max_hops: 64,
            delivery_timeout: Duration::from_secs(5),
            delivery_attempts: 4,
            max_pending: 8192,
            max_probes: 1024,
            max_outbox: 16 * 1024,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            tombstone_ttl: Duration::from_secs(60),
        }
    }
}

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `leaf_set_size` is odd or outside 2..=64.
    LeafSetSize(usize),
    /// `neighborhood_size` above 256.
    NeighborhoodSize(usize),
    /// `max_payload` above [`MAX_PAYLOAD_LIMIT`].
    MaxPayload(usize),
    /// A timer is zero, or `rto_min > rto_max`.
    Timers,
    /// A count limit (`max_pending`, `max_probes`, `max_outbox`, `max_hops`,
    /// `join_attempts`, `leaf_exchange_every`) is zero, `delivery_attempts` is not 1..=4, or
    /// `max_buffer_bytes` is below [`MIN_BUFFER_BYTES`].
    Limits,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::LeafSetSize(n) => write!(f, "leaf set size {n}: must be even, 2..=64"),
            ConfigError::NeighborhoodSize(n) => write!(f, "neighbourhood size {n}: at most 256"),
            ConfigError::MaxPayload(n) => {
                write!(f, "max payload {n}: at most {MAX_PAYLOAD_LIMIT} bytes")
            }
            ConfigError::Timers => f.write_str("timers must be non-zero and rto_min <= rto_max"),
            ConfigError::Limits => f.write_str(
                "queue, probe, hop and attempt limits must be non-zero, delivery attempts \
                     1..=4, and the byte budget at least 256 KiB",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field found out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = self.leaf_set_size;
        if !(2..=64).contains(&l) || l % 2 != 0 {
            return Err(ConfigError::LeafSetSize(l));
        }
        if self.neighborhood_size > 256 {
            return Err(ConfigError::NeighborhoodSize(self.neighborhood_size));
        }
        if self.max_payload > MAX_PAYLOAD_LIMIT {
            return Err(ConfigError::MaxPayload(self.max_payload));
        }
        let timers = [
            self.leaf_probe_period,
            self.rt_maintenance_period,
            self.rto_initial,
            self.rto_min,
            self.rto_max,
            self.join_timeout,
            self.tombstone_ttl,
            self.delivery_timeout,
        ];
        if timers.contains(&Duration::ZERO) || self.rto_min > self.rto_max {
            return Err(ConfigError::Timers);
        }
        if self.max_pending == 0
            || self.max_probes == 0
            || self.max_outbox == 0
            || self.max_hops == 0
            || self.join_attempts == 0
            || self.leaf_exchange_every == 0
            || !(1..=4).contains(&self.delivery_attempts)
            || self.max_buffer_bytes < MIN_BUFFER_BYTES
        {
            return Err(ConfigError::Limits);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_each_bad_field_is_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.leaf_set_size = 7), ConfigError::LeafSetSize(7));
        assert_eq!(bad(|c| c.leaf_set_size = 66), ConfigError::LeafSetSize(66));
        assert_eq!(
            bad(|c| c.neighborhood_size = 300),
            ConfigError::NeighborhoodSize(300)
        );
        assert_eq!(
            bad(|c| c.max_payload = 1 << 20),
            ConfigError::MaxPayload(1 << 20)
        );
        assert_eq!(
            bad(|c| c.rto_min = Duration::from_secs(20)),
            ConfigError::Timers
        );
        assert_eq!(bad(|c| c.max_pending = 0), ConfigError::Limits);
    }
}
