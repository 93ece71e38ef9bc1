"""Nodes on a runtime, on 127.0.0.1: deliveries at the numerically closest node (the oracle is
computed here from the ids), routes from several Python threads, forward upcalls that drop and
redirect, replica sets and the other queries, upcalls that raise, calls refused inside upcalls,
asyncio deliveries, context-manager shutdown, and the error paths."""

import asyncio
import contextlib
import io
import random
import threading
import time
import unittest

import pastry
from pastry import Id, PastryError, Result

WAIT = 30.0
N = 5


def wait_until(cond, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.002)


def root_of(key, ids):
    """The oracle: the numerically closest id (ties: the smaller id)."""
    return min(ids, key=lambda i: (Id(key).distance(i), int(i)))


def closest(key, ids, k):
    return sorted(ids, key=lambda i: (Id(key).distance(i), int(i)))[:k]


class Overlay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lock = threading.Lock()
        cls.got = []  # (node index, Delivery)
        cls.forward_drops = 0
        cls.in_callback = {}
        rnd = random.Random(11)
        cls.ids = [Id(rnd.getrandbits(128)) for _ in range(N)]
        cls.rt = pastry.Runtime()
        cls.nodes = []
        for i, node_id in enumerate(cls.ids):
            node = pastry.Node(
                cls.rt,
                pastry.Config(id=node_id, network=5),
                on_deliver=cls._deliver_at(i),
                on_forward=cls._forward_at(i),
            )
            if i == 0:
                node.start()
                node.wait_joined(WAIT)
            else:
                node.join([cls.nodes[0].addr], timeout=WAIT)
            cls.nodes.append(node)
        wait_until(
            lambda: all(len(n.neighbor_set()) == N - 1 for n in cls.nodes), "full leaf sets"
        )
        cls.peers = [n.peer for n in cls.nodes]

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.close()
        cls.rt.close()
        assert all(n.callbacks_released for n in cls.nodes)

    @classmethod
    def _deliver_at(cls, i):
        def deliver(node, d):
            if d.payload == b"raise":
                raise ValueError("deliver raised on purpose")
            if d.payload == b"free-me":
                for what, call in (("free", cls.nodes[i].close), ("rt", cls.rt.close)):
                    try:
                        call()
                        cls.in_callback[what] = None
                    except PastryError as e:
                        cls.in_callback[what] = e.code
                cls.in_callback["replicas"] = len(node.replica_set(d.key, 2))
            if d.payload == b"ping":
                node.route(d.source.id, b"pong")
            with cls.lock:
                cls.got.append((i, d))

        return deliver

    @classmethod
    def _forward_at(cls, i):
        def forward(node, msg):
            p = msg.payload
            if p.startswith(b"drop") and msg.hops == 0:
                with cls.lock:
                    cls.forward_drops += 1
                return pastry.FORWARD_DROP
            if p.startswith(b"redir:"):
                target = int(p[6:7])
                if target == i:
                    msg.next_hop = None  # deliver here
                elif msg.hops == 0:
                    msg.next_hop = cls.peers[target]
            if p == b"raise-in-forward":
                raise RuntimeError("forward raised on purpose")
            if p == b"shout" and msg.hops == 0:
                msg.payload = b"SHOUT"
            return pastry.FORWARD_CONTINUE

        return forward

    def delivered(self, payload):
        with self.lock:
            return [(i, d) for i, d in self.got if d.payload == payload]

    def wait_delivery(self, payload):
        wait_until(lambda: self.delivered(payload), "delivery of %r" % payload)
        (hit,) = self.delivered(payload)
        return hit

    def test_deliveries_at_the_root(self):
        rnd = random.Random(3)
        sent = {}
        for m in range(30):
            key = Id(rnd.getrandbits(128))
            payload = b"m%d" % m
            msg_id = self.nodes[m % N].route(key, payload)
            sent[payload] = (key, msg_id)
        self.assertEqual(len({m for _, m in sent.values()}), 30, "message ids repeat")
        for payload, (key, msg_id) in sent.items():
            i, d = self.wait_delivery(payload)
            self.assertEqual(self.ids[i], root_of(key, self.ids), payload)
            self.assertEqual(d.key, key)
            self.assertEqual(d.msg_id, msg_id, "route's id differs from the delivered one")

    def test_route_from_several_threads(self):
        rnd = random.Random(4)
        keys = [Id(rnd.getrandbits(128)) for _ in range(100)]
        errors = []

        def sender(t):
            try:
                for m in range(t, 100, 4):
                    self.nodes[t % N].route(keys[m], b"t%d" % m)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=sender, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for m in range(100):
            i, _ = self.wait_delivery(b"t%d" % m)
            self.assertEqual(self.ids[i], root_of(keys[m], self.ids))

    def test_forward_drops_redirects_and_rewrites(self):
        key = Id(12345)
        root = self.ids.index(root_of(key, self.ids))
        src, target = (root + 1) % N, (root + 2) % N
        self.nodes[src].route(key, b"drop-this")
        wait_until(lambda: self.forward_drops == 1, "the forward drop")
        self.nodes[src].route(key, b"after-drop")
        self.assertEqual(self.wait_delivery(b"after-drop")[0], root)
        self.assertEqual(self.delivered(b"drop-this"), [])
        self.nodes[src].route(key, b"redir:%d" % target)
        self.assertEqual(self.wait_delivery(b"redir:%d" % target)[0], target)
        self.nodes[src].route(key, b"shout")
        self.assertEqual(self.wait_delivery(b"SHOUT")[0], root)
        self.nodes[src].route_direct(self.peers[target], b"direct")
        self.assertEqual(self.wait_delivery(b"direct")[0], target)

    def test_queries(self):
        rnd = random.Random(5)
        for _ in range(5):
            key = Id(rnd.getrandbits(128))
            root = self.ids.index(root_of(key, self.ids))
            replicas = self.nodes[root].replica_set(key, max_rank=2)
            self.assertEqual([p.id for p in replicas], closest(key, self.ids, 3))
            self.assertEqual(replicas[0].addr, self.nodes[root].addr)
            self.assertEqual(self.nodes[root].local_lookup(key, safe=True), [])
            self.assertTrue(self.nodes[(root + 1) % N].local_lookup(key))
            lo, hi = self.nodes[root].range(self.ids[root], 0)
            self.assertLessEqual((int(key) - int(lo)) % (1 << 128), (int(hi) - int(lo)) % (1 << 128))
        self.assertEqual(len(self.nodes[0].neighbor_set(2)), 2)
        stats = self.nodes[0].stats()
        self.assertGreater(stats["datagrams_in"], 0)
        self.assertEqual(stats["upcall_panics"], 0)
        self.assertEqual(self.nodes[0].phase, pastry.Phase.ACTIVE)

    def test_upcalls_that_raise_are_reported_and_counted(self):
        key = self.ids[2]
        before_total = pastry.callback_errors()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.nodes[0].route(key, b"raise")
            self.nodes[0].route(key, b"raise-in-forward")
            self.nodes[0].route(key, b"after-raise")
            self.wait_delivery(b"after-raise")
            wait_until(lambda: pastry.callback_errors() >= before_total + 2, "two errors")
        self.assertEqual(self.nodes[2].callback_errors, 1)
        self.assertEqual(self.nodes[0].callback_errors, 1)
        self.assertIn("ValueError: deliver raised on purpose", err.getvalue())
        self.assertIn("RuntimeError: forward raised on purpose", err.getvalue())
        self.assertEqual(self.delivered(b"raise-in-forward"), [])  # a raising forward drops

    def test_calls_inside_upcalls(self):
        key = self.ids[3]
        self.nodes[1].route(key, b"ping")
        self.assertEqual(self.wait_delivery(b"pong")[0], 1)  # route from inside deliver
        self.nodes[1].route(key, b"free-me")
        self.wait_delivery(b"free-me")
        self.assertEqual(self.in_callback["free"], Result.ERR_IN_CALLBACK)
        self.assertEqual(self.in_callback["rt"], Result.ERR_IN_CALLBACK)
        self.assertEqual(self.in_callback["replicas"], 3)

    def test_asyncio_deliveries(self):
        from pastry.aio import DeliveryQueue

        async def main():
            inbox = DeliveryQueue()
            with pastry.Node(self.rt, pastry.Config(network=5), on_deliver=inbox) as extra:
                extra.join([self.nodes[0].addr], timeout=WAIT)
                self.nodes[0].route(extra.id, b"to the new node")
                d = await inbox.wait_for(lambda d: d.payload == b"to the new node", timeout=WAIT)
                self.assertEqual(d.key, extra.id)
            self.assertTrue(extra.callbacks_released)

        asyncio.run(main())
        wait_until(lambda: all(len(n.neighbor_set()) == N - 1 for n in self.nodes), "leave")


