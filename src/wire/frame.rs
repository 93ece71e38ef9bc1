//! The frame: header, body, crc32 trailer, as a zero-copy view over a byte buffer.
//!
//! [`Frame::new_checked`] validates everything that does not depend on the body's type (length,
//! magic, version, crc, type byte); after it succeeds no accessor can panic. Writing goes through
//! [`Frame::new_unchecked`] and the setters, ending with [`Frame::fill_checksum`].

use core::fmt;

use super::message::MessageType;
use crate::id::Id;

/// The two magic bytes that open every frame: `"Py"`.
pub const MAGIC: [u8; 2] = *b"Py";
/// The protocol version this crate speaks. Version 2 (admission on proof): `LeafSetRequest`
/// carries the sender's leaf set (a symmetric exchange), `LeafSetReply` says whether the replier
/// has validated the requester (`admitted`), and `Ping` whether its sender is active.
pub const VERSION: u8 = 3;
/// Header length: magic, version, type, network id, sender id.
pub const HEADER_LEN: usize = 24;
/// Trailer length: the crc32.
pub const TRAILER_LEN: usize = 4;

/// Byte offsets of the header fields.
mod field {
    use core::ops::Range;

    pub(super) const MAGIC: Range<usize> = 0..2;
    pub(super) const VERSION: usize = 2;
    pub(super) const TYPE: usize = 3;
    pub(super) const NETWORK: Range<usize> = 4..8;
    pub(super) const SENDER: Range<usize> = 8..24;
    /// The body starts right after the header and ends `TRAILER_LEN` bytes before the end.
    pub(super) const BODY_START: usize = SENDER.end;
}

const _: () = assert!(field::BODY_START == HEADER_LEN);

