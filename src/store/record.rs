//! Naming: what a stored record is and how its key is derived, so that any holder's bytes can
//! be checked against the key they are stored under.
//!
//! A record is one kind byte and a body:
//!
//! | kind | body | key |
//! |---|---|---|
//! | 0 content | the value | `sha256(value)[..16]` (the same as `pastry_id_hash` and Python's `Id.hash`) |
//! | 1 manifest | total length u64, chunk size u32, then the chunks' keys | `sha256("pastry:manifest:" ‖ body)[..16]` |
//! | 2 named | name length u16, name, value | `sha256("pastry:name:" ‖ name)[..16]` |

use bytes::{BufMut, Bytes};
use sha2::{Digest, Sha256};

use crate::id::Id;

pub(crate) const CONTENT: u8 = 0;
pub(crate) const MANIFEST: u8 = 1;
pub(crate) const NAMED: u8 = 2;

/// The first 128 bits of SHA-256 over the concatenation of `parts`.
fn hash128(parts: &[&[u8]]) -> Id {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    Id(u128::from_be_bytes(b))
}

/// The key of an immutable object with content `value`: the first 128 bits of its SHA-256.
///
/// ```
/// let k = pastry::store::content_key(b"hello");
/// assert_eq!(k.to_hex(), "2cf24dba5fb0a30e26e83b2ac5b9e29e");
/// ```
pub fn content_key(value: &[u8]) -> Id {
    hash128(&[value])
}

/// The key of the named object `name`: the first 128 bits of SHA-256 over
/// `"pastry:name:" ‖ name`.
pub fn name_key(name: &[u8]) -> Id {
    hash128(&[b"pastry:name:", name])
}

fn manifest_key(body: &[u8]) -> Id {
    hash128(&[b"pastry:manifest:", body])
}

/// A content record and its key.
pub(crate) fn content(value: &[u8]) -> (Id, Bytes) {
    let mut r = Vec::with_capacity(value.len() + 1);
    r.push(CONTENT);
    r.extend_from_slice(value);
    (content_key(value), Bytes::from(r))
}

/// A named record and its key (`None`: the name is longer than 65,535 bytes).
pub(crate) fn named(name: &[u8], value: &[u8]) -> Option<(Id, Bytes)> {
    let n = u16::try_from(name.len()).ok()?;
    let mut r = Vec::with_capacity(value.len() + name.len() + 3);
    r.push(NAMED);
    r.put_u16(n);
    r.extend_from_slice(name);
    r.extend_from_slice(value);
    Some((name_key(name), Bytes::from(r)))
}

/// A manifest record and its key.
pub(crate) fn manifest(total: u64, chunk: u32, keys: &[Id]) -> (Id, Bytes) {
    let mut r = Vec::with_capacity(13 + 16 * keys.len());
    r.push(MANIFEST);
    r.put_u64(total);
    r.put_u32(chunk);
    for k in keys {
        r.put_u128(k.0);
    }
    (manifest_key(&r[1..]), Bytes::from(r))
}

/// A decoded manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) total: u64,
    pub(crate) chunk: u32,
    pub(crate) keys: Vec<Id>,
}

/// Whether `record` is a well-formed record whose key is `key`.
pub(crate) fn verify(key: Id, record: &[u8]) -> bool {
    match record.split_first() {
        Some((&CONTENT, v)) => content_key(v) == key,
        Some((&MANIFEST, body)) => manifest_key(body) == key && parse_manifest(record).is_some(),
        Some((&NAMED, body)) => name_parts(body).is_some_and(|(n, _)| name_key(n) == key),
        _ => false,
    }
}

fn name_parts(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = usize::from(u16::from_be_bytes(body.get(..2)?.try_into().ok()?));
    let name = body.get(2..2 + n)?;
    Some((name, &body[2 + n..]))
}

/// The value a verified record carries (a manifest's is its body).
pub(crate) fn value(record: &Bytes) -> Bytes {
    match record.first() {
        Some(&NAMED) => {
            let n = name_parts(&record[1..]).map_or(0, |(n, _)| n.len());
            record.slice((3 + n).min(record.len())..)
        }
        Some(_) => record.slice(1..),
        None => Bytes::new(),
    }
}

/// The manifest in `record`, if it is a well-formed one: total length ≤ 64 MiB, covered exactly
/// by its chunks.
pub(crate) fn parse_manifest(record: &[u8]) -> Option<Manifest> {
    let (&MANIFEST, body) = record.split_first()? else {
        return None;
    };
    let total = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let chunk = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?);
    let rest = &body[12..];
    if rest.len() % 16 != 0 || chunk == 0 || total > super::MAX_VALUE as u64 {
        return None;
    }
    let keys: Vec<Id> = rest
        .chunks_exact(16)
        .map(|c| Id(u128::from_be_bytes(c.try_into().unwrap_or_default())))
        .collect();
    if total.div_ceil(u64::from(chunk)) != keys.len() as u64 {
        return None;
    }
    Some(Manifest { total, chunk, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_verify_and_tampering_is_caught() {
        let (k, r) = content(b"abc");
        assert!(verify(k, &r));
        assert_eq!(&value(&r)[..], b"abc");
        let mut bad = r.to_vec();
        bad[1] ^= 1;
        assert!(!verify(k, &bad));
        let (k, r) = named(b"n", b"v1").unwrap();
        assert!(verify(k, &r));
        assert_eq!(&value(&r)[..], b"v1");
        assert_eq!(k, name_key(b"n"));
        let (k, r) = manifest(5, 3, &[Id(1), Id(2)]);
        assert!(verify(k, &r));
        assert_eq!(parse_manifest(&r).unwrap().keys, vec![Id(1), Id(2)]);
        let (k, r) = manifest(7, 3, &[Id(1), Id(2)]);
        assert!(!verify(k, &r), "3 chunks of 3 bytes needed for 7");
        assert!(!verify(Id(0), b""));
    }
}
