"""Tests for aiortmp.media.mpegts: the MPEG-TS muxer for HLS.

The output is read back with a small transport stream reader written here from ISO/IEC
13818-1 (independently of the module), and, in the interop tests, by FFmpeg: Debian's
ffprobe 5.1 and FFmpeg 9 must probe and decode every segment alone and their concatenation
without a single error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiortmp.media.errors import FrameError
from aiortmp.media.flv import FLVReader
from aiortmp.media.mpegts import (
    AUDIO_PID,
    PMT_PID,
    VIDEO_PID,
    TSMuxer,
    mpeg2_crc32,
)
from aiortmp.media.samples import Frame, MediaType, TrackConfig, parse_media
from aiortmp.protocol.errors import LocalProtocolError

FIXTURES = Path(__file__).parent / "fixtures" / "codecs"
VIDEO, AUDIO = MediaType.VIDEO, MediaType.AUDIO
OFFSET90 = 1400 * 90  # the default timestamp_offset_ms, in 90 kHz ticks
DELAY90 = 700 * 90  # the default pcr_delay_ms
WRAP = 1 << 33


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


AVC = TrackConfig(media=VIDEO, track_id=0, codec="avc1", record=_fixture("h264_main_320x240_25"))
HEVC = TrackConfig(media=VIDEO, track_id=0, codec="hvc1", record=_fixture("hevc_main_320x240_25"))
AAC = TrackConfig(media=AUDIO, track_id=0, codec="mp4a", record=_fixture("aac_lc_48000_2"))
AAC_MS = 1024 / 48


def _bits(text: str) -> bytes:
    digits = text.replace(" ", "")
    digits += "0" * (-len(digits) % 8)
    return int(digits, 2).to_bytes(len(digits) // 8, "big")


# --------------------------------------------------------------------------- a TS reader


def _crc32_bitwise(data: bytes) -> int:
    """CRC-32/MPEG-2 bit by bit (ISO/IEC 13818-1 Annex A), to check the table version."""
    crc = 0xFFFFFFFF
    for byte in data:
        for bit in range(7, -1, -1):
            msb = (crc >> 31) ^ ((byte >> bit) & 1)
            crc = (crc << 1) & 0xFFFFFFFF
            if msb:
                crc ^= 0x04C11DB7
    return crc


@dataclass
class Packet:
    index: int
    pid: int
    pusi: bool
    cc: int
    has_payload: bool
    af: bytes | None
    payload: bytes

    @property
    def pcr(self) -> int | None:
        if not self.af or not self.af[0] & 0x10:
            return None
        raw = int.from_bytes(self.af[1:7], "big")
        assert (raw >> 9) & 0x3F == 0x3F, "PCR reserved bits"
        assert raw & 0x1FF == 0, "PCR extension"
        return raw >> 15

    @property
    def random_access(self) -> bool:
        return bool(self.af and self.af[0] & 0x40)


def read_packets(data: bytes) -> list[Packet]:
    assert len(data) % 188 == 0, len(data)
    packets = []
    for index in range(len(data) // 188):
        p = data[index * 188 : (index + 1) * 188]
        assert p[0] == 0x47, f"sync byte of packet {index}"
        assert not p[1] & 0x80, "transport_error_indicator"
        control = (p[3] >> 4) & 0x03
        assert control in (1, 2, 3) and not p[3] & 0xC0, "adaptation_field_control/scrambling"
        pos = 4
        af = None
        if control & 2:
            length = p[4]
            assert 5 + length <= 188
            if control == 2:
                assert length == 183, "an adaptation-only packet fills the packet"
            af = p[5 : 5 + length]
            if length:
                stuffing_from = 1 + (6 if af[0] & 0x10 else 0)
                assert set(af[stuffing_from:]) <= {0xFF}, "stuffing bytes"
            pos = 5 + length
        packets.append(
            Packet(
                index=index,
                pid=(p[1] & 0x1F) << 8 | p[2],
                pusi=bool(p[1] & 0x40),
                cc=p[3] & 0x0F,
                has_payload=bool(control & 1),
                af=af,
                payload=p[pos:] if control & 1 else b"",
            )
        )
    return packets


def decode_timestamp(raw: bytes, prefix: int) -> int:
    assert raw[0] >> 4 == prefix, f"timestamp prefix {raw[0] >> 4:04b}"
    assert raw[0] & 1 and raw[2] & 1 and raw[4] & 1, "marker bits"
    return (
        ((raw[0] >> 1) & 0x07) << 30
        | (int.from_bytes(raw[1:3], "big") >> 1) << 15
        | int.from_bytes(raw[3:5], "big") >> 1
    )


@dataclass
class PES:
    pid: int
    stream_id: int
    pts: int | None
    dts: int | None
    aligned: bool
    payload: bytes
    first: Packet
    packets: list[Packet] = field(default_factory=list)


def read_pes(packets: list[Packet], pid: int | None = None) -> list[PES]:
    """Reassemble the PES packets of every elementary stream PID (or of one)."""
    open_: dict[int, tuple[Packet, bytearray, list[Packet]]] = {}
    done: list[PES] = []

    def close(key: int) -> None:
        first, data, members = open_.pop(key)
        assert data[:3] == b"\x00\x00\x01", "packet_start_code_prefix"
        length = int.from_bytes(data[4:6], "big")
        assert data[6] & 0xC0 == 0x80
        flags, header_length = data[7] >> 6, data[8]
        body = bytes(data[9 + header_length :])
        if length:
            assert length == 3 + header_length + len(body), "PES_packet_length"
        pts = dts = None
        if flags == 2:
            pts = decode_timestamp(data[9:14], 0b0010)
            assert header_length == 5
        elif flags == 3:
            pts = decode_timestamp(data[9:14], 0b0011)
            dts = decode_timestamp(data[14:19], 0b0001)
            assert header_length == 10
        else:
            assert flags == 0
        done.append(PES(key, data[3], pts, dts, bool(data[6] & 0x04), body, first, members))

    for packet in packets:
        if packet.pid in (0, PMT_PID) or (pid is not None and packet.pid != pid):
            continue
        if not packet.has_payload:
            continue
        if packet.pusi:
            if packet.pid in open_:
                close(packet.pid)
            open_[packet.pid] = (packet, bytearray(packet.payload), [packet])
        else:
            assert packet.pid in open_, "payload before the first PES start"
            open_[packet.pid][1].extend(packet.payload)
            open_[packet.pid][2].append(packet)
    for key in list(open_):
        close(key)
    done.sort(key=lambda pes: pes.first.index)
    return done


def read_section(packet: Packet) -> bytes:
    assert packet.pusi and packet.payload[0] == 0, "pointer_field"
    section = packet.payload[1:]
    length = (section[1] & 0x0F) << 8 | section[2]
    section = section[: 3 + length]
    assert section[1] & 0xF0 == 0xB0, "section_syntax_indicator, '0', reserved"
    assert _crc32_bitwise(section) == 0, "CRC_32"
    assert set(packet.payload[1 + len(section) :]) <= {0xFF}
    return section


@dataclass
class PMT:
    version: int
    pcr_pid: int
    streams: list[tuple[int, int, bytes]]  # stream_type, PID, descriptors


def read_pmt(packet: Packet) -> PMT:
    section = read_section(packet)
    assert section[0] == 0x02
    assert int.from_bytes(section[3:5], "big") == 1, "program_number"
    assert section[5] & 0x01, "current_next_indicator"
    pcr_pid = int.from_bytes(section[8:10], "big") & 0x1FFF
    info = int.from_bytes(section[10:12], "big") & 0x0FFF
    pos = 12 + info
    streams = []
    while pos < len(section) - 4:
        es_info = int.from_bytes(section[pos + 3 : pos + 5], "big") & 0x0FFF
        pid = int.from_bytes(section[pos + 1 : pos + 3], "big") & 0x1FFF
        streams.append((section[pos], pid, section[pos + 5 : pos + 5 + es_info]))
        pos += 5 + es_info
    assert pos == len(section) - 4
    return PMT((section[5] >> 1) & 0x1F, pcr_pid, streams)


def pmts(packets: list[Packet]) -> list[PMT]:
    return [read_pmt(p) for p in packets if p.pid == PMT_PID]


def nal_units(annexb: bytes) -> list[bytes]:
    """Split an Annex B byte stream at its start codes."""
    assert annexb.startswith(b"\x00\x00\x00\x01") or annexb.startswith(b"\x00\x00\x01")
    units = []
    pos = annexb.index(b"\x00\x00\x01") + 3
    while True:
        nxt = annexb.find(b"\x00\x00\x01", pos)
        if nxt < 0:
            units.append(annexb[pos:])
            return units
        end = nxt - 1 if annexb[nxt - 1] == 0 else nxt
        units.append(annexb[pos:end])
        pos = nxt + 3


def avc_types(pes: PES) -> list[int]:
    return [unit[0] & 0x1F for unit in nal_units(pes.payload)]


def adts_frames(payload: bytes) -> list[tuple[dict[str, int], bytes]]:
    """Split ADTS frames (ISO/IEC 13818-7 §6.2), returning header fields and raw data."""
    frames = []
    pos = 0
    while pos < len(payload):
        h = payload[pos : pos + 7]
        assert h[0] == 0xFF and h[1] & 0xF6 == 0xF0, "syncword, layer"
        assert h[1] & 0x01, "protection_absent"
        length = (h[3] & 0x03) << 11 | h[4] << 3 | h[5] >> 5
        fields = {
            "profile": h[2] >> 6,
            "sampling_frequency_index": (h[2] >> 2) & 0x0F,
            "channel_configuration": (h[2] & 0x01) << 2 | h[3] >> 6,
            "buffer_fullness": (h[5] & 0x1F) << 6 | h[6] >> 2,
            "raw_blocks": h[6] & 0x03,
        }
        frames.append((fields, payload[pos + 7 : pos + length]))
        pos += length
    assert pos == len(payload)
    return frames


def check_continuity(packets: list[Packet], last: dict[int, int] | None = None) -> dict[int, int]:
    """continuity_counter: +1 per packet with payload, unchanged without (§2.4.3.3)."""
    last = {} if last is None else last
    for packet in packets:
        if packet.pid in last:
            expected = (last[packet.pid] + 1) & 0x0F if packet.has_payload else last[packet.pid]
            assert packet.cc == expected, f"PID {packet.pid:#x} packet {packet.index}"
        last[packet.pid] = packet.cc
    return last


def ticks(ms: float) -> int:
    return (round(ms * 90) + OFFSET90) % WRAP


# --------------------------------------------------------------------------- frames


def _body(size: int, seed: int = 1) -> bytes:
    """Bytes without zeros, so that no start code appears inside a NAL unit."""
    return bytes((seed + i) % 255 + 1 for i in range(size))


def au(*units: bytes, size: int = 4) -> bytes:
    return b"".join(len(unit).to_bytes(size, "big") + unit for unit in units)


def video(
    dts_ms: int, *units: bytes, key: bool = False, cts_ms: int = 0, config: TrackConfig = AVC
) -> Frame:
    return Frame(
        media=VIDEO,
        track_id=config.track_id,
        codec=config.codec,
        dts_ms=dts_ms,
        cts_ms=cts_ms,
        keyframe=key,
        data=au(*units),
    )


def audio(dts_ms: int, data: bytes, config: TrackConfig = AAC) -> Frame:
    return Frame(
        media=AUDIO,
        track_id=config.track_id,
        codec=config.codec,
        dts_ms=dts_ms,
        cts_ms=0,
        keyframe=True,
        data=data,
    )


IDR = b"\x65" + _body(300)
SLICE = b"\x41" + _body(120, 7)


def aac_frames(count: int, size: int = 150, start_ms: float = 0.0) -> list[Frame]:
    return [audio(round(start_ms + i * AAC_MS), _body(size, i)) for i in range(count)]


def run(mux: TSMuxer, frames: list[Frame]) -> bytes:
    return b"".join(mux.add(frame) for frame in frames) + mux.flush()


# --------------------------------------------------------------------------- CRC and PSI


def test_crc32_check_value_and_bitwise() -> None:
    # The catalogued check value of CRC-32/MPEG-2.
    assert mpeg2_crc32(b"123456789") == 0x0376E6E7
    data = _body(300)
    assert mpeg2_crc32(data) == _crc32_bitwise(data)
    assert mpeg2_crc32(b"") == 0xFFFFFFFF


@given(st.binary(max_size=64))
@settings(max_examples=50)
def test_crc32_matches_bitwise(data: bytes) -> None:
    assert mpeg2_crc32(data) == _crc32_bitwise(data)
    assert mpeg2_crc32(data + mpeg2_crc32(data).to_bytes(4, "big")) == 0


def test_segment_header_is_pat_then_pmt() -> None:
    mux = TSMuxer([AVC, AAC])
    first = read_packets(mux.segment_header())
    second = read_packets(mux.segment_header())
    assert [p.pid for p in first] == [0, PMT_PID]
    pat = read_section(first[0])
    assert pat[0] == 0x00 and pat[5] & 0x01
    # One program, number 1, whose PMT is on PMT_PID.
    assert pat[8:12] == (1).to_bytes(2, "big") + (0xE000 | PMT_PID).to_bytes(2, "big")
    pmt = read_pmt(first[1])
    assert pmt == PMT(0, VIDEO_PID, [(0x1B, VIDEO_PID, b""), (0x0F, AUDIO_PID, b"")])
    assert mux.pcr_pid == VIDEO_PID
    assert [t.pid for t in mux.tracks] == [VIDEO_PID, AUDIO_PID]
    # Each call is a new pair of packets on the same PIDs: the counters advance.
    assert [p.cc for p in second] == [(p.cc + 1) & 0x0F for p in first]
    assert read_section(second[1]) == read_section(first[1])


def test_output_starts_with_pat_pmt_without_segment_header() -> None:
    mux = TSMuxer([AVC])
    packets = read_packets(mux.add(video(0, IDR, key=True)))
    assert [p.pid for p in packets[:2]] == [0, PMT_PID]
    assert read_packets(mux.add(video(40, SLICE)))[0].pid == VIDEO_PID


def test_stream_types_and_descriptors() -> None:
    tracks = [
        TrackConfig(media=AUDIO, track_id=1, codec="ac-3", record=b""),
        HEVC,
        TrackConfig(media=AUDIO, track_id=2, codec="ec-3", record=b""),
        TrackConfig(media=AUDIO, track_id=3, codec=".mp3", record=b""),
    ]
    mux = TSMuxer(tracks)
    pmt = read_pmt(read_packets(mux.segment_header())[1])
    # The registration descriptors FFmpeg writes and reads (§2.6.8).
    assert pmt.streams == [
        (0x81, AUDIO_PID, b"\x05\x04AC-3"),
        (0x24, VIDEO_PID, b"\x05\x04HEVC"),
        (0x87, AUDIO_PID + 1, b"\x05\x04EAC3"),
        (0x03, AUDIO_PID + 2, b""),
    ]
    assert pmt.pcr_pid == VIDEO_PID
    assert mux.excluded == ()


def test_audio_only_program_takes_pcr_on_audio() -> None:
    mux = TSMuxer([AAC])
    assert mux.pcr_pid == AUDIO_PID
    assert read_pmt(read_packets(mux.segment_header())[1]).pcr_pid == AUDIO_PID
    empty = TSMuxer([])
    assert empty.pcr_pid == 0x1FFF
    assert read_pmt(read_packets(empty.segment_header())[1]).streams == []


# --------------------------------------------------------------------------- exclusions


def _config(media: MediaType, codec: str, record: bytes, track_id: int = 0) -> TrackConfig:
    return TrackConfig(media=media, track_id=track_id, codec=codec, record=record)


def _asc_explicit_rate(rate: int) -> bytes:
    # AOT 2, samplingFrequencyIndex 15 + 24-bit rate, channelConfiguration 2, GA flags 0.
    return _bits(f"00010 1111 {rate:024b} 0010 000")


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (_config(VIDEO, "av01", _fixture("av1_svt_320x240_25")), "av01"),
        (_config(VIDEO, "vp09", b"\x01\x00\x00\x00"), "vp09"),
        (_config(AUDIO, "Opus", _fixture("opus_48000_1")), "Opus"),
        (_config(AUDIO, "fLaC", _fixture("flac_48000_1_s16")), "fLaC"),
        (_config(VIDEO, "avc1", b"\x01\x42"), "record"),
        (_config(AUDIO, "mp4a", _asc_explicit_rate(50000)), "50000 Hz"),
        # AAC ELD (object type 39) has no ADTS profile.
        (_config(AUDIO, "mp4a", _bits("11111 000100 0011 0010 0 0 0 0 0 0")), "object type"),
    ],
)  # fmt: skip
def test_tracks_left_out(config: TrackConfig, reason: str) -> None:
    mux = TSMuxer([config])
    assert mux.tracks == ()
    [excluded] = mux.excluded
    assert excluded.config == config and reason in excluded.reason
    assert read_pmt(read_packets(mux.segment_header())[1]).streams == []
    frame = Frame(
        media=config.media,
        track_id=0,
        codec=config.codec,
        dts_ms=0,
        cts_ms=0,
        keyframe=True,
        data=b"\x00\x00\x00\x01\x65",
    )
    assert mux.add(frame) == b""


def test_one_video_track_per_program() -> None:
    second = TrackConfig(media=VIDEO, track_id=1, codec="hvc1", record=HEVC.record)
    mux = TSMuxer([AVC, second, AAC])
    assert [t.config for t in mux.tracks] == [AVC, AAC]
    assert [e.config for e in mux.excluded] == [second]
    assert mux.add(video(0, IDR, key=True, config=second)) == b""


def test_frames_of_unknown_tracks_or_other_codecs_are_ignored() -> None:
    mux = TSMuxer([AVC])
    mux.segment_header()
    assert mux.add(audio(0, b"\x01\x02")) == b""
    assert mux.add(video(0, IDR, key=True, config=HEVC)) == b""  # hvc1 on the avc1 track


def test_he_aac_travels_as_lc_at_the_core_rate() -> None:
    # Explicit SBR: AOT 5, core 24 kHz (index 6), stereo, extension 48 kHz (3), core AOT 2.
    he_aac = TrackConfig(
        media=AUDIO, track_id=0, codec="mp4a", record=_bits("00101 0110 0010 0011 00010 000")
    )
    mux = TSMuxer([he_aac])
    [pes] = read_pes(read_packets(run(mux, [audio(0, b"\x21\x10")])))
    [(fields, raw)] = adts_frames(pes.payload)
    assert fields["profile"] == 1 and fields["sampling_frequency_index"] == 6
    assert fields["channel_configuration"] == 2 and raw == b"\x21\x10"


def test_constructor_arguments_are_checked() -> None:
    with pytest.raises(LocalProtocolError):
        TSMuxer([], timestamp_offset_ms=100, pcr_delay_ms=200)
    with pytest.raises(LocalProtocolError):
        TSMuxer([], pcr_delay_ms=300, audio_pes_max_ms=300)
    with pytest.raises(LocalProtocolError):
        TSMuxer([], pcr_interval_ms=101)
    with pytest.raises(LocalProtocolError):
        TSMuxer([], audio_pes_max_bytes=70000)


# --------------------------------------------------------------------------- video


def test_video_key_frame_pes() -> None:
    mux = TSMuxer([AVC])
    mux.segment_header()
    packets = read_packets(mux.add(video(0, IDR, key=True, cts_ms=80)))
    [pes] = read_pes(packets)
    assert pes.pid == VIDEO_PID and pes.stream_id == 0xE0 and pes.aligned
    assert pes.pts == ticks(80) and pes.dts == ticks(0)
    assert int.from_bytes(packets[0].payload[4:6], "big") == 0  # unbounded video PES
    # AUD, then the parameter sets of the record, then the frame (H.264 §7.4.1.2.3).
    units = nal_units(pes.payload)
    assert units[0] == b"\x09\xf0"
    assert [u[0] & 0x1F for u in units] == [9, 7, 8, 5]
    assert units[3] == IDR
    first = pes.first
    assert first.random_access and first.pcr == ticks(0) - DELAY90
    # PCR and flags take 8 bytes of the first packet; the last is stuffed; others are full.
    assert len(packets[0].payload) == 176
    assert all(len(p.payload) == 184 for p in packets[1:-1]) and len(packets) > 2


def test_video_non_key_frame_pes() -> None:
    mux = TSMuxer([AVC])
    mux.segment_header()
    mux.add(video(0, IDR, key=True))
    [pes] = read_pes(read_packets(mux.add(video(40, SLICE, b"\x06\x05\x01\xaa\x80"))))
    assert avc_types(pes) == [9, 1, 6]
    assert pes.pts == ticks(40) and pes.dts is None  # PTS alone when cts is 0
    assert not pes.first.random_access and pes.first.pcr == ticks(40) - DELAY90


def test_in_band_aud_and_parameter_sets_are_not_repeated() -> None:
    mux = TSMuxer([AVC])
    mux.segment_header()
    sps = b"\x67" + _body(20, 3)
    pps = b"\x68\xee\x3c\x80"
    aud = b"\x09\x10"
    [pes] = read_pes(read_packets(mux.add(video(0, aud, sps, pps, IDR, key=True))))
    assert nal_units(pes.payload) == [aud, sps, pps, IDR]
    # An AUD that is not first is dropped: ours comes first.
    [pes] = read_pes(read_packets(mux.add(video(40, SLICE, aud))))
    assert nal_units(pes.payload) == [b"\x09\xf0", SLICE]
    # Zero-length NAL units are skipped.
    [pes] = read_pes(read_packets(mux.add(video(80, b"", SLICE))))
    assert avc_types(pes) == [9, 1]


@pytest.mark.parametrize("size", [1, 2, 4])
def test_nal_length_sizes(size: int) -> None:
    record = bytearray(AVC.record)
    record[4] = 0xFC | (size - 1)  # lengthSizeMinusOne
    config = TrackConfig(media=VIDEO, track_id=0, codec="avc1", record=bytes(record))
    mux = TSMuxer([config])
    mux.segment_header()
    small = b"\x41" + _body(100)
    frame = Frame(
        media=VIDEO,
        track_id=0,
        codec="avc1",
        dts_ms=0,
        cts_ms=0,
        keyframe=False,
        data=au(small, b"\x06\x01", size=size),
    )
    [pes] = read_pes(read_packets(mux.add(frame)))
    assert nal_units(pes.payload) == [b"\x09\xf0", small, b"\x06\x01"]


def test_hevc_key_frame() -> None:
    mux = TSMuxer([HEVC])
    mux.segment_header()
    idr = b"\x26\x01" + _body(200)  # IDR_W_RADL
    trail = b"\x02\x01" + _body(50)
    [key] = read_pes(read_packets(mux.add(video(0, idr, key=True, config=HEVC))))
    [other] = read_pes(read_packets(mux.add(video(40, trail, config=HEVC))))
    types = [(u[0] >> 1) & 0x3F for u in nal_units(key.payload)]
    assert nal_units(key.payload)[0] == b"\x46\x01\x50"  # AUD, pic_type 2
    assert types[:4] == [35, 32, 33, 34] and set(types[4:-1]) <= {39} and types[-1] == 19
    assert [(u[0] >> 1) & 0x3F for u in nal_units(other.payload)] == [35, 1]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00\x00",  # truncated length
        b"\x00\x00\x00\x10\x65\x88",  # overruns the frame
        b"\x00\x00\x00\x00",  # no NAL unit at all
        b"\x00\x00\x00\x02\x09\xf0",  # only an AUD
    ],
)
def test_malformed_video_frames(data: bytes) -> None:
    mux = TSMuxer([AVC])
    frame = Frame(
        media=VIDEO, track_id=0, codec="avc1", dts_ms=0, cts_ms=0, keyframe=True, data=data
    )
    with pytest.raises(FrameError):
        mux.add(frame)


def test_aac_frame_too_long_for_adts() -> None:
    mux = TSMuxer([AAC])
    mux.add(audio(0, _body(8184)))  # 8191 bytes with its header: the largest ADTS frame
    with pytest.raises(FrameError):
        mux.add(audio(21, _body(8185)))


FUZZ_TRACKS = [
    AVC,
    HEVC,
    AAC,
    _config(AUDIO, ".mp3", b"", track_id=1),
    _config(AUDIO, "ac-3", b"", track_id=2),
    _config(AUDIO, "ec-3", b"", track_id=3),
]


@given(
    config=st.sampled_from(FUZZ_TRACKS),
    frames=st.lists(st.tuples(st.binary(max_size=300), st.booleans()), min_size=1, max_size=4),
)
@settings(max_examples=300)
def test_any_frame_muxes_or_raises_frame_error(
    config: TrackConfig, frames: list[tuple[bytes, bool]]
) -> None:
    # Peer data reaches add() as it came: the only exception allowed is FrameError.
    mux = TSMuxer([c for c in FUZZ_TRACKS if c.media is AUDIO or c is config])
    out = bytearray()
    for index, (data, key) in enumerate(frames):
        frame = Frame(
            media=config.media,
            track_id=config.track_id,
            codec=config.codec,
            dts_ms=index * 20,
            cts_ms=0,
            keyframe=key,
            data=data,
        )
        try:
            out += mux.add(frame)
        except FrameError:
            assert config.media is VIDEO or len(data) > 8184
    out += mux.flush()
    packets = read_packets(bytes(out))
    check_continuity(packets)
    for pes in read_pes(packets):
        if pes.pid == VIDEO_PID:
            assert pes.payload.startswith(
                b"\x00\x00\x00\x01" + (b"\x46" if config is HEVC else b"\x09")
            )


# --------------------------------------------------------------------------- timestamps


def test_timestamp_field_bytes() -> None:
    # ISO/IEC 13818-1 §2.4.3.7: '0010', PTS[32..30], marker, PTS[29..15], marker, PTS[14..0].
    mux = TSMuxer([AVC], timestamp_offset_ms=700)  # dts_ms 0 -> 63000 ticks
    packets = read_packets(mux.add(video(0, IDR, key=True, cts_ms=1)))
    header = read_pes(packets)[0].first.payload
    pts, dts = 63090, 63000
    expected_pts = bytes(
        (0x31 | (pts >> 29) & 0x0E, (pts >> 22) & 0xFF, (pts >> 14) & 0xFE | 1)
    ) + bytes(((pts >> 7) & 0xFF, (pts << 1) & 0xFE | 1))
    assert header[6:9] == b"\x84\xc0\x0a"
    assert header[9:14] == expected_pts
    assert decode_timestamp(header[14:19], 0b0001) == dts


def test_timestamps_wrap_at_33_bits() -> None:
    mux = TSMuxer([AVC, AAC])
    # 95443717 ms is 2**33 - 62 ticks after the offset; one millisecond later it wraps.
    base = 95443717 - 1400
    assert base * 90 + OFFSET90 == WRAP - 62
    out = mux.segment_header()
    out += mux.add(video(base, IDR, key=True, cts_ms=1))
    out += mux.add(audio(base + 1, b"\x21\x00"))
    out += mux.add(video(base + 40, SLICE))
    out += mux.flush()
    packets = read_packets(out)
    key, after = read_pes(packets, VIDEO_PID)
    [aac] = read_pes(packets, AUDIO_PID)
    assert (key.dts, key.pts) == (WRAP - 62, 28)
    assert aac.pts == 28
    assert after.pts == (WRAP - 62 + 3600) % WRAP
    # The PCR wraps with them: 2**33 - 62 - 63000, then 3600 ticks later.
    assert key.first.pcr == WRAP - 62 - DELAY90
    assert after.first.pcr == WRAP - 62 - DELAY90 + 3600


def test_negative_composition_offset_stays_positive() -> None:
    mux = TSMuxer([AVC])
    [pes] = read_pes(read_packets(mux.add(video(0, IDR, key=True, cts_ms=-500))))
    assert pes.pts == ticks(-500) and pes.dts == ticks(0)


# --------------------------------------------------------------------------- PCR and CC


def _av_stream(video_fps: int, seconds: float) -> list[Frame]:
    frames: list[Frame] = []
    step = 1000 / video_fps
    for i in range(int(seconds * video_fps)):
        frames.append(
            video(
                round(i * step),
                IDR if i % video_fps == 0 else SLICE,
                key=i % video_fps == 0,
                cts_ms=80,
            )
        )
    frames += aac_frames(int(seconds * 1000 / AAC_MS), start_ms=10)
    frames.sort(key=lambda f: (f.dts_ms, f.media is AUDIO))
    return frames


def check_timing(packets: list[Packet], pcr_pid: int, max_interval_ms: float = 100) -> None:
    """PCR on pcr_pid: rising, at most max_interval apart, never ahead of a later PES."""
    pcrs = [(p.index, p.pcr) for p in packets if p.pcr is not None]
    assert pcrs and all(p.pid == pcr_pid for p in packets if p.pcr is not None)
    values = [value for _, value in pcrs]
    assert all(0 <= b - a <= max_interval_ms * 90 for a, b in zip(values, values[1:], strict=False))
    for pes in read_pes(packets):
        previous = [value for index, value in pcrs if index <= pes.first.index]
        if not previous:
            continue
        decode = pes.dts if pes.dts is not None else pes.pts
        assert decode is not None
        # The access unit is decoded after it arrives, and within a second (§2.4.2.6).
        assert 0 <= decode - previous[-1] <= 90000, (pes.pid, decode, previous[-1])


def test_pcr_and_continuity_in_an_av_stream() -> None:
    mux = TSMuxer([AVC, AAC])
    out = mux.segment_header() + run(mux, _av_stream(25, 3))
    packets = read_packets(out)
    check_continuity(packets)
    check_timing(packets, VIDEO_PID)
    video_pes = read_pes(packets, VIDEO_PID)
    assert len(video_pes) == 75
    # FFmpeg's VBR habit: a PCR in every video PES; random access only on key frames.
    assert all(pes.first.pcr is not None for pes in video_pes)
    assert [pes.first.random_access for pes in video_pes] == [i % 25 == 0 for i in range(75)]
    assert sum(p.pid == VIDEO_PID and not p.has_payload for p in packets) == 0
    assert max(p.cc for p in packets if p.pid == VIDEO_PID) == 15  # counters wrapped


def test_sparse_video_gets_adaptation_only_pcr_packets() -> None:
    mux = TSMuxer([AVC, AAC])
    out = mux.segment_header() + run(mux, _av_stream(5, 3))
    packets = read_packets(out)
    check_continuity(packets)
    check_timing(packets, VIDEO_PID)
    pcr_only = [p for p in packets if not p.has_payload]
    assert pcr_only and all(p.pid == VIDEO_PID and p.pcr is not None for p in pcr_only)


def test_audio_only_stream_carries_pcr_on_audio() -> None:
    mux = TSMuxer([AAC])
    packets = read_packets(mux.segment_header() + run(mux, aac_frames(150)))
    check_continuity(packets)
    check_timing(packets, AUDIO_PID)
    assert any(not p.has_payload for p in packets)  # bundles are longer than the interval


def test_continuity_counters_across_calls_and_segments() -> None:
    mux = TSMuxer([AVC, AAC])
    last: dict[int, int] = {}
    for segment in range(20):
        out = mux.segment_header()
        base = segment * 200
        out += mux.add(video(base, IDR, key=True))
        for i in range(1, 5):
            out += mux.add(audio(base + i * 40 - 20, b"\x21" * 50))
            out += mux.add(video(base + i * 40, SLICE))
        out += mux.flush()
        last = check_continuity(read_packets(out), last)
    assert set(last) == {0, PMT_PID, VIDEO_PID, AUDIO_PID}


# --------------------------------------------------------------------------- audio


def test_aac_frames_share_a_pes_while_contiguous() -> None:
    mux = TSMuxer([AAC])
    frames = aac_frames(40, size=100)
    out = run(mux, frames)
    pes_list = read_pes(read_packets(out), AUDIO_PID)
    counts = [len(adts_frames(pes.payload)) for pes in pes_list]
    assert sum(counts) == 40 and len(pes_list) < 40
    index = 0
    for pes, count in zip(pes_list, counts, strict=True):
        assert pes.stream_id == 0xC0 and pes.aligned and pes.dts is None
        assert pes.pts == ticks(frames[index].dts_ms)  # the PTS of the first frame
        assert len(pes.payload) <= 2930
        # The frames of a PES start less than audio_pes_max_ms (300 ms) apart.
        assert (count - 1) * AAC_MS < 300
        for (fields, raw), frame in zip(
            adts_frames(pes.payload), frames[index : index + count], strict=True
        ):
            assert raw == frame.data
            # LC, 48 kHz, stereo, VBR, one raw_data_block (ISO/IEC 13818-7 §6.2).
            assert fields == {
                "profile": 1,
                "sampling_frequency_index": 3,
                "channel_configuration": 2,
                "buffer_fullness": 0x7FF,
                "raw_blocks": 0,
            }
        index += count


def test_a_gap_starts_a_new_pes() -> None:
    mux = TSMuxer([AAC])
    frames = aac_frames(6) + aac_frames(6, start_ms=6 * AAC_MS + 30)  # 30 ms missing
    pes_list = read_pes(read_packets(run(mux, frames)))
    assert [len(adts_frames(p.payload)) for p in pes_list] == [6, 6]
    assert pes_list[1].pts == ticks(frames[6].dts_ms)


def test_size_limit_and_unbundled_audio() -> None:
    mux = TSMuxer([AAC], audio_pes_max_bytes=1000)
    pes_list = read_pes(read_packets(run(mux, aac_frames(20, size=300))))
    assert [len(adts_frames(p.payload)) for p in pes_list] == [3] * 6 + [2]
    mux = TSMuxer([AAC], audio_pes_max_bytes=0)
    out = b"".join(mux.add(frame) for frame in aac_frames(5))
    assert len(read_pes(read_packets(out))) == 5 and mux.flush() == b""


def test_held_audio_leaves_with_flush_or_with_later_video() -> None:
    mux = TSMuxer([AVC, AAC])
    mux.segment_header()
    assert not read_pes(read_packets(mux.add(audio(0, b"\x21" * 10))))
    assert read_pes(read_packets(mux.add(video(100, IDR, key=True))), AUDIO_PID) == []
    mux.add(audio(21, b"\x21" * 10))
    # A video frame 300 ms after the held audio sends it first.
    pes_list = read_pes(read_packets(mux.add(video(300, SLICE))))
    assert [p.pid for p in pes_list] == [AUDIO_PID, VIDEO_PID]
    assert len(adts_frames(pes_list[0].payload)) == 2
    mux.add(audio(320, b"\x21" * 10))
    [pes] = read_pes(read_packets(mux.flush()))
    assert pes.pts == ticks(320)
    assert mux.flush() == b""


@given(st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=12))
@settings(max_examples=60)
def test_packetization_round_trips(sizes: list[int]) -> None:
    # Every PES size hits another stuffing case (none, one byte, a longer field).
    mux = TSMuxer([AAC], audio_pes_max_bytes=0)
    frames = [audio(i * 21, _body(size, i)) for i, size in enumerate(sizes)]
    packets = read_packets(b"".join(mux.add(frame) for frame in frames))
    check_continuity(packets)
    pes_list = read_pes(packets)
    assert [adts_frames(p.payload)[0][1] for p in pes_list] == [f.data for f in frames]


def test_mp3_low_sampling_frequency_updates_the_pmt() -> None:
    mp3 = TrackConfig(media=AUDIO, track_id=0, codec=".mp3", record=b"")
    mux = TSMuxer([AVC, mp3])
    header = read_packets(mux.segment_header())
    assert read_pmt(header[1]).streams[1][0] == 0x03
    lsf = _fixture("mp3_22050_2")  # MPEG-2 Layer III
    packets = read_packets(mux.add(audio(0, lsf, config=mp3)) + mux.flush())
    [pmt] = pmts(packets)
    assert pmt.version == 1 and pmt.streams[1][:2] == (0x04, AUDIO_PID)
    assert packets[0].pid == PMT_PID  # before the PES it describes
    [pes] = read_pes(packets)
    assert pes.stream_id == 0xC0 and pes.payload == lsf
    assert pmts(read_packets(mux.segment_header()))[0].version == 1


def test_mpeg1_audio_keeps_the_pmt() -> None:
    mp3 = TrackConfig(media=AUDIO, track_id=0, codec=".mp3", record=b"")
    mux = TSMuxer([mp3])
    mux.segment_header()
    frame = b"\xff\xfb\x90\x64" + bytes(413)  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    packets = read_packets(run(mux, [audio(0, frame, mp3), audio(26, frame, mp3)]))
    assert pmts(packets) == []
    [pes] = read_pes(packets)  # 1152 samples = 26.1 ms apart: one PES
    assert pes.payload == frame * 2


def test_ac3_descriptor_from_the_first_frame() -> None:
    ac3 = TrackConfig(media=AUDIO, track_id=0, codec="ac-3", record=b"")
    mux = TSMuxer([ac3])
    mux.segment_header()
    frame = _fixture("ac3_48000_6")  # 5.1, 48 kHz
    packets = read_packets(run(mux, [audio(0, frame, ac3)]))
    [pmt] = pmts(packets)
    ((stream_type, pid, descriptors),) = pmt.streams
    assert (stream_type, pid) == (0x81, AUDIO_PID)
    assert descriptors[:6] == b"\x05\x04AC-3"
    tag, length, rate_bsid, bit_rate, service = descriptors[6:]
    # A/52 A.4.3: sample_rate_code 0 (48 kHz), bsid 8, exact bit_rate_code, 3/2 mode.
    assert (tag, length, rate_bsid) == (0x81, 3, 0b000_01000)
    assert bit_rate >> 2 == (frame[4] & 0x3F) >> 1
    assert service == 0b000_0111_1  # bsmod 0 (complete main), num_channels 3/2, full_svc
    [pes] = read_pes(packets)
    assert pes.stream_id == 0xBD and pes.payload == frame


def test_eac3_descriptor_from_the_first_frame() -> None:
    eac3 = TrackConfig(media=AUDIO, track_id=0, codec="ec-3", record=b"")
    mux = TSMuxer([eac3])
    mux.segment_header()
    packets = read_packets(run(mux, [audio(0, _fixture("eac3_48000_2"), eac3)]))
    [pmt] = pmts(packets)
    descriptors = pmt.streams[0][2]
    # A/52 G.3.5: bsid_flag; full_service, complete main, two channels; bsid 16.
    assert descriptors == b"\x05\x04EAC3" + bytes((0xCC, 3, 0xC0, 0b1100_0010, 0x20 | 16))


def test_frames_that_do_not_parse_are_muxed_without_describing() -> None:
    ac3 = TrackConfig(media=AUDIO, track_id=0, codec="ac-3", record=b"")
    mux = TSMuxer([ac3], audio_pes_max_bytes=0)
    mux.segment_header()
    junk = _body(70000)  # longer than a PES can be
    packets = read_packets(mux.add(audio(0, junk, ac3)))
    assert pmts(packets) == []
    first, second = read_pes(packets)
    assert first.pts == ticks(0) and second.pts is None and not second.aligned
    assert first.payload + second.payload == junk


# --------------------------------------------------------------------------- updates


def test_update_track_with_new_parameter_sets() -> None:
    mux = TSMuxer([AVC])
    mux.segment_header()
    baseline = TrackConfig(
        media=VIDEO, track_id=0, codec="avc1", record=_fixture("h264_baseline_320x240_25")
    )
    mux.update_track(baseline)
    packets = read_packets(mux.add(video(0, IDR, key=True)))
    assert pmts(packets) == []  # same stream_type: the PMT is unchanged
    sps = nal_units(read_pes(packets)[0].payload)[1]
    assert sps[1] == 66  # profile_idc Baseline, from the new record


def test_update_track_changes_codec_and_adds_a_track() -> None:
    mux = TSMuxer([AVC])
    header = read_packets(mux.segment_header())
    mux.add(video(0, IDR, key=True))
    mux.update_track(HEVC)
    second = TrackConfig(media=AUDIO, track_id=5, codec="mp4a", record=AAC.record)
    mux.update_track(second)
    packets = read_packets(mux.add(video(40, b"\x26\x01" + _body(20), key=True, config=HEVC)))
    [pmt] = pmts(packets)
    assert pmt.version == 1  # one bump for both changes, sent once
    assert pmt.streams == [(0x24, VIDEO_PID, b"\x05\x04HEVC"), (0x0F, AUDIO_PID, b"")]
    assert packets[-1].pid == VIDEO_PID
    assert [(t.config, t.pid) for t in mux.tracks] == [(HEVC, VIDEO_PID), (second, AUDIO_PID)]
    assert header[1].cc + 1 == packets[0].cc


def test_update_track_keeps_held_audio() -> None:
    mux = TSMuxer([AAC])
    mux.segment_header()
    mux.add(audio(0, b"\x21\x01"))
    mono = _config(AUDIO, "mp4a", _bits("00010 0011 0001 000"))  # LC, 48 kHz, mono
    mux.update_track(mono)
    packets = read_packets(mux.add(audio(21, b"\x21\x02")) + mux.flush())
    [pes] = read_pes(packets, AUDIO_PID)
    frames = adts_frames(pes.payload)
    assert [raw for _, raw in frames] == [b"\x21\x01", b"\x21\x02"]
    assert [fields["channel_configuration"] for fields, _ in frames] == [2, 1]
    assert pmts(packets) == []  # still AAC in ADTS: the PMT has not changed


# --------------------------------------------------------------------------- with FFmpeg


def _ffmpeg9() -> str | None:
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None


FFMPEG9 = _ffmpeg9()
_LAVFI_VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "2"]
# name -> (encoder arguments, audio sample rate, video codec, audio codec)
CLIPS: dict[str, tuple[list[str], int, str, str]] = {
    "h264_aac": (["-c:v", "libx264", "-bf", "2", "-c:a", "aac"], 48000, "h264", "aac"),
    "hevc_aac": (
        ["-c:v", "libx265", "-x265-params", "log-level=error:bframes=2", "-c:a", "aac"],
        48000,
        "hevc",
        "aac",
    ),
    # 22.05 kHz is MPEG-2 Layer III: stream_type 0x04 after the first frame.
    "h264_mp3": (["-c:v", "libx264", "-c:a", "libmp3lame"], 22050, "h264", "mp3"),
    "h264_ac3": (["-c:v", "libx264", "-c:a", "ac3"], 48000, "h264", "ac3"),
    "h264_eac3": (["-c:v", "libx264", "-c:a", "eac3"], 48000, "h264", "eac3"),
}


@dataclass
class Muxed:
    segments: list[Path]
    whole: Path
    # per segment: the frames muxed into it
    frames: list[list[Frame]]


def _mux_flv(path: Path) -> Muxed:
    configs: dict[tuple[MediaType, int], TrackConfig] = {}
    frames: list[Frame] = []
    with path.open("rb") as file:
        for tag in FLVReader(file):
            for unit in parse_media(tag.tag_type, tag.timestamp_ms, tag.payload):
                key = (unit.media, unit.track_id)
                if isinstance(unit, TrackConfig):
                    configs[key] = unit
                else:
                    frames.append(unit)
                    # MP3 has no sequence header: the stream core describes it by codec.
                    configs.setdefault(
                        key,
                        TrackConfig(
                            media=unit.media, track_id=unit.track_id, codec=unit.codec, record=b""
                        ),
                    )
    mux = TSMuxer(list(configs.values()))
    assert mux.excluded == ()
    segments: list[bytearray] = []
    per_segment: list[list[Frame]] = []
    for frame in frames:
        if frame.media is VIDEO and frame.keyframe:
            if segments:
                segments[-1] += mux.flush()
            segments.append(bytearray(mux.segment_header()))
            per_segment.append([])
        if not segments:
            continue  # what comes before the first key frame cannot start a segment
        segments[-1] += mux.add(frame)
        per_segment[-1].append(frame)
    segments[-1] += mux.flush()
    paths = []
    for index, segment in enumerate(segments):
        target = path.with_name(f"{path.stem}_{index}.ts")
        target.write_bytes(segment)
        paths.append(target)
    whole = path.with_name(f"{path.stem}_all.ts")
    whole.write_bytes(b"".join(segments))
    return Muxed(paths, whole, per_segment)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Muxed]:
    if FFMPEG9 is None:
        pytest.skip("FFmpeg 9 (imageio-ffmpeg) not available")
    folder = tmp_path_factory.mktemp("mpegts")
    muxed = {}
    for name, (arguments, rate, _, _) in CLIPS.items():
        target = folder / f"{name}.flv"
        command = [FFMPEG9, "-hide_banner", "-v", "error", "-nostdin", *_LAVFI_VIDEO]
        command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}", "-t", "2"]
        command += [*arguments, "-g", "25", "-preset", "ultrafast", str(target)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        muxed[name] = _mux_flv(target)
    return muxed


def _ffprobe(path: Path) -> dict[str, Any]:
    """Debian ffprobe: streams and packets, decoding every frame (-count_frames)."""
    run_ = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_packets",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run_.returncode == 0 and run_.stderr == "", run_.stderr
    probe: dict[str, Any] = json.loads(run_.stdout)
    return probe


def _decode9(path: Path) -> None:
    assert FFMPEG9 is not None
    run_ = subprocess.run(
        [
            FFMPEG9,
            "-hide_banner",
            "-v",
            "error",
            "-nostdin",
            "-i",
            str(path),
            "-map",
            "0",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run_.returncode == 0 and run_.stderr == "", run_.stderr


def _check_probe(probe: dict[str, Any], frames: list[Frame], name: str) -> None:
    _, rate, video_codec, audio_codec = CLIPS[name]
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert streams["video"]["codec_name"] == video_codec
    assert (streams["video"]["width"], streams["video"]["height"]) == (160, 90)
    assert streams["audio"]["codec_name"] == audio_codec
    assert int(streams["audio"]["sample_rate"]) == rate
    by_index = {s["index"]: s["codec_type"] for s in probe["streams"]}
    packets: dict[str, list[dict[str, Any]]] = {"video": [], "audio": []}
    for packet in probe["packets"]:
        packets[by_index[packet["stream_index"]]].append(packet)
    sources = {
        kind: [f for f in frames if f.media is media]
        for kind, media in (("video", VIDEO), ("audio", AUDIO))
    }
    for kind in ("video", "audio"):
        assert len(packets[kind]) == len(sources[kind])
        assert int(streams[kind]["nb_read_frames"]) == len(sources[kind])
    # Video: the exact PTS/DTS of every frame; audio: the PES PTS and the frame lengths.
    got = sorted((int(p["pts"]), int(p["dts"])) for p in packets["video"])
    want = sorted((ticks(f.dts_ms + f.cts_ms), ticks(f.dts_ms)) for f in sources["video"])
    assert got == want
    for packet, frame in zip(packets["audio"], sources["audio"], strict=True):
        assert abs(int(packet["pts"]) - ticks(frame.dts_ms)) <= 90  # ms-rounded timestamps
    video_ms = max(int(p["pts"]) for p in packets["video"]) - min(
        int(p["pts"]) for p in packets["video"]
    )
    assert video_ms / 90 == pytest.approx(40 * (len(sources["video"]) - 1), abs=1)
    audio_span = (
        int(packets["audio"][-1]["pts"])
        + int(packets["audio"][-1]["duration"])
        - int(packets["audio"][0]["pts"])
    )
    source_span = sources["audio"][-1].dts_ms - sources["audio"][0].dts_ms
    assert audio_span / 90 == pytest.approx(
        source_span + int(packets["audio"][-1]["duration"]) / 90, abs=2
    )


needs_ffprobe = pytest.mark.skipif(
    shutil.which("ffprobe") is None, reason="Debian ffprobe not installed"
)


@pytest.mark.interop
@needs_ffprobe
@pytest.mark.parametrize("name", sorted(CLIPS))
def test_ffmpeg_reads_every_segment_alone(clips: dict[str, Muxed], name: str) -> None:
    muxed = clips[name]
    assert len(muxed.segments) == 2  # 2 s cut at every 1 s GOP
    for path, frames in zip(muxed.segments, muxed.frames, strict=True):
        data = path.read_bytes()
        packets = read_packets(data)
        # PAT, PMT, then the key frame with its PCR and parameter sets (Apple HLS rules).
        assert [p.pid for p in packets[:3]] == [0, PMT_PID, VIDEO_PID]
        assert packets[2].pusi and packets[2].random_access and packets[2].pcr is not None
        check_continuity(packets)
        check_timing(packets, VIDEO_PID)
        _check_probe(_ffprobe(path), frames, name)
        _decode9(path)


@pytest.mark.interop
@needs_ffprobe
@pytest.mark.parametrize("name", sorted(CLIPS))
def test_ffmpeg_reads_the_concatenation(clips: dict[str, Muxed], name: str) -> None:
    muxed = clips[name]
    packets = read_packets(muxed.whole.read_bytes())
    check_continuity(packets)
    check_timing(packets, VIDEO_PID)
    _check_probe(_ffprobe(muxed.whole), [f for frames in muxed.frames for f in frames], name)
    _decode9(muxed.whole)
