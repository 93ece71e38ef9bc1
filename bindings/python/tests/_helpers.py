"""Helpers shared by the package's tests (not a test module: unittest discovers ``test_*.py``)."""

import time

import pastry

#: Give-up limit of every wait, seconds (a limit, never a timing assertion).
WAIT = 30.0


def wait_until(cond, what, timeout=WAIT):
    """Polls ``cond`` every 5 ms until it is true; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.005)


def started(rt, **kw):
    """A node on ``rt`` that is the whole overlay (started alone and active)."""
    cfg = kw.pop("config", None)
    n = pastry.Node(rt, cfg, **kw)
    n.start()
    n.wait_joined(WAIT)
    return n
