"""Tests for aiortmp.media.tags: legacy and E-RTMP v2 audio/video tag headers."""

from __future__ import annotations

import ast
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiortmp.media import tags as tags_module
from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.tags import (
    AudioChannelOrder,
    AudioFourCC,
    AudioKind,
    AudioPacketType,
    AudioTag,
    AudioTrack,
    AvMultitrackType,
    ModEx,
    MultichannelConfig,
    SoundFormat,
    VideoCodecId,
    VideoCommand,
    VideoFourCC,
    VideoKind,
    VideoPacketType,
    VideoTag,
    VideoTrack,
    build_audio_tag,
    build_video_tag,
    classify_audio,
    classify_video,
    encode_audio_tag,
    encode_video_tag,
    parse_audio_tag,
    parse_multichannel_config,
    parse_video_tag,
)
from aiortmp.protocol.errors import LocalProtocolError

FIXTURES = Path(__file__).parent / "fixtures" / "flv"

VPT = VideoPacketType
APT = AudioPacketType
MT = AvMultitrackType


def h(text: str) -> bytes:
    """Hex with spaces and 'quoted' ASCII (FourCCs), e.g. h("91 'hvc1' 000028 aa")."""
    out = bytearray()
    for part in text.split():
        if part.startswith("'"):
            out += part.strip("'").encode("ascii")
        else:
            out += bytes.fromhex(part)
    return bytes(out)


def vtag(
    frame_type: int,
    *tracks: VideoTrack,
    ex: bool = True,
    codec_id: VideoCodecId | None = None,
    command: VideoCommand | None = None,
    multitrack: AvMultitrackType | None = None,
    mod_ex: tuple[ModEx, ...] = (),
) -> VideoTag:
    return VideoTag(
        frame_type=frame_type,
        is_ex_header=ex,
        tracks=tracks,
        codec_id=codec_id,
        command=command,
        multitrack_type=multitrack,
        mod_ex=mod_ex,
    )


def vtrack(
    codec: VideoCodecId | VideoFourCC, pt: int, data: str = "", *, cts: int = 0, tid: int = 0
) -> VideoTrack:
    return VideoTrack(
        codec=codec,
        packet_type=VideoPacketType(pt),
        data=h(data),
        track_id=tid,
        composition_time_ms=cts,
    )


def legacy(frame_type: int, codec: VideoCodecId, pt: int, data: str = "", cts: int = 0) -> VideoTag:
    return vtag(frame_type, vtrack(codec, pt, data, cts=cts), ex=False, codec_id=codec)


@dataclass(frozen=True)
class Vector:
    """A payload, what it parses to, its kind, and how much of it must be present."""

    name: str
    payload: bytes
    kind: VideoKind | AudioKind
    tag: VideoTag | AudioTag
    #: Every prefix shorter than this must raise CodecHeaderError.
    header_len: int


AVC = VideoCodecId.AVC
HEVC, AV1, VP9, VP8, AVC1 = (
    VideoFourCC.HEVC,
    VideoFourCC.AV1,
    VideoFourCC.VP9,
    VideoFourCC.VP8,
    VideoFourCC.AVC,
)
K, I = VideoKind, AudioKind  # noqa: E741

