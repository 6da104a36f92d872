"""Shared by the HLS tests: small FFmpeg 9 clips (FLV), and publishing them with our client.

Clips are made once per test session, next to each other, by FFmpeg 9 (``imageio_ffmpeg``):

- ``h264_aac``: 12 s of ``testsrc2`` 320x240 at 25 fps, a keyframe a second, AAC 44.1 kHz;
- ``h264_aac_24fps``: 3 s at 24 fps (parts of 208 ms);
- ``hevc_opus`` and ``av1_aac``: 3 s, E-RTMP v2 tags;
- ``vp9_flac``, ``h264_mp3``, ``h264_ac3``, ``h264_eac3``: 2 s at 160x90;
- ``multitrack``: 4 s, two H.264 encodes (320x240 and 160x90, same GOP) as E-RTMP
  multitrack video (track 0 legacy, track 1 Multitrack/OneTrack), AAC.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg
import pytest

import aiortmp
from aiortmp.client import Publisher
from aiortmp.media.flv import FLVReader, FLVTag

from ..media.fmp4_helpers import make_files_once

FFMPEG9 = imageio_ffmpeg.get_ffmpeg_exe()

_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-bf", "0"]
_GOP25 = ["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"]


def _sources(seconds: float, size: str = "320x240", rate: int = 25) -> list[str]:
    return [
        *("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"),
    ]


CLIPS: dict[str, list[str]] = {
    "h264_aac": [*_sources(12), *_X264, *_GOP25, "-c:a", "aac", "-b:a", "64k"],
    "h264_aac_24fps": [
        *_sources(3, rate=24),
        *_X264,
        *("-g", "24", "-keyint_min", "24", "-sc_threshold", "0"),
        *("-c:a", "aac", "-b:a", "64k"),
    ],
    "hevc_opus": [
        *_sources(3, size="160x90"),
        *("-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
        *("-x265-params", "log-level=error:keyint=25:min-keyint=25"),
        *("-c:a", "libopus", "-ar", "48000", "-b:a", "48k"),
    ],
    "av1_aac": [
        *_sources(3, size="160x90"),
        *("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p", *_GOP25),
        *("-c:a", "aac", "-b:a", "64k"),
    ],
    "vp9_flac": [
        *_sources(2, size="160x90"),
        *("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", *_GOP25),
        *("-c:a", "flac", "-ar", "48000"),
    ],
    "h264_mp3": [*_sources(2, size="160x90"), *_X264, *_GOP25, "-c:a", "libmp3lame"],
    "h264_ac3": [*_sources(2, size="160x90"), *_X264, *_GOP25, "-c:a", "ac3", "-ar", "48000"],
    "h264_eac3": [*_sources(2, size="160x90"), *_X264, *_GOP25, "-c:a", "eac3", "-ar", "48000"],
    "multitrack": [
        *_sources(4),
        *("-f", "lavfi", "-i", "testsrc=size=160x90:rate=25:duration=4"),
        *("-map", "0:v", "-map", "2:v", "-map", "1:a"),
        *_X264,
        *_GOP25,
        *("-c:a", "aac", "-b:a", "64k"),
    ],
}


def make_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every clip, made once per session (two FFmpeg processes at a time)."""
    return make_files_once(
        tmp_path_factory,
        "hls-clips",
        list(CLIPS),
        lambda name, path: [FFMPEG9, "-v", "error", "-y", *CLIPS[name], "-f", "flv", str(path)],
    )


def read_tags(path: Path) -> list[FLVTag]:
    """Every tag of an FLV file."""
    with path.open("rb") as file:
        return list(FLVReader(file))


async def send_tags(
    publisher: Publisher,
    tags: list[FLVTag],
    *,
    realtime: bool = False,
    until_ms: int | None = None,
    on_tag: Callable[[FLVTag], None] | None = None,
) -> int:
    """Send tags (paced by their timestamps with ``realtime``); stop before the first
    tag past ``until_ms``. Returns how many were sent."""
    start = time.monotonic()
    sent = 0
    for tag in tags:
        if until_ms is not None and tag.timestamp_ms > until_ms:
            break
        if realtime:
            delay = tag.timestamp_ms / 1000 - (time.monotonic() - start)
            if delay > 0:
                await publisher.drain()
                await asyncio.sleep(delay)
        publisher.write(tag.tag_type, tag.timestamp_ms, tag.payload)
        if on_tag is not None:
            on_tag(tag)
        sent += 1
    await publisher.drain()
    return sent


async def publish_file(url: str, path: Path, *, realtime: bool = False) -> None:
    """Publish an FLV file to ``rtmp://.../app/name`` and unpublish."""
    async with aiortmp.connect(url.rsplit("/", 1)[0]) as conn:
        publisher = await conn.publish(url.rsplit("/", 1)[1])
        await send_tags(publisher, read_tags(path), realtime=realtime)
        await publisher.close()
