"""Recording: every live stream to an FLV file, as a queued output.

Each publish of a stream (from any source) is written to
``DIR/<app>/<stream>-<UTC yyyymmdd-HHMMSS>.flv`` (FLV v10.1 Annex E): ``onMetaData``, the
configuration packets, then the stream from its cached GOP or next keyframe, timestamps
rebased to start at 0 on the stream's normalized timeline.

The file is written off the event loop (a small thread pool): a slow disk slows only its
recording. At least once a second the writer is flushed and ``duration``/``filesize``
patched, so a ``kill -9`` loses at most about a second and leaves a file that reads whole.
A write error (ENOSPC, EFBIG under ``ulimit -f``, EIO) stops that recording with one log
line and a ``record_failed`` event; the stream, its players and relays go on, and the next
publish (or an API start) records again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.packet import Packet, PacketKind
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import StartAt, Stream, StreamKey
from aiortmp.media.flv import FLVWriter
from aiortmp.protocol.messages import MessageType

from .queued import QueuedOutput

if TYPE_CHECKING:
    from aiortmp.server.config import ServerConfig

__all__ = ["FLVRecorder", "RecordingService", "recording_path"]

logger = logging.getLogger("aiortmp.record")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Flush and patch the header at least this often (seconds): what a crash can lose.
CHECKPOINT_S = 1.0
#: Queue limit of a recording (payload bytes) before it is declared hopelessly behind.
QUEUE_BYTES = 64 * 1024 * 1024

#: File writes of every recording; each recording has at most one write in flight.
_IO = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aiortmp-record")


def _safe(part: str) -> str:
    # Stream names come from the network: never let one escape the record directory.
    cleaned = _UNSAFE.sub("_", part).lstrip(".")
    return cleaned or "_"


def recording_path(directory: Path, app: str, name: str, when: dt.datetime) -> Path:
    """``directory/<app>/<name>-<yyyymmdd-HHMMSS>.flv`` (UTC), names sanitized.

    A suffix ``-1``, ``-2``... is added if the file already exists (a republish in the same
    second).
    """
    folder = directory / _safe(app)
    stem = f"{_safe(name)}-{when.astimezone(dt.UTC):%Y%m%d-%H%M%S}"
    path = folder / f"{stem}.flv"
    n = 0
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.flv"
    return path


class FLVRecorder(QueuedOutput):
    """Writes one publish of a stream to an FLV file.

    Args:
        stream: the live stream.
        path: the file to create (its folder is created).
        on_end: called once when the recording ended, with the recorder; ``error`` is
            set if it ended on an I/O error.

    Attributes:
        path: the file.
        bytes_written: bytes in the file so far (header and tags).
        error: the I/O error that stopped the recording, or None.
    """

    def __init__(
        self, stream: Stream, path: Path, *, on_end: Callable[[FLVRecorder], None]
    ) -> None:
        super().__init__(
            stream,
            max_bytes=QUEUE_BYTES,
            label=f"recording {stream.app}/{stream.name}",
            on_overflow=lambda _: None,
        )
        self.path = path
        self.bytes_written = 0
        self.error: OSError | None = None
        self._on_end = on_end
        self._file: BinaryIO | None = None
        self._writer: FLVWriter | None = None
        self._base_ms: int | None = None
        self._last_checkpoint = 0.0
        self._metadata: dict[str, object] | None = None

    # -- the file (runs in the I/O thread) --------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb", buffering=256 * 1024)  # noqa: SIM115
        self._writer = FLVWriter(self._file, has_audio=True, has_video=True)
        self._writer.write_metadata(self._metadata or {})
        self._last_checkpoint = time.monotonic()

    def _write(self, packets: list[Packet]) -> None:
        if self._writer is None:
            self._open()
        writer = self._writer
        assert writer is not None
        for packet in packets:
            if packet.kind is PacketKind.DATA:
                if packet.type_id != MessageType.DATA_AMF0:
                    continue  # AMF3 data has no FLV script tag
            elif self._base_ms is None and packet.kind >= PacketKind.KEYFRAME:
                self._base_ms = packet.timestamp_ms
            base = self._base_ms
            timestamp_ms = 0 if base is None else max(0, packet.timestamp_ms - base)
            writer.write_tag(packet.type_id, timestamp_ms & 0xFFFFFFFF, packet.payload)
        self.bytes_written = writer.size_bytes
        now = time.monotonic()
        if now - self._last_checkpoint >= CHECKPOINT_S:
            self._last_checkpoint = now
            writer.checkpoint()

    def _close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                self.bytes_written = self._writer.size_bytes
        finally:
            if self._file is not None:
                self._file.close()

    # -- QueuedOutput -----------------------------------------------------------------------

    async def consume(self, packets: list[Packet]) -> None:
        """Write packets in the I/O thread; an OSError ends the recording."""
        if self.error is not None:
            return
        if self._metadata is None:
            # The file starts with the stream's onMetaData (its duration and filesize are
            # patched later); the packet that carried it is not written a second time.
            self._metadata = dict(self.stream.metadata or {})
            if packets and packets[0] is self.stream.cache.metadata:
                packets = packets[1:]
        try:
            await asyncio.get_running_loop().run_in_executor(_IO, self._write, packets)
        except OSError as exc:
            self.error = exc
            logger.error("%s/%s: recording %s failed: %s", *self.stream.key, self.path, exc)
            self.stop()

    async def finish(self) -> None:
        """Close the file (patching duration and size), then report the end."""
        try:
            await asyncio.get_running_loop().run_in_executor(_IO, self._close)
        except OSError as exc:
            if self.error is None:
                self.error = exc
                logger.error("%s/%s: closing %s failed: %s", *self.stream.key, self.path, exc)
        if self.error is None:
            logger.info(
                "%s/%s: recording closed: %s (%d bytes)",
                *self.stream.key,
                self.path,
                self.bytes_written,
            )
        self._on_end(self)


class RecordingService:
    """Records every stream that goes live (any source) when ``record_dir`` is set; the
    API starts and stops recordings of live streams.

    Args:
        registry: the streams.
        bus: where ``record_done`` / ``record_failed`` go, and ``publish`` comes from.
        record_dir: the directory, or None (recording off; the API may still be asked).

    Attributes:
        recorders: the running recordings by stream key.
    """

    def __init__(self, registry: Registry, bus: EventBus, record_dir: Path | None) -> None:
        self.registry = registry
        self.bus = bus
        self.record_dir = record_dir
        self.recorders: dict[StreamKey, FLVRecorder] = {}
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        """Record streams from their next publish on."""
        self._unsubscribe = self.bus.subscribe(self._on_event)

    async def stop(self) -> None:
        """Close every recording (their files are patched)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = []
        for recorder in list(self.recorders.values()):
            recorder.stop()
            if recorder.task is not None:
                tasks.append(recorder.task)
        if tasks:
            await asyncio.wait(tasks, timeout=10.0)

    def reload(self, config: ServerConfig) -> None:
        """A new ``record_dir`` applies to the next publish (running recordings go on)."""
        self.record_dir = config.record_dir

    def _on_event(self, event: ServerEvent) -> None:
        if event.kind is EventKind.PUBLISH and self.record_dir is not None:
            stream = self.registry.get(event.app, event.name)
            if stream is not None and stream.is_live:
                self.start_recording(stream)

    def start_recording(self, stream: Stream) -> FLVRecorder | None:
        """Record ``stream`` (live) into ``record_dir``; the running recorder if it is
        already recorded; None without a record directory."""
        recorder = self.recorders.get(stream.key)
        if recorder is not None:
            return recorder
        if self.record_dir is None or stream.source is None:
            return None
        source = stream.source
        path = recording_path(self.record_dir, stream.app, stream.name, dt.datetime.now(dt.UTC))

        def ended(recorder: FLVRecorder) -> None:
            if self.recorders.get(stream.key) is recorder:
                del self.recorders[stream.key]
            details: dict[str, Any] = {"path": str(recorder.path), "bytes": recorder.bytes_written}
            kind = EventKind.RECORD_DONE
            if recorder.error is not None:
                kind = EventKind.RECORD_FAILED
                details["error"] = str(recorder.error)
            self.bus.emit(
                ServerEvent(
                    kind=kind,
                    session_id=source.session_id,
                    remote=source.remote,
                    app=stream.app,
                    name=stream.name,
                    details=details,
                )
            )

        recorder = FLVRecorder(stream, path, on_end=ended)
        self.recorders[stream.key] = recorder
        logger.info("%s/%s: recording to %s", stream.app, stream.name, path)
        recorder.start(StartAt.GOP)
        return recorder

    def stop_recording(self, stream: Stream) -> FLVRecorder | None:
        """Stop recording ``stream``; the recorder (its file closes shortly), or None."""
        recorder = self.recorders.pop(stream.key, None)
        if recorder is not None:
            recorder.stop()
        return recorder
