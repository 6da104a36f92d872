"""The bounded queue of a queued output, and what happens when it fills.

A queued output (recorder, push relay, HLS muxer) must never slow the publisher: the stream
hands it a batch and returns at once. When the consumer falls behind (slow disk, stalled
upstream, CPU), the queue grows; this policy bounds it:

1. above ``soft_bytes``: non-key video is dropped and the output's
   :class:`~aiortmp.hub.gate.KeyframeGate` waits for a keyframe (the frames after a gap
   cannot be decoded); audio, keyframes, configuration and metadata are still queued;
2. above ``max_bytes``: the output has fallen hopelessly behind — :meth:`OutputQueue.push`
   returns False and the output stops (one log line and an event; the stream goes on).

Sans-I/O: the asyncio task that drains the queue lives in :mod:`aiortmp.outputs.queued`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from .gate import KeyframeGate
from .packet import Packet

__all__ = ["OutputQueue"]


class OutputQueue:
    """Packets waiting for a queued output's consumer.

    Args:
        max_bytes: payload bytes past which the output has to stop.
        soft_bytes: payload bytes past which non-key video is dropped (default: half).
        wait_keyframe: start with the gate closed (drop inter frames until a keyframe).

    Attributes:
        gate: the output's keyframe gate.
        queued_bytes: payload bytes waiting.
        overflowed: True once ``max_bytes`` was exceeded (the queue then takes nothing).
    """

    __slots__ = ("max_bytes", "soft_bytes", "gate", "queued_bytes", "overflowed", "_items")

    def __init__(
        self, max_bytes: int, *, soft_bytes: int | None = None, wait_keyframe: bool = True
    ) -> None:
        self.max_bytes = max_bytes
        self.soft_bytes = max_bytes // 2 if soft_bytes is None else soft_bytes
        self.gate = KeyframeGate(closed=wait_keyframe)
        self.queued_bytes = 0
        self.overflowed = False
        self._items: deque[Packet] = deque()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Non-key video frames dropped by the gate."""
        return self.gate.dropped

    def push(self, packets: Sequence[Packet]) -> bool:
        """Queue a batch, dropping per the policy.

        Returns:
            False if the queue went over ``max_bytes`` (the output must stop).
        """
        if self.overflowed:
            return False
        gate = self.gate
        items = self._items
        size = self.queued_bytes
        for packet in packets:
            if size > self.soft_bytes:
                gate.close()
            if gate.admit(packet.kind):
                items.append(packet)
                size += len(packet.payload)
        self.queued_bytes = size
        if size > self.max_bytes:
            self.overflowed = True
            self.clear()
            return False
        return True

    def pop_all(self) -> list[Packet]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        items = list(self._items)
        self._items.clear()
        self.queued_bytes = 0
        return items

    def clear(self) -> None:
        """Drop everything queued."""
        self._items.clear()
        self.queued_bytes = 0
