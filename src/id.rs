//! Node ids and keys: 128-bit numbers on a ring, read as digits of `b` bits, most significant first.
//!
//! Distances wrap around the ring: the distance between two ids is the shorter way round.
//! "Numerically closest" everywhere in this crate means: smallest [`Id::distance`], ties broken by
//! the smaller id ([`Id::closer_to`]), so that every node and the test oracle agree on one root.

use core::fmt;
use core::net::SocketAddr;
use core::str::FromStr;

/// A 128-bit node id or key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub u128);

/// The digit width `b` in bits: 1, 2 or 4 (the default). Rows of the routing table are
/// `⌈128 / b⌉`, columns `2^b`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct DigitBits(u8);

impl DigitBits {
    /// `b = 4`: hexadecimal digits, 32 rows of 16 columns.
    pub const FOUR: DigitBits = DigitBits(4);

    /// `Some` for `b ∈ {1, 2, 4}`, `None` otherwise.
    pub const fn new(b: u8) -> Option<DigitBits> {
        match b {
            1 | 2 | 4 => Some(DigitBits(b)),
            _ => None,
        }
    }
    /// The width in bits.
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }
    /// Digits in an id: `128 / b`.
    pub const fn digits(self) -> usize {
        128 / self.0 as usize
    }
    /// Possible values of a digit: `2^b`.
    pub const fn base(self) -> usize {
        1 << self.0
    }
}

impl Default for DigitBits {
    fn default() -> Self {
        DigitBits::FOUR
    }
}

/// Why a string is not an id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ParseIdError {
    /// Not exactly 32 characters (an optional `0x` prefix aside).
    Length,
    /// A character that is not a hexadecimal digit.
    NotHex,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseIdError::Length => "an id is exactly 32 hexadecimal digits",
            ParseIdError::NotHex => "an id contains only hexadecimal digits",
        })
    }
}

impl std::error::Error for ParseIdError {}

impl Id {
    /// The smallest id.
    pub const ZERO: Id = Id(0);
    /// The largest id.
    pub const MAX: Id = Id(u128::MAX);

    /// The id from 16 big-endian bytes.
    pub const fn from_bytes(b: [u8; 16]) -> Id {
        Id(u128::from_be_bytes(b))
    }
    /// 16 big-endian bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Digit `i` (0 = most significant) for digit width `b`. `i` must be below `b.digits()`.
    #[inline]
    pub fn digit(self, i: usize, b: DigitBits) -> usize {
        let w = b.bits();
        debug_assert!(i < b.digits());
        ((self.0 >> (128 - w * (i as u32 + 1))) & ((1u128 << w) - 1)) as usize
    }

    /// The number of leading digits `self` and `other` share (`b.digits()` when equal).
    #[inline]
    pub fn shared_prefix_len(self, other: Id, b: DigitBits) -> usize {
        ((self.0 ^ other.0).leading_zeros() / b.bits()) as usize
    }

    /// `self` with digit `i` replaced by `d` and every later digit zero: the smallest id of the
    /// routing-table cell `(i, d)` relative to `self`.
    pub fn with_digit(self, i: usize, d: usize, b: DigitBits) -> Id {
        let w = b.bits();
        let shift = 128 - w * (i as u32 + 1);
        let keep = if i == 0 {
            0
        } else {
            self.0 & !((1u128 << (shift + w)) - 1)
        };
        Id(keep | ((d as u128) << shift))
    }

    /// Clockwise distance from `self` to `other` (how far `other` is ahead going up the ring).
    #[inline]
    pub const fn cw_distance(self, other: Id) -> u128 {
        other.0.wrapping_sub(self.0)
    }

    /// Ring distance: the shorter way round between `self` and `other`.
    #[inline]
    pub const fn distance(self, other: Id) -> u128 {
        let d = self.0.wrapping_sub(other.0);
        let e = other.0.wrapping_sub(self.0);
        if d < e {
            d
        } else {
            e
        }
    }

    /// Whether `a` is strictly closer to `self` than `b` is: smaller ring distance, ties broken by
    /// the smaller id. This total order decides the root of every key.
    #[inline]
    pub fn closer_to(self, a: Id, b: Id) -> bool {
        let (da, db) = (self.distance(a), self.distance(b));
        da < db || (da == db && a.0 < b.0)
    }

