"""Shared by test_fmp4.py and test_codecs.py: FFmpeg 9 clips, FLV loading, a box walker.

Clips are 2 s of ``testsrc2`` at 160x90/25 fps with a 440 Hz sine, written by FFmpeg 9
(``imageio_ffmpeg``) as FLV: legacy tags for H.264/AAC/MP3, E-RTMP v2 tags for the rest
(FFmpeg 9's flv muxer accepts every codec here, VVC included), E-RTMP multitrack for a
second video and audio stream. Each clip is made once per test session.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from aiortmp.media.flv import FLVReader
from aiortmp.media.samples import CONFIGLESS_CODECS, Frame, TrackConfig, parse_media

FFMPEG9 = imageio_ffmpeg.get_ffmpeg_exe()
SECONDS = 2
WIDTH, HEIGHT = 160, 90

_VIDEO_IN = ["-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate=25:duration={SECONDS}"]
_AUDIO_IN = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
_GOP = ["-g", "25", "-keyint_min", "25"]
_VIDEO = {
    # B-frames give composition offsets; one keyframe a second.
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-sc_threshold", "0", *_GOP],
    "hevc": [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error:keyint=25:min-keyint=25:bframes=2",
    ],
    "av1": ["-c:v", "libaom-av1", "-cpu-used", "8", *_GOP],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", *_GOP],
    "vvc": ["-c:v", "libvvenc", "-preset", "faster", *_GOP],
}
_AUDIO = {
    "aac": ["-c:a", "aac", "-ac", "2", "-ar", "44100"],
    "opus": ["-c:a", "libopus", "-ac", "2", "-ar", "48000"],
    "mp3": ["-c:a", "libmp3lame", "-ac", "2", "-ar", "44100"],
    "ac3": ["-c:a", "ac3", "-ac", "2", "-ar", "48000"],
    "eac3": ["-c:a", "eac3", "-ac", "2", "-ar", "48000"],
    "flac": ["-c:a", "flac", "-ac", "1", "-ar", "48000"],
}


@dataclass(frozen=True)
class Clip:
    """What a clip holds, as ffprobe names it."""

    video: str
    audio: str
    sample_rate_hz: int
    channels: int


CLIPS = {
    "h264_aac": Clip("h264", "aac", 44100, 2),
    "hevc_opus": Clip("hevc", "opus", 48000, 2),
    "av1_aac": Clip("av1", "aac", 44100, 2),
    "vp9_opus": Clip("vp9", "opus", 48000, 2),
    "h264_mp3": Clip("h264", "mp3", 44100, 2),
    "h264_ac3": Clip("h264", "ac3", 48000, 2),
    "h264_eac3": Clip("h264", "eac3", 48000, 2),
    "h264_flac": Clip("h264", "flac", 48000, 1),
    "vvc_aac": Clip("vvc", "aac", 44100, 2),
}


def _clip_command(name: str, path: Path) -> list[str]:
    if name == "multitrack":
        # Two H.264 tracks of different sizes, AAC + Opus: FFmpeg 9 writes track 0 legacy
        # and track 1 as E-RTMP Multitrack/OneTrack.
        return [
            FFMPEG9,
            "-v",
            "error",
            "-y",
            *_VIDEO_IN,
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size=96x54:rate=25:duration={SECONDS}",
            *_AUDIO_IN,
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=880:sample_rate=48000:duration={SECONDS}",
            *("-map", "0", "-map", "1", "-map", "2", "-map", "3"),
            "-pix_fmt",
            "yuv420p",
            *_VIDEO["h264"],
            *("-c:a:0", "aac", "-c:a:1", "libopus", "-ac", "2"),
            str(path),
        ]
    clip = CLIPS[name]
    return [
        FFMPEG9,
        "-v",
        "error",
        "-y",
        *_VIDEO_IN,
        *_AUDIO_IN,
        "-pix_fmt",
        "yuv420p",
        *_VIDEO[clip.video],
        *_AUDIO[clip.audio],
        str(path),
    ]


_made: dict[tuple[Path, str], dict[str, Path]] = {}


def make_files_once(
    tmp_path_factory: pytest.TempPathFactory,
    folder: str,
    names: list[str],
    command: Callable[[str, Path], list[str]],
) -> dict[str, Path]:
    """``{name: <session tmp>/<folder>/<name>.flv}``, each made once per session by the
    FFmpeg ``command(name, path)``, two processes at a time."""
    base = tmp_path_factory.getbasetemp()
    made = _made.get((base, folder))
    if made is not None:
        return made
    directory = base / folder
    directory.mkdir(exist_ok=True)
    paths = {name: directory / f"{name}.flv" for name in names}
    pending = list(paths.items())
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    while pending or running:
        while pending and len(running) < 2:
            name, path = pending.pop(0)
            running.append((name, subprocess.Popen(command(name, path), stderr=subprocess.PIPE)))
        name, process = running.pop(0)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, f"FFmpeg 9 could not make {name}: {stderr!r}"
    _made[base, folder] = paths
    return paths


def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every clip (CLIPS and "multitrack"), made once per session, two encoders at a time."""
    return make_files_once(tmp_path_factory, "fmp4-clips", [*CLIPS, "multitrack"], _clip_command)


