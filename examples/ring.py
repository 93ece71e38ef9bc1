"""ring.py: a small Pastry overlay on 127.0.0.1 through the Python bindings.

Starts five nodes on one runtime, routes a message for each of a few names (the key is a hash
of the name), and prints where each was delivered: at the node whose id is numerically closest
to the key. Then it awaits one more delivery through asyncio.

    pip install ./bindings/python      # builds libpastry and bundles it in the package
    python examples/ring.py
"""

import asyncio
import threading
import time

import pastry
from pastry.aio import DeliveryQueue

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank"]


def main():
    print("pastry", pastry.version())
    delivered = {}
    done = threading.Event()

    def on_deliver_at(index):
        def deliver(node, d):
            delivered[d.payload.decode()] = (index, d.hops)
            if len(delivered) == len(NAMES):
                done.set()

        return deliver

    with pastry.Runtime() as rt:
        nodes = []
        for i in range(5):
            node = pastry.Node(rt, on_deliver=on_deliver_at(i))
            if i == 0:
                node.start()
                node.wait_joined(5)
            else:
                node.join([nodes[0].addr], timeout=10)
            nodes.append(node)
            print("node %d  %s  at %s" % (i, node.id.hex(), node.addr))

        deadline = time.monotonic() + 5
        while len(nodes[-1].neighbor_set()) < len(nodes) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)

        for i, name in enumerate(NAMES):
            nodes[i % len(nodes)].route(pastry.Id.hash(name), name)
        if not done.wait(10):
            raise SystemExit("only %d of %d messages were delivered" % (len(delivered), len(NAMES)))
        ids = [n.id for n in nodes]
        for i, name in enumerate(NAMES):
            key = pastry.Id.hash(name)
            at, hops = delivered[name]
            root = ids.index(min(ids, key=lambda x: (key.distance(x), int(x))))
            assert at == root, (name, at, root)
            print("%-6s key %s  sent by node %d, delivered at node %d after %d hop(s)"
                  % (name, key.hex(), i % len(nodes), at, hops))

        async def one_more():
            inbox = DeliveryQueue()
            with pastry.Node(rt, on_deliver=inbox) as extra:
                extra.join([nodes[0].addr], timeout=10)
                nodes[2].route(extra.id, "hello from asyncio")
                d = await inbox.get(timeout=10)
                print("asyncio: %r delivered at the new node %s" % (d.payload.decode(), extra.id))

        asyncio.run(one_more())
        for n in nodes:
            n.close()


if __name__ == "__main__":
    main()
