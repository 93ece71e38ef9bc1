"""Python bindings for pastry, an embeddable Pastry peer-to-peer overlay node (ctypes over the
shared library ``libpastry``; see :mod:`pastry._native` for how it is found).

>>> import pastry
>>> with pastry.Runtime() as rt:
...     got = []
...     with pastry.Node(rt, on_deliver=lambda node, d: got.append(d.payload)) as a:
...         a.start()
...         a.wait_joined(5)
...         a.route(a.id, b"hello")          # a is the root of its own id
...
>>> got
[b'hello']

Upcalls (``on_deliver``, ``on_forward``, ``on_update``, ``on_undeliverable``) run on the
runtime's event-loop thread and must not block. They may call :meth:`NodeRef.route` (any node)
and the queries of the node they receive. An exception raised in an upcall never reaches the
library: it is printed to stderr, counted (:attr:`Node.callback_errors`,
:func:`callback_errors`) and passed to ``on_error`` if given; a raising ``on_forward`` drops the
message.
"""

import enum
import hashlib
import itertools
import os
import sys
import threading
import traceback
from collections import namedtuple
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

from . import _native as N
from ._native import LibraryNotFound, find_library

__all__ = [
    "Addr",
    "Config",
    "Delivery",
    "DrivenNode",
    "Event",
    "EventKind",
    "FORWARD_CONTINUE",
    "FORWARD_DROP",
    "ForwardMessage",
    "Id",
    "LibraryNotFound",
    "LogLevel",
    "Node",
    "NodeRef",
    "PastryError",
    "Peer",
    "Phase",
    "Result",
    "Runtime",
    "abi_version",
    "callback_errors",
    "find_library",
    "set_logger",
    "version",
]

_lib = None
_lib_lock = threading.Lock()


def lib():
    """The loaded library (loaded on first use)."""
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = N.load()
        return _lib


def _enum(name, prefix):
    return enum.IntEnum(
        name,
        {k[len(prefix):]: v for k, v in N.CONSTANTS.items() if k.startswith(prefix)},
    )


#: Result codes (``pastry_result``).
Result = enum.IntEnum(
    "Result",
    {
        k[len("PASTRY_"):]: v
        for k, v in N.CONSTANTS.items()
        if k in ("PASTRY_OK", "PASTRY_NONE") or k.startswith("PASTRY_ERR_")
    },
)
EventKind = _enum("EventKind", "PASTRY_EVENT_")
Phase = _enum("Phase", "PASTRY_PHASE_")
LogLevel = _enum("LogLevel", "PASTRY_LOG_")
FORWARD_CONTINUE = N.CONSTANTS["PASTRY_FORWARD_CONTINUE"]
FORWARD_DROP = N.CONSTANTS["PASTRY_FORWARD_DROP"]
MAX_PAYLOAD_LIMIT = N.CONSTANTS["PASTRY_MAX_PAYLOAD_LIMIT"]


class PastryError(Exception):
    """A failed call; ``code`` is the :class:`Result`."""

    def __init__(self, code, call=""):
        self.code = Result(code) if code in Result._value2member_map_ else code
        text = lib().pastry_result_str(int(code)).decode()
        super().__init__("%s%s (%s)" % (call + ": " if call else "", text, self.code))


def _check(rc, call):
    if rc != 0:
        raise PastryError(rc, call)


def version():
    """The library's version text."""
    return lib().pastry_version().decode()


def abi_version():
    """The library's ABI generation (``PASTRY_ABI_VERSION``)."""
    return lib().pastry_abi_version()


# ---- values ----


