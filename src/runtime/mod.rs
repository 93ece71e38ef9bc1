//! The real-socket runtime: one OS thread running a `mio::Poll` loop that drives one or more
//! nodes ([`crate::node::Node`]) over UDP (one socket each).
//!
//! # What an application does
//!
//! 1. create a [`Runtime`] (it spawns its loop thread);
//! 2. add a node with [`Runtime::add_node`], giving a [`NodeConfig`] (bind address plus the
//!    node's [`Config`](crate::node::Config)) and an [`Application`] (its upcalls); the socket is
//!    bound at once, so a busy port is reported right there ([`StartError::Bind`]);
//! 3. start the node alone ([`Handle::start_alone`]) or join through bootstrap nodes
//!    ([`Handle::join`], which waits with a timeout and reports a join nobody answered as
//!    [`JoinError::NoBootstrapAnswered`]);
//! 4. route messages ([`Handle::route`]) and ask the KBR queries from any thread; receive
//!    `deliver` / `forward` / `update` upcalls on the loop thread;
//! 5. leave gracefully ([`Handle::leave`]: tell the leaf set, flush, stop) or shut the whole
//!    runtime down ([`Runtime::shutdown`], also done on drop).
//!
//! ```
//! use pastry::runtime::{Application, Delivery, NodeConfig, Runtime};
//! use pastry::node::Node;
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! struct Inbox(mpsc::Sender<Vec<u8>>);
//! impl Application for Inbox {
//!     fn deliver(&mut self, _node: &Node, msg: Delivery) {
//!         let _ = self.0.send(msg.payload.to_vec());
//!     }
//! }
//!
//! let rt = Runtime::new().unwrap();
//! let (tx, rx) = mpsc::channel();
//! let any = "127.0.0.1:0".parse().unwrap();
//! let a = rt.add_node(NodeConfig::new(any), Inbox(tx.clone())).unwrap();
//! a.start_alone().unwrap();
//! a.wait_joined(Duration::from_secs(5)).unwrap();
//! let b = rt.add_node(NodeConfig::new(any), Inbox(tx)).unwrap();
//! b.join(&[a.addr()], Duration::from_secs(10)).unwrap();
//! b.route(a.id(), &b"hello"[..]).unwrap(); // a is the root of its own id
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"hello");
//! rt.shutdown();
//! ```
//!
//! # Threads and locks
//!
//! Each node has one owner, the loop thread. Other threads reach it through a command queue (a
//! `parking_lot` mutex held only for a push or a swap) and a `mio::Waker`; blocking calls wait
//! for the loop's answer on a channel. Upcalls run on the loop thread and must not block;
//! [`Handle::route`] works from inside them (it only queues), the blocking calls refuse to
//! ([`CallError::OnLoopThread`]), and a leave asked from an upcall is deferred until it
//! returns. A panicking upcall is caught and counted ([`NodeStats::upcall_panics`]).
//!
//! # Time
//!
//! The loop converts the OS monotonic clock to [`crate::Instant`]: microseconds since the
//! runtime started. It sleeps until the earliest node deadline, so idle nodes cost nothing
//! between their timers.

mod app;
mod config;
mod error;
mod event_loop;
mod handle;
mod shared;

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Why [`Handle::route`] refused a message: the node's own error type (refusals decided later
/// on the loop thread are counted in [`NodeStats::routes_refused`]).
pub use crate::node::RouteError;
pub use app::{Application, Delivery};
pub(crate) use config::{fresh_msg_id, is_unspecified_ip, os_seed};
pub use config::{NodeConfig, DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT_LIMIT};
pub use error::{CallError, JoinError, StartError};
pub use handle::{Handle, NodeStats};

use event_loop::{EventLoop, WAKER};
use shared::{Command, NewNode, NodeStatus, Shared};

use crate::node::Node;

