"""Shared by the VOD and recording playback tests: small files to play, made once per
module (FFmpeg 9 writes the FLV; FFmpeg 9 remuxes it to a progressive MP4; our muxer
writes it as the recorder would, fragmented)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg

from aiortmp.media.fmp4 import FMP4Muxer
from aiortmp.media.samples import MediaType
from tests.media.fmp4_helpers import load_flv

FFMPEG9 = imageio_ffmpeg.get_ffmpeg_exe()
FPS = 25


def make_flv(path: Path, seconds: float, *, gop: int = FPS, size: str = "160x120") -> Path:
    """H.264 (no B-frames, a keyframe every ``gop`` frames) + AAC 44.1 kHz, as FLV."""
    subprocess.run(
        [FFMPEG9, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}"]
        + ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds)]
        + ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"]
        + ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-c:a", "aac"]
        + [str(path)],
        check=True,
        timeout=60,
    )
    return path


def remux_mp4(flv: Path, path: Path) -> Path:
    """FFmpeg 9's progressive MP4 of ``flv`` (moov at the end, edit lists)."""
    subprocess.run(
        [FFMPEG9, "-v", "error", "-y", "-i", str(flv), "-c", "copy", str(path)],
        check=True,
        timeout=60,
    )
    return path


def fragmented_mp4(flv: Path, path: Path) -> Path:
    """``flv`` as our recorder writes MP4: fragments at keyframes and every second."""
    configs, frames = load_flv(flv)
    origin = next(f.dts_ms for f in frames if f.keyframe and f.media is MediaType.VIDEO)
    muxer = FMP4Muxer(configs, origin_ms=origin)
    out = bytearray()
    for frame in frames:
        muxer.add(frame)
        if not out and muxer.ready:
            out += muxer.init_segment()
        if not out:
            continue
        fragment = None
        if frame.keyframe and frame.media is MediaType.VIDEO:
            fragment = muxer.fragment(end_ms=frame.dts_ms)
        elif muxer.pending_duration_ms >= 1000:
            fragment = muxer.fragment()
        if fragment is not None:
            out += fragment.data
    last = muxer.fragment(final=True)
    if last is not None:
        out += last.data
    path.write_bytes(bytes(out))
    return path
