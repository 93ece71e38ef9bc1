//! Message bodies: the [`Message`] enum with `parse` and infallible `emit`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use super::frame::{DecodeError, Frame, FrameHeader, HEADER_LEN, TRAILER_LEN};
use crate::id::{Id, NodeHandle};

/// Most node handles in one list (leaf set, neighbourhood set, one routing-table row).
pub const MAX_LIST: usize = 256;
/// Most routing-table rows in one message (`128 / b` for `b = 1`).
pub const MAX_ROWS: usize = 128;
/// Zero bytes after a `RowRequest`'s row number. The request pays for its answer, as QUIC's
/// padded Initial packets do: a full row of 16 IPv6 handles (about 600 bytes) stays within three
/// times the request's 221 bytes, so a node may answer an address it has not validated without
/// becoming an amplifier.
pub const ROW_REQUEST_PADDING: usize = 192;

/// The message type byte of the frame header. Numbers are fixed forever; new types get new
/// numbers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// [`Message::JoinRequest`]
    JoinRequest = 1,
    /// [`Message::JoinReply`]
    JoinReply = 2,
    /// [`Message::LeafSetRequest`]
    LeafSetRequest = 3,
    /// [`Message::LeafSetReply`]
    LeafSetReply = 4,
    /// [`Message::RowRequest`]
    RowRequest = 5,
    /// [`Message::RowReply`]
    RowReply = 6,
    /// [`Message::Ping`]
    Ping = 7,
    /// [`Message::Pong`]
    Pong = 8,
    /// [`Message::Routed`]
    Routed = 9,
    /// [`Message::Ack`]
    Ack = 10,
    /// [`Message::Leave`]
    Leave = 11,
    /// [`Message::Undeliverable`]
    Undeliverable = 12,
    /// [`Message::DeliveryAck`]
    DeliveryAck = 13,
    /// [`Message::Failed`]
    Failed = 14,
}

/// One routing-table row as carried on the wire: its index and the nodes in it (the column of
/// each is the digit of its id at `row`, so it is not sent).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RowEntries {
    /// Row index (the shared-prefix length of the row's entries with the row's owner).
    pub row: u8,
    /// The row's filled cells, at most [`MAX_LIST`].
    pub nodes: Vec<NodeHandle>,
}

/// Flags of a [`Message::Routed`]. Unknown bits are a decode error.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct RoutedFlags(pub u8);

impl RoutedFlags {
    /// Direct send: deliver at the receiving node (the route's hint) whatever its id.
    pub const DIRECT: u8 = 0x01;
    /// The source's attempt number (0–3) in bits 1–2: an end-to-end retry travels as a new
    /// transmission, so hop-level duplicate suppression does not swallow it.
    pub const ATTEMPT_MASK: u8 = 0x06;
    /// Every bit that has a meaning.
    pub const KNOWN: u8 = Self::DIRECT | Self::ATTEMPT_MASK;

    /// Whether the message is a direct send to a hinted node.
    pub const fn direct(self) -> bool {
        self.0 & Self::DIRECT != 0
    }

    /// The source's attempt number (0 for the first transmission).
    pub const fn attempt(self) -> u8 {
        (self.0 & Self::ATTEMPT_MASK) >> 1
    }

    /// These flags with the attempt number set to `n` (modulo 4).
    pub const fn with_attempt(self, n: u8) -> RoutedFlags {
        RoutedFlags((self.0 & !Self::ATTEMPT_MASK) | ((n & 3) << 1))
    }
}

/// Flags of a [`Message::JoinReply`].
pub mod join_flags {
    /// The reply comes from the join's root: it carries the root's leaf set.
    pub const ROOT: u8 = 0x01;
    /// The reply comes from the first node (the bootstrap): it carries its neighbourhood set.
    pub const FIRST: u8 = 0x02;
    /// Every bit that has a meaning.
    pub const KNOWN: u8 = ROOT | FIRST;
}

/// Why a routed message could not be delivered (sent back to its source).
pub mod undeliverable_reason {
    /// It exceeded the maximum hop count (a routing loop or badly broken tables).
    pub const HOP_LIMIT: u8 = 1;
    /// A node on the way ran out of buffer space for it.
    pub const OVERLOAD: u8 = 2;
    /// The direct-send target (hint) could not be reached.
    pub const UNREACHABLE: u8 = 3;
    /// No delivery was acknowledged after every end-to-end attempt (a node holding the message
    /// may have crashed). Reported by the source itself; never sent.
    pub const LOST: u8 = 4;
    /// An application's `forward` upcall on the way dropped it (or made its payload too large),
    /// or its payload exceeded the `max_payload` of a node it reached.
    pub const DROPPED: u8 = 5;
}

