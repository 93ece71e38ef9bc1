"""Config, Runtime and the nodes."""

import asyncio
import threading
import time
import weakref
from ctypes import (
    POINTER,
    byref,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    create_string_buffer,
    sizeof,
)
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
)

from . import _native as N
from . import _upcalls
from ._handles import _Borrowed, _finalize, _Native
from ._lib import _SLICE, EventKind, Phase, Result, _check, _raise, lib
from ._upcalls import _callbacks, _Handlers, _in_upcall
from ._values import (
    Delivery,
    Event,
    ForwardMessage,
    Id,
    IdLike,
    Payload,
    Peer,
    _addr,
    _addr_str,
    _payload_arg,
    _peer,
    _peer_raw,
)
from .errors import InvalidArgumentError, InvalidConfigError, NodeClosedError, PastryError

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
        """The UDP address to bind (``"127.0.0.1:0"``: any free port). ``Node`` and
        ``DrivenNode`` refuse an unspecified address (``0.0.0.0``, ``::``,
        ``[::ffff:0.0.0.0]``) with :class:`BadAddressError`: peers are told this address."""
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

    def max_buffer_bytes(self, n: int) -> "Config":
        """The node's byte budget for buffered messages and queued datagrams (default 8 MiB, at
        least 256 KiB): past it ``route`` raises :class:`OverloadedError` and traffic passing
        through is dropped, so no flood grows the node's memory beyond it."""
        return self._set("pastry_config_set_max_buffer_bytes", _size(n))

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


def _count(v: object, name: str, hi: int = (1 << 32) - 1) -> int:
    """A count or rank argument: an int in 0..hi, else :class:`InvalidArgumentError` (a
    ``ValueError``) showing the value (``TypeError`` for a non-int)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError("%s must be an int, not %s" % (name, type(v).__name__))
    if not 0 <= v <= hi:
        what = "must not be negative" if v < 0 else "out of range 0..%d" % hi
        raise InvalidArgumentError(Result.ERR_INVALID_ARGUMENT, "%s %s" % (name, what), "", repr(v))
    return v


def _u32(v: object) -> int:
    return _int_in(v, 0xFFFFFFFF, "a uint32 value")


def _u64(v: object) -> int:
    return _int_in(v, (1 << 64) - 1, "a uint64 value")


def _size(v: object) -> int:
    return _int_in(v, (1 << (8 * sizeof(c_size_t))) - 1, "a size")


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

    # Counts and ranks are checked alike: a negative one (or one past uint32) raises
    # InvalidArgumentError, a ValueError showing the value; a non-int raises TypeError.

    def local_lookup(self, key: IdLike, num: int = 8, safe: bool = False) -> List[Peer]:
        """Up to ``num`` next-hop candidates toward ``key`` (empty at the key's root).
        A negative ``num`` raises :class:`InvalidArgumentError` (a ``ValueError``)."""
        num = _count(num, "num")
        return self._peers("pastry_node_local_lookup", num, byref(Id(key)._raw()), bool(safe))

    def neighbor_set(self, num: int = 64) -> List[Peer]:
        """Up to ``num`` leaf-set members, nearest first. A negative ``num`` raises
        :class:`InvalidArgumentError` (a ``ValueError``)."""
        return self._peers("pastry_node_neighbor_set", _count(num, "num"))

    def replica_set(self, key: IdLike, max_rank: int = 3) -> List[Peer]:
        """The nodes that would become root of ``key``, closest first (at most
        ``max_rank + 1``). A negative ``max_rank`` raises :class:`InvalidArgumentError` (a
        ``ValueError``)."""
        max_rank = _count(max_rank, "max_rank")
        return self._peers(
            "pastry_node_replica_set", max_rank + 1, byref(Id(key)._raw()), max_rank
        )

    def range(self, node_id: IdLike, rank: int = 0) -> Optional[Tuple[Id, Id]]:
        """``(lo, hi)`` Ids of the keys ``node_id`` is an r-root for, or None if unknown.
        A negative ``rank`` raises :class:`InvalidArgumentError` (a ``ValueError``)."""
        lo, hi = N.pastry_id(), N.pastry_id()
        rank = _count(rank, "rank")
        rc = self._native.call(
            "pastry_node_range", byref(Id(node_id)._raw()), rank, byref(lo), byref(hi)
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


_upcalls._node_ref = NodeRef

OnDeliver = Callable[[NodeRef, Delivery], Any]
OnForward = Callable[[NodeRef, ForwardMessage], Optional[int]]
OnUpdate = Callable[[NodeRef, Peer, bool], Any]
OnUndeliverable = Callable[[NodeRef, Id, int, int], Any]
OnError = Callable[[BaseException], Any]


class Node(NodeRef):
    """A node run by a :class:`Runtime`, bound to its UDP socket at once. On a closed
    runtime it raises :class:`StoppedError` (a ``RuntimeError``), as ``pastry_node_new``
    returns ``PASTRY_ERR_STOPPED``.

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
        try:
            rt = runtime._native.enter()
        except NodeClosedError:
            rt = None
        if rt is None:
            # A closed runtime is a stopped one, as pastry_node_new says (PASTRY_ERR_STOPPED);
            # NodeClosedError is for a closed node.
            _raise(Result.ERR_STOPPED, "pastry_node_new", "the runtime is closed")
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
        if the node had stopped already.

        From inside an upcall (on the runtime's thread, of this node or another) it does not
        wait, as ``pastry_node_shutdown`` does not: the leave is queued, runs after the
        upcall returns, and this returns at once (``timeout`` is unused);
        :attr:`callbacks_released` tells when the leave is done."""
        self._begin_shutdown()
        if _in_upcall():
            return  # the loop runs the leave once this upcall returns: waiting would hang it
        if not self._wait_released(timeout):
            _raise(Result.ERR_TIMEOUT, "pastry_node_shutdown", "after %.3g s" % timeout)

    async def shutdown_async(self, timeout: float = 5.0) -> None:
        """:meth:`shutdown` without blocking the event loop (from inside an upcall, it
        only queues the leave, as :meth:`shutdown` does)."""
        self._begin_shutdown()
        if _in_upcall():
            return
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
        ``timeout`` seconds. Raises :class:`StoppedError` if it had stopped already.

        From inside an upcall (on the runtime's thread) it does not wait, as
        ``pastry_node_abort`` does not: the abort is queued, done after the upcall returns,
        and this returns at once (``timeout`` is unused)."""
        rc = self._native.call("pastry_node_abort", 0)
        if rc not in (Result.OK, Result.ERR_TIMEOUT):
            _raise(rc, "pastry_node_abort")
        if _in_upcall():
            return  # the loop aborts the node once this upcall returns
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
