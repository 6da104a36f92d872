"""A recorded file as the source of a stream: video on demand.

:class:`MediaFile` is the index of an FLV (FLV v10.1 Annex E) or MP4 (ISO/IEC 14496-12,
progressive or fragmented: :mod:`aiortmp.media.mp4read`) file: every tag or sample with
its time, place and whether it is a keyframe, plus the track configurations and the
``onMetaData``. Building it and reading media from it block, so both run off the event
loop (a small thread pool). Nothing but headers is read to build it: an FLV file's tag
headers (and configuration tags), an MP4 file's ``moov``/``moof`` boxes.

:class:`FileSource` plays one file into one (private) stream, as nginx-rtmp's ``play``
does:

- from the keyframe at or before the requested start, for the requested duration;
- paced in real time with a lead: the media sent is at most the client's buffer length
  (its Set Buffer Length, capped) ahead of the client's playhead, and nothing more is sent
  while the connection has unsent bytes queued (the client reads slowly);
- ``seek`` (to the keyframe at or before), ``pause`` (sending stops; it goes on, gapless,
  from where it stopped) and the end (the host sends ``NetStream.Play.Complete``; a later
  seek plays again);
- timestamps are the file's own for a play from the start (FFmpeg seeks by them); a play
  with a start position counts from the keyframe it starts at, as Flash Media Server does
  (rtmpdump adds the requested start to what it receives). A seek keeps the play's
  origin, so a player's clock moves by what it skipped.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from aiortmp.errors import AMFError, CodecHeaderError, FLVError, MP4Error
from aiortmp.hub.packet import config_key
from aiortmp.hub.stream import Stream
from aiortmp.media.mp4read import MP4Index, MP4Track, config_tag, frame_tag, metadata_for
from aiortmp.media.samples import Frame, MediaType, TrackConfig, parse_media
from aiortmp.media.tags import AudioKind, VideoKind, classify_audio, classify_video
from aiortmp.protocol import amf0

__all__ = [
    "FileSource",
    "MediaEntry",
    "MediaFile",
    "PlaybackHost",
    "load_media_file",
]

logger = logging.getLogger("aiortmp.vod")

#: File reads of every VOD player (index building and media reads).
_IO = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aiortmp-vod")

_AUDIO = 8
_VIDEO = 9
_DATA = 18
_FLV_TAG_HEADER = 11
#: Script tags larger than this are skipped (an onMetaData keyframe table is far smaller).
_MAX_SCRIPT_BYTES = 1 << 20
#: Payload bytes read in one go for a batch of entries.
_BATCH_BYTES = 256 * 1024
#: Nothing more is sent while the connection has more than this unsent.
_BACKLOG_BYTES = 256 * 1024
#: The lead when the client announced no buffer length, ms.
DEFAULT_LEAD_MS = 1000
#: Longest sleep of the pacing loop (it also checks whether its player left), s.
_TICK_S = 0.25


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaEntry:
    """One tag (FLV) or sample (MP4) of a file, in sending order.

    Attributes:
        type_id: 8 audio, 9 video, 18 data (FLV only).
        timestamp_ms: its (decode) time in the file, ms.
        offset: file position of its payload (FLV tag body, MP4 sample data).
        size_bytes: its payload size.
        keyframe: a video keyframe of the first video track (a seek target).
        cts_ms: the composition offset of an MP4 video sample, ms (FLV tags carry theirs).
        track_index: the MP4 track (-1 for FLV).
        payload: the payload when it was kept in the index (FLV configuration tags).
    """

    type_id: int
    timestamp_ms: int
    offset: int
    size_bytes: int
    keyframe: bool = False
    cts_ms: int = 0
    track_index: int = -1
    payload: bytes | None = None


class MediaFile:
    """The index of one media file (built by :func:`load_media_file`).

    Attributes:
        path: the file.
        format: ``"flv"`` or ``"mp4"``.
        entries: tags/samples in sending order.
        keyframes: indexes into ``entries`` of the seek targets, in time order.
        duration_ms: the file's duration, ms.
        metadata: ``onMetaData`` to send first (the file's own for FLV, made for MP4).
        size_bytes: the file size.
    """

    def __init__(
        self,
        path: Path,
        format: str,
        entries: list[MediaEntry],
        *,
        duration_ms: int,
        metadata: dict[str, object],
        size_bytes: int,
        tracks: Sequence[MP4Track] = (),
        mtime_ns: int = 0,
    ) -> None:
        self.path = path
        self.format = format
        self.entries = entries
        self.duration_ms = duration_ms
        self.metadata = metadata
        self.size_bytes = size_bytes
        self.mtime_ns = mtime_ns
        self.tracks = list(tracks)
        self.keyframes = [i for i, entry in enumerate(entries) if entry.keyframe]
        if not self.keyframes and not any(e.type_id == _VIDEO for e in entries):
            # Audio only: any frame is a place to start.
            self.keyframes = [i for i, e in enumerate(entries) if e.type_id == _AUDIO]
        self._configs = [i for i, e in enumerate(entries) if e.payload is not None]

    def __repr__(self) -> str:
        return f"<MediaFile {self.path} {self.format} {self.duration_ms} ms>"

    # -- positions ------------------------------------------------------------------

    def start_index(self, position_ms: float) -> int:
        """The entry to start at for ``position_ms``: the keyframe at or before it (the
        first keyframe for an earlier position), or ``len(entries)`` for a file with none.
        """
        keyframes = self.keyframes
        if not keyframes:
            return len(self.entries)
        entries = self.entries
        low, high = 0, len(keyframes)
        while low < high:  # the last keyframe at or before the position
            middle = (low + high) // 2
            if entries[keyframes[middle]].timestamp_ms <= position_ms:
                low = middle + 1
            else:
                high = middle
        return keyframes[max(0, low - 1)]

    def configs(self, index: int) -> list[tuple[int, bytes]]:
        """The configuration packets in force at ``entries[index]`` (video first).

        MP4: each track's sequence header; FLV: the newest configuration tag of each
        track before ``index`` (or, when there is none yet, the first one).
        """
        if self.format == "mp4":
            out = []
            for track in sorted(
                (t for t in self.tracks if t.config is not None),
                key=lambda t: t.config is not None and t.config.media is MediaType.AUDIO,
            ):
                assert track.config is not None
                type_id, payload = config_tag(
                    track.config, sample_rate_hz=track.sample_rate_hz, channels=track.channels
                )
                if payload:
                    out.append((type_id, payload))
            return out
        chosen: dict[tuple[int, int, tuple[int, ...]], tuple[int, bytes]] = {}
        for i in self._configs:
            entry = self.entries[i]
            assert entry.payload is not None
            key = config_key(entry.type_id, entry.payload)
            if i < index or key not in chosen:
                chosen[key] = (entry.type_id, entry.payload)
        return sorted(chosen.values(), key=lambda item: item[0] != _VIDEO)

    def track_configs(self) -> list[TrackConfig]:
        """The tracks as muxers want them: each track's first non-empty configuration
        (FFmpeg sends an empty ``av01`` one first); configless codecs by their first
        frame (blocking for FLV: it reads those frames)."""
        if self.format == "mp4":
            return [t.config for t in self.tracks if t.config is not None]
        found: dict[tuple[MediaType, int], TrackConfig] = {}
        for i in self._configs:
            entry = self.entries[i]
            assert entry.payload is not None
            for unit in _units(entry.type_id, entry.timestamp_ms, entry.payload):
                if isinstance(unit, TrackConfig) and unit.record:
                    found.setdefault((unit.media, unit.track_id), unit)
        audio = any(k[0] is MediaType.AUDIO for k in found)
        if not audio:
            first = next((i for i, e in enumerate(self.entries) if e.type_id == _AUDIO), None)
            if first is not None:
                for unit in self.read_units(first, first + 1):
                    if isinstance(unit, Frame):
                        found.setdefault(
                            (unit.media, unit.track_id),
                            TrackConfig(
                                media=unit.media,
                                track_id=unit.track_id,
                                codec=unit.codec,
                                record=b"",
                            ),
                        )
        return sorted(found.values(), key=lambda c: (c.media is MediaType.AUDIO, c.track_id))

    # -- reading (blocking) ---------------------------------------------------------

    def read(self, start: int, end: int) -> list[tuple[int, int, bytes]]:
        """``(type_id, timestamp_ms, payload)`` of ``entries[start:end]`` (blocking).

        Raises:
            OSError: the file cannot be read.
        """
        entries = self.entries[start:end]
        data = _read_ranges(self.path, [(e.offset, e.size_bytes) for e in entries])
        out = []
        for entry, payload in zip(entries, data, strict=True):
            if len(payload) < entry.size_bytes:
                break  # the file shrank
            if self.format == "mp4":
                track = self.tracks[entry.track_index]
                sample_frame = Frame(
                    media=MediaType.VIDEO if entry.type_id == _VIDEO else MediaType.AUDIO,
                    track_id=track.config.track_id if track.config else 0,
                    codec=track.config.codec if track.config else "",
                    dts_ms=entry.timestamp_ms,
                    cts_ms=entry.cts_ms,
                    keyframe=entry.keyframe or entry.type_id == _AUDIO,
                    data=payload,
                )
                try:
                    type_id, body = frame_tag(
                        sample_frame, sample_rate_hz=track.sample_rate_hz, channels=track.channels
                    )
                except MP4Error:
                    continue
                out.append((type_id, entry.timestamp_ms, body))
            else:
                out.append((entry.type_id, entry.timestamp_ms, payload))
        return out

    def read_units(self, start: int, end: int) -> list[TrackConfig | Frame]:
        """The access units of ``entries[start:end]`` as a stream would give them to a
        muxer (blocking; FLV data tags yield nothing).

        Raises:
            OSError: the file cannot be read.
        """
        entries = self.entries[start:end]
        data = _read_ranges(self.path, [(e.offset, e.size_bytes) for e in entries])
        units: list[TrackConfig | Frame] = []
        for entry, payload in zip(entries, data, strict=True):
            if len(payload) < entry.size_bytes:
                break
            if self.format == "mp4":
                track = self.tracks[entry.track_index]
                config = track.config
                if config is None:
                    continue
                units.append(
                    Frame(
                        media=config.media,
                        track_id=config.track_id,
                        codec=config.codec,
                        dts_ms=entry.timestamp_ms,
                        cts_ms=entry.cts_ms,
                        keyframe=entry.keyframe or config.media is MediaType.AUDIO,
                        data=payload,
                    )
                )
            else:
                units.extend(_units(entry.type_id, entry.timestamp_ms, payload))
        return units


def _units(type_id: int, timestamp_ms: int, payload: bytes) -> list[TrackConfig | Frame]:
    try:
        return parse_media(type_id, timestamp_ms, payload)
    except CodecHeaderError:
        return []


def _read_ranges(path: Path, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The bytes of each ``(offset, size)``; neighbouring ranges are read in one go."""
    out: list[bytes] = [b""] * len(ranges)
    if not ranges:
        return out
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    with open(path, "rb") as file:
        run: list[int] = []
        run_start = run_end = 0
        for i in [*order, -1]:
            if i >= 0:
                offset, size = ranges[i]
                if run and offset >= run_start and offset - run_end <= 64 * 1024:
                    run.append(i)
                    run_end = max(run_end, offset + size)
                    continue
            if run:
                file.seek(run_start)
                block = file.read(run_end - run_start)
                for j in run:
                    offset, size = ranges[j]
                    out[j] = block[offset - run_start : offset - run_start + size]
            if i >= 0:
                run = [i]
                run_start, run_end = ranges[i][0], ranges[i][0] + ranges[i][1]
    return out


# ------------------------------------------------------------------------- indexing


def _index_flv(path: Path, file: IO[bytes], size: int) -> MediaFile:
    """FLV v10.1 Annex E: the 9-byte header, PreviousTagSize0, then tags (E.4.1: type,
    DataSize UI24, Timestamp UI24 + TimestampExtended UI8, StreamID UI24)."""
    header = file.read(9)
    if len(header) < 9 or header[:3] != b"FLV":
        raise FLVError(f"{path.name} is not an FLV file")
    offset = int.from_bytes(header[5:9], "big") + 4
    entries: list[MediaEntry] = []
    metadata: dict[str, object] | None = None
    last_ms = 0
    while offset + _FLV_TAG_HEADER <= size:
        file.seek(offset)
        head = file.read(_FLV_TAG_HEADER + 24)
        if len(head) < _FLV_TAG_HEADER:
            break
        tag_type = head[0] & 0x1F
        encrypted = head[0] & 0x20
        data_size = int.from_bytes(head[1:4], "big")
        timestamp = int.from_bytes(head[4:7], "big") | head[7] << 24
        body = offset + _FLV_TAG_HEADER
        if body + data_size > size:
            break  # cut short by a crash: every whole tag is kept
        prefix = head[_FLV_TAG_HEADER : _FLV_TAG_HEADER + data_size]
        offset = body + data_size + 4
        if encrypted or data_size == 0 and tag_type != _AUDIO:
            continue
        if tag_type == _VIDEO:
            kind = classify_video(prefix)
            if kind in (VideoKind.SEQUENCE_HEADER, VideoKind.METADATA):
                file.seek(body)
                entries.append(
                    MediaEntry(
                        type_id=_VIDEO,
                        timestamp_ms=timestamp,
                        offset=body,
                        size_bytes=data_size,
                        payload=file.read(data_size),
                    )
                )
            elif kind in (VideoKind.KEYFRAME, VideoKind.INTER):
                entries.append(
                    MediaEntry(
                        type_id=_VIDEO,
                        timestamp_ms=timestamp,
                        offset=body,
                        size_bytes=data_size,
                        keyframe=kind is VideoKind.KEYFRAME,
                    )
                )
                last_ms = max(last_ms, timestamp)
        elif tag_type == _AUDIO:
            if not data_size:
                continue
            kind_a = classify_audio(prefix)
            if kind_a in (AudioKind.SEQUENCE_HEADER, AudioKind.MULTICHANNEL_CONFIG):
                file.seek(body)
                entries.append(
                    MediaEntry(
                        type_id=_AUDIO,
                        timestamp_ms=timestamp,
                        offset=body,
                        size_bytes=data_size,
                        payload=file.read(data_size),
                    )
                )
            elif kind_a is AudioKind.FRAME:
                entries.append(
                    MediaEntry(
                        type_id=_AUDIO, timestamp_ms=timestamp, offset=body, size_bytes=data_size
                    )
                )
                last_ms = max(last_ms, timestamp)
        elif tag_type == _DATA and data_size <= _MAX_SCRIPT_BYTES:
            file.seek(body)
            script = file.read(data_size)
            if metadata is None and script.startswith(b"\x02\x00\x0aonMetaData"):
                metadata = _decode_metadata(script)
                continue
            entries.append(
                MediaEntry(type_id=_DATA, timestamp_ms=timestamp, offset=body, size_bytes=data_size)
            )
    entries.sort(key=lambda e: e.timestamp_ms)  # stable: tag order within a millisecond
    first = next((e.timestamp_ms for e in entries if e.payload is None), 0)
    metadata = metadata or {}
    duration_ms = max(0, last_ms - first)
    value = metadata.get("duration")
    if isinstance(value, int | float) and value > 0:
        duration_ms = max(duration_ms, round(value * 1000))
    metadata["duration"] = duration_ms / 1000
    return MediaFile(
        path, "flv", entries, duration_ms=duration_ms, metadata=metadata, size_bytes=size
    )


def _decode_metadata(script: bytes) -> dict[str, object]:
    try:
        values = amf0.decode_all(script)
    except AMFError:
        return {}
    if len(values) >= 2 and isinstance(values[1], dict):
        return dict(values[1])
    return {}


def _index_mp4(path: Path, file: IO[bytes], size: int) -> MediaFile:
    index = MP4Index(file_size=size)
    while not index.done:
        file.seek(index.position)
        data = file.read(max(index.read_size, 16))
        if not data:
            index.feed_eof()
        else:
            index.feed(data)
    tracks = index.tracks
    video = next(
        (i for i, t in enumerate(tracks) if t.config and t.config.media is MediaType.VIDEO), None
    )
    entries = []
    for sample in index.samples:
        config = tracks[sample.track_index].config
        assert config is not None
        entry = MediaEntry(
            type_id=_VIDEO if config.media is MediaType.VIDEO else _AUDIO,
            timestamp_ms=sample.dts_ms,
            offset=sample.offset,
            size_bytes=sample.size_bytes,
            keyframe=sample.sync and sample.track_index == video,
            cts_ms=sample.cts_ms,
            track_index=sample.track_index,
        )
        entries.append(entry)
    duration_ms = index.duration_ms
    return MediaFile(
        path,
        "mp4",
        entries,
        duration_ms=duration_ms,
        metadata=metadata_for(tracks, duration_ms),
        size_bytes=size,
        tracks=tracks,
    )


def load_media_file(path: Path) -> MediaFile:
    """Index an FLV or MP4 file (blocking: call it off the event loop).

    The format is recognized by the file's first bytes, not its name.

    Raises:
        OSError: the file cannot be read.
        FLVError / MP4Error: it is neither a readable FLV nor MP4 file.
    """
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        head = file.read(12)
        file.seek(0)
        if head[:3] == b"FLV":
            media = _index_flv(path, file, info.st_size)
        elif head[4:8] in (b"ftyp", b"moov", b"styp", b"free", b"skip"):
            media = _index_mp4(path, file, info.st_size)
        else:
            raise MP4Error(f"{path.name} is neither an FLV nor an MP4 file")
    media.mtime_ns = info.st_mtime_ns
    return media


# --------------------------------------------------------------------------- source


class PlaybackHost(Protocol):
    """What a :class:`FileSource` needs of the player it feeds."""

    @property
    def closed(self) -> bool:
        """The player left (closeStream, deleteStream, disconnect): the source ends."""
        ...

    def buffer_length_ms(self) -> int | None:
        """The client's buffer length (Set Buffer Length), ms, or None."""

    def backlog_bytes(self) -> int:
        """Bytes written to the player's connection and not yet sent."""
        ...

    def complete(self, source: FileSource) -> None:
        """Everything was sent: ``NetStream.Play.Complete``."""


class _State(enum.Enum):
    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"
    STOPPED = "stopped"


class FileSource:
    """Plays a :class:`MediaFile` into ``stream`` (see the module docstring).

    Args:
        stream: the stream it feeds (private to one player).
        media: the file.
        host: the player's side (buffer length, backlog, completion).
        session_id: the server-wide id of the playing session.
        start_ms: where to start (ms; the keyframe at or before; negative: 0).
        duration_ms: how much to play from ``start_ms`` (ms; negative: to the end; 0:
            the one keyframe).
        max_lead_ms: the most media sent ahead of real time, whatever the buffer length.

    Attributes:
        kind: ``"file"``.
        remote: the file's path.
        position_ms: the time of the next entry to send.
        sent_entries: entries sent so far.
    """

    kind = "file"

    def __init__(
        self,
        stream: Stream,
        media: MediaFile,
        host: PlaybackHost,
        *,
        session_id: int,
        start_ms: float = 0.0,
        duration_ms: float = -1.0,
        max_lead_ms: int = 30_000,
    ) -> None:
        self.stream = stream
        self.media = media
        self.host = host
        self.session_id = session_id
        self.remote = str(media.path)
        self.max_lead_ms = max_lead_ms
        self.sent_entries = 0
        self._state = _State.PLAYING
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._generation = 0
        self._loop = asyncio.get_running_loop()
        self._index = 0
        self._end_ms = float("inf")
        self._base_wall = 0.0
        self._base_media = 0.0
        self._first_ms = 0
        self._paused_at_ms = 0.0
        self._configs_due = True
        self._set_range(max(0.0, start_ms), duration_ms)
        #: File time sent as timestamp 0: the starting keyframe of a play with a start.
        self.origin_ms = self._first_ms if start_ms > 0 else 0

    def __repr__(self) -> str:
        return f"<FileSource {self.media.path} {self._state.value} at {self.position_ms} ms>"

    @property
    def position_ms(self) -> int:
        """The time of the next entry to send (the file's end once all are sent)."""
        entries = self.media.entries
        if self._index < len(entries):
            return entries[self._index].timestamp_ms
        return self.media.duration_ms

    @property
    def start_position_ms(self) -> int:
        """Where the current run started (the keyframe played first, ms)."""
        return self._first_ms

    @property
    def ended(self) -> bool:
        """Everything up to the end (or the requested duration) was sent."""
        return self._state is _State.ENDED

    def _set_range(self, start_ms: float, duration_ms: float) -> int:
        media = self.media
        self._index = media.start_index(start_ms)
        self._end_ms = float("inf")
        if duration_ms == 0:
            self._end_ms = self.position_ms + 0.5  # "plays the single frame"
        elif duration_ms > 0:
            self._end_ms = start_ms + duration_ms
        self._first_ms = self.position_ms
        self._restart_clock(self.position_ms)
        self._configs_due = True
        return self.position_ms

    def _restart_clock(self, media_ms: float) -> None:
        self._base_wall = self._loop.time()
        self._base_media = media_ms

    def _playhead_ms(self) -> float:
        return self._base_media + (self._loop.time() - self._base_wall) * 1000

    # -- control (event loop) -------------------------------------------------------

    def start(self) -> None:
        """Attach to the stream and start sending.

        Raises:
            StreamBusy: the stream has a source already.
        """
        stream = self.stream
        stream.attach(self)
        if self.media.metadata:
            stream.ingest_metadata(dict(self.media.metadata), self.position_ms - self.origin_ms)
        stream.commit()
        self._task = self._loop.create_task(self._run(), name=f"vod {self.media.path.name}")

    def stop(self, reason: str) -> None:
        """End playing (the player left, the server stops): detach from the stream."""
        if self._state is _State.STOPPED:
            return
        self._state = _State.STOPPED
        self._wake.set()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self.stream.detach(self)
        logger.debug("%s stopped: %s", self, reason)

    def pause(self) -> None:
        """Stop sending; :meth:`resume` goes on from the next entry."""
        if self._state is _State.PLAYING:
            self._paused_at_ms = min(self._playhead_ms(), float(self.position_ms))
            self._state = _State.PAUSED

    def resume(self) -> None:
        """Send again from where sending stopped, the client's playhead where it paused."""
        if self._state is _State.PAUSED:
            self._state = _State.PLAYING
            self._restart_clock(self._paused_at_ms)
            self._wake.set()

    def seek(self, position_ms: float) -> int:
        """Go to the keyframe at or before ``position_ms`` (plays again after the end).

        Returns:
            Where playing goes on, ms (the keyframe's time).
        """
        self._generation += 1
        position = self._set_range(max(0.0, position_ms), -1.0)
        if position < self.origin_ms:
            self.origin_ms = position  # timestamps are never negative: count from here
        if self._state is _State.ENDED:
            self._state = _State.PLAYING
        if self._state is _State.PAUSED:
            self._paused_at_ms = position
        self._wake.set()
        return position

    # -- the task -------------------------------------------------------------------

    def _playing(self) -> bool:
        return self._state is _State.PLAYING

    def _lead_ms(self) -> float:
        announced = self.host.buffer_length_ms()
        lead = DEFAULT_LEAD_MS if announced is None else announced
        return float(min(max(lead, 100), self.max_lead_ms))

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        # asyncio.timeout, not wait_for: Python 3.11's wait_for may swallow a cancellation
        # that comes as the event is set.
        try:
            async with asyncio.timeout(max(0.0, min(seconds, _TICK_S))):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _run(self) -> None:
        try:
            await self._play()
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            logger.warning("%s: cannot read %s: %s", self.stream.name, self.media.path, exc)
        except Exception:
            logger.exception("VOD %s failed", self.media.path)
        finally:
            if self._state is not _State.STOPPED:
                self.stop("ended")

    async def _play(self) -> None:
        media = self.media
        entries = media.entries
        stream = self.stream
        while self._state is not _State.STOPPED:
            if self.host.closed:
                return
            if self._state is not _State.PLAYING:
                await self._sleep(_TICK_S)
                continue
            if self._configs_due:
                self._configs_due = False
                at = self.position_ms - self.origin_ms
                for type_id, payload in media.configs(self._index):
                    stream.ingest(type_id, at, payload)
            if self._index >= len(entries) or self.position_ms >= self._end_ms:
                stream.commit()
                self._state = _State.ENDED
                self.host.complete(self)
                continue
            if self.host.backlog_bytes() > _BACKLOG_BYTES:
                await self._sleep(0.02)  # the client reads slowly: do not pile up
                continue
            horizon = self._playhead_ms() + self._lead_ms()
            due = entries[self._index].timestamp_ms
            if due > horizon:
                stream.commit()
                await self._sleep((due - horizon) / 1000)
                continue
            start = end = self._index
            size = 0
            while (
                end < len(entries)
                and entries[end].timestamp_ms <= horizon
                and entries[end].timestamp_ms < self._end_ms
                and size < _BATCH_BYTES
            ):
                size += entries[end].size_bytes
                end += 1
            generation = self._generation
            tags = await self._loop.run_in_executor(_IO, media.read, start, end)
            if generation != self._generation or not self._playing():
                continue  # a seek, a pause or the end came meanwhile
            origin = self.origin_ms
            for type_id, timestamp_ms, payload in tags:
                if type_id == _DATA:
                    stream.ingest_data(type_id, timestamp_ms - origin, payload)
                else:
                    stream.ingest(type_id, timestamp_ms - origin, payload)
            stream.commit()
            self.sent_entries += end - start
            self._index = end
