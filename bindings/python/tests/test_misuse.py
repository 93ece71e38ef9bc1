"""The Python layer under misuse (issue 9): close racing route, interpreter exit with live nodes
(and Ctrl-C there), a node collected on the runtime's thread, a node whose upcalls are its
owner's bound methods, Ctrl-C during join, the exception hierarchy, argument checks, async
join / shutdown / ``async with``, DeliveryQueue overflow, stats inside an upcall, abort,
backpressure (OverloadedError), and the bundled library."""

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import pastry
from _helpers import WAIT, started, wait_until
from pastry import Id
from pastry.aio import DeliveryQueue, DeliveryQueueOverflow





def run_script(body, timeout=60):
    """Runs ``body`` in a fresh interpreter with this package; returns the process."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(pastry.__file__)))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Lifetime(unittest.TestCase):
    def test_close_racing_route_is_safe(self):
        with pastry.Runtime() as rt:
            for _ in range(5):
                node = started(rt)
                key = node.id
                bad = []
                stop = threading.Event()

                def router():
                    for _ in range(100000):
                        try:
                            node.route(key, b"r")
                        except pastry.NodeClosedError:
                            return
                        except (pastry.OverloadedError, pastry.StoppedError):
                            pass
                        except Exception as e:  # reported below
                            bad.append(e)
                            return
                        if stop.is_set():
                            return

                threads = [threading.Thread(target=router) for _ in range(3)]
                for t in threads:
                    t.start()
                time.sleep(0.01)
                node.close()
                stop.set()
                for t in threads:
                    t.join(WAIT)
                    self.assertFalse(t.is_alive(), "a route call never returned")
                self.assertEqual(bad, [])
                self.assertTrue(node.callbacks_released)
                with self.assertRaises(pastry.NodeClosedError):
                    node.route(key, b"late")

    def test_interpreter_exit_with_live_nodes_is_clean(self):
        p = run_script(
            """
            import pastry
            rt = pastry.Runtime()
            a = pastry.Node(rt, on_update=lambda n, p, j: None)
            a.start()
            a.wait_joined(10)
            b = pastry.Node(rt, on_update=lambda n, p, j: None)
            b.join([a.addr], timeout=10)
            print("ok")
            """
        )
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("FATAL", p.stderr)
        self.assertEqual(p.stdout.strip(), "ok")

    def test_ctrl_c_at_module_level_exits_cleanly(self):
        p = run_script(
            """
            import os, signal, threading, pastry
            rt = pastry.Runtime()
            n = pastry.Node(rt, pastry.Config(join_timeout_ms=(60000, 1)))
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            n.join(["127.0.0.1:9"], timeout=60)   # nobody answers: Ctrl-C ends it
            """
        )
        self.assertNotIn("FATAL", p.stderr)
        self.assertNotEqual(p.returncode, 134, p.stderr)
        self.assertNotEqual(p.returncode, -signal.SIGABRT, p.stderr)
        self.assertIn("KeyboardInterrupt", p.stderr)

    def test_ctrl_c_interrupts_wait_joined_promptly(self):
        with pastry.Runtime() as rt:
            n = pastry.Node(rt, pastry.Config(join_timeout_ms=(60000, 1)))
            n.start_join(["127.0.0.1:9"])
            sent = []

            def interrupt():
                sent.append(time.monotonic())
                os.kill(os.getpid(), signal.SIGINT)

            timer = threading.Timer(0.2, interrupt)
            timer.start()
            began = time.monotonic()
            with self.assertRaises(KeyboardInterrupt):
                n.wait_joined(60)
            latency = time.monotonic() - sent[0]
            timer.join()
            n.close()
        # Bounded far below the 60 s wait (not a timing assertion on the 50 ms slice).
        self.assertLess(time.monotonic() - began, 30)
        sys.stderr.write("[Ctrl-C seen after %.1f ms] " % (latency * 1000))

    def test_a_node_collected_on_the_runtime_thread_is_closed(self):
        with pastry.Runtime() as rt:
            holder = [pastry.Node(rt)]
            victim = holder[0]
            victim.start()
            victim.wait_joined(WAIT)
            addr = victim.addr
            released = victim._handlers.dropped
            del victim
            done = threading.Event()

            def deliver(node, d):
                holder.clear()  # the last reference: collected here, on the runtime's thread
                gc.collect()
                done.set()

            a = started(rt, on_deliver=deliver)
            a.route(a.id, b"collect")
            self.assertTrue(done.wait(WAIT))
            # It stops at once: upcalls released, port closed.
            self.assertTrue(released.wait(WAIT), "the collected node was never shut down")
            host, port = addr.rsplit(":", 1)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, int(port)))  # the port is free again
            s.close()
            a.stats()  # a call from this thread frees what the upcall could not
            self.assertEqual(pastry._pending, [])
            a.close()

    def test_bound_method_upcalls_do_not_keep_the_owner_alive(self):
        with pastry.Runtime() as rt:

            class Owner:
                def __init__(self):
                    self.node = pastry.Node(rt, on_deliver=self.on_deliver, on_update=self.on_update)
                    self.node.start()
                    self.node.wait_joined(WAIT)

                def on_deliver(self, node, d):
                    pass

                def on_update(self, node, peer, joined):
                    pass

            import weakref

            owner = Owner()
            gone = weakref.ref(owner)
            released = owner.node._handlers.dropped
            del owner
            gc.collect()
            self.assertIsNone(gone(), "the owner was kept alive by its own upcalls")
            self.assertTrue(released.wait(WAIT), "its node was never closed")


class Errors(unittest.TestCase):
    def test_exceptions_map_onto_builtins_and_show_the_value(self):
        with self.assertRaises(ValueError) as e:
            Id.from_hex("xyz")
        self.assertIsInstance(e.exception, pastry.BadHexError)
        self.assertIn("'xyz'", str(e.exception))
        with self.assertRaises(ValueError) as e:
            pastry.Addr("nowhere")
        self.assertIn("'nowhere'", str(e.exception))
        with self.assertRaises(ValueError) as e:
            pastry.Config(bind="not-an-address")
        self.assertIn("not-an-address", str(e.exception))
        with self.assertRaises(ValueError):
            pastry.Config(leaf_set_size=7)
        with self.assertRaises(TypeError):
            pastry.Config(leaf_set_size="8")
        self.assertTrue(issubclass(pastry.JoinTimeoutError, TimeoutError))
        self.assertTrue(issubclass(pastry.JoinFailedError, ConnectionError))
        self.assertTrue(issubclass(pastry.OverloadedError, BlockingIOError))
        self.assertTrue(issubclass(pastry.AddressInUseError, OSError))
        self.assertTrue(issubclass(pastry.StoppedError, RuntimeError))
        self.assertTrue(issubclass(pastry.NodeClosedError, ValueError))
        for cls in (pastry.BadHexError, pastry.JoinTimeoutError, pastry.OverloadedError):
            self.assertTrue(issubclass(cls, pastry.PastryError))

    def test_ids_and_payloads_are_checked(self):
        with self.assertRaises(ValueError):
            Id(2**128)
        with self.assertRaises(ValueError):
            Id(-1)
        with self.assertRaises(ValueError):
            Id(b"short")
        with self.assertRaises(TypeError):
            Id(1.5)
        self.assertEqual(int(Id(2**128 - 1)), 2**128 - 1)
        self.assertEqual(Id.hash("abc").hex(), "ba7816bf8f01cfea414140de5dae2223")
        with pastry.Runtime() as rt:
            n = started(rt)
            with self.assertRaises(TypeError):
                n.route(n.id, 5)  # not 5 NUL bytes
            with self.assertRaises(TypeError):
                n.route(n.id, [1, 2])
            n.route(n.id, bytearray(b"ok"))
            n.route(n.id, memoryview(b"ok"))
            n.close()

    def test_join_errors_are_timeout_and_connection_errors(self):
        with pastry.Runtime() as rt:
            a = pastry.Node(rt, pastry.Config(join_timeout_ms=(60000, 1)))
            a.start_join(["127.0.0.1:9"])
            with self.assertRaises(TimeoutError):
                a.wait_joined(0.1)
            a.close()
            b = pastry.Node(rt, pastry.Config(join_timeout_ms=(40, 2)))
            with self.assertRaises(ConnectionError):
                b.join(["127.0.0.1:9"], timeout=WAIT)
            b.close()
            with self.assertRaises(pastry.BadAddressError):
                pastry.Node(rt, pastry.Config(bind="0.0.0.0:0"))


class Features(unittest.TestCase):
    def test_async_join_shutdown_and_async_with(self):
        async def main():
            inbox = DeliveryQueue()
            async with pastry.Runtime() as rt:
                async with pastry.Node(rt) as a, pastry.Node(rt, on_deliver=inbox) as b:
                    a.start()
                    await a.wait_joined_async(WAIT)
                    await b.join_async([a.addr], WAIT)
                    a.route(b.id, b"async")
                    d = await inbox.wait_for(lambda d: d.payload == b"async", timeout=WAIT)
                    self.assertEqual(d.key, b.id)
                    await a.shutdown_async(WAIT)
                    self.assertTrue(a.callbacks_released)
                self.assertTrue(b.closed and b.callbacks_released)

        asyncio.run(main())

    def test_delivery_queue_overflow_is_raised_not_silent(self):
        async def main():
            q = DeliveryQueue(maxsize=1)
            with pastry.Runtime() as rt, pastry.Node(rt, on_deliver=q) as a:
                a.start()
                a.wait_joined(WAIT)
                for i in range(3):
                    a.route(a.id, b"%d" % i)
                deadline = time.monotonic() + WAIT
                while q.dropped < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                self.assertEqual(q.dropped, 2)
                with self.assertRaises(DeliveryQueueOverflow) as e:
                    await q.get(timeout=WAIT)
                self.assertEqual(e.exception.dropped, 2)
                self.assertEqual((await q.get(timeout=WAIT)).payload, b"0")

        asyncio.run(main())

    def test_stats_inside_an_upcall(self):
        seen = []
        with pastry.Runtime() as rt:
            a = started(rt, on_deliver=lambda node, d: seen.append(node.stats()["delivered"]))
            a.route(a.id, b"s")
            wait_until(lambda: seen, "the delivery")
            self.assertEqual(seen, [1])
            a.close()

    def test_abort_and_backpressure(self):
        reports = []
        with pastry.Runtime() as rt:
            cfg = pastry.Config(max_in_flight=4, retransmit=(20, 20, 40, 1))
            a = started(rt, config=cfg, on_undeliverable=lambda n, k, m, r: reports.append(r))
            dead = pastry.Peer(Id(1), "127.0.0.1:9")
            for _ in range(4):
                a.route_direct(dead, b"d")
            with self.assertRaises(pastry.OverloadedError):
                a.route_direct(dead, b"d")
            wait_until(lambda: len(reports) >= 4, "the undeliverable reports")
            self.assertIsInstance(reports[0], pastry.UndeliverableReason)
            wait_until(lambda: _routes(a), "a route accepted again")

            b = started(rt)
            b.abort()
            self.assertTrue(b.callbacks_released)
            self.assertEqual(b.phase, pastry.Phase.STOPPED)
            with self.assertRaises(pastry.StoppedError):
                b.route(b.id, b"late")
            with self.assertRaises(pastry.StoppedError):
                b.abort()
            b.close()
            a.close()

    def test_the_library_is_bundled_when_installed(self):
        if os.environ.get("PASTRY_EXPECT_BUNDLED") != "1":
            self.skipTest("not testing an installed wheel")
        self.assertNotIn("PASTRY_LIB", os.environ)
        path = pastry.find_library()
        self.assertTrue(path.startswith(os.path.dirname(pastry.__file__)), path)


def _routes(node):
    try:
        node.route(node.id, b"again")
        return True
    except pastry.OverloadedError:
        return False


if __name__ == "__main__":
    unittest.main()
