"""FLV recording of live streams.

Each published stream is written to ``DIR/<app>/<stream>-<UTC yyyymmdd-HHMMSS>.flv``: an
FLV file (FLV v10.1 Annex E) with onMetaData and the sequence headers first, timestamps
rebased to start at 0, closed (duration and size patched) when the publisher stops, when its
session dies on bad input, and on server shutdown.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from aiortmp.media.flv import FLVWriter
from aiortmp.protocol.messages import MessageType

from .stream import LiveStream, Packet, PacketKind

__all__ = ["Recorder", "recording_path"]

logger = logging.getLogger("aiortmp.record")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


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


class Recorder:
    """A :class:`~aiortmp.server.stream.Sink` that writes the stream to an FLV file.

    Args:
        stream: the live stream to record.
        directory: the record directory root.
        on_close: called once with the recorder after the file is closed.

    Raises:
        OSError: the file cannot be created.
    """

    def __init__(
        self,
        stream: LiveStream,
        directory: Path,
        *,
        on_close: Callable[[Recorder], None] | None = None,
    ) -> None:
        self.stream = stream
        self._on_close = on_close
        self.path = recording_path(directory, stream.app, stream.name, dt.datetime.now(dt.UTC))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(self.path, "wb", buffering=256 * 1024)  # noqa: SIM115
        self._writer = FLVWriter(self._file, has_audio=True, has_video=True)
        self._base_ms: int | None = None
        self._wrote_metadata = False
        self._wait_keyframe = False
        self.closed = False
        self.bytes_written = 0
        # Started mid-stream: write what a decoder needs first, then wait for a keyframe.
        if stream.metadata is not None:
            self._write_metadata(stream.metadata)
        headers = sorted(stream.headers.values(), key=lambda p: p.kind)
        for packet in headers:
            self._write(packet, 0)
        if stream.gop or stream.video_frames_in:
            self._wait_keyframe = True
        logger.info("%s/%s: recording to %s", stream.app, stream.name, self.path)

    def _write_metadata(self, metadata: dict[str, object]) -> None:
        self._writer.write_metadata(metadata)
        self._wrote_metadata = True

    def _write(self, packet: Packet, timestamp_ms: int) -> None:
        self._writer.write_tag(packet.type_id, timestamp_ms, packet.payload)
        self.bytes_written += len(packet.payload) + 15

    def on_packets(self, packets: Sequence[Packet]) -> None:
        """Write a batch (timestamps rebased to the first media packet)."""
        if self.closed:
            return
        for packet in packets:
            kind = packet.kind
            if kind is PacketKind.DATA:
                if packet is self.stream.metadata_packet:
                    if not self._wrote_metadata and self._base_ms is None:
                        self._write_metadata(self.stream.metadata or {})
                    continue
                if packet.type_id == MessageType.DATA_AMF0:
                    self._write(packet, self._rebase(packet.timestamp_ms))
                continue
            if self._wait_keyframe:
                if kind is not PacketKind.KEYFRAME:
                    if kind in (PacketKind.VIDEO_HEADER, PacketKind.AUDIO_HEADER):
                        self._write(packet, self._rebase(packet.timestamp_ms))
                    continue
                self._wait_keyframe = False
            self._write(packet, self._rebase(packet.timestamp_ms))

    def _rebase(self, timestamp_ms: int) -> int:
        if self._base_ms is None:
            self._base_ms = timestamp_ms
        # Data messages sent before the first media packet may carry an earlier timestamp.
        return max(0, timestamp_ms - self._base_ms)

    def on_stop(self) -> None:
        """The publisher left: close the file."""
        self.close()

    def close(self) -> None:
        """Flush and close the file, patching duration and size (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._writer.close()
        finally:
            self._file.close()
        logger.info(
            "%s/%s: recording closed: %s (%d bytes)",
            self.stream.app,
            self.stream.name,
            self.path,
            self.bytes_written,
        )
        if self._on_close is not None:
            self._on_close(self)