# fmt: off
VIDEO_VECTORS = [
    # --- legacy VideoTagHeader (FLV v10.1 E.4.3.1) ---
    Vector("avc-seq", h("17 00 000000 0142c01e"), K.SEQUENCE_HEADER,
           legacy(1, AVC, 0, "0142c01e"), 5),
    Vector("avc-key-cts", h("17 01 000050 00000001 65"), K.KEYFRAME,
           legacy(1, AVC, 1, "00000001 65", cts=80), 5),
    Vector("avc-inter-negative-cts", h("27 01 ffffce 00000001 41"), K.INTER,
           legacy(2, AVC, 1, "00000001 41", cts=-50), 5),
    Vector("avc-eos", h("17 02 000000"), K.SEQUENCE_END, legacy(1, AVC, 2), 5),
    Vector("avc-generated-key", h("47 01 000000 aa"), K.KEYFRAME, legacy(4, AVC, 1, "aa"), 5),
    Vector("h263-key", h("12 0000"), K.KEYFRAME,
           legacy(1, VideoCodecId.SORENSON_H263, 1, "0000"), 1),
    Vector("h263-disposable", h("32 00"), K.INTER,
           legacy(3, VideoCodecId.SORENSON_H263, 1, "00"), 1),
    Vector("screen-key", h("13 ab"), K.KEYFRAME, legacy(1, VideoCodecId.SCREEN, 1, "ab"), 1),
    Vector("vp6-inter", h("24 00 ff"), K.INTER, legacy(2, VideoCodecId.ON2_VP6, 1, "00 ff"), 1),
    Vector("vp6a-key", h("15 00 000003"), K.KEYFRAME,
           legacy(1, VideoCodecId.ON2_VP6_ALPHA, 1, "00 000003"), 1),
    Vector("screen2-generated-key", h("46"), K.KEYFRAME, legacy(4, VideoCodecId.SCREEN_V2, 1), 1),
    Vector("avc-command-start-seek", h("57 00"), K.COMMAND,
           vtag(5, ex=False, codec_id=AVC, command=VideoCommand.START_SEEK), 2),
    Vector("h263-command-end-seek", h("52 01"), K.COMMAND,
           vtag(5, ex=False, codec_id=VideoCodecId.SORENSON_H263,
                command=VideoCommand.END_SEEK), 2),
    # --- ExVideoTagHeader (E-RTMP v2), every FourCC and packet type ---
    Vector("avc1-seq", h("90 'avc1' 0142c01e"), K.SEQUENCE_HEADER,
           vtag(1, vtrack(AVC1, 0, "0142c01e")), 5),
    Vector("hvc1-seq", h("90 'hvc1' 01016000"), K.SEQUENCE_HEADER,
           vtag(1, vtrack(HEVC, 0, "01016000")), 5),
    Vector("av01-seq-empty", h("90 'av01'"), K.SEQUENCE_HEADER, vtag(1, vtrack(AV1, 0)), 5),
    Vector("vp09-seq", h("90 'vp09' 01000000"), K.SEQUENCE_HEADER,
           vtag(1, vtrack(VP9, 0, "01000000")), 5),
    Vector("vp08-seq", h("90 'vp08' 00"), K.SEQUENCE_HEADER, vtag(1, vtrack(VP8, 0, "00")), 5),
    Vector("hvc1-key-cts", h("91 'hvc1' 000028 0000000a 2601"), K.KEYFRAME,
           vtag(1, vtrack(HEVC, 1, "0000000a 2601", cts=40)), 8),
    Vector("avc1-inter-negative-cts", h("a1 'avc1' fffff6 00000001 41"), K.INTER,
           vtag(2, vtrack(AVC1, 1, "00000001 41", cts=-10)), 8),
    Vector("av01-key-no-cts", h("91 'av01' 12000a"), K.KEYFRAME,
           vtag(1, vtrack(AV1, 1, "12000a")), 5),
    Vector("vp09-inter", h("a1 'vp09' 8649"), K.INTER, vtag(2, vtrack(VP9, 1, "8649")), 5),
    Vector("vp08-disposable", h("b1 'vp08' 31"), K.INTER, vtag(3, vtrack(VP8, 1, "31")), 5),
    Vector("hvc1-coded-frames-x", h("a3 'hvc1' 0000000b 1001"), K.INTER,
           vtag(2, vtrack(HEVC, 3, "0000000b 1001")), 5),
    Vector("av01-coded-frames-x-generated-key", h("c3 'av01' 12"), K.KEYFRAME,
           vtag(4, vtrack(AV1, 3, "12")), 5),
    Vector("hvc1-seq-end", h("92 'hvc1'"), K.SEQUENCE_END, vtag(1, vtrack(HEVC, 2)), 5),
    # FFmpeg sends Metadata with frame type 5; "the FrameType flags ... should be ignored".
    Vector("hvc1-metadata-frame-type-5", h("d4 'hvc1' 02 0009 'colorInfo' 05"), K.METADATA,
           vtag(5, vtrack(HEVC, 4, "02 0009 'colorInfo' 05")), 5),
    Vector("av01-metadata-frame-type-0", h("84 'av01' 05"), K.METADATA,
           vtag(0, vtrack(AV1, 4, "05")), 5),
    Vector("av01-mpeg2ts-seq", h("95 'av01' 80"), K.SEQUENCE_HEADER,
           vtag(1, vtrack(AV1, 5, "80")), 5),
    Vector("ex-command", h("d0 01"), K.COMMAND, vtag(5, command=VideoCommand.END_SEEK), 2),
    # --- Multitrack ---
    Vector("multitrack-one-track-ffmpeg", h("96 00 'avc1' 01 0142c01e"), K.SEQUENCE_HEADER,
           vtag(1, vtrack(AVC1, 0, "0142c01e", tid=1), multitrack=MT.ONE_TRACK), 7),
    Vector("multitrack-one-track-cts", h("a6 01 'hvc1' 02 000014 aa"), K.INTER,
           vtag(2, vtrack(HEVC, 1, "aa", cts=20, tid=2), multitrack=MT.ONE_TRACK), 10),
    Vector("multitrack-many-tracks",
           h("96 11 'hvc1' 00 000006 00000a 010203 01 000004 fffffe 04"), K.KEYFRAME,
           vtag(1, vtrack(HEVC, 1, "010203", cts=10), vtrack(HEVC, 1, "04", cts=-2, tid=1),
                multitrack=MT.MANY_TRACKS), 16),
    Vector("multitrack-many-tracks-many-codecs",
           h("a6 21 'hvc1' 00 000005 000014 ddee 'av01' 01 000002 aabb"), K.INTER,
           vtag(2, vtrack(HEVC, 1, "ddee", cts=20), vtrack(AV1, 1, "aabb", tid=1),
                multitrack=MT.MANY_TRACKS_MANY_CODECS), 15),
    Vector("multitrack-many-codecs-seq",
           h("96 20 'avc1' 00 000002 0142 'hvc1' 01 000001 01"), K.SEQUENCE_HEADER,
           vtag(1, vtrack(AVC1, 0, "0142"), vtrack(HEVC, 0, "01", tid=1),
                multitrack=MT.MANY_TRACKS_MANY_CODECS), 12),
    Vector("multitrack-many-tracks-empty-bodies", h("a6 13 'vp09' 00 000000 05 000000"), K.INTER,
           vtag(2, vtrack(VP9, 3), vtrack(VP9, 3, tid=5), multitrack=MT.MANY_TRACKS), 10),
    Vector("multitrack-metadata", h("96 04 'av01' 03 05"), K.METADATA,
           vtag(1, vtrack(AV1, 4, "05", tid=3), multitrack=MT.ONE_TRACK), 7),
    # --- ModEx ---
    Vector("modex-timestamp-offset-nano", h("97 02 000064 01 'hvc1' 000000 aa"), K.KEYFRAME,
           vtag(1, vtrack(HEVC, 1, "aa"), mod_ex=(ModEx(mod_ex_type=0, data=h("000064")),)), 12),
    Vector("modex-16-bit-size", h("a7 ff 0100") + bytes(257) + h("13 'av01' cc"), K.INTER,
           vtag(2, vtrack(AV1, 3, "cc"), mod_ex=(ModEx(mod_ex_type=1, data=bytes(257)),)), 266),
    Vector("modex-chain-then-multitrack", h("97 02 0f423f 07 00 ab 16 00 'avc1' 00 01"),
           K.SEQUENCE_HEADER,
           vtag(1, vtrack(AVC1, 0, "01"), multitrack=MT.ONE_TRACK,
                mod_ex=(ModEx(mod_ex_type=0, data=h("0f423f")),
                        ModEx(mod_ex_type=1, data=h("ab")))),
           15),
    Vector("modex-command", h("d7 02 000001 00 00"), K.COMMAND,
           vtag(5, command=VideoCommand.START_SEEK,
                mod_ex=(ModEx(mod_ex_type=0, data=h("000001")),)),
           7),
]