/// One event-loop thread serving any number of nodes. Dropping it shuts it down (every node
/// leaves gracefully).
#[derive(Debug)]
pub struct Runtime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    /// Starts a runtime: creates its poll instance and spawns its loop thread.
    ///
    /// # Errors
    /// The OS refused the poll instance, the waker or the thread.
    pub fn new() -> io::Result<Runtime> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let registry = poll.registry().try_clone()?;
        let shared = Arc::new(Shared::new(waker, registry));
        // The runtime is the layer that reads the OS clock (converted to `pastry::Instant`).
        #[allow(clippy::disallowed_methods)]
        let start = std::time::Instant::now();
        let event_loop = EventLoop::new(poll, shared.clone(), start);
        // The runtime is the one layer that spawns threads: this is its loop thread.
        let thread = std::thread::Builder::new()
            .name("pastry-runtime".into())
            .spawn(move || event_loop.run())?;
        Ok(Runtime {
            shared,
            thread: Some(thread),
        })
    }

    /// Binds a UDP socket to `cfg.bind`, creates the node (idle) and hands it to the loop.
    /// Start it with [`Handle::start_alone`] or [`Handle::join`].
    ///
    /// The bind address must be one peers can reach: an unspecified address (`0.0.0.0`,
    /// `::`, or the IPv4-mapped `::ffff:0.0.0.0`) is refused, since the node advertises the
    /// address it is bound to.
    ///
    /// # Errors
    /// [`StartError::Config`] for an invalid configuration, [`StartError::Bind`] when the
    /// address cannot be bound (a busy port: [`io::ErrorKind::AddrInUse`]; an unspecified
    /// address: [`io::ErrorKind::InvalidInput`]),
    /// [`StartError::Io`], [`StartError::Stopped`].
    pub fn add_node(&self, cfg: NodeConfig, app: impl Application) -> Result<Handle, StartError> {
        let mut node_cfg = cfg.node;
        node_cfg.validate().map_err(StartError::Config)?;
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&cfg.max_in_flight) {
            return Err(StartError::Config(crate::node::ConfigError::Limits));
        }
        if is_unspecified_ip(cfg.bind.ip()) {
            // The node tells its peers the address it is bound to: 0.0.0.0 / :: (also mapped,
            // ::ffff:0.0.0.0) would send them nowhere.
            return Err(StartError::Bind {
                addr: cfg.bind,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an unspecified address (0.0.0.0, :: or ::ffff:0.0.0.0) cannot be advertised \
                     to peers: bind a specific address they can reach",
                ),
            });
        }
        if node_cfg.seed == 0 {
            node_cfg.seed = config::os_seed();
        }
        let std_socket =
            std::net::UdpSocket::bind(cfg.bind).map_err(|source| StartError::Bind {
                addr: cfg.bind,
                source,
            })?;
        std_socket.set_nonblocking(true).map_err(StartError::Io)?;
        let local = std_socket.local_addr().map_err(StartError::Io)?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        let node = Node::new(node_cfg, local).map_err(StartError::Config)?;
        let token = self.shared.token();
        let status = Arc::new(NodeStatus::new(token, &node, cfg.max_in_flight));
        self.shared
            .registry
            .register(&mut socket, mio::Token(token), mio::Interest::READABLE)
            .map_err(StartError::Io)?;
        let new = NewNode {
            token,
            node,
            socket,
            app: Box::new(app),
            status: status.clone(),
        };
        self.shared
            .push(Command::Add(Box::new(new)))
            .map_err(|_| StartError::Stopped)?;
        Ok(Handle {
            shared: self.shared.clone(),
            status,
        })
    }

    /// Whether the loop thread has ended.
    pub fn is_stopped(&self) -> bool {
        self.shared.is_stopped()
    }

    /// Every node leaves gracefully (best effort: one flush), then the loop thread ends; waits
    /// for it. (Called from an upcall, it cannot wait for its own thread: it asks the loop to
    /// stop and returns.)
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.shared.push(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            if self.shared.on_loop_thread() {
                return;
            }
            // A panic of the loop thread was already reported by the panic hook.
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_and_runtimes_are_send_and_sync() {
        assert_send_sync::<Handle>();
        assert_send_sync::<Runtime>();
    }

    #[test]
    fn an_unspecified_bind_address_is_refused() {
        let rt = Runtime::new().unwrap();
        // Every spelling: mapped (::ffff:0.0.0.0 = ::ffff:0:0) and compatible (::0.0.0.0 = ::).
        for any in [
            "0.0.0.0:0",
            "[::]:0",
            "[::ffff:0.0.0.0]:0",
            "[::ffff:0:0]:0",
            "[::0.0.0.0]:0",
        ] {
            match rt.add_node(NodeConfig::new(any.parse().unwrap()), ()) {
                Err(StartError::Bind { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::InvalidInput)
                }
                other => panic!("{any}: {other:?}"),
            }
        }
        let cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap()).with_max_in_flight(0);
        assert!(matches!(rt.add_node(cfg, ()), Err(StartError::Config(_))));
    }

    /// Polls `f` for up to 20 s (a real-socket test: the runtime runs on the OS clock).
    #[allow(clippy::disallowed_methods)]
    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn route_is_refused_past_the_in_flight_budget_until_messages_finish() {
        use crate::id::{Id, NodeHandle};
        use crate::time::Duration;
        let rt = Runtime::new().unwrap();
        let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap()).with_max_in_flight(3);
        cfg.node.rto_initial = Duration::from_millis(20);
        cfg.node.rto_min = Duration::from_millis(20);
        cfg.node.rto_max = Duration::from_millis(40);
        cfg.node.max_retries = 1;
        let a = rt.add_node(cfg, ()).unwrap();
        a.start_alone().unwrap();
        a.wait_joined(std::time::Duration::from_secs(5)).unwrap();
        // Direct sends to a port nobody serves: in flight until their hop fails.
        let dead = NodeHandle {
            id: Id(1),
            addr: "127.0.0.1:9".parse().unwrap(),
        };
        for _ in 0..3 {
            a.route_with_hint(None, &b"d"[..], Some(dead)).unwrap();
        }
        assert_eq!(a.in_flight(), 3);
        assert_eq!(
            a.route_with_hint(None, &b"d"[..], Some(dead)),
            Err(RouteError::Overloaded)
        );
        // Their failures are reported: the budget is free again.
        assert!(
            eventually(|| a.in_flight() == 0),
            "in flight: {}",
            a.in_flight()
        );
        // A message to the node itself finishes at its local delivery.
        a.route(a.id(), &b"self"[..]).unwrap();
        assert!(eventually(|| a.in_flight() == 0));
        // Abort: gone at once, no goodbye.
        a.abort(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(a.phase(), crate::node::Phase::Stopped);
        assert_eq!(a.route(a.id(), &b"late"[..]), Err(RouteError::Stopped));
        assert_eq!(
            a.abort(std::time::Duration::from_secs(5)),
            Err(CallError::Stopped)
        );
    }
}