class Id:
    """A 128-bit id or key. Built from 16 big-endian bytes, an int, a hex string or an Id."""

    __slots__ = ("_bytes",)

    def __init__(self, value):
        if isinstance(value, Id):
            b = value._bytes
        elif isinstance(value, N.pastry_id):
            b = bytes(value.bytes)
        elif isinstance(value, int):
            b = (value % (1 << 128)).to_bytes(16, "big")
        elif isinstance(value, str):
            b = Id.from_hex(value)._bytes
        else:
            b = bytes(value)
        if len(b) != 16:
            raise ValueError("an id is 16 bytes")
        self._bytes = b

    @classmethod
    def from_hex(cls, text):
        """Parses 32 hex digits (optionally after ``0x``); raises PastryError(BAD_HEX)."""
        raw = N.pastry_id()
        _check(lib().pastry_id_from_hex(text.encode(), byref(raw)), "pastry_id_from_hex")
        return cls(raw)

    @classmethod
    def hash(cls, data):
        """The key of a name or content: the first 16 bytes of its SHA-256."""
        if isinstance(data, str):
            data = data.encode()
        return cls(hashlib.sha256(data).digest()[:16])

    @classmethod
    def random(cls):
        return cls(os.urandom(16))

    @property
    def bytes(self):
        return self._bytes

    def hex(self):
        buf = create_string_buffer(N.CONSTANTS["PASTRY_ID_HEX_BUF"])
        _check(lib().pastry_id_to_hex(byref(self._raw()), buf, len(buf)), "pastry_id_to_hex")
        return buf.value.decode()

    def distance(self, other):
        """Ring distance (the shorter way round) to ``other``."""
        d = (int(self) - int(Id(other))) % (1 << 128)
        return min(d, (1 << 128) - d)

    def _raw(self):
        raw = N.pastry_id()
        raw.bytes[:] = self._bytes
        return raw

    def __int__(self):
        return int.from_bytes(self._bytes, "big")

    def __eq__(self, other):
        return isinstance(other, Id) and other._bytes == self._bytes

    def __lt__(self, other):
        return self._bytes < other._bytes

    def __hash__(self):
        return hash(self._bytes)

    def __repr__(self):
        return "Id(%s)" % self._bytes.hex()

    __str__ = hex


def _addr(text):
    raw = N.pastry_addr()
    _check(lib().pastry_addr_parse(str(text).encode(), byref(raw)), "pastry_addr_parse")
    return raw


def _addr_str(raw):
    buf = create_string_buffer(N.CONSTANTS["PASTRY_ADDR_STR_BUF"])
    _check(lib().pastry_addr_to_str(byref(raw), buf, len(buf)), "pastry_addr_to_str")
    return buf.value.decode()


class Addr(str):
    """A socket address as text (``"127.0.0.1:4000"``, ``"[::1]:4000"``), checked by the
    library."""

    def __new__(cls, text):
        return super().__new__(cls, _addr_str(_addr(text)))


#: A node as others address it: its :class:`Id` and its address text.
Peer = namedtuple("Peer", "id addr")


def _peer(raw):
    return Peer(Id(raw.id), _addr_str(raw.addr))


def _peer_raw(peer):
    raw = N.pastry_peer()
    raw.id = Id(peer.id)._raw()
    raw.addr = _addr(peer.addr)
    return raw


#: A message delivered at this node.
Delivery = namedtuple("Delivery", "key source msg_id hops payload")

#: An event of a caller-driven node (fields a kind does not use are None or 0).
Event = namedtuple("Event", "kind key peer msg_id hops reason payload")


def _payload_arg(data):
    if isinstance(data, str):
        data = data.encode()
    data = bytes(data)
    if not data:
        return data, None
    return data, cast(c_char_p(data), POINTER(c_uint8))


class ForwardMessage:
    """The message in an ``on_forward`` upcall: read or change it during the call only."""

    def __init__(self, ptr):
        self._m = ptr.contents
        self._ptr = ptr

    @property
    def key(self):
        return Id(self._m.key)

    @key.setter
    def key(self, value):
        self._m.key = Id(value)._raw()

    @property
    def source(self):
        return _peer(self._m.source)

    @property
    def msg_id(self):
        return self._m.msg_id

    @property
    def hops(self):
        return self._m.hops

    @property
    def next_hop(self):
        """The next hop (a :class:`Peer`), or None when this node delivers the message. Set a
        Peer to send it elsewhere, or None to deliver it here."""
        return _peer(self._m.next_hop) if self._m.has_next_hop else None

    @next_hop.setter
    def next_hop(self, peer):
        if peer is None:
            self._m.has_next_hop = False
        else:
            self._m.next_hop = _peer_raw(peer)
            self._m.has_next_hop = True

    @property
    def payload(self):
        n = self._m.payload_len
        return string_at(self._m.payload, n) if n else b""

    @payload.setter
    def payload(self, data):
        data, ptr = _payload_arg(data)
        _check(
            lib().pastry_forward_set_payload(self._ptr, ptr, len(data)),
            "pastry_forward_set_payload",
        )


# ---- upcalls ----


class _Handlers:
    def __init__(self, deliver=None, forward=None, update=None, undeliverable=None, on_error=None):
        self.deliver = deliver
        self.forward = forward
        self.update = update
        self.undeliverable = undeliverable
        self.on_error = on_error
        self.errors = 0
        self.dropped = threading.Event()


_registry = {}
_keys = itertools.count(1)
_errors_lock = threading.Lock()
_total_errors = 0


def callback_errors():
    """Exceptions raised by upcalls of every node so far (caught and reported)."""
    return _total_errors