AUDIO_VECTORS = [
    # --- legacy AudioTagHeader (FLV v10.1 E.4.2.1), every SoundFormat ---
    *(
        Vector(f"legacy-{fmt.name}", bytes((fmt << 4 | 0x0E,)) + h("0102"), I.FRAME,
               AudioTag(sound_format=fmt,
                        tracks=(AudioTrack(codec=fmt, packet_type=APT.CODED_FRAMES,
                                           data=h("0102")),),
                        sound_rate=3, sound_size=1, sound_type=0), 1)
        for fmt in SoundFormat if fmt not in (SoundFormat.AAC, SoundFormat.EX_HEADER)
    ),
    Vector("legacy-pcma-8k-mono", h("72 d5d5"), I.FRAME,
           AudioTag(sound_format=SoundFormat.G711_A_LAW,
                    tracks=(AudioTrack(codec=SoundFormat.G711_A_LAW, packet_type=APT.CODED_FRAMES,
                                       data=h("d5d5")),),
                    sound_rate=0, sound_size=1, sound_type=0), 1),
    Vector("aac-seq", h("af 00 1210"), I.SEQUENCE_HEADER,
           AudioTag(sound_format=SoundFormat.AAC,
                    tracks=(AudioTrack(codec=SoundFormat.AAC, packet_type=APT.SEQUENCE_START,
                                       data=h("1210")),),
                    sound_rate=3, sound_size=1, sound_type=1), 2),
    Vector("aac-raw", h("af 01 21"), I.FRAME,
           AudioTag(sound_format=SoundFormat.AAC,
                    tracks=(AudioTrack(codec=SoundFormat.AAC, packet_type=APT.CODED_FRAMES,
                                       data=h("21")),),
                    sound_rate=3, sound_size=1, sound_type=1), 2),
    # --- ExAudioTagHeader (E-RTMP v2), every FourCC and packet type ---
    *(
        Vector(f"ex-{fourcc.name}-{pt.name}", h(f"9{pt:x} '{fourcc}' 0102"), kind,
               AudioTag(sound_format=SoundFormat.EX_HEADER,
                        tracks=(AudioTrack(codec=fourcc, packet_type=pt, data=h("0102")),)), 5)
        for fourcc in AudioFourCC
        for pt, kind in ((APT.SEQUENCE_START, I.SEQUENCE_HEADER), (APT.CODED_FRAMES, I.FRAME),
                         (APT.SEQUENCE_END, I.SEQUENCE_END))
    ),
    Vector("ex-opus-multichannel-native-ffmpeg", h("94 'Opus' 01 01 00000004"),
           I.MULTICHANNEL_CONFIG,
           AudioTag(sound_format=SoundFormat.EX_HEADER,
                    tracks=(AudioTrack(codec=AudioFourCC.OPUS, packet_type=APT.MULTICHANNEL_CONFIG,
                                       data=h("01 01 00000004")),)), 11),
    Vector("ex-ac3-multichannel-custom", h("94 'ac-3' 02 03 000102"), I.MULTICHANNEL_CONFIG,
           AudioTag(sound_format=SoundFormat.EX_HEADER,
                    tracks=(AudioTrack(codec=AudioFourCC.AC3, packet_type=APT.MULTICHANNEL_CONFIG,
                                       data=h("02 03 000102")),)), 10),
    Vector("ex-flac-multichannel-unspecified", h("94 'fLaC' 00 02"), I.MULTICHANNEL_CONFIG,
           AudioTag(sound_format=SoundFormat.EX_HEADER,
                    tracks=(AudioTrack(codec=AudioFourCC.FLAC, packet_type=APT.MULTICHANNEL_CONFIG,
                                       data=h("00 02")),)), 7),
    # --- Multitrack ---
    Vector("multitrack-one-track-ffmpeg", h("95 00 'Opus' 01 'OpusHead' 01"), I.SEQUENCE_HEADER,
           AudioTag(sound_format=SoundFormat.EX_HEADER, multitrack_type=MT.ONE_TRACK,
                    tracks=(AudioTrack(codec=AudioFourCC.OPUS, packet_type=APT.SEQUENCE_START,
                                       data=h("'OpusHead' 01"), track_id=1),)), 7),
    Vector("multitrack-many-tracks", h("95 11 'mp4a' 00 000002 aabb 01 000001 cc"), I.FRAME,
           AudioTag(sound_format=SoundFormat.EX_HEADER, multitrack_type=MT.MANY_TRACKS,
                    tracks=(AudioTrack(codec=AudioFourCC.AAC, packet_type=APT.CODED_FRAMES,
                                       data=h("aabb")),
                            AudioTrack(codec=AudioFourCC.AAC, packet_type=APT.CODED_FRAMES,
                                       data=h("cc"), track_id=1))), 12),
    Vector("multitrack-many-tracks-many-codecs",
           h("95 21 'Opus' 00 000001 aa '.mp3' 01 000002 bbcc"), I.FRAME,
           AudioTag(sound_format=SoundFormat.EX_HEADER, multitrack_type=MT.MANY_TRACKS_MANY_CODECS,
                    tracks=(AudioTrack(codec=AudioFourCC.OPUS, packet_type=APT.CODED_FRAMES,
                                       data=h("aa")),
                            AudioTrack(codec=AudioFourCC.MP3, packet_type=APT.CODED_FRAMES,
                                       data=h("bbcc"), track_id=1))), 11),
    Vector("multitrack-multichannel", h("95 04 'Opus' 01 01 01 00000004"), I.MULTICHANNEL_CONFIG,
           AudioTag(sound_format=SoundFormat.EX_HEADER, multitrack_type=MT.ONE_TRACK,
                    tracks=(AudioTrack(codec=AudioFourCC.OPUS, packet_type=APT.MULTICHANNEL_CONFIG,
                                       data=h("01 01 00000004"), track_id=1),)), 13),
    # --- ModEx ---
    Vector("modex-timestamp-offset-nano", h("97 02 0003e8 01 'Opus' fc"), I.FRAME,
           AudioTag(sound_format=SoundFormat.EX_HEADER,
                    mod_ex=(ModEx(mod_ex_type=0, data=h("0003e8")),),
                    tracks=(AudioTrack(codec=AudioFourCC.OPUS, packet_type=APT.CODED_FRAMES,
                                       data=h("fc")),)), 10),
    Vector("modex-then-multitrack", h("97 00 ee 15 20 'ec-3' 07 000001 99"), I.SEQUENCE_HEADER,
           AudioTag(sound_format=SoundFormat.EX_HEADER, multitrack_type=MT.MANY_TRACKS_MANY_CODECS,
                    mod_ex=(ModEx(mod_ex_type=1, data=h("ee")),),
                    tracks=(AudioTrack(codec=AudioFourCC.EAC3, packet_type=APT.SEQUENCE_START,
                                       data=h("99"), track_id=7),)), 13),
]

MALFORMED_VIDEO = [
    ("empty", ""),
    ("legacy-frame-type-0", "07 00 000000"),
    ("legacy-frame-type-6", "67 01 000000"),
    ("legacy-frame-type-7", "72"),
    ("legacy-codec-0", "10"),
    ("legacy-codec-1", "11 00"),
    ("legacy-codec-8", "18 00"),
    ("legacy-hevc-12-not-in-spec", "1c 00 000000"),
    ("legacy-command-reserved-codec", "5c 00"),
    ("avc-packet-type-3", "17 03 000000"),
    ("avc-no-packet-type", "17"),
    ("avc-short-cts", "17 01 0000"),
    ("command-no-byte", "57"),
    ("command-reserved", "57 02"),
    ("command-trailing", "57 00 00"),
    ("ex-command-trailing", "d0 00 00"),
    ("ex-command-no-byte", "d0"),
    ("ex-reserved-packet-type-8", "98 'hvc1'"),
    ("ex-reserved-packet-type-15", "9f 'hvc1'"),
    ("ex-unknown-fourcc", "91 'hev1' 000000"),
    ("ex-fourcc-case", "91 'HVC1' 000000"),
    ("ex-truncated-fourcc", "91 'hvc'"),
    ("ex-truncated-cts", "91 'hvc1' 0000"),
    ("ex-frame-type-0", "81 'av01'"),
    ("ex-frame-type-6", "e1 'av01'"),
    ("ex-frame-type-7", "f0 'av01'"),
    ("multitrack-no-type", "96"),
    ("multitrack-reserved-type", "96 30 'avc1' 00"),
    ("multitrack-inner-multitrack", "96 06 'avc1' 00"),
    ("multitrack-inner-modex", "96 07 'avc1' 00"),
    ("multitrack-inner-reserved", "96 08 'avc1' 00"),
    ("multitrack-no-track-id", "96 00 'avc1'"),
    ("multitrack-no-tracks", "96 11 'hvc1'"),
    ("multitrack-size-truncated", "96 11 'hvc1' 00 0000"),
    ("multitrack-size-overrun", "96 11 'hvc1' 00 000010 000000"),
    ("multitrack-partial-second-track", "96 13 'av01' 00 000001 aa 01"),
    ("multitrack-track-cts-truncated", "96 11 'hvc1' 00 000002 0000"),
    ("multitrack-unknown-second-fourcc", "96 21 'avc1' 00 000001 aa 'xxxx' 01 000000"),
    ("modex-no-size", "97"),
    ("modex-data-truncated", "97 05 0000"),
    ("modex-no-type-byte", "97 02 000000"),
    ("modex-16-bit-size-truncated", "97 ff 01"),
    ("modex-nano-too-short", "97 01 0000 01 'av01'"),
    ("modex-chain-truncated", "97 02 000000 07"),
]

