"""Route throughput and latency from one Python thread, through the installed package.

Two nodes on one runtime on 127.0.0.1; node A routes to keys whose root is node B (one overlay
hop, real UDP) with at most ``--window`` messages in flight, kept two ways:

- ``budget``: the library's own backpressure, ``Config(max_in_flight=window)``: route until
  :class:`pastry.OverloadedError`, then wait a little for acknowledgements;
- ``window``: the sender counts deliveries at B itself (default budget), and routes only while
  fewer than ``window`` messages are undelivered.

Prints deliveries per second for each, and the p50 / p99 latency (route to deliver) with one
message in flight.

    python bindings/python/bench/route_bench.py [--messages 20000] [--window 64]
"""

import argparse
import statistics
import threading
import time
from typing import List

import pastry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--latency-samples", type=int, default=2000)
    args = ap.parse_args()

    cond = threading.Condition()
    state = {"delivered": 0}
    stamps: List[float] = []

    def on_deliver(node: pastry.NodeRef, d: pastry.Delivery) -> None:
        with cond:
            state["delivered"] += 1
            stamps.append(time.perf_counter())
            cond.notify()

    with pastry.Runtime() as rt:
        # Two senders: one limited by the library's budget, one by the sender's own window.
        budgeted = pastry.Node(rt, pastry.Config(max_in_flight=args.window))
        budgeted.start()
        budgeted.wait_joined(10)
        free = pastry.Node(rt)
        free.join([budgeted.addr], timeout=10)
        b = pastry.Node(rt, on_deliver=on_deliver)
        b.join([budgeted.addr], timeout=10)
        key = b.id  # b is the root of its own id: one hop from a
        payload = b"x" * 64

        def run(a: pastry.Node, count: int, window: int) -> float:
            """``window`` 0: the library's budget alone."""
            with cond:
                state["delivered"] = 0
            sent = 0
            t0 = time.perf_counter()
            while sent < count:
                if window:
                    with cond:
                        while sent - state["delivered"] >= window:
                            cond.wait(1.0)
                try:
                    a.route(key, payload)
                    sent += 1
                except pastry.OverloadedError:
                    with cond:  # a delivery comes just before its acknowledgement
                        cond.wait(0.0002)
            with cond:
                while state["delivered"] < count:
                    if not cond.wait(10.0):
                        raise SystemExit("deliveries stalled at %d" % state["delivered"])
            return time.perf_counter() - t0

        run(budgeted, 1000, 0)  # warm up
        run(free, 1000, args.window)
        for how, a, window in (("budget", budgeted, 0), ("window", free, args.window)):
            before = a.stats()["retransmits"]
            secs = run(a, args.messages, window)
            print(
                "throughput (%s): %d messages, %d in flight: %.0f deliveries/s, %d retransmits"
                % (how, args.messages, args.window, args.messages / secs,
                   a.stats()["retransmits"] - before)
            )

        a = free
        lat = []
        for _ in range(args.latency_samples):
            with cond:
                before = state["delivered"]
            t = time.perf_counter()
            a.route(key, payload)
            with cond:
                while state["delivered"] == before:
                    cond.wait(1.0)
                lat.append(stamps[-1] - t)
        lat.sort()
        print(
            "latency, 1 in flight: p50 %.0f us, p99 %.0f us (%d samples)"
            % (
                statistics.median(lat) * 1e6,
                lat[int(len(lat) * 0.99) - 1] * 1e6,
                len(lat),
            )
        )
        stats = a.stats()
        print(
            "sender: retransmits %d, failures detected %d, routes refused %d"
            % (stats["retransmits"], stats["failures_detected"], stats["routes_refused"])
        )
        for n in (b, free, budgeted):
            n.close()


if __name__ == "__main__":
    main()
