"""RFC 6381 codecs strings (src/aiortmp/media/codecs.py).

Known records (tests/media/fixtures/codecs, made by FFmpeg 9), then what FFmpeg 9's HLS
muxer writes in ``CODECS`` for the same configuration records, then malformed records.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from aiortmp.media.codecs import codec_string, parse_vvc_config_summary
from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.samples import MediaType, TrackConfig
from tests.media.fmp4_helpers import FFMPEG9, boxes, child, clips, load_flv, path

FIXTURES = Path(__file__).parent / "fixtures" / "codecs"
FFPROBE = json.loads((FIXTURES / "ffprobe.json").read_text())

# The strings for the fixture records, checked by hand against the bindings; the test
# below also checks profile and level against what ffprobe said about each stream.
KNOWN = {
    "h264_baseline_320x240_25": "avc1.42c00d",
    "h264_main_320x240_25": "avc1.4d400d",
    "h264_high_1280x720_30": "avc1.64001f",
    "h264_high10_1920x1080_2997_cqm": "avc1.6e0028",
    "h264_high422_720x576_25i": "avc1.7a001e",
    "h264_high444_322x242_50_cqm": "avc1.f40015",
    # Main: compatibility flags 1 and 2 ("6" reversed), progressive + frame-only (0x90).
    "hevc_main_320x240_25": "hvc1.1.6.L60.90",
    "hevc_main_426x240_24": "hvc1.1.6.L60.90",
    "hevc_main10_1280x720_30": "hvc1.2.4.L93.90",
    # Format range extensions, 4:4:4 8-bit: max_12/10/8bit set, then lower_bit_rate.
    "hevc_main444_1920x1080_60_sublayers": "hvc1.4.10.L123.9E.08",
    "av1_aom_1280x720_30": "av01.0.05M.08",
    "av1_aom_1280x720_30_timing": "av01.0.05M.08",
    "av1_svt10_640x360_30": "av01.0.01M.10",
    "av1_svt_320x240_25": "av01.0.00M.08",
    "vp9_profile0_320x240_25": "vp09.00.20.08",
    "vp9_profile2_1280x720_30": "vp09.02.31.10",
    # 4:4:4 is not the 4:2:0 the short form implies: all optional fields are written.
    "vp9_profile1_352x288_30": "vp09.01.20.08.03.02.02.02.00",
    "aac_lc_48000_2": "mp4a.40.2",
    "aac_lc_44100_6": "mp4a.40.2",
    "opus_48000_6": "opus",
    "flac_96000_2_s24": "fLaC",
    "ac3_48000_6": "ac-3",
    "eac3_48000_2": "ec-3",
    "mp3_44100_1": "mp4a.40.34",
}
_FOURCC = {"ac3_48000_6": "ac-3", "eac3_48000_2": "ec-3", "mp3_44100_1": ".mp3"}


def fixture_config(name: str) -> TrackConfig:
    entry = FFPROBE[name]
    media = MediaType.VIDEO if entry["kind"] == "video" else MediaType.AUDIO
    record = b"" if name in _FOURCC else (FIXTURES / entry["file"]).read_bytes()
    codec = _FOURCC.get(name, entry["fourcc"])
    return TrackConfig(media=media, track_id=0, codec=codec, record=record)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_records(name: str) -> None:
    config = fixture_config(name)
    string = codec_string(config)
    assert string == KNOWN[name]
    probe = FFPROBE[name]["ffprobe"]
    # Cross-check against FFmpeg's own reading of the same stream.
    if string.startswith("avc1."):
        assert int(string[-2:], 16) == probe["level"]
    elif string.startswith("hvc1."):
        assert re.search(r"\.[LH](\d+)", string)[1] == str(probe["level"])  # type: ignore[index]
    elif string.startswith("av01."):
        assert int(string.split(".")[2][:2]) == probe["level"]
        bits = 10 if "10" in probe["pix_fmt"] else 8
        assert string.split(".")[3] == f"{bits:02d}"


@pytest.mark.parametrize("name", ["h264_high_1280x720_30", "hevc_main10_1280x720_30"])
def test_trailing_bytes_change_nothing(name: str) -> None:
    config = fixture_config(name)
    assert codec_string(replace(config, record=config.record + b"\xff\x00\x17")) == KNOWN[name]


def test_malformed_records_raise_codec_header_error_only() -> None:
    rng = random.Random(6381)
    for name in KNOWN:
        config = fixture_config(name)
        if not config.record:
            continue
        codec_string(config)
        # Every prefix (the record arriving one byte at a time) and random corruption.
        candidates = [config.record[:length] for length in range(len(config.record))]
        for _ in range(40):
            mutated = bytearray(config.record)
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            candidates.append(bytes(mutated))
        for candidate in candidates:
            try:
                codec_string(replace(config, record=candidate))
            except CodecHeaderError:
                pass
    for codec in ("avc1", "hvc1", "vvc1", "av01", "vp09", "mp4a", "Opus", "fLaC"):
        with pytest.raises(CodecHeaderError):
            codec_string(TrackConfig(media=MediaType.VIDEO, track_id=0, codec=codec, record=b""))
    with pytest.raises(CodecHeaderError):
        codec_string(TrackConfig(media=MediaType.AUDIO, track_id=0, codec="speex", record=b""))


# ------------------------------------------------------------------------- VVC

# FFmpeg 9's VvcDecoderConfigurationRecord for a 160x90 Main 10 stream (libvvenc):
# ptl_present, 6 sublayers, 10-bit, level 16 (1.0), frame-only constraint, 160x96 max.
VVC_RECORD_HEAD = bytes.fromhex("ff00655f01021080000000a000600000")


def test_vvc_record_summary() -> None:
    record = VVC_RECORD_HEAD + bytes.fromhex("00")  # num_of_arrays = 0
    summary = parse_vvc_config_summary(record)
    assert (summary.profile_idc, summary.tier_flag, summary.level_idc) == (1, False, 16)
    assert (summary.width, summary.height, summary.nal_length_size_bytes) == (160, 96, 4)
    assert summary.record == record
    # The vvcC box payload form (FullBox version and flags first) reads the same.
    assert parse_vvc_config_summary(b"\x00\x00\x00\x00" + record) == summary
    assert parse_vvc_config_summary(record + b"\x01\x02").width == 160
    config = TrackConfig(media=MediaType.VIDEO, track_id=0, codec="vvc1", record=record)
    assert codec_string(config) == "vvc1.1.L16"
    # Without PTL the string is the bare FourCC.
    assert parse_vvc_config_summary(b"\xfe\x00").profile_idc is None
    assert codec_string(replace(config, record=b"\xfe\x00")) == "vvc1"
    # Sub-layer levels and sub-profiles move max_picture_width; a High-tier level 5.1.
    # 3 sublayers, both sublayer levels present, one sub-profile.
    with_sublayers = bytes.fromhex("ff00315f01035380c04340010000000107800438000000")
    summary = parse_vvc_config_summary(with_sublayers)
    assert (summary.profile_idc, summary.tier_flag, summary.level_idc) == (1, True, 83)
    assert (summary.width, summary.height) == (1920, 1080)
    for length in range(len(VVC_RECORD_HEAD)):
        with pytest.raises(CodecHeaderError):
            parse_vvc_config_summary(VVC_RECORD_HEAD[:length])
    with pytest.raises(CodecHeaderError):
        parse_vvc_config_summary(b"\x7f" + VVC_RECORD_HEAD[1:])  # reserved bits not 11111


# --------------------------------------------------------- against FFmpeg's hlsenc


def hls_codecs(source: list[str], directory: Path) -> tuple[str, bytes]:
    """Run FFmpeg 9's HLS muxer (fMP4 segments); return (CODECS, init.mp4 bytes).

    The master playlist gets its STREAM-INF once a segment is complete, so the source
    must last about a second.
    """
    directory.mkdir()
    subprocess.run(
        [FFMPEG9, "-nostdin", "-v", "error", "-y", *source]
        + ["-f", "hls", "-hls_segment_type", "fmp4", "-master_pl_name", "master.m3u8"]
        + [str(directory / "index.m3u8")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    master = (directory / "master.m3u8").read_text()
    match = re.search(r'CODECS="([^"]*)"', master)
    assert match, master
    return match[1], (directory / "init.mp4").read_bytes()


@pytest.mark.parametrize(
    "name", ["h264_aac", "av1_aac", "vp9_opus", "h264_mp3", "h264_ac3", "h264_eac3", "h264_flac"]
)
def test_same_as_ffmpeg_hlsenc_for_the_same_records(
    name: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    flv = clips(tmp_path_factory)[name]
    configs, _ = load_flv(flv)
    ours = [codec_string(config) for config in configs]
    theirs, _ = hls_codecs(["-i", str(flv), "-map", "0", "-c", "copy"], tmp_path / "hls")
    # FFmpeg writes "flac"; the MP4 registration authority's codecs string is the
    # sample entry FourCC, "fLaC" (FLAC in ISO BMFF §3.3.1), which hls.js and browsers
    # accept too.
    assert ",".join(ours).replace("fLaC", "flac") == theirs


def sample_entry_config(init: bytes, fourcc: str, config_box: str) -> bytes:
    """The configuration box payload of the first ``fourcc`` sample entry in an init.mp4."""
    stsd = path(init, "moov", "trak", "mdia", "minf", "stbl", "stsd")
    entry = child(init, stsd, fourcc, skip=8)
    assert [b.kind for b in boxes(init, entry.payload + 78, entry.end)][0] == config_box
    box = child(init, entry, config_box, skip=78)
    return init[box.payload : box.end]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_hevc_same_as_ffmpeg_hlsenc(pix_fmt: str, tmp_path: Path) -> None:
    # FFmpeg's hlsenc names HEVC only when it encoded the stream itself (a stream copied
    # from FLV has no profile in its parameters), so encode straight to HLS and read the
    # hvcC it wrote into init.mp4.
    source = ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1"]
    source += ["-pix_fmt", pix_fmt, "-c:v", "libx265", "-preset", "ultrafast"]
    source += ["-x265-params", "log-level=error", "-tag:v", "hvc1"]
    theirs, init = hls_codecs(source, tmp_path / "hls")
    record = sample_entry_config(init, "hvc1", "hvcC")
    config = TrackConfig(media=MediaType.VIDEO, track_id=0, codec="hvc1", record=record)
    assert codec_string(config) == theirs


def test_av1_444_long_form(tmp_path: Path) -> None:
    # FFmpeg's hlsenc names AV1 for a stream copied from FLV (not for one it encodes).
    flv = tmp_path / "av1_444.flv"
    subprocess.run(
        [FFMPEG9, "-nostdin", "-v", "error", "-f", "lavfi"]
        + ["-i", "testsrc2=size=160x90:rate=25:duration=1", "-pix_fmt", "gbrp"]
        + ["-c:v", "libaom-av1", "-cpu-used", "8", str(flv)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (config,) = load_flv(flv)[0]
    theirs, _ = hls_codecs(["-i", str(flv), "-c", "copy"], tmp_path / "hls")
    ours = codec_string(config)
    # Profile 1 (4:4:4), chroma "000", BT.709 primaries, sRGB transfer, identity matrix.
    # The last field differs: FFmpeg writes its container colour range (unset), while
    # AV1 §6.4.2 says this colour description implies color_range = 1 (full range).
    assert ours.rsplit(".", 1)[0] == theirs.rsplit(".", 1)[0] == "av01.1.00M.08.0.000.01.13.00"
    assert ours.endswith(".1")


def test_configless_and_fixed_strings() -> None:
    for codec, expected in [("ac-3", "ac-3"), ("ec-3", "ec-3"), (".mp3", "mp4a.40.34")]:
        config = TrackConfig(media=MediaType.AUDIO, track_id=0, codec=codec, record=b"")
        assert codec_string(config) == expected
    # HE-AAC v1 with explicit signalling: audioObjectType 5, 24 kHz core, 48 kHz SBR.
    # Fields: audioObjectType 5, sampling index 6, channels 2, extension sampling index
    # 3, core audioObjectType 2, GASpecificConfig 000; 25 bits, padded to 32.
    bits = "0010101100010001100010000"
    he_aac = int(bits.ljust(32, "0"), 2).to_bytes(4, "big")
    config = TrackConfig(media=MediaType.AUDIO, track_id=0, codec="mp4a", record=he_aac)
    assert codec_string(config) == "mp4a.40.5"
