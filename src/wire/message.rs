//! Message bodies: the [`Message`] enum with `parse` and infallible `emit`.

use bytes::Bytes;

use super::frame::DecodeError;
use crate::id::{Id, NodeHandle};

/// Most node handles in one list (leaf set, neighbourhood set, one routing-table row).
pub const MAX_LIST: usize = 256;
/// Most routing-table rows in one message (`128 / b` for `b = 1`).
pub const MAX_ROWS: usize = 128;

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
    /// Every bit that has a meaning.
    pub const KNOWN: u8 = Self::DIRECT;

    /// Whether the message is a direct send to a hinted node.
    pub const fn direct(self) -> bool {
        self.0 & Self::DIRECT != 0
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
    /// every member of its leaf set to become active).
    LeafSetRequest {
        /// Echoed in the reply.
        nonce: u64,
    },
    /// The receiver's leaf set, answering a `LeafSetRequest`.
    LeafSetReply {
        /// The request's nonce.
        nonce: u64,
        /// Whether the sender is active (may deliver).
        active: bool,
        /// Its leaf set members (both sides, without the sender itself).
        leaf_set: Vec<NodeHandle>,
    },
    /// Asks the receiver for one row of its routing table.
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
    /// A routed message could not be delivered; sent to its source.
    Undeliverable {
        /// The message's `msg_id`.
        msg_id: u64,
        /// Its key.
        key: Id,
        /// One of [`undeliverable_reason`].
        reason: u8,
    },
}

impl Message {
    /// This message's type byte.
    pub fn message_type(&self) -> MessageType {
        todo!()
    }
    /// Parses a body of the given type.
    pub fn parse(msg_type: MessageType, body: &[u8]) -> Result<Message, DecodeError> {
        let _ = (msg_type, body);
        todo!()
    }
    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        todo!()
    }
    /// Writes the body into `buf[..self.buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let _ = buf;
        todo!()
    }
}

/// Encodes a whole frame (header, body, crc) into `out`, replacing its contents.
pub fn encode(network: u32, sender: Id, msg: &Message, out: &mut Vec<u8>) {
    let _ = (network, sender, msg, out);
    todo!()
}

/// Decodes and checks a whole datagram.
pub fn decode(datagram: &[u8]) -> Result<(super::FrameHeader, Message), DecodeError> {
    let _ = datagram;
    todo!()
}
