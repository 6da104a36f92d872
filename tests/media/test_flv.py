"""Tests for aiortmp.media.flv: FLV header/tag encoding, the parser, reader and writer."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiortmp.media.errors import FLVError
from aiortmp.media.flv import (
    FLVHeader,
    FLVParser,
    FLVReader,
    FLVTag,
    FLVWriter,
    TagType,
    encode_header,
    encode_tag,
)
from aiortmp.media.tags import SoundFormat, VideoFourCC, build_audio_tag, build_video_tag
from aiortmp.protocol import amf0
from aiortmp.protocol.errors import LocalProtocolError

FIXTURES = Path(__file__).parent / "fixtures" / "flv"
FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.flv"))

HEADER_AV = bytes.fromhex("464c5601 05 00000009 00000000")


def _tag_bytes(tag_type: int, timestamp: int, payload: bytes, stream_id: int = 0) -> bytes:
    """An FLV tag written out field by field (FLV v10.1 E.4.1), independently of the module."""
    return (
        bytes((tag_type,))
        + len(payload).to_bytes(3, "big")
        + (timestamp & 0xFFFFFF).to_bytes(3, "big")
        + bytes((timestamp >> 24,))
        + stream_id.to_bytes(3, "big")
        + payload
        + (11 + len(payload)).to_bytes(4, "big")
    )


SAMPLE_TAGS = [
    FLVTag(tag_type=TagType.SCRIPT, timestamp_ms=0, payload=b"\x02\x00\x0aonMetaData\x05"),
    FLVTag(tag_type=TagType.VIDEO, timestamp_ms=0, payload=bytes.fromhex("1700000000 0142c01e")),
    FLVTag(tag_type=TagType.AUDIO, timestamp_ms=23, payload=bytes.fromhex("af01 21")),
    FLVTag(tag_type=TagType.VIDEO, timestamp_ms=0x01234567, payload=b"\x27\x01\x00\x00\x00"),
    FLVTag(tag_type=TagType.AUDIO, timestamp_ms=0xFFFFFFFF, payload=b""),
    FLVTag(tag_type=TagType.VIDEO, timestamp_ms=5, payload=b"\x17\x02\x00\x00\x00", stream_id=7),
]
SAMPLE_FILE = HEADER_AV + b"".join(
    _tag_bytes(t.tag_type, t.timestamp_ms, t.payload, t.stream_id) for t in SAMPLE_TAGS
)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def test_encode_header() -> None:
    assert encode_header(FLVHeader(has_audio=True, has_video=True)) == HEADER_AV
    assert encode_header(FLVHeader(has_audio=True, has_video=False))[4] == 0x04
    assert encode_header(FLVHeader(has_audio=False, has_video=True))[4] == 0x01
    assert encode_header(FLVHeader(has_audio=False, has_video=False))[4] == 0x00
    with pytest.raises(LocalProtocolError):
        encode_header(FLVHeader(version=256, has_audio=True, has_video=True))


def test_encode_tag_timestamp_extended() -> None:
    tag = FLVTag(tag_type=TagType.VIDEO, timestamp_ms=0x12345678, payload=b"\xaa\xbb", stream_id=1)
    # TimestampExtended holds the upper 8 bits, after the lower 24.
    assert encode_tag(tag) == bytes.fromhex("09 000002 345678 12 000001 aabb 0000000d")
    assert encode_tag(SAMPLE_TAGS[1]) == _tag_bytes(9, 0, SAMPLE_TAGS[1].payload)


@pytest.mark.parametrize(
    "tag",
    [
        FLVTag(tag_type=32, timestamp_ms=0, payload=b""),
        FLVTag(tag_type=-1, timestamp_ms=0, payload=b""),
        FLVTag(tag_type=9, timestamp_ms=-1, payload=b""),
        FLVTag(tag_type=9, timestamp_ms=1 << 32, payload=b""),
        FLVTag(tag_type=9, timestamp_ms=0, payload=b"", stream_id=1 << 24),
        FLVTag(tag_type=9, timestamp_ms=0, payload=bytes(1 << 24)),
    ],
)
def test_encode_tag_rejects(tag: FLVTag) -> None:
    with pytest.raises(LocalProtocolError):
        encode_tag(tag)


# --------------------------------------------------------------------------------------------
# Parser: whole, one byte at a time, trailing data, malformed
# --------------------------------------------------------------------------------------------


def test_parser_whole() -> None:
    parser = FLVParser()
    assert parser.feed(SAMPLE_FILE) == SAMPLE_TAGS
    assert parser.header == FLVHeader(has_audio=True, has_video=True)
    assert parser.at_tag_boundary
    assert parser.buffered_bytes == 0


def test_parser_one_byte_at_a_time() -> None:
    parser = FLVParser()
    tags: list[FLVTag] = []
    for index in range(len(SAMPLE_FILE)):
        tags += parser.feed(SAMPLE_FILE[index : index + 1])
        if index < 8:
            assert parser.header is None
    assert tags == SAMPLE_TAGS
    assert parser.at_tag_boundary


@given(st.lists(st.integers(1, len(SAMPLE_FILE)), max_size=20))
def test_parser_any_split(cuts: list[int]) -> None:
    points = sorted({0, len(SAMPLE_FILE), *cuts})
    parser = FLVParser()
    tags: list[FLVTag] = []
    for start, end in zip(points, points[1:], strict=False):
        tags += parser.feed(memoryview(SAMPLE_FILE)[start:end])
    assert tags == SAMPLE_TAGS


def test_parser_trailing_partial_tag() -> None:
    parser = FLVParser()
    assert parser.feed(SAMPLE_FILE + b"\x09\x00\x00") == SAMPLE_TAGS
    assert not parser.at_tag_boundary
    assert parser.buffered_bytes == 3
    assert parser.feed(b"\x01\x00\x00\x00\x00\x00\x00\x00\xaa") == [
        FLVTag(tag_type=9, timestamp_ms=0, payload=b"\xaa")
    ]
    assert not parser.at_tag_boundary  # its PreviousTagSize has not arrived
    parser.feed(b"\x00\x00\x00\x0c")
    assert parser.at_tag_boundary


def test_parser_every_cut_of_sample() -> None:
    """A prefix yields exactly the tags it contains in full."""
    ends = []
    pos = len(HEADER_AV)
    for tag in SAMPLE_TAGS:
        pos += 11 + len(tag.payload)
        ends.append(pos)
        pos += 4
    for cut in range(len(SAMPLE_FILE) + 1):
        parser = FLVParser()
        if cut < 3:
            assert parser.feed(SAMPLE_FILE[:cut]) == []
            continue
        tags = parser.feed(SAMPLE_FILE[:cut])
        assert tags == SAMPLE_TAGS[: sum(1 for end in ends if end <= cut)]
        boundary = cut == len(HEADER_AV) or any(cut == end + 4 for end in ends)
        assert parser.at_tag_boundary is boundary


def test_parser_ignores_previous_tag_size_and_reserved_bits() -> None:
    data = bytearray(HEADER_AV[:4] + b"\xfa" + HEADER_AV[5:])  # reserved flag bits set
    data += (
        b"\xc9" + _tag_bytes(9, 1, b"\x17")[1:-4] + b"\xde\xad\xbe\xef"
    )  # Reserved bits, bad PTS
    tags = FLVParser().feed(bytes(data))
    assert tags == [FLVTag(tag_type=9, timestamp_ms=1, payload=b"\x17")]


def test_parser_skips_larger_data_offset() -> None:
    header = b"FLV\x01\x05" + (13).to_bytes(4, "big") + b"XXXX" + bytes(4)
    parser = FLVParser()
    assert parser.feed(header + _tag_bytes(8, 3, b"\x2f")) == [
        FLVTag(tag_type=8, timestamp_ms=3, payload=b"\x2f")
    ]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("signature-fails-fast", b"FLX"),
        ("signature-first-byte", b"G"),
        ("signature", b"flv\x01\x05\x00\x00\x00\x09"),
        ("version-0", b"FLV\x00\x05\x00\x00\x00\x09"),
        ("version-2", b"FLV\x02\x05\x00\x00\x00\x09"),
        ("data-offset-below-9", b"FLV\x01\x05\x00\x00\x00\x08"),
        ("data-offset-huge", b"FLV\x01\x05\xff\xff\xff\xff"),
        ("filter-bit", HEADER_AV + b"\x29" + _tag_bytes(9, 0, b"\x17")[1:]),
        ("oversize", HEADER_AV + b"\x09\xff\xff\xff" + bytes(7)),
    ],
)
def test_parser_errors(name: str, data: bytes) -> None:
    with pytest.raises(FLVError):
        FLVParser(max_tag_size=1 << 20).feed(data)


def test_parser_max_tag_size_is_inclusive() -> None:
    parser = FLVParser(max_tag_size=4)
    assert parser.feed(HEADER_AV + _tag_bytes(8, 0, b"abcd"))[0].payload == b"abcd"
    with pytest.raises(FLVError):
        FLVParser(max_tag_size=4).feed(HEADER_AV + _tag_bytes(8, 0, b"abcde")[:11])


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_parser_fuzz(data: bytes) -> None:
    """Only FLVError escapes, whatever follows a valid header."""
    for prefix in (b"", HEADER_AV):
        try:
            FLVParser(max_tag_size=1000).feed(prefix + data)
        except FLVError:
            pass


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


def test_reader() -> None:
    reader = FLVReader(io.BytesIO(SAMPLE_FILE))
    assert reader.header == FLVHeader(has_audio=True, has_video=True)
    assert list(reader) == SAMPLE_TAGS
    assert not reader.truncated
    assert list(reader) == []  # the file is consumed


@pytest.mark.parametrize("cut", [9, 12, 13 + 5, 13 + 11 + 3, len(SAMPLE_FILE) - 1])
def test_reader_truncated(cut: int) -> None:
    reader = FLVReader(io.BytesIO(SAMPLE_FILE[:cut]))
    tags = list(reader)
    assert reader.truncated
    assert tags == SAMPLE_TAGS[: len(tags)]
    if cut == len(SAMPLE_FILE) - 1:
        assert tags == SAMPLE_TAGS  # the last tag is whole; only its PreviousTagSize is cut


def test_reader_header_only() -> None:
    reader = FLVReader(io.BytesIO(HEADER_AV))
    assert list(reader) == []
    assert not reader.truncated


@pytest.mark.parametrize("data", [b"", b"FLV\x01", b"RIFF....WAVE", b"FLV\x03\x05\x00\x00\x00\x09"])
def test_reader_bad_header(data: bytes) -> None:
    with pytest.raises(FLVError):
        FLVReader(io.BytesIO(data))


def test_reader_large_file_across_reads() -> None:
    big = [FLVTag(tag_type=9, timestamp_ms=i, payload=bytes([i % 256]) * 50_000) for i in range(8)]
    data = HEADER_AV + b"".join(encode_tag(t) for t in big)
    assert list(FLVReader(io.BytesIO(data))) == big
    with pytest.raises(FLVError):
        list(FLVReader(io.BytesIO(data), max_tag_size=40_000))


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_reader_ffmpeg_files(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    reader = FLVReader(io.BytesIO(data))
    tags = list(reader)
    assert reader.header == FLVHeader(has_audio=True, has_video=True)
    assert not reader.truncated
    assert tags[0].tag_type == TagType.SCRIPT
    assert {t.tag_type for t in tags} == {8, 9, 18}
    # Re-encoding gives the file back byte for byte: FFmpeg's PreviousTagSizes are right.
    assert encode_header(reader.header) + b"".join(encode_tag(t) for t in tags) == data
    # And the incremental parser agrees, fed one byte at a time.
    parser = FLVParser()
    fed: list[FLVTag] = []
    for index in range(len(data)):
        fed += parser.feed(data[index : index + 1])
    assert fed == tags


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def _metadata(data: bytes) -> dict[str, Any]:
    tag = next(iter(FLVReader(io.BytesIO(data))))
    assert tag.tag_type == TagType.SCRIPT
    name, values = amf0.decode_all(tag.payload)
    assert name == "onMetaData"
    assert isinstance(values, dict)
    return values


def test_writer_layout() -> None:
    out = io.BytesIO()
    writer = FLVWriter(out, has_audio=False, has_video=True)
    writer.write_tag(TagType.VIDEO, 0x01000002, b"\x17\x01")
    writer.close()
    assert out.getvalue() == (
        b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00" + _tag_bytes(9, 0x01000002, b"\x17\x01")
    )


def test_writer_duration_patch() -> None:
    out = io.BytesIO()
    with FLVWriter(out) as writer:
        writer.write_metadata({"width": 64.0, "height": 48.0, "duration": 99, "encoder": "x"})
        assert _metadata(out.getvalue())["duration"] == 99.0  # reserved with the given value
        for frame in range(10):  # 10 fps video, CompositionTime 100 ms
            payload = build_video_tag(b"\x00", codec=VideoFourCC.HEVC, composition_time_ms=100)
            writer.write_tag(TagType.VIDEO, 1000 + frame * 100, payload)
        for frame in range(20):
            writer.write_tag(TagType.AUDIO, 1000 + frame * 50, b"\xaf\x01\x00")
        # Sequence headers and script tags do not extend the duration.
        writer.write_tag(TagType.AUDIO, 5000, b"\xaf\x00\x12\x10")
        writer.write_tag(TagType.SCRIPT, 6000, amf0.encode("onCuePoint", {}))
        writer.write_metadata({"late": True})  # only the first onMetaData is patched
    data = out.getvalue()
    metadata = _metadata(data)
    # Last frame presented at 1900 + 100, lasting 100 ms, from a first tag at 1000.
    assert metadata["duration"] == pytest.approx(1.1)
    assert writer.duration_s == pytest.approx(1.1)
    assert metadata["filesize"] == float(len(data)) == writer.size_bytes
    assert metadata["width"] == 64.0 and metadata["encoder"] == "x"
    assert list(metadata)[:2] == ["duration", "filesize"]
    assert [t.tag_type for t in FLVReader(io.BytesIO(data))].count(TagType.SCRIPT) == 3


def test_writer_appends_after_existing_bytes() -> None:
    """Patch offsets are relative to where the writer started in the file."""
    out = io.BytesIO()
    out.write(b"prefix")
    with FLVWriter(out) as writer:
        writer.write_metadata({})
        writer.write_tag(TagType.AUDIO, 0, b"\x2f\x00")
        writer.write_tag(TagType.AUDIO, 26, b"\x2f\x00")
    data = out.getvalue()
    assert data.startswith(b"prefix")
    metadata = _metadata(data[6:])
    assert metadata["duration"] == pytest.approx(0.052)
    assert metadata["filesize"] == len(data) - 6


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


def test_writer_unseekable() -> None:
    out = _Unseekable()
    writer = FLVWriter(out)  # type: ignore[arg-type]
    writer.write_metadata({"duration": 3.5})
    writer.write_tag(TagType.AUDIO, 0, b"\x2f\x00")
    writer.close()
    writer.close()
    metadata = _metadata(bytes(out.data))
    assert metadata["duration"] == 3.5  # left as given
    assert metadata["filesize"] == 0.0


def test_writer_closed_and_bad_arguments() -> None:
    writer = FLVWriter(io.BytesIO())
    with pytest.raises(LocalProtocolError):
        writer.write_tag(TagType.VIDEO, -1, b"")
    with pytest.raises(LocalProtocolError):
        writer.write_tag(TagType.VIDEO, 1 << 32, b"")
    with pytest.raises(LocalProtocolError):
        writer.write_tag(64, 0, b"")
    writer.close()
    with pytest.raises(LocalProtocolError):
        writer.write_tag(TagType.VIDEO, 0, b"")
    with pytest.raises(LocalProtocolError):
        writer.write_metadata({})


def test_writer_non_numeric_reserved_values() -> None:
    out = io.BytesIO()
    writer = FLVWriter(out)
    writer.write_metadata({"duration": "long", "filesize": True})
    metadata = _metadata(out.getvalue())
    assert metadata["duration"] == 0.0 and metadata["filesize"] == 0.0


_tags = st.lists(
    st.builds(
        FLVTag,
        tag_type=st.sampled_from([8, 9, 18]),
        timestamp_ms=st.integers(0, 0xFFFFFFFF),
        payload=st.binary(max_size=64),
    ),
    max_size=12,
)


@given(_tags, st.booleans(), st.booleans())
@settings(max_examples=200)
def test_writer_reader_round_trip(tags: list[FLVTag], has_audio: bool, has_video: bool) -> None:
    out = io.BytesIO()
    with FLVWriter(out, has_audio=has_audio, has_video=has_video) as writer:
        for tag in tags:
            writer.write_tag(tag.tag_type, tag.timestamp_ms, tag.payload)
    reader = FLVReader(io.BytesIO(out.getvalue()))
    assert reader.header == FLVHeader(has_audio=has_audio, has_video=has_video)
    assert list(reader) == tags
    assert not reader.truncated


@given(_tags, st.data())
@settings(max_examples=100)
def test_truncated_recording_keeps_whole_tags(tags: list[FLVTag], data: st.DataObject) -> None:
    out = io.BytesIO()
    with FLVWriter(out) as writer:
        for tag in tags:
            writer.write_tag(tag.tag_type, tag.timestamp_ms, tag.payload)
    raw = out.getvalue()
    cut = data.draw(st.integers(13, len(raw)))
    reader = FLVReader(io.BytesIO(raw[:cut]))
    read = list(reader)
    assert read == tags[: len(read)]
    complete = 13 + sum(15 + len(t.payload) for t in read)
    assert reader.truncated is (cut != complete)


# --------------------------------------------------------------------------------------------
# Real files: rewrite FFmpeg's tags with FLVWriter, check ffprobe / FFmpeg 9 accept them
# --------------------------------------------------------------------------------------------


def _rewrite(name: str, target: Path) -> tuple[float, float]:
    """Copy a fixture's tags through FLVWriter; return (FFmpeg's duration, ours)."""
    with (FIXTURES / name).open("rb") as fixture:
        tags = list(FLVReader(fixture))
    _, original = amf0.decode_all(tags[0].payload)
    with target.open("wb") as f, FLVWriter(f) as writer:
        writer.write_metadata(
            {k: v for k, v in original.items() if k not in ("duration", "filesize")}
        )
        for tag in tags[1:]:
            writer.write_tag(tag.tag_type, tag.timestamp_ms, tag.payload)
    with target.open("rb") as source:
        assert [t.payload for t in FLVReader(source)][1:] == [t.payload for t in tags[1:]]
    return float(original["duration"]), writer.duration_s


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_rewritten_duration_matches_ffmpeg(name: str, tmp_path: Path) -> None:
    ffmpeg_duration, ours = _rewrite(name, tmp_path / name)
    # FFmpeg knows each packet's exact duration; we estimate the last one from the
    # timestamp step, which differs by a few ms for audio with priming/padding.
    assert ours == pytest.approx(ffmpeg_duration, abs=0.02)
    metadata = _metadata((tmp_path / name).read_bytes())
    assert metadata["duration"] == ours
    assert metadata["filesize"] == (tmp_path / name).stat().st_size


def _ffmpeg9() -> str | None:
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="Debian ffprobe not installed")
def test_ffprobe_accepts_rewritten_h264_aac(tmp_path: Path) -> None:
    target = tmp_path / "out.flv"
    _, ours = _rewrite("h264_aac.flv", target)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name",
            "-of",
            "default=noprint_wrappers=1",
            str(target),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert probe.stderr == ""
    fields = [line.split("=", 1) for line in probe.stdout.split()]
    assert ["codec_name", "h264"] in fields and ["codec_name", "aac"] in fields
    duration = float(dict(fields)["duration"])
    assert duration == pytest.approx(ours, abs=0.001)


E_RTMP_FILES = {
    "hevc_opus.flv": ["hevc", "opus"],
    "av1_aac.flv": ["av1", "aac"],
    "vp9_flac.flv": ["vp9", "flac"],
    "multitrack.flv": ["h264", "h264", "aac", "opus"],
}


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(E_RTMP_FILES))
def test_ffmpeg9_accepts_rewritten_enhanced_files(name: str, tmp_path: Path) -> None:
    ffmpeg = _ffmpeg9()
    if ffmpeg is None:
        pytest.skip("FFmpeg 9 (imageio-ffmpeg) not available")
    target = tmp_path / name
    _, ours = _rewrite(name, target)
    # Decode everything: a broken tag would surface as a decoder error.
    run = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", str(target), "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    match = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", run.stderr)
    assert match is not None, run.stderr
    hours, minutes, seconds = match.groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    assert duration == pytest.approx(ours, abs=0.006)  # printed to 1/100 s
    codecs = re.findall(r"Stream #0:\d+.*?: (?:Video|Audio): (\w+)", run.stderr.split("Output")[0])
    assert sorted(codecs) == sorted(E_RTMP_FILES[name])


def test_struct_layout_sanity() -> None:
    """The 11-byte tag header is what FLV v10.1 E.4.1 lays out."""
    raw = encode_tag(FLVTag(tag_type=8, timestamp_ms=0xAABBCCDD, payload=b"", stream_id=0x010203))
    assert struct.unpack(">B3s3sB3sI", raw) == (
        8,
        b"\x00\x00\x00",
        b"\xbb\xcc\xdd",
        0xAA,
        b"\x01\x02\x03",
        11,
    )


AAC = SoundFormat.AAC


def test_build_helpers_make_valid_flv_bodies() -> None:
    """Tags built by aiortmp.media.tags go straight into an FLV file."""
    out = io.BytesIO()
    with FLVWriter(out) as writer:
        writer.write_tag(TagType.AUDIO, 0, build_audio_tag(b"\x12\x10", codec=AAC, packet_type=0))
    assert list(FLVReader(io.BytesIO(out.getvalue())))[0].payload == b"\xaf\x00\x12\x10"
