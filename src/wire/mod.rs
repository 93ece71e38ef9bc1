//! The wire format: versioned frames, one per UDP datagram, checked by crc32.
//!
//! ```text
//!  0      2   3   4        8                      24            len-4     len
//!  +------+---+---+--------+----------------------+-- ... ------+---------+
//!  |magic |ver|typ|network | sender id (16 bytes) | body        | crc32   |
//!  | "Py" | 1 |   | u32 BE |                      |             | u32 BE  |
//!  +------+---+---+--------+----------------------+-- ... ------+---------+
//! ```
//!
//! All integers are big-endian. The crc32 (IEEE, `crc32fast`) covers every byte before it.
//! [`Frame`] is a zero-copy checked view: once [`Frame::new_checked`] succeeds no accessor panics.
//! [`Message`] is the parsed body ([`Message::parse`]) and is written back with the infallible
//! [`Message::emit`] (into a buffer of at least [`Message::buffer_len`] bytes).
//!
//! Decoding is strict: every length is checked against the datagram, every count against its cap,
//! every enum tag against its known values, and trailing bytes are an error. No input panics, and
//! no decode allocates more than a small multiple of the datagram's own size.
//!
//! Under `cfg(fuzzing)` the crc is not checked (so the fuzzer can reach the body parsers).

mod frame;
mod message;

pub use frame::{DecodeError, Frame, FrameHeader, HEADER_LEN, MAGIC, TRAILER_LEN, VERSION};
pub use message::{
    decode, encode, join_flags, undeliverable_reason, Message, MessageType, RoutedFlags,
    RowEntries, MAX_LIST, MAX_ROWS, ROW_REQUEST_PADDING,
};