def load_flv(path: Path) -> tuple[list[TrackConfig], list[Frame]]:
    """The tracks and frames of an FLV file, as a stream core would hand them over.

    A track's configuration is its first non-empty sequence start (FFmpeg sends an empty
    ``av01`` one first, and a second ``fLaC`` one at the end); AC-3/E-AC-3/MP3 tracks,
    which have none, start with their first frame.
    """
    configs: dict[tuple[object, int], TrackConfig] = {}
    frames: list[Frame] = []
    with path.open("rb") as file:
        for tag in FLVReader(file):
            for unit in parse_media(tag.tag_type, tag.timestamp_ms, tag.payload):
                key = (unit.media, unit.track_id)
                if isinstance(unit, TrackConfig):
                    if unit.record and key not in configs:
                        configs[key] = unit
                    continue
                if key not in configs and unit.codec in CONFIGLESS_CODECS:
                    configs[key] = TrackConfig(
                        media=unit.media, track_id=unit.track_id, codec=unit.codec, record=b""
                    )
                frames.append(unit)
    return list(configs.values()), frames


# ------------------------------------------------------------------------ boxes


@dataclass(frozen=True)
class Box:
    kind: str
    start: int  # offset of the size field in the buffer
    size: int
    header: int  # 8, or 16 with a largesize

    @property
    def payload(self) -> int:
        return self.start + self.header

    @property
    def end(self) -> int:
        return self.start + self.size


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes in ``data[start:end]``, failing the test on a size that does not fit."""
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        assert offset + 8 <= end, f"box header at {offset} overruns its parent"
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        assert size >= header and offset + size <= end, f"{kind!r} size {size} does not fit"
        yield Box(kind.decode("latin-1"), offset, size, header)
        offset += size


def child(data: bytes, parent: Box, kind: str, skip: int = 0) -> Box:
    """The first child box of ``kind`` (``skip`` bytes of the payload come first)."""
    found = [box for box in boxes(data, parent.payload + skip, parent.end) if box.kind == kind]
    assert found, f"no {kind} in {parent.kind}"
    return found[0]


def path(data: bytes, *kinds: str) -> Box:
    """Follow a chain of box types from the top level (``path(d, "moov", "mvex")``)."""
    box = next(box for box in boxes(data) if box.kind == kinds[0])
    for kind in kinds[1:]:
        box = child(data, box, kind)
    return box


# ---------------------------------------------------------------------- ffprobe


def debian(tool: str) -> str:
    """A Debian tool (ffprobe/ffmpeg 5.1); missing is a failure: CI must run these."""
    found = shutil.which(tool, path="/usr/bin")
    if found is None:
        raise RuntimeError(f"/usr/bin/{tool} is missing: run `make sysdeps`")
    return found


def ffprobe(file: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Debian ffprobe's streams (with packets counted) and packets, in one run."""
    output = subprocess.run(
        [debian("ffprobe"), "-v", "error", "-count_packets", "-show_streams"]
        + ["-show_entries", "packet=stream_index,pts_time,duration_time,flags"]
        + ["-of", "json", str(file)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    parsed = json.loads(output)
    return parsed["streams"], parsed.get("packets", [])


def ffprobe_streams(file: Path) -> list[dict[str, Any]]:
    """Debian ffprobe's streams, with packets counted."""
    return ffprobe(file)[0]


def decode_errors(ffmpeg: str, file: Path) -> str:
    """What ``ffmpeg -v error -i file -f null -`` prints (nothing for a clean file)."""
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(file), "-map", "0", "-f", "null", "-"],
        capture_output=True,
        timeout=60,
    )
    return result.stderr.decode(errors="replace") + ("" if result.returncode == 0 else "rc!=0")


@dataclass
class FFmpeg9Stream:
    """One stream as FFmpeg 9's framecrc muxer describes it."""

    codec_id: str = ""
    dimensions: str = ""
    sample_rate: str = ""
    timebase: int = 0
    packets: list[tuple[int, int]] | None = None  # (pts, duration) in 1/timebase s


def ffmpeg9_streams(file: Path) -> dict[int, FFmpeg9Stream]:
    """FFmpeg 9's view of a file (there is no ffprobe 9 here): ``-c copy -f framecrc``."""
    output = subprocess.run(
        [FFMPEG9, "-nostdin", "-v", "error", "-i", str(file), "-map", "0", "-c", "copy"]
        + ["-f", "framecrc", "-"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    streams: dict[int, FFmpeg9Stream] = {}
    for line in output.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            name, _, index = key.partition(" ")
            if not index.strip().isdigit():
                continue
            stream = streams.setdefault(int(index), FFmpeg9Stream(packets=[]))
            value = value.strip()
            if name == "tb":
                stream.timebase = int(value.split("/")[1])
            elif name in ("codec_id", "dimensions", "sample_rate"):
                setattr(stream, name, value)
        elif line:
            fields = [field.strip() for field in line.split(",")]
            packets = streams[int(fields[0])].packets
            assert packets is not None
            packets.append((int(fields[2]), int(fields[3])))
    return streams