MALFORMED_AUDIO = [
    ("empty-silence-has-no-header", ""),
    ("reserved-format-12", "c0 00"),
    ("reserved-format-13", "d2"),
    ("aac-no-packet-type", "af"),
    ("aac-packet-type-2", "af 02 00"),
    ("ex-reserved-packet-type-3", "93 'Opus'"),
    ("ex-reserved-packet-type-6", "96 'Opus'"),
    ("ex-reserved-packet-type-8", "98 'Opus'"),
    ("ex-unknown-fourcc", "91 'opus'"),
    ("ex-truncated-fourcc", "91 'Op'"),
    ("ex-no-fourcc", "91"),
    ("multitrack-no-type", "95"),
    ("multitrack-reserved-type", "95 31 'Opus' 00"),
    ("multitrack-inner-multitrack", "95 05 'Opus' 00"),
    ("multitrack-inner-modex", "95 07 'Opus' 00"),
    ("multitrack-inner-reserved", "95 03 'Opus' 00"),
    ("multitrack-no-track-id", "95 01 'Opus'"),
    ("multitrack-size-overrun", "95 11 'mp4a' 00 000005 aa"),
    ("multitrack-trailing-partial-track", "95 11 'mp4a' 00 000001 aa 01 00"),
    ("multichannel-empty", "94 'Opus'"),
    ("multichannel-reserved-order", "94 'Opus' 03 01"),
    ("multichannel-native-short-flags", "94 'Opus' 01 01 000000"),
    ("multichannel-custom-short-map", "94 'Opus' 02 03 0001"),
    ("multichannel-trailing", "94 'Opus' 00 02 ff"),
    ("modex-no-size", "97"),
    ("modex-data-truncated", "97 02 00"),
    ("modex-nano-too-short", "97 00 00 01 'Opus'"),
]
# fmt: on


def ids(vectors: list[Vector]) -> list[str]:
    return [v.name for v in vectors]


def _is_video(vector: Vector) -> bool:
    return isinstance(vector.tag, VideoTag)


def _parse(vector: Vector, payload: bytes) -> VideoTag | AudioTag:
    return parse_video_tag(payload) if _is_video(vector) else parse_audio_tag(payload)


def _classify(vector: Vector, payload: bytes) -> VideoKind | AudioKind:
    return classify_video(payload) if _is_video(vector) else classify_audio(payload)


def _encode(tag: VideoTag | AudioTag) -> bytes:
    return encode_video_tag(tag) if isinstance(tag, VideoTag) else encode_audio_tag(tag)


ALL_VECTORS = VIDEO_VECTORS + AUDIO_VECTORS


# --------------------------------------------------------------------------------------------
# Byte vectors: whole, every prefix, trailing data
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=ids(ALL_VECTORS))
def test_vector_parses_classifies_and_encodes(vector: Vector) -> None:
    parsed = _parse(vector, vector.payload)
    assert parsed == vector.tag
    assert parsed.kind is vector.kind
    assert _classify(vector, vector.payload) is vector.kind
    assert _encode(vector.tag) == vector.payload
    # Buffers other than bytes are accepted by the parser and the classifier alike.
    for buffer in (bytearray(vector.payload), memoryview(vector.payload)):
        assert _parse(vector, buffer) == vector.tag  # type: ignore[arg-type]
        assert _classify(vector, buffer) is vector.kind  # type: ignore[arg-type]


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=ids(ALL_VECTORS))
def test_vector_prefixes(vector: Vector) -> None:
    """Every prefix raises CodecHeaderError, or is itself a valid, consistent tag; prefixes
    shorter than the header (or the first sized track) always raise."""
    for cut in range(len(vector.payload)):
        prefix = vector.payload[:cut]
        try:
            parsed = _parse(vector, prefix)
        except CodecHeaderError:
            continue
        assert cut >= vector.header_len, f"{cut}-byte prefix parsed: {parsed}"
        assert _encode(parsed) == prefix
        assert _classify(vector, prefix) is parsed.kind


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=ids(ALL_VECTORS))
def test_vector_one_byte_short(vector: Vector) -> None:
    short = vector.payload[:-1]
    last_data = vector.tag.tracks[-1].data if vector.tag.tracks else b""
    sized = vector.tag.multitrack_type in (MT.MANY_TRACKS, MT.MANY_TRACKS_MANY_CODECS)
    multichannel = vector.tag.tracks and vector.tag.tracks[0].packet_type is (
        APT.MULTICHANNEL_CONFIG
    )
    if last_data and not sized and not multichannel:
        parsed = _parse(vector, short)
        assert parsed.tracks[-1].data == last_data[:-1]
    else:
        with pytest.raises(CodecHeaderError):
            _parse(vector, short)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=ids(ALL_VECTORS))
def test_vector_trailing_data(vector: Vector) -> None:
    """Trailing bytes belong to the last track's data, unless the message is delimited
    (command frame, sized multitrack, MultichannelConfig), where they are an error."""
    longer = vector.payload + b"\xee"
    tag = vector.tag
    delimited = (
        not tag.tracks
        or tag.multitrack_type in (MT.MANY_TRACKS, MT.MANY_TRACKS_MANY_CODECS)
        or tag.tracks[0].packet_type is APT.MULTICHANNEL_CONFIG
    )
    if delimited:
        with pytest.raises(CodecHeaderError):
            _parse(vector, longer)
    else:
        parsed = _parse(vector, longer)
        assert parsed.tracks[-1].data == tag.tracks[-1].data + b"\xee"
        assert parsed.tracks[:-1] == tag.tracks[:-1]
        assert _classify(vector, longer) is vector.kind


