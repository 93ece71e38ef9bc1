//! Result codes: `pastry_result` and `pastry_result_str`.

use core::ffi::{c_char, CStr};

use crate::node::{ConfigError, JoinError as NodeJoinError, RouteError};
use crate::runtime::{CallError, JoinError, StartError};

/// The result of a fallible call. A `uint32_t`: the numbers are fixed and never reused, new
/// codes only get new numbers. `PASTRY_OK` (0) is success; `PASTRY_NONE` (1) means "nothing to
/// return" (an empty poll, a range that cannot be determined) and is not an error; every other
/// code is an error, and a call that returns one has written none of its out-parameters.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pastry_result {
    /// Success.
    PASTRY_OK = 0,
    /// Nothing to return: no datagram, event or deadline is pending, or a range cannot be
    /// determined. Not an error; no out-parameter was written.
    PASTRY_NONE = 1,
    /// A required pointer argument was NULL.
    PASTRY_ERR_NULL_ARGUMENT = 2,
    /// An argument is out of range (see the function's documentation).
    PASTRY_ERR_INVALID_ARGUMENT = 3,
    /// A string is not an id: an id is exactly 32 hexadecimal digits, optionally after `0x`.
    PASTRY_ERR_BAD_HEX = 4,
    /// A string is not a socket address (`1.2.3.4:5` or `[::1]:5`), or an address struct is
    /// malformed (family neither 4 nor 6).
    PASTRY_ERR_BAD_ADDRESS = 5,
    /// The caller's buffer is too small; nothing was written and nothing was consumed.
    PASTRY_ERR_BUFFER_TOO_SMALL = 6,
    /// The configuration value is out of range (leaf-set size, payload limit, timers, …).
    PASTRY_ERR_INVALID_CONFIG = 7,
    /// The bind address is already in use.
    PASTRY_ERR_ADDR_IN_USE = 8,
    /// The bind address could not be bound (other than "in use").
    PASTRY_ERR_BIND = 9,
    /// Another operating-system error (poll instance, thread, socket registration).
    PASTRY_ERR_IO = 10,
    /// The payload is larger than the node's payload limit.
    PASTRY_ERR_PAYLOAD_TOO_LARGE = 11,
    /// The node has not joined an overlay yet (start it or join first).
    PASTRY_ERR_NOT_ACTIVE = 12,
    /// `pastry_route` was given neither a key nor a hint.
    PASTRY_ERR_NO_DESTINATION = 13,
    /// Too many messages are queued or awaiting acknowledgement; try again later.
    PASTRY_ERR_OVERLOADED = 14,
    /// The node has left, was shut down, or its runtime has stopped.
    PASTRY_ERR_STOPPED = 15,
    /// The node has already been started (or is joining).
    PASTRY_ERR_ALREADY_STARTED = 16,
    /// A join was asked with an empty bootstrap list.
    PASTRY_ERR_NO_BOOTSTRAP = 17,
    /// No bootstrap node answered after every join attempt; the node is idle again and may be
    /// asked to join once more.
    PASTRY_ERR_JOIN_FAILED = 18,
    /// The wait ended before the operation completed (a join still in progress, a leave still
    /// flushing).
    PASTRY_ERR_TIMEOUT = 19,
    /// The call is not allowed from inside a callback (freeing the node or the runtime, a
    /// blocking wait, a query of a caller-driven node from its own callback). Nothing was done.
    PASTRY_ERR_IN_CALLBACK = 20,
    /// The call does not apply to this kind of node (a caller-driven entry point on a node run
    /// by a runtime, or a blocking wait on a caller-driven node).
    PASTRY_ERR_WRONG_MODE = 21,
    /// An internal error (a bug in the library, caught at the boundary). The call had no
    /// effect or an unknown part of it; the library stays usable.
    PASTRY_ERR_PANIC = 22,
    /// The node was never started (waiting for a join that was not asked for).
    PASTRY_ERR_NOT_STARTED = 23,
}

use pastry_result::*;

impl pastry_result {
    /// Every code, in number order (for tests and bindings).
    pub const ALL: [pastry_result; 24] = [
        PASTRY_OK,
        PASTRY_NONE,
        PASTRY_ERR_NULL_ARGUMENT,
        PASTRY_ERR_INVALID_ARGUMENT,
        PASTRY_ERR_BAD_HEX,
        PASTRY_ERR_BAD_ADDRESS,
        PASTRY_ERR_BUFFER_TOO_SMALL,
        PASTRY_ERR_INVALID_CONFIG,
        PASTRY_ERR_ADDR_IN_USE,
        PASTRY_ERR_BIND,
        PASTRY_ERR_IO,
        PASTRY_ERR_PAYLOAD_TOO_LARGE,
        PASTRY_ERR_NOT_ACTIVE,
        PASTRY_ERR_NO_DESTINATION,
        PASTRY_ERR_OVERLOADED,
        PASTRY_ERR_STOPPED,
        PASTRY_ERR_ALREADY_STARTED,
        PASTRY_ERR_NO_BOOTSTRAP,
        PASTRY_ERR_JOIN_FAILED,
        PASTRY_ERR_TIMEOUT,
        PASTRY_ERR_IN_CALLBACK,
        PASTRY_ERR_WRONG_MODE,
        PASTRY_ERR_PANIC,
        PASTRY_ERR_NOT_STARTED,
    ];

    /// The code with number `n`, if any.
    pub fn from_u32(n: u32) -> Option<pastry_result> {
        Self::ALL.get(n as usize).copied()
    }

