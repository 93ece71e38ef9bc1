"""Python bindings for pastry, an embeddable Pastry peer-to-peer overlay node (ctypes over the
shared library ``libpastry``, which ``pip install`` builds and bundles; see
:func:`pastry._native.find_library`).

>>> import pastry
>>> got = []
>>> with pastry.Runtime() as rt:
...     with pastry.Node(rt, on_deliver=lambda node, d: got.append(d.payload)) as a:
...         a.start()
...         a.wait_joined(5)
...         msg_id = a.route(a.id, b"hello")   # a is the root of its own id
...         # (delivered on the runtime's thread, soon after)

**Upcalls** run on the runtime's event-loop thread and must not block. Their signatures:

- ``on_deliver(node: NodeRef, delivery: Delivery) -> None`` — a message arrived here, at the
  root of its key. Delivery is **at least once**: when an acknowledgement is lost the source
  retries, and a message may be delivered twice with the same ``msg_id``; deduplicate by
  ``delivery.msg_id`` where it matters.
- ``on_forward(node: NodeRef, msg: ForwardMessage) -> Optional[int]`` — a message passes this
  node (its source and root included); change ``msg.key`` / ``msg.next_hop`` /
  ``msg.payload``, and return ``None`` or :data:`FORWARD_CONTINUE` to let it go on, or
  :data:`FORWARD_DROP` to drop it.
- ``on_update(node: NodeRef, peer: Peer, joined: bool) -> None`` — ``peer`` joined or left
  this node's leaf set.
- ``on_undeliverable(node: NodeRef, key: Id, msg_id: int, reason: UndeliverableReason)
  -> None`` — a message this node sent could not be delivered.

Inside an upcall the node may route (:meth:`NodeRef.route`, any node), ask its queries and
its :meth:`NodeRef.stats`. An exception raised in an upcall never reaches the library: it is
printed to stderr, counted (:attr:`Node.callback_errors`, :func:`callback_errors`) and passed
to ``on_error`` if given; a raising ``on_forward`` drops the message. Bound methods given as
upcalls are held weakly (a :class:`weakref.WeakMethod`), so an object that owns a node and
passes its own methods does not keep itself alive; other callables are held strongly.

**Threads and lifetime.** Every object may be used from any thread. ``close()`` may race
calls on other threads: they finish, and the native object is freed when the last one
returns; later calls raise :class:`NodeClosedError`. Nodes and runtimes still open at
interpreter exit are closed by an ``atexit`` hook (nodes first); one collected on the
runtime's thread (inside an upcall) is shut down at once and freed by the next call into the
package from another thread, or at exit.

**Blocking calls** (``join``, ``wait_joined``, ``shutdown``, ``abort``, ``close``) wait in
slices of at most 50 ms, so Ctrl-C interrupts them promptly; each has an ``async`` twin
(``join_async``, ``wait_joined_async``, ``shutdown_async``) and nodes and runtimes support
``async with``.
"""

import asyncio
import atexit
import enum
import hashlib
import inspect
import itertools
import os
import sys
import threading
import time
import traceback
import weakref
from ctypes import (
    POINTER,
    byref,
    c_char_p,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    cast,
    create_string_buffer,
    sizeof,
    string_at,
)
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from . import _native as N
from ._native import LibraryNotFound, find_library
from .errors import (
    AddressInUseError,
    AlreadyStartedError,
    BadAddressError,
    BadHexError,
    BindError,
    InCallbackError,
    InternalError,
    InvalidArgumentError,
    InvalidConfigError,
    IOFailure,
    JoinFailedError,
    JoinTimeoutError,
    NoBootstrapError,
    NoDestinationError,
    NodeClosedError,
    NotActiveError,
    NotStartedError,
    OverloadedError,
    PastryError,
    PayloadTooLargeError,
    StateError,
    StoppedError,
    WrongModeError,
    error_for,
)

__all__ = [
    "Addr",
    "AddressInUseError",
    "AlreadyStartedError",
    "BadAddressError",
    "BadHexError",
    "BindError",
    "Config",
    "DEFAULT_MAX_IN_FLIGHT",
    "Delivery",
    "DrivenNode",
    "Event",
    "EventKind",
    "FORWARD_CONTINUE",
    "FORWARD_DROP",
    "ForwardMessage",
    "IOFailure",
    "Id",
    "InCallbackError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "JoinFailedError",
    "JoinTimeoutError",
    "LibraryNotFound",
    "LogLevel",
    "MAX_PAYLOAD_LIMIT",
    "NoBootstrapError",
    "NoDestinationError",
    "Node",
    "NodeClosedError",
    "NodeRef",
    "NotActiveError",
    "NotStartedError",
    "OverloadedError",
    "PastryError",
    "PayloadTooLargeError",
    "Peer",
    "Phase",
    "Result",
    "Runtime",
    "StateError",
    "StoppedError",
    "UndeliverableReason",
    "WrongModeError",
    "abi_version",
    "callback_errors",
    "find_library",
    "set_logger",
    "version",
]

_lib: Optional[Any] = None
_lib_lock = threading.Lock()

#: How long one slice of a blocking wait lasts (seconds): Ctrl-C is seen between slices.
_SLICE = 0.05


def lib() -> Any:
    """The loaded library (a :class:`ctypes.CDLL`, loaded on first use)."""
    global _lib
    if _lib is not None:  # the common case: no lock
        return _lib
    with _lib_lock:
        if _lib is None:
            _lib = N.load()
        return _lib


def _consts(prefix: str) -> Dict[str, int]:
    return {k[len(prefix) :]: v for k, v in N.CONSTANTS.items() if k.startswith(prefix)}