@pytest.mark.parametrize(("name", "payload"), MALFORMED_VIDEO, ids=[m[0] for m in MALFORMED_VIDEO])
def test_malformed_video(name: str, payload: str) -> None:
    with pytest.raises(CodecHeaderError):
        parse_video_tag(h(payload))


@pytest.mark.parametrize(("name", "payload"), MALFORMED_AUDIO, ids=[m[0] for m in MALFORMED_AUDIO])
def test_malformed_audio(name: str, payload: str) -> None:
    with pytest.raises(CodecHeaderError):
        parse_audio_tag(h(payload))


# --------------------------------------------------------------------------------------------
# Flags and classifier edge cases
# --------------------------------------------------------------------------------------------


def test_video_flags() -> None:
    by_name = {v.name: v for v in VIDEO_VECTORS}
    seq = parse_video_tag(by_name["avc-seq"].payload)
    assert seq.is_sequence_header and not seq.is_keyframe and not seq.is_sequence_end
    key = parse_video_tag(by_name["hvc1-key-cts"].payload)
    assert key.is_keyframe and not key.is_sequence_header
    assert key.packet_type is VPT.CODED_FRAMES
    assert parse_video_tag(by_name["avc-generated-key"].payload).is_keyframe
    assert not parse_video_tag(by_name["vp09-inter"].payload).is_keyframe
    assert parse_video_tag(by_name["hvc1-seq-end"].payload).is_sequence_end
    assert parse_video_tag(by_name["avc-eos"].payload).is_sequence_end
    assert parse_video_tag(by_name["av01-mpeg2ts-seq"].payload).is_sequence_header
    multi = parse_video_tag(by_name["multitrack-many-codecs-seq"].payload)
    assert multi.is_sequence_header
    assert [t.track_id for t in multi.tracks] == [0, 1]
    command = parse_video_tag(by_name["avc-command-start-seek"].payload)
    assert command.packet_type is None
    assert not (command.is_keyframe or command.is_sequence_header or command.is_sequence_end)
    assert (
        parse_video_tag(by_name["modex-timestamp-offset-nano"].payload).timestamp_offset_ns == 100
    )
    assert parse_video_tag(by_name["hvc1-key-cts"].payload).timestamp_offset_ns == 0
    chain = parse_video_tag(by_name["modex-chain-then-multitrack"].payload)
    assert chain.timestamp_offset_ns == 999_999


def test_audio_flags() -> None:
    by_name = {v.name: v for v in AUDIO_VECTORS}
    assert parse_audio_tag(by_name["aac-seq"].payload).is_sequence_header
    assert not parse_audio_tag(by_name["aac-raw"].payload).is_sequence_header
    assert not parse_audio_tag(by_name["aac-raw"].payload).is_ex_header
    assert parse_audio_tag(by_name["ex-OPUS-SEQUENCE_END"].payload).is_sequence_end
    assert parse_audio_tag(by_name["multitrack-one-track-ffmpeg"].payload).is_sequence_header
    offset = parse_audio_tag(by_name["modex-timestamp-offset-nano"].payload)
    assert offset.is_ex_header and offset.timestamp_offset_ns == 1000


def test_classify_video_edge_cases() -> None:
    assert classify_video(b"") is K.INVALID
    assert classify_video(h("17 00 0000")) is K.INVALID  # AVC header needs 5 bytes
    assert classify_video(h("90 'hvc'")) is K.INVALID  # FourCC needs 4 bytes
    assert classify_video(h("57")) is K.INVALID
    # Metadata ignores a Command frame type; Command wins over Multitrack.
    assert classify_video(h("d4 'hvc1'")) is K.METADATA
    assert classify_video(h("d6 00 'avc1' 00")) is K.COMMAND
    # A multitrack message has the one kind of its shared packet type.
    assert classify_video(h("96 10 'hvc1' 00 000000 01 000000")) is K.SEQUENCE_HEADER
    assert classify_video(h("a6 11 'hvc1' 00 000003 000000")) is K.INTER
    assert classify_video(h("96 30 'hvc1' 00")) is K.INVALID  # reserved AvMultitrackType
    assert classify_video(h("96 06 'hvc1' 00")) is K.INVALID  # nested Multitrack
    assert classify_video(h("96 00 'hvc1'")) is K.INVALID  # no track id
    assert classify_video(h("97 02 000000")) is K.INVALID  # truncated ModEx
    assert classify_video(h("97 ff 0001 0000 00 'hvc1'")) is K.SEQUENCE_HEADER  # UI16 size
    assert classify_video(h("e1 'av01'")) is K.INVALID  # reserved frame type 6
    # Legacy frames of codecs without a packet type are classified by frame type alone.
    assert classify_video(h("22 00")) is K.INTER


def test_classify_audio_edge_cases() -> None:
    assert classify_audio(b"") is I.SILENCE
    assert classify_audio(h("af")) is I.INVALID
    assert classify_audio(h("af 02")) is I.INVALID
    assert classify_audio(h("2f")) is I.FRAME
    assert classify_audio(h("c0")) is I.INVALID
    assert classify_audio(h("91 'Opu'")) is I.INVALID
    assert classify_audio(h("95 00 'Opus'")) is I.INVALID  # no track id
    assert classify_audio(h("95 02 'Opus' 00")) is I.SEQUENCE_END
    assert classify_audio(h("95 05 'Opus' 00")) is I.INVALID
    assert classify_audio(h("97 00 00 01 'Opus'")) is I.FRAME  # ModEx skipped


def test_classifiers_do_not_allocate() -> None:
    """The hot path allocates nothing per call (ModEx aside)."""
    payloads = [(v.payload, _is_video(v)) for v in ALL_VECTORS if not v.tag.mod_ex]
    for payload, video in payloads:  # warm up
        classify_video(payload) if video else classify_audio(payload)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(50):
            for payload, video in payloads:
                if video:
                    classify_video(payload)
                else:
                    classify_audio(payload)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    tags_file = tags_module.__file__
    grown = [
        stat
        for stat in after.compare_to(before, "filename")
        if stat.traceback[0].filename == tags_file and stat.size_diff > 0
    ]
    assert not grown