class Errors(unittest.TestCase):
    def test_values(self):
        self.assertTrue(pastry.version())
        self.assertEqual(pastry.abi_version(), 1)
        key = Id.from_hex("0x000102030405060708090a0b0c0d0e0f")
        self.assertEqual(key.hex(), "000102030405060708090a0b0c0d0e0f")
        self.assertEqual(Id(key.hex()), key)
        with self.assertRaises(PastryError) as e:
            Id.from_hex("xyz")
        self.assertEqual(e.exception.code, Result.ERR_BAD_HEX)
        with self.assertRaises(PastryError) as e:
            pastry.Addr("nowhere")
        self.assertEqual(e.exception.code, Result.ERR_BAD_ADDRESS)
        self.assertEqual(pastry.Addr("[::1]:7"), "[::1]:7")
        with self.assertRaises(PastryError) as e:
            pastry.Config(leaf_set_size=7)
        self.assertEqual(e.exception.code, Result.ERR_INVALID_CONFIG)
        with self.assertRaises(TypeError):
            pastry.Config(colour="blue")

    def test_node_errors(self):
        logs = []
        pastry.set_logger(lambda level, msg: logs.append((level, msg)), pastry.LogLevel.INFO)
        try:
            with pastry.Runtime() as rt:
                a = pastry.Node(rt, pastry.Config(max_payload=100, join_timeout_ms=(40, 2)))
                with self.assertRaises(PastryError) as e:
                    a.route(Id(1), b"x")
                self.assertEqual(e.exception.code, Result.ERR_NOT_ACTIVE)
                a.start()
                a.wait_joined(WAIT)
                with self.assertRaises(PastryError) as e:
                    a.route(Id(1), b"x" * 101)
                self.assertEqual(e.exception.code, Result.ERR_PAYLOAD_TOO_LARGE)
                with self.assertRaises(PastryError) as e:
                    a.route(None, b"x")
                self.assertEqual(e.exception.code, Result.ERR_NO_DESTINATION)
                with self.assertRaises(PastryError) as e:
                    pastry.Node(rt, pastry.Config(bind=a.addr))
                self.assertEqual(e.exception.code, Result.ERR_ADDR_IN_USE)
                b = pastry.Node(rt, pastry.Config(join_timeout_ms=(40, 2)))
                with self.assertRaises(PastryError) as e:
                    b.join(["127.0.0.1:9"], timeout=WAIT)
                self.assertEqual(e.exception.code, Result.ERR_JOIN_FAILED)
                with self.assertRaises(PastryError) as e:
                    pastry.DrivenNode.handle_timeout(b, 0)  # a runtime node is not driven
                self.assertEqual(e.exception.code, Result.ERR_WRONG_MODE)
                b.close()
                a.close()
                with self.assertRaises(pastry.NodeClosedError) as e:
                    a.route(Id(1), b"x")
                self.assertIsInstance(e.exception, ValueError)  # like I/O on a closed file
        finally:
            pastry.set_logger(None)
        self.assertTrue(any("created" in m for _, m in logs))


if __name__ == "__main__":
    unittest.main()
