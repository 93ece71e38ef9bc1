//! Ids, addresses and peers as plain C structs, with hex and text conversions.

use core::ffi::c_char;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::error::pastry_result::{self, *};
use super::guard::write_c_str;
use crate::id::{Id, NodeHandle};

/// Bytes needed to hold an id as text: 32 hexadecimal digits and a NUL.
pub const PASTRY_ID_HEX_BUF: usize = 33;
/// Bytes that always hold a socket address as text (`[v6%scope]:port` and a NUL).
pub const PASTRY_ADDR_STR_BUF: usize = 64;
/// `pastry_addr.family` of an IPv4 address.
pub const PASTRY_AF_INET: u16 = 4;
/// `pastry_addr.family` of an IPv6 address.
pub const PASTRY_AF_INET6: u16 = 6;

/// A 128-bit node id or key, big-endian: `bytes[0]` holds the most significant 8 bits (the
/// first two hexadecimal digits). Compare ids as 16-byte big-endian numbers; the ring distance
/// between two ids is the shorter way round modulo 2^128.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pastry_id {
    /// The id's 16 bytes, most significant first.
    pub bytes: [u8; 16],
}

impl From<Id> for pastry_id {
    fn from(id: Id) -> pastry_id {
        pastry_id {
            bytes: id.to_bytes(),
        }
    }
}

impl pastry_id {
    /// The Rust id.
    pub fn id(&self) -> Id {
        Id::from_bytes(self.bytes)
    }
}

/// A UDP socket address without `struct sockaddr` (so the header needs no OS headers).
///
/// `family` is `PASTRY_AF_INET` (4: the address is `ip[0..4]`, the other bytes are zero) or
/// `PASTRY_AF_INET6` (6: the address is all 16 bytes of `ip`, with `scope_id`). `port` is in
/// host byte order. `pastry_addr_parse` and `pastry_addr_to_str` convert from and to text.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pastry_addr {
    /// `PASTRY_AF_INET` or `PASTRY_AF_INET6`.
    pub family: u16,
    /// The UDP port, host byte order.
    pub port: u16,
    /// The IPv6 scope id (0 for IPv4).
    pub scope_id: u32,
    /// The address bytes, network order (IPv4 in the first 4 bytes).
    pub ip: [u8; 16],
}

impl From<SocketAddr> for pastry_addr {
    fn from(a: SocketAddr) -> pastry_addr {
        let mut ip = [0u8; 16];
        match a {
            SocketAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.ip().octets());
                pastry_addr {
                    family: PASTRY_AF_INET,
                    port: v4.port(),
                    scope_id: 0,
                    ip,
                }
            }
            SocketAddr::V6(v6) => pastry_addr {
                family: PASTRY_AF_INET6,
                port: v6.port(),
                scope_id: v6.scope_id(),
                ip: v6.ip().octets(),
            },
        }
    }
}

impl pastry_addr {
    /// The Rust address; `Err(PASTRY_ERR_BAD_ADDRESS)` for an unknown family.
    pub fn socket_addr(&self) -> Result<SocketAddr, pastry_result> {
        match self.family {
            PASTRY_AF_INET => {
                let [a, b, c, d, ..] = self.ip;
                let ip = Ipv4Addr::new(a, b, c, d);
                Ok(SocketAddr::V4(SocketAddrV4::new(ip, self.port)))
            }
            PASTRY_AF_INET6 => {
                let ip = Ipv6Addr::from(self.ip);
                let v6 = SocketAddrV6::new(ip, self.port, 0, self.scope_id);
                Ok(SocketAddr::V6(v6))
            }
            _ => Err(PASTRY_ERR_BAD_ADDRESS),
        }
    }
}

/// A node as others address it: its id and its UDP address (the Common API's node handle).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pastry_peer {
    /// The node's id.
    pub id: pastry_id,
    /// Where it receives datagrams.
    pub addr: pastry_addr,
}

impl From<NodeHandle> for pastry_peer {
    fn from(h: NodeHandle) -> pastry_peer {
        pastry_peer {
            id: h.id.into(),
            addr: h.addr.into(),
        }
    }
}

impl pastry_peer {
    /// The Rust node handle; `Err(PASTRY_ERR_BAD_ADDRESS)` for a malformed address.
    pub fn handle(&self) -> Result<NodeHandle, pastry_result> {
        Ok(NodeHandle::new(self.id.id(), self.addr.socket_addr()?))
    }
}

/// Parses `hex` (exactly 32 hexadecimal digits, either case, optionally after `0x`) into
/// `*out`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_HEX`.
#[no_mangle]
pub unsafe extern "C" fn pastry_id_from_hex(
    hex: *const c_char,
    out: *mut pastry_id,
) -> pastry_result {
    ffi_boundary!("pastry_id_from_hex", {
        let out = try_out!(out);
        let s = try_str!(hex, PASTRY_ERR_BAD_HEX);
        let id: Id = s.parse().map_err(|_| PASTRY_ERR_BAD_HEX)?;
        out.write(id.into());
        Ok(())
    })
}