def _report(h, where):
    global _total_errors
    exc = sys.exc_info()[1]
    with _errors_lock:
        h.errors += 1
        _total_errors += 1
    try:
        sys.stderr.write("pastry: exception in the %s upcall (ignored):\n" % where)
        sys.stderr.write(traceback.format_exc())
        if h.on_error is not None:
            h.on_error(exc)
    except BaseException:  # the report itself must not raise into the library
        pass


def _tr_deliver(ud, node, msg):
    h = _registry.get(ud)
    if h is None or h.deliver is None:
        return
    try:
        m = msg.contents
        payload = string_at(m.payload, m.payload_len) if m.payload_len else b""
        d = Delivery(Id(m.key), _peer(m.source), m.msg_id, m.hops, payload)
        h.deliver(NodeRef(node), d)
    except BaseException:
        _report(h, "deliver")


def _tr_forward(ud, node, msg):
    h = _registry.get(ud)
    if h is None or h.forward is None:
        return FORWARD_CONTINUE
    try:
        r = h.forward(NodeRef(node), ForwardMessage(msg))
        return FORWARD_CONTINUE if r is None or r == FORWARD_CONTINUE else FORWARD_DROP
    except BaseException:
        _report(h, "forward")
        return FORWARD_DROP


def _tr_update(ud, node, peer, joined):
    h = _registry.get(ud)
    if h is None or h.update is None:
        return
    try:
        h.update(NodeRef(node), _peer(peer.contents), bool(joined))
    except BaseException:
        _report(h, "update")


def _tr_undeliverable(ud, node, key, msg_id, reason):
    h = _registry.get(ud)
    if h is None or h.undeliverable is None:
        return
    try:
        h.undeliverable(NodeRef(node), Id(key.contents), msg_id, reason)
    except BaseException:
        _report(h, "undeliverable")


def _tr_drop(ud):
    h = _registry.pop(ud, None)
    if h is not None:
        h.dropped.set()


# One set of trampolines for every node (kept alive by this module); the userdata selects the
# node's handlers in _registry.
_DELIVER = N.DELIVER_FN(_tr_deliver)
_FORWARD = N.FORWARD_FN(_tr_forward)
_UPDATE = N.UPDATE_FN(_tr_update)
_UNDELIVERABLE = N.UNDELIVERABLE_FN(_tr_undeliverable)
_DROP = N.DROP_FN(_tr_drop)


def _callbacks(h):
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


_logger = None


def set_logger(func, max_level=None):
    """Installs ``func(level, message)`` as the library's log sink (None removes it).
    ``level`` is a :class:`LogLevel`; messages above ``max_level`` (default INFO) are not
    passed. It runs on the library's threads; exceptions in it are ignored."""
    global _logger
    if func is None:
        _check(lib().pastry_set_logger(None), "pastry_set_logger")
        _logger = None
        return

    def log(_ud, level, message):
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


# ---- objects ----


class Config:
    """A node configuration. Keyword arguments call the setters of the same name."""

    def __init__(self, **settings):
        self._p = POINTER(N.pastry_config)()
        _check(lib().pastry_config_new(byref(self._p)), "pastry_config_new")
        for name, value in settings.items():
            setter = getattr(self, name, None)
            if setter is None or name.startswith("_"):
                raise TypeError("unknown setting %r" % name)
            if isinstance(value, tuple):
                setter(*value)
            else:
                setter(value)

    def _set(self, fn, *args):
        _check(getattr(lib(), fn)(self._p, *args), fn)
        return self

    def bind(self, addr):
        return self._set("pastry_config_set_bind", str(addr).encode())

    def id(self, value):
        return self._set("pastry_config_set_id", None if value is None else byref(Id(value)._raw()))

    def digit_bits(self, b):
        return self._set("pastry_config_set_digit_bits", b)

    def leaf_set_size(self, n):
        return self._set("pastry_config_set_leaf_set_size", n)

    def neighborhood_size(self, n):
        return self._set("pastry_config_set_neighborhood_size", n)

    def network(self, n):
        return self._set("pastry_config_set_network", n)

    def max_payload(self, n):
        return self._set("pastry_config_set_max_payload", n)

    def seed(self, s):
        return self._set("pastry_config_set_seed", s)

    def leaf_probe_period_ms(self, ms):
        return self._set("pastry_config_set_leaf_probe_period_ms", ms)

    def rt_maintenance_period_ms(self, ms):
        return self._set("pastry_config_set_rt_maintenance_period_ms", ms)

    def join_timeout_ms(self, ms, attempts=8):
        return self._set("pastry_config_set_join_timeout_ms", ms, attempts)

    def retransmit(self, initial_ms, min_ms, max_ms, max_retries):
        return self._set("pastry_config_set_retransmit", initial_ms, min_ms, max_ms, max_retries)

    def close(self):
        if self._p:
            lib().pastry_config_free(self._p)
            self._p = POINTER(N.pastry_config)()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Runtime:
    """One event-loop thread serving nodes. ``close()`` (or leaving the ``with`` block) stops
    every node on it and joins the thread."""

    def __init__(self):
        self._p = POINTER(N.pastry_runtime)()
        _check(lib().pastry_runtime_new(byref(self._p)), "pastry_runtime_new")

    def close(self):
        if self._p:
            _check(lib().pastry_runtime_free(self._p), "pastry_runtime_free")
            self._p = POINTER(N.pastry_runtime)()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _ms(seconds):
    return max(0, min(int(seconds * 1000), 0xFFFFFFFF))


