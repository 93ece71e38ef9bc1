//! The store's messages, carried inside route payloads: one version byte, one type byte, then
//! the fields, big-endian, every length checked. [`StoreMsg::decode`] never panics and never
//! allocates more than the input's length on any bytes; bytes it cannot read are an error.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, Bytes};

use crate::id::{Id, NodeHandle};

/// The format version this code writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Most bytes the header and fields of the largest message (a put) add to a record.
pub(crate) const OVERHEAD: usize = 2 + 8 + 35 + 4;
/// Most keys one key list carries.
pub(crate) const MAX_KEYS: usize = 1024;
/// Most excluded responders one get carries.
pub(crate) const MAX_EXCLUDE: usize = 8;

/// Status codes in replies.
pub(crate) mod status {
    pub(crate) const OK: u8 = 0;
    pub(crate) const NOT_FOUND: u8 = 1;
    pub(crate) const CONFLICT: u8 = 2;
    pub(crate) const FULL: u8 = 3;
    pub(crate) const BUSY: u8 = 4;
    pub(crate) const INVALID: u8 = 5;
}

/// One store message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreMsg {
    /// Routed to the record's key: store it on the key's k replica nodes.
    Put {
        op: u64,
        requester: NodeHandle,
        record: Bytes,
    },
    /// Direct to a put's requester: how it ended.
    PutResult { op: u64, key: Id, status: u8 },
    /// Routed to `key` (or relayed directly between replicas): the first holder on the way that
    /// is not excluded answers the requester directly.
    Get {
        op: u64,
        requester: NodeHandle,
        key: Id,
        relays: u8,
        exclude: Vec<Id>,
    },
    /// Direct to a get's requester.
    GetReply {
        op: u64,
        key: Id,
        status: u8,
        record: Bytes,
    },
    /// Direct to a replica: hold this record; `tag` 0 wants no acknowledgement.
    Replicate { tag: u64, key: Id, record: Bytes },
    /// A replica's answer to a tagged `Replicate`.
    ReplicaAck { tag: u64, key: Id, status: u8 },
    /// Direct to a neighbour: a hash over the sorted keys this node holds that it believes
    /// the neighbour should hold too.
    Digest { count: u32, hash: [u8; 16] },
    /// The answer to a digest that differed: the sender's keys of that set, sorted, from the
    /// first; `more` = the list was cut after its last key.
    KeyList { more: bool, keys: Vec<Id> },
    /// Send me these records.
    Fetch { keys: Vec<Id> },
    /// I hold these records but am no longer among their replicas: fetch the ones you lack.
    Offer { keys: Vec<Id> },
    /// The answer to an offer: of the keys offered, those the sender holds.
    Have { keys: Vec<Id> },
}

/// Why bytes did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadMsg;

mod ty {
    pub(super) const PUT: u8 = 1;
    pub(super) const PUT_RESULT: u8 = 2;
    pub(super) const GET: u8 = 3;
    pub(super) const GET_REPLY: u8 = 4;
    pub(super) const REPLICATE: u8 = 5;
    pub(super) const REPLICA_ACK: u8 = 6;
    pub(super) const DIGEST: u8 = 7;
    pub(super) const KEY_LIST: u8 = 8;
    pub(super) const FETCH: u8 = 9;
    pub(super) const OFFER: u8 = 10;
    pub(super) const HAVE: u8 = 11;
}

fn put_handle(out: &mut Vec<u8>, h: &NodeHandle) {
    out.put_u128(h.id.0);
    match h.addr {
        SocketAddr::V4(a) => {
            out.put_u8(4);
            out.put_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.put_u8(6);
            out.put_slice(&a.ip().octets());
        }
    }
    out.put_u16(h.addr.port());
}

fn put_keys(out: &mut Vec<u8>, keys: &[Id]) {
    let n = keys.len().min(MAX_KEYS);
    out.put_u16(n as u16);
    for k in &keys[..n] {
        out.put_u128(k.0);
    }
}

fn put_record(out: &mut Vec<u8>, record: &[u8]) {
    out.put_u32(record.len() as u32);
    out.put_slice(record);
}