/// Writes `*id` as 32 lowercase hexadecimal digits and a NUL into `buf` (`cap` bytes; at least
/// `PASTRY_ID_HEX_BUF`).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BUFFER_TOO_SMALL` (nothing written).
#[no_mangle]
pub unsafe extern "C" fn pastry_id_to_hex(
    id: *const pastry_id,
    buf: *mut c_char,
    cap: usize,
) -> pastry_result {
    ffi_boundary!("pastry_id_to_hex", {
        let id = try_ref!(id);
        if buf.is_null() {
            return Err(PASTRY_ERR_NULL_ARGUMENT);
        }
        let buf = try_slice_mut!(buf, cap);
        write_c_str(&id.id().to_hex(), buf)
    })
}

/// Stores in `*out` the key of `len` bytes at `data` (NULL is fine when `len` is 0): the first
/// 16 bytes of their SHA-256 digest. Use it to name content or a name (`"object/17"`) as a key:
/// keys spread evenly over the ring however alike the names are. The Python package's
/// `Id.hash` gives the same keys.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn pastry_id_hash(
    data: *const u8,
    len: usize,
    out: *mut pastry_id,
) -> pastry_result {
    ffi_boundary!("pastry_id_hash", {
        let out = try_out!(out);
        let bytes = try_slice!(data, len);
        let digest = super::sha256::sha256(bytes);
        let mut id = pastry_id::default();
        id.bytes.copy_from_slice(&digest[..16]);
        out.write(id);
        Ok(())
    })
}

/// Parses a socket address (`"127.0.0.1:4000"`, `"[::1]:4000"`, `"[fe80::1%2]:4000"`; no host
/// names) into `*out`.
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_ADDRESS`.
#[no_mangle]
pub unsafe extern "C" fn pastry_addr_parse(
    text: *const c_char,
    out: *mut pastry_addr,
) -> pastry_result {
    ffi_boundary!("pastry_addr_parse", {
        let out = try_out!(out);
        let s = try_str!(text, PASTRY_ERR_BAD_ADDRESS);
        let a: SocketAddr = s.parse().map_err(|_| PASTRY_ERR_BAD_ADDRESS)?;
        out.write(a.into());
        Ok(())
    })
}

/// Writes `*addr` as text (`"127.0.0.1:4000"`, `"[::1]:4000"`) and a NUL into `buf` (`cap`
/// bytes; `PASTRY_ADDR_STR_BUF` always suffices).
///
/// # Errors
/// `PASTRY_ERR_NULL_ARGUMENT`, `PASTRY_ERR_BAD_ADDRESS` (unknown family),
/// `PASTRY_ERR_BUFFER_TOO_SMALL` (nothing written).
#[no_mangle]
pub unsafe extern "C" fn pastry_addr_to_str(
    addr: *const pastry_addr,
    buf: *mut c_char,
    cap: usize,
) -> pastry_result {
    ffi_boundary!("pastry_addr_to_str", {
        let addr = try_ref!(addr).socket_addr()?;
        if buf.is_null() {
            return Err(PASTRY_ERR_NULL_ARGUMENT);
        }
        let buf = try_slice_mut!(buf, cap);
        write_c_str(&addr.to_string(), buf)
    })
}

/// Whether an address is unusable as a destination: an unspecified IP in any spelling
/// (`0.0.0.0`, `::`, the IPv4-mapped `::ffff:0.0.0.0`), or port 0.
pub(crate) fn is_unspecified(a: &SocketAddr) -> bool {
    crate::runtime::is_unspecified_ip(a.ip()) || a.port() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for s in ["127.0.0.1:4000", "[::1]:9", "[fe80::1%3]:7"] {
            let a: SocketAddr = s.parse().unwrap();
            let c = pastry_addr::from(a);
            assert_eq!(c.socket_addr().unwrap(), a);
            assert!(a.to_string().len() < PASTRY_ADDR_STR_BUF);
        }
        let bad = pastry_addr {
            family: 5,
            ..pastry_addr::default()
        };
        assert_eq!(bad.socket_addr(), Err(PASTRY_ERR_BAD_ADDRESS));
        let longest = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535";
        assert!(longest.len() < PASTRY_ADDR_STR_BUF);
        assert!(is_unspecified(&"0.0.0.0:5".parse().unwrap()));
        assert!(is_unspecified(&"1.2.3.4:0".parse().unwrap()));
        for any in [
            "[::]:5",
            "[::ffff:0.0.0.0]:5",
            "[::ffff:0:0]:5",
            "[::0.0.0.0]:5",
        ] {
            assert!(is_unspecified(&any.parse().unwrap()), "{any}");
        }
        assert!(!is_unspecified(&"[::ffff:127.0.0.1]:5".parse().unwrap()));
    }

    #[test]
    fn ids_are_big_endian() {
        let id = Id(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let c = pastry_id::from(id);
        assert_eq!(c.bytes[0], 1);
        assert_eq!(c.bytes[15], 0x10);
        assert_eq!(c.id(), id);
    }
}
