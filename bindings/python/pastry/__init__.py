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
  :data:`FORWARD_DROP` to drop it. Any other return value (a string, a bool, another number)
  is an error in the upcall: it is reported like an exception raised there (a
  ``TypeError``; see below) and the message is dropped.
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

``Node.shutdown`` / ``Node.abort`` (and ``shutdown_async``) called inside an upcall (on
the runtime's thread) do not wait, as the C calls do not: the leave or abort is queued, runs
after the upcall returns, and the call returns at once (``Node.callbacks_released`` tells
when the node is done). ``close`` is refused there (:class:`InCallbackError`). On a closed
:class:`Runtime`, ``Node(...)`` raises :class:`StoppedError` (``PASTRY_ERR_STOPPED``); on a
closed node, calls raise :class:`NodeClosedError`. Counts and ranks (``num``, ``max_rank``,
``rank``) must not be negative (:class:`InvalidArgumentError`, a ``ValueError``).

**Blocking calls** (``join``, ``wait_joined``, ``shutdown``, ``abort``, ``close``) wait in
slices of at most 50 ms (not inside an upcall: see above), so Ctrl-C interrupts them promptly; each has an ``async`` twin
(``join_async``, ``wait_joined_async``, ``shutdown_async``) and nodes and runtimes support
``async with``.
"""

from . import _handles
from ._handles import _pending
from ._lib import (
    DEFAULT_MAX_IN_FLIGHT,
    FORWARD_CONTINUE,
    FORWARD_DROP,
    MAX_PAYLOAD_LIMIT,
    EventKind,
    LogLevel,
    Phase,
    Result,
    UndeliverableReason,
    abi_version,
    lib,
    version,
)
from ._native import LibraryNotFound, find_library
from ._objects import Config, DrivenNode, Node, NodeRef, Runtime
from ._upcalls import callback_errors, set_logger
from ._values import Addr, Delivery, Event, ForwardMessage, Id, Peer
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
