"""asyncio helpers: await deliveries that arrive on the runtime's thread.

>>> import asyncio, pastry
>>> from pastry.aio import DeliveryQueue
>>> async def main():
...     inbox = DeliveryQueue()                 # bound to the running event loop
...     with pastry.Runtime() as rt, pastry.Node(rt, on_deliver=inbox) as a:
...         a.start()
...         a.wait_joined(5)
...         a.route(a.id, b"hi")
...         return (await inbox.get(timeout=5)).payload
>>> asyncio.run(main())
b'hi'
"""

import asyncio

__all__ = ["DeliveryQueue"]


class DeliveryQueue:
    """An ``on_deliver`` upcall that hands each :class:`pastry.Delivery` to an asyncio event
    loop. Create it inside the loop (or pass ``loop``); then ``await queue.get()``, or
    ``async for delivery in queue``.

    The upcall runs on the runtime's thread: it only schedules a ``put`` on the loop with
    ``call_soon_threadsafe``, so it never blocks the runtime. Deliveries arriving after the
    loop has closed are dropped (and counted in ``dropped``)."""

    def __init__(self, loop=None, maxsize=0):
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize)
        self.dropped = 0

    def __call__(self, node, delivery):
        try:
            self._loop.call_soon_threadsafe(self._put, delivery)
        except RuntimeError:  # the loop is closed
            self.dropped += 1

    def _put(self, delivery):
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self, timeout=None):
        """The next delivery; raises ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def wait_for(self, predicate, timeout=None):
        """The first delivery for which ``predicate(delivery)`` holds (others are discarded)."""

        async def scan():
            while True:
                d = await self._queue.get()
                if predicate(d):
                    return d

        return await asyncio.wait_for(scan(), timeout)

    def qsize(self):
        return self._queue.qsize()

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self._queue.get()
