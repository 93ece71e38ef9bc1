"""The upcall trampolines: the library calls these on its threads; they call the
application's Python callables, held weakly when they are bound methods."""

import inspect
import itertools
import sys
import threading
import traceback
import weakref
from ctypes import (
    byref,
    string_at,
)
from typing import (
    Any,
    Callable,
    Dict,
    Optional,
)

from . import _native as N
from ._lib import FORWARD_CONTINUE, FORWARD_DROP, LogLevel, UndeliverableReason, _check, lib
from ._values import Delivery, ForwardMessage, Id, _peer

# ---- upcalls ----

_tls = threading.local()

#: Makes the node object an upcall receives (a NodeRef; set by pastry._objects).
_node_ref: Callable[[Any], Any] = lambda ptr: ptr


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
            f(_node_ref(node), d)
        except BaseException:
            _report(h, "deliver")


def _tr_forward(ud: Optional[int], node: Any, msg: Any) -> int:
    h = _registry.get(ud or 0)
    f = _upcall(h, "forward")
    if h is None or f is None:
        return FORWARD_CONTINUE
    with _UpcallScope():
        try:
            return _forward_verdict(f(_node_ref(node), ForwardMessage(msg)))
        except BaseException:
            _report(h, "forward")
            return FORWARD_DROP


def _forward_verdict(r: object) -> int:
    """What ``on_forward`` returned, as the library's verdict: None or FORWARD_CONTINUE goes
    on, FORWARD_DROP drops. Anything else (a string, a bool, another number) is a bug in the
    upcall: it raises TypeError here, which is reported like an exception raised by the upcall
    (counted, printed, passed to ``on_error``), and the message is dropped."""
    if r is None:
        return FORWARD_CONTINUE
    if isinstance(r, int) and not isinstance(r, bool) and r in (FORWARD_CONTINUE, FORWARD_DROP):
        return int(r)
    raise TypeError(
        "on_forward returned %r: return None, FORWARD_CONTINUE or FORWARD_DROP "
        "(the message is dropped)" % (r,)
    )


def _tr_update(ud: Optional[int], node: Any, peer: Any, joined: bool) -> None:
    h = _registry.get(ud or 0)
    f = _upcall(h, "update")
    if h is None or f is None:
        return
    with _UpcallScope():
        try:
            f(_node_ref(node), _peer(peer.contents), bool(joined))
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
            f(_node_ref(node), Id(key.contents), int(msg_id), why)
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