class NodeRef:
    """A node's operations without ownership: what upcalls receive, and the base of
    :class:`Node` and :class:`DrivenNode`."""

    def __init__(self, ptr):
        self._p = ptr

    def _call(self, fn, *args):
        if not self._p:
            raise PastryError(Result.ERR_NULL_ARGUMENT, fn + " (node closed)")
        _check(getattr(lib(), fn)(self._p, *args), fn)

    def start(self):
        """Starts a new overlay with this node as its only member."""
        self._call("pastry_node_start")

    def start_join(self, bootstraps):
        """Starts joining through the given addresses and returns at once."""
        arr = (N.pastry_addr * max(1, len(bootstraps)))(*[_addr(a) for a in bootstraps])
        self._call("pastry_node_start_join", arr, len(bootstraps))

    def shutdown(self, timeout=5.0):
        """Leaves the overlay gracefully (a runtime node waits up to ``timeout`` seconds)."""
        self._call("pastry_node_shutdown", _ms(timeout))

    def route(self, key, payload=b"", hint=None):
        """Routes ``payload`` (bytes or str) toward the root of ``key`` (None with a ``hint``
        Peer: a direct send to it). Callable from any thread and from upcalls. Returns the
        message id that the root's ``deliver`` and this node's ``undeliverable`` report."""
        data, ptr = _payload_arg(payload)
        k = byref(Id(key)._raw()) if key is not None else None
        h = byref(_peer_raw(hint)) if hint is not None else None
        msg_id = c_uint64(0)
        self._call("pastry_route_with_id", k, ptr, len(data), h, byref(msg_id))
        return msg_id.value

    def route_direct(self, peer, payload=b""):
        return self.route(None, payload, hint=peer)

    def _peers(self, fn, num, *args):
        out = (N.pastry_peer * max(1, num))()
        count = c_size_t(num)
        self._call(fn, *args, out, byref(count))
        return [_peer(out[i]) for i in range(count.value)]

    def local_lookup(self, key, num=8, safe=False):
        return self._peers("pastry_node_local_lookup", num, byref(Id(key)._raw()), bool(safe))

    def neighbor_set(self, num=64):
        return self._peers("pastry_node_neighbor_set", num)

    def replica_set(self, key, max_rank=3):
        return self._peers(
            "pastry_node_replica_set", max_rank + 1, byref(Id(key)._raw()), max_rank
        )

    def range(self, node_id, rank=0):
        """``(lo, hi)`` Ids of the keys ``node_id`` is an r-root for, or None if unknown."""
        lo, hi = N.pastry_id(), N.pastry_id()
        rc = lib().pastry_node_range(self._p, byref(Id(node_id)._raw()), rank, byref(lo), byref(hi))
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_range")
        return Id(lo), Id(hi)

    @property
    def id(self):
        raw = N.pastry_id()
        self._call("pastry_node_id", byref(raw))
        return Id(raw)

    @property
    def addr(self):
        buf = create_string_buffer(N.CONSTANTS["PASTRY_ADDR_STR_BUF"])
        self._call("pastry_node_addr_str", buf, len(buf))
        return buf.value.decode()

    @property
    def peer(self):
        return Peer(self.id, self.addr)

    @property
    def phase(self):
        p = c_uint32()
        self._call("pastry_node_phase", byref(p))
        return Phase(p.value)

    def stats(self):
        s = N.pastry_stats()
        self._call("pastry_node_stats", byref(s), sizeof(s))
        return {name: getattr(s, name) for name in N.STATS_FIELDS}


