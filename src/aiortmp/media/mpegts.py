"""MPEG-2 transport stream muxer for HLS (ISO/IEC 13818-1; RFC 8216 §3.2).

:class:`TSMuxer` is sans-I/O: :class:`~aiortmp.media.samples.Frame` units in, 188-byte
transport stream packets out. It writes one program (PAT, then a PMT on PID 0x1000) with
one video elementary stream on PID 0x100 and the audio streams on PID 0x101 onwards:

==========  ============  =========  ==========================================================
codec       stream_type   stream_id  elementary stream
==========  ============  =========  ==========================================================
``avc1``    0x1B          0xE0       H.264 byte stream (H.264 Annex B): an access unit
                                     delimiter, SPS/PPS before key frames, start codes
``hvc1``    0x24          0xE0       H.265 byte stream (H.265 Annex B), AUD and VPS/SPS/PPS
``mp4a``    0x0F          0xC0+      AAC in ADTS (ISO/IEC 13818-7 §6.2, 14496-3 §1.A.2)
``.mp3``    0x03 / 0x04   0xC0+      MPEG-1 / MPEG-2 (LSF) audio frames as they are
``ac-3``    0x81          0xBD       AC-3 sync frames (ATSC A/52 Annex A)
``ec-3``    0x87          0xBD       E-AC-3 sync frames (ATSC A/52 Annex G)
==========  ============  =========  ==========================================================

Other codecs (AV1, VP8/9, VVC, Opus, FLAC), AAC that ADTS cannot describe, and video tracks
after the first are left out; :attr:`TSMuxer.excluded` says which and why. Note that Apple's
HLS Authoring Specification (1.5) wants HEVC in fMP4 only: HEVC in TS is for other players.

How an HLS segmenter uses it, so that every segment decodes on its own
(EXT-X-INDEPENDENT-SEGMENTS, RFC 8216 §4.3.5.1):

.. code-block:: python

    mux = TSMuxer(tracks)
    segment = bytearray(mux.segment_header())      # PAT + PMT
    for frame in frames:
        if frame.media is MediaType.VIDEO and frame.keyframe and segment_is_long_enough:
            segment += mux.flush()                  # audio still held for bundling
            publish(bytes(segment))
            segment = bytearray(mux.segment_header())
        segment += mux.add(frame)

Timing (ISO/IEC 13818-1 §2.4.2, §2.7.4): PTS/DTS are ``(t_ms + timestamp_offset_ms) * 90``
modulo 2**33 (the offset keeps them positive when the composition offset is negative and
leaves room for the PCR delay, as FFmpeg starts its TS output at 1.4 s); PCR =
max(latest DTS seen - ``pcr_delay_ms``, last PCR), so it never runs backwards and stays
behind the PTS/DTS that follow it as long as the tracks' interleaving skew plus the audio
held for bundling stays under ``pcr_delay_ms``. Every PES on the PCR PID (the video PID, else the
first audio PID) carries a PCR, as FFmpeg does in VBR mode; when that PID falls silent for
``pcr_interval_ms`` an adaptation-only packet carries one (§2.7.2: at most 0.1 s apart).

Hot path: one :meth:`TSMuxer.add` per frame of a live stream. PSI sections, parameter sets
and ADTS header bytes are precomputed per track; a PES is joined once, and the packetizer
does its per-packet work in C (``struct`` cuts the payloads, ``join`` puts the headers
between them, one strided assignment writes the continuity counters): about 0.3 us per
packet, 0.1 % of a core for a 4 Mbit/s stream.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiortmp.media.audio_config import (
    parse_ac3_frame_header,
    parse_audio_specific_config,
    parse_mpeg_audio_frame_header,
)
from aiortmp.media.avc import parse_avc_decoder_configuration_record
from aiortmp.media.errors import CodecHeaderError, FrameError
from aiortmp.media.hevc import parse_hevc_decoder_configuration_record
from aiortmp.media.samples import Frame, MediaType, TrackConfig
from aiortmp.protocol.errors import LocalProtocolError

__all__ = [
    "AUDIO_PID",
    "PMT_PID",
    "TS_PACKET_SIZE",
    "VIDEO_PID",
    "ExcludedTrack",
    "FrameError",
    "TSMuxer",
    "TSTrack",
    "mpeg2_crc32",
]

#: Bytes in a transport stream packet.
TS_PACKET_SIZE = 188
#: The PID of the (only) video stream.
VIDEO_PID = 0x100
#: The PID of the first audio stream; the next ones follow.
AUDIO_PID = 0x101
#: The PID of the program map table (FFmpeg's choice, which players are used to).
PMT_PID = 0x1000

_PAT_PID = 0x0000
_NULL_PID = 0x1FFF  # PCR_PID when the program has no stream (§2.4.4.9)
_PROGRAM_NUMBER = 1
_TRANSPORT_STREAM_ID = 1
_PAYLOAD_SIZE = 184
_MASK33 = (1 << 33) - 1
_HALF33 = 1 << 32
_STUFFING = b"\xff" * TS_PACKET_SIZE
_MAX_SECTION = _PAYLOAD_SIZE - 1  # one packet, after the pointer_field
_MAX_PES_LENGTH = 0xFFFF
_MAX_ADTS_FRAME = 0x1FFF  # 13-bit frame_length, header included

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_ADTS = struct.Struct(">HBBHB")

# ISO/IEC 13818-1 Table 2-34 and ATSC A/52 Annex A/G.
_STREAM_TYPE_MPEG1_AUDIO = 0x03
_STREAM_TYPE_MPEG2_AUDIO = 0x04
_STREAM_TYPE_AAC_ADTS = 0x0F
_STREAM_TYPE_H264 = 0x1B
_STREAM_TYPE_HEVC = 0x24
_STREAM_TYPE_AC3 = 0x81
_STREAM_TYPE_EAC3 = 0x87

_STREAM_ID_VIDEO = 0xE0
_STREAM_ID_AUDIO = 0xC0  # + the audio stream's index (0xC0-0xDF)
_STREAM_ID_PRIVATE_1 = 0xBD  # A/52 A.2: "The value of stream_id ... shall be 0xBD"

# Registration descriptors (§2.6.8), the format identifiers FFmpeg writes and reads.
_REGISTRATION_TAG = 0x05
_FORMAT_IDS = {"hvc1": b"HEVC", "ac-3": b"AC-3", "ec-3": b"EAC3"}
_AC3_DESCRIPTOR_TAG = 0x81  # A/52 A.4.3 AC-3_audio_stream_descriptor
_EAC3_DESCRIPTOR_TAG = 0xCC  # A/52 G.3.5 E-AC-3_audio_descriptor
# Worst-case ES_info bytes per codec, so that a PMT refined later still fits a packet.
_MAX_ES_INFO = {"hvc1": 6, "ac-3": 6 + 5, "ec-3": 6 + 5}

_H264_AUD = b"\x00\x00\x00\x01\x09\xf0"  # nal_unit_type 9, primary_pic_type 7 (any slice)
_HEVC_AUD = b"\x00\x00\x00\x01\x46\x01\x50"  # nal_unit_type 35, pic_type 2 (I, P, B)
_START_CODE = b"\x00\x00\x00\x01"
_H264_AUD_TYPE, _H264_SPS_TYPE = 9, 7
_HEVC_AUD_TYPE, _HEVC_SPS_TYPE = 35, 33
# HEVC parameter set order in a byte stream: VPS, SPS, PPS, then prefix SEI (H.265 §7.4.2.4.4).
_HEVC_PARAMETER_ORDER = (32, 33, 34, 39)

# 14496-3 Table 1.18 samplingFrequencyIndex (ADTS cannot escape to an explicit rate).
_ADTS_SAMPLE_RATES = {
    rate: index
    for index, rate in enumerate(
        (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
    )
}
_AC3_SAMPLES_PER_FRAME = 1536
_EAC3_BLOCKS = (1, 2, 3, 6)  # numblkscod (A/52 Table E2.3)


#: PES packets to send, in order: (stream, PES bytes, random access point).
_PESList = list[tuple["_Stream", bytes | bytearray, bool]]


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def mpeg2_crc32(data: bytes | bytearray | memoryview) -> int:
    """The CRC of a PSI section (ISO/IEC 13818-1 Annex A, CRC-32/MPEG-2).

    Polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR: a
    section followed by its ``CRC_32`` field checks to 0.

    Args:
        data: the section bytes before ``CRC_32``.

    Returns:
        The 32-bit CRC.
    """
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


@dataclass(frozen=True, kw_only=True, slots=True)
class TSTrack:
    """A track the muxer carries.

    Attributes:
        config: the track's configuration.
        pid: its elementary stream PID.
        stream_type: its PMT ``stream_type`` (ISO/IEC 13818-1 Table 2-34).
    """

    config: TrackConfig
    pid: int
    stream_type: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ExcludedTrack:
    """A track the muxer leaves out.

    Attributes:
        config: the track's configuration.
        reason: why, for operators' logs.
    """

    config: TrackConfig
    reason: str


class _Unsupported(Exception):
    """Internal: a track cannot be carried (the message says why)."""


class _Stream:
    """Mutable per-PID state (one per carried track)."""

    __slots__ = (
        "adts_b2",
        "adts_b3",
        "aud",
        "cc",
        "config",
        "described",
        "descriptors",
        "duration_ms",
        "expected_ms",
        "first_dts_ms",
        "hevc",
        "kind",
        "length_size",
        "parameter_sets",
        "pending",
        "pending_pts90",
        "pending_size",
        "pid",
        "sps_type",
        "aud_type",
        "stream_id",
        "stream_type",
        "video",
    )

    def __init__(self, config: TrackConfig, pid: int, stream_id: int) -> None:
        self.config = config
        self.pid = pid
        self.stream_id = stream_id
        self.cc = 15  # the last continuity_counter sent: the first packet gets 0
        self.video = config.media is MediaType.VIDEO
        self.kind = config.codec
        self.stream_type = 0
        self.descriptors = b""
        self.described = True
        # video
        self.hevc = False
        self.length_size = 4
        self.aud = b""
        self.parameter_sets = b""
        self.aud_type = self.sps_type = 0
        # audio
        self.adts_b2 = self.adts_b3 = 0
        self.duration_ms: float | None = None
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.pending_pts90 = 0
        self.first_dts_ms = 0
        self.expected_ms = 0.0


def _registration(codec: str) -> bytes:
    fmt = _FORMAT_IDS.get(codec)
    return bytes((_REGISTRATION_TAG, 4)) + fmt if fmt else b""


def _configure(st: _Stream) -> None:
    """Derive the stream's PMT entry and packaging from its configuration.

    Raises:
        _Unsupported: the codec or its configuration cannot be carried.
    """
    config = st.config
    codec = config.codec
    try:
        if codec == "avc1":
            avc = parse_avc_decoder_configuration_record(config.record)
            st.stream_type = _STREAM_TYPE_H264
            st.length_size = avc.nal_length_size_bytes
            st.aud, st.aud_type, st.sps_type = _H264_AUD, _H264_AUD_TYPE, _H264_SPS_TYPE
            units: Iterable[bytes] = (*avc.sps, *avc.sps_ext, *avc.pps)
            st.parameter_sets = b"".join(_START_CODE + unit for unit in units)
        elif codec == "hvc1":
            hvc = parse_hevc_decoder_configuration_record(config.record)
            st.stream_type = _STREAM_TYPE_HEVC
            st.hevc = True
            st.length_size = hvc.nal_length_size_bytes
            st.aud, st.aud_type, st.sps_type = _HEVC_AUD, _HEVC_AUD_TYPE, _HEVC_SPS_TYPE
            st.parameter_sets = b"".join(
                _START_CODE + unit
                for nal_type in _HEVC_PARAMETER_ORDER
                for unit in hvc.nal_units_of_type(nal_type)
            )
        elif codec == "mp4a":
            _configure_aac(st)
        elif codec == ".mp3":
            st.stream_type = _STREAM_TYPE_MPEG1_AUDIO  # until a frame says MPEG-2 LSF
            st.described = False
        elif codec in ("ac-3", "ec-3"):
            st.stream_type = _STREAM_TYPE_AC3 if codec == "ac-3" else _STREAM_TYPE_EAC3
            st.described = False
        else:
            raise _Unsupported(f"{codec} has no MPEG-TS mapping for HLS players")
    except CodecHeaderError as exc:
        raise _Unsupported(f"{codec} configuration record: {exc}") from None
    st.descriptors = _registration(codec)


def _configure_aac(st: _Stream) -> None:
    asc = parse_audio_specific_config(st.config.record)
    # ADTS has the core coder's profile and rate; SBR/PS are found implicitly by the
    # decoder (14496-3 §1.6.5.2), which is how HE-AAC travels in ADTS.
    profile = asc.core_audio_object_type - 1
    if not 0 <= profile <= 3:
        raise _Unsupported(
            f"AAC object type {asc.core_audio_object_type} does not fit ADTS (profile 0-3)"
        )
    index = _ADTS_SAMPLE_RATES.get(asc.sampling_frequency_hz)
    if index is None:
        raise _Unsupported(f"AAC rate {asc.sampling_frequency_hz} Hz has no ADTS index")
    channels = asc.channel_configuration
    if not 1 <= channels <= 7:
        raise _Unsupported(f"AAC channelConfiguration {channels} does not fit ADTS")
    st.stream_type = _STREAM_TYPE_AAC_ADTS
    st.adts_b2 = profile << 6 | index << 2 | channels >> 2
    st.adts_b3 = (channels & 3) << 6
    samples = asc.frame_length_samples or 1024
    st.duration_ms = samples * 1000 / asc.sampling_frequency_hz


def _describe(st: _Stream, data: bytes) -> bool:
    """Fill in what a config-less codec's first frame tells (stream_type, descriptors).

    Returns:
        True when the PMT entry changed.
    """
    before = (st.stream_type, st.descriptors)
    try:
        if st.kind == ".mp3":
            mpeg = parse_mpeg_audio_frame_header(data)
            if mpeg.version != "MPEG-1":
                # Table 2-34: 0x04 is ISO/IEC 13818-3 audio (the low sampling frequencies).
                st.stream_type = _STREAM_TYPE_MPEG2_AUDIO
            st.duration_ms = mpeg.samples_per_frame * 1000 / mpeg.sample_rate_hz
        else:
            ac3 = parse_ac3_frame_header(data)
            if ac3.enhanced != (st.kind == "ec-3"):
                return False  # the FourCC and the bitstream disagree: say nothing more
            if ac3.enhanced:
                fscod = data[4] >> 6
                blocks = 6 if fscod == 3 else _EAC3_BLOCKS[(data[4] >> 4) & 3]
                st.duration_ms = blocks * 256 * 1000 / ac3.sample_rate_hz
                st.descriptors = _registration(st.kind) + _eac3_descriptor(ac3.acmod, ac3.bsid)
            else:
                st.duration_ms = _AC3_SAMPLES_PER_FRAME * 1000 / ac3.sample_rate_hz
                st.descriptors = _registration(st.kind) + _ac3_descriptor(data, ac3.acmod)
    except CodecHeaderError:
        return False  # try again with the next frame; the bytes are muxed regardless
    st.described = True
    return (st.stream_type, st.descriptors) != before


def _ac3_descriptor(frame: bytes, acmod: int) -> bytes:
    """The ATSC ``AC-3_audio_stream_descriptor`` (A/52 A.4.3), up to ``full_svc``."""
    fscod, frmsizecod = frame[4] >> 6, frame[4] & 0x3F
    bsid, bsmod = frame[5] >> 3, frame[5] & 0x07
    # dsurmod directly follows acmod in 2/0 mode (no cmixlev/surmixlev then, §5.3.2).
    surround_mode = (frame[6] >> 3) & 0x03 if acmod == 2 else 0
    return bytes(
        (
            _AC3_DESCRIPTOR_TAG,
            3,
            fscod << 5 | bsid,  # sample_rate_code 000/001/010 = fscod 48/44.1/32 kHz
            (frmsizecod >> 1) << 2 | surround_mode,  # bit_rate_code: exact rate
            bsmod << 5 | acmod << 1 | 1,  # num_channels 0000-0111 = acmod; full_svc
        )
    )


def _eac3_descriptor(acmod: int, bsid: int) -> bytes:
    """The ATSC ``E-AC-3_audio_descriptor`` (A/52 G.3.5), with ``bsid``."""
    # number_of_channels: 000 mono, 001 1+1, 010 2 channels, 100 more than two.
    channels = {0: 0b001, 1: 0b000, 2: 0b010}.get(acmod, 0b100)
    return bytes(
        (
            _EAC3_DESCRIPTOR_TAG,
            3,
            0x80 | 0x40,  # reserved, bsid_flag; no mainid/asvc/mixinfo/substreams
            0x80 | 0x40 | channels,  # reserved, full_service_flag, complete main service
            0x20 | bsid,  # no language fields; reserved; bsid
        )
    )


def _put_timestamp(buf: bytearray, offset: int, prefix: int, ticks: int) -> None:
    """Write a 5-byte PTS or DTS field (§2.4.3.7): 3 + 15 + 15 bits between marker bits."""
    buf[offset] = prefix << 4 | (ticks >> 29) & 0x0E | 1
    _U16.pack_into(buf, offset + 1, (ticks >> 14) & 0xFFFE | 1)
    _U16.pack_into(buf, offset + 3, (ticks << 1) & 0xFFFE | 1)


def _pes_header(
    stream_id: int, payload_size: int | None, pts90: int | None, dts90: int | None, aligned: bool
) -> bytearray:
    """A PES packet header (§2.4.3.6); ``payload_size`` None writes PES_packet_length 0."""
    header_data = 0 if pts90 is None else 5 if dts90 is None else 10
    header = bytearray(9 + header_data)
    header[2] = 1
    header[3] = stream_id
    if payload_size is not None:
        _U16.pack_into(header, 4, 3 + header_data + payload_size)
    # '10', not scrambled, no priority, data_alignment_indicator: the payload starts with
    # an access unit delimiter / audio sync word (alignment type 01, Table 2-54).
    header[6] = 0x84 if aligned else 0x80
    header[8] = header_data
    if pts90 is not None:
        if dts90 is None:
            header[7] = 0x80
            _put_timestamp(header, 9, 0b0010, pts90)
        else:
            header[7] = 0xC0
            _put_timestamp(header, 9, 0b0011, pts90)
            _put_timestamp(header, 14, 0b0001, dts90)
    return header


def _write_adaptation_field(
    buf: bytearray, offset: int, total: int, flags: int, pcr90: int | None
) -> None:
    """Write an adaptation field of ``total`` bytes (length byte included) at ``offset``."""
    buf[offset] = total - 1
    if total == 1:
        return  # a lone adaptation_field_length of 0: one byte of stuffing
    buf[offset + 1] = flags
    pos = offset + 2
    if pcr90 is not None:
        # program_clock_reference_base (33 bits), 6 reserved bits, extension 0 (§2.4.3.5).
        _U32.pack_into(buf, pos, pcr90 >> 1)
        buf[pos + 4] = (pcr90 & 1) << 7 | 0x7E
        buf[pos + 5] = 0
        pos += 6
    end = offset + total
    if end > pos:
        buf[pos:end] = _STUFFING[: end - pos]


class TSMuxer:
    """Mux one program of H.264/HEVC video and AAC/MP3/AC-3/E-AC-3 audio into MPEG-TS.

    ISO/IEC 13818-1 §2.4 (packets, PES, PCR), §2.4.4 (PAT, PMT); H.264 and H.265 Annex B
    byte streams; ADTS (ISO/IEC 13818-7 §6.2); ATSC A/52 Annex A/G; Apple's HLS authoring
    rules for MPEG-TS (a PES per video frame starting with an access unit delimiter,
    parameter sets in every key frame, segments that start with PAT, PMT and a key frame).

    Audio access units are bundled into one PES (as FFmpeg's HLS muxer does) while they
    are contiguous in time, at most ``audio_pes_max_bytes`` and ``audio_pes_max_ms``;
    :meth:`flush` emits what is held.

    Args:
        tracks: the tracks, video first or not; PIDs follow their order (the first video
            track carried gets :data:`VIDEO_PID`, audio tracks :data:`AUDIO_PID` onwards).
        timestamp_offset_ms: added to every timestamp, ms (keeps PTS/DTS/PCR positive).
        pcr_delay_ms: how far the PCR runs behind the latest DTS, ms.
        pcr_interval_ms: longest DTS span without a PCR before an adaptation-only packet
            carries one, ms.
        audio_pes_max_bytes: largest audio PES payload, bytes (FFmpeg's 2930 fills 16
            packets); 0 makes one PES per frame.
        audio_pes_max_ms: longest audio PES, by the DTS of its first and last frame, ms.

    Raises:
        LocalProtocolError: an argument is out of range.
    """

    def __init__(
        self,
        tracks: Sequence[TrackConfig],
        *,
        timestamp_offset_ms: int = 1400,
        pcr_delay_ms: int = 700,
        pcr_interval_ms: int = 60,
        audio_pes_max_bytes: int = 2930,
        audio_pes_max_ms: int = 300,
    ) -> None:
        if not 0 <= pcr_delay_ms <= timestamp_offset_ms:
            raise LocalProtocolError(
                f"pcr_delay_ms must be in [0, timestamp_offset_ms], got {pcr_delay_ms}"
            )
        if audio_pes_max_ms >= pcr_delay_ms:
            # A held audio frame must still be ahead of the PCR when its PES goes out.
            raise LocalProtocolError("audio_pes_max_ms must be below pcr_delay_ms")
        if not 1 <= pcr_interval_ms <= 100:
            raise LocalProtocolError(f"pcr_interval_ms must be in [1, 100], got {pcr_interval_ms}")
        if not 0 <= audio_pes_max_bytes <= _MAX_PES_LENGTH - 13 or audio_pes_max_ms < 0:
            raise LocalProtocolError("audio PES limits out of range")
        self._offset90 = timestamp_offset_ms * 90
        self._delay90 = pcr_delay_ms * 90
        self._pcr_interval90 = pcr_interval_ms * 90
        self._max_bytes = audio_pes_max_bytes
        self._max_ms = audio_pes_max_ms
        self._streams: dict[tuple[MediaType, int], _Stream] = {}
        self._excluded: dict[tuple[MediaType, int], ExcludedTrack] = {}
        self._order: list[tuple[MediaType, int]] = []
        self._pids: dict[tuple[MediaType, int], int] = {}
        self._next_audio_pid = AUDIO_PID
        self._audio: list[_Stream] = []
        self._pcr_pid = _NULL_PID
        self._pcr90: int | None = None
        self._pat_cc = 15
        self._pmt_cc = 15
        self._pmt_version = 0
        self._pmt_section = b""
        self._pmt_sent = False
        self._pat = self._psi_packet(_PAT_PID, self._pat_section())
        self._need_pat = self._need_pmt = True
        for config in tracks:
            self._set_track(config)
        self._pmt_section = self._build_pmt_section()

    # ------------------------------------------------------------------ properties

    @property
    def tracks(self) -> tuple[TSTrack, ...]:
        """The carried tracks, in PMT order."""
        return tuple(
            TSTrack(config=st.config, pid=st.pid, stream_type=st.stream_type)
            for st in self._ordered_streams()
        )

    @property
    def excluded(self) -> tuple[ExcludedTrack, ...]:
        """The tracks left out, with the reason."""
        return tuple(self._excluded[key] for key in self._order if key in self._excluded)

    @property
    def pcr_pid(self) -> int:
        """The PID whose packets carry the PCR (0x1FFF when nothing is carried)."""
        return self._pcr_pid

    # ------------------------------------------------------------------ tracks

    def update_track(self, config: TrackConfig) -> None:
        """Take a new configuration for a track (a new sequence header), or a new track.

        Video parameter sets and ADTS headers follow the new record from the next frame
        on; audio held for bundling stays held (its headers are written already), unless
        the track is left out now: then it is dropped (call :meth:`flush` first to keep
        it). A track keeps its PID. When the PMT changes (codec, stream added or left
        out) its version_number is incremented and the next output carries it (§2.4.4.8).

        Args:
            config: the track's new configuration.
        """
        self._set_track(config)
        self._rebuild_pmt()

    def _set_track(self, config: TrackConfig) -> None:
        key = (config.media, config.track_id)
        if key not in self._order:
            self._order.append(key)
        self._excluded.pop(key, None)
        old = self._streams.pop(key, None)
        try:
            st = self._new_stream(config, key, old)
        except _Unsupported as exc:
            self._excluded[key] = ExcludedTrack(config=config, reason=str(exc))
        else:
            self._streams[key] = st
        self._audio = [st for st in self._ordered_streams() if not st.video]
        video = [st for st in self._ordered_streams() if st.video]
        if video:
            self._pcr_pid = video[0].pid
        elif self._audio:
            self._pcr_pid = self._audio[0].pid
        else:
            self._pcr_pid = _NULL_PID

    def _new_stream(
        self, config: TrackConfig, key: tuple[MediaType, int], old: _Stream | None
    ) -> _Stream:
        if config.media is MediaType.VIDEO:
            if any(st.video for st in self._streams.values()):
                raise _Unsupported("one video track per program: another one is carried")
            pid, stream_id = VIDEO_PID, _STREAM_ID_VIDEO
        else:
            pid = self._pids.get(key, self._next_audio_pid)
            index = pid - AUDIO_PID
            private = config.codec in ("ac-3", "ec-3")
            stream_id = _STREAM_ID_PRIVATE_1 if private else _STREAM_ID_AUDIO + (index & 0x1F)
        st = _Stream(config, pid, stream_id)
        _configure(st)
        if self._section_size(extra=st) > _MAX_SECTION:
            raise _Unsupported("the PMT is full (one TS packet)")
        if old is not None and old.pid == pid:
            st.cc = old.cc  # continuity goes on across a configuration change
            st.pending, st.pending_size = old.pending, old.pending_size
            st.pending_pts90, st.first_dts_ms = old.pending_pts90, old.first_dts_ms
            st.expected_ms = old.expected_ms
            if old.kind == st.kind and not st.described and old.described:
                st.stream_type, st.descriptors = old.stream_type, old.descriptors
                st.duration_ms, st.described = old.duration_ms, True
        if not st.video and key not in self._pids:
            self._next_audio_pid += 1
        self._pids[key] = pid
        return st

    def _ordered_streams(self) -> list[_Stream]:
        return [self._streams[key] for key in self._order if key in self._streams]

    # ------------------------------------------------------------------ PSI

    def _section_size(self, extra: _Stream | None = None) -> int:
        streams = self._ordered_streams() + ([extra] if extra is not None else [])
        return 16 + sum(5 + _MAX_ES_INFO.get(st.kind, 0) for st in streams)

    def _pat_section(self) -> bytes:
        body = bytearray(12)
        body[0] = 0x00  # table_id: program_association_section
        _U16.pack_into(body, 1, 0xB000 | 13)  # section_syntax_indicator, '0', reserved
        _U16.pack_into(body, 3, _TRANSPORT_STREAM_ID)
        body[5] = 0xC1  # reserved, version_number 0, current_next_indicator
        _U16.pack_into(body, 8, _PROGRAM_NUMBER)
        _U16.pack_into(body, 10, 0xE000 | PMT_PID)
        return bytes(body) + _U32.pack(mpeg2_crc32(body))

    def _build_pmt_section(self) -> bytes:
        entries = bytearray()
        for st in self._ordered_streams():
            entries += bytes((st.stream_type,))
            entries += _U16.pack(0xE000 | st.pid)
            entries += _U16.pack(0xF000 | len(st.descriptors))
            entries += st.descriptors
        body = bytearray(12)
        body[0] = 0x02  # table_id: TS_program_map_section
        _U16.pack_into(body, 1, 0xB000 | (9 + len(entries) + 4))
        _U16.pack_into(body, 3, _PROGRAM_NUMBER)
        body[5] = 0xC1 | self._pmt_version << 1
        _U16.pack_into(body, 8, 0xE000 | self._pcr_pid)
        _U16.pack_into(body, 10, 0xF000)  # program_info_length 0
        body += entries
        return bytes(body) + _U32.pack(mpeg2_crc32(body))

    def _rebuild_pmt(self) -> None:
        section = self._build_pmt_section()
        if section == self._pmt_section:
            return
        if self._pmt_sent:
            # "incremented by 1 modulo 32 whenever the definition of the Program Map Table
            # changes" (§2.4.4.9): once per version a receiver may have seen.
            self._pmt_version = (self._pmt_version + 1) & 0x1F
            self._pmt_sent = False
            section = self._build_pmt_section()
        self._pmt_section = section
        self._need_pmt = True

    @staticmethod
    def _psi_packet(pid: int, section: bytes) -> bytearray:
        packet = bytearray(_STUFFING)
        _U32.pack_into(packet, 0, 0x47400010 | pid << 8)  # payload_unit_start, payload only
        packet[4] = 0  # pointer_field
        packet[5 : 5 + len(section)] = section
        return packet

    def _pat_packet(self) -> bytes:
        self._pat_cc = (self._pat_cc + 1) & 0x0F
        self._pat[3] = 0x10 | self._pat_cc
        self._need_pat = False
        return bytes(self._pat)

    def _pmt_packet(self) -> bytes:
        self._pmt_cc = (self._pmt_cc + 1) & 0x0F
        packet = self._psi_packet(PMT_PID, self._pmt_section)
        packet[3] = 0x10 | self._pmt_cc
        self._need_pmt = False
        self._pmt_sent = True
        return bytes(packet)

    def segment_header(self) -> bytes:
        """The PAT and PMT that start every segment.

        RFC 8216 §3.2: "The first two Transport Stream packets in a Segment without an
        EXT-X-MAP tag SHOULD be a PAT and a PMT."

        Returns:
            Two TS packets.
        """
        return self._pat_packet() + self._pmt_packet()

    # ------------------------------------------------------------------ frames

    def add(self, frame: Frame) -> bytes:
        """Mux one access unit.

        A video frame becomes one PES at once; an audio frame may be held to share a PES
        with the next ones (see :meth:`flush`). The output may also carry the PMT (after
        :meth:`update_track`, or when an MP3/AC-3/E-AC-3 frame first describes its
        stream), audio held so far, and an adaptation-only packet with a PCR.

        Args:
            frame: an access unit from :func:`~aiortmp.media.samples.parse_media`. Frames
                of tracks the muxer does not carry (excluded, unknown, or of another
                codec than the track's configuration) are ignored.

        Returns:
            Whole TS packets (possibly none).

        Raises:
            FrameError: a video frame's NAL unit lengths overrun it, or an AAC frame is
                too long for ADTS.
        """
        st = self._streams.get((frame.media, frame.track_id))
        if st is None or st.kind != frame.codec:
            return b""
        dts_ms = frame.dts_ms
        dts90 = (dts_ms * 90 + self._offset90) & _MASK33
        # The mux clock: the latest DTS less the delay, never running backwards.
        clock = (dts90 - self._delay90) & _MASK33
        last = self._pcr90
        if last is not None and (clock - last) & _MASK33 >= _HALF33:
            clock = last
        pes_list: _PESList = []
        if st.video:
            pts90 = ((dts_ms + frame.cts_ms) * 90 + self._offset90) & _MASK33
            pes = self._video_pes(st, frame, pts90, dts90)
            self._age_out(dts_ms, pes_list)
            pes_list.append((st, pes, frame.keyframe))
        else:
            if not st.described and _describe(st, frame.data):
                self._rebuild_pmt()
            self._add_audio(st, frame, pes_list)
            self._age_out(dts_ms, pes_list)
        return self._emit(pes_list, clock)

    def flush(self) -> bytes:
        """Emit the audio held for bundling (call before a segment ends).

        Returns:
            Whole TS packets (possibly none).
        """
        pes_list: _PESList = []
        for st in sorted((st for st in self._audio if st.pending), key=_pending_order):
            self._flush_audio(st, pes_list)
        return self._emit(pes_list, None)

    def _emit(self, pes_list: _PESList, clock: int | None) -> bytes:
        parts: list[bytes | bytearray] = []
        if self._need_pat:
            parts.append(self._pat_packet())
        if self._need_pmt:
            parts.append(self._pmt_packet())
        pcr_pid = self._pcr_pid
        pcr_written = False
        for st, pes, random_access in pes_list:
            pcr90 = None
            if clock is not None and not pcr_written and st.pid == pcr_pid:
                pcr90 = clock
                pcr_written = True
            parts.append(self._packetize(st, pes, pcr90, random_access))
        if clock is not None:
            if pcr_written:
                self._pcr90 = clock
            elif pcr_pid != _NULL_PID and (
                self._pcr90 is None
                or self._pcr_interval90 <= (clock - self._pcr90) & _MASK33 < _HALF33
            ):
                parts.insert(len(parts) - len(pes_list), self._pcr_packet(clock))
                self._pcr90 = clock
        if not parts:
            return b""
        if len(parts) == 1:
            return bytes(parts[0])
        return b"".join(parts)

    def _pcr_packet(self, pcr90: int) -> bytearray:
        """An adaptation-only packet with a PCR: its continuity_counter does not advance."""
        st = next(st for st in self._streams.values() if st.pid == self._pcr_pid)
        packet = bytearray(TS_PACKET_SIZE)
        _U32.pack_into(packet, 0, 0x47000020 | st.pid << 8 | st.cc)
        _write_adaptation_field(packet, 4, _PAYLOAD_SIZE, 0x10, pcr90)
        return packet

    # ------------------------------------------------------------------ video

    def _video_pes(self, st: _Stream, frame: Frame, pts90: int, dts90: int) -> bytes:
        """The PES of one video access unit, in the Annex B byte stream format."""
        data = frame.data
        size = len(data)
        length_size = st.length_size
        hevc = st.hevc
        # ISO/IEC 14496-15 §5.3.2: NALUnitLength then the NAL unit, repeated.
        spans: list[tuple[int, int]] = []
        has_aud = has_sps = False
        pos = 0
        while pos < size:
            start = pos + length_size
            if start > size:
                raise FrameError(f"{st.kind} frame: truncated NAL unit length at {pos}")
            if length_size == 4:
                length = _U32.unpack_from(data, pos)[0]
            elif length_size == 2:
                length = _U16.unpack_from(data, pos)[0]
            else:
                length = data[pos]
            pos = start + length
            if pos > size:
                raise FrameError(f"{st.kind} frame: NAL unit of {length} bytes overruns it")
            if not length:
                continue
            nal_type = (data[start] >> 1) & 0x3F if hevc else data[start] & 0x1F
            if nal_type == st.aud_type:
                # "The access unit delimiter ... shall be the first NAL unit" (H.264 §7.4.1.2.3,
                # H.265 §7.4.2.4.4): keep the publisher's only when it is first.
                if not spans:
                    has_aud = True
                    spans.append((start, pos))
                continue
            if nal_type == st.sps_type:
                has_sps = True
            spans.append((start, pos))
        if not spans or (has_aud and len(spans) == 1):
            raise FrameError(f"{st.kind} frame holds no NAL unit")
        view = memoryview(data)
        pieces: list[bytes | bytearray | memoryview] = [
            _pes_header(_STREAM_ID_VIDEO, None, pts90, None if pts90 == dts90 else dts90, True)
        ]
        rest = spans
        if has_aud:
            begin, end = spans[0]
            pieces += (_START_CODE, view[begin:end])
            rest = spans[1:]
        else:
            pieces.append(st.aud)
        if frame.keyframe and not has_sps:
            # Every key frame carries its parameter sets, so any segment decodes alone.
            pieces.append(st.parameter_sets)
        for begin, end in rest:
            pieces += (_START_CODE, view[begin:end])
        return b"".join(pieces)

    # ------------------------------------------------------------------ audio

    def _add_audio(self, st: _Stream, frame: Frame, pes_list: _PESList) -> None:
        data = frame.data
        if st.kind == "mp4a":
            frame_length = len(data) + 7
            if frame_length > _MAX_ADTS_FRAME:
                raise FrameError(f"AAC frame of {len(data)} bytes is too long for ADTS")
            header = _ADTS.pack(
                0xFFF1,  # syncword, MPEG-4, layer 0, protection_absent
                st.adts_b2,
                st.adts_b3 | frame_length >> 11,
                (frame_length & 0x7FF) << 5 | 0x1F,  # adts_buffer_fullness 0x7FF: VBR
                0xFC,  # one raw_data_block
            )
            size = frame_length
        else:
            header = b""
            size = len(data)
        dts_ms = frame.dts_ms
        if st.pending and not self._continues(st, dts_ms, size):
            self._flush_audio(st, pes_list)
        if not st.pending:
            st.pending_pts90 = (dts_ms * 90 + self._offset90) & _MASK33
            st.first_dts_ms = dts_ms
            st.expected_ms = dts_ms
        if header:
            st.pending.append(header)
        st.pending.append(data)
        st.pending_size += size
        duration = st.duration_ms
        if duration is None:
            st.expected_ms = -1.0  # unknown length: the next frame starts a new PES
        else:
            st.expected_ms += duration
        if st.pending_size >= self._max_bytes or self._max_ms == 0:
            self._flush_audio(st, pes_list)

    def _continues(self, st: _Stream, dts_ms: int, size: int) -> bool:
        """Whether a frame may join the held PES: contiguous, and within the limits."""
        if st.pending_size + size > self._max_bytes:
            return False
        if dts_ms - st.first_dts_ms >= self._max_ms:
            return False
        # The decoder times the frames after the first by their length: a gap (or
        # overlap) of half a frame or more needs a PES with its own PTS.
        duration = st.duration_ms
        return duration is not None and abs(dts_ms - st.expected_ms) < duration / 2

    def _age_out(self, dts_ms: int, pes_list: _PESList) -> None:
        for st in self._audio:
            if st.pending and dts_ms - st.first_dts_ms >= self._max_ms:
                self._flush_audio(st, pes_list)

    def _flush_audio(self, st: _Stream, pes_list: _PESList) -> None:
        payload = b"".join(st.pending)
        st.pending = []
        st.pending_size = 0
        limit = _MAX_PES_LENGTH - 8  # PES_packet_length counts 3 + 5 header bytes
        if len(payload) <= limit:
            header = _pes_header(st.stream_id, len(payload), st.pending_pts90, None, True)
            pes_list.append((st, header + payload, True))
            return
        # Only a frame larger than a PES can be: continue it in PES without a PTS.
        for offset in range(0, len(payload), limit):
            chunk = payload[offset : offset + limit]
            first = offset == 0
            header = _pes_header(
                st.stream_id, len(chunk), st.pending_pts90 if first else None, None, first
            )
            pes_list.append((st, header + chunk, first))

    # ------------------------------------------------------------------ packets

    @staticmethod
    def _packetize(
        st: _Stream, pes: bytes | bytearray, pcr90: int | None, random_access: bool
    ) -> bytearray:
        """Cut one PES into TS packets (§2.4.3.2), stuffing the last one's adaptation field.

        The per-packet work is done in C: ``struct`` cuts the full 184-byte payloads,
        ``join`` puts a 4-byte header between them, and one strided assignment writes the
        continuity counters.
        """
        size = len(pes)
        flags = (0x40 if random_access else 0) | (0x10 if pcr90 is not None else 0)
        first_af = 8 if pcr90 is not None else 2 if flags else 0
        first_room = _PAYLOAD_SIZE - first_af
        cc = (st.cc + 1) & 0x0F
        pid_bits = 0x47000000 | st.pid << 8
        # The first packet: payload_unit_start_indicator, maybe PCR / random access.
        head = bytearray(TS_PACKET_SIZE)
        if size <= first_room:
            af = _PAYLOAD_SIZE - size  # the only packet: stuffed through its adaptation field
            count = 1
        else:
            af = first_af
            count = 2 + (size - first_room - 1) // _PAYLOAD_SIZE
        if af:
            _U32.pack_into(head, 0, pid_bits | 0x400030 | cc)
            _write_adaptation_field(head, 4, af, flags, pcr90)
        else:
            _U32.pack_into(head, 0, pid_bits | 0x400010 | cc)
        pos = _PAYLOAD_SIZE - af
        head[4 + af :] = pes[:pos]
        st.cc = (cc + count - 1) & 0x0F
        if count == 1:
            return head
        middle = count - 2
        rest = size - pos - middle * _PAYLOAD_SIZE  # 1..184 bytes for the last packet
        stuffing = _PAYLOAD_SIZE - rest
        if stuffing:
            last = bytearray(stuffing + rest)
            _write_adaptation_field(last, 0, stuffing, 0, None)
            last[stuffing:] = pes[size - rest :]
        else:
            last = bytearray(pes[size - rest :])
        chunks = _payload_struct(middle).unpack_from(pes, pos) if middle else ()
        out = bytearray(_U32.pack(pid_bits | 0x10)).join((head, *chunks, last))
        # continuity_counter of packets 1..count-1 (packet 0 has it already).
        out[TS_PACKET_SIZE + 3 :: TS_PACKET_SIZE] = _counters(cc + 1, count - 1)
        if stuffing:
            out[-TS_PACKET_SIZE + 3] |= 0x20  # adaptation field, then payload
        return out


@functools.lru_cache(maxsize=64)
def _payload_struct(count: int) -> struct.Struct:
    """Cuts ``count`` full packet payloads out of a PES."""
    return struct.Struct(f"{_PAYLOAD_SIZE}s" * count)


_COUNTER_CYCLE = bytes(0x10 | cc for cc in range(16))


def _counters(first: int, count: int) -> bytes:
    """Byte 3 of ``count`` payload-only packets whose counters start at ``first``."""
    first &= 0x0F
    return (_COUNTER_CYCLE * ((first + count) // 16 + 1))[first : first + count]


def _pending_order(st: _Stream) -> int:
    return st.first_dts_ms
