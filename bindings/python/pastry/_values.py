"""Values: ids, addresses, peers, deliveries, events, payloads and the forward message."""

import hashlib
import os
from ctypes import (
    POINTER,
    byref,
    c_char_p,
    c_uint8,
    cast,
    create_string_buffer,
    string_at,
)
from typing import (
    Any,
    Dict,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

from . import _native as N
from ._lib import EventKind, Result, _check, lib
from .errors import InvalidArgumentError

# ---- values ----

_ID_LIMIT = 1 << 128
IdLike = Union["Id", int, str, bytes, bytearray, memoryview, N.pastry_id]


class Id:
    """A 128-bit id or key. Built from an :class:`Id`, an int in ``0 .. 2**128 - 1``, 32 hex
    digits (optionally after ``0x``), or 16 big-endian bytes. Out-of-range ints and wrong
    lengths raise :class:`ValueError`, other types :class:`TypeError`."""

    __slots__ = ("_bytes",)
    _bytes: bytes

    def __init__(self, value: IdLike) -> None:
        if isinstance(value, Id):
            b = value._bytes
        elif isinstance(value, N.pastry_id):
            b = bytes(value.bytes)
        elif isinstance(value, bool):
            raise TypeError("an id is not a bool: %r" % (value,))
        elif isinstance(value, int):
            if not 0 <= value < _ID_LIMIT:
                raise InvalidArgumentError(
                    Result.ERR_INVALID_ARGUMENT, "an id is 0 .. 2**128 - 1", "Id", repr(value)
                )
            b = value.to_bytes(16, "big")
        elif isinstance(value, str):
            b = Id.from_hex(value)._bytes
        elif isinstance(value, (bytes, bytearray, memoryview)):
            b = bytes(value)
            if len(b) != 16:
                raise InvalidArgumentError(
                    Result.ERR_INVALID_ARGUMENT,
                    "an id is 16 bytes",
                    "Id",
                    "%d bytes" % len(b),
                )
        else:
            raise TypeError("cannot make an Id from %s" % type(value).__name__)
        self._bytes = b

    @classmethod
    def from_hex(cls, text: str) -> "Id":
        """Parses 32 hex digits (optionally after ``0x``); raises :class:`BadHexError` (a
        ``ValueError``) showing the text otherwise."""
        if not isinstance(text, str):
            raise TypeError("hex text must be str, not %s" % type(text).__name__)
        raw = N.pastry_id()
        _check(lib().pastry_id_from_hex(text.encode(), byref(raw)), "pastry_id_from_hex", repr(text))
        return cls(raw)

    @classmethod
    def hash(cls, data: Union[str, bytes, bytearray, memoryview]) -> "Id":
        """The key of a name or content: the first 16 bytes of its SHA-256 (the C library's
        ``pastry_id_hash`` gives the same)."""
        if isinstance(data, str):
            data = data.encode()
        return cls(hashlib.sha256(bytes(data)).digest()[:16])

    @classmethod
    def random(cls) -> "Id":
        """A random id (from ``os.urandom``)."""
        return cls(os.urandom(16))

    @property
    def bytes(self) -> bytes:
        """The 16 big-endian bytes."""
        return self._bytes

    def hex(self) -> str:
        """32 lowercase hex digits."""
        return self._bytes.hex()

    def distance(self, other: IdLike) -> int:
        """Ring distance (the shorter way round) to ``other``."""
        d = (int(self) - int(Id(other))) % _ID_LIMIT
        return min(d, _ID_LIMIT - d)

    def _raw(self) -> N.pastry_id:
        raw = N.pastry_id()
        raw.bytes[:] = self._bytes
        return raw

    def __int__(self) -> int:
        return int.from_bytes(self._bytes, "big")

    def __index__(self) -> int:
        return int(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Id) and other._bytes == self._bytes

    def __lt__(self, other: "Id") -> bool:
        return self._bytes < other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __repr__(self) -> str:
        return "Id(%s)" % self._bytes.hex()

    def __str__(self) -> str:
        return self.hex()


def _addr(text: object) -> N.pastry_addr:
    if not isinstance(text, str):
        raise TypeError("an address is text like '127.0.0.1:4000', not %s" % type(text).__name__)
    raw = N.pastry_addr()
    _check(lib().pastry_addr_parse(text.encode(), byref(raw)), "pastry_addr_parse", repr(text))
    return raw


def _addr_str(raw: N.pastry_addr) -> str:
    buf = create_string_buffer(N.CONSTANTS["PASTRY_ADDR_STR_BUF"])
    _check(lib().pastry_addr_to_str(byref(raw), buf, len(buf)), "pastry_addr_to_str")
    return str(buf.value.decode())


class Addr(str):
    """A socket address as text (``"127.0.0.1:4000"``, ``"[::1]:4000"``), checked by the
    library (:class:`BadAddressError`, a ``ValueError``, shows the bad text)."""

    def __new__(cls, text: str) -> "Addr":
        return super().__new__(cls, _addr_str(_addr(text)))


class Peer(NamedTuple):
    """A node as others address it."""

    #: Its id.
    id: Id
    #: Its address text.
    addr: str


_addr_cache: Dict[bytes, str] = {}


def _peer(raw: N.pastry_peer) -> Peer:
    # Upcalls see the same few addresses again and again: their text is cached (bounded).
    key = bytes(raw.addr)
    text = _addr_cache.get(key)
    if text is None:
        text = _addr_str(raw.addr)
        if len(_addr_cache) >= 4096:
            _addr_cache.clear()
        _addr_cache[key] = text
    return Peer(Id(raw.id), text)


def _peer_raw(peer: Peer) -> N.pastry_peer:
    raw = N.pastry_peer()
    raw.id = Id(peer.id)._raw()
    raw.addr = _addr(peer.addr)
    return raw


class Delivery(NamedTuple):
    """A message delivered at this node (``on_deliver``)."""

    #: The key it was routed to (a direct send: the id given in its hint).
    key: Id
    #: The original sender (where a reply goes), not the last hop.
    source: Peer
    #: Its end-to-end id, as returned by ``route`` at the source.
    msg_id: int
    #: Overlay hops it took.
    hops: int
    #: The application's bytes.
    payload: bytes


class Event(NamedTuple):
    """An event of a caller-driven node (fields a kind does not use are None or 0)."""

    kind: EventKind
    key: Optional[Id]
    peer: Optional[Peer]
    msg_id: int
    hops: int
    reason: int
    payload: Optional[bytes]


Payload = Union[bytes, bytearray, memoryview, str]


def _payload_arg(data: object) -> Tuple[bytes, Any]:
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            "a payload is bytes, bytearray, memoryview or str, not %s" % type(data).__name__
        )
    b = bytes(data)
    if not b:
        return b, None
    return b, cast(c_char_p(b), POINTER(c_uint8))


class ForwardMessage:
    """The message in an ``on_forward`` upcall: read or change it during the call only."""

    def __init__(self, ptr: Any) -> None:
        self._m = ptr.contents
        self._ptr = ptr

    @property
    def key(self) -> Id:
        """The key it is routed to; set it to route toward another key from here on."""
        return Id(self._m.key)

    @key.setter
    def key(self, value: IdLike) -> None:
        self._m.key = Id(value)._raw()

    @property
    def source(self) -> Peer:
        """The node that sent it."""
        return _peer(self._m.source)

    @property
    def msg_id(self) -> int:
        """Its end-to-end id."""
        return int(self._m.msg_id)

    @property
    def hops(self) -> int:
        """Hops taken so far (0 at the source)."""
        return int(self._m.hops)

    @property
    def next_hop(self) -> Optional[Peer]:
        """The next hop, or None when this node delivers the message. Set a :class:`Peer` to
        send it elsewhere, or None to deliver it here."""
        return _peer(self._m.next_hop) if self._m.has_next_hop else None

    @next_hop.setter
    def next_hop(self, peer: Optional[Peer]) -> None:
        if peer is None:
            self._m.has_next_hop = False
        else:
            self._m.next_hop = _peer_raw(peer)
            self._m.has_next_hop = True

    @property
    def payload(self) -> bytes:
        """The application's bytes; assign bytes (or str) to replace them."""
        n = self._m.payload_len
        return string_at(self._m.payload, n) if n else b""

    @payload.setter
    def payload(self, data: Payload) -> None:
        b, ptr = _payload_arg(data)
        _check(
            lib().pastry_forward_set_payload(self._ptr, ptr, len(b)),
            "pastry_forward_set_payload",
        )
