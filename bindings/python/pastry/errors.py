"""The exceptions of the pastry package.

Every failed library call raises a :class:`PastryError` carrying the C result code
(:attr:`PastryError.code`). Each code maps onto a subclass that also derives from the Python
built-in exception a Python programmer would catch::

    ValueError      BadHexError, BadAddressError, InvalidArgumentError, InvalidConfigError,
                    PayloadTooLargeError, NoDestinationError, NoBootstrapError, NodeClosedError
    OSError         AddressInUseError, BindError, IOFailure
    TimeoutError    JoinTimeoutError (and every wait that ran out of time)
    ConnectionError JoinFailedError (no bootstrap node answered)
    BlockingIOError OverloadedError (the in-flight budget is spent: try again later)
    RuntimeError    StateError (NotActiveError, StoppedError, AlreadyStartedError,
                    NotStartedError, InCallbackError, WrongModeError), InternalError

so ``except TimeoutError`` catches a join that timed out, and ``except ValueError`` a bad hex
id or address.
"""

from typing import Dict, Optional, Type

from ._native import CONSTANTS

__all__ = [
    "AddressInUseError",
    "AlreadyStartedError",
    "BadAddressError",
    "BadHexError",
    "BindError",
    "IOFailure",
    "InCallbackError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "JoinFailedError",
    "JoinTimeoutError",
    "NoBootstrapError",
    "NoDestinationError",
    "NodeClosedError",
    "NotActiveError",
    "NotStartedError",
    "OverloadedError",
    "PastryError",
    "PayloadTooLargeError",
    "StateError",
    "StoppedError",
    "WrongModeError",
    "error_for",
]


class PastryError(Exception):
    """A failed call into the library.

    Attributes:
        code: the C result code (an ``int``; compare with :class:`pastry.Result` members).
        call: the C function that failed (``""`` when raised by the Python layer).
        detail: the offending value or more context, when known.
    """

    code: int
    call: str
    detail: Optional[str]

    def __init__(self, code: int, message: str, call: str = "", detail: Optional[str] = None):
        self.code = code
        self.call = call
        self.detail = detail
        text = message
        if call:
            text = "%s: %s" % (call, text)
        if detail:
            text = "%s: %s" % (text, detail)
        super().__init__(text)


class BadHexError(PastryError, ValueError):
    """Not an id: an id is 32 hexadecimal digits, optionally after ``0x``."""


class BadAddressError(PastryError, ValueError):
    """Not a socket address (``1.2.3.4:5`` or ``[::1]:5``), or an address peers cannot reach
    (``0.0.0.0``, ``::``, ``[::ffff:0.0.0.0]``)."""


class InvalidArgumentError(PastryError, ValueError):
    """An argument is out of range (or a handle is no longer valid)."""


class InvalidConfigError(PastryError, ValueError):
    """A configuration value is out of range."""


class PayloadTooLargeError(PastryError, ValueError):
    """The payload is larger than the node's payload limit."""


class NoDestinationError(PastryError, ValueError):
    """``route`` was given neither a key nor a hint."""


class NoBootstrapError(PastryError, ValueError):
    """A join was asked with an empty bootstrap list."""


class NodeClosedError(PastryError, ValueError):
    """The node (or runtime) was closed: like I/O on a closed file, nothing more can be done
    with it."""


class AddressInUseError(PastryError, OSError):
    """The bind address is already in use."""


class BindError(PastryError, OSError):
    """The bind address could not be bound."""


class IOFailure(PastryError, OSError):
    """Another operating-system error (poll instance, thread, socket)."""


class JoinTimeoutError(PastryError, TimeoutError):
    """A wait ended before the operation completed (a join still in progress, a leave still
    flushing)."""


class JoinFailedError(PastryError, ConnectionError):
    """No bootstrap node answered the join after every attempt; the node may join again."""


class OverloadedError(PastryError, BlockingIOError):
    """Too many messages in flight (the node's budget, ``Config(max_in_flight=...)``): wait
    for deliveries or undeliverable reports, then route again."""


class StateError(PastryError, RuntimeError):
    """The call does not fit the node's state."""


class NotActiveError(StateError):
    """The node has not joined an overlay yet."""


class StoppedError(StateError):
    """The node has left, was shut down or aborted, or its runtime stopped."""


class AlreadyStartedError(StateError):
    """The node has already been started (or is joining)."""


class NotStartedError(StateError):
    """The node was never started."""


class InCallbackError(StateError):
    """Not allowed from inside an upcall (it would deadlock or free what is running)."""


class WrongModeError(StateError):
    """The call does not apply to this kind of node (runtime vs caller-driven)."""


class InternalError(PastryError, RuntimeError):
    """A bug in the library, caught at its boundary."""


_BY_NAME: Dict[str, Type[PastryError]] = {
    "PASTRY_ERR_NULL_ARGUMENT": InvalidArgumentError,
    "PASTRY_ERR_INVALID_ARGUMENT": InvalidArgumentError,
    "PASTRY_ERR_BAD_HEX": BadHexError,
    "PASTRY_ERR_BAD_ADDRESS": BadAddressError,
    "PASTRY_ERR_BUFFER_TOO_SMALL": InternalError,
    "PASTRY_ERR_INVALID_CONFIG": InvalidConfigError,
    "PASTRY_ERR_ADDR_IN_USE": AddressInUseError,
    "PASTRY_ERR_BIND": BindError,
    "PASTRY_ERR_IO": IOFailure,
    "PASTRY_ERR_PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "PASTRY_ERR_NOT_ACTIVE": NotActiveError,
    "PASTRY_ERR_NO_DESTINATION": NoDestinationError,
    "PASTRY_ERR_OVERLOADED": OverloadedError,
    "PASTRY_ERR_STOPPED": StoppedError,
    "PASTRY_ERR_ALREADY_STARTED": AlreadyStartedError,
    "PASTRY_ERR_NO_BOOTSTRAP": NoBootstrapError,
    "PASTRY_ERR_JOIN_FAILED": JoinFailedError,
    "PASTRY_ERR_TIMEOUT": JoinTimeoutError,
    "PASTRY_ERR_IN_CALLBACK": InCallbackError,
    "PASTRY_ERR_WRONG_MODE": WrongModeError,
    "PASTRY_ERR_PANIC": InternalError,
    "PASTRY_ERR_NOT_STARTED": NotStartedError,
}

_BY_CODE: Dict[int, Type[PastryError]] = {CONSTANTS[k]: v for k, v in _BY_NAME.items()}


def error_for(code: int) -> Type[PastryError]:
    """The exception class for a C result code (:class:`PastryError` for an unknown one)."""
    return _BY_CODE.get(code, PastryError)
