//! # pastry
//!
//! An embeddable node of a Pastry overlay (Rowstron & Druschel, Middleware 2001), with the
//! key-based-routing tier of the Common API (Dabek et al., IPTPS 2003): an application hands a
//! node a message and a 128-bit key; the overlay routes it, in about log₁₆ N hops, to the live
//! node whose id is numerically closest to the key, calling `forward` on every node on the way
//! and `deliver` at that root. Leaf sets give replica sets (`replica_set`, `update`), routing
//! tables prefer nearby nodes (proximity neighbour selection), and a newcomer delivers only once
//! its leaf set is confirmed (consistent routing, as in MSPastry).
//!
//! ## Layers
//!
//! | module | what |
//! |---|---|
//! | [`id`], [`leafset`], [`routing_table`], [`neighborhood`], [`router`] | pure state and the next-hop rule |
//! | [`wire`] | versioned frames with crc32; strict decoding that never panics |
//! | [`node`] | the sans-IO state machine: join, routing with hop acks, maintenance, repair |
//! | [`sim`] | a deterministic discrete-event simulator driving many nodes, with a global oracle |
//! | [`runtime`] | real UDP sockets: a mio event loop, the Rust API ([`Runtime`], [`Handle`], [`Application`]) |
//! | [`store`] | a PAST-style replicated store of immutable objects, on the KBR API only |
//! | [`ffi`] | the stable C ABI (`include/pastry.h`) |
//!
//! ## One run-loop contract
//!
//! Every driver — the runtime, the simulator, the tests and C hosts through the FFI — drives the
//! same [`node::Node`] the same way (see the [`node`] module for the details and an example):
//! feed one input (`handle_datagram`, `handle_timeout`, or an application call) with the current
//! [`Instant`], then drain `poll_transmit`, `poll_event` and `poll_timeout`. The core never
//! reads a clock, a socket or OS randomness; time comes in as an argument, randomness from a
//! seeded [`Rng`], so a simulation is a pure function of its seed.
//!
//! The node is `&mut self` throughout, with no `Rc`, `Mutex` or channel inside: one owner (the
//! thread driving it) and no locking on the hot path. Other threads reach a runtime's nodes
//! through its command queue.
//!
//! ## Errors and panics
//!
//! Errors are for bad input from the application (one small enum per operation:
//! [`node::RouteError`], [`node::JoinError`], [`node::ConfigError`], [`wire::DecodeError`]);
//! bad input from the network is counted and dropped, never an error and never a panic. Panics
//! are for broken invariants only.
//!
//! ## Quick start (real sockets, loopback)
//!
//! ```
//! use pastry::{Application, NodeConfig, Runtime};
//! use pastry::runtime::Delivery;
//! use pastry::node::Node;
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! struct Inbox(mpsc::Sender<(u64, Vec<u8>)>);
//! impl Application for Inbox {
//!     fn deliver(&mut self, _node: &Node, msg: Delivery) {
//!         let _ = self.0.send((msg.msg_id, msg.payload.to_vec()));
//!     }
//! }
//!
//! let rt = Runtime::new().unwrap();
//! let (tx, rx) = mpsc::channel();
//! let any = "127.0.0.1:0".parse().unwrap();
//! let first = rt.add_node(NodeConfig::new(any), Inbox(tx.clone())).unwrap();
//! first.start_alone().unwrap();
//! first.wait_joined(Duration::from_secs(5)).unwrap();
//! let second = rt.add_node(NodeConfig::new(any), Inbox(tx)).unwrap();
//! second.join(&[first.addr()], Duration::from_secs(10)).unwrap();
//! // `first` is the root of its own id.
//! let id = second.route(first.id(), &b"hello"[..]).unwrap();
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), (id, b"hello".to_vec()));
//! rt.shutdown();
//! ```
#![warn(missing_docs)]

pub mod ffi;
pub mod id;
pub mod leafset;
pub mod neighborhood;
pub mod node;
#[cfg(feature = "plot")]
pub mod plot;
pub mod rng;
pub mod router;
pub mod routing_table;
pub mod runtime;
pub mod sim;
pub mod store;
pub mod time;
pub mod util;
pub mod wire;

pub use id::{DigitBits, Id, NodeHandle, ParseIdError};
pub use leafset::LeafSet;
pub use neighborhood::NeighborhoodSet;
pub use rng::Rng;
pub use router::{next_hop, NextHop};
pub use routing_table::RoutingTable;
pub use runtime::{Application, Handle, NodeConfig, Runtime};
pub use time::{Duration, Instant};