/// Every way a datagram can fail to decode.
///
/// Frame-level problems (the first five variants) are found by [`Frame::new_checked`], the rest
/// by [`Message::parse`](super::Message::parse).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a header and trailer, or a body field runs past the end of the body.
    Truncated,
    /// The first two bytes are not [`MAGIC`]: not a frame of this protocol.
    BadMagic,
    /// The version byte is not [`VERSION`]; carries the version received.
    UnsupportedVersion(u8),
    /// The type byte names no [`MessageType`]; carries the byte received.
    UnknownType(u8),
    /// The crc32 trailer does not match the bytes before it.
    BadChecksum,
    /// A node-handle list's count exceeds [`MAX_LIST`](super::MAX_LIST).
    ListTooLong,
    /// A routing-row count exceeds [`MAX_ROWS`](super::MAX_ROWS).
    TooManyRows,
    /// A node handle's address family byte is neither 4 nor 6; carries the byte received.
    BadAddressFamily(u8),
    /// A flags byte has bits without a meaning
    /// ([`RoutedFlags::KNOWN`](super::RoutedFlags::KNOWN), [`join_flags::KNOWN`](super::join_flags::KNOWN)).
    BadFlags,
    /// A boolean byte is neither 0 nor 1.
    BadBool,
    /// A routed message's payload length differs from the bytes left in the body.
    PayloadLength,
    /// The body has bytes left after its last field.
    TrailingBytes,
    /// Padding (a `RowRequest`'s) is not all zero bytes.
    BadPadding,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated => f.write_str("frame truncated"),
            DecodeError::BadMagic => f.write_str("bad magic bytes"),
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
            DecodeError::BadChecksum => f.write_str("crc32 mismatch"),
            DecodeError::ListTooLong => f.write_str("node list longer than allowed"),
            DecodeError::TooManyRows => f.write_str("more routing rows than allowed"),
            DecodeError::BadAddressFamily(a) => write!(f, "bad address family {a}"),
            DecodeError::BadFlags => f.write_str("unknown flag bits set"),
            DecodeError::BadBool => f.write_str("boolean byte not 0 or 1"),
            DecodeError::PayloadLength => f.write_str("payload length does not match the body"),
            DecodeError::TrailingBytes => f.write_str("trailing bytes after the body"),
            DecodeError::BadPadding => f.write_str("padding bytes not zero"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The parsed frame header.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct FrameHeader {
    /// The message type.
    pub msg_type: MessageType,
    /// The overlay this frame belongs to.
    pub network: u32,
    /// The sender's node id.
    pub sender: Id,
}

/// A zero-copy view of a frame over any byte buffer.
///
/// Made by [`Frame::new_checked`] (for received bytes: no accessor panics afterwards) or
/// [`Frame::new_unchecked`] (for writing into a buffer of the right length).
///
/// "No accessor panics" assumes `T::as_ref` returns the same bytes every time, as every ordinary
/// buffer type does.
#[derive(Clone, Debug)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn be_u32(bytes: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes);
    u32::from_be_bytes(a)
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking anything. Use it to write a frame; the accessors may
    /// panic on such a view until it holds a valid frame (see [`Frame::check_len`]).
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Checks length, magic, version, crc and type byte, in that order, so that a frame with a
    /// corrupted type byte reports [`DecodeError::BadChecksum`].
    ///
    /// Under `cfg(fuzzing)` the crc comparison (only it) is skipped, so that a fuzzer reaches the
    /// body parsers without having to forge checksums.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`], [`DecodeError::BadMagic`],
    /// [`DecodeError::UnsupportedVersion`], [`DecodeError::BadChecksum`] or
    /// [`DecodeError::UnknownType`].
    pub fn new_checked(buffer: T) -> Result<Frame<T>, DecodeError> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        let data = frame.buffer.as_ref();
        if data[field::MAGIC] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if data[field::VERSION] != VERSION {
            return Err(DecodeError::UnsupportedVersion(data[field::VERSION]));
        }
        if !cfg!(fuzzing) && !frame.verify_checksum() {
            return Err(DecodeError::BadChecksum);
        }
        if MessageType::from_u8(data[field::TYPE]).is_none() {
            return Err(DecodeError::UnknownType(data[field::TYPE]));
        }
        Ok(frame)
    }

    /// Checks that the buffer holds at least a header and a trailer (an empty body).
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] if it is shorter.
    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < HEADER_LEN + TRAILER_LEN {
            Err(DecodeError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version byte (always [`VERSION`] on a checked frame).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The message type.
    ///
    /// # Panics
    ///
    /// Only on a view made by [`Frame::new_unchecked`] whose type byte is unknown.
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        let byte = self.buffer.as_ref()[field::TYPE];
        match MessageType::from_u8(byte) {
            Some(t) => t,
            // `new_checked` rejected unknown type bytes.
            None => panic!("unchecked frame with unknown message type {byte}"),
        }
    }

    /// The overlay's network id.
    #[inline]
    pub fn network(&self) -> u32 {
        be_u32(&self.buffer.as_ref()[field::NETWORK])
    }

    /// The sender's node id.
    #[inline]
    pub fn sender(&self) -> Id {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SENDER]);
        Id::from_bytes(a)
    }

    /// The body: every byte between the header and the crc.
    #[inline]
    pub fn body(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        &data[field::BODY_START..data.len() - TRAILER_LEN]
    }

    /// The crc32 stored in the trailer.
    #[inline]
    pub fn checksum(&self) -> u32 {
        let data = self.buffer.as_ref();
        be_u32(&data[data.len() - TRAILER_LEN..])
    }

    /// Whether the stored crc32 matches the bytes before it.
    pub fn verify_checksum(&self) -> bool {
        let data = self.buffer.as_ref();
        crc32fast::hash(&data[..data.len() - TRAILER_LEN]) == self.checksum()
    }

    /// The header's fields.
    #[inline]
    pub fn header(&self) -> FrameHeader {
        FrameHeader {
            msg_type: self.msg_type(),
            network: self.network(),
            sender: self.sender(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Writes the whole header: magic, version, type, network and sender.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn set_header(&mut self, header: &FrameHeader) {
        let data = self.buffer.as_mut();
        data[field::MAGIC].copy_from_slice(&MAGIC);
        data[field::VERSION] = VERSION;
        self.set_msg_type(header.msg_type);
        self.set_network(header.network);
        self.set_sender(header.sender);
    }

    /// Writes the type byte.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn set_msg_type(&mut self, msg_type: MessageType) {
        self.buffer.as_mut()[field::TYPE] = msg_type as u8;
    }

    /// Writes the network id.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn set_network(&mut self, network: u32) {
        self.buffer.as_mut()[field::NETWORK].copy_from_slice(&network.to_be_bytes());
    }

    /// Writes the sender id.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn set_sender(&mut self, sender: Id) {
        self.buffer.as_mut()[field::SENDER].copy_from_slice(&sender.to_bytes());
    }

    /// The body, to write into; its length is the buffer's minus header and trailer.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`HEADER_LEN`] + [`TRAILER_LEN`].
    #[inline]
    pub fn body_mut(&mut self) -> &mut [u8] {
        let data = self.buffer.as_mut();
        let end = data.len() - TRAILER_LEN;
        &mut data[field::BODY_START..end]
    }

    /// Computes the crc32 of every byte before the trailer and writes it into the trailer. Call
    /// it last.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`TRAILER_LEN`].
    pub fn fill_checksum(&mut self) {
        let data = self.buffer.as_mut();
        let (covered, trailer) = data.split_at_mut(data.len() - TRAILER_LEN);
        trailer.copy_from_slice(&crc32fast::hash(covered).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Ping frame, written out field by field. The crc was computed independently
    /// (Python's `zlib.crc32`).
    #[rustfmt::skip]
    const PING: [u8; 44] = [
        b'P', b'y',                                     // magic
        0x03,                                           // version
        0x07,                                           // type: Ping
        0xde, 0xad, 0xbe, 0xef,                         // network
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // sender
        0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // body: nonce
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, //       sent_at
        0xa6, 0xa6, 0x98, 0xb5,                         // crc32
    ];
    const SENDER: Id = Id(0x0001_0203_0405_0607_0809_0a0b_0c0d_0e0f);

    /// A valid frame of `ty` around `body`, crc included.
    fn framed(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut v = PING[..HEADER_LEN].to_vec();
        v[field::TYPE] = ty;
        v.extend_from_slice(body);
        let crc = crc32fast::hash(&v);
        v.extend_from_slice(&crc.to_be_bytes());
        v
    }

    #[test]
    fn deconstruct() {
        let frame = Frame::new_checked(&PING[..]).unwrap();
        assert_eq!(frame.version(), VERSION);
        assert_eq!(frame.msg_type(), MessageType::Ping);
        assert_eq!(frame.network(), 0xdead_beef);
        assert_eq!(frame.sender(), SENDER);
        assert_eq!(frame.body(), &PING[24..40]);
        assert_eq!(frame.checksum(), 0xa6a6_98b5);
        assert!(frame.verify_checksum());
        assert_eq!(
            frame.header(),
            FrameHeader {
                msg_type: MessageType::Ping,
                network: 0xdead_beef,
                sender: SENDER
            }
        );
        assert_eq!(frame.into_inner(), &PING[..]);
    }

    #[test]
    fn construct() {
        let mut buf = [0xa5u8; 44];
        let mut frame = Frame::new_unchecked(&mut buf[..]);
        frame.set_header(&FrameHeader {
            msg_type: MessageType::Ping,
            network: 0xdead_beef,
            sender: SENDER,
        });
        frame.body_mut().copy_from_slice(&[
            1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        ]);
        frame.fill_checksum();
        assert_eq!(buf, PING);
    }

    #[test]
    fn empty_body_is_a_valid_frame_length() {
        let f = framed(MessageType::RowRequest as u8, &[]);
        assert_eq!(f.len(), HEADER_LEN + TRAILER_LEN);
        let frame = Frame::new_checked(&f[..]).unwrap();
        assert!(frame.body().is_empty());
    }

    #[test]
    fn error_truncated() {
        for len in 0..HEADER_LEN + TRAILER_LEN {
            assert_eq!(
                Frame::new_checked(&PING[..len]).unwrap_err(),
                DecodeError::Truncated,
                "len {len}"
            );
        }
    }

    #[test]
    fn error_bad_magic() {
        let mut f = PING;
        f[1] = b'x';
        assert_eq!(
            Frame::new_checked(&f[..]).unwrap_err(),
            DecodeError::BadMagic
        );
    }

    #[test]
    fn error_unsupported_version() {
        let mut f = PING;
        f[2] = 1;
        assert_eq!(
            Frame::new_checked(&f[..]).unwrap_err(),
            DecodeError::UnsupportedVersion(1)
        );
        f[2] = 2;
        assert_eq!(
            Frame::new_checked(&f[..]).unwrap_err(),
            DecodeError::UnsupportedVersion(2)
        );
        f[2] = 4;
        assert_eq!(
            Frame::new_checked(&f[..]).unwrap_err(),
            DecodeError::UnsupportedVersion(4)
        );
        f[2] = 0;
        assert_eq!(
            Frame::new_checked(&f[..]).unwrap_err(),
            DecodeError::UnsupportedVersion(0)
        );
    }

    #[test]
    fn error_unknown_type() {
        for ty in [0u8, 15, 0xff] {
            let f = framed(ty, &[]);
            assert_eq!(
                Frame::new_checked(&f[..]).unwrap_err(),
                DecodeError::UnknownType(ty)
            );
        }
    }

    #[cfg(not(fuzzing))]
    #[test]
    fn error_bad_checksum() {
        // A flip anywhere, trailer included, is caught.
        for byte in [3, 4, 8, 23, 24, 39, 40, 43] {
            let mut f = PING;
            f[byte] ^= 0x10;
            assert_eq!(
                Frame::new_checked(&f[..]).unwrap_err(),
                DecodeError::BadChecksum,
                "byte {byte}"
            );
        }
    }

    #[test]
    fn errors_display_distinctly() {
        let all = [
            DecodeError::Truncated,
            DecodeError::BadMagic,
            DecodeError::UnsupportedVersion(2),
            DecodeError::UnknownType(0),
            DecodeError::BadChecksum,
            DecodeError::ListTooLong,
            DecodeError::TooManyRows,
            DecodeError::BadAddressFamily(5),
            DecodeError::BadFlags,
            DecodeError::BadBool,
            DecodeError::PayloadLength,
            DecodeError::TrailingBytes,
        ];
        let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
        for (i, t) in texts.iter().enumerate() {
            assert!(!t.is_empty());
            assert!(!texts[..i].contains(t), "duplicate text {t}");
        }
        assert!(texts[2].contains('2') && texts[7].contains('5'));
        let _: &dyn std::error::Error = &all[0];
    }
}
