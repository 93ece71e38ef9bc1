//! The runtime's typed errors: one small enum per operation.

use core::fmt;
use core::net::SocketAddr;
use std::io;

use crate::node::ConfigError;

/// Why [`Runtime::add_node`](super::Runtime::add_node) could not start a node.
#[derive(Debug)]
pub enum StartError {
    /// The node configuration is invalid.
    Config(ConfigError),
    /// The UDP socket could not be bound to `addr`. A busy port shows as
    /// [`io::ErrorKind::AddrInUse`] in `source`.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The socket could not be registered with the event loop.
    Io(io::Error),
    /// The runtime has stopped.
    Stopped,
}

impl StartError {
    /// The I/O error kind behind a bind or registration failure, if any.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StartError::Bind { source, .. } | StartError::Io(source) => Some(source.kind()),
            _ => None,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "invalid node configuration: {e}"),
            StartError::Bind { addr, source } if source.kind() == io::ErrorKind::AddrInUse => {
                write!(
                    f,
                    "cannot bind {addr}: the address is already in use ({source})"
                )
            }
            StartError::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            StartError::Io(e) => write!(f, "cannot register the socket with the event loop: {e}"),
            StartError::Stopped => f.write_str("the runtime has stopped"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Bind { source, .. } | StartError::Io(source) => Some(source),
            StartError::Stopped => None,
        }
    }
}

/// Why a join did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// The bootstrap list is empty.
    NoBootstrap,
    /// The node has already started (it is joining, active, or stopped).
    AlreadyStarted,
    /// A wait for a join that was never started.
    NotStarted,
    /// No bootstrap node led to a completed join after every attempt (the node retried with
    /// backoff `attempts` times). It is idle again and may be asked to join once more.
    NoBootstrapAnswered {
        /// The addresses tried, round robin.
        bootstraps: Vec<SocketAddr>,
        /// Join requests sent before giving up.
        attempts: u32,
    },
    /// The wait ended before the join completed; the node is still trying.
    Timeout(std::time::Duration),
    /// The node was removed or the runtime stopped.
    Stopped,
    /// A blocking wait was asked from an upcall, on the event-loop thread (it would deadlock).
    OnLoopThread,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::NoBootstrap => f.write_str("join needs at least one bootstrap address"),
            JoinError::AlreadyStarted => f.write_str("the node has already started"),
            JoinError::NotStarted => f.write_str("the node was never asked to join"),
            JoinError::NoBootstrapAnswered {
                bootstraps,
                attempts,
            } => {
                write!(
                    f,
                    "no bootstrap node answered after {attempts} join attempts (tried"
                )?;
                for a in bootstraps {
                    write!(f, " {a}")?;
                }
                f.write_str(")")
            }
            JoinError::Timeout(d) => write!(f, "the join did not complete within {d:?}"),
            JoinError::Stopped => f.write_str("the node was removed or its runtime stopped"),
            JoinError::OnLoopThread => {
                f.write_str("cannot wait for a join from an upcall (on the event-loop thread)")
            }
        }
    }
}

impl std::error::Error for JoinError {}

/// Why a query, [`Handle::stats`](super::Handle::stats) or
/// [`Handle::leave`](super::Handle::leave) failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The node was removed or the runtime stopped.
    Stopped,
    /// A blocking call was made from an upcall, on the event-loop thread (it would deadlock).
    /// Upcalls receive the node itself for queries.
    OnLoopThread,
    /// The closure passed to [`Handle::call`](super::Handle::call) panicked.
    Panicked,
    /// The loop did not finish the call in time (a graceful leave still flushing).
    Timeout,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::Stopped => "the node was removed or its runtime stopped",
            CallError::OnLoopThread => {
                "cannot block on the event-loop thread (from an upcall): use the node passed to it"
            }
            CallError::Panicked => "the call panicked on the event-loop thread",
            CallError::Timeout => "the event loop did not finish the call in time",
        })
    }
}

impl std::error::Error for CallError {}
