"""asyncio helpers: await deliveries that arrive on the runtime's thread.

>>> import asyncio, pastry
>>> from pastry.aio import DeliveryQueue
>>> async def main() -> bytes:
...     inbox = DeliveryQueue()                 # bound to the running event loop
...     async with pastry.Runtime() as rt, pastry.Node(rt, on_deliver=inbox) as a:
...         a.start()
...         await a.wait_joined_async(5)
...         a.route(a.id, b"hi")
...         return (await inbox.get(timeout=5)).payload
>>> asyncio.run(main())
b'hi'
"""

import asyncio
from typing import Any, AsyncIterator, Callable, Optional

from . import Delivery, NodeRef

__all__ = ["DeliveryQueue", "DeliveryQueueOverflow"]


class DeliveryQueueOverflow(RuntimeError):
    """Deliveries were dropped because the queue was full (``DeliveryQueue(maxsize)``).

    Attributes:
        dropped: how many were dropped since the last report.
    """

    def __init__(self, dropped: int) -> None:
        self.dropped = dropped
        super().__init__(
            "%d deliveries dropped: the DeliveryQueue was full (raise maxsize, or read faster)"
            % dropped
        )


class DeliveryQueue:
    """An ``on_deliver`` upcall that hands each :class:`pastry.Delivery` to an asyncio event
    loop. Create it inside the loop (or pass ``loop``); then ``await queue.get()``, or
    ``async for delivery in queue``.

    The upcall runs on the runtime's thread: it only schedules a ``put`` on the loop with
    ``call_soon_threadsafe``, so it never blocks the runtime. Nothing is lost silently: a
    delivery that does not fit (``maxsize`` reached) or arrives after the loop has closed is
    counted in :attr:`dropped`, and with ``overflow="raise"`` (the default) the next
    :meth:`get` raises :class:`DeliveryQueueOverflow` once, saying how many were dropped;
    ``overflow="count"`` only counts. ``maxsize`` 0 (the default) is unbounded; a negative one
    raises ``ValueError``. Deliveries are at least once (see :mod:`pastry`)."""

    def __init__(
        self,
        loop: Optional[asyncio.AbstractEventLoop] = None,
        maxsize: int = 0,
        overflow: str = "raise",
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError("maxsize must be an int, not %s" % type(maxsize).__name__)
        if maxsize < 0:  # asyncio.Queue would take it as unbounded
            raise ValueError("maxsize must not be negative (0: unbounded): %r" % (maxsize,))
        if overflow not in ("raise", "count"):
            raise ValueError("overflow is 'raise' or 'count', not %r" % (overflow,))
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._queue: "asyncio.Queue[Delivery]" = asyncio.Queue(maxsize)
        self._raise = overflow == "raise"
        #: Deliveries dropped so far (queue full, or the loop closed).
        self.dropped = 0
        self._unreported = 0

    def __call__(self, node: NodeRef, delivery: Delivery) -> None:
        """The upcall (runs on the runtime's thread)."""
        try:
            self._loop.call_soon_threadsafe(self._put, delivery)
        except RuntimeError:  # the loop is closed
            self.dropped += 1

    def _put(self, delivery: Delivery) -> None:
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.dropped += 1
            self._unreported += 1

    def _check_overflow(self) -> None:
        if self._raise and self._unreported:
            n, self._unreported = self._unreported, 0
            raise DeliveryQueueOverflow(n)

    async def get(self, timeout: Optional[float] = None) -> Delivery:
        """The next delivery; raises ``asyncio.TimeoutError`` after ``timeout`` seconds, and
        :class:`DeliveryQueueOverflow` (once) after deliveries were dropped."""
        self._check_overflow()
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def wait_for(
        self, predicate: Callable[[Delivery], Any], timeout: Optional[float] = None
    ) -> Delivery:
        """The first delivery for which ``predicate(delivery)`` holds (others are discarded)."""

        async def scan() -> Delivery:
            while True:
                self._check_overflow()
                d = await self._queue.get()
                if predicate(d):
                    return d

        return await asyncio.wait_for(scan(), timeout)

    def qsize(self) -> int:
        """Deliveries waiting."""
        return self._queue.qsize()

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        return await self.get()
