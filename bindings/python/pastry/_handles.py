"""Native objects shared by Python threads: calls hold them, close frees after the last
call, and frees refused inside an upcall are done later (or at exit)."""

import atexit
import sys
import threading
from typing import (
    Any,
    Callable,
    List,
    Optional,
    Tuple,
)

from ._lib import Result, _check, _text, lib
from ._upcalls import _in_upcall
from .errors import InCallbackError, NodeClosedError

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
