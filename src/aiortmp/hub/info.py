"""What is known about a live stream's media: codecs, profile/level, size, rates.

Filled from the sequence headers as they arrive (every codec and track, legacy and
E-RTMP v2), from the first keyframe where the configuration record has no picture size
(VP8/VP9), and from the first audio frame for codecs without a record (MP3, AC-3, G.711,
...). Measured frame rate and bitrates are updated once a second by the server.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from aiortmp.media.codec_info import (
    AudioInfo,
    VideoInfo,
    audio_info_from_config,
    video_info_from_config,
    video_info_from_keyframe,
)
from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.tags import (
    AudioPacketType,
    SoundFormat,
    VideoCodecId,
    VideoPacketType,
    parse_audio_tag,
    parse_video_tag,
)

__all__ = ["StreamInfo"]

logger = logging.getLogger("aiortmp.stream")

_LEGACY_VIDEO = {
    VideoCodecId.AVC: "avc1",
    VideoCodecId.SORENSON_H263: "h263",
    VideoCodecId.SCREEN: "screen",
    VideoCodecId.ON2_VP6: "vp6",
    VideoCodecId.ON2_VP6_ALPHA: "vp6a",
    VideoCodecId.SCREEN_V2: "screen2",
}
_LEGACY_AUDIO = {
    SoundFormat.AAC: "mp4a",
    SoundFormat.MP3: ".mp3",
    SoundFormat.MP3_8K: ".mp3",
    SoundFormat.LPCM_PLATFORM_ENDIAN: "lpcm",
    SoundFormat.LPCM_LITTLE_ENDIAN: "lpcm",
    SoundFormat.ADPCM: "adpcm",
    SoundFormat.NELLYMOSER: "nellymoser",
    SoundFormat.NELLYMOSER_8K_MONO: "nellymoser",
    SoundFormat.NELLYMOSER_16K_MONO: "nellymoser",
    SoundFormat.G711_A_LAW: "alaw",
    SoundFormat.G711_MU_LAW: "ulaw",
    SoundFormat.SPEEX: "speex",
}
#: Codecs described by their AudioTagHeader byte (no configuration record).
_FLAG_AUDIO = frozenset({"lpcm", "adpcm", "nellymoser", "alaw", "ulaw", "speex"})
#: Codecs described by their first coded frame.
_FRAME_AUDIO = frozenset({".mp3", "ac-3", "ec-3"})


def _codec_name(codec: object, legacy: dict[Any, str]) -> str:
    return legacy.get(codec, str(codec))


def _video_only(codec: str) -> VideoInfo:
    return VideoInfo(
        codec=codec, profile=None, level=None, width=None, height=None, frame_rate=None
    )


def _audio_only(codec: str) -> AudioInfo:
    return AudioInfo(
        codec=codec, profile=None, sample_rate=None, channels=None, sample_size_bits=None
    )


class StreamInfo:
    """Codec information of one live stream, per track.

    Attributes:
        video: video track id → :class:`VideoInfo`.
        audio: audio track id → :class:`AudioInfo`.
        wants_keyframe: the stream should pass the next keyframe to :meth:`on_keyframe`
            (a VP8/VP9 track has no picture size yet). Checked per keyframe: a bool.
        wants_audio_frame: pass the next audio frame to :meth:`on_audio_frame`.
        frame_rate_measured: video frames per second over the last second.
        video_bitrate_bps / audio_bitrate_bps: measured over the last second.
    """

    def __init__(self) -> None:
        self.video: dict[int, VideoInfo] = {}
        self.audio: dict[int, AudioInfo] = {}
        self.wants_keyframe = False
        self.wants_audio_frame = True
        self.frame_rate_measured: float | None = None
        self.video_bitrate_bps = 0
        self.audio_bitrate_bps = 0
        self._last_counters: tuple[int, int, int] | None = None

    def sample(
        self, video_frames: int, video_bytes: int, audio_bytes: int, interval_s: float
    ) -> None:
        """Update the measured rates from the stream's running counters.

        Args:
            video_frames: video frames received so far.
            video_bytes / audio_bytes: payload bytes received so far.
            interval_s: seconds since the previous sample.
        """
        last = self._last_counters
        self._last_counters = (video_frames, video_bytes, audio_bytes)
        if last is None or interval_s <= 0:
            return
        self.frame_rate_measured = round((video_frames - last[0]) / interval_s, 2)
        self.video_bitrate_bps = int((video_bytes - last[1]) * 8 / interval_s)
        self.audio_bitrate_bps = int((audio_bytes - last[2]) * 8 / interval_s)

    # -- updates (rare: sequence headers, first frames) ---------------------------------

    def on_video_header(self, payload: bytes) -> bool:
        """Parse a video sequence header; return True if the info changed."""
        try:
            tag = parse_video_tag(payload)
        except CodecHeaderError as exc:
            logger.debug("unparsable video sequence header: %s", exc)
            return False
        changed = False
        for track in tag.tracks:
            if track.packet_type not in (
                VideoPacketType.SEQUENCE_START,
                VideoPacketType.MPEG2TS_SEQUENCE_START,
            ):
                continue
            if not track.data:
                continue  # FFmpeg 9 sends an empty av01 SequenceStart before the real one
            fourcc = _codec_name(track.codec, _LEGACY_VIDEO)
            try:
                info = video_info_from_config(fourcc, track.data)
            except CodecHeaderError as exc:
                logger.debug("unparsable %s configuration record: %s", fourcc, exc)
                info = _video_only(fourcc)
            if self.video.get(track.track_id) != info:
                self.video[track.track_id] = info
                changed = True
        self.wants_keyframe = any(
            v.codec in ("vp09", "vp08") and v.width is None for v in self.video.values()
        )
        return changed

    def on_keyframe(self, payload: bytes) -> bool:
        """Fill in VP8/VP9 picture sizes from a keyframe; return True if changed."""
        self.wants_keyframe = False
        try:
            tag = parse_video_tag(payload)
        except CodecHeaderError:
            return False
        changed = False
        for track in tag.tracks:
            info = self.video.get(track.track_id)
            if info is None or info.width is not None or not track.data:
                continue
            try:
                new = video_info_from_keyframe(info, track.data)
            except CodecHeaderError:
                continue
            if new != info:
                self.video[track.track_id] = new
                changed = True
        return changed

    def on_audio_header(self, payload: bytes) -> bool:
        """Parse an audio sequence header; return True if the info changed."""
        try:
            tag = parse_audio_tag(payload)
        except CodecHeaderError as exc:
            logger.debug("unparsable audio sequence header: %s", exc)
            return False
        changed = False
        for track in tag.tracks:
            if track.packet_type != AudioPacketType.SEQUENCE_START or not track.data:
                continue
            fourcc = _codec_name(track.codec, _LEGACY_AUDIO)
            try:
                info = audio_info_from_config(fourcc, track.data)
            except CodecHeaderError as exc:
                logger.debug("unparsable %s audio configuration: %s", fourcc, exc)
                info = _audio_only(fourcc)
            if self.audio.get(track.track_id) != info:
                self.audio[track.track_id] = info
                changed = True
        if self.audio:
            self.wants_audio_frame = False
        return changed

    def on_audio_frame(self, payload: bytes) -> bool:
        """Describe audio codecs that have no sequence header from a coded frame."""
        self.wants_audio_frame = False
        if self.audio or not payload:
            return False
        try:
            tag = parse_audio_tag(payload)
        except CodecHeaderError:
            return False
        changed = False
        for track in tag.tracks:
            fourcc = _codec_name(track.codec, _LEGACY_AUDIO)
            if fourcc in _FLAG_AUDIO:
                record = payload[:1]
            elif fourcc in _FRAME_AUDIO:
                record = track.data
            else:
                continue  # has a sequence header (AAC, Opus, FLAC): wait for it
            try:
                self.audio[track.track_id] = audio_info_from_config(fourcc, record)
            except CodecHeaderError:
                self.audio[track.track_id] = _audio_only(fourcc)
            changed = True
        return changed

    # -- views ----------------------------------------------------------------------------

    def summary(self) -> str:
        """One line for the log: ``video avc1 High 4.1 1280x720 30fps; audio mp4a ...``."""
        parts = []
        for track_id, v in sorted(self.video.items()):
            fields = [v.codec, v.profile, v.level]
            if v.width and v.height:
                fields.append(f"{v.width}x{v.height}")
            if v.frame_rate:
                fields.append(f"{v.frame_rate:g}fps")
            prefix = f"video[{track_id}]" if track_id else "video"
            parts.append(f"{prefix} " + " ".join(str(f) for f in fields if f))
        for track_id, a in sorted(self.audio.items()):
            fields = [a.codec, a.profile]
            if a.sample_rate:
                fields.append(f"{a.sample_rate} Hz")
            if a.channels:
                fields.append(f"{a.channels}ch")
            prefix = f"audio[{track_id}]" if track_id else "audio"
            parts.append(f"{prefix} " + " ".join(str(f) for f in fields if f))
        return "; ".join(parts) or "no codec information yet"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"video": [...], "audio": [...], "frame_rate_measured": ...}``."""
        return {
            "video": [
                {"track_id": tid, **dataclasses.asdict(v)} for tid, v in sorted(self.video.items())
            ],
            "audio": [
                {"track_id": tid, **dataclasses.asdict(a)} for tid, a in sorted(self.audio.items())
            ],
            "frame_rate_measured": self.frame_rate_measured,
            "video_bitrate_bps": self.video_bitrate_bps,
            "audio_bitrate_bps": self.audio_bitrate_bps,
        }
