//! # pastry
//!
//! An embeddable node of a Pastry overlay (Rowstron & Druschel, Middleware 2001).
#![warn(missing_docs)]

pub mod id;
pub mod rng;
pub mod time;
pub mod util;
pub mod wire;

pub use id::{DigitBits, Id, NodeHandle, ParseIdError};
pub use rng::Rng;
pub use time::{Duration, Instant};
pub mod leafset;
pub mod neighborhood;
pub mod router;
pub mod routing_table;

pub use leafset::LeafSet;
pub use neighborhood::NeighborhoodSet;
pub use router::{next_hop, NextHop};
pub use routing_table::RoutingTable;
pub mod ffi;
pub mod node;
pub mod runtime;
pub mod sim;

pub use runtime::{Application, Handle, NodeConfig, Runtime};
