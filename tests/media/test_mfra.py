"""The mfra random access index (src/aiortmp/media/mfra.py): the sync points of our
muxer's fragments, the box layout (ISO/IEC 14496-12 §8.8.9-§8.8.11), and players that
read a file ending with it."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from aiortmp.media.errors import MP4Error
from aiortmp.media.fmp4 import FMP4Muxer
from aiortmp.media.mfra import RandomAccessPoint, mfra_box, sync_points
from aiortmp.media.samples import MediaType
from tests.media.fmp4_helpers import FFMPEG9, boxes, clips, debian, load_flv


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return clips(tmp_path_factory)


def test_sync_points_of_fragments(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    origin = next(f.dts_ms for f in frames if f.keyframe and f.media is MediaType.VIDEO)
    muxer = FMP4Muxer(configs, origin_ms=origin)
    fragments = []
    for frame in frames:
        muxer.add(frame)
        # Cut mid-GOP (a fragment that starts with a non-sync sample) and at keyframes.
        if frame.media is MediaType.VIDEO and (frame.keyframe or frame.dts_ms - origin == 600):
            fragment = muxer.fragment(end_ms=frame.dts_ms)
            if fragment is not None:
                fragments.append(fragment)
    points = [sync_points(f.data, 1000 * i) for i, f in enumerate(fragments)]
    # The first fragment starts at the first keyframe: both tracks have a point at sample 1.
    assert [(p.track_id, p.trun_number, p.sample_number) for p in points[0]] == [
        (1, 1, 1),
        (2, 1, 1),
    ]
    assert points[0][0].time == 0 + round(
        next(f.cts_ms for f in frames if f.keyframe and f.media is MediaType.VIDEO) * 90
    )
    # The fragment from 600 ms to the next keyframe has no video sync sample.
    assert [p.track_id for p in points[1]] == [2]
    assert points[1][0].moof_offset == 1000
    with pytest.raises(MP4Error):
        sync_points(b"\x00\x00\x00\x08mdat", 0)


def test_mfra_layout() -> None:
    points = [
        RandomAccessPoint(
            track_id=1, time=90000, moof_offset=5000, traf_number=1, trun_number=1, sample_number=3
        ),
        RandomAccessPoint(
            track_id=2, time=300, moof_offset=1 << 33, traf_number=2, trun_number=1, sample_number=1
        ),
    ]
    data = mfra_box(points, [1, 2, 3])
    (mfra,) = list(boxes(data))
    assert mfra.kind == "mfra" and mfra.size == len(data)
    inner = list(boxes(data, mfra.payload, mfra.end))
    assert [b.kind for b in inner] == ["tfra", "tfra", "tfra", "mfro"]
    # mfro (§8.8.11): the last 4 bytes give the mfra size, so a reader finds it from the end.
    assert struct.unpack(">I", data[-4:])[0] == len(data)
    tfra = inner[0]
    version_flags, track_id, lengths, count = struct.unpack_from(">IIII", data, tfra.payload)
    assert (version_flags >> 24, track_id, lengths, count) == (1, 1, 0, 1)
    time, offset = struct.unpack_from(">QQ", data, tfra.payload + 16)
    assert (time, offset) == (90000, 5000)
    assert data[tfra.payload + 32 : tfra.payload + 35] == b"\x01\x01\x03"
    # A track without points is listed with none.
    assert struct.unpack_from(">IIII", data, inner[2].payload)[1:] == (3, 0, 0)


def test_players_read_a_file_ending_with_mfra(clip_paths: dict[str, Path], tmp_path: Path) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    origin = next(f.dts_ms for f in frames if f.keyframe and f.media is MediaType.VIDEO)
    muxer = FMP4Muxer(configs, origin_ms=origin)
    out = bytearray()
    points: list[RandomAccessPoint] = []
    for frame in frames:
        muxer.add(frame)
        if not out and muxer.ready:
            out += muxer.init_segment()
        if out and frame.keyframe and frame.media is MediaType.VIDEO:
            fragment = muxer.fragment(end_ms=frame.dts_ms)
            if fragment is not None:
                points += sync_points(fragment.data, len(out))
                out += fragment.data
    last = muxer.fragment(final=True)
    assert last is not None
    points += sync_points(last.data, len(out))
    out += last.data
    out += mfra_box(points, [1, 2])
    path = tmp_path / "indexed.mp4"
    path.write_bytes(out)
    for ffmpeg in (debian("ffmpeg"), FFMPEG9):
        result = subprocess.run(
            [ffmpeg, "-v", "error", "-ss", "1.2", "-i", str(path), "-f", "null", "-"],
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 0 and not result.stderr, result.stderr