/// Every message of the node protocol.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// A newcomer asks to join. Sent by the newcomer to a bootstrap node, then forwarded hop by
    /// hop toward `joiner.id`; every node on the path answers the joiner with a `JoinReply`.
    JoinRequest {
        /// The newcomer.
        joiner: NodeHandle,
        /// Chosen by the joiner; echoed in every reply so stale replies are ignored.
        join_id: u64,
        /// Hops taken so far (the bootstrap receives 0).
        hops: u8,
    },
    /// A node on a join path hands the newcomer its state.
    JoinReply {
        /// The `join_id` of the request.
        join_id: u64,
        /// [`join_flags`] bits.
        flags: u8,
        /// Routing-table rows that are useful to the joiner.
        rows: Vec<RowEntries>,
        /// The leaf set, from the root (empty otherwise).
        leaf_set: Vec<NodeHandle>,
        /// The neighbourhood set, from the first node (empty otherwise).
        neighbors: Vec<NodeHandle>,
    },
    /// Asks the receiver for its leaf set; also announces the sender (a newcomer sends this to
    /// every member of its leaf set to become active). Carries the sender's own leaf set, so an
    /// exchange teaches both sides (MSPastry's leaf-set probes). A receiver that has not yet
    /// validated the sender's address answers first with a `Ping` of its own and sends the
    /// reply only once the `Pong` has come back.
    LeafSetRequest {
        /// Echoed in the reply.
        nonce: u64,
        /// The sender's leaf set members (both sides, without the sender itself).
        leaf_set: Vec<NodeHandle>,
    },
    /// The receiver's leaf set, answering a `LeafSetRequest`.
    LeafSetReply {
        /// The request's nonce.
        nonce: u64,
        /// Whether the sender is active (may deliver).
        active: bool,
        /// Whether the sender has validated the requester's address (so holds it in every
        /// table that wants it), or would not take it into its leaf set anyway. A joiner counts
        /// a leaf's answer as confirmation only with this set; without it (two nodes meeting at
        /// once) it asks again.
        admitted: bool,
        /// Its leaf set members (both sides, without the sender itself).
        leaf_set: Vec<NodeHandle>,
    },
    /// Asks the receiver for one row of its routing table. On the wire the row number is
    /// followed by [`ROW_REQUEST_PADDING`] zero bytes.
    RowRequest {
        /// The row wanted.
        row: u8,
    },
    /// One row of the sender's routing table.
    RowReply {
        /// The row.
        row: RowEntries,
    },
    /// A liveness / round-trip-time probe.
    Ping {
        /// Echoed in the pong.
        nonce: u64,
        /// The sender's clock when sent, µs, echoed so the sender computes the RTT statelessly.
        sent_at: u64,
        /// Whether the sender is active. A joining node pings before it may be anyone's
        /// neighbour; an active one that pings a node which does not hold it (which declared it
        /// failed, say) is probed back and so may prove itself again.
        active: bool,
    },
    /// The answer to a `Ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
        /// The ping's `sent_at`.
        sent_at: u64,
    },
    /// An application message routed toward `key`, acknowledged hop by hop.
    Routed {
        /// End-to-end id chosen by the source; with `hops` it identifies one hop transmission.
        msg_id: u64,
        /// The destination key.
        key: Id,
        /// The node that called `route`.
        source: NodeHandle,
        /// Hops taken so far.
        hops: u8,
        /// [`RoutedFlags`].
        flags: RoutedFlags,
        /// The application's bytes.
        payload: Bytes,
    },
    /// Acknowledges one hop of a `Routed`.
    Ack {
        /// The message's `msg_id`.
        msg_id: u64,
        /// The message's `hops` as received.
        hops: u8,
    },
    /// The sender leaves the overlay gracefully.
    Leave {
        /// The sender's leaf set, to help receivers repair theirs.
        leaf_set: Vec<NodeHandle>,
    },
    /// The root of a routed message tells its source that it delivered it (end-to-end
    /// acknowledgement; repeated for every copy that reaches the root).
    DeliveryAck {
        /// The message's `msg_id`.
        msg_id: u64,
    },
    /// A routed message could not be delivered; sent to its source.
    Undeliverable {
        /// The message's `msg_id`.
        msg_id: u64,
        /// Its key.
        key: Id,
        /// One of [`undeliverable_reason`].
        reason: u8,
    },
    /// The sender found `node`, a member of its leaf set, dead (it failed every probe). Sent to
    /// the sender's other leaf-set members, which hold it too: not believed, but a receiver
    /// that holds `node` at that address probes it at once instead of at its next tick (fast
    /// leaf-set repair).
    Failed {
        /// The node that stopped answering.
        node: NodeHandle,
    },
}

impl MessageType {
    /// The type for a header's type byte, `None` if the byte names no type.
    #[inline]
    pub const fn from_u8(byte: u8) -> Option<MessageType> {
        Some(match byte {
            1 => MessageType::JoinRequest,
            2 => MessageType::JoinReply,
            3 => MessageType::LeafSetRequest,
            4 => MessageType::LeafSetReply,
            5 => MessageType::RowRequest,
            6 => MessageType::RowReply,
            7 => MessageType::Ping,
            8 => MessageType::Pong,
            9 => MessageType::Routed,
            10 => MessageType::Ack,
            11 => MessageType::Leave,
            12 => MessageType::Undeliverable,
            13 => MessageType::DeliveryAck,
            14 => MessageType::Failed,
            _ => return None,
        })
    }
}

/// Wire sizes of the fixed-size pieces.
mod size {
    /// An id or key.
    pub(super) const ID: usize = 16;
    /// A node handle without its address bytes: id, family, port.
    pub(super) const HANDLE_FIXED: usize = ID + 1 + 2;
    /// The smallest node handle (IPv4).
    pub(super) const HANDLE_MIN: usize = HANDLE_FIXED + 4;
    /// A list's count.
    pub(super) const LIST_COUNT: usize = 2;
    /// The smallest row: its index and an empty list.
    pub(super) const ROW_MIN: usize = 1 + LIST_COUNT;
}

/// Address family bytes of a node handle.
const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// The part of a list that goes on the wire: at most [`MAX_LIST`] entries.
#[inline]
fn capped<T>(list: &[T], cap: usize) -> &[T] {
    &list[..list.len().min(cap)]
}

#[inline]
fn handle_len(h: &NodeHandle) -> usize {
    size::HANDLE_FIXED
        + match h.addr {
            SocketAddr::V4(_) => 4,
            SocketAddr::V6(_) => 16,
        }
}

fn list_len(list: &[NodeHandle]) -> usize {
    size::LIST_COUNT + capped(list, MAX_LIST).iter().map(handle_len).sum::<usize>()
}

fn row_len(row: &RowEntries) -> usize {
    1 + list_len(&row.nodes)
}

fn rows_len(rows: &[RowEntries]) -> usize {
    1 + capped(rows, MAX_ROWS).iter().map(row_len).sum::<usize>()
}

/// Routed payloads longer than `u32::MAX` cannot be described; `emit` sends this prefix.
#[inline]
fn capped_payload(payload: &[u8]) -> &[u8] {
    capped(payload, u32::MAX as usize)
}

