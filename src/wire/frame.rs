//! The frame: header, body, crc32 trailer. (Codec to be completed: see issue 2.)

use super::message::MessageType;
use crate::id::Id;

/// The two magic bytes that open every frame: `"Py"`.
pub const MAGIC: [u8; 2] = *b"Py";
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Header length: magic, version, type, network id, sender id.
pub const HEADER_LEN: usize = 24;
/// Trailer length: the crc32.
pub const TRAILER_LEN: usize = 4;

/// Every way a datagram can fail to decode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Shorter than a header and trailer, or a field runs past the end.
    Truncated,
}

/// The parsed frame header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameHeader {
    /// The message type.
    pub msg_type: MessageType,
    /// The overlay this frame belongs to.
    pub network: u32,
    /// The sender's node id.
    pub sender: Id,
}

/// A zero-copy checked view of a frame.
#[derive(Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks magic, version, type, length and crc.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, DecodeError> {
        let _ = &buffer;
        todo!()
    }
}