impl StoreMsg {
    /// The encoded message.
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(64);
        out.put_u8(VERSION);
        match self {
            StoreMsg::Put {
                op,
                requester,
                record,
            } => {
                out.reserve(record.len() + OVERHEAD);
                out.put_u8(ty::PUT);
                out.put_u64(*op);
                put_handle(&mut out, requester);
                put_record(&mut out, record);
            }
            StoreMsg::PutResult { op, key, status } => {
                out.put_u8(ty::PUT_RESULT);
                out.put_u64(*op);
                out.put_u128(key.0);
                out.put_u8(*status);
            }
            StoreMsg::Get {
                op,
                requester,
                key,
                relays,
                exclude,
            } => {
                out.put_u8(ty::GET);
                out.put_u64(*op);
                put_handle(&mut out, requester);
                out.put_u128(key.0);
                out.put_u8(*relays);
                let n = exclude.len().min(MAX_EXCLUDE);
                put_keys(&mut out, &exclude[..n]);
            }
            StoreMsg::GetReply {
                op,
                key,
                status,
                record,
            } => {
                out.reserve(record.len() + OVERHEAD);
                out.put_u8(ty::GET_REPLY);
                out.put_u64(*op);
                out.put_u128(key.0);
                out.put_u8(*status);
                put_record(&mut out, record);
            }
            StoreMsg::Replicate { tag, key, record } => {
                out.reserve(record.len() + OVERHEAD);
                out.put_u8(ty::REPLICATE);
                out.put_u64(*tag);
                out.put_u128(key.0);
                put_record(&mut out, record);
            }
            StoreMsg::ReplicaAck { tag, key, status } => {
                out.put_u8(ty::REPLICA_ACK);
                out.put_u64(*tag);
                out.put_u128(key.0);
                out.put_u8(*status);
            }
            StoreMsg::Digest { count, hash } => {
                out.put_u8(ty::DIGEST);
                out.put_u32(*count);
                out.put_slice(hash);
            }
            StoreMsg::KeyList { more, keys } => {
                out.put_u8(ty::KEY_LIST);
                out.put_u8(u8::from(*more));
                put_keys(&mut out, keys);
            }
            StoreMsg::Fetch { keys } => {
                out.put_u8(ty::FETCH);
                put_keys(&mut out, keys);
            }
            StoreMsg::Offer { keys } => {
                out.put_u8(ty::OFFER);
                put_keys(&mut out, keys);
            }
            StoreMsg::Have { keys } => {
                out.put_u8(ty::HAVE);
                put_keys(&mut out, keys);
            }
        }
        Bytes::from(out)
    }

    /// Decodes `buf` (a slice of a received payload: records are zero-copy slices of it).
    pub(crate) fn decode(buf: &Bytes) -> Result<StoreMsg, BadMsg> {
        let mut r = Reader { buf, pos: 0 };
        if r.u8()? != VERSION {
            return Err(BadMsg);
        }
        let msg = match r.u8()? {
            ty::PUT => StoreMsg::Put {
                op: r.u64()?,
                requester: r.handle()?,
                record: r.record()?,
            },
            ty::PUT_RESULT => StoreMsg::PutResult {
                op: r.u64()?,
                key: Id(r.u128()?),
                status: r.u8()?,
            },
            ty::GET => StoreMsg::Get {
                op: r.u64()?,
                requester: r.handle()?,
                key: Id(r.u128()?),
                relays: r.u8()?,
                exclude: r.keys(MAX_EXCLUDE)?,
            },
            ty::GET_REPLY => StoreMsg::GetReply {
                op: r.u64()?,
                key: Id(r.u128()?),
                status: r.u8()?,
                record: r.record()?,
            },
            ty::REPLICATE => StoreMsg::Replicate {
                tag: r.u64()?,
                key: Id(r.u128()?),
                record: r.record()?,
            },
            ty::REPLICA_ACK => StoreMsg::ReplicaAck {
                tag: r.u64()?,
                key: Id(r.u128()?),
                status: r.u8()?,
            },
            ty::DIGEST => StoreMsg::Digest {
                count: r.u32()?,
                hash: r.take(16)?.try_into().map_err(|_| BadMsg)?,
            },
            ty::KEY_LIST => StoreMsg::KeyList {
                more: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(BadMsg),
                },
                keys: r.keys(MAX_KEYS)?,
            },
            ty::FETCH => StoreMsg::Fetch {
                keys: r.keys(MAX_KEYS)?,
            },
            ty::OFFER => StoreMsg::Offer {
                keys: r.keys(MAX_KEYS)?,
            },
            ty::HAVE => StoreMsg::Have {
                keys: r.keys(MAX_KEYS)?,
            },
            _ => return Err(BadMsg),
        };
        if r.pos != buf.len() {
            return Err(BadMsg);
        }
        Ok(msg)
    }
}

/// Whether `payload` looks like a store get (a cheap test before decoding in `forward`).
pub(crate) fn is_get(payload: &[u8]) -> bool {
    payload.len() > 2 && payload[0] == VERSION && payload[1] == ty::GET
}