/// A cursor over a body being parsed. Every read checks the length first.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        // `take` returned exactly N bytes, so the conversion cannot fail.
        self.take(N)?.try_into().map_err(|_| DecodeError::Truncated)
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    #[inline]
    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    #[inline]
    fn id(&mut self) -> Result<Id, DecodeError> {
        self.array().map(Id::from_bytes)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadBool),
        }
    }

    fn flags(&mut self, known: u8) -> Result<u8, DecodeError> {
        let flags = self.u8()?;
        if flags & !known != 0 {
            return Err(DecodeError::BadFlags);
        }
        Ok(flags)
    }

    fn handle(&mut self) -> Result<NodeHandle, DecodeError> {
        let id = self.id()?;
        let ip: IpAddr = match self.u8()? {
            FAMILY_V4 => Ipv4Addr::from(self.array::<4>()?).into(),
            FAMILY_V6 => Ipv6Addr::from(self.array::<16>()?).into(),
            other => return Err(DecodeError::BadAddressFamily(other)),
        };
        let port = self.u16()?;
        Ok(NodeHandle::new(id, SocketAddr::new(ip, port)))
    }

    /// A count, checked against its cap, and a capacity to reserve for that many entries of at
    /// least `min_entry` bytes each: never more than the remaining bytes can hold.
    fn count(
        &mut self,
        count: usize,
        cap: usize,
        err: DecodeError,
        min_entry: usize,
    ) -> Result<(usize, usize), DecodeError> {
        if count > cap {
            return Err(err);
        }
        Ok((count, count.min(self.buf.len() / min_entry)))
    }

    fn handles(&mut self) -> Result<Vec<NodeHandle>, DecodeError> {
        let raw = usize::from(self.u16()?);
        let (count, reserve) =
            self.count(raw, MAX_LIST, DecodeError::ListTooLong, size::HANDLE_MIN)?;
        let mut list = Vec::with_capacity(reserve);
        for _ in 0..count {
            list.push(self.handle()?);
        }
        Ok(list)
    }

    fn row(&mut self) -> Result<RowEntries, DecodeError> {
        let row = self.u8()?;
        let nodes = self.handles()?;
        Ok(RowEntries { row, nodes })
    }

    fn rows(&mut self) -> Result<Vec<RowEntries>, DecodeError> {
        let raw = usize::from(self.u8()?);
        let (count, reserve) =
            self.count(raw, MAX_ROWS, DecodeError::TooManyRows, size::ROW_MIN)?;
        let mut rows = Vec::with_capacity(reserve);
        for _ in 0..count {
            rows.push(self.row()?);
        }
        Ok(rows)
    }

    /// The rest of the body as a routed payload whose length was announced as `len`.
    fn payload(&mut self, len: u32) -> Result<Bytes, DecodeError> {
        match usize::try_from(len) {
            Ok(len) if len == self.buf.len() => Ok(Bytes::copy_from_slice(self.take(len)?)),
            _ => Err(DecodeError::PayloadLength),
        }
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// A cursor over a body being emitted.
///
/// Every write panics if the buffer is too short; `Message::emit` documents it.
struct Writer<'a> {
    buf: &'a mut [u8],
}

impl Writer<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let (head, tail) = core::mem::take(&mut self.buf).split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.buf = tail;
    }

    #[inline]
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }

    #[inline]
    fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }

    #[inline]
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    #[inline]
    fn u64(&mut self, v: u64) {
        self.put(&v.to_be_bytes());
    }

    #[inline]
    fn id(&mut self, id: Id) {
        self.put(&id.to_bytes());
    }

    fn handle(&mut self, h: &NodeHandle) {
        self.id(h.id);
        match h.addr {
            SocketAddr::V4(a) => {
                self.u8(FAMILY_V4);
                self.put(&a.ip().octets());
            }
            SocketAddr::V6(a) => {
                self.u8(FAMILY_V6);
                self.put(&a.ip().octets());
            }
        }
        self.u16(h.addr.port());
    }

    fn handles(&mut self, list: &[NodeHandle]) {
        let list = capped(list, MAX_LIST);
        // MAX_LIST fits in a u16 (checked below), so this never truncates.
        self.u16(list.len() as u16);
        for h in list {
            self.handle(h);
        }
    }

    fn row(&mut self, row: &RowEntries) {
        self.u8(row.row);
        self.handles(&row.nodes);
    }

    fn rows(&mut self, rows: &[RowEntries]) {
        let rows = capped(rows, MAX_ROWS);
        // MAX_ROWS fits in a u8 (checked below), so this never truncates.
        self.u8(rows.len() as u8);
        for row in rows {
            self.row(row);
        }
    }
}

const _: () = assert!(MAX_LIST <= u16::MAX as usize && MAX_ROWS <= u8::MAX as usize);

