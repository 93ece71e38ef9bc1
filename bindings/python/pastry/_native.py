"""The ctypes layer: finding libpastry, the C structs and every function prototype of pastry.h.

The declarations here mirror ``include/pastry.h``; ``tests/test_header.py`` parses the header
and fails when they drift apart (a function missing, an argument count or type, a struct
field, a constant).
"""

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

LIBRARY_NAMES = {
    "linux": "libpastry.so",
    "darwin": "libpastry.dylib",
    "win32": "pastry.dll",
}

#: The directory of this package: an installed wheel bundles the library here.
PACKAGE_DIR = Path(__file__).resolve().parent


class LibraryNotFound(OSError):
    """The shared library could not be found (see :func:`find_library`)."""


def _library_name() -> str:
    for prefix, name in LIBRARY_NAMES.items():
        if sys.platform.startswith(prefix):
            return name
    return "libpastry.so"


def _bundled() -> List[Path]:
    """The library shipped inside the installed package (built by ``pip install``)."""
    found = sorted(PACKAGE_DIR.glob("_libpastry*"))
    return [p for p in found if p.suffix in (".so", ".dylib", ".pyd", ".dll")]


def _candidates() -> Iterator[Path]:
    """Where the library is looked for, in order."""
    name = _library_name()
    env = os.environ.get("PASTRY_LIB")
    if env:
        p = Path(env)
        yield p / name if p.is_dir() else p
        return
    yield from _bundled()
    dirs = []
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        dirs.append(Path(target))
    # A checkout: the package lives in <repo>/bindings/python/pastry; also the working directory.
    here = PACKAGE_DIR.parents
    for base in ([here[2]] if len(here) > 2 else []) + [Path.cwd()]:
        dirs.append(base / "target")
    for d in dirs:
        for profile in ("release", "debug"):
            yield d / profile / name


def find_library() -> str:
    """The path of libpastry: ``$PASTRY_LIB`` (the file, or a directory holding it) when set;
    else the copy bundled in the installed package (``pastry/_libpastry*``); else, for a
    checkout, ``release/`` then ``debug/`` under ``$CARGO_TARGET_DIR``, the checkout's
    ``target/``, and ``./target/``."""
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.is_file():
            return str(path)
    raise LibraryNotFound(
        "cannot find the pastry shared library (%s). Install the package with "
        "`pip install ./bindings/python` (it builds and bundles the library), build it with "
        "`cargo build --release` in the pastry checkout, or point PASTRY_LIB at it. "
        "Looked in:\n  %s" % (_library_name(), "\n  ".join(tried or ["(nowhere)"]))
    )


# ---- structs (pastry.h) ----


class pastry_config(Structure):
    """Opaque."""


class pastry_runtime(Structure):
    """Opaque."""


class pastry_node(Structure):
    """Opaque."""


class pastry_id(Structure):
    """A 128-bit id (16 big-endian bytes)."""

    _fields_ = [("bytes", c_uint8 * 16)]


class pastry_addr(Structure):
    """A socket address (family 4 or 6, port, scope, IP bytes)."""

    _fields_ = [
        ("family", c_uint16),
        ("port", c_uint16),
        ("scope_id", c_uint32),
        ("ip", c_uint8 * 16),
    ]


class pastry_peer(Structure):
    """A node: its id and address."""

    _fields_ = [("id", pastry_id), ("addr", pastry_addr)]


class pastry_forward(Structure):
    """The message passed to ``forward`` (valid during the call)."""

    _fields_ = [
        ("key", pastry_id),
        ("source", pastry_peer),
        ("next_hop", pastry_peer),
        ("msg_id", c_uint64),
        ("payload", POINTER(c_uint8)),
        ("payload_len", c_size_t),
        ("hops", c_uint32),
        ("has_next_hop", c_bool),
        ("_private", c_void_p),
    ]


class pastry_delivery(Structure):
    """The message passed to ``deliver`` (valid during the call)."""

    _fields_ = [
        ("key", pastry_id),
        ("source", pastry_peer),
        ("msg_id", c_uint64),
        ("payload", POINTER(c_uint8)),
        ("payload_len", c_size_t),
        ("hops", c_uint32),
    ]


