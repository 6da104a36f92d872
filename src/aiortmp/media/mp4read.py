"""Reading MP4 files: an index of tracks and samples, and the samples as FLV tag bodies.

Sans-I/O: :class:`MP4Index` is fed the bytes of a file and never opens it. It asks for
them by position, so a file's media data (``mdat``, nearly all of its bytes) is never read
while indexing::

    index = MP4Index(file_size=os.path.getsize(path))
    with open(path, "rb") as file:
        while not index.done:
            file.seek(index.position)
            data = file.read(index.read_size)
            if not data:
                index.feed_eof()
            else:
                index.feed(data)
    for sample in index.samples:       # in decode order, every track merged
        ...                            # read sample.size_bytes at sample.offset

Both layouts of ISO/IEC 14496-12 are read:

- a progressive file: ``moov`` with each track's sample table (``stts``, ``ctts``,
  ``stsc``, ``stsz``/``stz2``, ``stco``/``co64``, ``stss``; §8.6-§8.7), FFmpeg's and
  everyone's default;
- a fragmented file: an empty ``moov`` with ``mvex``/``trex`` defaults, then ``moof``
  boxes (``tfhd``, ``tfdt``, ``trun``; §8.8), which is how the recorder writes (see
  :mod:`aiortmp.media.fmp4`). A file cut short by a crash yields every sample whose bytes
  are all in the file.

Each supported track gets a :class:`~aiortmp.media.samples.TrackConfig` in the form an
E-RTMP publisher (FFmpeg 9) sends it, so its samples become the same
:class:`~aiortmp.media.samples.Frame` values a live stream gives the muxers, and
:func:`config_tag` / :func:`frame_tag` turn those into FLV tag bodies (the inverse of
:func:`~aiortmp.media.samples.parse_media`): legacy tags for H.264, AAC and MP3, E-RTMP v2
tags for everything else, E-RTMP multitrack for a second track of a kind.

Edit lists (§8.6.6) are applied as a shift of a track's timeline (empty edits delay it,
``media_time`` advances it), then the whole file is shifted so no decode time is negative:
FFmpeg's files start B-frame video and primed AAC that way.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from aiortmp.media.errors import CodecHeaderError, MP4Error
from aiortmp.media.samples import Frame, MediaType, TrackConfig
from aiortmp.media.tags import (
    AudioFourCC,
    AudioPacketType,
    AudioTag,
    AudioTrack,
    AvcPacketType,
    AvMultitrackType,
    SoundFormat,
    SoundRate,
    SoundSize,
    SoundType,
    VideoCodecId,
    VideoFourCC,
    VideoFrameType,
    VideoPacketType,
    VideoTag,
    VideoTrack,
    build_audio_tag,
    build_video_tag,
    encode_audio_tag,
    encode_video_tag,
)

__all__ = [
    "DEFAULT_MAX_BOX_BYTES",
    "DEFAULT_MAX_SAMPLES",
    "MP4Index",
    "MP4Sample",
    "MP4Track",
    "config_tag",
    "frame_tag",
    "metadata_for",
]

#: Largest ``moov``/``moof`` the index buffers, bytes (a header box, not media data).
DEFAULT_MAX_BOX_BYTES = 64 * 1024 * 1024
#: Most samples an index holds (about 30 hours of 30 fps video with AAC).
DEFAULT_MAX_SAMPLES = 8_000_000

_AUDIO = 8
_VIDEO = 9

_HEADER = struct.Struct(">I4s")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")

#: Top-level boxes whose payload the index reads; every other box is skipped unread.
_WANTED = frozenset({b"moov", b"moof"})

# tfhd flags (§8.8.7.1).
_TFHD_BASE_DATA_OFFSET = 0x000001
_TFHD_SAMPLE_DESCRIPTION = 0x000002
_TFHD_DEFAULT_DURATION = 0x000008
_TFHD_DEFAULT_SIZE = 0x000010
_TFHD_DEFAULT_FLAGS = 0x000020
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags (§8.8.8.1).
_TRUN_DATA_OFFSET = 0x000001
_TRUN_FIRST_FLAGS = 0x000004
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
# §8.8.3.1: sample_is_non_sync_sample is bit 16 of the sample flags.
_NON_SYNC = 0x0001_0000

_VIDEO_ENTRIES = {
    b"avc1": "avc1",
    b"avc3": "avc1",
    b"hvc1": "hvc1",
    b"hev1": "hvc1",
    b"vvc1": "vvc1",
    b"vvi1": "vvc1",
    b"av01": "av01",
    b"vp09": "vp09",
    b"vp08": "vp08",
}
_AUDIO_ENTRIES = {
    b"mp4a": "mp4a",
    b".mp3": ".mp3",
    b"mp3 ": ".mp3",
    b"Opus": "Opus",
    b"fLaC": "fLaC",
    b"ac-3": "ac-3",
    b"ec-3": "ec-3",
}
_CONFIG_BOX = {
    "avc1": b"avcC",
    "hvc1": b"hvcC",
    "vvc1": b"vvcC",
    "av01": b"av1C",
    "vp09": b"vpcC",
    "vp08": b"vpcC",
    "Opus": b"dOps",
    "fLaC": b"dfLa",
}
# ISO/IEC 14496-1 Table 5 objectTypeIndication: 0x40 MPEG-4 audio, 0x66-0x68 MPEG-2 AAC
# profiles, 0x69 MPEG-2 audio (13818-3), 0x6B MPEG-1 audio (11172-3).
_AAC_OBJECT_TYPES = frozenset({0x40, 0x66, 0x67, 0x68})
_MP3_OBJECT_TYPES = frozenset({0x69, 0x6B})

# A visual sample entry's fixed fields (§12.1.3.2): 78 bytes before its boxes; an audio
# one's (§12.2.3.2): 28, or 44/64 for QuickTime sound description versions 1/2.
_VISUAL_ENTRY_BYTES = 78
_AUDIO_ENTRY_BYTES = 28
_QT_SOUND_EXTRA = {1: 16, 2: 36}


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, kw_only=True, slots=True)
class MP4Track:
    """One track of a file.

    Attributes:
        track_id: ``tkhd`` track_ID.
        config: the track's configuration as an E-RTMP publisher would send it
            (``config.track_id`` numbers the tracks of one kind from 0), or None for a
            track aiortmp does not carry (subtitles, unknown codecs: its samples are not
            indexed).
        timescale_hz: the ``mdhd`` timescale.
        width / height: the picture size from the sample entry (0 for audio).
        sample_rate_hz / channels: from the audio sample entry (0 for video).
        duration_ms: decode time of the end of its last sample, ms (edit lists applied).
        sample_count: its samples in the index.
    """

    track_id: int
    config: TrackConfig | None
    timescale_hz: int
    width: int = 0
    height: int = 0
    sample_rate_hz: int = 0
    channels: int = 0
    duration_ms: int = 0
    sample_count: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class MP4Sample:
    """One sample, located in the file.

    Attributes:
        track_index: the index of its :class:`MP4Track` in :attr:`MP4Index.tracks`.
        dts_ms: decode time, ms (every track on one timeline, never negative).
        cts_ms: composition offset, ms (``pts = dts + cts``; may be negative).
        offset: file position of its data, bytes.
        size_bytes: its data size.
        sync: a sync sample (video keyframe; every audio sample).
    """

    track_index: int
    dts_ms: int
    cts_ms: int
    offset: int
    size_bytes: int
    sync: bool

    def frame(self, track: MP4Track, data: bytes) -> Frame:
        """The sample as the :class:`Frame` a live stream would give a muxer.

        Args:
            track: its track (must have a ``config``).
            data: its ``size_bytes`` bytes at ``offset``.

        Returns:
            The frame.

        Raises:
            MP4Error: the track has no configuration.
        """
        config = track.config
        if config is None:
            raise MP4Error(f"track {track.track_id} is not carried")
        return Frame(
            media=config.media,
            track_id=config.track_id,
            codec=config.codec,
            dts_ms=self.dts_ms,
            cts_ms=self.cts_ms,
            keyframe=self.sync,
            data=data,
        )


# ----------------------------------------------------------------------- box reading


def _boxes(
    data: bytes | memoryview, start: int, end: int, what: str
) -> Iterator[tuple[bytes, int, int]]:
    """Child boxes of ``data[start:end]`` as ``(type, payload start, box end)`` (§4.2)."""
    offset = start
    while offset + 8 <= end:
        size, kind = _HEADER.unpack_from(data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise MP4Error(f"{what}: truncated largesize of {kind!r}")
            (size,) = _U64.unpack_from(data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset  # "box extends to the end" of its container
        if size < header or offset + size > end:
            raise MP4Error(f"{what}: box {kind!r} of {size} bytes does not fit")
        yield bytes(kind), offset + header, offset + size
        offset += size
    if offset != end and end - offset < 8:
        # Trailing bytes too short for a box header: tolerated (some muxers pad).
        return


def _find(data: bytes, start: int, end: int, kind: bytes, what: str) -> tuple[int, int] | None:
    for child, payload, box_end in _boxes(data, start, end, what):
        if child == kind:
            return payload, box_end
    return None


def _need(data: bytes, offset: int, size: int, end: int, what: str) -> None:
    if offset + size > end:
        raise MP4Error(f"{what} is truncated")


def _full(data: bytes, start: int, end: int, what: str) -> tuple[int, int, int]:
    """(version, flags, payload start) of a FullBox (§4.2)."""
    _need(data, start, 4, end, what)
    (word,) = _U32.unpack_from(data, start)
    return word >> 24, word & 0xFFFFFF, start + 4


def _descriptor(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, payload start, payload end) of an MPEG-4 descriptor (ISO/IEC 14496-1
    §8.3.3): a tag byte, then a size of 7 bits per byte, the top bit saying "more"."""
    _need(data, offset, 2, end, "descriptor")
    tag = data[offset]
    offset += 1
    size = 0
    for _ in range(4):
        _need(data, offset, 1, end, "descriptor size")
        byte = data[offset]
        offset += 1
        size = size << 7 | (byte & 0x7F)
        if not byte & 0x80:
            break
    if offset + size > end:
        raise MP4Error(f"descriptor {tag} of {size} bytes does not fit")
    return tag, offset, offset + size


