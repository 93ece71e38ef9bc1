"""The loaded library, the result codes and enums, and raising a code's exception."""

import enum
import threading
from typing import (
    Any,
    Dict,
    Optional,
)

from . import _native as N
from .errors import error_for

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