def test_multichannel_config() -> None:
    assert parse_multichannel_config(h("01 02 00000003")) == MultichannelConfig(
        channel_order=AudioChannelOrder.NATIVE, channel_count=2, channel_flags=3
    )
    assert parse_multichannel_config(h("02 03 00 01 02")) == MultichannelConfig(
        channel_order=AudioChannelOrder.CUSTOM, channel_count=3, channel_mapping=(0, 1, 2)
    )
    assert parse_multichannel_config(h("00 06")) == MultichannelConfig(
        channel_order=AudioChannelOrder.UNSPECIFIED, channel_count=6
    )
    for bad in ("", "01", "03 02", "01 02 000000", "02 02 00", "00 01 00"):
        with pytest.raises(CodecHeaderError):
            parse_multichannel_config(h(bad))


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def test_build_video_tag() -> None:
    assert build_video_tag(h("0142c01e"), codec=AVC, packet_type=0) == h("17 00 000000 0142c01e")
    assert build_video_tag(h("00000001 41"), codec=AVC, frame_type=2, composition_time_ms=-50) == h(
        "27 01 ffffce 00000001 41"
    )
    assert build_video_tag(h("0000"), codec=VideoCodecId.SORENSON_H263) == h("12 0000")
    assert build_video_tag(h("01"), codec=HEVC, packet_type=0) == h("90 'hvc1' 01")
    assert build_video_tag(h("aa"), codec=HEVC, composition_time_ms=40) == h("91 'hvc1' 000028 aa")
    assert build_video_tag(h("aa"), codec=HEVC, packet_type=3, frame_type=2) == h("a3 'hvc1' aa")
    assert build_video_tag(h("12"), codec=AV1) == h("91 'av01' 12")
    assert build_video_tag(
        h("aa"), codec=AV1, mod_ex=[ModEx(mod_ex_type=0, data=h("000064"))]
    ) == h("97 02 000064 01 'av01' aa")


def test_build_audio_tag() -> None:
    assert build_audio_tag(h("1210"), codec=SoundFormat.AAC, packet_type=0) == h("af 00 1210")
    assert build_audio_tag(h("21"), codec=SoundFormat.AAC) == h("af 01 21")
    assert build_audio_tag(h("d5"), codec=SoundFormat.G711_A_LAW, sound_rate=0, sound_type=0) == h(
        "72 d5"
    )
    assert build_audio_tag(h("fc"), codec=AudioFourCC.OPUS) == h("91 'Opus' fc")
    assert build_audio_tag(b"", codec=AudioFourCC.FLAC, packet_type=2) == h("92 'fLaC'")
    assert build_audio_tag(
        h("fc"), codec=AudioFourCC.OPUS, mod_ex=[ModEx(mod_ex_type=0, data=h("0003e8"))]
    ) == h("97 02 0003e8 01 'Opus' fc")


def test_modex_size_forms() -> None:
    for size, prefix in ((1, "00"), (255, "fe"), (256, "ff 00ff"), (65536, "ff ffff")):
        payload = build_video_tag(
            codec=AV1, mod_ex=[ModEx(mod_ex_type=2, data=bytes(size))], frame_type=2
        )
        assert payload.startswith(h("a7 " + prefix))
        assert parse_video_tag(payload).mod_ex[0].data == bytes(size)
    # A UI16 size below 256 is not the shortest form but is still valid input.
    parsed = parse_video_tag(h("a7 ff 0000 aa 21 'av01'"))
    assert parsed.mod_ex == (ModEx(mod_ex_type=2, data=h("aa")),)


BAD_VIDEO_TAGS = [
    # legacy
    vtag(1, vtrack(AVC, 1), ex=False),  # no codec_id
    vtag(1, vtrack(HEVC, 1), ex=False, codec_id=AVC),  # FourCC on a legacy tag
    vtag(0, vtrack(AVC, 1), ex=False, codec_id=AVC),  # reserved frame type
    vtag(5, vtrack(AVC, 1), ex=False, codec_id=AVC),  # frame type 5 without a command
    vtag(1, vtrack(AVC, 3), ex=False, codec_id=AVC),  # AVCPacketType 3
    vtag(1, vtrack(AVC, 1, cts=1 << 23), ex=False, codec_id=AVC),  # CTS out of SI24
    vtag(1, vtrack(VideoCodecId.ON2_VP6, 0), ex=False, codec_id=VideoCodecId.ON2_VP6),
    vtag(1, vtrack(VideoCodecId.ON2_VP6, 1, cts=5), ex=False, codec_id=VideoCodecId.ON2_VP6),
    vtag(1, vtrack(AVC, 1), vtrack(AVC, 1), ex=False, codec_id=AVC),  # two tracks
    vtag(1, vtrack(AVC, 1, tid=1), ex=False, codec_id=AVC),  # track id on a legacy tag
    vtag(1, vtrack(AVC, 1), ex=False, codec_id=AVC, multitrack=MT.ONE_TRACK),
    vtag(1, vtrack(AVC, 1), ex=False, codec_id=AVC, mod_ex=(ModEx(mod_ex_type=1, data=b"a"),)),
    vtag(1, ex=False, codec_id=AVC, command=VideoCommand.START_SEEK),  # frame type 1 + command
    # E-RTMP
    vtag(1, vtrack(AVC, 1)),  # legacy codec in an ExVideoTagHeader
    vtag(1, vtrack(HEVC, 1), codec_id=AVC),
    vtag(1),  # no tracks
    vtag(0, vtrack(HEVC, 1)),
    vtag(5, vtrack(HEVC, 1)),
    vtag(1, vtrack(HEVC, 6)),  # Multitrack is not a track packet type
    vtag(1, vtrack(AV1, 1, cts=3)),  # AV1 has no composition time
    vtag(1, vtrack(HEVC, 3, cts=3)),  # CodedFramesX implies 0
    vtag(1, vtrack(HEVC, 1), vtrack(HEVC, 0, tid=1), multitrack=MT.MANY_TRACKS),
    vtag(1, vtrack(HEVC, 1), vtrack(AV1, 1, tid=1), multitrack=MT.MANY_TRACKS),
    vtag(1, vtrack(HEVC, 1), vtrack(HEVC, 1, tid=1), multitrack=MT.ONE_TRACK),
    vtag(1, vtrack(HEVC, 1), vtrack(HEVC, 1, tid=1)),  # two tracks, not multitrack
    vtag(1, vtrack(HEVC, 1, tid=1)),  # track id without multitrack
    vtag(1, vtrack(HEVC, 1, tid=256), multitrack=MT.ONE_TRACK),
    vtag(1, vtrack(HEVC, 1), mod_ex=(ModEx(mod_ex_type=0, data=b"ab"),)),
    vtag(1, vtrack(HEVC, 1), mod_ex=(ModEx(mod_ex_type=1, data=b""),)),
    vtag(1, vtrack(HEVC, 1), mod_ex=(ModEx(mod_ex_type=1, data=bytes(65537)),)),
    vtag(1, vtrack(HEVC, 1), mod_ex=(ModEx(mod_ex_type=16, data=b"a"),)),
    vtag(1, command=VideoCommand.START_SEEK),  # command needs frame type 5
    vtag(5, vtrack(HEVC, 1), command=VideoCommand.START_SEEK),
    vtag(8, vtrack(HEVC, 4)),  # frame type does not fit UB[3]
    vtag(5, vtrack(HEVC, 4), multitrack=MT.ONE_TRACK),  # would read back as a command
    vtag(0, vtrack(HEVC, 4), multitrack=MT.ONE_TRACK),
]


@pytest.mark.parametrize("tag", BAD_VIDEO_TAGS)
def test_encode_video_tag_rejects(tag: VideoTag) -> None:
    with pytest.raises(LocalProtocolError):
        encode_video_tag(tag)