def _esds(data: bytes, start: int, end: int) -> tuple[int, bytes]:
    """(objectTypeIndication, DecoderSpecificInfo) of an ``esds`` box (ISO/IEC 14496-14
    §5.6; ES_Descriptor: ISO/IEC 14496-1 §7.2.6.5)."""
    _, _, pos = _full(data, start, end, "esds")
    tag, pos, es_end = _descriptor(data, pos, end)
    if tag != 0x03:
        raise MP4Error(f"esds: expected an ES_Descriptor, got tag {tag}")
    _need(data, pos, 3, es_end, "ES_Descriptor")
    flags = data[pos + 2]
    pos += 3
    if flags & 0x80:  # streamDependenceFlag: dependsOn_ES_ID
        pos += 2
    if flags & 0x40:  # URL_Flag: URLlength, URLstring
        _need(data, pos, 1, es_end, "ES_Descriptor URL")
        pos += 1 + data[pos]
    if flags & 0x20:  # OCRstreamFlag: OCR_ES_Id
        pos += 2
    while pos < es_end:
        tag, payload, payload_end = _descriptor(data, pos, es_end)
        if tag == 0x04:  # DecoderConfigDescriptor
            _need(data, payload, 13, payload_end, "DecoderConfigDescriptor")
            object_type = data[payload]
            info = b""
            inner = payload + 13
            while inner < payload_end:
                tag, body, body_end = _descriptor(data, inner, payload_end)
                if tag == 0x05:  # DecoderSpecificInfo
                    info = data[body:body_end]
                    break
                inner = body_end
            return object_type, info
        pos = payload_end
    raise MP4Error("esds has no DecoderConfigDescriptor")


