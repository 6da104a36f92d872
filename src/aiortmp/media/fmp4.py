"""Fragmented MP4 / CMAF muxer: an init segment, then ``moof`` + ``mdat`` fragments.

Sans-I/O: :class:`FMP4Muxer` takes :class:`~aiortmp.media.samples.TrackConfig` and
:class:`~aiortmp.media.samples.Frame` values and returns bytes; it never touches files,
sockets or the clock. Two consumers drive it:

- the LL-HLS output: :meth:`FMP4Muxer.init_segment` once, then a fragment every ~200 ms
  (an LL-HLS part, a CMAF chunk), cut before each keyframe that starts a new segment
  (``fragment(end_ms=keyframe.dts_ms)`` after adding the keyframe);
- the MP4 recorder: the init segment, a fragment at least once a second (so a ``kill -9``
  loses at most one), and on a clean close the init segment again with ``duration_ms``
  written over the first one in place (its size does not depend on the duration).

Layout (ISO/IEC 14496-12):

- init segment: ``ftyp`` (major ``iso6``; ``cmfc`` as well when the muxer has a single
  track, ISO/IEC 23000-19 §7.2) and ``moov`` = ``mvhd``, one ``trak`` per track (ids 1..n in
  the order given, each with an empty sample table and one sample entry: ``avc1``/``avcC``,
  ``hvc1``/``hvcC``, ``vvc1``/``vvcC``, ``av01``/``av1C``, ``vp09``/``vpcC``,
  ``mp4a``/``esds`` (AAC, and MP3 with objectTypeIndication 0x6B/0x69), ``Opus``/``dOps``,
  ``fLaC``/``dfLa``, ``ac-3``/``dac3``, ``ec-3``/``dec3``), and ``mvex`` = ``mehd``
  (version 1, 64-bit fragment_duration) + one ``trex`` per track;
- fragment: ``moof`` = ``mfhd`` (sequence number from 1) + one ``traf`` per track with
  samples (``tfhd`` with default-base-is-moof, ``tfdt`` version 1, ``trun`` version 1 with
  data offset, per-sample duration and size and, for video, per-sample flags and signed
  composition offsets; audio samples, all sync samples, take their flags from ``tfhd``);
  then one ``mdat``.

Timing: video tracks use a 90 kHz timescale, audio tracks their sample rate (48 kHz for
Opus). A frame's decode time is ``(dts_ms - origin_ms) * timescale / 1000``, so every
track keeps the stream's millisecond timeline and A/V sync survives. Video sample
durations are decode time differences, so a sample's duration is known when the next
sample of its track arrives; the last sample of each track stays queued until then (or
until ``fragment(final=True)``). Audio sample durations come from the codec frame
length (AAC 1024/960, MP3 1152/576/384, AC-3 1536, E-AC-3 256 per block, Opus from the
TOC byte, FLAC from the frame header); publishers round their millisecond timestamps,
so audio decode time runs on the sample count and is resynchronised to the timestamp
only when the two drift apart by more than a frame.

Hot path: :meth:`FMP4Muxer.add` does a dict lookup, a little integer arithmetic and four
list appends per frame (plus a header read for the audio codecs whose frame length
varies); :meth:`FMP4Muxer.fragment` packs each ``trun`` with one ``array`` and joins the
fragment once.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from aiortmp.media import audio_config, av1, avc, hevc, vp9
from aiortmp.media.codecs import codec_string, parse_vvc_config_summary
from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.samples import Frame, MediaType, TrackConfig
from aiortmp.protocol.errors import LocalProtocolError

__all__ = ["FMP4Fragment", "FMP4Muxer", "MOVIE_TIMESCALE_HZ", "VIDEO_TIMESCALE_HZ", "styp"]

#: The timescale of every video track (the MPEG 90 kHz clock).
VIDEO_TIMESCALE_HZ = 90_000
#: The movie timescale (``mvhd``, ``mehd``), Hz: durations there are in milliseconds.
MOVIE_TIMESCALE_HZ = 1000
_OPUS_RATE_HZ = 48_000

# ISO/IEC 14496-12 §8.8.3.1 sample flags: sample_depends_on (2 bits at 24),
# sample_is_non_sync_sample (bit 16). "2: this sample does not depend on others (I
# picture)"; "1: this sample does depend on others (not an I picture)".
_SYNC_FLAGS = 0x0200_0000
_NON_SYNC_FLAGS = 0x0101_0000

# tfhd flags (§8.8.7.1).
_TFHD_DEFAULT_SAMPLE_FLAGS = 0x00_0020
_TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000
# trun flags (§8.8.8.1).
_TRUN_DATA_OFFSET = 0x000001
_TRUN_DURATION = 0x000100
_TRUN_SIZE = 0x000200
_TRUN_FLAGS = 0x000400
_TRUN_CTO = 0x000800
_VIDEO_TRUN = _TRUN_DATA_OFFSET | _TRUN_DURATION | _TRUN_SIZE | _TRUN_FLAGS | _TRUN_CTO
_AUDIO_TRUN = _TRUN_DATA_OFFSET | _TRUN_DURATION | _TRUN_SIZE

_U32 = struct.Struct(">I")
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_AV1_TEMPORAL_DELIMITER = b"\x12\x00"  # obu_type 2, obu_has_size_field, size 0
_LANGUAGE_UND = 0x55C4  # ISO-639-2/T "und", packed 5 bits per letter (§8.4.2.3)
_SWAP = sys.byteorder == "little"
# trun fields are 32-bit: the array type code whose items are 4 bytes ("I" everywhere
# CPython runs in practice).
_U32_CODE = "I" if array("I").itemsize == 4 else "L"
# A video track's last sample, flushed before the next one arrives, lasts this long when
# nothing better is known (one frame at 30 fps).
_DEFAULT_VIDEO_DURATION = VIDEO_TIMESCALE_HZ // 30


# --------------------------------------------------------------------------- boxes


def _box(kind: bytes, *payload: bytes) -> bytes:
    """A box (§4.2): 32-bit size, type, payload."""
    return b"".join((_U32.pack(8 + sum(map(len, payload))), kind, *payload))


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox (§4.2): a box whose payload starts with version (8) and flags (24)."""
    return _box(kind, _U32.pack((version << 24) | flags), *payload)