impl StoreMsg {
    /// Whether this is replica maintenance (digest exchange and re-replication), as opposed to
    /// an application's put or get.
    pub(crate) fn is_sync(&self) -> bool {
        matches!(
            self,
            StoreMsg::Digest { .. }
                | StoreMsg::KeyList { .. }
                | StoreMsg::Fetch { .. }
                | StoreMsg::Offer { .. }
                | StoreMsg::Have { .. }
                | StoreMsg::Replicate { tag: 0, .. }
        )
    }
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], BadMsg> {
        let end = self.pos.checked_add(n).ok_or(BadMsg)?;
        let s = self.buf.get(self.pos..end).ok_or(BadMsg)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, BadMsg> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, BadMsg> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, BadMsg> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes(s.try_into().map_err(|_| BadMsg)?))
    }
    fn u64(&mut self) -> Result<u64, BadMsg> {
        let s = self.take(8)?;
        Ok(u64::from_be_bytes(s.try_into().map_err(|_| BadMsg)?))
    }
    fn u128(&mut self) -> Result<u128, BadMsg> {
        let s = self.take(16)?;
        Ok(u128::from_be_bytes(s.try_into().map_err(|_| BadMsg)?))
    }
    fn handle(&mut self) -> Result<NodeHandle, BadMsg> {
        let id = Id(self.u128()?);
        let ip = match self.u8()? {
            4 => {
                let o: [u8; 4] = self.take(4)?.try_into().map_err(|_| BadMsg)?;
                IpAddr::V4(Ipv4Addr::from(o))
            }
            6 => {
                let o: [u8; 16] = self.take(16)?.try_into().map_err(|_| BadMsg)?;
                IpAddr::V6(Ipv6Addr::from(o))
            }
            _ => return Err(BadMsg),
        };
        let port = self.u16()?;
        Ok(NodeHandle::new(id, SocketAddr::new(ip, port)))
    }
    fn record(&mut self) -> Result<Bytes, BadMsg> {
        let n = self.u32()? as usize;
        let start = self.pos;
        self.take(n)?;
        Ok(self.buf.slice(start..start + n))
    }
    fn keys(&mut self, max: usize) -> Result<Vec<Id>, BadMsg> {
        let n = usize::from(self.u16()?);
        if n > max || n * 16 > self.buf.len() - self.pos {
            return Err(BadMsg);
        }
        (0..n).map(|_| self.u128().map(Id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> NodeHandle {
        NodeHandle::new(Id(7), "127.0.0.1:9".parse().unwrap())
    }

    fn samples() -> Vec<StoreMsg> {
        let rec = Bytes::from_static(b"\0hello");
        vec![
            StoreMsg::Put {
                op: 1,
                requester: h(),
                record: rec.clone(),
            },
            StoreMsg::PutResult {
                op: 2,
                key: Id(3),
                status: status::CONFLICT,
            },
            StoreMsg::Get {
                op: 4,
                requester: NodeHandle::new(Id(1), "[::1]:5".parse().unwrap()),
                key: Id(5),
                relays: 1,
                exclude: vec![Id(9), Id(10)],
            },
            StoreMsg::GetReply {
                op: 6,
                key: Id(7),
                status: status::OK,
                record: rec.clone(),
            },
            StoreMsg::Replicate {
                tag: 0,
                key: Id(8),
                record: rec,
            },
            StoreMsg::ReplicaAck {
                tag: 9,
                key: Id(9),
                status: status::FULL,
            },
            StoreMsg::Digest {
                count: 3,
                hash: [1; 16],
            },
            StoreMsg::KeyList {
                more: true,
                keys: vec![Id(1), Id(2)],
            },
            StoreMsg::Fetch { keys: vec![Id(4)] },
            StoreMsg::Offer { keys: vec![] },
            StoreMsg::Have { keys: vec![Id(3)] },
        ]
    }

    #[test]
    fn round_trip() {
        for m in samples() {
            assert_eq!(StoreMsg::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for m in samples() {
            let b = m.encode();
            for n in 0..b.len() {
                assert_eq!(
                    StoreMsg::decode(&b.slice(..n)),
                    Err(BadMsg),
                    "{m:?} cut at {n}"
                );
            }
            let mut longer = b.to_vec();
            longer.push(0);
            assert_eq!(StoreMsg::decode(&Bytes::from(longer)), Err(BadMsg));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..20_000 {
            let n = rng.below(80) as usize;
            let mut v: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
            if n > 0 {
                v[0] = VERSION;
            }
            if n > 1 {
                v[1] = (rng.below(13)) as u8;
            }
            let _ = StoreMsg::decode(&Bytes::from(v));
        }
    }
}