def _atrack(codec: SoundFormat | AudioFourCC, pt: int, tid: int = 0) -> AudioTrack:
    return AudioTrack(codec=codec, packet_type=AudioPacketType(pt), track_id=tid)


def _atag(
    *tracks: AudioTrack,
    fmt: int = SoundFormat.EX_HEADER,
    rate: int | None = None,
    size: int | None = None,
    channels: int | None = None,
    multitrack: AvMultitrackType | None = None,
) -> AudioTag:
    return AudioTag(
        sound_format=fmt,  # type: ignore[arg-type]  # reserved values on purpose
        tracks=tracks,
        sound_rate=rate,
        sound_size=size,
        sound_type=channels,
        multitrack_type=multitrack,
    )


def _legacy_atag(*tracks: AudioTrack, fmt: int = SoundFormat.AAC, **kw: int | None) -> AudioTag:
    fields: dict[str, int | None] = {"rate": 3, "size": 1, "channels": 1, **kw}
    return _atag(*tracks, fmt=fmt, **fields)  # type: ignore[arg-type]


OPUS, AAC = AudioFourCC.OPUS, AudioFourCC.AAC
LAAC, LMP3 = SoundFormat.AAC, SoundFormat.MP3

BAD_AUDIO_TAGS = [
    _legacy_atag(_atrack(LAAC, 1), rate=None),  # legacy fields missing
    _legacy_atag(_atrack(LAAC, 1), rate=4),  # SoundRate does not fit UB[2]
    _legacy_atag(_atrack(LAAC, 1), channels=2),
    _legacy_atag(_atrack(LAAC, 2)),  # AACPacketType 2
    _legacy_atag(_atrack(OPUS, 1)),  # FourCC on a legacy tag
    _legacy_atag(_atrack(LAAC, 1, tid=1)),
    _legacy_atag(_atrack(LMP3, 0), fmt=LMP3),  # MP3 has no packet type
    _legacy_atag(_atrack(LAAC, 1), _atrack(LAAC, 1)),
    _legacy_atag(_atrack(LAAC, 1), multitrack=MT.ONE_TRACK),
    _legacy_atag(_atrack(LAAC, 1), fmt=12),  # reserved SoundFormat
    _atag(_atrack(LAAC, 1)),  # legacy codec in an ExAudioTagHeader
    _atag(_atrack(OPUS, 1), rate=3),
    _atag(),
    _atag(_atrack(OPUS, 5)),
    _atag(_atrack(OPUS, 1), _atrack(OPUS, 0, tid=1), multitrack=MT.MANY_TRACKS),
    _atag(_atrack(OPUS, 1), _atrack(AAC, 1, tid=1), multitrack=MT.MANY_TRACKS),
    _atag(_atrack(OPUS, 1), _atrack(OPUS, 1, tid=1)),
    _atag(_atrack(OPUS, 1, tid=300), multitrack=MT.ONE_TRACK),
]


@pytest.mark.parametrize("tag", BAD_AUDIO_TAGS)
def test_encode_audio_tag_rejects(tag: AudioTag) -> None:
    with pytest.raises(LocalProtocolError):
        encode_audio_tag(tag)


def test_builders_reject_unknown_packet_types() -> None:
    with pytest.raises(LocalProtocolError):
        build_video_tag(codec=HEVC, packet_type=9)
    with pytest.raises(LocalProtocolError):
        build_audio_tag(codec=OPUS, packet_type=3)


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

_si24 = st.integers(-(1 << 23), (1 << 23) - 1)
_data = st.binary(max_size=24)


@st.composite
def _mod_ex(draw: st.DrawFn) -> tuple[ModEx, ...]:
    entries = []
    for _ in range(draw(st.integers(0, 2))):
        mod_ex_type = draw(st.integers(0, 15))
        size = draw(st.sampled_from([1, 2, 3, 4, 255, 256, 300]))
        if mod_ex_type == 0:
            size = max(size, 3)
        entries.append(
            ModEx(mod_ex_type=mod_ex_type, data=draw(st.binary(min_size=size, max_size=size)))
        )
    return tuple(entries)


@st.composite
def video_tags(draw: st.DrawFn) -> VideoTag:
    if draw(st.booleans()):  # legacy
        codec = draw(st.sampled_from(list(VideoCodecId)))
        if draw(st.integers(0, 9)) == 0:
            return vtag(
                5, ex=False, codec_id=codec, command=draw(st.sampled_from(list(VideoCommand)))
            )
        frame_type = draw(st.integers(1, 4))
        if codec is AVC:
            track = VideoTrack(
                codec=codec,
                packet_type=VPT(draw(st.integers(0, 2))),
                data=draw(_data),
                composition_time_ms=draw(_si24),
            )
        else:
            track = VideoTrack(codec=codec, packet_type=VPT.CODED_FRAMES, data=draw(_data))
        return vtag(frame_type, track, ex=False, codec_id=codec)
    mod_ex = draw(_mod_ex())
    if draw(st.integers(0, 9)) == 0:
        return vtag(5, command=draw(st.sampled_from(list(VideoCommand))), mod_ex=mod_ex)
    packet_type = VPT(draw(st.integers(0, 5)))
    multitrack = draw(st.none() | st.sampled_from(list(AvMultitrackType)))
    # Only a header whose own packet type is Metadata ignores the frame type.
    ignored = packet_type is VPT.METADATA and multitrack is None
    frame_type = draw(st.integers(0, 7) if ignored else st.integers(1, 4))
    count = 1 if multitrack in (None, MT.ONE_TRACK) else draw(st.integers(1, 4))
    shared = draw(st.sampled_from(list(VideoFourCC)))
    tracks = []
    for index in range(count):
        fourcc = (
            draw(st.sampled_from(list(VideoFourCC)))
            if multitrack is MT.MANY_TRACKS_MANY_CODECS
            else shared
        )
        cts = 0
        if packet_type is VPT.CODED_FRAMES and fourcc in (HEVC, AVC1):
            cts = draw(_si24)
        track_id = draw(st.integers(0, 255)) if multitrack is not None else 0
        tracks.append(
            VideoTrack(
                codec=fourcc,
                packet_type=packet_type,
                data=draw(_data),
                track_id=track_id,
                composition_time_ms=cts,
            )
        )
        del index
    return vtag(frame_type, *tracks, multitrack=multitrack, mod_ex=mod_ex)