impl Message {
    /// This message's type byte.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::JoinRequest { .. } => MessageType::JoinRequest,
            Message::JoinReply { .. } => MessageType::JoinReply,
            Message::LeafSetRequest { .. } => MessageType::LeafSetRequest,
            Message::LeafSetReply { .. } => MessageType::LeafSetReply,
            Message::RowRequest { .. } => MessageType::RowRequest,
            Message::RowReply { .. } => MessageType::RowReply,
            Message::Ping { .. } => MessageType::Ping,
            Message::Pong { .. } => MessageType::Pong,
            Message::Routed { .. } => MessageType::Routed,
            Message::Ack { .. } => MessageType::Ack,
            Message::Leave { .. } => MessageType::Leave,
            Message::Undeliverable { .. } => MessageType::Undeliverable,
            Message::DeliveryAck { .. } => MessageType::DeliveryAck,
            Message::Failed { .. } => MessageType::Failed,
        }
    }

    /// Parses a body of the given type. The whole body must be used.
    ///
    /// Never panics, and allocates at most a small multiple of `body.len()`: list capacities are
    /// bounded by the bytes left, not by the counts received.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] if a field runs past the end, [`DecodeError::TrailingBytes`] if
    /// bytes are left over, and [`DecodeError::ListTooLong`], [`DecodeError::TooManyRows`],
    /// [`DecodeError::BadAddressFamily`], [`DecodeError::BadFlags`], [`DecodeError::BadBool`] or
    /// [`DecodeError::PayloadLength`] for a field with a value it may not have.
    pub fn parse(msg_type: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader { buf: body };
        let msg = match msg_type {
            MessageType::JoinRequest => {
                let joiner = r.handle()?;
                let join_id = r.u64()?;
                let hops = r.u8()?;
                Message::JoinRequest {
                    joiner,
                    join_id,
                    hops,
                }
            }
            MessageType::JoinReply => {
                let join_id = r.u64()?;
                let flags = r.flags(join_flags::KNOWN)?;
                let rows = r.rows()?;
                let leaf_set = r.handles()?;
                let neighbors = r.handles()?;
                Message::JoinReply {
                    join_id,
                    flags,
                    rows,
                    leaf_set,
                    neighbors,
                }
            }
            MessageType::LeafSetRequest => {
                let nonce = r.u64()?;
                let leaf_set = r.handles()?;
                Message::LeafSetRequest { nonce, leaf_set }
            }
            MessageType::LeafSetReply => {
                let nonce = r.u64()?;
                let active = r.bool()?;
                let admitted = r.bool()?;
                let leaf_set = r.handles()?;
                Message::LeafSetReply {
                    nonce,
                    active,
                    admitted,
                    leaf_set,
                }
            }
            MessageType::RowRequest => {
                let row = r.u8()?;
                if r.take(ROW_REQUEST_PADDING)?.iter().any(|&b| b != 0) {
                    return Err(DecodeError::BadPadding);
                }
                Message::RowRequest { row }
            }
            MessageType::RowReply => Message::RowReply { row: r.row()? },
            MessageType::Ping => {
                let nonce = r.u64()?;
                let sent_at = r.u64()?;
                let active = r.bool()?;
                Message::Ping {
                    nonce,
                    sent_at,
                    active,
                }
            }
            MessageType::Pong => {
                let nonce = r.u64()?;
                let sent_at = r.u64()?;
                Message::Pong { nonce, sent_at }
            }
            MessageType::Routed => {
                let msg_id = r.u64()?;
                let key = r.id()?;
                let source = r.handle()?;
                let hops = r.u8()?;
                let flags = RoutedFlags(r.flags(RoutedFlags::KNOWN)?);
                let len = r.u32()?;
                let payload = r.payload(len)?;
                Message::Routed {
                    msg_id,
                    key,
                    source,
                    hops,
                    flags,
                    payload,
                }
            }
            MessageType::Ack => {
                let msg_id = r.u64()?;
                let hops = r.u8()?;
                Message::Ack { msg_id, hops }
            }
            MessageType::Leave => Message::Leave {
                leaf_set: r.handles()?,
            },
            MessageType::DeliveryAck => Message::DeliveryAck { msg_id: r.u64()? },
            MessageType::Failed => Message::Failed { node: r.handle()? },
            MessageType::Undeliverable => {
                let msg_id = r.u64()?;
                let key = r.id()?;
                let reason = r.u8()?;
                Message::Undeliverable {
                    msg_id,
                    key,
                    reason,
                }
            }
        };
        r.finish()?;
        Ok(msg)
    }

    /// Bytes [`Message::emit`] writes: the body's length on the wire.
    ///
    /// Lists longer than [`MAX_LIST`] and row vectors longer than [`MAX_ROWS`] count only up to
    /// their caps, as `emit` writes them.
    pub fn buffer_len(&self) -> usize {
        match self {
            Message::JoinRequest { joiner, .. } => handle_len(joiner) + 8 + 1,
            Message::JoinReply {
                rows,
                leaf_set,
                neighbors,
                ..
            } => 8 + 1 + rows_len(rows) + list_len(leaf_set) + list_len(neighbors),
            Message::LeafSetRequest { leaf_set, .. } => 8 + list_len(leaf_set),
            Message::LeafSetReply { leaf_set, .. } => 8 + 1 + 1 + list_len(leaf_set),
            Message::RowRequest { .. } => 1 + ROW_REQUEST_PADDING,
            Message::RowReply { row } => row_len(row),
            Message::Ping { .. } => 8 + 8 + 1,
            Message::Pong { .. } => 8 + 8,
            Message::Routed {
                source, payload, ..
            } => 8 + size::ID + handle_len(source) + 1 + 1 + 4 + capped_payload(payload).len(),
            Message::Ack { .. } => 8 + 1,
            Message::Leave { leaf_set } => list_len(leaf_set),
            Message::Undeliverable { .. } => 8 + size::ID + 1,
            Message::DeliveryAck { .. } => 8,
            Message::Failed { node } => handle_len(node),
        }
    }

    /// Writes the body into `buf[..self.buffer_len()]`; bytes after that are left alone.
    ///
    /// Emit never fails. A message that breaks a wire limit is sent cut to fit it, so that the
    /// frame stays well-formed: lists keep their first [`MAX_LIST`] entries, `rows` its first
    /// [`MAX_ROWS`] rows, and a payload its first `u32::MAX` bytes. Flag and reason bytes are
    /// written as they are (a receiver rejects unknown flag bits).
    ///
    /// # Panics
    ///
    /// If `buf` is shorter than [`Message::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.buffer_len();
        assert!(
            buf.len() >= len,
            "emit: buffer of {} bytes for a body of {len}",
            buf.len()
        );
        let mut w = Writer {
            buf: &mut buf[..len],
        };
        match self {
            Message::JoinRequest {
                joiner,
                join_id,
                hops,
            } => {
                w.handle(joiner);
                w.u64(*join_id);
                w.u8(*hops);
            }
            Message::JoinReply {
                join_id,
                flags,
                rows,
                leaf_set,
                neighbors,
            } => {
                w.u64(*join_id);
                w.u8(*flags);
                w.rows(rows);
                w.handles(leaf_set);
                w.handles(neighbors);
            }
            Message::LeafSetRequest { nonce, leaf_set } => {
                w.u64(*nonce);
                w.handles(leaf_set);
            }
            Message::LeafSetReply {
                nonce,
                active,
                admitted,
                leaf_set,
            } => {
                w.u64(*nonce);
                w.u8(u8::from(*active));
                w.u8(u8::from(*admitted));
                w.handles(leaf_set);
            }
            Message::RowRequest { row } => {
                w.u8(*row);
                w.put(&[0; ROW_REQUEST_PADDING]);
            }
            Message::RowReply { row } => w.row(row),
            Message::Ping {
                nonce,
                sent_at,
                active,
            } => {
                w.u64(*nonce);
                w.u64(*sent_at);
                w.u8(u8::from(*active));
            }
            Message::Pong { nonce, sent_at } => {
                w.u64(*nonce);
                w.u64(*sent_at);
            }
            Message::Routed {
                msg_id,
                key,
                source,
                hops,
                flags,
                payload,
            } => {
                let payload = capped_payload(payload);
                w.u64(*msg_id);
                w.id(*key);
                w.handle(source);
                w.u8(*hops);
                w.u8(flags.0);
                // `capped_payload` keeps the length within u32.
                w.u32(payload.len() as u32);
                w.put(payload);
            }
            Message::Ack { msg_id, hops } => {
                w.u64(*msg_id);
                w.u8(*hops);
            }
            Message::Leave { leaf_set } => w.handles(leaf_set),
            Message::DeliveryAck { msg_id } => w.u64(*msg_id),
            Message::Failed { node } => w.handle(node),
            Message::Undeliverable {
                msg_id,
                key,
                reason,
            } => {
                w.u64(*msg_id);
                w.id(*key);
                w.u8(*reason);
            }
        }
        debug_assert!(w.buf.is_empty(), "buffer_len and emit disagree");
    }
}

