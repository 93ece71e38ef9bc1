"""Route throughput and latency from one Python thread, through the installed package.

Two nodes on one runtime on 127.0.0.1; node A routes to keys whose root is node B (one overlay
hop, real UDP) while at most ``--window`` messages are in flight (each delivery at B opens the
window again). Prints deliveries per second with that window, and the p50 / p99 round-trip
latency (route to deliver) with one message in flight.

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
        a = pastry.Node(rt)
        a.start()
        a.wait_joined(10)
        b = pastry.Node(rt, on_deliver=on_deliver)
        b.join([a.addr], timeout=10)
        key = b.id  # b is the root of its own id: one hop from a
        payload = b"x" * 64

        def run(count: int, window: int) -> float:
            with cond:
                state["delivered"] = 0
            sent = 0
            t0 = time.perf_counter()
            while sent < count:
                with cond:
                    while sent - state["delivered"] >= window:
                        cond.wait(1.0)
                try:
                    a.route(key, payload)
                    sent += 1
                except pastry.OverloadedError:
                    time.sleep(0.0005)
            with cond:
                while state["delivered"] < count:
                    if not cond.wait(10.0):
                        raise SystemExit("deliveries stalled at %d" % state["delivered"])
            return time.perf_counter() - t0

        run(1000, args.window)  # warm up
        secs = run(args.messages, args.window)
        print(
            "throughput: %d messages, %d in flight: %.0f deliveries/s"
            % (args.messages, args.window, args.messages / secs)
        )

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
        b.close()
        a.close()


if __name__ == "__main__":
    main()
