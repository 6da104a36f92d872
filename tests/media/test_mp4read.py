"""The MP4 reader (src/aiortmp/media/mp4read.py).

Every codec: FFmpeg 9's FLV clips (tests/media/fmp4_helpers.py) are muxed to fragmented
MP4 by our muxer and read back: the same tracks, the same frames, the same FLV tags.
FFmpeg 9's own MP4 files (progressive with edit lists, fragmented) are read and compared
with what Debian's ffprobe lists. Each file is fed whole, one byte at a time, and with
trailing data; cut short; and mangled (only MP4Error may come out).
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path

import pytest

from aiortmp.media.errors import MP4Error
from aiortmp.media.fmp4 import FMP4Muxer
from aiortmp.media.mp4read import (
    MP4Index,
    MP4Track,
    config_tag,
    frame_tag,
    metadata_for,
)
from aiortmp.media.samples import Frame, MediaType, TrackConfig, parse_media
from tests.media.fmp4_helpers import CLIPS, FFMPEG9, clips, debian, load_flv

VIDEO, AUDIO = MediaType.VIDEO, MediaType.AUDIO
FTYP = struct.pack(">I4s", 16, b"ftyp") + bytes(8)


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return clips(tmp_path_factory)


def mux(configs: list[TrackConfig], frames: list[Frame]) -> tuple[bytes, int]:
    """A fragmented MP4 as the recorder writes it (a fragment at each keyframe and every
    second) and the origin (the first video keyframe's dts)."""
    keyframes = [f for f in frames if f.keyframe and f.media is VIDEO]
    origin = keyframes[0].dts_ms if keyframes else frames[0].dts_ms
    muxer = FMP4Muxer(configs, origin_ms=origin)
    out = bytearray()
    for frame in frames:
        muxer.add(frame)
        if not out and muxer.ready:
            out += muxer.init_segment()
        if not out:
            continue
        if frame.keyframe and frame.media is VIDEO:
            fragment = muxer.fragment(end_ms=frame.dts_ms)
        elif muxer.pending_duration_ms >= 1000:
            fragment = muxer.fragment()
        else:
            fragment = None
        if fragment is not None:
            out += fragment.data
    last = muxer.fragment(final=True)
    assert last is not None
    out += last.data
    return bytes(out), origin


def index(data: bytes, *, step: int | None = None, trailing: bytes = b"") -> MP4Index:
    """Feed ``data`` as a caller reading a file would: from ``position``, ``step`` bytes
    at a time (None: everything from there on, plus ``trailing``)."""
    result = MP4Index(file_size=len(data))
    while not result.done:
        position = result.position
        if position >= len(data):
            result.feed_eof()
            break
        chunk = data[position:] + trailing if step is None else data[position : position + step]
        result.feed(chunk)
    return result


def read_frames(result: MP4Index, data: bytes) -> list[Frame]:
    tracks = result.tracks
    return [
        sample.frame(
            tracks[sample.track_index], data[sample.offset : sample.offset + sample.size_bytes]
        )
        for sample in result.samples
    ]


@pytest.mark.parametrize("name", [*CLIPS, "multitrack"])
def test_every_codec_reads_back_as_it_was_muxed(clip_paths: dict[str, Path], name: str) -> None:
    configs, frames = load_flv(clip_paths[name])
    data, origin = mux(configs, frames)
    result = index(data)
    # The tracks, in the form an E-RTMP publisher sends them.
    assert [t.config for t in result.tracks] == configs
    read = read_frames(result, data)
    expected = [f for f in frames if f.dts_ms >= origin]
    for media in (VIDEO, AUDIO):
        for track_id in {f.track_id for f in expected if f.media is media}:
            mine = [f for f in read if f.media is media and f.track_id == track_id]
            theirs = [f for f in expected if f.media is media and f.track_id == track_id]
            if media is VIDEO:
                theirs = theirs[next(i for i, f in enumerate(theirs) if f.keyframe) :]
            assert len(mine) == len(theirs), (name, media, track_id)
            for a, b in zip(mine, theirs, strict=True):
                # AV1 loses its temporal delimiter OBU in MP4 (AV1-ISOBMFF §2.4).
                data_b = b.data[2:] if b.codec == "av01" and b.data[:2] == b"\x12\x00" else b.data
                assert (a.codec, a.keyframe, a.data) == (b.codec, b.keyframe, data_b)
                # Audio runs on its sample clock: within a ms or two of the FLV stamps.
                assert abs((a.dts_ms + origin) - b.dts_ms) <= 2
                if media is VIDEO:
                    assert a.cts_ms == b.cts_ms
    # Sync samples are the keyframes (and every audio sample).
    assert all(s.sync for s in result.samples if result.tracks[s.track_index].config.media is AUDIO)  # type: ignore[union-attr]


@pytest.mark.parametrize("name", [*CLIPS, "multitrack"])
def test_frames_and_configs_become_flv_tags_that_parse_back(
    clip_paths: dict[str, Path], name: str
) -> None:
    configs, frames = load_flv(clip_paths[name])
    for config in configs:
        type_id, payload = config_tag(config, sample_rate_hz=44100, channels=2)
        if config.codec == ".mp3" and config.track_id == 0:
            assert payload == b""  # legacy MP3 has no sequence header
            continue
        assert parse_media(type_id, 0, payload) == [config]
    for frame in frames[:200]:
        type_id, payload = frame_tag(frame, sample_rate_hz=44100, channels=2)
        assert parse_media(type_id, frame.dts_ms, payload) == [frame]


def test_byte_at_a_time_and_trailing_data_give_the_same_index(
    clip_paths: dict[str, Path],
) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    data, _ = mux(configs, frames)
    whole = index(data)
    expected = [(s.track_index, s.dts_ms, s.offset, s.size_bytes, s.sync) for s in whole.samples]
    for result in (index(data, step=1), index(data, trailing=b"\x00" * 37), index(data, step=7)):
        got = [(s.track_index, s.dts_ms, s.offset, s.size_bytes, s.sync) for s in result.samples]
        assert got == expected
        assert [t.config for t in result.tracks] == [t.config for t in whole.tracks]


def test_a_file_cut_short_keeps_its_whole_samples(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    data, _ = mux(configs, frames)
    whole = index(data)
    for cut in (len(data) // 2, len(data) - 3, len(data) * 3 // 4):
        part = index(data[:cut])
        kept = part.samples
        assert kept and all(s.offset + s.size_bytes <= cut for s in kept)
        # Exactly the samples whose bytes are all there (of the fragments whose moof is).
        complete = [s for s in whole.samples if s.offset + s.size_bytes <= cut]
        assert len(kept) <= len(complete)
        assert [s.offset for s in kept] == [s.offset for s in complete[: len(kept)]]
        assert part.duration_ms <= whole.duration_ms


def ffmpeg_mp4(path: Path, *movflags: str) -> Path:
    subprocess.run(
        [FFMPEG9, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25"]
        + ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2"]
        + ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2"]
        + ["-g", "25", "-c:a", "aac", *movflags, str(path)],
        check=True,
        timeout=60,
    )
    return path


@pytest.fixture(scope="module")
def ffmpeg_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("mp4read")
    return {
        "progressive": ffmpeg_mp4(directory / "progressive.mp4"),
        "faststart": ffmpeg_mp4(directory / "faststart.mp4", "-movflags", "+faststart"),
        "fragmented": ffmpeg_mp4(
            directory / "fragmented.mp4", "-movflags", "+frag_keyframe+empty_moov"
        ),
    }


@pytest.mark.parametrize("kind", ["progressive", "faststart", "fragmented"])
def test_ffmpeg_files_match_what_ffprobe_lists(ffmpeg_files: dict[str, Path], kind: str) -> None:
    path = ffmpeg_files[kind]
    data = path.read_bytes()
    result = index(data)
    probe = subprocess.run(
        [debian("ffprobe"), "-v", "error", "-show_entries"]
        + ["packet=stream_index,pos,size,flags,dts_time,pts_time", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    packets = json.loads(probe.stdout)["packets"]
    mine = sorted((s.offset, s.size_bytes, s.sync) for s in result.samples)
    theirs = sorted((int(p["pos"]), int(p["size"]), "K" in p["flags"]) for p in packets)
    assert mine == theirs
    assert [t.config.codec for t in result.tracks if t.config] == ["avc1", "mp4a"]
    video = result.tracks[0]
    assert (video.width, video.height) == (160, 90)
    # Edit lists applied, then the whole file shifted so nothing is negative: the first
    # video frame (B-frames: presented 2 frames late) and primed AAC keep their offsets.
    by_track = {0: [], 1: []}  # type: dict[int, list[tuple[int, int]]]
    for sample in result.samples:
        by_track[sample.track_index].append((sample.dts_ms, sample.cts_ms))
    first_video_pts = by_track[0][0][0] + by_track[0][0][1]
    first_audio = by_track[1][0][0]
    ffprobe_video = min(float(p["pts_time"]) for p in packets if p["stream_index"] == 0)
    ffprobe_audio = min(float(p["pts_time"]) for p in packets if p["stream_index"] == 1)
    assert abs((first_video_pts - first_audio) / 1000 - (ffprobe_video - ffprobe_audio)) < 0.002
    assert 1900 <= result.duration_ms <= 2200
    # Samples come in decode order across tracks.
    times = [s.dts_ms for s in result.samples]
    assert times == sorted(times)


def test_mangled_files_raise_mp4_error_only(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    data, _ = mux(configs, frames[:120])
    rng = random.Random(13)
    for _ in range(300):
        mangled = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(mangled))
            mangled[at] = rng.randrange(256)
        try:
            result = index(bytes(mangled))
            result.samples  # noqa: B018 - building the sample list may fail too
        except MP4Error:
            pass


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00\x00\x10mdat" + bytes(8), "not an MP4"),
        (b"\x00\x00\x00\x04ftyp", "invalid size"),
        (
            struct.pack(">I4s", 16, b"ftyp") + bytes(8) + struct.pack(">I4s", 8, b"moof"),
            "moof before moov",
        ),
        (FTYP, "no moov"),
    ],
)
def test_errors(data: bytes, message: str) -> None:
    with pytest.raises(MP4Error, match=message):
        index(data).samples  # noqa: B018


def test_the_index_must_be_complete_and_big_boxes_are_refused() -> None:
    incomplete = MP4Index(file_size=100)
    with pytest.raises(MP4Error, match="not complete"):
        incomplete.tracks  # noqa: B018
    big = MP4Index(file_size=1 << 30, max_box_bytes=1024)
    with pytest.raises(MP4Error, match="exceeds"):
        big.feed(struct.pack(">I4s", 4096, b"moov"))


def test_metadata_for_a_file() -> None:
    video = MP4Track(
        track_id=1,
        config=TrackConfig(media=VIDEO, track_id=0, codec="hvc1", record=b""),
        timescale_hz=90000,
        width=640,
        height=360,
    )
    audio = MP4Track(
        track_id=2,
        config=TrackConfig(media=AUDIO, track_id=0, codec="mp4a", record=b""),
        timescale_hz=48000,
        sample_rate_hz=48000,
        channels=1,
    )
    metadata = metadata_for([video, audio], 6040)
    assert metadata == {
        "duration": 6.04,
        "width": 640.0,
        "height": 360.0,
        # E-RTMP v2: the FourCC as a number for enhanced codecs.
        "videocodecid": float(int.from_bytes(b"hvc1", "big")),
        "audiocodecid": 10.0,
        "audiosamplerate": 48000.0,
        "stereo": False,
    }
