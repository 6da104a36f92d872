"""MP4 recording of FFmpeg-published streams (issue: recordings people can use).

- ``record_segment_s = 10``: FFmpeg publishes 26 s as fast as it encodes (no ``-re``:
  the recorder cuts on media time, so the clock does not matter), a keyframe every 3 s;
  each file reads in ffprobe with the duration between its keyframe cuts (12, 12, 2 s),
  and together they are the published duration; one ``record_done`` per file.
- ``kill -9`` of the server mid-file (real time): the file reads in ffprobe to within
  1.5 s of the kill.
- Retention: with ``record_max_total_bytes`` the oldest files go, the file being
  written and other files stay.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.outputs.record import parse_recording_name

from ..conftest import ServerFactory, eventually, url
from .peers import debian_tool, ffmpeg_publish_args, popen, run_server

pytestmark = pytest.mark.interop

PUBLISH_S = 26
GOP_S = 3
FPS = 25


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [debian_tool("ffprobe"), "-v", "error", "-show_format", "-show_streams", "-of", "json"]
        + [str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(out.stdout))


def fast(args: list[str]) -> list[str]:
    """FFmpeg's publish arguments without ``-re``: as fast as it encodes."""
    return [a for a in args if a != "-re"]


async def wait_process(proc: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("process did not finish in time")
        await asyncio.sleep(0.1)


async def test_ten_second_segments_cut_at_keyframes(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = await make_server(record_dir=tmp_path, record_format="mp4", record_segment_s=10)
    done: list[ServerEvent] = []
    server.subscribe(lambda e: done.append(e) if e.kind is EventKind.RECORD_DONE else None)
    publisher = popen(
        fast(ffmpeg_publish_args(url(server, "live/cam"), duration_s=PUBLISH_S, gop=GOP_S * FPS))
    )
    await wait_process(publisher, 60)
    assert publisher.returncode == 0, publisher.communicate()[1][-2000:]
    await eventually(lambda: len(done) == 3, 20)
    files = sorted(tmp_path.glob("live/cam-*.mp4"))
    assert [Path(e.details["path"]) for e in done] == files
    # The first keyframe at or after 10 s of each file: cuts at 12 s and 24 s.
    cuts = [0, 12, 24, PUBLISH_S]
    total = 0.0
    for event, start, end in zip(done, cuts, cuts[1:], strict=False):
        info = probe(Path(event.details["path"]))
        duration = float(info["format"]["duration"])
        assert abs(duration - (end - start)) <= 0.5, (event.details["path"], duration)
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert event.details["duration_ms"] == pytest.approx((end - start) * 1000, abs=500)
        assert event.details["bytes"] == os.path.getsize(event.details["path"])
        total += duration
    assert abs(total - PUBLISH_S) <= 1.0
    # Each name is its file's start: the cuts, 12 s apart.
    starts = [parse_recording_name(p.name)[1] for p in files]  # type: ignore[index]
    assert [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)] == [
        pytest.approx(12, abs=0.01),
        pytest.approx(12, abs=0.01),
    ]
    assert done[0].details["start"] == starts[0].isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


async def test_kill_9_mid_file_leaves_a_file_that_reads_to_the_kill(tmp_path: Path) -> None:
    config = 'record_format = "mp4"\nrecord_segment_s = 60\n'
    with run_server(tmp_path, config=config) as server:
        publisher = popen(ffmpeg_publish_args(server.url("live/cam"), duration_s=20))
        try:
            files = await _appear(server.record_dir, 15)
            started = time.monotonic()
            await asyncio.sleep(3)
            os.kill(server.proc.pid, signal.SIGKILL)
            published_s = time.monotonic() - started
            server.proc.wait(10)
        finally:
            publisher.kill()
            publisher.wait()
    (recording,) = files
    # Fragments go out at each keyframe (2 s) and every second: at most one is lost.
    duration = float(probe(recording)["format"]["duration"])
    assert duration >= published_s - 1.5, (duration, published_s)
    decode = subprocess.run(
        [debian_tool("ffmpeg"), "-v", "error", "-i", str(recording), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decode.returncode == 0


async def _appear(record_dir: Path, timeout_s: float) -> list[Path]:
    return list(await eventually(lambda: list(record_dir.glob("live/cam-*.mp4")), timeout_s))


async def test_retention_deletes_the_oldest_and_nothing_else(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    # Files from before: an old recording and a file that is not one.
    old = folder / "cam-20200101-000000.000.mp4"
    old.write_bytes(bytes(1000))
    stamp = time.time() - 30 * 86400
    os.utime(old, (stamp, stamp))
    notes = folder / "notes.txt"
    notes.write_text("keep me")
    os.utime(notes, (stamp, stamp))
    server = await make_server(
        record_dir=tmp_path,
        record_format="mp4",
        record_segment_s=2,
        record_delete_after="7d",
        record_max_total_bytes=300_000,
    )
    done: list[ServerEvent] = []
    server.subscribe(lambda e: done.append(e) if e.kind is EventKind.RECORD_DONE else None)
    publisher = popen(
        fast(ffmpeg_publish_args(url(server, "live/cam"), duration_s=12, gop=FPS, size="320x240"))
    )
    await wait_process(publisher, 60)
    await eventually(lambda: len(done) >= 6, 20)

    def settled() -> bool:
        return (
            not len(server.recording.active)
            and sum(p.stat().st_size for p in folder.glob("*.mp4")) <= 300_000
        )

    await eventually(settled, 10)
    left = sorted(p.name for p in folder.glob("*.mp4"))
    made = sorted(Path(e.details["path"]).name for e in done)
    # The old file went by age, the oldest new ones by size; the newest stayed.
    assert old.name not in left and notes.exists()
    assert left == made[len(made) - len(left) :] and len(left) >= 1
    assert len(left) < len(made)
