"""Problems an outside tester found reading only the README, the header and the docstrings;
each test failed before its fix: shutdown / abort inside an upcall waited for the upcall's own
thread, [::ffff:0.0.0.0] was accepted as a bind address, negative counts were accepted (or
refused inconsistently), Node() on a closed Runtime raised NodeClosedError instead of
StoppedError, an on_forward returning a non-int dropped the message silently, and pip install
built the crate into the checkout's target/."""

import asyncio
import contextlib
import io
import os
import runpy
import threading
import time
import unittest

import pastry
from _helpers import WAIT, started, wait_until
from pastry import Id
from pastry.aio import DeliveryQueue





class StopInsideAnUpcall(unittest.TestCase):
    def _stop_from_own_deliver(self, which):
        holder, out, done = {}, {}, threading.Event()

        def deliver(node, d):
            t0 = time.monotonic()
            try:
                getattr(holder["a"], which)(timeout=5.0)
                out["r"] = "ok"
            except BaseException as e:  # reported below
                out["r"] = "%s: %s" % (type(e).__name__, e)
            out["took"] = time.monotonic() - t0
            done.set()

        with pastry.Runtime() as rt:
            a = started(rt, on_deliver=deliver)
            holder["a"] = a
            ticks = []
            c = started(rt, on_deliver=lambda n, d: ticks.append(d.payload))
            a.route(a.id, b"stop")
            self.assertTrue(done.wait(WAIT), "the deliver upcall ran")
            # It returned at once and without an error, as pastry_node_shutdown / _abort do
            # inside a callback: the leave (abort) is queued, not waited for.
            self.assertEqual(out["r"], "ok")
            self.assertLess(out["took"], 1.0)
            wait_until(lambda: a.callbacks_released, "the node released after the upcall")
            self.assertEqual(a.phase, pastry.Phase.STOPPED)
            # The loop was never blocked: another node on the runtime still delivers.
            c.route(c.id, b"tick")
            wait_until(lambda: ticks == [b"tick"], "c's delivery")
            a.close()
            c.close()

    def test_shutdown_inside_an_upcall_is_queued_and_returns_at_once(self):
        self._stop_from_own_deliver("shutdown")

    def test_abort_inside_an_upcall_is_queued_and_returns_at_once(self):
        self._stop_from_own_deliver("abort")

    def test_shutdown_of_another_node_inside_an_upcall_does_not_wait(self):
        holder, out = {}, {}

        def deliver(node, d):
            t0 = time.monotonic()
            holder["b"].shutdown(timeout=5.0)
            out["took"] = time.monotonic() - t0

        with pastry.Runtime() as rt:
            a = started(rt, on_deliver=deliver)
            holder["b"] = b = started(rt)
            a.route(a.id, b"stop b")
            wait_until(lambda: "took" in out, "the deliver upcall")
            self.assertLess(out["took"], 1.0)
            wait_until(lambda: b.callbacks_released, "b left")
            a.close()
            b.close()


class UnspecifiedBind(unittest.TestCase):
    ANY = ("0.0.0.0:0", "[::]:0", "[::ffff:0.0.0.0]:0", "[::ffff:0:0]:0", "[::0.0.0.0]:0")

    def test_every_spelling_is_refused(self):
        with pastry.Runtime() as rt:
            for text in self.ANY:
                with self.subTest(text=text):
                    with self.assertRaises(pastry.BadAddressError):
                        pastry.Node(rt, pastry.Config(bind=text))
        for text in ("[::ffff:0.0.0.0]:4000", "[::ffff:0:0]:4000", "[::0.0.0.0]:4000"):
            with self.subTest(text=text):
                with self.assertRaises(pastry.BadAddressError):
                    pastry.DrivenNode(pastry.Config(bind=text))


class Counts(unittest.TestCase):
    def test_negative_counts_raise_value_error_showing_the_value(self):
        with pastry.Runtime() as rt:
            n = started(rt)
            calls = {
                "local_lookup": lambda: n.local_lookup(Id(5), num=-1),
                "neighbor_set": lambda: n.neighbor_set(-1),
                "replica_set": lambda: n.replica_set(Id(5), max_rank=-1),
                "range": lambda: n.range(n.id, rank=-1),
            }
            for name, call in calls.items():
                with self.subTest(call=name):
                    with self.assertRaises(ValueError) as e:
                        call()
                    self.assertIsInstance(e.exception, pastry.InvalidArgumentError)
                    self.assertIn("-1", str(e.exception))
            with self.assertRaises(TypeError):
                n.local_lookup(Id(5), num=1.5)
            self.assertEqual(n.local_lookup(n.id, num=0), [])
            self.assertEqual(n.replica_set(n.id, max_rank=0), [n.peer])
            n.close()

    def test_a_negative_delivery_queue_size_is_refused(self):
        async def main():
            with self.assertRaises(ValueError) as e:
                DeliveryQueue(maxsize=-1)
            self.assertIn("-1", str(e.exception))

        asyncio.run(main())


class ClosedRuntime(unittest.TestCase):
    def test_a_node_on_a_closed_runtime_is_stopped_not_closed(self):
        rt = pastry.Runtime()
        n = pastry.Node(rt)
        rt.close()
        with self.assertRaises(pastry.StoppedError) as e:
            pastry.Node(rt)
        self.assertIsInstance(e.exception, RuntimeError)
        self.assertNotIsInstance(e.exception, pastry.NodeClosedError)
        self.assertEqual(e.exception.code, pastry.Result.ERR_STOPPED)
        n.close()
        with self.assertRaises(pastry.NodeClosedError):  # a closed node stays NodeClosedError
            n.route(Id(1), b"x")


class ForwardVerdicts(unittest.TestCase):
    def test_a_non_int_verdict_is_a_counted_error_and_drops(self):
        verdicts = {b"str": "drop please", b"bool": True, b"two": 2, b"none": None}
        errors, got = [], []
        with pastry.Runtime() as rt:
            a = started(
                rt,
                on_forward=lambda node, m: verdicts[m.payload],
                on_deliver=lambda node, d: got.append(d.payload),
                on_error=errors.append,
            )
            before = pastry.callback_errors()
            with contextlib.redirect_stderr(io.StringIO()) as err:
                for payload in (b"str", b"bool", b"two", b"none"):
                    a.route(a.id, payload)  # the source's on_forward runs too
                wait_until(lambda: got == [b"none"], "the None verdict's delivery")
                wait_until(lambda: a.callback_errors == 3, "three callback errors")
            self.assertEqual(pastry.callback_errors() - before, 3)
            self.assertEqual([type(e) for e in errors], [TypeError] * 3)
            self.assertIn("'drop please'", str(errors[0]))
            self.assertIn("on_forward returned", err.getvalue())
            self.assertEqual(got, [b"none"])
            a.close()


class InstallLeavesTheCheckoutClean(unittest.TestCase):
    SETUP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "setup.py")

    def test_cargo_builds_outside_the_checkout_unless_told_where(self):
        setup = runpy.run_path(self.SETUP, run_name="pastry_setup")  # does not build
        where = setup["cargo_target_dir"]
        self.assertEqual(where({}, "/tmp/scratch"), os.path.join("/tmp/scratch", "cargo-target"))
        self.assertEqual(where({"CARGO_TARGET_DIR": ""}, "/s"), os.path.join("/s", "cargo-target"))
        self.assertEqual(where({"CARGO_TARGET_DIR": "/opt/t"}, "/s"), "/opt/t")


if __name__ == "__main__":
    unittest.main()
