"""The benchmark's media: FLV files made once with FFmpeg, and their messages as RTMP chunks.

- :data:`HD`: 1280x720 30 fps H.264 (libx264, CBR 2.5 Mbit/s, a keyframe every 2 s, 2
  B-frames, as OBS streams) with 128 kbit/s stereo AAC: about 2.66 Mbit/s in all;
- :data:`LOW`: 320x180 30 fps H.264 at 200 kbit/s with 32 kbit/s AAC: 232 kbit/s, the bit
  rate of SRS's fan-out benchmarks, where the cost is per message rather than per byte.

Noise is added to the test pattern so the encoder needs its whole bit budget and frame
sizes vary as they do with a camera.

The publishers do not go through a chunk writer per message: every message is serialized
once as a fmt 0 chunk and fmt 3 continuations (RTMP 1.0 §5.3.1), and only its 3-byte
timestamp field is rewritten when the file loops.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiortmp.media.flv import FLVReader
from aiortmp.protocol import amf0
from aiortmp.protocol.chunk import serialize_message
from aiortmp.protocol.messages import ChunkStreamId, Message, MessageType

__all__ = [
    "CACHE_DIR",
    "HD",
    "LOW",
    "MEDIA_NAME",
    "MediaMessage",
    "Media",
    "MediaSpec",
    "ensure_media",
    "ffmpeg_exe",
    "load_media",
    "with_timestamp",
]

CACHE_DIR = Path(__file__).resolve().parent / "cache"
CHUNK_SIZE = 4096

#: The largest timestamp a fmt 0 header carries without an Extended Timestamp
#: (RTMP 1.0 §5.3.1.3): 4.6 hours, far beyond any benchmark run.
_MAX_PLAIN_TIMESTAMP = 0xFFFFFE


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaSpec:
    """What FFmpeg makes: a test pattern with noise, CBR H.264 and AAC, as an FLV.

    Attributes:
        width: picture width in pixels.
        height: picture height in pixels.
        fps: frames per second.
        video_kbps: the H.264 bit rate (CBR, kbit/s).
        audio_kbps: the AAC bit rate (kbit/s).
        audio_channels: 1 or 2.
        duration_s: the file's length; publishers loop it.
        noise: the ``noise`` filter strength (keeps the encoder at its whole budget).
    """

    width: int
    height: int
    fps: int
    video_kbps: int
    audio_kbps: int
    audio_channels: int
    duration_s: int = 60
    noise: int = 12

    @property
    def name(self) -> str:
        """The file name under ``bench/cache``."""
        return (
            f"bench-{self.height}p{self.fps}-{self.video_kbps}k-aac{self.audio_kbps}k-"
            f"{self.duration_s}s.flv"
        )

    @property
    def total_kbps(self) -> int:
        """Video + audio, kbit/s."""
        return self.video_kbps + self.audio_kbps

    def describe(self) -> str:
        """One line for the report's method section."""
        return (
            f"{self.width}x{self.height} {self.fps} fps libx264 CBR {self.video_kbps} kbit/s, "
            f"keyframe every 2 s, 2 B-frames, AAC {self.audio_kbps} kbit/s "
            f"{'stereo' if self.audio_channels == 2 else 'mono'}"
        )


#: The 2.66 Mbit/s stream: 720p30 at 2.5 Mbit/s + 128 kbit/s AAC, as OBS streams.
HD = MediaSpec(width=1280, height=720, fps=30, video_kbps=2500, audio_kbps=128, audio_channels=2)
#: The 232 kbit/s stream of the message-bound fan-out (SRS's benchmark bit rate): 30 fps, so
#: as many messages per second as HD for a tenth of the bytes.
LOW = MediaSpec(width=320, height=180, fps=30, video_kbps=200, audio_kbps=32, audio_channels=2)
MEDIA_NAME = HD.name


def ffmpeg_exe() -> str:
    """The FFmpeg 9 binary shipped with ``imageio-ffmpeg`` (Debian's 5.1 as a fallback)."""
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise RuntimeError("no FFmpeg: install imageio-ffmpeg or Debian's ffmpeg") from None
        return exe


