//! What a node needs to run on real sockets: the sans-IO [`Config`] plus a bind address.

use core::net::{IpAddr, SocketAddr};

use crate::id::{DigitBits, Id};
use crate::node::Config;
use crate::time::Duration;

/// The configuration of a node run by a [`Runtime`](super::Runtime): where to bind its UDP
/// socket, and the node's own [`Config`] (id, `b`, leaf-set size, network id, timers, payload
/// limit, …).
///
/// A `node.seed` of 0 (the default) means "draw a seed from the OS" when the node is added, so
/// that nodes without an explicit id get distinct random ids. Set a non-zero seed for
/// reproducible ids, nonces and jitter.
///
/// ```
/// use pastry::runtime::NodeConfig;
/// use pastry::Duration;
///
/// let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap())
///     .with_network(7)
///     .with_leaf_set_size(8)
///     .with_max_payload(1024);
/// cfg.node.leaf_probe_period = Duration::from_millis(500);
/// assert_eq!(cfg.node.network, 7);
/// ```
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The UDP address to bind (port 0: an ephemeral port). It is also the address the node
    /// gives its peers, so it must be one they can reach: an unspecified address (`0.0.0.0`,
    /// `::`, or the IPv4-mapped `::ffff:0.0.0.0`) is refused by [`Runtime::add_node`](super::Runtime::add_node).
    pub bind: SocketAddr,
    /// The node's protocol configuration.
    pub node: Config,
    /// The budget of messages in flight: routed by [`Handle::route`](super::Handle::route)
    /// and not yet finished (acknowledged by their root, delivered here, or reported
    /// undeliverable). A route beyond it is refused with
    /// [`RouteError::Overloaded`](crate::node::RouteError::Overloaded) instead of building a
    /// backlog. 1..=[`MAX_IN_FLIGHT_LIMIT`]; default [`DEFAULT_MAX_IN_FLIGHT`].
    pub max_in_flight: usize,
}

/// Whether `ip` is an unspecified address in any spelling: `0.0.0.0`, `::`, `::0.0.0.0` (the
/// same as `::`) and the IPv4-mapped `::ffff:0.0.0.0`, which a dual-stack socket treats as
/// `0.0.0.0`. Peers cannot be told such an address, so nodes refuse to be bound to one.
pub(crate) fn is_unspecified_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_unspecified()
}

/// The default budget of messages in flight per node ([`NodeConfig::max_in_flight`]).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// The largest budget of messages in flight ([`NodeConfig::max_in_flight`]): the runtime's
/// command queue holds no more.
pub const MAX_IN_FLIGHT_LIMIT: usize = super::shared::QUEUE_CAP;

impl NodeConfig {
    /// Defaults for every protocol setting, bound to `bind`.
    pub fn new(bind: SocketAddr) -> NodeConfig {
        NodeConfig {
            bind,
            node: Config::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
    /// Sets the budget of messages in flight ([`NodeConfig::max_in_flight`]).
    pub fn with_max_in_flight(mut self, n: usize) -> NodeConfig {
        self.max_in_flight = n;
        self
    }
    /// Uses `id` as the node id (default: random).
    pub fn with_id(mut self, id: Id) -> NodeConfig {
        self.node.id = Some(id);
        self
    }
    /// Joins the overlay `network` (frames of other networks are dropped).
    pub fn with_network(mut self, network: u32) -> NodeConfig {
        self.node.network = network;
        self
    }
    /// Digit width `b` (every node of an overlay must use the same).
    pub fn with_digit_bits(mut self, b: DigitBits) -> NodeConfig {
        self.node.b = b;
        self
    }
    /// Leaf-set size `L` (even, 2..=64).
    pub fn with_leaf_set_size(mut self, l: usize) -> NodeConfig {
        self.node.leaf_set_size = l;
        self
    }
    /// Largest payload `route` accepts, in bytes.
    pub fn with_max_payload(mut self, max: usize) -> NodeConfig {
        self.node.max_payload = max;
        self
    }
    /// Seed of the node's PRNG (0: drawn from the OS).
    pub fn with_seed(mut self, seed: u64) -> NodeConfig {
        self.node.seed = seed;
        self
    }
    /// Shortens or lengthens the failure-detection timers: leaf-set probe period and
    /// routing-table maintenance period.
    pub fn with_maintenance(mut self, leaf_probe: Duration, rt_period: Duration) -> NodeConfig {
        self.node.leaf_probe_period = leaf_probe;
        self.node.rt_maintenance_period = rt_period;
        self
    }
}

/// A seed from the OS's random number generator (getrandom), never 0.
///
/// Should the OS refuse (it practically never does on the supported systems), the seed is a
/// process-wide counter mixed with the process id: still distinct within the process, so
/// nodes started without an id do not all draw the same one.
pub(crate) fn os_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut b = [0u8; 8];
    let seed = match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => {
            let k = COUNTER.fetch_add(1, Ordering::Relaxed);
            mix(k ^ (u64::from(std::process::id()) << 32))
        }
    };
    seed | 1
}

/// splitmix64's finaliser: a bijection that spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A fresh message id for `route`, known to the caller before the node runs the route: a
/// process-wide counter, offset by a random salt and mixed by splitmix64's finaliser (a
/// bijection, so ids never repeat within a process and look random across processes).
pub(crate) fn fresh_msg_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SALT: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    mix(SALT
        .get_or_init(os_seed)
        .wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}