    /// The closeness order toward `self` as an [`Ordering`](core::cmp::Ordering) for sorting:
    /// `Less` when `a` is closer (the order of [`Id::closer_to`]), `Equal` only for `a == b`.
    #[inline]
    pub fn cmp_closeness(self, a: Id, b: Id) -> core::cmp::Ordering {
        (self.distance(a), a.0).cmp(&(self.distance(b), b.0))
    }

    /// Whether `x` lies on the clockwise arc from `from` to `to`, both ends included.
    #[inline]
    pub const fn in_cw_arc(x: Id, from: Id, to: Id) -> bool {
        from.cw_distance(x) <= from.cw_distance(to)
    }

    /// `self + d` on the ring.
    pub const fn wrapping_add(self, d: u128) -> Id {
        Id(self.0.wrapping_add(d))
    }
    /// `self - d` on the ring.
    pub const fn wrapping_sub(self, d: u128) -> Id {
        Id(self.0.wrapping_sub(d))
    }

    /// The 32-character lowercase hex form.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl FromStr for Id {
    type Err = ParseIdError;
    /// Parses 32 hex digits, optionally after `0x`.
    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.len() != 32 {
            return Err(ParseIdError::Length);
        }
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(ParseIdError::NotHex);
        }
        u128::from_str_radix(s, 16)
            .map(Id)
            .map_err(|_| ParseIdError::NotHex)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form: enough digits to tell ids apart in logs.
        write!(f, "Id({:08x}…)", (self.0 >> 96) as u32)
    }
}

/// A node as others address it: its id and its UDP address (IPv4 or IPv6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeHandle {
    /// The node's id.
    pub id: Id,
    /// Where it receives datagrams.
    pub addr: SocketAddr,
}

impl NodeHandle {
    /// A handle from its parts.
    pub const fn new(id: Id, addr: SocketAddr) -> NodeHandle {
        NodeHandle { id, addr }
    }
}

impl fmt::Display for NodeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B4: DigitBits = DigitBits::FOUR;

    #[test]
    fn digits_for_every_width() {
        let id = Id(0xfedc_ba98_7654_3210_0123_4567_89ab_cdef);
        assert_eq!(id.digit(0, B4), 0xf);
        assert_eq!(id.digit(1, B4), 0xe);
        assert_eq!(id.digit(31, B4), 0xf);
        let b2 = DigitBits::new(2).unwrap();
        assert_eq!(id.digit(0, b2), 3);
        assert_eq!(id.digit(63, b2), 3);
        let b1 = DigitBits::new(1).unwrap();
        assert_eq!(id.digit(0, b1), 1);
        assert_eq!(id.digit(127, b1), 1);
        assert_eq!(b1.digits(), 128);
        assert!(DigitBits::new(3).is_none());
    }

    #[test]
    fn shared_prefix() {
        let a = Id(0xabcd << 112);
        let b = Id(0xabce << 112);
        assert_eq!(a.shared_prefix_len(b, B4), 3);
        assert_eq!(a.shared_prefix_len(a, B4), 32);
        assert_eq!(a.shared_prefix_len(b, DigitBits::new(1).unwrap()), 14);
    }

    #[test]
    fn ring_distance_wraps() {
        let a = Id(u128::MAX - 1);
        let b = Id(3);
        assert_eq!(a.distance(b), 5);
        assert_eq!(b.distance(a), 5);
        assert_eq!(a.cw_distance(b), 5);
        assert_eq!(b.cw_distance(a), u128::MAX - 4);
        assert!(Id::in_cw_arc(Id(0), a, b));
        assert!(!Id::in_cw_arc(Id(10), a, b));
        // Ties go to the smaller id.
        let k = Id(10);
        assert!(k.closer_to(Id(8), Id(12)));
        assert!(!k.closer_to(Id(12), Id(8)));
        let half = Id(1u128 << 127);
        assert_eq!(Id(0).distance(half), 1u128 << 127);
    }

    #[test]
    fn with_digit_builds_cell_prefix() {
        let id = Id(0x1234 << 112);
        assert_eq!(id.with_digit(2, 0xf, B4), Id(0x12f0 << 112));
        assert_eq!(id.with_digit(0, 0x7, B4), Id(0x7 << 124));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let id = Id(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(id.to_hex().parse::<Id>(), Ok(id));
        assert_eq!(format!("0x{id}").parse::<Id>(), Ok(id));
        assert_eq!("abc".parse::<Id>(), Err(ParseIdError::Length));
        assert_eq!(
            "g123456789abcdef0011223344556677".parse::<Id>(),
            Err(ParseIdError::NotHex)
        );
        assert_eq!(Id::from_bytes(id.to_bytes()), id);
    }
}