def _ftyp(kind: bytes, major: bytes, compatible: Sequence[bytes]) -> bytes:
    return _box(kind, major, _U32.pack(0), *compatible)


def styp(*, single_track: bool = True) -> bytes:
    """A segment type box for the first fragment of a media segment (§8.16.2).

    HLS and DASH accept segments without one; CMAF (ISO/IEC 23000-19 §7.3.2) allows it
    with the ``cmfs`` brand.

    Args:
        single_track: Add the CMAF segment brand ``cmfs``; CMAF segments hold one track,
            so pass False for a muxer with several tracks.

    Returns:
        The ``styp`` box: major brand ``msdh``, compatible ``msdh``, ``msix`` (and
        ``cmfs``).
    """
    brands = [b"msdh", b"msix"]
    if single_track:
        brands.append(b"cmfs")
    return _ftyp(b"styp", b"msdh", brands)


def _descriptor(tag: int, *payload: bytes) -> bytes:
    """An MPEG-4 descriptor (ISO/IEC 14496-1 §8.3.3): tag, expandable size, payload."""
    size = sum(map(len, payload))
    # sizeOfInstance is 7 bits per byte, the top bit saying "another byte follows";
    # FFmpeg and most muxers always write four bytes.
    length = bytes(
        (0x80 | ((size >> 21) & 0x7F), 0x80 | ((size >> 14) & 0x7F), 0x80 | ((size >> 7) & 0x7F))
    ) + bytes((size & 0x7F,))
    return b"".join((bytes((tag,)), length, *payload))


def _esds(object_type: int, decoder_specific_info: bytes, bit_rate_bps: int = 0) -> bytes:
    """``esds`` (ISO/IEC 14496-14 §5.6): an ES_Descriptor with one DecoderConfigDescriptor.

    streamType 5 (audio), upStream 0, reserved 1: ``0x15``.
    """
    specific = _descriptor(0x05, decoder_specific_info) if decoder_specific_info else b""
    decoder_config = _descriptor(
        0x04,
        struct.pack(">BBBHII", object_type, 0x15, 0, 0, bit_rate_bps, bit_rate_bps),
        specific,
    )
    sl_config = _descriptor(0x06, b"\x02")  # predefined: "reserved for use in MP4 files"
    es = _descriptor(0x03, struct.pack(">HB", 0, 0), decoder_config, sl_config)
    return _full_box(b"esds", 0, 0, es)


def _visual_sample_entry(fourcc: bytes, width: int, height: int, *boxes: bytes) -> bytes:
    """A VisualSampleEntry (§12.1.3.2) with its configuration boxes."""
    return _box(
        fourcc,
        bytes(6),  # SampleEntry reserved
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined, reserved, pre_defined[3]
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        bytes(32),  # compressorname
        struct.pack(">Hh", 0x0018, -1),  # depth, pre_defined
        *boxes,
    )


def _audio_sample_entry(
    fourcc: bytes, channels: int, sample_size_bits: int, sample_rate_hz: int, *boxes: bytes
) -> bytes:
    """An AudioSampleEntry (§12.2.3.2) with its configuration boxes.

    ``samplerate`` is 16.16 fixed point; a rate above 65535 Hz does not fit and is
    written as 0 (the configuration box carries the real rate).
    """
    rate = sample_rate_hz << 16 if sample_rate_hz <= 0xFFFF else 0
    return _box(
        fourcc,
        bytes(6),
        struct.pack(">H", 1),
        bytes(8),  # reserved
        struct.pack(">HHHHI", channels, sample_size_bits, 0, 0, rate),
        *boxes,
    )


# ------------------------------------------------------------- audio frame lengths


def _opus_frame_samples(packet: bytes) -> int | None:
    """Samples at 48 kHz in an Opus packet, from its TOC byte (RFC 6716 §3.1)."""
    if not packet:
        return None
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK-only: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # Hybrid: 10, 20 ms
        frame = (480, 960)[config & 1]
    else:  # CELT-only: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        return frame
    if code in (1, 2):
        return 2 * frame
    # Code 3: "M ... the number of frames" in the low 6 bits of the second byte.
    if len(packet) < 2 or not packet[1] & 0x3F:
        return None
    return frame * (packet[1] & 0x3F)


_FLAC_BLOCK_SIZES = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608}