    /// Static text describing the code.
    pub fn text(self) -> &'static CStr {
        match self {
            PASTRY_OK => c"ok",
            PASTRY_NONE => c"nothing to return",
            PASTRY_ERR_NULL_ARGUMENT => c"a required pointer argument was NULL",
            PASTRY_ERR_INVALID_ARGUMENT => c"an argument is out of range",
            PASTRY_ERR_BAD_HEX => c"not an id: an id is exactly 32 hexadecimal digits",
            PASTRY_ERR_BAD_ADDRESS => c"not a socket address (1.2.3.4:5 or [::1]:5)",
            PASTRY_ERR_BUFFER_TOO_SMALL => c"the buffer is too small",
            PASTRY_ERR_INVALID_CONFIG => c"the configuration value is out of range",
            PASTRY_ERR_ADDR_IN_USE => c"the address is already in use",
            PASTRY_ERR_BIND => c"the address could not be bound",
            PASTRY_ERR_IO => c"operating-system error",
            PASTRY_ERR_PAYLOAD_TOO_LARGE => c"the payload exceeds the node's payload limit",
            PASTRY_ERR_NOT_ACTIVE => c"the node has not joined an overlay yet",
            PASTRY_ERR_NO_DESTINATION => c"route needs a key, a hint, or both",
            PASTRY_ERR_OVERLOADED => c"too many messages queued; try again later",
            PASTRY_ERR_STOPPED => c"the node or its runtime has stopped",
            PASTRY_ERR_ALREADY_STARTED => c"the node has already been started",
            PASTRY_ERR_NO_BOOTSTRAP => c"join needs at least one bootstrap address",
            PASTRY_ERR_JOIN_FAILED => c"no bootstrap node answered the join",
            PASTRY_ERR_TIMEOUT => c"the wait ended before the operation completed",
            PASTRY_ERR_IN_CALLBACK => c"not allowed from inside a callback",
            PASTRY_ERR_WRONG_MODE => c"not available for this kind of node",
            PASTRY_ERR_PANIC => c"internal error (caught panic)",
            PASTRY_ERR_NOT_STARTED => c"the node was never started",
        }
    }
}

/// Static, NUL-terminated English text describing `code` (any number: unknown codes give
/// "unknown result code"). The text lives as long as the program; do not free it.
#[no_mangle]
pub extern "C" fn pastry_result_str(code: u32) -> *const c_char {
    ffi_boundary_value!("pastry_result_str", {
        pastry_result::from_u32(code)
            .map_or(c"unknown result code", pastry_result::text)
            .as_ptr()
    })
}

impl From<ConfigError> for pastry_result {
    fn from(_: ConfigError) -> pastry_result {
        PASTRY_ERR_INVALID_CONFIG
    }
}

impl From<StartError> for pastry_result {
    fn from(e: StartError) -> pastry_result {
        match e {
            StartError::Config(_) => PASTRY_ERR_INVALID_CONFIG,
            StartError::Bind { ref source, .. }
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                PASTRY_ERR_ADDR_IN_USE
            }
            // An unspecified address (0.0.0.0, ::, ::ffff:0.0.0.0), refused before binding.
            StartError::Bind { ref source, .. }
                if source.kind() == std::io::ErrorKind::InvalidInput =>
            {
                PASTRY_ERR_BAD_ADDRESS
            }
            StartError::Bind { .. } => PASTRY_ERR_BIND,
            StartError::Io(_) => PASTRY_ERR_IO,
            StartError::Stopped => PASTRY_ERR_STOPPED,
        }
    }
}

impl From<JoinError> for pastry_result {
    fn from(e: JoinError) -> pastry_result {
        match e {
            JoinError::NoBootstrap => PASTRY_ERR_NO_BOOTSTRAP,
            JoinError::AlreadyStarted => PASTRY_ERR_ALREADY_STARTED,
            JoinError::NoBootstrapAnswered { .. } => PASTRY_ERR_JOIN_FAILED,
            JoinError::Timeout(_) => PASTRY_ERR_TIMEOUT,
            JoinError::Stopped => PASTRY_ERR_STOPPED,
            JoinError::OnLoopThread => PASTRY_ERR_IN_CALLBACK,
            JoinError::NotStarted => PASTRY_ERR_NOT_STARTED,
        }
    }
}

impl From<NodeJoinError> for pastry_result {
    fn from(e: NodeJoinError) -> pastry_result {
        match e {
            NodeJoinError::NoBootstrap => PASTRY_ERR_NO_BOOTSTRAP,
            NodeJoinError::AlreadyStarted => PASTRY_ERR_ALREADY_STARTED,
        }
    }
}

impl From<RouteError> for pastry_result {
    fn from(e: RouteError) -> pastry_result {
        match e {
            RouteError::PayloadTooLarge { .. } => PASTRY_ERR_PAYLOAD_TOO_LARGE,
            RouteError::NotActive => PASTRY_ERR_NOT_ACTIVE,
            RouteError::NoDestination => PASTRY_ERR_NO_DESTINATION,
            RouteError::Overloaded => PASTRY_ERR_OVERLOADED,
            RouteError::Stopped => PASTRY_ERR_STOPPED,
        }
    }
}

impl From<CallError> for pastry_result {
    fn from(e: CallError) -> pastry_result {
        match e {
            CallError::Stopped => PASTRY_ERR_STOPPED,
            CallError::OnLoopThread => PASTRY_ERR_IN_CALLBACK,
            CallError::Panicked => PASTRY_ERR_PANIC,
            CallError::Timeout => PASTRY_ERR_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_fixed_and_every_code_has_text() {
        for (i, c) in pastry_result::ALL.iter().enumerate() {
            assert_eq!(*c as u32, i as u32);
            assert_eq!(pastry_result::from_u32(i as u32), Some(*c));
            assert!(!c.text().to_bytes().is_empty());
        }
        assert_eq!(PASTRY_ERR_PANIC as u32, 22);
        assert_eq!(pastry_result::from_u32(9999), None);
    }
}