class Node(NodeRef):
    """A node run by a :class:`Runtime`, bound to its UDP socket at once.

    ``with Node(...) as n:`` leaves gracefully and frees the node at the end of the block.
    """

    def __init__(
        self,
        runtime,
        config=None,
        *,
        on_deliver=None,
        on_forward=None,
        on_update=None,
        on_undeliverable=None,
        on_error=None,
    ):
        super().__init__(POINTER(N.pastry_node)())
        self._runtime = runtime
        cfg = config if config is not None else Config()
        self._handlers = _Handlers(on_deliver, on_forward, on_update, on_undeliverable, on_error)
        cb = _callbacks(self._handlers)
        # On failure the library has already called drop (which unregistered the handlers).
        _check(
            lib().pastry_node_new(runtime._p, cfg._p, byref(cb), byref(self._p)),
            "pastry_node_new",
        )

    def join(self, bootstraps, timeout=10.0):
        """Joins through the given addresses, waiting up to ``timeout`` seconds."""
        arr = (N.pastry_addr * max(1, len(bootstraps)))(*[_addr(a) for a in bootstraps])
        self._call("pastry_node_join", arr, len(bootstraps), _ms(timeout))

    def wait_joined(self, timeout=10.0):
        self._call("pastry_node_wait_joined", _ms(timeout))

    @property
    def callback_errors(self):
        """Exceptions raised by this node's upcalls (caught and reported)."""
        return self._handlers.errors

    @property
    def callbacks_released(self):
        """Whether the library has released this node's upcalls (it left or was freed)."""
        return self._handlers.dropped.is_set()

    def close(self):
        """Frees the node (leaving gracefully first if it has not left)."""
        if self._p:
            _check(lib().pastry_node_free(self._p), "pastry_node_free")
            self._p = POINTER(N.pastry_node)()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if self._p and self.phase != Phase.STOPPED:
                self.shutdown()
        except PastryError:
            pass
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class DrivenNode(NodeRef):
    """A caller-driven node: no thread, no socket. Feed it datagrams and timeouts
    (``handle_datagram``, ``handle_timeout``), send what ``poll_transmit`` gives, sleep until
    ``poll_timeout``, and take ``poll_event`` events. Only ``on_forward`` is called, on the
    thread calling into the node."""

    def __init__(self, config, *, on_forward=None, on_error=None):
        super().__init__(POINTER(N.pastry_node)())
        self._handlers = _Handlers(forward=on_forward, on_error=on_error)
        cb = _callbacks(self._handlers)
        _check(
            lib().pastry_node_new_driven(config._p, byref(cb), byref(self._p)),
            "pastry_node_new_driven",
        )
        self._tx = (c_uint8 * N.CONSTANTS["PASTRY_MAX_DATAGRAM"])()
        self._rx = (c_uint8 * N.CONSTANTS["PASTRY_MAX_PAYLOAD_LIMIT"])()

    def handle_datagram(self, from_addr, data, now_us):
        data, ptr = _payload_arg(data)
        self._call("pastry_node_handle_datagram", byref(_addr(from_addr)), ptr, len(data), now_us)

    def handle_timeout(self, now_us):
        self._call("pastry_node_handle_timeout", now_us)

    def poll_transmit(self):
        """``(datagram, destination address)``, or None when nothing is left to send."""
        n, dst = c_size_t(), N.pastry_addr()
        rc = lib().pastry_node_poll_transmit(self._p, self._tx, len(self._tx), byref(n), byref(dst))
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_poll_transmit")
        return bytes(self._tx[: n.value]), _addr_str(dst)

    def poll_timeout(self):
        """When ``handle_timeout`` is due next (µs on the caller's clock), or None."""
        at = c_uint64()
        rc = lib().pastry_node_poll_timeout(self._p, byref(at))
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_poll_timeout")
        return at.value

    def poll_event(self):
        """The next :class:`Event`, or None."""
        ev = N.pastry_event()
        rc = lib().pastry_node_poll_event(self._p, byref(ev), self._rx, len(self._rx))
        if rc == Result.NONE:
            return None
        _check(rc, "pastry_node_poll_event")
        kind = EventKind(ev.kind)
        peer = _peer(ev.peer) if ev.peer.addr.family else None
        payload = bytes(self._rx[: ev.payload_len]) if kind == EventKind.DELIVERED else None
        key = Id(ev.key) if kind in (EventKind.DELIVERED, EventKind.UNDELIVERABLE) else None
        return Event(kind, key, peer, ev.msg_id, ev.hops, ev.reason, payload)

    @property
    def callback_errors(self):
        return self._handlers.errors

    def close(self):
        if self._p:
            _check(lib().pastry_node_free(self._p), "pastry_node_free")
            self._p = POINTER(N.pastry_node)()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