def _opus_head(dops: bytes) -> bytes:
    """``OpusHead`` (RFC 7845 §5.1) from a ``dOps`` payload (Opus in ISO BMFF §4.3.2):
    the same fields, big-endian there, little-endian here, version 1 instead of 0."""
    if len(dops) < 11:
        raise MP4Error("dOps is truncated")
    channels = dops[1]
    pre_skip, rate, gain = struct.unpack_from(">HIh", dops, 2)
    family = dops[10]
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, gain, family)
    if family != 0:
        if len(dops) < 13 + channels:
            raise MP4Error("dOps channel mapping is truncated")
        head += dops[11 : 13 + channels]
    return head


def _flac_record(dfla: bytes) -> bytes:
    """The STREAMINFO body (34 bytes, as FFmpeg's FLV muxer sends it) from a ``dfLa``
    payload (FLAC in ISO BMFF §3.3.2: FullBox, then metadata blocks, STREAMINFO first)."""
    block = dfla[4:]
    if len(block) < 38 or block[0] & 0x7F != 0 or block[1:4] != b"\x00\x00\x22":
        raise MP4Error("dfLa does not start with a STREAMINFO block")
    return block[4:38]


# --------------------------------------------------------------------------- tracks


class _Trak:
    """What one ``trak`` box says, and the samples found for it (parallel arrays)."""

    __slots__ = (
        "track_id",
        "media",
        "codec",
        "record",
        "timescale",
        "width",
        "height",
        "sample_rate",
        "channels",
        "shift",
        "dts",
        "cto",
        "offset",
        "size",
        "sync",
        "end",
        "trex",
        "entry_index",
    )

    def __init__(self, track_id: int) -> None:
        self.track_id = track_id
        self.media: MediaType | None = None
        self.codec = ""
        self.record = b""
        self.timescale = 1000
        self.width = self.height = self.sample_rate = self.channels = 0
        self.shift = 0  # edit list shift, in track ticks
        self.dts = array("q")
        self.cto = array("q")
        self.offset = array("q")
        self.size = array("q")
        self.sync = bytearray()
        self.end = 0  # decode time after the last sample, ticks
        # trex defaults: sample description index, duration, size, flags.
        self.trex = (1, 0, 0, 0)
        self.entry_index = 1  # the sample description this track's config came from


