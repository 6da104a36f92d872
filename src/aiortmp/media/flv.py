"""FLV files: header, tags, a reader, an incremental parser and a writer (FLV v10.1 Annex E).

An FLV file is a 9-byte header (E.2), then ``PreviousTagSize0`` (always 0), then tags, each
followed by its ``PreviousTagSize`` (E.3). A tag is an 11-byte header (E.4.1) and a body:
AUDIODATA (8), VIDEODATA (9) or SCRIPTDATA (18), which are exactly the payloads of RTMP
messages of the same type ids (see :mod:`aiortmp.media.tags`).

* :class:`FLVParser` is sans-I/O: ``feed(data)`` returns the tags completed by ``data``, so
  the HTTP-FLV client can use it as bytes arrive.
* :class:`FLVReader` iterates over a binary file with that parser. A file cut short (a
  recorder killed mid-write) yields every whole tag and then sets ``truncated``.
* :class:`FLVWriter` writes tags and an ``onMetaData`` script tag whose ``duration`` and
  ``filesize`` it patches in place on :meth:`FLVWriter.close`, as FFmpeg's flv muxer does,
  so players and ffprobe see the real duration.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

from aiortmp.media.errors import CodecHeaderError, FLVError
from aiortmp.media.tags import (
    AudioKind,
    VideoKind,
    classify_audio,
    classify_video,
    parse_video_tag,
)
from aiortmp.protocol import amf0
from aiortmp.protocol.errors import LocalProtocolError

__all__ = [
    "DEFAULT_MAX_TAG_SIZE",
    "FLVHeader",
    "FLVParser",
    "FLVReader",
    "FLVTag",
    "FLVWriter",
    "TagType",
    "encode_header",
    "encode_tag",
]

#: Default limit on one tag's DataSize, in bytes (the field itself allows 16 MiB - 1).
DEFAULT_MAX_TAG_SIZE = 16 * 1024 * 1024

_SIGNATURE = b"FLV"
_HEADER_SIZE = 9  # E.2: "DataOffset ... 9 for FLV version 1"
_TAG_HEADER_SIZE = 11
_PREVIOUS_TAG_SIZE = 4
_MAX_DATA_SIZE = 0xFFFFFF  # DataSize is UI24
_MAX_TIMESTAMP = 0xFFFFFFFF  # Timestamp UI24 + TimestampExtended UI8

_FLAG_AUDIO = 0x04
_FLAG_VIDEO = 0x01
_FILTER_BIT = 0x20

# E.4.1 FLVTAG header: TagType (with Reserved and Filter bits) + DataSize, then Timestamp
# (lower 24 bits) + TimestampExtended (upper 8 bits), then StreamID (UI24).
_TAG_HEADER = struct.Struct(">IIHB")
_UI32 = struct.Struct(">I")
_DOUBLE = struct.Struct(">d")


class TagType(enum.IntEnum):
    """FLV ``TagType`` (FLV v10.1 E.4.1), equal to the RTMP message type id."""

    AUDIO = 8
    VIDEO = 9
    SCRIPT = 18


@dataclass(frozen=True, kw_only=True, slots=True)
class FLVHeader:
    """The FLV file header (FLV v10.1 E.2).

    Attributes:
        version: ``Version`` (1 for every FLV file in existence).
        has_audio: ``TypeFlagsAudio``: audio tags are present.
        has_video: ``TypeFlagsVideo``: video tags are present.
    """

    version: int = 1
    has_audio: bool
    has_video: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class FLVTag:
    """One FLV tag (FLV v10.1 E.4.1).

    Attributes:
        tag_type: ``TagType`` (a :class:`TagType` value; 0–31 fit the field).
        timestamp_ms: ``Timestamp`` with ``TimestampExtended`` as its upper 8 bits:
            milliseconds since the first tag, 0 to 2**32 - 1.
        payload: the tag body (AUDIODATA, VIDEODATA or SCRIPTDATA), ``DataSize`` bytes.
        stream_id: ``StreamID`` ("Always 0"; kept as read).
    """

    tag_type: int
    timestamp_ms: int
    payload: bytes
    stream_id: int = 0


def encode_header(h: FLVHeader) -> bytes:
    """Encode the FLV header followed by ``PreviousTagSize0``.

    FLV v10.1 E.2 (header) and E.3 ("PreviousTagSize0 UI32 Always 0").

    Args:
        h: the header.

    Returns:
        13 bytes: the 9-byte header and a zero ``PreviousTagSize0``.

    Raises:
        LocalProtocolError: ``version`` does not fit in UI8.
    """
    if not 0 <= h.version <= 0xFF:
        raise LocalProtocolError(f"FLV version {h.version} does not fit in UI8")
    flags = (_FLAG_AUDIO if h.has_audio else 0) | (_FLAG_VIDEO if h.has_video else 0)
    return _SIGNATURE + bytes((h.version, flags)) + _UI32.pack(_HEADER_SIZE) + bytes(4)


def encode_tag(tag: FLVTag) -> bytes:
    """Encode one tag and the ``PreviousTagSize`` that follows it.

    FLV v10.1 E.4.1: the 32-bit timestamp is split into ``Timestamp`` (lower 24 bits) and
    ``TimestampExtended`` ("the upper 8 bits"); E.3: ``PreviousTagSize`` is "Size of
    previous tag, including its header, in bytes", i.e. 11 + DataSize.

    Args:
        tag: the tag.

    Returns:
        11 + len(payload) + 4 bytes.

    Raises:
        LocalProtocolError: ``tag_type`` does not fit in 5 bits, ``timestamp_ms`` in 32 bits,
            ``stream_id`` in 24 bits or the payload in ``DataSize`` (UI24).
    """
    size = len(tag.payload)
    _check_tag(tag.tag_type, tag.timestamp_ms, size)
    if not 0 <= tag.stream_id <= 0xFFFFFF:
        raise LocalProtocolError(f"StreamID {tag.stream_id} does not fit in UI24")
    return b"".join(
        (
            _pack_tag_header(tag.tag_type, size, tag.timestamp_ms, tag.stream_id),
            tag.payload,
            _UI32.pack(_TAG_HEADER_SIZE + size),
        )
    )


def _check_tag(tag_type: int, timestamp_ms: int, size: int) -> None:
    if not 0 <= tag_type <= 0x1F:
        raise LocalProtocolError(f"TagType {tag_type} does not fit in UB[5]")
    if not 0 <= timestamp_ms <= _MAX_TIMESTAMP:
        raise LocalProtocolError(f"timestamp {timestamp_ms} ms does not fit in 32 bits")
    if size > _MAX_DATA_SIZE:
        raise LocalProtocolError(f"a {size}-byte payload does not fit in DataSize (UI24)")


def _pack_tag_header(tag_type: int, size: int, timestamp_ms: int, stream_id: int) -> bytes:
    return _TAG_HEADER.pack(
        tag_type << 24 | size,
        (timestamp_ms & 0xFFFFFF) << 8 | timestamp_ms >> 24,
        stream_id >> 8,
        stream_id & 0xFF,
    )


class _State(enum.Enum):
    HEADER = enum.auto()
    HEADER_PADDING = enum.auto()
    PREVIOUS_TAG_SIZE = enum.auto()
    TAG = enum.auto()
    TAG_BODY = enum.auto()


class FLVParser:
    """Incremental, sans-I/O FLV parser: feed bytes, get the tags they complete.

    FLV v10.1 E.2 (header), E.3 (body), E.4.1 (tags). ``PreviousTagSize`` values are read
    and not checked: FFmpeg ignores them too, and some muxers write them wrong, while
    ``DataSize`` alone delimits the tags.

    Args:
        max_tag_size: the largest ``DataSize`` accepted, in bytes; a larger tag raises
            :class:`FLVError` before anything is buffered for it.
    """

    def __init__(self, *, max_tag_size: int = DEFAULT_MAX_TAG_SIZE) -> None:
        self._max_tag_size = max_tag_size
        self._buffer = bytearray()
        self._state = _State.HEADER
        self._needed = _HEADER_SIZE
        self._header: FLVHeader | None = None
        self._tag_type = 0
        self._tag_timestamp_ms = 0
        self._tag_stream_id = 0
        self._tag_size = 0

    @property
    def header(self) -> FLVHeader | None:
        """The file header, once its 9 bytes have been fed."""
        return self._header

    @property
    def at_tag_boundary(self) -> bool:
        """True if the input ends cleanly here: after a tag's ``PreviousTagSize`` (or the
        header's ``PreviousTagSize0``), with nothing buffered. Use it at end of input to
        tell a complete file from a truncated one."""
        return self._state is _State.TAG and not self._buffer

    @property
    def buffered_bytes(self) -> int:
        """Bytes fed but not yet part of a returned tag."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[FLVTag]:
        """Consume ``data`` and return the tags it completes, in file order.

        Args:
            data: the next bytes of the FLV stream (any split is fine).

        Returns:
            The completed tags (possibly none).

        Raises:
            FLVError: bad signature, version other than 1, ``DataOffset`` below 9, a tag
                with the ``Filter`` bit set (encrypted, E.4.1), or a ``DataSize`` over
                ``max_tag_size``. The parser is unusable afterwards.
        """
        buf = self._buffer
        buf += data
        if self._state is _State.HEADER:
            # Fail fast on non-FLV input instead of waiting for 9 bytes.
            prefix = bytes(buf[:3])
            if prefix != _SIGNATURE[: len(prefix)]:
                raise FLVError(f"bad FLV signature {prefix!r}")
        tags: list[FLVTag] = []
        pos = 0
        end = len(buf)
        while end - pos >= self._needed:
            state = self._state
            if state is _State.TAG_BODY:
                size = self._tag_size
                tags.append(
                    FLVTag(
                        tag_type=self._tag_type,
                        timestamp_ms=self._tag_timestamp_ms,
                        payload=bytes(buf[pos : pos + size]),
                        stream_id=self._tag_stream_id,
                    )
                )
                pos += size
                self._state = _State.PREVIOUS_TAG_SIZE
                self._needed = _PREVIOUS_TAG_SIZE
            elif state is _State.TAG:
                self._read_tag_header(buf, pos)
                pos += _TAG_HEADER_SIZE
                self._state = _State.TAG_BODY
                self._needed = self._tag_size
            elif state is _State.PREVIOUS_TAG_SIZE:
                pos += _PREVIOUS_TAG_SIZE
                self._state = _State.TAG
                self._needed = _TAG_HEADER_SIZE
            elif state is _State.HEADER:
                padding = self._read_header(buf, pos)
                pos += _HEADER_SIZE
                self._state = _State.HEADER_PADDING
                self._needed = padding
            else:  # HEADER_PADDING: "DataOffset" beyond the 9 bytes we know
                pos += self._needed
                self._state = _State.PREVIOUS_TAG_SIZE
                self._needed = _PREVIOUS_TAG_SIZE
        del buf[:pos]
        return tags

    def _read_header(self, buf: bytearray, pos: int) -> int:
        """Parse the 9-byte header at ``pos``; return how many extra header bytes follow."""
        if buf[pos : pos + 3] != _SIGNATURE:
            raise FLVError(f"bad FLV signature {bytes(buf[pos : pos + 3])!r}")
        version = buf[pos + 3]
        if version != 1:
            raise FLVError(f"unsupported FLV version {version}")
        flags = buf[pos + 4]
        (data_offset,) = _UI32.unpack_from(buf, pos + 5)
        # E.2: "DataOffset: The length of this header in bytes" -- room for future fields,
        # which are skipped. Reserved flag bits are ignored, as FFmpeg does.
        if data_offset < _HEADER_SIZE:
            raise FLVError(f"FLV DataOffset {data_offset} is shorter than the header")
        if data_offset - _HEADER_SIZE > self._max_tag_size:
            raise FLVError(f"FLV DataOffset {data_offset} exceeds max_tag_size")
        self._header = FLVHeader(
            version=version,
            has_audio=bool(flags & _FLAG_AUDIO),
            has_video=bool(flags & _FLAG_VIDEO),
        )
        return int(data_offset) - _HEADER_SIZE

    def _read_tag_header(self, buf: bytearray, pos: int) -> None:
        type_size, timestamp, stream_hi, stream_lo = _TAG_HEADER.unpack_from(buf, pos)
        first = type_size >> 24
        if first & _FILTER_BIT:
            # E.4.1: "Filter ... 1 = pre-processing (such as decryption) of the packet is
            # required before it can be rendered": encrypted FLV is not supported.
            raise FLVError(f"FLV tag at timestamp {timestamp >> 8} has the Filter bit set")
        size = type_size & 0xFFFFFF
        if size > self._max_tag_size:
            raise FLVError(f"FLV tag of {size} bytes exceeds max_tag_size {self._max_tag_size}")
        self._tag_type = first & 0x1F  # the two Reserved bits "Reserved for FMS, should be 0"
        self._tag_size = size
        self._tag_timestamp_ms = (timestamp >> 8) | (timestamp & 0xFF) << 24
        self._tag_stream_id = stream_hi << 8 | stream_lo


