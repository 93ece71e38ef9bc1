"""Caller-driven nodes from Python: three DrivenNodes exchanging datagrams through this test's
own loop (in memory, on a virtual clock), deliveries at the oracle root, events, a forward
upcall that routes from inside itself and one that raises, and a graceful leave."""

import contextlib
import io
import unittest

import pastry
from pastry import EventKind, Id, PastryError, Result

IDS = [Id(0x10 << 120), Id(0x60 << 120), Id(0xB0 << 120)]


class Net:
    def __init__(self):
        self.now = 0
        self.events = []  # (node index, Event)
        self.forward_rc = {}
        self.nodes = []
        for i, node_id in enumerate(IDS):
            cfg = pastry.Config(bind="127.0.0.1:%d" % (43000 + i), id=node_id, seed=i + 1)
            self.nodes.append(pastry.DrivenNode(cfg, on_forward=self.forward_at(i)))
        self.addrs = [n.addr for n in self.nodes]
        self.alive = [True] * len(IDS)

    def forward_at(self, i):
        def forward(node, msg):
            if msg.payload == b"relay" and msg.hops == 0:
                node.route(IDS[2], b"relayed")  # deferred: routed after this input
                try:
                    node.neighbor_set()
                except PastryError as e:
                    self.forward_rc["query"] = e.code
            if msg.payload == b"boom":
                raise KeyError("forward raised on purpose")

        return forward

    def pump(self):
        moved = True
        while moved:
            moved = False
            for i, n in enumerate(self.nodes):
                if not self.alive[i]:
                    continue
                while True:
                    out = n.poll_transmit()
                    if out is None:
                        break
                    moved = True
                    data, dst = out
                    if dst in self.addrs and self.alive[self.addrs.index(dst)]:
                        self.nodes[self.addrs.index(dst)].handle_datagram(
                            self.addrs[i], data, self.now
                        )
        for i, n in enumerate(self.nodes):
            if self.alive[i]:
                while True:
                    ev = n.poll_event()
                    if ev is None:
                        break
                    self.events.append((i, ev))

    def run(self, rounds, done=None):
        for _ in range(rounds):
            self.pump()
            if done is not None and done():
                return
            deadlines = [n.poll_timeout() for i, n in enumerate(self.nodes) if self.alive[i]]
            deadlines = [d for d in deadlines if d is not None]
            if not deadlines:
                return
            self.now = max(self.now, min(deadlines))
            for i, n in enumerate(self.nodes):
                if self.alive[i]:
                    n.handle_timeout(self.now)

    def kinds(self, kind, node=None):
        return [(i, e) for i, e in self.events if e.kind == kind and (node is None or i == node)]

    def delivery(self, payload):
        hits = [(i, e) for i, e in self.kinds(EventKind.DELIVERED) if e.payload == payload]
        return hits[0] if hits else (None, None)


class Driven(unittest.TestCase):
    def test_overlay_in_memory(self):
        net = Net()
        a, b, c = net.nodes
        a.start()
        b.start_join([net.addrs[0]])
        c.start_join([net.addrs[1]])
        net.run(500, lambda: len(net.kinds(EventKind.JOINED)) == 3)
        self.assertEqual(len(net.kinds(EventKind.JOINED)), 3)
        net.run(50)
        for n in net.nodes:
            self.assertEqual(len(n.neighbor_set()), 2)

        keys = [Id(k * 0x0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F_0F0F) for k in range(1, 16)]
        for m, key in enumerate(keys):
            net.nodes[m % 3].route(key, b"d%d" % m)
        net.run(20)
        for m, key in enumerate(keys):
            i, ev = net.delivery(b"d%d" % m)
            self.assertIsNotNone(ev, m)
            root = min(IDS, key=lambda x: (key.distance(x), int(x)))
            self.assertEqual(IDS[i], root)
            self.assertEqual(ev.key, key)
            self.assertEqual(ev.peer.id, IDS[m % 3])

        # Routing from inside the node's own forward is deferred; queries there are refused.
        a.route(IDS[1], b"relay")
        net.run(10)
        self.assertEqual(net.delivery(b"relay")[0], 1)
        self.assertEqual(net.delivery(b"relayed")[0], 2)
        self.assertEqual(net.forward_rc["query"], Result.ERR_IN_CALLBACK)

        # A raising forward drops the message and is reported.
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            a.route(IDS[1], b"boom")
            net.run(10)
        self.assertEqual(a.callback_errors, 1)
        self.assertIn("KeyError", err.getvalue())
        self.assertEqual(net.delivery(b"boom"), (None, None))

        # Garbage is counted; a graceful leave reaches the others.
        b.handle_datagram(net.addrs[0], b"\x00garbage", net.now)
        self.assertEqual(b.stats()["bad_frames"], 1)
        c.shutdown()
        net.pump()
        net.alive[2] = False
        self.assertEqual(len(net.kinds(EventKind.NEIGHBOR_LEFT, node=0)), 1)
        self.assertEqual(len(net.kinds(EventKind.NEIGHBOR_LEFT, node=1)), 1)
        c.close()
        with self.assertRaises(PastryError) as e:
            pastry.Node.join(a, [net.addrs[1]])  # blocking join: runtime nodes only
        self.assertEqual(e.exception.code, Result.ERR_WRONG_MODE)
        a.close()
        b.close()


if __name__ == "__main__":
    unittest.main()
