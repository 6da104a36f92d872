"""Queued outputs: an output with its own bounded queue and task.

Muxers, file writers and push relays may block or be slow; the stream must not wait for
them. A :class:`QueuedOutput` is subscribed to a stream with ``wire = None``: the stream
hands it each batch of packets, :meth:`QueuedOutput.on_batch` only appends them to its
:class:`~aiortmp.hub.queue.OutputQueue` and wakes its task, and the task runs
:meth:`QueuedOutput.consume` outside the source's read. When the consumer falls behind,
the queue drops non-key video first; past its limit the output stops (one log line, an
``output_stopped`` event) and the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiortmp.hub.packet import Packet, WireFormat
from aiortmp.hub.queue import OutputQueue
from aiortmp.hub.stream import StartAt, Stream

__all__ = ["QueuedOutput"]

logger = logging.getLogger("aiortmp.output")


class QueuedOutput:
    """Base class of queued outputs; subclasses implement :meth:`consume` and
    :meth:`finish`.

    Args:
        stream: the stream to read.
        max_bytes: the queue limit (payload bytes); half of it is the soft limit.
        label: how log lines name the output (``"recording live/cam"``).
        on_overflow: called with the output when it fell behind and stopped (the owner
            emits the event), or None.

    Attributes:
        queue: the :class:`OutputQueue`.
        task: the consumer task once started.
        ended: no more packets will be taken (the source left or :meth:`stop` was called).
    """

    wire: WireFormat | None = None

    def __init__(
        self,
        stream: Stream,
        *,
        max_bytes: int,
        label: str,
        on_overflow: Callable[[QueuedOutput], None] | None = None,
    ) -> None:
        self.stream = stream
        self.label = label
        self.queue = OutputQueue(max_bytes)
        self.on_overflow = on_overflow
        self.task: asyncio.Task[None] | None = None
        self.ended = False
        self._wake = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, start: StartAt = StartAt.GOP) -> None:
        """Start the consumer task and subscribe to the stream."""
        self.task = asyncio.get_running_loop().create_task(self._run(), name=self.label)
        self.stream.subscribe(self, start)

    def stop(self) -> None:
        """Stop taking packets; what is queued is still consumed, then :meth:`finish`."""
        if not self.ended:
            self.stream.unsubscribe(self, flush=True)
            self._end()

    def cancel(self) -> None:
        """Stop at once: unsubscribe and cancel the task (:meth:`finish` still runs)."""
        self.stream.unsubscribe(self)
        self.ended = True
        self.queue.clear()
        if self.task is not None:
            self.task.cancel()

    def _end(self) -> None:
        self.ended = True
        self._wake.set()

    # -- Output (called by the stream: must return at once) ------------------------------

    def on_batch(self, data: bytes | None, packets: Sequence[Packet]) -> None:
        """Queue a batch (dropping per the queue's policy) and wake the task."""
        if self.ended:
            return
        if self.queue.push(packets):
            self._wake.set()
        else:
            self.overflowed()

    def overflowed(self) -> None:
        """The queue went over its limit: stop, with one log line (and ``on_overflow``).

        A push relay overrides this to drop its upstream connection and retry instead.
        """
        logger.warning(
            "%s fell behind by more than %d bytes and stopped",
            self.label,
            self.queue.max_bytes,
        )
        self.stream.unsubscribe(self)
        self._end()
        if self.on_overflow is not None:
            self.on_overflow(self)

    def on_live(self, live: bool) -> None:
        """The source left: consume what is queued, then finish."""
        if not live and not self.ended:
            self.stream.unsubscribe(self)
            self._end()

    # -- the task -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while len(self.queue):
                    await self.consume(self.queue.pop_all())
                if self.ended:
                    break
        finally:
            self.ended = True
            self.stream.unsubscribe(self)
            await self.finish()

    async def consume(self, packets: list[Packet]) -> None:
        """Process packets, in order, off the source's read (may await I/O)."""
        raise NotImplementedError

    async def finish(self) -> None:
        """Release everything (close the file, unpublish upstream); must not raise."""
