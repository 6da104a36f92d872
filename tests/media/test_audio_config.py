"""Tests for aiortmp.media.audio_config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.audio_config import (
    FLVSoundFlags,
    aac_profile_name,
    parse_ac3_frame_header,
    parse_audio_specific_config,
    parse_flac_stream_info,
    parse_flv_sound_flags,
    parse_mpeg_audio_frame_header,
    parse_opus_head,
)
from aiortmp.media.errors import CodecHeaderError

FIXTURES = Path(__file__).parent / "fixtures" / "codecs"
PROBES: dict[str, Any] = json.loads((FIXTURES / "ffprobe.json").read_text())


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def _probe(name: str) -> dict[str, Any]:
    probe: dict[str, Any] = PROBES[name]["ffprobe"]
    return probe


def _names(prefix: str) -> list[str]:
    return sorted(name for name in PROBES if name.startswith(prefix))


def _bits(text: str) -> bytes:
    digits = text.replace(" ", "")
    digits += "0" * (-len(digits) % 8)
    return int(digits or "0", 2).to_bytes(len(digits) // 8, "big")


def _u(value: int, width: int) -> str:
    return format(value, f"0{width}b")


# ----------------------------------------------------------------------------- AAC


@pytest.mark.parametrize("name", _names("aac_"))
def test_aac_fixtures_match_ffprobe(name: str) -> None:
    config = parse_audio_specific_config(_fixture(name))
    probe = _probe(name)
    assert aac_profile_name(config) == probe["profile"] == "LC"
    assert config.sample_rate_hz == int(probe["sample_rate"])
    assert config.channels == probe["channels"]
    assert config.sbr is False
    assert config.frame_length_samples == 1024


def test_aac_fixture_prefixes_and_trailing_data() -> None:
    data = _fixture("aac_lc_48000_2")
    full = parse_audio_specific_config(data)
    for end in range(2):
        with pytest.raises(CodecHeaderError):
            parse_audio_specific_config(data[:end])
    # The sync extension is optional: any longer prefix describes the same stream.
    for end in range(2, len(data)):
        assert parse_audio_specific_config(data[:end]) == full
    assert parse_audio_specific_config(data + b"\x00\x00") == full


def test_he_aac_explicit_signalling() -> None:
    # Widely used HE-AAC 44.1 kHz stereo config: AOT 5, core 22050 Hz, ext 44100 Hz.
    config = parse_audio_specific_config(bytes.fromhex("2b920800"))
    assert (config.audio_object_type, config.core_audio_object_type) == (5, 2)
    assert (config.sampling_frequency_hz, config.sample_rate_hz) == (22050, 44100)
    assert config.channels == 2
    assert aac_profile_name(config) == "HE-AAC"


def test_he_aac_v2_explicit_signalling_makes_mono_core_stereo() -> None:
    bits = _u(29, 5) + _u(6, 4) + _u(1, 4) + _u(3, 4) + _u(2, 5) + "000"
    config = parse_audio_specific_config(_bits(bits))
    assert (config.sbr, config.ps) == (True, True)
    assert config.sample_rate_hz == 48000
    assert config.channel_configuration == 1
    assert config.channels == 2
    assert aac_profile_name(config) == "HE-AACv2"


def test_backward_compatible_sbr_and_ps_signalling() -> None:
    lc = _u(2, 5) + _u(6, 4) + _u(1, 4) + "000"
    sbr = _u(0x2B7, 11) + _u(5, 5) + "1" + _u(3, 4)
    config = parse_audio_specific_config(_bits(lc + sbr))
    assert (config.audio_object_type, config.extension_audio_object_type) == (2, 5)
    assert (config.sampling_frequency_hz, config.sample_rate_hz) == (24000, 48000)
    assert aac_profile_name(config) == "HE-AAC"
    assert config.channels == 1
    with_ps = parse_audio_specific_config(_bits(lc + sbr + _u(0x548, 11) + "1"))
    assert aac_profile_name(with_ps) == "HE-AACv2"
    assert with_ps.channels == 2


@pytest.mark.parametrize(
    "extension",
    [
        _u(0x2B7, 11) + _u(5, 5) + "0",  # sbrPresentFlag 0 (what FFmpeg writes)
        _u(0x2B7, 11) + _u(5, 5) + "1" + _u(13, 4),  # reserved frequency index
        _u(0x2B7, 11) + _u(5, 5),  # truncated: sbrPresentFlag is missing
        _u(0x2B7, 11) + _u(22, 5) + "1",  # not SBR
        _u(0x123, 11) + _u(5, 5),  # no sync word
    ],
)
def test_absent_or_malformed_sync_extension_is_ignored(extension: str) -> None:
    config = parse_audio_specific_config(_bits(_u(2, 5) + _u(3, 4) + _u(2, 4) + "000" + extension))
    assert (config.sbr, config.sample_rate_hz) == (False, 48000)
    assert aac_profile_name(config) == "LC"


def test_escaped_object_type_and_explicit_frequency() -> None:
    # AOT 31 + 6 bits: 32 + 10 = 42 (USAC); samplingFrequencyIndex 15 + 24 bits.
    bits = _u(31, 5) + _u(10, 6) + _u(15, 4) + _u(50000, 24) + _u(2, 4)
    config = parse_audio_specific_config(_bits(bits))
    assert config.audio_object_type == 42
    assert config.sampling_frequency_hz == 50000
    assert config.frame_length_samples is None
    assert aac_profile_name(config) == "xHE-AAC"


def test_program_config_element_channel_count() -> None:
    pce = _u(0, 4) + _u(1, 2) + _u(4, 4)  # instance tag, object type, sf index
    pce += _u(2, 4) + _u(0, 4) + _u(1, 4) + _u(1, 2) + _u(0, 3) + _u(1, 4)  # counts
    pce += "0" + "0" + "1" + _u(1, 3)  # mono/stereo mixdown absent, matrix mixdown
    pce += "1" + _u(0, 4) + "0" + _u(1, 4)  # front: CPE, SCE
    pce += "1" + _u(1, 4)  # back: CPE
    pce += _u(0, 4)  # lfe element
    pce += "0" + _u(0, 4)  # valid cc element
    head = _u(2, 5) + _u(4, 4) + _u(0, 4) + "000"
    # The PCE's byte_alignment() is relative to the start of the config.
    bits = head + pce
    bits += "0" * (-len(bits) % 8) + _u(3, 8) + "0" * 24
    config = parse_audio_specific_config(_bits(bits))
    assert config.channel_configuration == 0
    assert config.channels == 6


def test_error_resilient_low_delay() -> None:
    bits = _u(23, 5) + _u(3, 4) + _u(1, 4) + "0" + "0" + "1" + "000" + "0" + "00"
    config = parse_audio_specific_config(_bits(bits))
    assert aac_profile_name(config) == "LD"
    assert (config.sample_rate_hz, config.channels) == (48000, 1)


def test_core_coder_delay_and_scalable_layer() -> None:
    bits = _u(6, 5) + _u(3, 4) + _u(2, 4) + "1" + "1" + _u(100, 14) + "0" + _u(1, 3)
    config = parse_audio_specific_config(_bits(bits))
    assert config.frame_length_samples == 960
    assert aac_profile_name(config) == "Scalable"


def test_reserved_channel_configuration_has_no_count() -> None:
    config = parse_audio_specific_config(_bits(_u(2, 5) + _u(3, 4) + _u(9, 4) + "000"))
    assert config.channels is None


@pytest.mark.parametrize(
    ("bits", "message"),
    [
        ("", "truncated"),
        (_u(0, 5) + _u(3, 4) + _u(2, 4), "null"),
        (_u(2, 5) + _u(13, 4) + _u(2, 4), "reserved"),
        (_u(2, 5) + _u(15, 4) + _u(0, 24) + _u(2, 4), "is 0"),
        (_u(5, 5) + _u(3, 4) + _u(2, 4) + _u(14, 4), "reserved"),
    ],
)
def test_malformed_audio_specific_config(bits: str, message: str) -> None:
    data = _bits(bits) + b"\x00" if bits else b""
    with pytest.raises(CodecHeaderError, match=message):
        parse_audio_specific_config(data)


# ---------------------------------------------------------------------------- Opus


@pytest.mark.parametrize("name", _names("opus_"))
def test_opus_fixtures_match_ffprobe(name: str) -> None:
    head = parse_opus_head(_fixture(name))
    probe = _probe(name)
    assert head.channels == probe["channels"]
    assert head.input_sample_rate_hz == int(probe["sample_rate"])
    assert head.version == 1
    assert head.pre_skip_samples == 312


def test_opus_surround_mapping() -> None:
    head = parse_opus_head(_fixture("opus_48000_6"))
    assert head.channel_mapping_family == 1
    assert (head.stream_count, head.coupled_count) == (4, 2)
    assert len(head.channel_mapping) == 6
    stereo = parse_opus_head(b"OpusHead\x01\x02\x38\x01\x44\xac\x00\x00\x00\xff\x00")
    assert (stereo.stream_count, stereo.coupled_count) == (1, 1)
    assert stereo.input_sample_rate_hz == 44100
    assert stereo.output_gain_q8_db == -256


@pytest.mark.parametrize("name", _names("opus_"))
def test_opus_prefixes_raise_and_trailing_data_is_ignored(name: str) -> None:
    data = _fixture(name)
    for end in range(len(data)):
        with pytest.raises(CodecHeaderError):
            parse_opus_head(data[:end])
    assert parse_opus_head(data + b"\x00" * 4) == parse_opus_head(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"OpusTags" + b"\x00" * 11, "magic"),
        (b"OpusHead\x10\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00", "version"),
        (b"OpusHead\x01\x00\x38\x01\x80\xbb\x00\x00\x00\x00\x00", "channel count is 0"),
        (b"OpusHead\x01\x03\x38\x01\x80\xbb\x00\x00\x00\x00\x00", "family 0"),
        (b"OpusHead\x01\x03\x38\x01\x80\xbb\x00\x00\x00\x00\x01\x02\x01\x00\x01", "truncated"),
        (b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x01\x00\x00\x00", "0 streams"),
        (b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x01\x01\x02\x00", "2 coupled"),
    ],
)
def test_malformed_opus_head(data: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_opus_head(data)


# ---------------------------------------------------------------------------- FLAC


@pytest.mark.parametrize("name", _names("flac_"))
def test_flac_fixtures_match_ffprobe(name: str) -> None:
    info = parse_flac_stream_info(_fixture(name))
    probe = _probe(name)
    assert info.sample_rate_hz == int(probe["sample_rate"])
    assert info.channels == probe["channels"]
    assert info.bits_per_sample == int(probe["bits_per_raw_sample"])
    assert info.min_block_size_samples == info.max_block_size_samples == 1024
    assert info.total_samples == 0  # a live stream's length is unknown


@pytest.mark.parametrize("name", _names("flac_"))
def test_flac_with_block_header_and_stream_marker(name: str) -> None:
    block = _fixture(name)
    bare = parse_flac_stream_info(block)
    header = b"\x00\x00\x00\x22"
    assert parse_flac_stream_info(header + block) == bare
    assert parse_flac_stream_info(b"\x80\x00\x00\x22" + block) == bare
    assert parse_flac_stream_info(b"fLaC" + header + block) == bare
    # A following metadata block (a VORBIS_COMMENT here) is ignored.
    assert parse_flac_stream_info(b"fLaC" + header + block + b"\x84\x00\x00\x00") == bare
    assert parse_flac_stream_info(block + b"\x00" * 4) == bare


@pytest.mark.parametrize("name", _names("flac_"))
def test_flac_prefixes_raise(name: str) -> None:
    data = b"fLaC\x00\x00\x00\x22" + _fixture(name)
    for end in range(len(data)):
        with pytest.raises(CodecHeaderError):
            parse_flac_stream_info(data[:end])


def _stream_info(min_block: int = 4096, max_block: int = 4096, rate: int = 44100) -> bytes:
    bits = _u(min_block, 16) + _u(max_block, 16) + _u(0, 24) + _u(0, 24)
    bits += _u(rate, 20) + _u(1, 3) + _u(15, 5) + _u(0, 36)
    return _bits(bits) + b"\x00" * 16


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"fLaC\x04\x00\x00\x22" + _stream_info(), "not STREAMINFO"),
        (b"fLaC" + _stream_info(), "not STREAMINFO"),
        (_stream_info(rate=0), "sample rate is 0"),
        (_stream_info(min_block=15), "block sizes"),
        (_stream_info(min_block=4096, max_block=1024), "block sizes"),
    ],
)
def test_malformed_flac(data: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_flac_stream_info(data)


# -------------------------------------------------------------------- AC-3 / E-AC-3


@pytest.mark.parametrize("name", _names("ac3_") + _names("eac3_"))
def test_ac3_fixtures_match_ffprobe(name: str) -> None:
    header = parse_ac3_frame_header(_fixture(name))
    probe = _probe(name)
    assert header.enhanced is (probe["codec_name"] == "eac3")
    assert header.sample_rate_hz == int(probe["sample_rate"])
    assert header.channels == probe["channels"]
    assert header.bit_rate_bps == int(probe["bit_rate"])


def test_ac3_fixture_frame_sizes() -> None:
    # A/52 Table 5.18: 448 kbit/s at 48 kHz is 1792 bytes, 192 kbit/s at 44.1 kHz 834.
    assert parse_ac3_frame_header(_fixture("ac3_48000_6")).frame_size_bytes == 1792
    assert parse_ac3_frame_header(_fixture("ac3_44100_2")).frame_size_bytes == 834
    assert parse_ac3_frame_header(_fixture("eac3_48000_2")).frame_size_bytes == 768


@pytest.mark.parametrize("name", _names("ac3_") + _names("eac3_"))
def test_ac3_prefixes_raise_or_parse_the_same(name: str) -> None:
    data = _fixture(name)
    full = parse_ac3_frame_header(data)
    for end in range(len(data)):
        try:
            assert parse_ac3_frame_header(data[:end]) == full
        except CodecHeaderError:
            assert end < 8


def _ac3(fscod: int, frmsizecod: int, bsid: int, acmod: int, mix: str, lfe: int) -> bytes:
    bits = _u(0x0B77, 16) + _u(0, 16) + _u(fscod, 2) + _u(frmsizecod, 6)
    bits += _u(bsid, 5) + _u(0, 3) + _u(acmod, 3) + mix + _u(lfe, 1)
    return _bits(bits + "0" * 16)


@pytest.mark.parametrize(
    ("acmod", "mix", "layout", "channels"),
    [
        (0, "", "1+1", 2),
        (1, "", "1/0", 1),
        (2, "00", "2/0", 2),
        (3, "00", "3/0", 3),
        (4, "00", "2/1", 3),
        (5, "0000", "3/1", 4),
        (6, "00", "2/2", 4),
        (7, "0000", "3/2", 5),
    ],
)
def test_ac3_mix_level_fields_before_lfeon(
    acmod: int, mix: str, layout: str, channels: int
) -> None:
    with_lfe = parse_ac3_frame_header(_ac3(0, 8, 8, acmod, mix, 1))
    assert (with_lfe.channel_layout, with_lfe.lfe) == (layout, True)
    assert with_lfe.channels == channels + 1
    assert parse_ac3_frame_header(_ac3(0, 8, 8, acmod, mix, 0)).lfe is False


def test_ac3_low_sample_rate_bsids_and_32khz() -> None:
    half = parse_ac3_frame_header(_ac3(0, 18, 9, 2, "00", 0))
    assert (half.sample_rate_hz, half.bit_rate_bps) == (24000, 80000)
    quarter = parse_ac3_frame_header(_ac3(1, 18, 10, 1, "", 0))
    assert quarter.sample_rate_hz == 11025
    khz32 = parse_ac3_frame_header(_ac3(2, 0, 6, 1, "", 0))
    assert (khz32.sample_rate_hz, khz32.frame_size_bytes) == (32000, 192)
    odd = parse_ac3_frame_header(_ac3(1, 1, 8, 1, "", 0))
    assert odd.frame_size_bytes == 140  # 44.1 kHz 32 kbit/s, padded: 70 words


def _eac3(fscod: int, fscod2_or_blocks: int, acmod: int, lfe: int, bsid: int = 16) -> bytes:
    bits = _u(0x0B77, 16) + _u(0, 2) + _u(0, 3) + _u(383, 11) + _u(fscod, 2)
    bits += _u(fscod2_or_blocks, 2) + _u(acmod, 3) + _u(lfe, 1) + _u(bsid, 5)
    return _bits(bits + "0" * 16)


def test_eac3_reduced_sample_rates_and_block_counts() -> None:
    reduced = parse_ac3_frame_header(_eac3(3, 1, 2, 0))
    assert (reduced.sample_rate_hz, reduced.channels) == (22050, 2)
    assert reduced.bit_rate_bps == 768 * 8 * 22050 // 1536
    one_block = parse_ac3_frame_header(_eac3(0, 0, 7, 1, bsid=11))
    assert (one_block.sample_rate_hz, one_block.channels) == (48000, 6)
    assert one_block.bit_rate_bps == 768 * 8 * 48000 // 256
    assert one_block.frame_size_bytes == 768


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x0b\x78" + b"\x00" * 8, "syncword"),
        (b"\x0b", "truncated"),
        (_ac3(3, 8, 8, 2, "00", 0), "fscod 3"),
        (_ac3(0, 38, 8, 2, "00", 0), "frmsizecod 38"),
        (_eac3(0, 0, 2, 0, bsid=17), "bsid 17"),
        (_eac3(3, 3, 2, 0), "fscod2"),
        (_bits(_u(0x0B77, 16) + "11" + "0" * 22 + _u(16, 5) + "0" * 16), "strmtyp"),
    ],
)
def test_malformed_ac3_frames(frame: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_ac3_frame_header(frame)


# ---------------------------------------------------------------------- MPEG audio


@pytest.mark.parametrize("name", _names("mp3_"))
def test_mp3_fixtures_match_ffprobe(name: str) -> None:
    header = parse_mpeg_audio_frame_header(_fixture(name))
    probe = _probe(name)
    assert header.layer == 3
    assert header.sample_rate_hz == int(probe["sample_rate"])
    assert header.channels == probe["channels"]
    assert header.bit_rate_bps == int(probe["bit_rate"])


def test_mp3_fixture_versions() -> None:
    assert parse_mpeg_audio_frame_header(_fixture("mp3_44100_1")).profile == "MPEG-1 Layer III"
    mpeg2 = parse_mpeg_audio_frame_header(_fixture("mp3_22050_2"))
    assert (mpeg2.profile, mpeg2.samples_per_frame) == ("MPEG-2 Layer III", 576)
    assert mpeg2.channel_mode == "joint stereo"
    mpeg25 = parse_mpeg_audio_frame_header(_fixture("mp3_8000_1"))
    assert (mpeg25.profile, mpeg25.channel_mode) == ("MPEG-2.5 Layer III", "mono")


def _mpeg(version: int, layer: int, bitrate: int, frequency: int, mode: int = 0) -> bytes:
    bits = _u(0x7FF, 11) + _u(version, 2) + _u(layer, 2) + "0" + _u(bitrate, 4)
    bits += _u(frequency, 2) + "1" + "0" + _u(mode, 2) + "0000"
    return _bits(bits)


def test_mpeg_layers_and_free_format() -> None:
    layer1 = parse_mpeg_audio_frame_header(_mpeg(3, 3, 14, 1))
    assert (layer1.layer, layer1.bit_rate_bps, layer1.sample_rate_hz) == (1, 448000, 48000)
    assert (layer1.samples_per_frame, layer1.protected, layer1.padding) == (384, True, True)
    layer2 = parse_mpeg_audio_frame_header(_mpeg(2, 2, 1, 2, mode=2))
    assert (layer2.profile, layer2.bit_rate_bps, layer2.sample_rate_hz) == (
        "MPEG-2 Layer II",
        8000,
        16000,
    )
    assert (layer2.samples_per_frame, layer2.channel_mode, layer2.channels) == (
        1152,
        "dual channel",
        2,
    )
    free = parse_mpeg_audio_frame_header(_mpeg(3, 1, 0, 0))
    assert free.bit_rate_bps is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\xff\xfb\x50", "truncated"),
        (b"\xff\x0b\x50\xc4", "sync"),
        (_mpeg(1, 1, 5, 0), "version"),
        (_mpeg(3, 0, 5, 0), "layer"),
        (_mpeg(3, 1, 15, 0), "forbidden"),
        (_mpeg(3, 1, 5, 3), "reserved"),
    ],
)
def test_malformed_mpeg_frames(frame: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_mpeg_audio_frame_header(frame)


# --------------------------------------------------------------- legacy FLV flags


@pytest.mark.parametrize(
    "name", _names("alaw_") + _names("ulaw_") + _names("nellymoser_") + _names("lpcm_")
)
def test_flv_flags_fixtures_match_ffprobe(name: str) -> None:
    flags = parse_flv_sound_flags(_fixture(name)[0])
    probe = _probe(name)
    assert flags.sample_rate_hz == int(probe["sample_rate"])
    assert flags.channels == probe["channels"]
    if probe["bits_per_sample"]:
        assert flags.sample_size_bits == probe["bits_per_sample"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            0xB2,
            FLVSoundFlags(sound_format=11, sample_rate_hz=16000, sample_size_bits=16, channels=1),
        ),
        (
            0xBF,
            FLVSoundFlags(sound_format=11, sample_rate_hz=16000, sample_size_bits=16, channels=1),
        ),
        (0x53, FLVSoundFlags(sound_format=5, sample_rate_hz=8000, sample_size_bits=16, channels=1)),
        (
            0x6F,
            FLVSoundFlags(sound_format=6, sample_rate_hz=44100, sample_size_bits=16, channels=1),
        ),
        (
            0xE3,
            FLVSoundFlags(sound_format=14, sample_rate_hz=8000, sample_size_bits=16, channels=2),
        ),
        (0x0C, FLVSoundFlags(sound_format=0, sample_rate_hz=44100, sample_size_bits=8, channels=1)),
        (0x01, FLVSoundFlags(sound_format=0, sample_rate_hz=5512, sample_size_bits=8, channels=2)),
        (
            0x2F,
            FLVSoundFlags(sound_format=2, sample_rate_hz=44100, sample_size_bits=16, channels=2),
        ),
        (0x8E, FLVSoundFlags(sound_format=8, sample_rate_hz=8000, sample_size_bits=8, channels=1)),
    ],
)
def test_flv_flags_per_format_rules(flags: int, expected: FLVSoundFlags) -> None:
    assert parse_flv_sound_flags(flags) == expected


@pytest.mark.parametrize("flags", [0x90, 0x9F, -1, 256])
def test_flv_flags_rejects_ex_header_and_non_bytes(flags: int) -> None:
    with pytest.raises(CodecHeaderError):
        parse_flv_sound_flags(flags)


# ------------------------------------------------------------------------ fuzzing


@given(st.binary(max_size=48))
def test_random_bytes_raise_only_codec_header_error(data: bytes) -> None:
    for parse in (
        parse_audio_specific_config,
        parse_opus_head,
        parse_flac_stream_info,
        parse_ac3_frame_header,
        parse_mpeg_audio_frame_header,
    ):
        try:
            parse(data)
        except CodecHeaderError:
            pass


@given(st.binary(max_size=40))
def test_random_headers_behind_magic_raise_only_codec_header_error(data: bytes) -> None:
    for parse, magic in (
        (parse_opus_head, b"OpusHead"),
        (parse_flac_stream_info, b"fLaC\x00\x00\x00\x22"),
        (parse_ac3_frame_header, b"\x0b\x77"),
        (parse_mpeg_audio_frame_header, b"\xff\xfb"),
    ):
        try:
            parse(magic + data)
        except CodecHeaderError:
            pass


@given(st.integers(0, 255))
def test_every_flags_byte_decodes_or_is_the_ex_header(flags: int) -> None:
    try:
        decoded = parse_flv_sound_flags(flags)
    except CodecHeaderError:
        assert flags >> 4 == 9
        return
    assert decoded.channels in (1, 2)
    assert decoded.sample_rate_hz in (5512, 8000, 11025, 16000, 22050, 44100)