class MP4Index:
    """An index of an MP4 file's tracks and samples, built from its bytes (sans-I/O).

    Feed the bytes at :attr:`position` (at most :attr:`read_size` are useful) until
    :attr:`done`; at the end of the file call :meth:`feed_eof`. Only ``moov`` and ``moof``
    boxes are buffered; the index jumps over every other box (``mdat``, ``free``,
    ``mfra``...).

    Args:
        file_size: the file's size in bytes: samples whose data would end past it (a
            file cut short) are left out.
        max_box_bytes: largest ``moov``/``moof`` accepted.
        max_samples: most samples accepted.

    Raises:
        MP4Error: (from :meth:`feed`) not an MP4 file, a malformed box, or a limit hit.
    """

    def __init__(
        self,
        *,
        file_size: int,
        max_box_bytes: int = DEFAULT_MAX_BOX_BYTES,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        self.file_size = file_size
        self.max_box_bytes = max_box_bytes
        self.max_samples = max_samples
        self.position = 0
        self.done = file_size == 0
        self._buffer = bytearray()
        self._box_start = 0
        self._box_size = 0  # 0: reading a header
        self._traks: list[_Trak] = []
        self._by_id: dict[int, _Trak] = {}
        self._movie_timescale = 1000
        self._moov_seen = False
        self._first_box = True
        self._count = 0
        self._tracks: list[MP4Track] | None = None
        self._samples: list[MP4Sample] | None = None

    # -- feeding ---------------------------------------------------------------------

    @property
    def read_size(self) -> int:
        """How many bytes from :attr:`position` the index can use now."""
        if self._box_size:
            return self._box_size - len(self._buffer)
        return 16 - len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes of the file starting at :attr:`position` (any amount).

        The index may move :attr:`position` anywhere (past a skipped box, or back to the
        start of a small box read with its neighbour's header): bytes of ``data`` it no
        longer wants are dropped, and the caller continues from :attr:`position`.

        Raises:
            MP4Error: not an MP4 file, a malformed ``moov``/``moof``, or a limit hit.
        """
        view = memoryview(data)
        start = self.position
        end = start + len(view)
        while not self.done and start <= self.position < end:
            chunk = view[self.position - start :]
            if not self._box_size:
                take = min(len(chunk), 16 - len(self._buffer))
                self._buffer += chunk[:take]
                self.position += take
                self._header()
            else:
                take = min(len(chunk), self._box_size - len(self._buffer))
                self._buffer += chunk[:take]
                self.position += take
                if len(self._buffer) == self._box_size:
                    box = bytes(self._buffer)
                    self._buffer.clear()
                    self._box_size = 0
                    self._box(box)
            if self.position >= self.file_size and not self._box_size:
                self.done = True

    def feed_eof(self) -> None:
        """The file ends at :attr:`position`: what is buffered is a box cut short
        (ignored; the samples of whole boxes are kept)."""
        self.done = True
        self._buffer.clear()
        self._box_size = 0

    def _header(self) -> None:
        buffer = self._buffer
        start = self.position - len(buffer)
        if len(buffer) < 8:
            if self.position >= self.file_size:
                self.done = True  # a few stray bytes at the end
            return
        size, kind = _HEADER.unpack_from(buffer, 0)
        kind = bytes(kind)
        header = 8
        if size == 1:
            if len(buffer) < 16:
                if self.position >= self.file_size:
                    self.done = True
                return
            (size,) = _U64.unpack_from(buffer, 8)
            header = 16
        elif size == 0:
            size = self.file_size - start  # "the box extends to the end of the file"
        if self._first_box and kind not in (b"ftyp", b"styp", b"moov", b"free", b"skip"):
            raise MP4Error(f"not an MP4 file (first box {kind!r})")
        self._first_box = False
        if size < header:
            raise MP4Error(f"box {kind!r} has an invalid size {size}")
        if kind not in _WANTED:
            # Skip the box unread: the caller goes on from the new position.
            buffer.clear()
            self.position = start + size
            return
        if size > self.max_box_bytes:
            raise MP4Error(f"{kind!r} of {size} bytes exceeds {self.max_box_bytes}")
        if kind == b"moof" and not self._moov_seen:
            raise MP4Error("moof before moov")
        self._box_start = start
        if len(buffer) >= size:  # a box no larger than the header bytes read
            box = bytes(buffer[:size])
            buffer.clear()
            self.position = start + size
            self._box(box)
            return
        self._box_size = size

    def _box(self, box: bytes) -> None:
        kind = box[4:8]
        header = 16 if _U32.unpack_from(box, 0)[0] == 1 else 8
        if kind == b"moov":
            if self._moov_seen:
                raise MP4Error("a second moov")
            self._moov_seen = True
            self._moov(box, header)
        else:
            self._moof(box, header, self._box_start)

    # -- moov ------------------------------------------------------------------------

    def _moov(self, data: bytes, start: int) -> None:
        end = len(data)
        mvex: tuple[int, int] | None = None
        for kind, payload, box_end in _boxes(data, start, end, "moov"):
            if kind == b"mvhd":
                version, _, pos = _full(data, payload, box_end, "mvhd")
                pos += 16 if version == 1 else 8
                _need(data, pos, 4, box_end, "mvhd")
                self._movie_timescale = _U32.unpack_from(data, pos)[0] or 1000
            elif kind == b"trak":
                self._trak(data, payload, box_end)
            elif kind == b"mvex":
                mvex = (payload, box_end)
        if mvex is not None:
            for kind, payload, box_end in _boxes(data, mvex[0], mvex[1], "mvex"):
                if kind == b"trex":
                    _, _, pos = _full(data, payload, box_end, "trex")
                    _need(data, pos, 20, box_end, "trex")
                    track_id, index, duration, size, flags = struct.unpack_from(">5I", data, pos)
                    trak = self._by_id.get(track_id)
                    if trak is not None:
                        trak.trex = (index, duration, size, flags)

    def _trak(self, data: bytes, start: int, end: int) -> None:
        tkhd = _find(data, start, end, b"tkhd", "trak")
        mdia = _find(data, start, end, b"mdia", "trak")
        if tkhd is None or mdia is None:
            raise MP4Error("trak without tkhd or mdia")
        version, _, pos = _full(data, tkhd[0], tkhd[1], "tkhd")
        pos += 16 if version == 1 else 8
        _need(data, pos, 4, tkhd[1], "tkhd")
        track_id = _U32.unpack_from(data, pos)[0]
        if track_id in self._by_id:
            raise MP4Error(f"two tracks with id {track_id}")
        trak = _Trak(track_id)
        mdhd = _find(data, mdia[0], mdia[1], b"mdhd", "mdia")
        hdlr = _find(data, mdia[0], mdia[1], b"hdlr", "mdia")
        minf = _find(data, mdia[0], mdia[1], b"minf", "mdia")
        if mdhd is None or hdlr is None or minf is None:
            raise MP4Error(f"track {track_id}: mdia without mdhd, hdlr or minf")
        version, _, pos = _full(data, mdhd[0], mdhd[1], "mdhd")
        pos += 16 if version == 1 else 8
        _need(data, pos, 4, mdhd[1], "mdhd")
        trak.timescale = _U32.unpack_from(data, pos)[0]
        if not trak.timescale:
            raise MP4Error(f"track {track_id}: timescale 0")
        _, _, pos = _full(data, hdlr[0], hdlr[1], "hdlr")
        _need(data, pos, 8, hdlr[1], "hdlr")
        handler = data[pos + 4 : pos + 8]
        stbl = _find(data, minf[0], minf[1], b"stbl", "minf")
        if stbl is None:
            raise MP4Error(f"track {track_id}: minf without stbl")
        self._traks.append(trak)
        self._by_id[track_id] = trak
        if handler not in (b"vide", b"soun"):
            return
        trak.media = MediaType.VIDEO if handler == b"vide" else MediaType.AUDIO
        edts = _find(data, start, end, b"edts", "trak")
        if edts is not None:
            self._edit_list(trak, data, edts[0], edts[1])
        self._stbl(trak, data, stbl[0], stbl[1])

    def _edit_list(self, trak: _Trak, data: bytes, start: int, end: int) -> None:
        elst = _find(data, start, end, b"elst", "edts")
        if elst is None:
            return
        version, _, pos = _full(data, elst[0], elst[1], "elst")
        _need(data, pos, 4, elst[1], "elst")
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        entry = 20 if version == 1 else 12
        _need(data, pos, count * entry, elst[1], "elst")
        empty_ticks = 0
        for _ in range(count):
            if version == 1:
                duration, media_time = struct.unpack_from(">Qq", data, pos)
            else:
                duration, media_time = struct.unpack_from(">Ii", data, pos)
            pos += entry
            if media_time == -1:
                # An empty edit: the track starts this much later (movie timescale).
                empty_ticks += duration * trak.timescale // self._movie_timescale
                continue
            trak.shift = empty_ticks - media_time
            return  # later edits (rare: re-timed playlists) are not applied
        trak.shift = empty_ticks

    def _stbl(self, trak: _Trak, data: bytes, start: int, end: int) -> None:
        tables: dict[bytes, tuple[int, int]] = {}
        for kind, payload, box_end in _boxes(data, start, end, "stbl"):
            tables.setdefault(kind, (payload, box_end))
        stsd = tables.get(b"stsd")
        if stsd is None:
            raise MP4Error(f"track {trak.track_id}: stbl without stsd")
        self._stsd(trak, data, *stsd)
        self._sample_table(trak, data, tables)

    def _stsd(self, trak: _Trak, data: bytes, start: int, end: int) -> None:
        _, _, pos = _full(data, start, end, "stsd")
        _need(data, pos, 4, end, "stsd")
        # The first sample description describes the track (several are rare).
        for fourcc, payload, box_end in _boxes(data, pos + 4, end, "stsd"):
            if trak.media is MediaType.VIDEO:
                codec = _VIDEO_ENTRIES.get(fourcc)
                if codec is None:
                    return
                _need(data, payload, _VISUAL_ENTRY_BYTES, box_end, f"{fourcc!r} entry")
                trak.width, trak.height = struct.unpack_from(">HH", data, payload + 24)
                children = payload + _VISUAL_ENTRY_BYTES
            else:
                codec = _AUDIO_ENTRIES.get(fourcc)
                if codec is None:
                    return
                _need(data, payload, _AUDIO_ENTRY_BYTES, box_end, f"{fourcc!r} entry")
                (sound_version,) = _U16.unpack_from(data, payload + 8)
                trak.channels = _U16.unpack_from(data, payload + 16)[0]
                trak.sample_rate = _U32.unpack_from(data, payload + 24)[0] >> 16
                children = payload + _AUDIO_ENTRY_BYTES + _QT_SOUND_EXTRA.get(sound_version, 0)
                if children > box_end:
                    raise MP4Error(f"{fourcc!r} entry is truncated")
            record = b""
            if codec == "mp4a":
                esds = _find(data, children, box_end, b"esds", f"{fourcc!r} entry")
                if esds is None:
                    raise MP4Error("mp4a without esds")
                object_type, info = _esds(data, *esds)
                if object_type in _MP3_OBJECT_TYPES:
                    codec = ".mp3"
                elif object_type not in _AAC_OBJECT_TYPES or not info:
                    return  # another MPEG-4 audio object (CELP, ...): not carried
                else:
                    record = info
            elif codec in _CONFIG_BOX:
                box = _find(data, children, box_end, _CONFIG_BOX[codec], f"{fourcc!r} entry")
                if box is None:
                    raise MP4Error(f"{fourcc!r} entry without {_CONFIG_BOX[codec]!r}")
                record = data[box[0] : box[1]]
                if codec == "vvc1":
                    record = record[4:]  # vvcC is a FullBox; FLV carries the bare record
                elif codec == "Opus":
                    record = _opus_head(record)
                elif codec == "fLaC":
                    record = _flac_record(record)
            trak.codec = codec
            trak.record = record
            return

    def _sample_table(self, trak: _Trak, data: bytes, tables: dict[bytes, tuple[int, int]]) -> None:
        stts = tables.get(b"stts")
        sizes = self._sizes(data, tables)
        if stts is None or not sizes:
            return  # a fragmented file's empty table
        # stts (§8.6.1.2): runs of (sample_count, sample_delta).
        _, _, pos = _full(data, *stts, "stts")
        _need(data, pos, 4, stts[1], "stts")
        (entries,) = _U32.unpack_from(data, pos)
        _need(data, pos + 4, entries * 8, stts[1], "stts")
        dts = array("q")
        time = 0
        for i in range(entries):
            count, delta = struct.unpack_from(">II", data, pos + 4 + 8 * i)
            if len(dts) + count > len(sizes):
                count = len(sizes) - len(dts)
            dts.extend(range(time, time + count * delta, delta) if delta else [time] * count)
            time += count * delta
        if len(dts) < len(sizes):
            dts.extend([time] * (len(sizes) - len(dts)))
        total = len(sizes)
        self._count += total
        if self._count > self.max_samples:
            raise MP4Error(f"more than {self.max_samples} samples")
        cto = array("q", bytes(8 * total))
        ctts = tables.get(b"ctts")
        if ctts is not None:
            # ctts (§8.6.1.3): version 0 offsets are unsigned in the text, but writers put
            # negative ones there too; they are read signed, as FFmpeg does.
            _, _, pos = _full(data, *ctts, "ctts")
            _need(data, pos, 4, ctts[1], "ctts")
            (entries,) = _U32.unpack_from(data, pos)
            _need(data, pos + 4, entries * 8, ctts[1], "ctts")
            index = 0
            for i in range(entries):
                count, offset = struct.unpack_from(">Ii", data, pos + 4 + 8 * i)
                for _ in range(min(count, total - index)):
                    cto[index] = offset
                    index += 1
        sync = bytearray(b"\x01" * total)
        stss = tables.get(b"stss")
        if stss is not None and trak.media is MediaType.VIDEO:
            # stss (§8.6.2): "If the sync sample box is not present, every sample is a
            # sync sample."
            _, _, pos = _full(data, *stss, "stss")
            _need(data, pos, 4, stss[1], "stss")
            (entries,) = _U32.unpack_from(data, pos)
            _need(data, pos + 4, entries * 4, stss[1], "stss")
            sync = bytearray(total)
            for i in range(entries):
                (number,) = _U32.unpack_from(data, pos + 4 + 4 * i)
                if 1 <= number <= total:
                    sync[number - 1] = 1
        offsets = self._offsets(trak, data, tables, sizes)
        trak.dts.extend(dts)
        trak.cto.extend(cto)
        trak.offset.extend(offsets)
        trak.size.extend(sizes)
        trak.sync += sync
        trak.end = time

    @staticmethod
    def _sizes(data: bytes, tables: dict[bytes, tuple[int, int]]) -> array[int]:
        stsz = tables.get(b"stsz")
        if stsz is not None:
            # stsz (§8.7.3.2): one size for all samples, or a table.
            _, _, pos = _full(data, *stsz, "stsz")
            _need(data, pos, 8, stsz[1], "stsz")
            size, count = struct.unpack_from(">II", data, pos)
            if size:
                if count > DEFAULT_MAX_SAMPLES:
                    raise MP4Error(f"stsz: {count} samples")
                sizes: array[int] = array("q", [size]) * count
                return sizes
            _need(data, pos + 8, count * 4, stsz[1], "stsz")
            return array("q", struct.unpack_from(f">{count}I", data, pos + 8))
        stz2 = tables.get(b"stz2")
        if stz2 is not None:
            # stz2 (§8.7.3.3): compact sizes of 4, 8 or 16 bits.
            _, _, pos = _full(data, *stz2, "stz2")
            _need(data, pos, 8, stz2[1], "stz2")
            field = data[pos + 3]
            (count,) = _U32.unpack_from(data, pos + 4)
            pos += 8
            if field not in (4, 8, 16):
                raise MP4Error(f"stz2 field size {field}")
            _need(data, pos, (count * field + 7) // 8, stz2[1], "stz2")
            out = array("q")
            for i in range(count):
                if field == 16:
                    out.append(_U16.unpack_from(data, pos + 2 * i)[0])
                elif field == 8:
                    out.append(data[pos + i])
                else:
                    byte = data[pos + i // 2]
                    out.append(byte >> 4 if i % 2 == 0 else byte & 0x0F)
            return out
        return array("q")

    @staticmethod
    def _offsets(
        trak: _Trak, data: bytes, tables: dict[bytes, tuple[int, int]], sizes: array[int]
    ) -> array[int]:
        # Chunk offsets (stco §8.7.5, 32-bit; co64, 64-bit) and the sample-to-chunk runs
        # (stsc §8.7.4: first_chunk, samples_per_chunk, sample_description_index).
        stco = tables.get(b"stco")
        co64 = tables.get(b"co64")
        stsc = tables.get(b"stsc")
        if stsc is None or (stco is None and co64 is None):
            raise MP4Error(f"track {trak.track_id}: samples without stsc/stco")
        chunks: list[int] = []
        if stco is not None:
            _, _, pos = _full(data, *stco, "stco")
            _need(data, pos, 4, stco[1], "stco")
            (count,) = _U32.unpack_from(data, pos)
            _need(data, pos + 4, count * 4, stco[1], "stco")
            chunks = list(struct.unpack_from(f">{count}I", data, pos + 4))
        else:
            assert co64 is not None
            _, _, pos = _full(data, *co64, "co64")
            _need(data, pos, 4, co64[1], "co64")
            (count,) = _U32.unpack_from(data, pos)
            _need(data, pos + 4, count * 8, co64[1], "co64")
            chunks = list(struct.unpack_from(f">{count}Q", data, pos + 4))
        _, _, pos = _full(data, *stsc, "stsc")
        _need(data, pos, 4, stsc[1], "stsc")
        (entries,) = _U32.unpack_from(data, pos)
        _need(data, pos + 4, entries * 12, stsc[1], "stsc")
        runs = [struct.unpack_from(">III", data, pos + 4 + 12 * i) for i in range(entries)]
        offsets = array("q")
        sample = 0
        total = len(sizes)
        for i, (first, per_chunk, _) in enumerate(runs):
            last = runs[i + 1][0] - 1 if i + 1 < len(runs) else len(chunks)
            for chunk in range(first, last + 1):
                if not 1 <= chunk <= len(chunks) or sample >= total:
                    break
                position = chunks[chunk - 1]
                for _ in range(min(per_chunk, total - sample)):
                    offsets.append(position)
                    position += sizes[sample]
                    sample += 1
        if len(offsets) < total:
            raise MP4Error(f"track {trak.track_id}: {total - len(offsets)} samples in no chunk")
        return offsets

    # -- moof ------------------------------------------------------------------------

    def _moof(self, data: bytes, start: int, moof_offset: int) -> None:
        # §8.8.7.1: without base-data-offset or default-base-is-moof, "the base-data-offset
        # for the first track in the movie fragment is the position of the first byte of
        # the enclosing Movie Fragment Box, and for second and subsequent track fragments,
        # the default is the end of the data defined by the preceding track fragment".
        data_end = moof_offset
        for kind, payload, box_end in _boxes(data, start, len(data), "moof"):
            if kind == b"traf":
                data_end = self._traf(data, payload, box_end, moof_offset, data_end)

    def _traf(self, data: bytes, start: int, end: int, moof_offset: int, previous_end: int) -> int:
        tfhd = _find(data, start, end, b"tfhd", "traf")
        if tfhd is None:
            raise MP4Error("traf without tfhd")
        _, flags, pos = _full(data, tfhd[0], tfhd[1], "tfhd")
        _need(data, pos, 4, tfhd[1], "tfhd")
        (track_id,) = _U32.unpack_from(data, pos)
        pos += 4
        trak = self._by_id.get(track_id)
        if trak is None:
            raise MP4Error(f"traf for unknown track {track_id}")
        index, duration, size, sample_flags = trak.trex
        base = previous_end
        if flags & _TFHD_BASE_DATA_OFFSET:
            _need(data, pos, 8, tfhd[1], "tfhd")
            (base,) = _U64.unpack_from(data, pos)
            pos += 8
        elif flags & _TFHD_DEFAULT_BASE_IS_MOOF or previous_end == moof_offset:
            base = moof_offset
        for flag in (
            _TFHD_SAMPLE_DESCRIPTION,
            _TFHD_DEFAULT_DURATION,
            _TFHD_DEFAULT_SIZE,
            _TFHD_DEFAULT_FLAGS,
        ):
            if flags & flag:
                _need(data, pos, 4, tfhd[1], "tfhd")
                (value,) = _U32.unpack_from(data, pos)
                pos += 4
                if flag == _TFHD_SAMPLE_DESCRIPTION:
                    index = value
                elif flag == _TFHD_DEFAULT_DURATION:
                    duration = value
                elif flag == _TFHD_DEFAULT_SIZE:
                    size = value
                else:
                    sample_flags = value
        time = trak.end
        data_end = base
        for kind, payload, box_end in _boxes(data, start, end, "traf"):
            if kind == b"tfdt":
                version, _, pos = _full(data, payload, box_end, "tfdt")
                _need(data, pos, 8 if version == 1 else 4, box_end, "tfdt")
                time = (_U64 if version == 1 else _U32).unpack_from(data, pos)[0]
            elif kind == b"trun":
                time, data_end = self._trun(
                    trak,
                    data,
                    payload,
                    box_end,
                    time,
                    base,
                    data_end,
                    (duration, size, sample_flags),
                    index == trak.entry_index and bool(trak.codec),
                )
        trak.end = time
        return data_end

    def _trun(
        self,
        trak: _Trak,
        data: bytes,
        start: int,
        end: int,
        time: int,
        base: int,
        position: int,
        defaults: tuple[int, int, int],
        keep: bool,
    ) -> tuple[int, int]:
        version, flags, pos = _full(data, start, end, "trun")
        _need(data, pos, 4, end, "trun")
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        if flags & _TRUN_DATA_OFFSET:
            _need(data, pos, 4, end, "trun")
            position = base + _I32.unpack_from(data, pos)[0]
            pos += 4
        first_flags = None
        if flags & _TRUN_FIRST_FLAGS:
            _need(data, pos, 4, end, "trun")
            (first_flags,) = _U32.unpack_from(data, pos)
            pos += 4
        fields = [
            flag for flag in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if flags & flag
        ]
        per_sample = 4 * len(fields)
        _need(data, pos, count * per_sample, end, "trun")
        self._count += count
        if self._count > self.max_samples:
            raise MP4Error(f"more than {self.max_samples} samples")
        default_duration, default_size, default_flags = defaults
        for i in range(count):
            duration, size, sample_flags, cto = default_duration, default_size, default_flags, 0
            if i == 0 and first_flags is not None:
                sample_flags = first_flags
            for flag in fields:
                if flag == _TRUN_CTO and version != 0:
                    (value,) = _I32.unpack_from(data, pos)
                else:
                    (value,) = _U32.unpack_from(data, pos)
                pos += 4
                if flag == _TRUN_DURATION:
                    duration = value
                elif flag == _TRUN_SIZE:
                    size = value
                elif flag == _TRUN_FLAGS:
                    sample_flags = value
                else:
                    # Version 0 offsets are unsigned in the text; read signed like ctts.
                    cto = value - (1 << 32) if value >= 1 << 31 else value
            if keep and trak.media is not None:
                trak.dts.append(time)
                trak.cto.append(cto)
                trak.offset.append(position)
                trak.size.append(size)
                trak.sync.append(0 if sample_flags & _NON_SYNC else 1)
            time += duration
            position += size
        return time, position

    # -- results ---------------------------------------------------------------------

    def _build(self) -> None:
        # Edit-list shifts first, then one shift for the file so nothing is negative.
        carried = [t for t in self._traks if t.media is not None and t.codec]
        lowest = 0
        for trak in carried:
            if trak.dts:
                first = (trak.dts[0] + trak.shift) * 1000 // trak.timescale
                lowest = min(lowest, first)
        numbers = {MediaType.VIDEO: 0, MediaType.AUDIO: 0}
        tracks: list[MP4Track] = []
        samples: list[tuple[int, int, MP4Sample]] = []
        for trak in self._traks:
            config = None
            count = 0
            end_ms = 0
            if trak.media is not None and trak.codec:
                config = TrackConfig(
                    media=trak.media,
                    track_id=numbers[trak.media],
                    codec=trak.codec,
                    record=trak.record,
                )
                numbers[trak.media] += 1
                index = len(tracks)
                scale = trak.timescale
                shift = trak.shift
                limit = self.file_size
                end = trak.end
                for i in range(len(trak.dts)):
                    offset = trak.offset[i]
                    size = trak.size[i]
                    if offset + size > limit:
                        # Cut short by a crash: the track ends where its data does.
                        end = min(end, trak.dts[i])
                        continue
                    if size <= 0:
                        continue
                    dts = trak.dts[i] + shift
                    dts_ms = dts * 1000 // scale - lowest
                    pts_ms = (dts + trak.cto[i]) * 1000 // scale - lowest
                    micro = dts * 1_000_000 // scale
                    samples.append(
                        (
                            micro,
                            index,
                            MP4Sample(
                                track_index=index,
                                dts_ms=dts_ms,
                                cts_ms=pts_ms - dts_ms,
                                offset=offset,
                                size_bytes=size,
                                sync=bool(trak.sync[i]),
                            ),
                        )
                    )
                    count += 1
                end_ms = (end + shift) * 1000 // scale - lowest if count else 0
            tracks.append(
                MP4Track(
                    track_id=trak.track_id,
                    config=config,
                    timescale_hz=trak.timescale,
                    width=trak.width,
                    height=trak.height,
                    sample_rate_hz=trak.sample_rate,
                    channels=trak.channels,
                    duration_ms=max(end_ms, 0),
                    sample_count=count,
                )
            )
        samples.sort(key=lambda item: (item[0], item[1]))
        self._tracks = tracks
        self._samples = [item[2] for item in samples]

    def _check_done(self) -> None:
        if not self.done:
            raise MP4Error("the index is not complete: feed the file to its end")
        if not self._moov_seen:
            raise MP4Error("no moov box")

    @property
    def tracks(self) -> list[MP4Track]:
        """Every track, in ``moov`` order.

        Raises:
            MP4Error: not :attr:`done`, or the file had no ``moov``.
        """
        self._check_done()
        if self._tracks is None:
            self._build()
        assert self._tracks is not None
        return self._tracks

    @property
    def samples(self) -> list[MP4Sample]:
        """The samples of the carried tracks, in decode order across tracks.

        Raises:
            MP4Error: not :attr:`done`, or the file had no ``moov``.
        """
        self._check_done()
        if self._samples is None:
            self._build()
        assert self._samples is not None
        return self._samples

    @property
    def duration_ms(self) -> int:
        """The longest track, ms (0 without samples)."""
        return max((track.duration_ms for track in self.tracks), default=0)


# ------------------------------------------------------------------- FLV tag bodies


def _sound_flags(sample_rate_hz: int, channels: int) -> tuple[int, int]:
    rate = SoundRate.KHZ_44
    if sample_rate_hz and sample_rate_hz < 16000:
        rate = SoundRate.KHZ_11
    elif sample_rate_hz and sample_rate_hz < 32000:
        rate = SoundRate.KHZ_22
    return rate, SoundType.MONO if channels == 1 else SoundType.STEREO


def _video_tag(
    codec: str, track_id: int, frame_type: int, packet_type: int, data: bytes, cts_ms: int
) -> bytes:
    if track_id == 0 and codec == "avc1":
        # Legacy AVC (FLV v10.1 E.4.3.1): every RTMP player reads it.
        return build_video_tag(
            data,
            codec=VideoCodecId.AVC,
            frame_type=frame_type,
            packet_type=packet_type,
            composition_time_ms=cts_ms,
        )
    fourcc = VideoFourCC(codec)
    # E-RTMP v2: only avc1/hvc1/vvc1 CodedFrames carry a compositionTimeOffset.
    has_cts = codec in ("avc1", "hvc1", "vvc1") and packet_type == VideoPacketType.CODED_FRAMES
    track = VideoTrack(
        codec=fourcc,
        packet_type=VideoPacketType(packet_type),
        data=data,
        track_id=track_id,
        composition_time_ms=cts_ms if has_cts else 0,
    )
    tag = VideoTag(
        frame_type=frame_type,
        is_ex_header=True,
        tracks=(track,),
        multitrack_type=None if track_id == 0 else AvMultitrackType.ONE_TRACK,
    )
    return encode_video_tag(tag)


def _audio_tag(
    codec: str, track_id: int, packet_type: int, data: bytes, sample_rate_hz: int, channels: int
) -> bytes:
    if track_id == 0 and codec in ("mp4a", ".mp3"):
        rate, sound_type = _sound_flags(sample_rate_hz, channels)
        if codec == "mp4a":
            # FLV v10.1 E.4.2.1: AAC is always "44 kHz" stereo in the header.
            return build_audio_tag(data, codec=SoundFormat.AAC, packet_type=packet_type)
        sound_format = SoundFormat.MP3_8K if sample_rate_hz == 8000 else SoundFormat.MP3
        return build_audio_tag(
            data,
            codec=sound_format,
            sound_rate=rate,
            sound_size=SoundSize.BITS_16,
            sound_type=sound_type,
        )
    track = AudioTrack(
        codec=AudioFourCC(codec),
        packet_type=AudioPacketType(packet_type),
        data=data,
        track_id=track_id,
    )
    tag = AudioTag(
        sound_format=SoundFormat.EX_HEADER,
        tracks=(track,),
        multitrack_type=None if track_id == 0 else AvMultitrackType.ONE_TRACK,
    )
    return encode_audio_tag(tag)


def config_tag(
    config: TrackConfig, *, sample_rate_hz: int = 0, channels: int = 0
) -> tuple[int, bytes]:
    """The sequence header of a track as an FLV tag body (E-RTMP v2 ``SequenceStart``,
    FLV v10.1 E.4.2.2/E.4.3.1 for AVC and AAC).

    Args:
        config: the track configuration.
        sample_rate_hz: the audio sample rate (for a legacy MP3 tag's SoundRate).
        channels: the audio channel count (for a legacy MP3 tag's SoundType).

    Returns:
        ``(type_id, payload)``: 9 (video) or 8 (audio), and the tag body. MP3 has no
        sequence header: an empty payload is returned; AC-3 and E-AC-3 get an empty
        ``SequenceStart``, as FFmpeg 9 sends them.

    Raises:
        MP4Error: the codec has no FLV mapping.
    """
    try:
        if config.media is MediaType.VIDEO:
            return _VIDEO, _video_tag(
                config.codec,
                config.track_id,
                VideoFrameType.KEY_FRAME,
                AvcPacketType.SEQUENCE_HEADER,
                config.record,
                0,
            )
        if config.codec == ".mp3" and config.track_id == 0:
            return _AUDIO, b""
        return _AUDIO, _audio_tag(
            config.codec,
            config.track_id,
            AudioPacketType.SEQUENCE_START,
            config.record,
            sample_rate_hz,
            channels,
        )
    except ValueError as exc:  # an unknown FourCC
        raise MP4Error(f"no FLV mapping for {config.codec!r}") from exc


def frame_tag(frame: Frame, *, sample_rate_hz: int = 0, channels: int = 0) -> tuple[int, bytes]:
    """A frame as an FLV tag body: the inverse of
    :func:`~aiortmp.media.samples.parse_media` for one track.

    Args:
        frame: the access unit (track 0: a legacy or plain E-RTMP tag; other tracks:
            E-RTMP multitrack ``OneTrack``).
        sample_rate_hz: the audio sample rate (for a legacy MP3 tag's SoundRate).
        channels: the audio channel count (for a legacy MP3 tag's SoundType).

    Returns:
        ``(type_id, payload)``.

    Raises:
        MP4Error: the codec has no FLV mapping, or the composition offset does not fit
            in 24 bits.
    """
    try:
        if frame.media is MediaType.VIDEO:
            frame_type = VideoFrameType.KEY_FRAME if frame.keyframe else VideoFrameType.INTER_FRAME
            return _VIDEO, _video_tag(
                frame.codec,
                frame.track_id,
                frame_type,
                VideoPacketType.CODED_FRAMES,
                frame.data,
                frame.cts_ms,
            )
        return _AUDIO, _audio_tag(
            frame.codec,
            frame.track_id,
            AudioPacketType.CODED_FRAMES,
            frame.data,
            sample_rate_hz,
            channels,
        )
    except (ValueError, CodecHeaderError) as exc:
        raise MP4Error(f"no FLV tag for a {frame.codec!r} frame: {exc}") from exc


_VIDEO_CODEC_IDS = {"avc1": 7.0}
_AUDIO_CODEC_IDS = {"mp4a": 10.0, ".mp3": 2.0}


def metadata_for(tracks: list[MP4Track], duration_ms: int) -> dict[str, object]:
    """An ``onMetaData`` object describing a file (FLV v10.1 E.5), for players that want
    one before the media: duration, picture size, codec ids (E-RTMP v2: the FourCC as a
    number for the enhanced codecs).

    Args:
        tracks: the file's tracks.
        duration_ms: its duration, ms.

    Returns:
        The properties.
    """
    metadata: dict[str, object] = {"duration": duration_ms / 1000}
    video = next((t for t in tracks if t.config and t.config.media is MediaType.VIDEO), None)
    audio = next((t for t in tracks if t.config and t.config.media is MediaType.AUDIO), None)
    if video is not None and video.config is not None:
        metadata["width"] = float(video.width)
        metadata["height"] = float(video.height)
        codec = video.config.codec
        metadata["videocodecid"] = _VIDEO_CODEC_IDS.get(
            codec, float(int.from_bytes(codec.encode(), "big"))
        )
    if audio is not None and audio.config is not None:
        codec = audio.config.codec
        metadata["audiocodecid"] = _AUDIO_CODEC_IDS.get(
            codec, float(int.from_bytes(codec.encode(), "big"))
        )
        if audio.sample_rate_hz:
            metadata["audiosamplerate"] = float(audio.sample_rate_hz)
        metadata["stereo"] = audio.channels != 1
    return metadata