class FLVReader:
    """Read an FLV file: ``header`` at once, then the tags by iteration.

    FLV v10.1 Annex E. A file that ends inside a tag (or misses its final
    ``PreviousTagSize``) is still read: iteration yields every complete tag, then stops and
    sets :attr:`truncated`. Iterating a second time continues where the first stopped.

    Args:
        fileobj: a binary file object opened for reading (only ``read`` is used).
        max_tag_size: the largest ``DataSize`` accepted, in bytes.

    Raises:
        FLVError: the header is missing, truncated, or invalid (signature, version).
    """

    _READ_SIZE = 64 * 1024

    def __init__(self, fileobj: IO[bytes], *, max_tag_size: int = DEFAULT_MAX_TAG_SIZE) -> None:
        self._file = fileobj
        self._parser = FLVParser(max_tag_size=max_tag_size)
        self._pending: list[FLVTag] = []
        self._eof = False
        #: True once iteration has hit end of file in the middle of a tag.
        self.truncated = False
        while self._parser.header is None:
            chunk = fileobj.read(self._READ_SIZE)
            if not chunk:
                raise FLVError("truncated FLV header")
            self._pending = self._parser.feed(chunk)
        self._header: FLVHeader = self._parser.header

    @property
    def header(self) -> FLVHeader:
        """The file header (FLV v10.1 E.2)."""
        return self._header

    def __iter__(self) -> Iterator[FLVTag]:
        """Yield the tags in file order.

        Raises:
            FLVError: a tag has the Filter bit set or exceeds ``max_tag_size``.
        """
        while True:
            pending, self._pending = self._pending, []
            yield from pending
            if self._eof:
                return
            chunk = self._file.read(self._READ_SIZE)
            if not chunk:
                self._eof = True
                self.truncated = not self._parser.at_tag_boundary
                return
            self._pending = self._parser.feed(chunk)


class FLVWriter:
    """Write an FLV file: header at once, then script/audio/video tags.

    FLV v10.1 Annex E. :meth:`write_metadata` writes an ``onMetaData`` script tag (E.4.4:
    the AMF0 string "onMetaData" then an ECMA array). The first one written reserves
    ``duration`` and ``filesize`` as AMF0 numbers (doubles) at the front of the array, and
    :meth:`close` overwrites them with the real values if the file is seekable, as FFmpeg's
    flv muxer does.

    The duration is the span from the first audio/video tag's timestamp to the end of the
    last presented frame: each coded frame's presentation time (timestamp plus the video
    composition time) plus that stream's last timestamp step, taken as the frame duration.

    Args:
        fileobj: a binary file object opened for writing; if it is seekable, the metadata
            is patched on close. It is not closed by :meth:`close`.
        has_audio: ``TypeFlagsAudio`` of the header.
        has_video: ``TypeFlagsVideo`` of the header.
    """

    def __init__(
        self, fileobj: IO[bytes], *, has_audio: bool = True, has_video: bool = True
    ) -> None:
        self._file = fileobj
        self._start: int | None = None
        try:
            if fileobj.seekable():
                self._start = fileobj.tell()
        except (AttributeError, OSError):
            self._start = None
        self._closed = False
        self._size = 0
        self._patch_offsets: tuple[int, int] | None = None
        self._first_ms: int | None = None
        self._end_ms = 0
        self._last_dts: dict[int, int] = {}
        self._frame_ms: dict[int, int] = {}
        self._write(encode_header(FLVHeader(has_audio=has_audio, has_video=has_video)))

    @property
    def duration_s(self) -> float:
        """The duration so far in seconds (what :meth:`close` writes into ``duration``)."""
        if self._first_ms is None:
            return 0.0
        return max(0, self._end_ms - self._first_ms) / 1000.0

    @property
    def size_bytes(self) -> int:
        """Bytes written so far (what :meth:`close` writes into ``filesize``)."""
        return self._size

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._size += len(data)

    def _check_open(self) -> None:
        if self._closed:
            raise LocalProtocolError("FLVWriter is closed")

    def write_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Write an ``onMetaData`` script tag at timestamp 0.

        E-RTMP v2 "Enhancing onMetaData": "the item within the ScriptTagBody MUST
        encapsulate the method name onMetaData, along with a single argument of type ECMA
        array". ``duration`` (seconds) and ``filesize`` (bytes) are always present as
        numbers; the first call's are patched by :meth:`close`.

        Args:
            metadata: the properties (``width``, ``height``, ``videocodecid``, ...); values
                must be AMF0-encodable.

        Raises:
            LocalProtocolError: the writer is closed, or the encoded tag is too large.
            AMFEncodeError: a value has no AMF0 representation.
        """
        self._check_open()
        properties: dict[str, Any] = {
            "duration": _as_number(metadata.get("duration")),
            "filesize": _as_number(metadata.get("filesize")),
        }
        properties.update((k, v) for k, v in metadata.items() if k not in properties)
        payload = amf0.encode("onMetaData", amf0.ECMAArray(properties))
        if self._patch_offsets is None and self._start is not None:
            # duration and filesize come first in the array, so their keys' first
            # occurrences are the array's: nothing but "onMetaData" precedes them.
            duration_at = payload.find(b"\x00\x08duration\x00")
            filesize_at = payload.find(b"\x00\x08filesize\x00", duration_at)
            if duration_at >= 0 and filesize_at >= 0:
                base = self._size + _TAG_HEADER_SIZE
                self._patch_offsets = (base + duration_at + 11, base + filesize_at + 11)
        self._write_tag(TagType.SCRIPT, 0, payload)

    def write_tag(self, tag_type: int, timestamp_ms: int, payload: bytes) -> None:
        """Write one tag (E.4.1) and its ``PreviousTagSize`` (E.3).

        Args:
            tag_type: a :class:`TagType` value.
            timestamp_ms: the tag's timestamp in milliseconds (0 to 2**32 - 1), written with
                ``TimestampExtended``.
            payload: the tag body (an RTMP audio/video/data message payload).

        Raises:
            LocalProtocolError: the writer is closed, or a field does not fit.
        """
        self._check_open()
        self._write_tag(tag_type, timestamp_ms, payload)
        if tag_type == TagType.VIDEO or tag_type == TagType.AUDIO:
            self._account(tag_type, timestamp_ms, payload)

    def _write_tag(self, tag_type: int, timestamp_ms: int, payload: bytes) -> None:
        size = len(payload)
        _check_tag(tag_type, timestamp_ms, size)
        self._write(_pack_tag_header(tag_type, size, timestamp_ms, 0))
        self._write(bytes(payload))
        self._write(_UI32.pack(_TAG_HEADER_SIZE + size))

    def _account(self, tag_type: int, timestamp_ms: int, payload: bytes) -> None:
        """Track the first timestamp and the end of the last presented frame."""
        if self._first_ms is None or timestamp_ms < self._first_ms:
            self._first_ms = timestamp_ms
        if tag_type == TagType.VIDEO:
            kind = classify_video(payload)
            if kind is not VideoKind.KEYFRAME and kind is not VideoKind.INTER:
                return
            pts_ms = timestamp_ms + _composition_time_ms(payload)
        else:
            if classify_audio(payload) is not AudioKind.FRAME:
                return
            pts_ms = timestamp_ms
        previous = self._last_dts.get(tag_type)
        if previous is not None and timestamp_ms > previous:
            self._frame_ms[tag_type] = timestamp_ms - previous
        self._last_dts[tag_type] = timestamp_ms
        self._end_ms = max(self._end_ms, pts_ms + self._frame_ms.get(tag_type, 0))

    def close(self) -> None:
        """Flush, and patch ``duration`` and ``filesize`` into the first ``onMetaData``.

        The patch needs a seekable file; otherwise the values written by
        :meth:`write_metadata` stay. The file object itself is left open. Calling
        ``close`` again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._patch()

    def checkpoint(self) -> None:
        """Patch ``duration`` and ``filesize`` with the values so far and flush the file
        object, so that a file cut short here (the writer killed) still reads whole.

        Raises:
            LocalProtocolError: the writer is closed.
            OSError: the file object could not be written.
        """
        self._check_open()
        self._patch()

    def _patch(self) -> None:
        if self._patch_offsets is not None and self._start is not None:
            duration_at, filesize_at = self._patch_offsets
            end = self._file.tell()
            self._file.seek(self._start + duration_at)
            self._file.write(_DOUBLE.pack(self.duration_s))
            self._file.seek(self._start + filesize_at)
            self._file.write(_DOUBLE.pack(float(self._size)))
            self._file.seek(end)
        self._file.flush()

    def __enter__(self) -> FLVWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _as_number(value: Any) -> float:
    """A metadata value to reserve as a double: numbers are kept, anything else is 0."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return 0.0


def _composition_time_ms(payload: bytes) -> int:
    """The (first track's) video composition time offset, 0 if none or unparseable."""
    try:
        tag = parse_video_tag(payload)
    except CodecHeaderError:
        return 0
    return tag.tracks[0].composition_time_ms if tag.tracks else 0