def ensure_media(path: Path | None = None, spec: MediaSpec = HD) -> Path:
    """Make a benchmark FLV unless it exists already (it is kept under ``bench/cache``).

    Args:
        path: where; default ``bench/cache/<spec.name>``.
        spec: what to encode.

    Returns:
        The path of the FLV file.

    Raises:
        subprocess.CalledProcessError: FFmpeg failed.
    """
    path = path or CACHE_DIR / spec.name
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.flv")
    keyint = 2 * spec.fps
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps},noise=alls={spec.noise}:allf=t",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        str(spec.duration_s),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        f"{spec.video_kbps}k",
        "-maxrate",
        f"{spec.video_kbps}k",
        "-bufsize",
        f"{spec.video_kbps}k",
        "-x264-params",
        "nal-hrd=cbr:force-cfr=1",
        "-g",
        str(keyint),
        "-keyint_min",
        str(keyint),
        "-sc_threshold",
        "0",
        "-bf",
        "2",
        "-c:a",
        "aac",
        "-b:a",
        f"{spec.audio_kbps}k",
        "-ac",
        str(spec.audio_channels),
        "-f",
        "flv",
        str(tmp),
    ]
    print(f"bench: generating {path.name} with FFmpeg (once)...", file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)
    tmp.rename(path)
    return path


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaMessage:
    """One message of the file, ready to send.

    Attributes:
        type_id: 8 audio, 9 video, 18 data (``@setDataFrame onMetaData``).
        timestamp_ms: the FLV timestamp (DTS) in ms.
        payload_bytes: the message body size in bytes.
        wire: the message as chunks (fmt 0 + fmt 3, chunk size 4096) on message stream 1.
        is_frame: a coded frame (AVC NALU or AAC raw), not a sequence header or metadata.
        is_header: metadata or a sequence header: sent once, not on every loop.
    """

    type_id: int
    timestamp_ms: int
    payload_bytes: int
    wire: bytes
    is_frame: bool
    is_header: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Media:
    """The whole file as messages.

    Attributes:
        messages: in file order.
        period_ms: how much the timestamps advance each time the file loops.
        payload_bps: the average payload bit rate, in bits per second.
    """

    messages: tuple[MediaMessage, ...]
    period_ms: int
    payload_bps: float


def _csid(type_id: int) -> int:
    if type_id == MessageType.AUDIO:
        return ChunkStreamId.AUDIO
    if type_id == MessageType.VIDEO:
        return ChunkStreamId.VIDEO
    return ChunkStreamId.DATA


def load_media(path: Path, *, message_stream_id: int = 1) -> Media:
    """Read the FLV and serialize each tag once as an RTMP message.

    Args:
        path: the FLV file.
        message_stream_id: the NetStream msid the publisher got from ``createStream``.

    Returns:
        The messages, with the loop period and average payload bit rate.
    """
    out: list[MediaMessage] = []
    with path.open("rb") as fh:
        for tag in FLVReader(fh):
            payload = tag.payload
            if tag.tag_type == MessageType.DATA_AMF0:
                # Encoders send @setDataFrame onMetaData; servers strip the prefix.
                payload = amf0.encode("@setDataFrame") + payload
                is_frame, is_header = False, True
            elif tag.tag_type == MessageType.VIDEO:
                # Legacy AVC: byte 1 is AVCPacketType (0 sequence header, 1 NALU).
                is_frame = len(payload) > 1 and payload[1] == 1
                is_header = len(payload) > 1 and payload[1] == 0
            elif tag.tag_type == MessageType.AUDIO:
                # AAC: byte 1 is AACPacketType (0 AudioSpecificConfig, 1 raw).
                is_frame = len(payload) > 1 and payload[1] == 1
                is_header = len(payload) > 1 and payload[1] == 0
            else:
                continue
            wire = serialize_message(
                Message(
                    type_id=tag.tag_type,
                    timestamp_ms=tag.timestamp_ms,
                    message_stream_id=message_stream_id,
                    payload=payload,
                    chunk_stream_id=_csid(tag.tag_type),
                ),
                CHUNK_SIZE,
            )
            out.append(
                MediaMessage(
                    type_id=tag.tag_type,
                    timestamp_ms=tag.timestamp_ms,
                    payload_bytes=len(payload),
                    wire=wire,
                    is_frame=is_frame,
                    is_header=is_header,
                )
            )
    video_ts = [m.timestamp_ms for m in out if m.type_id == MessageType.VIDEO and m.is_frame]
    frame_ms = round((video_ts[-1] - video_ts[0]) / max(1, len(video_ts) - 1))
    period_ms = max(m.timestamp_ms for m in out) + frame_ms
    total = sum(m.payload_bytes for m in out if not m.is_header)
    return Media(messages=tuple(out), period_ms=period_ms, payload_bps=total * 8000 / period_ms)


def with_timestamp(wire: bytes, timestamp_ms: int) -> bytes:
    """``wire`` (a fmt 0 chunk with a one-byte basic header) with a new timestamp.

    RTMP 1.0 §5.3.1.2.1: the fmt 0 message header starts with the 3-byte absolute
    timestamp; fmt 3 continuations carry none below 0xFFFFFF.
    """
    if timestamp_ms > _MAX_PLAIN_TIMESTAMP:
        raise ValueError("benchmark timestamps stay below 0xFFFFFF ms")
    return wire[:1] + timestamp_ms.to_bytes(3, "big") + wire[4:]