DELIVER_FN = CFUNCTYPE(None, c_void_p, POINTER(pastry_node), POINTER(pastry_delivery))
FORWARD_FN = CFUNCTYPE(c_uint32, c_void_p, POINTER(pastry_node), POINTER(pastry_forward))
UPDATE_FN = CFUNCTYPE(None, c_void_p, POINTER(pastry_node), POINTER(pastry_peer), c_bool)
UNDELIVERABLE_FN = CFUNCTYPE(
    None, c_void_p, POINTER(pastry_node), POINTER(pastry_id), c_uint64, c_uint32
)
DROP_FN = CFUNCTYPE(None, c_void_p)
LOG_FN = CFUNCTYPE(None, c_void_p, c_uint32, c_char_p)


class pastry_callbacks(Structure):
    """The upcalls of a node."""

    _fields_ = [
        ("userdata", c_void_p),
        ("deliver", DELIVER_FN),
        ("forward", FORWARD_FN),
        ("update", UPDATE_FN),
        ("undeliverable", UNDELIVERABLE_FN),
        ("drop", DROP_FN),
    ]


class pastry_event(Structure):
    """An event of a caller-driven node."""

    _fields_ = [
        ("kind", c_uint32),
        ("reason", c_uint32),
        ("key", pastry_id),
        ("peer", pastry_peer),
        ("msg_id", c_uint64),
        ("payload_len", c_size_t),
        ("hops", c_uint32),
    ]


class pastry_logger(Structure):
    """The log sink."""

    _fields_ = [
        ("userdata", c_void_p),
        ("log", LOG_FN),
        ("drop", DROP_FN),
        ("max_level", c_uint32),
    ]


STATS_FIELDS: List[str] = [
    "datagrams_in",
    "datagrams_out",
    "bytes_out",
    "bad_frames",
    "foreign_frames",
    "outbox_drops",
    "forwarded",
    "delivered",
    "retransmits",
    "duplicates",
    "failures_detected",
    "overload_drops",
    "maintenance_msgs",
    "upcall_panics",
    "send_errors",
    "send_drops",
    "recv_errors",
    "routes_refused",
    "heap_bytes",
    "amplification_drops",
    "rate_limited",
    "validations",
    "validation_drops",
    "probe_drops",
    "limit_drops",
    "unsolicited",
    "addr_conflicts",
    "unproven_reports",
]


class pastry_stats(Structure):
    """A node's counters."""

    _fields_ = [(name, c_uint64) for name in STATS_FIELDS]


STRUCTS: Dict[str, Any] = {
    "pastry_id": pastry_id,
    "pastry_addr": pastry_addr,
    "pastry_peer": pastry_peer,
    "pastry_forward": pastry_forward,
    "pastry_delivery": pastry_delivery,
    "pastry_callbacks": pastry_callbacks,
    "pastry_event": pastry_event,
    "pastry_logger": pastry_logger,
    "pastry_stats": pastry_stats,
}

# ---- constants (pastry.h) ----