class Result(enum.IntEnum):
    """The C result codes (``pastry_result``); :attr:`PastryError.code` is one of them."""

    OK = 0
    NONE = 1
    ERR_NULL_ARGUMENT = 2
    ERR_INVALID_ARGUMENT = 3
    ERR_BAD_HEX = 4
    ERR_BAD_ADDRESS = 5
    ERR_BUFFER_TOO_SMALL = 6
    ERR_INVALID_CONFIG = 7
    ERR_ADDR_IN_USE = 8
    ERR_BIND = 9
    ERR_IO = 10
    ERR_PAYLOAD_TOO_LARGE = 11
    ERR_NOT_ACTIVE = 12
    ERR_NO_DESTINATION = 13
    ERR_OVERLOADED = 14
    ERR_STOPPED = 15
    ERR_ALREADY_STARTED = 16
    ERR_NO_BOOTSTRAP = 17
    ERR_JOIN_FAILED = 18
    ERR_TIMEOUT = 19
    ERR_IN_CALLBACK = 20
    ERR_WRONG_MODE = 21
    ERR_PANIC = 22
    ERR_NOT_STARTED = 23


class EventKind(enum.IntEnum):
    """What a caller-driven node's :class:`Event` reports."""

    JOINED = 1
    JOIN_FAILED = 2
    DELIVERED = 3
    NEIGHBOR_JOINED = 4
    NEIGHBOR_LEFT = 5
    UNDELIVERABLE = 6


class Phase(enum.IntEnum):
    """Where a node is in its life cycle."""

    IDLE = 0
    JOINING = 1
    ACTIVE = 2
    STOPPED = 3


class LogLevel(enum.IntEnum):
    """The level of a library log message."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4


class UndeliverableReason(enum.IntEnum):
    """Why a message could not be delivered (``on_undeliverable``'s ``reason``)."""

    #: It went over the hop limit (a routing loop or broken tables).
    HOP_LIMIT = 1
    #: A node on the way ran out of buffer space for it.
    OVERLOAD = 2
    #: The direct-send target (the hint) could not be reached.
    UNREACHABLE = 3
    #: No delivery was acknowledged after every attempt (it may still have been delivered).
    LOST = 4
    #: An ``on_forward`` upcall on the way dropped it.
    DROPPED = 5


#: ``on_forward`` returns this (or None) to let the message go on.
FORWARD_CONTINUE: int = N.CONSTANTS["PASTRY_FORWARD_CONTINUE"]
#: ``on_forward`` returns this to drop the message.
FORWARD_DROP: int = N.CONSTANTS["PASTRY_FORWARD_DROP"]
#: The largest payload limit a node accepts.
MAX_PAYLOAD_LIMIT: int = N.CONSTANTS["PASTRY_MAX_PAYLOAD_LIMIT"]
#: The default budget of messages in flight per node (``Config(max_in_flight=...)``).
DEFAULT_MAX_IN_FLIGHT: int = N.CONSTANTS["PASTRY_DEFAULT_MAX_IN_FLIGHT"]


def _text(code: int) -> str:
    return str(lib().pastry_result_str(int(code)).decode())


def _raise(code: int, call: str, detail: Optional[str] = None) -> None:
    cls = error_for(code)
    raise cls(code, _text(code), call, detail)


def _check(rc: int, call: str, detail: Optional[str] = None) -> None:
    if rc != 0:
        _raise(rc, call, detail)


def version() -> str:
    """The library's version text."""
    return str(lib().pastry_version().decode())


def abi_version() -> int:
    """The library's ABI generation (``PASTRY_ABI_VERSION``)."""
    return int(lib().pastry_abi_version())


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


# ---- upcalls ----

F = TypeVar("F", bound=Callable[..., Any])
_tls = threading.local()


def _in_upcall() -> bool:
    """Whether this thread is inside an upcall of this package."""
    return bool(getattr(_tls, "depth", 0))


class _UpcallScope:
    def __enter__(self) -> None:
        _tls.depth = getattr(_tls, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _tls.depth -= 1


class _Ref:
    """Holds an upcall: a bound method weakly (so its object can be collected), anything else
    strongly."""

    __slots__ = ("_get",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        if inspect.ismethod(fn):
            self._get: Callable[[], Optional[Callable[..., Any]]] = weakref.WeakMethod(fn)
        else:
            self._get = lambda: fn

    def __call__(self) -> Optional[Callable[..., Any]]:
        return self._get()


def _ref(fn: Optional[Callable[..., Any]]) -> Optional[_Ref]:
    if fn is None:
        return None
    if not callable(fn):
        raise TypeError("an upcall must be callable, not %s" % type(fn).__name__)
    return _Ref(fn)


class _Handlers:
    def __init__(
        self,
        deliver: Optional[Callable[..., Any]] = None,
        forward: Optional[Callable[..., Any]] = None,
        update: Optional[Callable[..., Any]] = None,
        undeliverable: Optional[Callable[..., Any]] = None,
        on_error: Optional[Callable[..., Any]] = None,
    ) -> None:
        self.deliver = _ref(deliver)
        self.forward = _ref(forward)
        self.update = _ref(update)
        self.undeliverable = _ref(undeliverable)
        self.on_error = _ref(on_error)
        self.errors = 0
        self.dropped = threading.Event()


_registry: Dict[int, _Handlers] = {}
_keys = itertools.count(1)
_errors_lock = threading.Lock()
_total_errors = 0


def callback_errors() -> int:
    """Exceptions raised by upcalls of every node so far (caught and reported)."""
    return _total_errors


def _report(h: _Handlers, where: str) -> None:
    global _total_errors
    exc = sys.exc_info()[1]
    with _errors_lock:
        h.errors += 1
        _total_errors += 1
    try:
        sys.stderr.write("pastry: exception in the %s upcall (ignored):\n" % where)
        sys.stderr.write(traceback.format_exc())
        on_error = h.on_error() if h.on_error is not None else None
        if on_error is not None:
            on_error(exc)
    except BaseException:  # the report itself must not raise into the library
        pass


def _upcall(h: Optional[_Handlers], which: str) -> Optional[Callable[..., Any]]:
    if h is None:
        return None
    ref: Optional[_Ref] = getattr(h, which)
    return ref() if ref is not None else None


def _tr_deliver(ud: Optional[int], node: Any, msg: Any) -> None:
    h = _registry.get(ud or 0)
    f = _upcall(h, "deliver")
    if h is None or f is None:
        return
    with _UpcallScope():
        try:
            m = msg.contents
            payload = string_at(m.payload, m.payload_len) if m.payload_len else b""
            d = Delivery(Id(m.key), _peer(m.source), int(m.msg_id), int(m.hops), payload)
            f(NodeRef(node), d)
        except BaseException:
            _report(h, "deliver")


def _tr_forward(ud: Optional[int], node: Any, msg: Any) -> int:
    h = _registry.get(ud or 0)
    f = _upcall(h, "forward")
    if h is None or f is None:
        return FORWARD_CONTINUE
    with _UpcallScope():
        try:
            r = f(NodeRef(node), ForwardMessage(msg))
            return FORWARD_CONTINUE if r is None or r == FORWARD_CONTINUE else FORWARD_DROP
        except BaseException:
            _report(h, "forward")
            return FORWARD_DROP


def _tr_update(ud: Optional[int], node: Any, peer: Any, joined: bool) -> None:
    h = _registry.get(ud or 0)
    f = _upcall(h, "update")
    if h is None or f is None:
        return
    with _UpcallScope():
        try:
            f(NodeRef(node), _peer(peer.contents), bool(joined))
        except BaseException:
            _report(h, "update")


def _tr_undeliverable(ud: Optional[int], node: Any, key: Any, msg_id: int, reason: int) -> None:
    h = _registry.get(ud or 0)
    f = _upcall(h, "undeliverable")
    if h is None or f is None:
        return
    with _UpcallScope():
        try:
            try:
                why: int = UndeliverableReason(reason)
            except ValueError:
                why = reason
            f(NodeRef(node), Id(key.contents), int(msg_id), why)
        except BaseException:
            _report(h, "undeliverable")


def _tr_drop(ud: Optional[int]) -> None:
    h = _registry.pop(ud or 0, None)
    if h is not None:
        h.dropped.set()


# One set of trampolines for every node (kept alive by this module); the userdata selects the
# node's handlers in _registry.
_DELIVER = N.DELIVER_FN(_tr_deliver)
_FORWARD = N.FORWARD_FN(_tr_forward)
_UPDATE = N.UPDATE_FN(_tr_update)
_UNDELIVERABLE = N.UNDELIVERABLE_FN(_tr_undeliverable)
_DROP = N.DROP_FN(_tr_drop)


def _callbacks(h: _Handlers) -> N.pastry_callbacks:
    key = next(_keys)
    _registry[key] = h
    cb = N.pastry_callbacks()
    cb.userdata = key
    cb.deliver = _DELIVER
    cb.forward = _FORWARD
    cb.update = _UPDATE
    cb.undeliverable = _UNDELIVERABLE
    cb.drop = _DROP
    return cb


_logger: Optional[Any] = None


def set_logger(
    func: Optional[Callable[[LogLevel, str], None]], max_level: Optional[int] = None
) -> None:
    """Installs ``func(level, message)`` as the library's log sink (None removes it).
    ``level`` is a :class:`LogLevel`; messages above ``max_level`` (default INFO) are not
    passed. It runs on the library's threads; exceptions in it are ignored."""
    global _logger
    if func is None:
        _check(lib().pastry_set_logger(None), "pastry_set_logger")
        _logger = None
        return

    def log(_ud: Optional[int], level: int, message: bytes) -> None:
        try:
            func(LogLevel(level), message.decode("utf-8", "replace"))
        except BaseException:
            pass

    fn = N.LOG_FN(log)
    lg = N.pastry_logger()
    lg.log = fn
    lg.max_level = int(max_level if max_level is not None else LogLevel.INFO)
    _check(lib().pastry_set_logger(byref(lg)), "pastry_set_logger")
    _logger = fn  # the previous one is no longer called once set_logger has returned


# ---- native handles: calls, close, and frees deferred out of upcalls ----

_pending_lock = threading.Lock()
_pending: List[Tuple[str, Any]] = []  # (free function, pointer) refused inside an upcall


def _reap() -> None:
    """Frees what was closed inside an upcall (from a thread that is not in one)."""
    if not _pending or _in_upcall():
        return
    with _pending_lock:
        todo = list(_pending)
        _pending.clear()
    for fn, ptr in todo:
        rc = int(getattr(lib(), fn)(ptr))
        if rc == Result.ERR_IN_CALLBACK:  # still inside a native callback: later
            with _pending_lock:
                _pending.append((fn, ptr))


class _Native:
    """One native object (a node or a runtime) shared by the Python threads using it.

    Calls hold it (a count under a lock); :meth:`close` marks it closed, and the native free
    runs once no call holds it any more — never during a call on another thread."""

    def __init__(self, ptr: Any, free_fn: str, what: str) -> None:
        self.ptr = ptr
        self._free_fn = free_fn
        self._what = what
        self._lock = threading.Lock()
        self._calls = 0
        self._closed = False
        self._freed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def enter(self) -> Any:
        """Holds the object for a call: its pointer, or :class:`NodeClosedError`."""
        if _pending:
            _reap()
        with self._lock:
            if self._closed:
                raise NodeClosedError(
                    Result.ERR_INVALID_ARGUMENT, "the %s is closed" % self._what
                )
            self._calls += 1
            return self.ptr

    def leave(self) -> None:
        """Ends a call; frees the object if it was closed meanwhile and this was the last."""
        with self._lock:
            self._calls -= 1
            free = self._closed and self._calls == 0 and not self._freed
            if free:
                self._freed = True
        if free:
            self._free()

    def call(self, fn: str, *args: Any) -> int:
        """Calls ``fn(ptr, *args)`` holding the object; returns the result code."""
        ptr = self.enter()
        try:
            return int(getattr(lib(), fn)(ptr, *args))
        finally:
            self.leave()

    def check(self, fn: str, *args: Any) -> None:
        """:meth:`call`, raising the code's exception on failure."""
        _check(self.call(fn, *args), fn)

    def close(self, deferred_ok: bool) -> None:
        """Closes: frees now (or when the last call on another thread returns).

        Inside an upcall the library refuses a free: with ``deferred_ok`` (the garbage
        collector or exit) the free waits for a thread outside upcalls; otherwise
        :class:`InCallbackError` is raised and the object stays open."""
        with self._lock:
            if self._closed:
                return
            if _in_upcall() and not deferred_ok:
                raise InCallbackError(
                    Result.ERR_IN_CALLBACK,
                    _text(Result.ERR_IN_CALLBACK),
                    self._free_fn,
                    "close it after the upcall returns",
                )
            self._closed = True
            free = self._calls == 0 and not self._freed
            if free:
                self._freed = True
        if free:
            self._free()

    def _free(self) -> None:
        rc = int(getattr(lib(), self._free_fn)(self.ptr))
        if rc == Result.ERR_IN_CALLBACK:
            with _pending_lock:
                _pending.append((self._free_fn, self.ptr))
        elif rc != Result.OK:
            # Nothing more can be done with it; report it like an upcall error.
            sys.stderr.write("pastry: %s failed: %s\n" % (self._free_fn, _text(rc)))


class _Borrowed(_Native):
    """The node an upcall receives: borrowed from the library for the upcall, never closed
    here (the library refuses a handle that was freed meanwhile), so calls need no count."""

    def __init__(self, ptr: Any) -> None:
        self.ptr = ptr

    @property
    def closed(self) -> bool:
        return False

    def enter(self) -> Any:
        return self.ptr

    def leave(self) -> None:
        pass

    def call(self, fn: str, *args: Any) -> int:
        return int(getattr(lib(), fn)(self.ptr, *args))

    def close(self, deferred_ok: bool) -> None:
        raise TypeError("a node received in an upcall is not owned: it cannot be closed")


def _finalize(native: _Native, prepare: Optional[Callable[[], None]] = None) -> None:
    """Closes a native object that was collected or is left at exit (never raises)."""
    try:
        if prepare is not None and not native.closed:
            prepare()
        native.close(deferred_ok=True)
    except BaseException:
        pass


@atexit.register
def _at_exit() -> None:
    """After the objects' own exit finalizers (registered later, run earlier): frees what was
    closed inside an upcall."""
    try:
        _reap()
    except BaseException:
        pass


# ---- objects ----


class Config:
    """A node configuration. Keyword arguments call the setters of the same name
    (``Config(bind="127.0.0.1:0", leaf_set_size=8, join_timeout_ms=(500, 3))``; a tuple
    passes several arguments). Setters check their value at once (:class:`InvalidConfigError`
    or :class:`BadAddressError`, both ``ValueError``, showing the value)."""

    def __init__(self, **settings: Any) -> None:
        self._p = POINTER(N.pastry_config)()
        _check(lib().pastry_config_new(byref(self._p)), "pastry_config_new")
        self._finalizer = weakref.finalize(self, lib().pastry_config_free, self._p)
        for name, value in settings.items():
            setter = getattr(self, name, None)
            if setter is None or name.startswith("_") or name == "close":
                raise TypeError("unknown setting %r" % name)
            if isinstance(value, tuple):
                setter(*value)
            else:
                setter(value)

    def _set(self, fn: str, *args: Any) -> "Config":
        if not self._p:
            raise NodeClosedError(Result.ERR_INVALID_ARGUMENT, "the config is closed")
        _check(getattr(lib(), fn)(self._p, *args), fn, ", ".join(repr(a) for a in args))
        return self

    def bind(self, addr: str) -> "Config":
        """The UDP address to bind (``"127.0.0.1:0"``: any free port). Runtime nodes refuse
        ``0.0.0.0`` / ``::``: peers are told this address."""
        if not isinstance(addr, str):
            raise TypeError("an address is text, not %s" % type(addr).__name__)
        _check(
            lib().pastry_config_set_bind(self._p, addr.encode()),
            "pastry_config_set_bind",
            repr(addr),
        )
        return self

    def id(self, value: Optional[IdLike]) -> "Config":
        """The node's id (None: random). Ids must be unique in an overlay."""
        arg = None if value is None else byref(Id(value)._raw())
        _check(lib().pastry_config_set_id(self._p, arg), "pastry_config_set_id", repr(value))
        return self

    def digit_bits(self, b: int) -> "Config":
        """The digit width ``b``: 1, 2 or 4 (default 4)."""
        return self._set("pastry_config_set_digit_bits", _u32(b))

    def leaf_set_size(self, n: int) -> "Config":
        """The leaf-set size: even, 2..64 (default 16)."""
        return self._set("pastry_config_set_leaf_set_size", _u32(n))

    def neighborhood_size(self, n: int) -> "Config":
        """The neighbourhood-set size: 0..256 (default 32)."""
        return self._set("pastry_config_set_neighborhood_size", _u32(n))

    def network(self, n: int) -> "Config":
        """The overlay's network id (default 0)."""
        return self._set("pastry_config_set_network", _u32(n))

    def max_payload(self, n: int) -> "Config":
        """The largest payload ``route`` accepts (default 16384, at most
        :data:`MAX_PAYLOAD_LIMIT`)."""
        return self._set("pastry_config_set_max_payload", _size(n))

    def max_in_flight(self, n: int) -> "Config":
        """The budget of messages in flight (default :data:`DEFAULT_MAX_IN_FLIGHT`): past it
        ``route`` raises :class:`OverloadedError`."""
        return self._set("pastry_config_set_max_in_flight", _size(n))

    def seed(self, s: int) -> "Config":
        """The seed of the node's random numbers (0: from the OS)."""
        return self._set("pastry_config_set_seed", _u64(s))

    def leaf_probe_period_ms(self, ms: int) -> "Config":
        """The leaf-set probe period (default 20000 ms)."""
        return self._set("pastry_config_set_leaf_probe_period_ms", _u64(ms))

    def rt_maintenance_period_ms(self, ms: int) -> "Config":
        """The routing-table maintenance period (default 30000 ms)."""
        return self._set("pastry_config_set_rt_maintenance_period_ms", _u64(ms))

    def join_timeout_ms(self, ms: int, attempts: int = 8) -> "Config":
        """How long a join waits for an answer (default 3000 ms) and how often it tries."""
        return self._set("pastry_config_set_join_timeout_ms", _u64(ms), _u32(attempts))

    def retransmit(self, initial_ms: int, min_ms: int, max_ms: int, max_retries: int) -> "Config":
        """The hop retransmission timeout (initial, bounds) and retries."""
        return self._set(
            "pastry_config_set_retransmit",
            _u64(initial_ms),
            _u64(min_ms),
            _u64(max_ms),
            _u32(max_retries),
        )

    def close(self) -> None:
        """Frees the builder (nodes made from it keep their copy)."""
        self._finalizer()
        self._p = POINTER(N.pastry_config)()


def _int_in(v: object, hi: int, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("%s must be an int, not %s" % (what, type(v).__name__))
    if not 0 <= v <= hi:
        raise InvalidConfigError(
            Result.ERR_INVALID_CONFIG, "out of range 0..%d" % hi, what, repr(v)
        )
    return v


def _u32(v: object) -> int:
    return _int_in(v, 0xFFFFFFFF, "a uint32 value")


def _u64(v: object) -> int:
    return _int_in(v, (1 << 64) - 1, "a uint64 value")


def _size(v: object) -> int:
    return _int_in(v, (1 << (8 * sizeof(c_size_t))) - 1, "a size")


_T = TypeVar("_T")


class Runtime:
    """One event-loop thread serving nodes. :meth:`close` (or leaving the ``with`` /
    ``async with`` block) stops every node on it and joins the thread."""

    def __init__(self) -> None:
        p = POINTER(N.pastry_runtime)()
        _check(lib().pastry_runtime_new(byref(p)), "pastry_runtime_new")
        self._native = _Native(p, "pastry_runtime_free", "runtime")
        self._finalizer = weakref.finalize(self, _finalize, self._native)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._native.closed

    def close(self) -> None:
        """Stops the runtime: every node on it leaves, and the loop thread is joined. Raises
        :class:`InCallbackError` from inside an upcall (it would wait for its own thread)."""
        self._native.close(deferred_ok=False)

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(
        self,
        et: Optional[Type[BaseException]],
        ev: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    async def __aenter__(self) -> "Runtime":
        return self

    async def __aexit__(
        self,
        et: Optional[Type[BaseException]],
        ev: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def _ms(seconds: float) -> int:
    return max(0, min(int(seconds * 1000), 0xFFFFFFFF))


def _addr_array(bootstraps: Sequence[str]) -> Tuple[Any, int]:
    if isinstance(bootstraps, str):
        bootstraps = [bootstraps]
    raws = [_addr(a) for a in bootstraps]
    arr = (N.pastry_addr * max(1, len(raws)))(*raws)
    return arr, len(raws)


class NodeRef:
    """A node's operations without ownership: what upcalls receive (valid during the upcall;
    routing and the queries work there), and the base of :class:`Node` and
    :class:`DrivenNode`."""

    def __init__(self, ptr: Any, native: Optional[_Native] = None) -> None:
        self._native = native if native is not None else _Borrowed(ptr)

    def _call(self, fn: str, *args: Any) -> None:
        self._native.check(fn, *args)

    @property
    def closed(self) -> bool:
        """Whether the node was closed (its native handle freed or about to be)."""
        return self._native.closed

    def start(self) -> None:
        """Starts a new overlay with this node as its only member."""
        self._call("pastry_node_start")

    def start_join(self, bootstraps: Sequence[str]) -> None:
        """Starts joining through the given addresses and returns at once."""
        arr, n = _addr_array(bootstraps)
        self._call("pastry_node_start_join", arr, n)

    def route(self, key: Optional[IdLike], payload: Payload = b"", hint: Optional[Peer] = None) -> int:
        """Routes ``payload`` (bytes, bytearray, memoryview or str) toward the root of ``key``
        (None with a ``hint`` :class:`Peer`: a direct send to the hint's address). Callable
        from any thread and from upcalls. Returns the message id that the root's
        ``on_deliver`` and this node's ``on_undeliverable`` report.

        Raises :class:`OverloadedError` (a ``BlockingIOError``) when the node's budget of
        messages in flight is spent (``Config(max_in_flight=...)``): route again once
        deliveries or undeliverable reports have come in. Delivery is at least once."""
        data, ptr = _payload_arg(payload)
        k = byref(Id(key)._raw()) if key is not None else None
        if hint is not None and not isinstance(hint, tuple):
            raise TypeError("a hint is a Peer, not %s" % type(hint).__name__)
        h = byref(_peer_raw(hint)) if hint is not None else None
        msg_id = c_uint64(0)
        self._call("pastry_route_with_id", k, ptr, len(data), h, byref(msg_id))
        return int(msg_id.value)

    def route_direct(self, peer: Peer, payload: Payload = b"") -> int:
        """Sends ``payload`` straight to ``peer``'s address (a direct send; see :meth:`route`)."""
        return self.route(None, payload, hint=peer)

    def _peers(self, fn: str, num: int, *args: Any) -> List[Peer]:
        out = (N.pastry_peer * max(1, num))()
        count = c_size_t(num)
        self._call(fn, *args, out, byref(count))
        return [_peer(out[i]) for i in range(count.value)]

    def local_lookup(self, key: IdLike, num: int = 8, safe: bool = False) -> List[Peer]:
        """Up to ``num`` next-hop candidates toward ``key`` (empty at the key's root)."""
        return self._peers("pastry_node_local_lookup", num, byref(Id(key)._raw()), bool(safe))

    def neighbor_set(self, num: int = 64) -> List[Peer]:
        """Up to ``num`` leaf-set members, nearest first."""
        return self._peers("pastry_node_neighbor_set", num)

    def replica_set(self, key: IdLike, max_rank: int = 3) -> List[Peer]:
        """The nodes that would become root of ``key``, closest first (at most
        ``max_rank + 1``)."""
        return self._peers(
            "pastry_node_replica_set", max_rank + 1, byref(Id(key)._raw()), _u32(max_rank)
        )

    def range(self, node_id: IdLike, rank: int = 0) -> Optional[Tuple[Id, Id]]:
        """``(lo, hi)`` Ids of the keys ``node_id`` is an r-root for, or None if unknown."""
        lo, hi = N.pastry_id(), N.pastry_id()
        rc = self._native.call(
            "pastry_node_range", byref(Id(node_id)._raw()), _u32(rank), byref(lo), byref(hi)
        )
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_range")
        return Id(lo), Id(hi)

    @property
    def id(self) -> Id:
        """The node's id."""
        raw = N.pastry_id()
        self._call("pastry_node_id", byref(raw))
        return Id(raw)

    @property
    def addr(self) -> str:
        """The node's address text."""
        buf = create_string_buffer(N.CONSTANTS["PASTRY_ADDR_STR_BUF"])
        self._call("pastry_node_addr_str", buf, len(buf))
        return str(buf.value.decode())

    @property
    def peer(self) -> Peer:
        """The node as others address it."""
        return Peer(self.id, self.addr)

    @property
    def phase(self) -> Phase:
        """Where the node is in its life cycle."""
        p = c_uint32()
        self._call("pastry_node_phase", byref(p))
        return Phase(p.value)

    def stats(self) -> Dict[str, int]:
        """The node's counters (also from inside its own deliver / update / undeliverable
        upcalls)."""
        s = N.pastry_stats()
        self._call("pastry_node_stats", byref(s), sizeof(s))
        return {name: int(getattr(s, name)) for name in N.STATS_FIELDS}


OnDeliver = Callable[[NodeRef, Delivery], Any]
OnForward = Callable[[NodeRef, ForwardMessage], Optional[int]]
OnUpdate = Callable[[NodeRef, Peer, bool], Any]
OnUndeliverable = Callable[[NodeRef, Id, int, int], Any]
OnError = Callable[[BaseException], Any]


class Node(NodeRef):
    """A node run by a :class:`Runtime`, bound to its UDP socket at once.

    ``with Node(...) as n:`` (or ``async with``) leaves gracefully and frees the node at the
    end of the block. See the module docs for the upcalls' signatures and rules.
    """

    def __init__(
        self,
        runtime: Runtime,
        config: Optional[Config] = None,
        *,
        on_deliver: Optional[OnDeliver] = None,
        on_forward: Optional[OnForward] = None,
        on_update: Optional[OnUpdate] = None,
        on_undeliverable: Optional[OnUndeliverable] = None,
        on_error: Optional[OnError] = None,
    ) -> None:
        if not isinstance(runtime, Runtime):
            raise TypeError("a Node needs a Runtime, not %s" % type(runtime).__name__)
        cfg = config if config is not None else Config()
        handlers = _Handlers(on_deliver, on_forward, on_update, on_undeliverable, on_error)
        cb = _callbacks(handlers)
        p = POINTER(N.pastry_node)()
        rt = runtime._native.enter()
        try:
            # On failure the library has already called drop (which unregistered the handlers).
            _check(lib().pastry_node_new(rt, cfg._p, byref(cb), byref(p)), "pastry_node_new")
        finally:
            runtime._native.leave()
        super().__init__(p, _Native(p, "pastry_node_free", "node"))
        self._runtime = runtime
        self._handlers = handlers
        native, dropped = self._native, handlers.dropped
        self._finalizer = weakref.finalize(
            self, _finalize, native, lambda: _leave_quietly(native, dropped)
        )

    def join(self, bootstraps: Sequence[str], timeout: float = 10.0) -> None:
        """Joins through the given addresses, waiting up to ``timeout`` seconds
        (:class:`JoinTimeoutError` / :class:`JoinFailedError`). Ctrl-C interrupts the wait
        (the join goes on)."""
        _refuse_driven(self, "pastry_node_join")
        self.start_join(bootstraps)
        self.wait_joined(timeout)


    def wait_joined(self, timeout: float = 10.0) -> None:
        """Waits up to ``timeout`` seconds for the join (or start) to complete, in slices of
        50 ms (Ctrl-C is seen between them)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            rc = self._native.call("pastry_node_wait_joined", _ms(max(0.0, min(_SLICE, left))))
            if rc != Result.ERR_TIMEOUT or left <= _SLICE:
                _check(rc, "pastry_node_wait_joined", "after %.3g s" % timeout if rc else None)
                return

    async def join_async(self, bootstraps: Sequence[str], timeout: float = 10.0) -> None:
        """:meth:`join` without blocking the event loop."""
        _refuse_driven(self, "pastry_node_join")
        self.start_join(bootstraps)
        await self.wait_joined_async(timeout)

    async def wait_joined_async(self, timeout: float = 10.0) -> None:
        """:meth:`wait_joined` without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            rc = self._native.call("pastry_node_wait_joined", 0)
            if rc != Result.ERR_TIMEOUT or time.monotonic() >= deadline:
                _check(rc, "pastry_node_wait_joined", "after %.3g s" % timeout if rc else None)
                return
            await asyncio.sleep(0.005)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Leaves the overlay gracefully (tells the leaf set, flushes, closes the socket),
        waiting up to ``timeout`` seconds in slices (Ctrl-C is seen between them). Raises
        :class:`JoinTimeoutError` if the leave is still going on then, :class:`StoppedError`
        if the node had stopped already."""
        self._begin_shutdown()
        if not self._wait_released(timeout):
            _raise(Result.ERR_TIMEOUT, "pastry_node_shutdown", "after %.3g s" % timeout)

    async def shutdown_async(self, timeout: float = 5.0) -> None:
        """:meth:`shutdown` without blocking the event loop."""
        self._begin_shutdown()
        deadline = time.monotonic() + timeout
        while not self._handlers.dropped.is_set():
            if time.monotonic() >= deadline:
                _raise(Result.ERR_TIMEOUT, "pastry_node_shutdown", "after %.3g s" % timeout)
            await asyncio.sleep(0.005)

    def _begin_shutdown(self) -> None:
        rc = self._native.call("pastry_node_shutdown", 0)
        if rc not in (Result.OK, Result.ERR_TIMEOUT):
            _raise(rc, "pastry_node_shutdown")

    def _wait_released(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._handlers.dropped.wait(min(_SLICE, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return False
        return True

    def abort(self, timeout: float = 5.0) -> None:
        """Stops the node abruptly, as if its host crashed: no goodbye (its leaf set finds
        out by failure detection), queued messages dropped, socket closed. Waits up to
        ``timeout`` seconds. Raises :class:`StoppedError` if it had stopped already."""
        rc = self._native.call("pastry_node_abort", 0)
        if rc not in (Result.OK, Result.ERR_TIMEOUT):
            _raise(rc, "pastry_node_abort")
        if not self._wait_released(timeout):
            _raise(Result.ERR_TIMEOUT, "pastry_node_abort", "after %.3g s" % timeout)

    @property
    def callback_errors(self) -> int:
        """Exceptions raised by this node's upcalls (caught and reported)."""
        return self._handlers.errors

    @property
    def callbacks_released(self) -> bool:
        """Whether the library has released this node's upcalls (it left or was freed)."""
        return self._handlers.dropped.is_set()

    def close(self) -> None:
        """Frees the node, leaving gracefully first if it has not left (waiting up to 2 s,
        Ctrl-C interruptible). Calls racing on other threads finish first; later ones raise
        :class:`NodeClosedError`. Raises :class:`InCallbackError` from inside an upcall."""
        if self._native.closed:
            return
        if _in_upcall():
            self._native.close(deferred_ok=False)  # raises InCallbackError
        _leave_quietly(self._native, self._handlers.dropped)
        self._finalizer.detach()
        self._native.close(deferred_ok=False)

    def __enter__(self) -> "Node":
        return self

    def __exit__(
        self,
        et: Optional[Type[BaseException]],
        ev: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    async def __aenter__(self) -> "Node":
        return self

    async def __aexit__(
        self,
        et: Optional[Type[BaseException]],
        ev: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self._native.closed:
            try:
                await self.shutdown_async()
            except PastryError:
                pass
        self.close()


def _refuse_driven(node: NodeRef, call: str) -> None:
    """The blocking waits are for runtime nodes (also when called on a DrivenNode through the
    class): a zero wait tells the kinds apart without blocking."""
    if node._native.call("pastry_node_wait_joined", 0) == Result.ERR_WRONG_MODE:
        _raise(Result.ERR_WRONG_MODE, call)


def _leave_quietly(native: _Native, dropped: threading.Event, timeout: float = 2.0) -> None:
    """A graceful leave before a free, ignoring a node that is gone already; waits in slices.
    Inside an upcall it only queues the leave."""
    try:
        rc = native.call("pastry_node_shutdown", 0)
    except PastryError:
        return
    if rc not in (Result.OK, Result.ERR_TIMEOUT) or _in_upcall():
        return
    deadline = time.monotonic() + timeout
    while not dropped.wait(_SLICE) and time.monotonic() < deadline:
        pass


class DrivenNode(NodeRef):
    """A caller-driven node: no thread, no socket. Feed it datagrams and timeouts
    (:meth:`handle_datagram`, :meth:`handle_timeout`), send what :meth:`poll_transmit` gives,
    sleep until :meth:`poll_timeout`, and take :meth:`poll_event` events. Only ``on_forward``
    is called, on the thread calling into the node. Times are the host's clock in µs."""

    def __init__(
        self,
        config: Config,
        *,
        on_forward: Optional[OnForward] = None,
        on_error: Optional[OnError] = None,
    ) -> None:
        self._handlers = _Handlers(forward=on_forward, on_error=on_error)
        cb = _callbacks(self._handlers)
        p = POINTER(N.pastry_node)()
        _check(
            lib().pastry_node_new_driven(config._p, byref(cb), byref(p)),
            "pastry_node_new_driven",
        )
        super().__init__(p, _Native(p, "pastry_node_free", "node"))
        self._tx = (c_uint8 * N.CONSTANTS["PASTRY_MAX_DATAGRAM"])()
        self._rx = (c_uint8 * N.CONSTANTS["PASTRY_MAX_PAYLOAD_LIMIT"])()
        self._finalizer = weakref.finalize(self, _finalize, self._native)

    def start_at(self, now_us: int) -> None:
        """:meth:`start` at time ``now_us`` of the host's clock."""
        self._call("pastry_node_start_at", _u64(now_us))

    def start_join_at(self, bootstraps: Sequence[str], now_us: int) -> None:
        """:meth:`start_join` at time ``now_us`` of the host's clock."""
        arr, n = _addr_array(bootstraps)
        self._call("pastry_node_start_join_at", arr, n, _u64(now_us))

    def route_at(
        self, key: Optional[IdLike], payload: Payload, now_us: int, hint: Optional[Peer] = None
    ) -> int:
        """:meth:`route` at time ``now_us`` of the host's clock; returns the message id."""
        data, ptr = _payload_arg(payload)
        k = byref(Id(key)._raw()) if key is not None else None
        h = byref(_peer_raw(hint)) if hint is not None else None
        msg_id = c_uint64(0)
        self._call("pastry_route_at", k, ptr, len(data), h, _u64(now_us), byref(msg_id))
        return int(msg_id.value)

    def shutdown(self, now_us: Optional[int] = None) -> None:
        """Leaves gracefully: queues goodbyes (send them with :meth:`poll_transmit`).
        :class:`StoppedError` if it had stopped already."""
        if now_us is None:
            self._call("pastry_node_shutdown", 0)
        else:
            self._call("pastry_node_shutdown_at", _u64(now_us))

    def abort(self) -> None:
        """Stops at once, like a crash: nothing more is sent."""
        self._call("pastry_node_abort", 0)

    def handle_datagram(self, from_addr: str, data: Payload, now_us: int) -> None:
        """Feeds one received datagram at time ``now_us``."""
        b, ptr = _payload_arg(data)
        self._call("pastry_node_handle_datagram", byref(_addr(from_addr)), ptr, len(b), _u64(now_us))

    def handle_timeout(self, now_us: int) -> None:
        """Tells the node that time ``now_us`` has come (fires due timers)."""
        self._call("pastry_node_handle_timeout", _u64(now_us))

    def poll_transmit(self) -> Optional[Tuple[bytes, str]]:
        """``(datagram, destination address)``, or None when nothing is left to send."""
        n, dst = c_size_t(), N.pastry_addr()
        rc = self._native.call(
            "pastry_node_poll_transmit", self._tx, len(self._tx), byref(n), byref(dst)
        )
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_poll_transmit")
        return bytes(self._tx[: n.value]), _addr_str(dst)

    def poll_timeout(self) -> Optional[int]:
        """When :meth:`handle_timeout` is due next (µs on the host's clock), or None."""
        at = c_uint64()
        rc = self._native.call("pastry_node_poll_timeout", byref(at))
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_poll_timeout")
        return int(at.value)

    def poll_event(self) -> Optional[Event]:
        """The next :class:`Event`, or None."""
        ev = N.pastry_event()
        rc = self._native.call("pastry_node_poll_event", byref(ev), self._rx, len(self._rx))
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_poll_event")
        kind = EventKind(ev.kind)
        peer = _peer(ev.peer) if ev.peer.addr.family else None
        payload = bytes(self._rx[: ev.payload_len]) if kind == EventKind.DELIVERED else None
        key = Id(ev.key) if kind in (EventKind.DELIVERED, EventKind.UNDELIVERABLE) else None
        return Event(kind, key, peer, int(ev.msg_id), int(ev.hops), int(ev.reason), payload)

    @property
    def callback_errors(self) -> int:
        """Exceptions raised by this node's ``on_forward`` (caught and reported)."""
        return self._handlers.errors

    def close(self) -> None:
        """Frees the node (send its goodbyes first: :meth:`shutdown`)."""
        self._finalizer.detach()
        self._native.close(deferred_ok=False)

    def __enter__(self) -> "DrivenNode":
        return self

    def __exit__(
        self,
        et: Optional[Type[BaseException]],
        ev: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()