@st.composite
def audio_tags(draw: st.DrawFn) -> AudioTag:
    if draw(st.booleans()):  # legacy
        fmt = draw(st.sampled_from([f for f in SoundFormat if f is not SoundFormat.EX_HEADER]))
        pt = APT(draw(st.integers(0, 1))) if fmt is SoundFormat.AAC else APT.CODED_FRAMES
        return AudioTag(
            sound_format=fmt,
            tracks=(AudioTrack(codec=fmt, packet_type=pt, data=draw(_data)),),
            sound_rate=draw(st.integers(0, 3)),
            sound_size=draw(st.integers(0, 1)),
            sound_type=draw(st.integers(0, 1)),
        )
    packet_type = draw(
        st.sampled_from(
            [APT.SEQUENCE_START, APT.CODED_FRAMES, APT.SEQUENCE_END, APT.MULTICHANNEL_CONFIG]
        )
    )
    multitrack = draw(st.none() | st.sampled_from(list(AvMultitrackType)))
    count = 1 if multitrack in (None, MT.ONE_TRACK) else draw(st.integers(1, 4))
    shared = draw(st.sampled_from(list(AudioFourCC)))
    tracks = []
    for _ in range(count):
        fourcc = (
            draw(st.sampled_from(list(AudioFourCC)))
            if multitrack is MT.MANY_TRACKS_MANY_CODECS
            else shared
        )
        if packet_type is APT.MULTICHANNEL_CONFIG:
            data = draw(st.sampled_from([h("00 02"), h("01 06 0000003f"), h("02 02 0100")]))
        else:
            data = draw(_data)
        track_id = draw(st.integers(0, 255)) if multitrack is not None else 0
        tracks.append(
            AudioTrack(codec=fourcc, packet_type=packet_type, data=data, track_id=track_id)
        )
    return AudioTag(
        sound_format=SoundFormat.EX_HEADER,
        tracks=tuple(tracks),
        multitrack_type=multitrack,
        mod_ex=draw(_mod_ex()),
    )


@given(video_tags())
@settings(max_examples=400)
def test_video_round_trip(tag: VideoTag) -> None:
    payload = encode_video_tag(tag)
    assert parse_video_tag(payload) == tag
    assert classify_video(payload) is tag.kind


@given(audio_tags())
@settings(max_examples=400)
def test_audio_round_trip(tag: AudioTag) -> None:
    payload = encode_audio_tag(tag)
    assert parse_audio_tag(payload) == tag
    assert classify_audio(payload) is tag.kind


_first_bytes = st.sampled_from(sorted({v.payload[0] for v in VIDEO_VECTORS + AUDIO_VECTORS}))
_fuzz = st.binary(max_size=40) | st.builds(
    lambda b, rest: bytes((b,)) + rest, _first_bytes, st.binary(max_size=40)
)


@given(_fuzz)
@settings(max_examples=1000)
def test_video_fuzz(payload: bytes) -> None:
    """Only CodecHeaderError escapes; what parses classifies consistently and re-parses."""
    kind = classify_video(payload)
    try:
        tag = parse_video_tag(payload)
    except CodecHeaderError:
        return
    assert kind is tag.kind
    assert parse_video_tag(encode_video_tag(tag)) == tag


@given(_fuzz)
@settings(max_examples=1000)
def test_audio_fuzz(payload: bytes) -> None:
    kind = classify_audio(payload)
    try:
        tag = parse_audio_tag(payload)
    except CodecHeaderError:
        return
    assert kind is tag.kind
    assert parse_audio_tag(encode_audio_tag(tag)) == tag


# --------------------------------------------------------------------------------------------
# Real files from FFmpeg 9 (see fixtures/flv/README.md)
# --------------------------------------------------------------------------------------------


def _fixture_tags(name: str) -> Iterator[tuple[int, int, bytes]]:
    """(tag type, timestamp, body) of each tag, read without aiortmp.media.flv."""
    data = (FIXTURES / name).read_bytes()
    pos = 13
    while pos < len(data):
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        timestamp = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        yield data[pos], timestamp, data[pos + 11 : pos + 11 + size]
        pos += 11 + size + 4
    assert pos == len(data)


# Per file: {track id: (video codec, keyframe presentation times in ms)},
# {track id: audio codec}; the keyframes agree with the decoder's I pictures.
VideoExpectation = dict[int, tuple[VideoCodecId | VideoFourCC, list[int]]]
AudioExpectation = dict[int, SoundFormat | AudioFourCC]
FILES: dict[str, tuple[VideoExpectation, AudioExpectation]] = {
    "h264_aac.flv": ({0: (AVC, [200, 500])}, {0: SoundFormat.AAC}),
    "hevc_opus.flv": ({0: (HEVC, [200, 500])}, {0: OPUS}),
    "av1_aac.flv": ({0: (AV1, [46, 346])}, {0: SoundFormat.AAC}),
    "vp9_flac.flv": ({0: (VP9, [0, 300])}, {0: AudioFourCC.FLAC}),
    "multitrack.flv": (
        {0: (AVC, [46, 346]), 1: (AVC1, [46, 346])},
        {0: SoundFormat.AAC, 1: OPUS},
    ),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_ffmpeg_files(name: str) -> None:
    video_expected, audio_expected = FILES[name]
    keyframes: dict[int, list[int]] = {}
    frames: dict[int, int] = {}
    video_codecs: dict[int, object] = {}
    audio_codecs: dict[int, object] = {}
    seen_header: set[tuple[str, int]] = set()
    for tag_type, timestamp, body in _fixture_tags(name):
        if tag_type == 9:
            video = parse_video_tag(body)
            assert classify_video(body) is video.kind
            assert encode_video_tag(video) == body
            assert video.kind is not K.INVALID
            for track in video.tracks:
                video_codecs.setdefault(track.track_id, track.codec)
                assert track.codec is video_codecs[track.track_id]
                if video.is_sequence_header:
                    seen_header.add(("video", track.track_id))
                if video.kind in (K.KEYFRAME, K.INTER):
                    # A decoder needs the sequence header before the first frame.
                    assert ("video", track.track_id) in seen_header
                    frames[track.track_id] = frames.get(track.track_id, 0) + 1
                if video.is_keyframe:
                    pts = timestamp + track.composition_time_ms
                    keyframes.setdefault(track.track_id, []).append(pts)
        elif tag_type == 8:
            audio = parse_audio_tag(body)
            assert classify_audio(body) is audio.kind
            assert encode_audio_tag(audio) == body
            for atrack in audio.tracks:
                audio_codecs.setdefault(atrack.track_id, atrack.codec)
                assert atrack.codec is audio_codecs[atrack.track_id]
                if audio.is_sequence_header:
                    seen_header.add(("audio", atrack.track_id))
                if audio.kind is I.FRAME and atrack.codec is not SoundFormat.MP3:
                    assert ("audio", atrack.track_id) in seen_header
    assert video_codecs == {tid: codec for tid, (codec, _) in video_expected.items()}
    assert keyframes == {tid: times for tid, (_, times) in video_expected.items()}
    assert frames == dict.fromkeys(video_expected, 5)
    assert audio_codecs == audio_expected


def test_core_modules_do_no_io() -> None:
    """tags.py is sans-I/O: it imports neither asyncio nor socket."""
    tree = ast.parse(Path(tags_module.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"asyncio", "socket", "time", "selectors"}
