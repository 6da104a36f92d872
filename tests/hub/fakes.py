"""In-memory stand-ins for what the hub is given: a scheduler, sources and outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiortmp.hub.packet import Packet, WireFormat


class FakeTimer:
    """A scheduled call of :class:`FakeScheduler`."""

    def __init__(self, due_s: float, callback: Callable[[], object]) -> None:
        self.due_s = due_s
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeScheduler:
    """An injected clock: timers run when the test advances time."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[[], object], /) -> FakeTimer:
        timer = FakeTimer(self.now_s + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now_s += seconds
        due = [t for t in self.timers if t.due_s <= self.now_s and not t.cancelled]
        self.timers = [t for t in self.timers if t not in due and not t.cancelled]
        for timer in due:
            timer.callback()

    @property
    def pending(self) -> int:
        return sum(not t.cancelled for t in self.timers)


@dataclass(eq=False)
class FakeSource:
    """A source that records being stopped."""

    kind: str = "fake"
    session_id: int = 7
    remote: str = "test"
    stopped: list[str] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        self.stopped.append(reason)


@dataclass(eq=False)
class FakeOutput:
    """An output that records what it got: ``batches`` of (data, packets)."""

    wire: WireFormat | None = None
    batches: list[tuple[bytes | None, list[Packet]]] = field(default_factory=list)
    live: list[bool] = field(default_factory=list)

    def on_batch(self, data: bytes | None, packets: Sequence[Packet]) -> None:
        self.batches.append((data, list(packets)))

    def on_live(self, live: bool) -> None:
        self.live.append(live)

    @property
    def packets(self) -> list[Packet]:
        return [p for _, batch in self.batches for p in batch]

    @property
    def data(self) -> bytes:
        return b"".join(d for d, _ in self.batches if d is not None)