def _flac_frame_samples(frame: bytes) -> int | None:
    """The block size of a FLAC frame, from its header (RFC 9639 §9.1.1, §9.1.5)."""
    if len(frame) < 5 or frame[0] != 0xFF or frame[1] & 0xFE != 0xF8:
        return None
    code = frame[2] >> 4
    if code in _FLAC_BLOCK_SIZES:
        return _FLAC_BLOCK_SIZES[code]
    if code >= 8:
        return 256 << (code - 8)
    if code not in (6, 7):
        return None  # 0 is reserved
    # The block size follows the coded frame/sample number, a UTF-8-like code: 0xxxxxxx
    # is one byte, otherwise the first byte's leading 1 bits count its bytes (2-7).
    lead = frame[4]
    length = 1
    if lead & 0x80:
        length = 0
        while length < 8 and lead & (0x80 >> length):
            length += 1
        if not 2 <= length <= 7:
            return None
    offset = 4 + length
    width = 1 if code == 6 else 2
    if offset + width > len(frame):
        return None
    return int.from_bytes(frame[offset : offset + width], "big") + 1


def _mpeg_audio_samples(data: bytes) -> int | None:
    """Samples in one or more MPEG audio frames (ISO/IEC 11172-3 §2.4.2.3, 13818-3)."""
    total = 0
    offset = 0
    # At most a handful of frames share one FLV tag; each costs a 4-byte header read.
    while offset + 4 <= len(data):
        try:
            header = audio_config.parse_mpeg_audio_frame_header(data[offset : offset + 4])
        except CodecHeaderError:
            break
        total += header.samples_per_frame
        if header.bit_rate_bps is None:
            break  # free format: the frame length is not in the header
        padding = int(header.padding)
        if header.layer == 1:
            size = (12 * header.bit_rate_bps // header.sample_rate_hz + padding) * 4
        else:
            # 144 bytes per kbit/s-per-Hz for 1152-sample frames, 72 for 576 (LSF Layer III).
            size = header.samples_per_frame // 8 * header.bit_rate_bps // header.sample_rate_hz
            size += padding
        if size <= 4:
            break
        offset += size
    return total or None


def _ac3_samples(data: bytes) -> int | None:
    """Samples in one or more AC-3 or E-AC-3 syncframes (ATSC A/52 §5.4.1, Annex E).

    An E-AC-3 access unit may hold dependent substreams (and further independent ones)
    after the first syncframe; only independent substream 0 advances time.
    """
    total = 0
    offset = 0
    while offset + 6 <= len(data) and data[offset] == 0x0B and data[offset + 1] == 0x77:
        bsid = data[offset + 5] >> 3
        if bsid <= 10:
            try:
                header = audio_config.parse_ac3_frame_header(data[offset : offset + 8])
            except CodecHeaderError:
                break
            total += 1536  # six audio blocks of 256 samples
            size = header.frame_size_bytes
        else:
            # strmtyp (2) substreamid (3) frmsiz (11) fscod (2) numblkscod (2).
            strmtyp = data[offset + 2] >> 6
            substream = (data[offset + 2] >> 3) & 0x07
            size = ((((data[offset + 2] & 0x07) << 8) | data[offset + 3]) + 1) * 2
            fscod = data[offset + 4] >> 6
            blocks = 6 if fscod == 3 else (1, 2, 3, 6)[(data[offset + 4] >> 4) & 0x03]
            if strmtyp != 1 and substream == 0:
                total += 256 * blocks
        offset += size
    return total or None


# ------------------------------------------------------------------------ tracks


class _Track:
    """One track's sample entry inputs and its queue of samples not yet written.

    The queue is four parallel lists; every sample but the last has a known duration
    (the decode time of the next minus its own).
    """

    __slots__ = (
        "codec",
        "config",
        "default_duration",
        "dts",
        "cto",
        "sync",
        "data",
        "frame_ticks",
        "height",
        "info",
        "is_video",
        "last_duration",
        "next_dts",
        "number",
        "ready",
        "sample_entry",
        "started",
        "strip_temporal_delimiter",
        "timescale",
        "width",
        "written_end",
    )

    def __init__(self, number: int, config: TrackConfig) -> None:
        self.number = number
        self.config = config
        self.codec = str(config.codec)
        self.is_video = config.media is MediaType.VIDEO
        self.timescale = VIDEO_TIMESCALE_HZ
        self.sample_entry = b""
        self.width = self.height = 0
        self.ready = False
        # A video track starts at its first keyframe; audio frames are all sync samples.
        self.started = not self.is_video
        self.strip_temporal_delimiter = self.codec == "av01"
        # Audio: the frame length in timescale units when fixed, else None.
        self.frame_ticks: int | None = None
        # av01: the record; vp09/vp08: the vpcC box (until the first keyframe).
        self.info = b""
        self.dts: list[int] = []
        self.cto: list[int] = []
        self.sync: list[bool] = []
        self.data: list[bytes] = []
        self.next_dts: int | None = None  # audio: decode time the next frame would start at
        self.written_end: int | None = None  # decode time after the last written sample
        self.last_duration = 0
        self.default_duration = _DEFAULT_VIDEO_DURATION


def _avc_entry(track: _Track, record: bytes) -> None:
    config = avc.parse_avc_decoder_configuration_record(record)
    boxes = [_box(b"avcC", record)]
    if config.sps:
        sps = avc.parse_avc_sps(config.sps[0])
        track.width, track.height = sps.width, sps.height
        boxes.extend(_pasp(sps.sar_width, sps.sar_height))
    track.sample_entry = _visual_sample_entry(b"avc1", track.width, track.height, *boxes)
    track.ready = True


def _hevc_entry(track: _Track, record: bytes) -> None:
    config = hevc.parse_hevc_decoder_configuration_record(record)
    boxes = [_box(b"hvcC", record)]
    sps_units = config.nal_units_of_type(hevc.NAL_UNIT_TYPE_SPS)
    if sps_units:
        sps = hevc.parse_hevc_sps(sps_units[0])
        track.width, track.height = sps.width, sps.height
        boxes.extend(_pasp(sps.sar_width, sps.sar_height))
    track.sample_entry = _visual_sample_entry(b"hvc1", track.width, track.height, *boxes)
    track.ready = True


def _vvc_entry(track: _Track, record: bytes) -> None:
    summary = parse_vvc_config_summary(record)
    track.width, track.height = summary.width, summary.height
    # vvcC is a FullBox (ISO/IEC 14496-15 §11.2.4.2.2), version 0.
    track.sample_entry = _visual_sample_entry(
        b"vvc1", track.width, track.height, _full_box(b"vvcC", 0, 0, summary.record)
    )
    track.ready = True


def _av1_entry(track: _Track, record: bytes, header: av1.AV1SequenceHeader | None) -> None:
    if header is None:
        header = av1.parse_av1_codec_configuration_record(record).sequence_header
    track.info = record
    if header is None:
        return  # the size comes with the first keyframe's sequence header OBU
    track.width, track.height = header.max_frame_width, header.max_frame_height
    track.sample_entry = _visual_sample_entry(
        b"av01", track.width, track.height, _box(b"av1C", record)
    )
    track.ready = True


def _vpcc(record: bytes) -> bytes:
    """The ``vpcC`` box (VP Codec ISO Binding §2.2), version 1, from any record form."""
    config = vp9.parse_vp_codec_configuration_record(record)
    body = struct.pack(
        ">BBBBBBH",
        config.profile,
        config.level,
        (config.bit_depth << 4) | (config.chroma_subsampling << 1) | config.video_full_range,
        config.colour_primaries,
        config.transfer_characteristics,
        config.matrix_coefficients,
        len(config.codec_initialization_data),
    )
    return _full_box(b"vpcC", 1, 0, body, config.codec_initialization_data)


def _pasp(sar_width: int | None, sar_height: int | None) -> list[bytes]:
    """A ``pasp`` box (§12.1.4) for a non-square sample aspect ratio."""
    if not sar_width or not sar_height or sar_width == sar_height:
        return []
    return [_box(b"pasp", struct.pack(">II", sar_width, sar_height))]


def _aac_entry(track: _Track, record: bytes) -> None:
    config = audio_config.parse_audio_specific_config(record)
    track.timescale = config.sample_rate_hz
    if config.frame_length_samples is not None:
        # With SBR the output rate (the timescale) is twice the core rate, and so is the
        # frame length in output samples.
        track.frame_ticks = (
            config.frame_length_samples * config.sample_rate_hz // config.sampling_frequency_hz
        )
    track.sample_entry = _audio_sample_entry(
        b"mp4a", config.channels or 2, 16, config.sample_rate_hz, _esds(0x40, record)
    )
    track.ready = True


def _opus_entry(track: _Track, record: bytes) -> None:
    head = audio_config.parse_opus_head(record)
    track.timescale = _OPUS_RATE_HZ
    # dOps (Opus in ISO BMFF §4.3.2): OpusHead's fields, big-endian, version 0.
    body = struct.pack(
        ">BBHIhB",
        0,
        head.channels,
        head.pre_skip_samples,
        head.input_sample_rate_hz,
        head.output_gain_q8_db,
        head.channel_mapping_family,
    )
    if head.channel_mapping_family != 0:
        body += bytes((head.stream_count, head.coupled_count)) + head.channel_mapping
    track.sample_entry = _audio_sample_entry(
        b"Opus", head.channels, 16, _OPUS_RATE_HZ, _box(b"dOps", body)
    )
    track.ready = True


def _flac_streaminfo_block(record: bytes) -> bytes:
    """The 34-byte STREAMINFO body from any of the record forms E-RTMP publishers send."""
    block = record[4:] if record[:4] == b"fLaC" else record
    if len(block) >= 38 and block[0] & 0x7F == 0 and block[1:4] == b"\x00\x00\x22":
        block = block[4:]
    return block[:34]


def _flac_entry(track: _Track, record: bytes) -> None:
    info = audio_config.parse_flac_stream_info(record)
    track.timescale = info.sample_rate_hz
    if info.min_block_size_samples == info.max_block_size_samples:
        track.frame_ticks = info.max_block_size_samples
    # dfLa (FLAC in ISO BMFF §3.3.2): FullBox version 0 holding metadata blocks,
    # STREAMINFO first; here it is the only one, so its last-metadata-block flag is set.
    dfla = _full_box(b"dfLa", 0, 0, b"\x80\x00\x00\x22", _flac_streaminfo_block(record))
    track.sample_entry = _audio_sample_entry(
        b"fLaC", info.channels, info.bits_per_sample, info.sample_rate_hz, dfla
    )
    track.ready = True


def _ac3_entry(track: _Track, frame: bytes) -> None:
    header = audio_config.parse_ac3_frame_header(frame)
    track.timescale = header.sample_rate_hz
    fscod = frame[4] >> 6
    if not header.enhanced:
        # dac3 (ETSI TS 102 366 F.4): fscod, bsid, bsmod, acmod, lfeon, bit_rate_code.
        bsmod = frame[5] & 0x07
        bit_rate_code = (frame[4] & 0x3F) >> 1
        bits = (
            (fscod << 22)
            | (header.bsid << 17)
            | (bsmod << 14)
            | (header.acmod << 11)
            | (int(header.lfe) << 10)
            | (bit_rate_code << 5)
        )
        config = _box(b"dac3", bits.to_bytes(3, "big"))
        fourcc = b"ac-3"
    else:
        # dec3 (ETSI TS 102 366 F.6): data_rate (kbit/s), num_ind_sub = 0, then for the
        # one independent substream fscod, bsid, reserved, asvc, bsmod, acmod, lfeon,
        # reserved, num_dep_sub = 0, reserved. bsmod sits deep in the E-AC-3 BSI and is
        # only present with infomdate; 0 (complete main) is what decoders assume. A
        # dependent substream (channels beyond 5.1) stays in the samples but is not
        # announced: chan_loc would need its chanmap.
        data_rate = header.bit_rate_bps // 1000
        substream = (
            (fscod << 22) | (header.bsid << 17) | (header.acmod << 9) | (int(header.lfe) << 8)
        )
        config = _box(b"dec3", struct.pack(">H", data_rate << 3), substream.to_bytes(3, "big"))
        fourcc = b"ec-3"
    track.codec = fourcc.decode()
    track.sample_entry = _audio_sample_entry(
        fourcc, header.channels, 16, header.sample_rate_hz, config
    )
    track.ready = True


def _mp3_entry(track: _Track, frame: bytes) -> None:
    header = audio_config.parse_mpeg_audio_frame_header(frame)
    track.timescale = header.sample_rate_hz
    # ISO/IEC 14496-1 Table 5: objectTypeIndication 0x6B "Audio ISO/IEC 11172-3", 0x69
    # "Audio ISO/IEC 13818-3" (the lower sampling frequencies). No DecoderSpecificInfo.
    object_type = 0x6B if header.version == "MPEG-1" else 0x69
    track.sample_entry = _audio_sample_entry(
        b"mp4a",
        header.channels,
        16,
        header.sample_rate_hz,
        _esds(object_type, b"", header.bit_rate_bps or 0),
    )
    track.ready = True


def _audio_frame_ticks(codec: str, data: bytes) -> int | None:
    """Samples in one audio Frame whose codec has a variable frame length."""
    if codec == "Opus":
        return _opus_frame_samples(data)
    if codec == "fLaC":
        return _flac_frame_samples(data)
    if codec in ("ac-3", "ec-3"):
        return _ac3_samples(data)
    if codec == ".mp3":
        return _mpeg_audio_samples(data)
    return None


# ---------------------------------------------------------------------- fragments


@dataclass(frozen=True, kw_only=True, slots=True)
class FMP4Fragment:
    """One ``moof`` + ``mdat`` (a CMAF chunk / LL-HLS part, or a recorder fragment).

    Attributes:
        data: The fragment bytes.
        sequence_number: The ``mfhd`` sequence number (1 for the first fragment).
        start_ms: The earliest decode time of its samples, ms on the stream timeline
            (the ``Frame.dts_ms`` scale, ``origin_ms`` added back).
        end_ms: The latest decode time + duration of its samples, ms.
        independent: Every video track's first sample in it is a sync sample (and it has
            samples of every video track): playback can start here (LL-HLS
            ``INDEPENDENT=YES``). Always True for audio-only muxers.
        sample_count: The number of samples in it.
    """

    data: bytes
    sequence_number: int
    start_ms: float
    end_ms: float
    independent: bool
    sample_count: int

    @property
    def duration_ms(self) -> float:
        """``end_ms - start_ms``."""
        return self.end_ms - self.start_ms


class FMP4Muxer:
    """Mux per-track frames into a fragmented MP4 (ISO/IEC 14496-12 §8.8, CMAF).

    Args:
        tracks: One :class:`TrackConfig` per track, in ``trak`` order (track ids 1..n).
            Frames match a track by ``(media, track_id)`` and codec.
        origin_ms: The ``Frame.dts_ms`` that maps to decode time 0 (e.g. a recorder's
            first keyframe); frames before it are dropped, as decode times cannot be
            negative.

    Raises:
        CodecHeaderError: A configuration record is malformed.
        LocalProtocolError: No tracks, two tracks with the same ``(media, track_id)``,
            or a codec without an ISO BMFF mapping.
    """

    def __init__(self, tracks: Sequence[TrackConfig], *, origin_ms: int = 0) -> None:
        if not tracks:
            raise LocalProtocolError("FMP4Muxer needs at least one track")
        self._origin_ms = origin_ms
        self._tracks: list[_Track] = []
        self._by_key: dict[tuple[MediaType, int], _Track] = {}
        for number, config in enumerate(tracks, start=1):
            key = (config.media, config.track_id)
            if key in self._by_key:
                raise LocalProtocolError(f"two {config.media} tracks with id {config.track_id}")
            track = _Track(number, config)
            self._configure(track)
            self._tracks.append(track)
            self._by_key[key] = track
        self._sequence_number = 0
        self._has_video = any(track.is_video for track in self._tracks)

    @staticmethod
    def _configure(track: _Track) -> None:
        record = bytes(track.config.record)
        codec = track.codec
        if codec == "avc1":
            _avc_entry(track, record)
        elif codec == "hvc1":
            _hevc_entry(track, record)
        elif codec == "vvc1":
            _vvc_entry(track, record)
        elif codec == "av01":
            _av1_entry(track, record, None)
        elif codec in ("vp09", "vp08"):
            # The record has no picture size: the first keyframe gives it.
            track.info = _vpcc(record)
        elif codec == "mp4a":
            _aac_entry(track, record)
        elif codec == "Opus":
            _opus_entry(track, record)
        elif codec == "fLaC":
            _flac_entry(track, record)
        elif codec not in ("ac-3", "ec-3", ".mp3"):
            raise LocalProtocolError(f"no ISO BMFF sample entry for codec {codec!r}")
        if codec == "Opus":
            track.default_duration = 960  # 20 ms, the usual Opus frame
        elif not track.is_video:
            track.default_duration = track.frame_ticks or 1024

    # ------------------------------------------------------------------ properties

    @property
    def ready(self) -> bool:
        """True when :meth:`init_segment` can be written.

        Tracks whose sample entry needs a frame wait for it: AC-3, E-AC-3 and MP3 (no
        configuration record: the first frame's header gives the sample rate and
        channels), VP8/VP9 (the picture size is in the first keyframe) and AV1 whose
        record has no sequence header OBU.
        """
        return all(track.ready for track in self._tracks)

    @property
    def codecs(self) -> list[str]:
        """The RFC 6381 codecs string of each track, in track order.

        A configless track that turned out to be E-AC-3 says ``ec-3`` (see
        :func:`aiortmp.media.codecs.codec_string`).
        """
        out = []
        for track in self._tracks:
            if track.codec in ("ac-3", "ec-3"):
                out.append(track.codec)
            else:
                out.append(codec_string(track.config))
        return out

    @property
    def timescales(self) -> list[int]:
        """Each track's ``mdhd`` timescale, Hz, in track order (audio ones may only be
        known once :attr:`ready`)."""
        return [track.timescale for track in self._tracks]

    @property
    def pending_duration_ms(self) -> float:
        """How much :meth:`fragment` would write now, ms: the longest run of queued
        samples with a known duration, over all tracks."""
        longest = 0.0
        for track in self._tracks:
            if len(track.dts) > 1:
                longest = max(longest, (track.dts[-1] - track.dts[0]) * 1000 / track.timescale)
        return longest

    # ------------------------------------------------------------------ init segment

    def init_segment(self, *, duration_ms: int = 0) -> bytes:
        """The initialization segment: ``ftyp`` + ``moov`` (ISO/IEC 14496-12 §8.2-§8.8).

        Its size does not depend on ``duration_ms`` (``mehd`` is version 1, 64-bit), so a
        recorder can write it at the start of the file, then rewrite it in place with the
        final duration when the recording closes.

        Args:
            duration_ms: The ``mehd`` fragment_duration (the whole presentation), ms; 0
                while unknown (live).

        Returns:
            The bytes.

        Raises:
            LocalProtocolError: Not :attr:`ready` yet.
        """
        missing = [track.number for track in self._tracks if not track.ready]
        if missing:
            raise LocalProtocolError(f"tracks {missing} wait for their first (key)frame")
        brands = [b"iso6"]
        if len(self._tracks) == 1:
            brands.append(b"cmfc")  # CMAF: one track per CMAF track file
        if any(track.codec == "av01" for track in self._tracks):
            brands.append(b"av01")  # AV1-ISOBMFF §2.1: files "should" carry it
        brands.append(b"mp41")
        ftyp = _ftyp(b"ftyp", b"iso6", brands)
        next_track_id = len(self._tracks) + 1
        mvhd = _full_box(
            b"mvhd",
            1,
            0,
            struct.pack(">QQIQ", 0, 0, MOVIE_TIMESCALE_HZ, 0),
            struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
            bytes(10),
            _MATRIX,
            bytes(24),  # pre_defined
            _U32.pack(next_track_id),
        )
        traks = [self._trak(track) for track in self._tracks]
        mehd = _full_box(b"mehd", 1, 0, struct.pack(">Q", duration_ms))
        trexs = [
            _full_box(b"trex", 0, 0, struct.pack(">IIIII", track.number, 1, 0, 0, 0))
            for track in self._tracks
        ]
        moov = _box(b"moov", mvhd, *traks, _box(b"mvex", mehd, *trexs))
        return ftyp + moov

    @staticmethod
    def _trak(track: _Track) -> bytes:
        if track.is_video:
            # tkhd width/height are the presentation size: the picture size here (a pasp
            # box in the sample entry carries a non-square sample aspect ratio).
            width, height = track.width << 16, track.height << 16
            volume = 0
            handler, name = b"vide", b"VideoHandler\x00"
            media_header = _full_box(b"vmhd", 0, 1, bytes(8))
        else:
            width = height = 0
            volume = 0x0100
            handler, name = b"soun", b"SoundHandler\x00"
            media_header = _full_box(b"smhd", 0, 0, bytes(4))
        tkhd = _full_box(
            b"tkhd",
            1,
            0x000003,  # track_enabled | track_in_movie
            struct.pack(">QQIIQ", 0, 0, track.number, 0, 0),
            bytes(8),
            struct.pack(">hhHH", 0, 0, volume, 0),  # layer, alternate_group, volume
            _MATRIX,
            struct.pack(">II", width, height),
        )
        mdhd = _full_box(
            b"mdhd", 1, 0, struct.pack(">QQIQHH", 0, 0, track.timescale, 0, _LANGUAGE_UND, 0)
        )
        hdlr = _full_box(b"hdlr", 0, 0, _U32.pack(0), handler, bytes(12), name)
        dref = _full_box(b"dref", 0, 0, _U32.pack(1), _full_box(b"url ", 0, 1))
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", 0, 0, _U32.pack(1), track.sample_entry),
            _full_box(b"stts", 0, 0, _U32.pack(0)),
            _full_box(b"stsc", 0, 0, _U32.pack(0)),
            _full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
            _full_box(b"stco", 0, 0, _U32.pack(0)),
        )
        minf = _box(b"minf", media_header, _box(b"dinf", dref), stbl)
        return _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))

    # ---------------------------------------------------------------------- samples

    def _learn(self, track: _Track, frame: Frame) -> bool:
        """Complete a track's sample entry from a frame; False: not from this one."""
        codec = track.codec
        if codec in ("ac-3", "ec-3"):
            _ac3_entry(track, frame.data)
            track.default_duration = 1536
        elif codec == ".mp3":
            _mp3_entry(track, frame.data)
            track.default_duration = 1152
        elif not frame.keyframe:
            return False
        elif codec in ("vp09", "vp08"):
            if codec == "vp09":
                size = vp9.parse_vp9_frame_size(frame.data)
            else:
                size = vp9.parse_vp8_frame_size(frame.data)
            if size is None:
                return False
            track.width, track.height = size
            track.sample_entry = _visual_sample_entry(
                codec.encode(), track.width, track.height, track.info
            )
            track.ready = True
        elif codec == "av01":
            for obu_type, payload in av1.iter_obus(frame.data):
                if obu_type == av1.OBU_SEQUENCE_HEADER:
                    _av1_entry(track, track.info, av1.parse_av1_sequence_header(payload))
                    break
            else:
                return False
        return True

    def add(self, frame: Frame) -> None:
        """Queue one frame as a sample of its track.

        Frames of unknown tracks (and of another codec than the track's) are ignored, and
        so are frames before ``origin_ms`` and the frames of a video track before its
        first keyframe (they cannot be decoded).

        Args:
            frame: The access unit.

        Raises:
            CodecHeaderError: The frame that should complete a track's sample entry (the
                first AC-3/E-AC-3/MP3 frame, the first VP8/VP9/AV1 keyframe) has a
                malformed header; the frame is dropped and the next one tried.
        """
        track = self._by_key.get((frame.media, frame.track_id))
        if track is None or frame.codec != track.config.codec or frame.dts_ms < self._origin_ms:
            return
        if not track.started:
            if not frame.keyframe:
                return
            if not track.ready and not self._learn(track, frame):
                return
            track.started = True
        elif not track.ready and not self._learn(track, frame):
            return
        dts_list = track.dts
        if dts_list:
            previous = dts_list[-1]
        else:
            previous = -1 if track.written_end is None else track.written_end - 1
        timescale = track.timescale
        dts = (frame.dts_ms - self._origin_ms) * timescale // 1000
        if not track.is_video:
            ticks = track.frame_ticks or _audio_frame_ticks(track.codec, frame.data)
            natural = track.next_dts
            if natural is not None and ticks is not None:
                # Keep the sample clock unless the timestamps say it drifted by more
                # than a frame (2 ms at least, the rounding of two ms timestamps).
                if abs(dts - natural) <= max(ticks, timescale // 500):
                    dts = natural
            if dts <= previous:
                dts = previous + 1
            track.next_dts = dts + ticks if ticks is not None else None
        elif dts <= previous:
            # Decode times must increase (§8.6.1.2: "sample durations ... positive").
            dts = previous + 1
        if dts_list:
            track.last_duration = dts - previous
        dts_list.append(dts)
        track.cto.append(frame.cts_ms * timescale // 1000)
        track.sync.append(frame.keyframe)
        data = frame.data
        if track.strip_temporal_delimiter and data[:2] == _AV1_TEMPORAL_DELIMITER and len(data) > 2:
            # AV1-ISOBMFF §2.4: "OBUs of type OBU_TEMPORAL_DELIMITER ... SHOULD NOT be
            # used" in samples; E-RTMP publishers (FFmpeg) start each frame with one.
            data = data[2:]
        track.data.append(data)

    # --------------------------------------------------------------------- fragments

    def fragment(self, *, end_ms: int | None = None, final: bool = False) -> FMP4Fragment | None:
        """Write the queued samples whose duration is known as one fragment.

        Args:
            end_ms: Only samples whose decode time is before this timestamp (ms, the
                ``Frame.dts_ms`` scale): to end an LL-HLS segment just before a keyframe,
                add the keyframe, then call ``fragment(end_ms=keyframe.dts_ms)``.
            final: Also write each track's last sample, with its frame length (audio) or
                the previous sample's duration (video) as its duration: at the end of a
                stream.

        Returns:
            The fragment, or None when no sample can be written.
        """
        limit = None if end_ms is None else end_ms - self._origin_ms
        chosen: list[tuple[_Track, int]] = []
        for track in self._tracks:
            dts = track.dts
            count = len(dts) if final else len(dts) - 1
            if limit is not None and count > 0:
                # dts * 1000 < limit * timescale  <=>  decode time before end_ms.
                bound = limit * track.timescale
                while count > 0 and dts[count - 1] * 1000 >= bound:
                    count -= 1
            if count > 0:
                chosen.append((track, count))
        if not chosen:
            return None
        self._sequence_number += 1

        # Sizes first: each trun's data_offset counts from the start of the moof.
        traf_sizes = []
        for track, count in chosen:
            tfhd_size = 16 if track.is_video else 20
            per_sample = 16 if track.is_video else 8
            traf_sizes.append(8 + tfhd_size + 20 + 20 + per_sample * count)
        moof_size = 8 + 16 + sum(traf_sizes)
        payload_size = sum(len(d) for track, count in chosen for d in track.data[:count])
        mdat_header_size = 8 if payload_size + 8 <= 0xFFFFFFFF else 16
        data_offset = moof_size + mdat_header_size

        parts: list[bytes] = [
            _U32.pack(moof_size),
            b"moof",
            struct.pack(">I4sII", 16, b"mfhd", 0, self._sequence_number),
        ]
        payloads: list[bytes] = []
        start_ms = end_ms_out = None
        independent = True
        video_seen = 0
        sample_count = 0
        for (track, count), traf_size in zip(chosen, traf_sizes, strict=True):
            dts = track.dts
            data = track.data[:count]
            sizes = [len(d) for d in data]
            if count < len(dts):
                durations = [dts[i + 1] - dts[i] for i in range(count)]
            else:
                durations = [dts[i + 1] - dts[i] for i in range(count - 1)]
                if not track.is_video and track.next_dts is not None:
                    durations.append(track.next_dts - dts[-1])
                else:
                    durations.append(track.last_duration or track.default_duration)
            base = dts[0]
            end = dts[count - 1] + durations[-1]
            if track.is_video:
                video_seen += 1
                independent = independent and track.sync[0]
                sync = track.sync
                cto = track.cto
                values = array(_U32_CODE, bytes(16 * count))
                values[0::4] = array(_U32_CODE, durations)
                values[1::4] = array(_U32_CODE, sizes)
                values[2::4] = array(
                    "I", [_SYNC_FLAGS if sync[i] else _NON_SYNC_FLAGS for i in range(count)]
                )
                values[3::4] = array(_U32_CODE, [c & 0xFFFFFFFF for c in cto[:count]])
                tfhd = struct.pack(">I4sII", 16, b"tfhd", _TFHD_DEFAULT_BASE_IS_MOOF, track.number)
                trun_flags = _VIDEO_TRUN
            else:
                values = array(_U32_CODE, bytes(8 * count))
                values[0::2] = array(_U32_CODE, durations)
                values[1::2] = array(_U32_CODE, sizes)
                tfhd = struct.pack(
                    ">I4sIII",
                    20,
                    b"tfhd",
                    _TFHD_DEFAULT_BASE_IS_MOOF | _TFHD_DEFAULT_SAMPLE_FLAGS,
                    track.number,
                    _SYNC_FLAGS,
                )
                trun_flags = _AUDIO_TRUN
            if _SWAP:
                values.byteswap()
            trun_size = 20 + len(values) * 4
            parts.append(struct.pack(">I4s", traf_size, b"traf"))
            parts.append(tfhd)
            parts.append(struct.pack(">I4sIQ", 20, b"tfdt", 0x01000000, base))
            parts.append(
                struct.pack(
                    ">I4sIIi", trun_size, b"trun", 0x01000000 | trun_flags, count, data_offset
                )
            )
            parts.append(values.tobytes())
            payloads.extend(data)
            data_offset += sum(sizes)
            sample_count += count

            first_ms = self._origin_ms + base * 1000 / track.timescale
            last_ms = self._origin_ms + end * 1000 / track.timescale
            start_ms = first_ms if start_ms is None else min(start_ms, first_ms)
            end_ms_out = last_ms if end_ms_out is None else max(end_ms_out, last_ms)

            # Drop what was written; the rest (at least the last sample) stays queued.
            del track.dts[:count], track.cto[:count], track.sync[:count], track.data[:count]
            track.written_end = end

        if mdat_header_size == 8:
            parts.append(struct.pack(">I4s", 8 + payload_size, b"mdat"))
        else:
            parts.append(struct.pack(">I4sQ", 1, b"mdat", 16 + payload_size))
        parts.extend(payloads)
        video_tracks = sum(1 for track in self._tracks if track.is_video)
        assert start_ms is not None and end_ms_out is not None
        return FMP4Fragment(
            data=b"".join(parts),
            sequence_number=self._sequence_number,
            start_ms=start_ms,
            end_ms=end_ms_out,
            independent=independent and video_seen == video_tracks,
            sample_count=sample_count,
        )