/// Encodes a whole frame (header, body, crc) into `out`, replacing its contents.
///
/// `out` grows at most once; reusing one `Vec` for every datagram avoids allocating at all.
///
/// # Examples
///
/// ```
/// use pastry::wire::{decode, encode, Message};
/// use pastry::Id;
///
/// let mut out = Vec::new();
/// let ping = Message::Ping { nonce: 7, sent_at: 1_000, active: true };
/// encode(42, Id(1), &ping, &mut out);
/// let (header, msg) = decode(&out).unwrap();
/// assert_eq!((header.network, header.sender, msg), (42, Id(1), ping));
/// ```
pub fn encode(network: u32, sender: Id, msg: &Message, out: &mut Vec<u8>) {
    let len = HEADER_LEN + msg.buffer_len() + TRAILER_LEN;
    out.clear();
    out.resize(len, 0);
    let mut frame = Frame::new_unchecked(&mut out[..]);
    frame.set_header(&FrameHeader {
        msg_type: msg.message_type(),
        network,
        sender,
    });
    msg.emit(frame.body_mut());
    frame.fill_checksum();
}

/// Decodes and checks a whole datagram: [`Frame::new_checked`], then [`Message::parse`].
///
/// Never panics; allocates at most a small multiple of `datagram.len()`.
///
/// # Errors
///
/// Any [`DecodeError`]: the datagram is not a valid frame of a known type with a valid body.
pub fn decode(datagram: &[u8]) -> Result<(FrameHeader, Message), DecodeError> {
    let frame = Frame::new_checked(datagram)?;
    let header = frame.header();
    let msg = Message::parse(header.msg_type, frame.body())?;
    Ok((header, msg))
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddrV4, SocketAddrV6};

    use super::*;

    const NETWORK: u32 = 42;
    const SENDER: Id = Id(0xa0a1_a2a3_a4a5_a6a7_a8a9_aaab_acad_aeaf);

    /// A Ping frame. Every crc in these fixtures was computed independently (Python's
    /// `zlib.crc32`), not by this crate.
    #[rustfmt::skip]
    const PING: [u8; 45] = [
        b'P', b'y', 0x03, 0x07,                         // magic, version, type: Ping
        0x00, 0x00, 0x00, 0x2a,                         // network
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, // sender
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // nonce
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // sent_at
        0x01,                                           // active
        0x8b, 0xbd, 0xfc, 0xef,                         // crc32
    ];

    fn ping() -> Message {
        Message::Ping {
            nonce: 0x0102_0304_0506_0708,
            sent_at: 0x1122_3344_5566_7788,
            active: true,
        }
    }

    /// A Routed frame: an IPv4 source, the DIRECT flag and a 5-byte payload.
    #[rustfmt::skip]
    const ROUTED: [u8; 86] = [
        b'P', b'y', 0x03, 0x09,                         // magic, version, type: Routed
        0x00, 0x00, 0x00, 0x2a,                         // network
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, // sender
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, // msg_id
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, // key
        0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, // source: id
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x04,                                           //   family
        0x0a, 0x00, 0x00, 0x01,                         //   10.0.0.1
        0x0f, 0xa0,                                     //   port 4000
        0x03,                                           // hops
        0x01,                                           // flags: DIRECT
        0x00, 0x00, 0x00, 0x05,                         // payload_len
        b'h', b'e', b'l', b'l', b'o',                   // payload
        0x30, 0x70, 0x34, 0xe1,                         // crc32
    ];

    fn routed() -> Message {
        Message::Routed {
            msg_id: 0x102,
            key: Id(0xf0f1_f2f3_f4f5_f6f7_f8f9_fafb_fcfd_feff),
            source: v4(0x11, [10, 0, 0, 1], 4000),
            hops: 3,
            flags: RoutedFlags(RoutedFlags::DIRECT),
            payload: Bytes::from_static(b"hello"),
        }
    }

    /// A JoinReply frame: one row with one IPv6 entry, a one-entry leaf set, no neighbours.
    #[rustfmt::skip]
    const JOIN_REPLY: [u8; 103] = [
        b'P', b'y', 0x03, 0x02,                         // magic, version, type: JoinReply
        0x00, 0x00, 0x00, 0x2a,                         // network
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, // sender
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // join_id
        0x03,                                           // flags: ROOT | FIRST
        0x01,                                           // rows: count
        0x02,                                           //   row index
        0x00, 0x01,                                     //   entries: count
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, //     id
        0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
        0x06,                                           //     family
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, //     2001:db8::1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x23, 0x28,                                     //     port 9000
        0x00, 0x01,                                     // leaf_set: count
        0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, //   id
        0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33,
        0x04,                                           //   family
        0xc0, 0xa8, 0x01, 0x02,                         //   192.168.1.2
        0x00, 0x50,                                     //   port 80
        0x00, 0x00,                                     // neighbors: count
        0x88, 0xa1, 0xa7, 0x1a,                         // crc32
    ];

    fn join_reply() -> Message {
        Message::JoinReply {
            join_id: 7,
            flags: join_flags::ROOT | join_flags::FIRST,
            rows: vec![RowEntries {
                row: 2,
                nodes: vec![v6(0x22, "2001:db8::1", 9000)],
            }],
            leaf_set: vec![v4(0x33, [192, 168, 1, 2], 80)],
            neighbors: vec![],
        }
    }

    fn repeat_id(byte: u8) -> Id {
        Id::from_bytes([byte; 16])
    }

    fn v4(id: u8, ip: [u8; 4], port: u16) -> NodeHandle {
        NodeHandle::new(repeat_id(id), SocketAddrV4::new(ip.into(), port).into())
    }

    fn v6(id: u8, ip: &str, port: u16) -> NodeHandle {
        let ip: Ipv6Addr = ip.parse().unwrap();
        NodeHandle::new(repeat_id(id), SocketAddrV6::new(ip, port, 0, 0).into())
    }

    fn header(msg_type: MessageType) -> FrameHeader {
        FrameHeader {
            msg_type,
            network: NETWORK,
            sender: SENDER,
        }
    }

    fn encoded(msg: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        encode(NETWORK, SENDER, msg, &mut out);
        out
    }

    /// The body of a fixture frame.
    fn body(frame: &[u8]) -> &[u8] {
        &frame[HEADER_LEN..frame.len() - TRAILER_LEN]
    }

    // ---- the quartet: deconstruct, construct, parse, emit ----

    #[test]
    fn deconstruct_fixtures() {
        let f = Frame::new_checked(&PING[..]).unwrap();
        assert_eq!(f.header(), header(MessageType::Ping));
        assert_eq!(f.body()[..8], 0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(f.checksum(), 0x8bbd_fcef);

        let f = Frame::new_checked(&ROUTED[..]).unwrap();
        assert_eq!(f.header(), header(MessageType::Routed));
        let b = f.body();
        assert_eq!(b.len(), 58);
        assert_eq!(b[24..40], [0x11; 16]); // source id
        assert_eq!(b[40], 4); // family
        assert_eq!(b[41..45], [10, 0, 0, 1]);
        assert_eq!(b[47..49], [3, RoutedFlags::DIRECT]); // hops, flags
        assert_eq!(b[49..53], 5u32.to_be_bytes()); // payload_len
        assert_eq!(b[53..], *b"hello");

        let f = Frame::new_checked(&JOIN_REPLY[..]).unwrap();
        assert_eq!(f.header(), header(MessageType::JoinReply));
        let b = f.body();
        assert_eq!(b[8], join_flags::KNOWN);
        assert_eq!(b[9..12], [1, 2, 0]); // one row, index 2, count high byte
        assert_eq!(b[29], 6); // family of the row's entry
        assert_eq!(b[b.len() - 2..], [0, 0]); // no neighbours
    }

    #[test]
    fn construct_fixtures() {
        for (fixture, msg) in [
            (&PING[..], ping()),
            (&ROUTED[..], routed()),
            (&JOIN_REPLY[..], join_reply()),
        ] {
            let mut buf = vec![0xa5u8; fixture.len()];
            let mut f = Frame::new_unchecked(&mut buf[..]);
            f.set_header(&header(msg.message_type()));
            msg.emit(f.body_mut());
            f.fill_checksum();
            assert_eq!(buf, fixture, "{msg:?}");
        }
    }

    #[test]
    fn parse_fixtures() {
        for (fixture, msg) in [
            (&PING[..], ping()),
            (&ROUTED[..], routed()),
            (&JOIN_REPLY[..], join_reply()),
        ] {
            let ty = msg.message_type();
            assert_eq!(Message::parse(ty, body(fixture)), Ok(msg.clone()));
            assert_eq!(decode(fixture), Ok((header(ty), msg)));
        }
    }

    #[test]
    fn emit_fixtures() {
        for (fixture, msg) in [
            (&PING[..], ping()),
            (&ROUTED[..], routed()),
            (&JOIN_REPLY[..], join_reply()),
        ] {
            assert_eq!(msg.buffer_len(), body(fixture).len());
            let mut buf = vec![0u8; msg.buffer_len()];
            msg.emit(&mut buf);
            assert_eq!(buf, body(fixture));
            assert_eq!(encoded(&msg), fixture);
        }
    }

    // ---- round trips ----

    /// Messages of every type: IPv4 and IPv6 handles, empty and full lists.
    fn samples() -> Vec<Message> {
        let a = v4(1, [127, 0, 0, 1], 1);
        let b = v6(2, "fe80::1:2:3:4", 65535);
        let full = |seed: u8| -> Vec<NodeHandle> {
            (0..MAX_LIST)
                .map(|i| {
                    let id = seed.wrapping_add(i as u8);
                    if i % 3 == 0 {
                        v6(id, "2001:db8::77", i as u16)
                    } else {
                        v4(id, [10, 1, (i >> 8) as u8, i as u8], 9000)
                    }
                })
                .collect()
        };
        let full_rows: Vec<RowEntries> = (0..MAX_ROWS)
            .map(|r| RowEntries {
                row: r as u8,
                nodes: if r % 2 == 0 { vec![a, b] } else { vec![] },
            })
            .collect();
        vec![
            Message::JoinRequest {
                joiner: a,
                join_id: u64::MAX,
                hops: 0,
            },
            Message::JoinRequest {
                joiner: b,
                join_id: 1,
                hops: 255,
            },
            Message::JoinReply {
                join_id: 0,
                flags: 0,
                rows: vec![],
                leaf_set: vec![],
                neighbors: vec![],
            },
            join_reply(),
            Message::JoinReply {
                join_id: 9,
                flags: join_flags::ROOT,
                rows: full_rows,
                leaf_set: full(3),
                neighbors: full(200),
            },
            Message::JoinReply {
                join_id: 9,
                flags: join_flags::FIRST,
                rows: vec![RowEntries {
                    row: 31,
                    nodes: full(9),
                }],
                leaf_set: vec![b],
                neighbors: vec![a, b],
            },
            Message::LeafSetRequest {
                nonce: 5,
                leaf_set: vec![],
            },
            Message::LeafSetRequest {
                nonce: 5,
                leaf_set: full(3),
            },
            Message::LeafSetReply {
                nonce: 6,
                active: true,
                admitted: false,
                leaf_set: vec![],
            },
            Message::LeafSetReply {
                nonce: 6,
                active: false,
                admitted: true,
                leaf_set: full(1),
            },
            Message::RowRequest { row: 0 },
            Message::RowRequest { row: 255 },
            Message::RowReply {
                row: RowEntries::default(),
            },
            Message::RowReply {
                row: RowEntries {
                    row: 127,
                    nodes: full(5),
                },
            },
            ping(),
            Message::Pong {
                nonce: u64::MAX,
                sent_at: 0,
            },
            routed(),
            Message::Routed {
                msg_id: 0,
                key: Id::MAX,
                source: b,
                hops: 0,
                flags: RoutedFlags::default(),
                payload: Bytes::new(),
            },
            Message::Routed {
                msg_id: 1,
                key: Id::ZERO,
                source: a,
                hops: 200,
                flags: RoutedFlags(RoutedFlags::DIRECT),
                payload: Bytes::from(vec![0xee; 1024]),
            },
            Message::Ack { msg_id: 3, hops: 4 },
            Message::Leave { leaf_set: vec![] },
            Message::Leave {
                leaf_set: vec![a, b],
            },
            Message::Leave { leaf_set: full(77) },
            Message::Undeliverable {
                msg_id: 8,
                key: Id(12345),
                reason: undeliverable_reason::HOP_LIMIT,
            },
            Message::Undeliverable {
                msg_id: 8,
                key: Id(1),
                reason: 0xff,
            },
            Message::DeliveryAck { msg_id: u64::MAX },
            Message::Failed { node: full(1)[0] },
        ]
    }

    #[test]
    fn samples_cover_every_type() {
        let types: Vec<MessageType> = samples().iter().map(Message::message_type).collect();
        for byte in 1..=14 {
            let ty = MessageType::from_u8(byte).unwrap();
            assert!(types.contains(&ty), "no sample of {ty:?}");
        }
    }

    #[test]
    fn round_trip_every_type() {
        for msg in samples() {
            let frame = encoded(&msg);
            assert_eq!(frame.len(), HEADER_LEN + msg.buffer_len() + TRAILER_LEN);
            assert_eq!(
                decode(&frame),
                Ok((header(msg.message_type()), msg.clone()))
            );
            // Parse and emit alone, too, and emit leaves bytes past `buffer_len` alone.
            let mut buf = vec![0x5a; msg.buffer_len() + 3];
            msg.emit(&mut buf);
            assert_eq!(buf[msg.buffer_len()..], [0x5a; 3]);
            let parsed = Message::parse(msg.message_type(), &buf[..msg.buffer_len()]);
            assert_eq!(parsed, Ok(msg));
        }
    }

    #[test]
    fn encode_replaces_the_output() {
        let mut out = vec![1, 2, 3];
        encode(NETWORK, SENDER, &ping(), &mut out);
        assert_eq!(out, PING);
        encode(NETWORK, SENDER, &ping(), &mut out);
        assert_eq!(out, PING);
    }

    #[test]
    fn message_type_bytes() {
        for byte in 0..=255u8 {
            match MessageType::from_u8(byte) {
                Some(ty) => {
                    assert!((1..=14).contains(&byte));
                    assert_eq!(ty as u8, byte);
                }
                None => assert!(byte == 0 || byte > 14),
            }
        }
    }

    #[test]
    fn ipv6_scope_and_flowinfo_are_not_carried() {
        let ip: Ipv6Addr = "fe80::1".parse().unwrap();
        let h = NodeHandle::new(Id(9), SocketAddrV6::new(ip, 7, 0xabc, 3).into());
        let (_, msg) = decode(&encoded(&Message::Leave { leaf_set: vec![h] })).unwrap();
        let expected = NodeHandle::new(Id(9), SocketAddrV6::new(ip, 7, 0, 0).into());
        assert_eq!(
            msg,
            Message::Leave {
                leaf_set: vec![expected]
            }
        );
    }

    #[test]
    fn emit_cuts_lists_to_their_caps() {
        let h = v4(1, [1, 2, 3, 4], 5);
        let long = vec![h; MAX_LIST + 10];
        let rows = vec![
            RowEntries {
                row: 1,
                nodes: long.clone()
            };
            MAX_ROWS + 200
        ];
        let msg = Message::JoinReply {
            join_id: 1,
            flags: 0,
            rows,
            leaf_set: long.clone(),
            neighbors: vec![],
        };
        let (_, back) = decode(&encoded(&msg)).unwrap();
        let cut = vec![h; MAX_LIST];
        assert_eq!(
            back,
            Message::JoinReply {
                join_id: 1,
                flags: 0,
                rows: vec![
                    RowEntries {
                        row: 1,
                        nodes: cut.clone()
                    };
                    MAX_ROWS
                ],
                leaf_set: cut,
                neighbors: vec![],
            }
        );
    }

    #[test]
    #[should_panic(expected = "emit: buffer")]
    fn emit_panics_on_a_short_buffer() {
        let mut buf = [0u8; 15];
        ping().emit(&mut buf);
    }

    // ---- one test per body error ----

    /// Parses `body` as `ty` through a whole, crc-valid frame.
    fn decode_body(ty: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
        let mut frame = PING[..HEADER_LEN].to_vec();
        frame[3] = ty as u8;
        frame.extend_from_slice(body);
        frame.extend_from_slice(&crc32fast::hash(&frame).to_be_bytes());
        let direct = Message::parse(ty, body);
        let via_frame = decode(&frame).map(|(_, m)| m);
        assert_eq!(direct, via_frame);
        direct
    }

    #[test]
    fn error_truncated() {
        for msg in samples() {
            let frame = encoded(&msg);
            let body = body(&frame);
            // A routed body cut inside its payload has a wrong payload length instead.
            let payload_start = match &msg {
                Message::Routed { payload, .. } => body.len() - payload.len(),
                _ => usize::MAX,
            };
            // Every cut of small bodies; of the big ones, both ends and a sample between
            // (each check is linear, all of them quadratic).
            let n = body.len();
            let cuts = (0..n).filter(|&c| n < 512 || c < 256 || n - c < 256 || c % 61 == 0);
            for cut in cuts {
                let expected = if cut >= payload_start {
                    DecodeError::PayloadLength
                } else {
                    DecodeError::Truncated
                };
                assert_eq!(
                    decode_body(msg.message_type(), &body[..cut]),
                    Err(expected),
                    "{msg:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn error_trailing_bytes() {
        for msg in samples() {
            let mut body = body(&encoded(&msg)).to_vec();
            body.push(0);
            let expected = match msg {
                Message::Routed { .. } => DecodeError::PayloadLength,
                _ => DecodeError::TrailingBytes,
            };
            assert_eq!(
                decode_body(msg.message_type(), &body),
                Err(expected),
                "{msg:?}"
            );
        }
    }

    #[test]
    fn error_bad_padding() {
        // A row request pays for its answer with zero padding: every byte of it is checked,
        // and a short one is truncated.
        let msg = Message::RowRequest { row: 3 };
        let good = body(&encoded(&msg)).to_vec();
        assert_eq!(good.len(), 1 + ROW_REQUEST_PADDING);
        assert_eq!(decode_body(MessageType::RowRequest, &good), Ok(msg));
        for i in 1..good.len() {
            let mut bad = good.clone();
            bad[i] = 1;
            assert_eq!(
                decode_body(MessageType::RowRequest, &bad),
                Err(DecodeError::BadPadding)
            );
        }
        assert_eq!(
            decode_body(MessageType::RowRequest, &good[..good.len() - 1]),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn error_list_too_long() {
        // The count is checked before any entry is read.
        for count in [MAX_LIST as u16 + 1, u16::MAX] {
            let body = count.to_be_bytes();
            assert_eq!(
                decode_body(MessageType::Leave, &body),
                Err(DecodeError::ListTooLong)
            );
        }
        // At the cap, the missing entries are what is wrong.
        let body = (MAX_LIST as u16).to_be_bytes();
        assert_eq!(
            decode_body(MessageType::Leave, &body),
            Err(DecodeError::Truncated)
        );
        // A list inside a row.
        assert_eq!(
            decode_body(MessageType::RowReply, &[3, 0x01, 0x01]),
            Err(DecodeError::ListTooLong)
        );
    }

    #[test]
    fn error_too_many_rows() {
        let mut body = vec![0u8; 8]; // join_id
        body.push(0); // flags
        body.push(MAX_ROWS as u8 + 1);
        body.extend_from_slice(&[0; 3 * (MAX_ROWS + 1) + 4]); // empty rows and lists
        assert_eq!(
            decode_body(MessageType::JoinReply, &body),
            Err(DecodeError::TooManyRows)
        );
        body[9] = MAX_ROWS as u8;
        body.truncate(body.len() - 3);
        assert!(decode_body(MessageType::JoinReply, &body).is_ok());
    }

    #[test]
    fn error_bad_address_family() {
        for family in [0u8, 5, 41, 255] {
            let mut body = vec![0, 1]; // a one-entry list
            body.extend_from_slice(&[7; 16]); // id
            body.push(family);
            body.extend_from_slice(&[0; 18]); // enough for any address and port
            assert_eq!(
                decode_body(MessageType::Leave, &body),
                Err(DecodeError::BadAddressFamily(family))
            );
        }
    }

    #[test]
    fn error_bad_flags() {
        let mut b = body(&ROUTED).to_vec();
        for flags in [0x08, 0x80, 0xff] {
            b[48] = flags;
            assert_eq!(
                decode_body(MessageType::Routed, &b),
                Err(DecodeError::BadFlags)
            );
        }
        let mut b = body(&JOIN_REPLY).to_vec();
        for flags in [0x04, 0x80, 0xff] {
            b[8] = flags;
            assert_eq!(
                decode_body(MessageType::JoinReply, &b),
                Err(DecodeError::BadFlags)
            );
        }
    }

    #[test]
    fn error_bad_bool() {
        let msg = Message::LeafSetReply {
            nonce: 1,
            active: true,
            admitted: true,
            leaf_set: vec![],
        };
        let body = body(&encoded(&msg)).to_vec();
        for at in [8, 9] {
            let mut b = body.clone();
            assert_eq!(b[at], 1);
            for bad in [2, 0x80, 0xff] {
                b[at] = bad;
                assert_eq!(
                    decode_body(MessageType::LeafSetReply, &b),
                    Err(DecodeError::BadBool)
                );
            }
        }
    }

    #[test]
    fn error_payload_length() {
        let mut b = body(&ROUTED).to_vec();
        for len in [0u32, 4, 6, 1 << 16, u32::MAX] {
            b[49..53].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                decode_body(MessageType::Routed, &b),
                Err(DecodeError::PayloadLength)
            );
        }
    }
}
