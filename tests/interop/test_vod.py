"""VOD over RTMP with real players: FFmpeg 9, Debian's FFmpeg 5.1 and rtmpdump play FLV and
MP4 files from a [[vod]] application, from the keyframe at or before the requested start
(rtmpdump ``-A``), the whole file without one (issue: recordings people can use)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aiortmp.media.flv import FLVReader
from aiortmp.server.config import VodConfig
from aiortmp.sources.file import load_media_file

from ..conftest import ServerFactory, url
from ..vod_media import fragmented_mp4, make_flv, remux_mp4
from .peers import FFMPEG9, debian_tool

pytestmark = pytest.mark.interop

SECONDS = 6


@pytest.fixture(scope="module")
def vod_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vod")
    flv = make_flv(root / "clip.flv", SECONDS)
    remux_mp4(flv, root / "clip.mp4")
    fragmented_mp4(flv, root / "rec.mp4")
    return root


def video_tags(path: Path) -> list[tuple[int, bytes]]:
    """(timestamp, payload) of the coded video frames of an FLV file."""
    with path.open("rb") as file:
        return [
            (t.timestamp_ms, t.payload)
            for t in FLVReader(file)
            if t.tag_type == 9 and t.payload[1:2] == b"\x01"
        ]


def probe_packets(path: Path) -> int:
    out = subprocess.run(
        [debian_tool("ffprobe"), "-v", "error", "-count_packets", "-select_streams", "v"]
        + ["-show_entries", "stream=nb_read_packets", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return int(json.loads(out.stdout)["streams"][0]["nb_read_packets"])


async def run(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        list(args), process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


@pytest.mark.parametrize(
    ("ffmpeg", "name", "buffer_ms"),
    [
        # FFmpeg's own buffer (3 s): paced in real time, the file takes 3 s to play.
        ("debian", "clip.flv", None),
        # A large buffer: the server sends it all at once (up to max_lead_s).
        ("debian", "clip.mp4", 60_000),
        ("ffmpeg9", "clip.flv", 60_000),
        ("ffmpeg9", "clip.mp4", 60_000),
        ("ffmpeg9", "rec.mp4", 60_000),
    ],
)
async def test_ffmpeg_plays_the_whole_file(
    make_server: ServerFactory,
    vod_dir: Path,
    tmp_path: Path,
    ffmpeg: str,
    name: str,
    buffer_ms: int | None,
) -> None:
    server = await make_server(vod=[VodConfig(app="vod", dir=vod_dir)])
    binary = FFMPEG9 if ffmpeg == "ffmpeg9" else debian_tool("ffmpeg")
    out = tmp_path / "out.flv"
    buffer = ["-rtmp_buffer", str(buffer_ms)] if buffer_ms else []
    result = await run(
        binary,
        "-nostdin",
        "-v",
        "error",
        *buffer,
        "-i",
        url(server, f"vod/{name}"),
        "-c",
        "copy",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # Every frame, decodable: FFmpeg ends on NetStream.Play.Stop.
    assert probe_packets(out) == SECONDS * 25
    decode = await run(debian_tool("ffmpeg"), "-v", "error", "-i", str(out), "-f", "null", "-")
    assert decode.returncode == 0 and not decode.stderr, decode.stderr


@pytest.mark.parametrize("name", ["clip.flv", "clip.mp4"])
async def test_rtmpdump_from_a_start_and_whole(
    make_server: ServerFactory, vod_dir: Path, tmp_path: Path, name: str
) -> None:
    server = await make_server(vod=[VodConfig(app="vod", dir=vod_dir)])
    file = load_media_file(vod_dir / name)
    keyframes = [file.entries[i] for i in file.keyframes]
    expected = [(t, p) for t, _, p in file.read(0, len(file.entries)) if t == 9]
    expected = [p for _, p in expected if p[1:2] == b"\x01"]  # coded frames, file order
    # rtmpdump -A 4: "Start at num seconds into stream". It adds the start to the stream
    # time (FMS counts a started play from 0), so the dump carries the file's times.
    dump = tmp_path / "start.flv"
    result = await run(
        debian_tool("rtmpdump"), "-q", "-r", url(server, f"vod/{name}"), "-A", "4", "-o", str(dump)
    )
    # rtmpdump exits 2 ("may be incomplete") when the last frame is under 99.9 % of the
    # announced duration, which the last frame's own duration makes it for most files.
    assert result.returncode in (0, 2), result.stderr
    tags = video_tags(dump)
    start = max((k for k in keyframes if k.timestamp_ms <= 4000), key=lambda k: k.timestamp_ms)
    first = keyframes.index(start)
    # From the keyframe at or before 4 s (its bytes), to the end of the file.
    before = file.entries[: file.keyframes[first]]
    skipped = sum(1 for e in before if e.type_id == 9 and e.payload is None)
    assert [p for _, p in tags] == expected[skipped:]
    assert tags[0][0] == 4000
    # Without -A: the whole file, at its own times.
    whole = tmp_path / "whole.flv"
    result = await run(
        debian_tool("rtmpdump"), "-q", "-r", url(server, f"vod/{name}"), "-o", str(whole)
    )
    assert result.returncode in (0, 2), result.stderr
    tags = video_tags(whole)
    assert [p for _, p in tags] == expected
    assert tags[0][0] == keyframes[0].timestamp_ms