CONSTANTS: Dict[str, int] = {
    "PASTRY_FORWARD_CONTINUE": 0,
    "PASTRY_FORWARD_DROP": 1,
    "PASTRY_UNDELIVERABLE_HOP_LIMIT": 1,
    "PASTRY_UNDELIVERABLE_OVERLOAD": 2,
    "PASTRY_UNDELIVERABLE_UNREACHABLE": 3,
    "PASTRY_UNDELIVERABLE_LOST": 4,
    "PASTRY_UNDELIVERABLE_DROPPED": 5,
    "PASTRY_MAX_PAYLOAD_LIMIT": 65379,
    "PASTRY_DEFAULT_MAX_PAYLOAD": 16384,
    "PASTRY_DEFAULT_MAX_IN_FLIGHT": 1024,
    "PASTRY_MAX_IN_FLIGHT_LIMIT": 65536,
    "PASTRY_MAX_TIMER_MS": 86400000,
    "PASTRY_MAX_JOIN_ATTEMPTS": 1024,
    "PASTRY_MAX_RETRANSMITS": 16,
    "PASTRY_MAX_DATAGRAM": 65536,
    "PASTRY_ID_HEX_BUF": 33,
    "PASTRY_ADDR_STR_BUF": 64,
    "PASTRY_AF_INET": 4,
    "PASTRY_AF_INET6": 6,
    "PASTRY_ABI_VERSION": 1,
    # pastry_result
    "PASTRY_OK": 0,
    "PASTRY_NONE": 1,
    "PASTRY_ERR_NULL_ARGUMENT": 2,
    "PASTRY_ERR_INVALID_ARGUMENT": 3,
    "PASTRY_ERR_BAD_HEX": 4,
    "PASTRY_ERR_BAD_ADDRESS": 5,
    "PASTRY_ERR_BUFFER_TOO_SMALL": 6,
    "PASTRY_ERR_INVALID_CONFIG": 7,
    "PASTRY_ERR_ADDR_IN_USE": 8,
    "PASTRY_ERR_BIND": 9,
    "PASTRY_ERR_IO": 10,
    "PASTRY_ERR_PAYLOAD_TOO_LARGE": 11,
    "PASTRY_ERR_NOT_ACTIVE": 12,
    "PASTRY_ERR_NO_DESTINATION": 13,
    "PASTRY_ERR_OVERLOADED": 14,
    "PASTRY_ERR_STOPPED": 15,
    "PASTRY_ERR_ALREADY_STARTED": 16,
    "PASTRY_ERR_NO_BOOTSTRAP": 17,
    "PASTRY_ERR_JOIN_FAILED": 18,
    "PASTRY_ERR_TIMEOUT": 19,
    "PASTRY_ERR_IN_CALLBACK": 20,
    "PASTRY_ERR_WRONG_MODE": 21,
    "PASTRY_ERR_PANIC": 22,
    "PASTRY_ERR_NOT_STARTED": 23,
    # pastry_event_kind
    "PASTRY_EVENT_JOINED": 1,
    "PASTRY_EVENT_JOIN_FAILED": 2,
    "PASTRY_EVENT_DELIVERED": 3,
    "PASTRY_EVENT_NEIGHBOR_JOINED": 4,
    "PASTRY_EVENT_NEIGHBOR_LEFT": 5,
    "PASTRY_EVENT_UNDELIVERABLE": 6,
    # pastry_phase
    "PASTRY_PHASE_IDLE": 0,
    "PASTRY_PHASE_JOINING": 1,
    "PASTRY_PHASE_ACTIVE": 2,
    "PASTRY_PHASE_STOPPED": 3,
    # pastry_log_level
    "PASTRY_LOG_ERROR": 1,
    "PASTRY_LOG_WARN": 2,
    "PASTRY_LOG_INFO": 3,
    "PASTRY_LOG_DEBUG": 4,
}

# ---- functions (pastry.h): name -> (restype, argtypes) ----

R = c_uint32  # pastry_result (and the other uint32_t enums)
P_NODE = POINTER(pastry_node)
P_ID = POINTER(pastry_id)
P_ADDR = POINTER(pastry_addr)
P_PEER = POINTER(pastry_peer)
P_U8 = POINTER(c_uint8)
P_SIZE = POINTER(c_size_t)
P_CONFIG = POINTER(pastry_config)

PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    "pastry_version": (c_char_p, []),
    "pastry_abi_version": (c_uint32, []),
    "pastry_result_str": (c_char_p, [c_uint32]),
    "pastry_id_from_hex": (R, [c_char_p, P_ID]),
    "pastry_id_to_hex": (R, [P_ID, POINTER(c_char), c_size_t]),
    "pastry_addr_parse": (R, [c_char_p, P_ADDR]),
    "pastry_addr_to_str": (R, [P_ADDR, POINTER(c_char), c_size_t]),
    "pastry_set_logger": (R, [POINTER(pastry_logger)]),
    "pastry_config_new": (R, [POINTER(P_CONFIG)]),
    "pastry_config_free": (None, [P_CONFIG]),
    "pastry_config_set_bind": (R, [P_CONFIG, c_char_p]),
    "pastry_config_set_id": (R, [P_CONFIG, P_ID]),
    "pastry_config_set_digit_bits": (R, [P_CONFIG, c_uint32]),
    "pastry_config_set_leaf_set_size": (R, [P_CONFIG, c_uint32]),
    "pastry_config_set_neighborhood_size": (R, [P_CONFIG, c_uint32]),
    "pastry_config_set_network": (R, [P_CONFIG, c_uint32]),
    "pastry_config_set_max_payload": (R, [P_CONFIG, c_size_t]),
    "pastry_config_set_seed": (R, [P_CONFIG, c_uint64]),
    "pastry_config_set_leaf_probe_period_ms": (R, [P_CONFIG, c_uint64]),
    "pastry_config_set_rt_maintenance_period_ms": (R, [P_CONFIG, c_uint64]),
    "pastry_config_set_join_timeout_ms": (R, [P_CONFIG, c_uint64, c_uint32]),
    "pastry_config_set_retransmit": (R, [P_CONFIG, c_uint64, c_uint64, c_uint64, c_uint32]),
    "pastry_runtime_new": (R, [POINTER(POINTER(pastry_runtime))]),
    "pastry_runtime_free": (R, [POINTER(pastry_runtime)]),
    "pastry_node_new": (
        R,
        [POINTER(pastry_runtime), P_CONFIG, POINTER(pastry_callbacks), POINTER(P_NODE)],
    ),
    "pastry_node_start": (R, [P_NODE]),
    "pastry_node_start_join": (R, [P_NODE, P_ADDR, c_size_t]),
    "pastry_node_wait_joined": (R, [P_NODE, c_uint32]),
    "pastry_node_join": (R, [P_NODE, P_ADDR, c_size_t, c_uint32]),
    "pastry_node_phase": (R, [P_NODE, POINTER(c_uint32)]),
    "pastry_node_shutdown": (R, [P_NODE, c_uint32]),
    "pastry_node_free": (R, [P_NODE]),
    "pastry_route": (R, [P_NODE, P_ID, P_U8, c_size_t, P_PEER]),
    "pastry_route_with_id": (R, [P_NODE, P_ID, P_U8, c_size_t, P_PEER, POINTER(c_uint64)]),
    "pastry_node_id": (R, [P_NODE, P_ID]),
    "pastry_node_addr": (R, [P_NODE, P_ADDR]),
    "pastry_node_addr_str": (R, [P_NODE, POINTER(c_char), c_size_t]),
    "pastry_node_local_lookup": (R, [P_NODE, P_ID, c_bool, P_PEER, P_SIZE]),
    "pastry_node_neighbor_set": (R, [P_NODE, P_PEER, P_SIZE]),
    "pastry_node_replica_set": (R, [P_NODE, P_ID, c_uint32, P_PEER, P_SIZE]),
    "pastry_node_range": (R, [P_NODE, P_ID, c_uint32, P_ID, P_ID]),
    "pastry_node_stats": (R, [P_NODE, POINTER(pastry_stats), c_size_t]),
    "pastry_forward_set_payload": (R, [POINTER(pastry_forward), P_U8, c_size_t]),
    "pastry_node_new_driven": (R, [P_CONFIG, POINTER(pastry_callbacks), POINTER(P_NODE)]),
    "pastry_node_handle_datagram": (R, [P_NODE, P_ADDR, P_U8, c_size_t, c_uint64]),
    "pastry_node_handle_timeout": (R, [P_NODE, c_uint64]),
    "pastry_node_poll_transmit": (R, [P_NODE, P_U8, c_size_t, P_SIZE, P_ADDR]),
    "pastry_node_poll_timeout": (R, [P_NODE, POINTER(c_uint64)]),
    "pastry_node_poll_event": (R, [P_NODE, POINTER(pastry_event), P_U8, c_size_t]),
    "pastry_id_hash": (R, [P_U8, c_size_t, P_ID]),
    "pastry_config_set_max_in_flight": (R, [P_CONFIG, c_size_t]),
    "pastry_config_set_max_buffer_bytes": (R, [P_CONFIG, c_size_t]),
    "pastry_node_abort": (R, [P_NODE, c_uint32]),
    "pastry_node_start_at": (R, [P_NODE, c_uint64]),
    "pastry_node_start_join_at": (R, [P_NODE, P_ADDR, c_size_t, c_uint64]),
    "pastry_route_at": (R, [P_NODE, P_ID, P_U8, c_size_t, P_PEER, c_uint64, POINTER(c_uint64)]),
    "pastry_node_shutdown_at": (R, [P_NODE, c_uint64]),
}


def load(path: Optional[str] = None) -> ctypes.CDLL:
    """Loads the library (``path`` or :func:`find_library`) and declares every prototype.

    The calls release the GIL while they run (ctypes.CDLL), so other Python threads, and the
    runtime's loop thread running Python callbacks, go on meanwhile."""
    lib = ctypes.CDLL(path or find_library())
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib
