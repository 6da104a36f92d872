"""Files as sources (src/aiortmp/sources/file.py): the index of FLV and MP4 files, and a
FileSource feeding a stream in real time (start, duration, pause, seek, the end)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiortmp.hub.packet import PacketKind
from aiortmp.hub.stream import Stream, StreamSettings
from aiortmp.sources.file import FileSource, MediaFile, load_media_file
from tests.hub.fakes import FakeOutput
from tests.vod_media import fragmented_mp4, make_flv, remux_mp4

SECONDS = 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("vod")
    flv = make_flv(directory / "clip.flv", SECONDS)
    return {
        "flv": flv,
        "mp4": remux_mp4(flv, directory / "clip.mp4"),
        "fmp4": fragmented_mp4(flv, directory / "rec.mp4"),
    }


@pytest.mark.parametrize("kind", ["flv", "mp4", "fmp4"])
def test_the_index_of_each_kind_of_file(files: dict[str, Path], kind: str) -> None:
    media = load_media_file(files[kind])
    assert media.format == ("flv" if kind == "flv" else "mp4")
    # A keyframe every second, the seek targets (FFmpeg may start video a frame late).
    first = media.entries[media.keyframes[0]].timestamp_ms
    assert first < 50
    assert [media.entries[i].timestamp_ms for i in media.keyframes] == [
        first + 1000 * k for k in range(SECONDS)
    ]
    assert media.duration_ms == pytest.approx(SECONDS * 1000, abs=120)
    videos = [e for e in media.entries if e.type_id == 9 and e.payload is None]
    assert len(videos) == SECONDS * 25
    assert media.metadata["duration"] == pytest.approx(SECONDS, abs=0.12)
    # The keyframe at or before a position; before the first: the first; past the end:
    # the last.
    assert media.entries[media.start_index(2500)].timestamp_ms == first + 2000
    assert media.entries[media.start_index(first + 2000)].timestamp_ms == first + 2000
    assert media.entries[media.start_index(first + 1999)].timestamp_ms == first + 1000
    assert media.entries[media.start_index(-5)].timestamp_ms == first
    assert media.entries[media.start_index(10**9)].timestamp_ms == first + 3000


def test_flv_and_mp4_give_the_same_tags(files: dict[str, Path]) -> None:
    flv, mp4, fmp4 = (load_media_file(files[k]) for k in ("flv", "mp4", "fmp4"))
    # The same sequence headers: legacy AVC and AAC, byte for byte.
    assert flv.configs(0) == mp4.configs(0) == fmp4.configs(0)
    assert [t for t, _ in flv.configs(0)] == [9, 8]

    def video(media: MediaFile) -> list[tuple[int, bytes]]:
        first = media.keyframes[0]
        return [(t, p) for t, _, p in media.read(first, len(media.entries)) if t == 9]

    assert video(flv) == video(mp4) == video(fmp4)
    assert {p for _, p in video(fmp4)[:1]} == {video(flv)[0][1]}
    # The MP4s' track list is what muxers want.
    assert [c.codec for c in mp4.track_configs()] == ["avc1", "mp4a"]
    assert flv.track_configs() == mp4.track_configs()


def test_a_cut_flv_keeps_its_whole_tags(files: dict[str, Path], tmp_path: Path) -> None:
    data = files["flv"].read_bytes()
    cut = tmp_path / "cut.flv"
    cut.write_bytes(data[: len(data) // 2])
    media = load_media_file(cut)
    assert 0 < len(media.entries) < len(load_media_file(files["flv"]).entries)
    last = media.entries[-1]
    assert last.offset + last.size_bytes <= len(data) // 2
    (tmp_path / "junk.mp4").write_bytes(b"not a media file at all")
    with pytest.raises(Exception, match="neither an FLV nor an MP4"):
        load_media_file(tmp_path / "junk.mp4")


class Host:
    """The player side of a FileSource: a buffer length, no backlog, completions."""

    def __init__(self, buffer_ms: int | None = 500) -> None:
        self.buffer_ms = buffer_ms
        self.completed = 0
        self.closed = False
        self.done = asyncio.Event()

    def buffer_length_ms(self) -> int | None:
        return self.buffer_ms

    def backlog_bytes(self) -> int:
        return 0

    def complete(self, source: FileSource) -> None:
        self.completed += 1
        self.done.set()


def playing(path: Path, host: Host, **options: object) -> tuple[FileSource, FakeOutput]:
    stream = Stream(
        "vod",
        path.name,
        scheduler=asyncio.get_running_loop(),
        settings=StreamSettings(gop_cache=False, normalize_timestamps=False),
    )
    output = FakeOutput()
    stream.subscribe(output)
    source = FileSource(stream, load_media_file(path), host, session_id=1, **options)  # type: ignore[arg-type]
    source.start()
    return source, output


def media(output: FakeOutput) -> list[tuple[int, int, PacketKind]]:
    return [
        (p.type_id, p.timestamp_ms, p.kind)
        for p in output.packets
        if p.kind in (PacketKind.KEYFRAME, PacketKind.VIDEO, PacketKind.AUDIO)
        and p.payload[:1] != b"\x57"  # the timeline primer (a command frame)
    ]


async def test_paced_with_the_client_buffer_as_lead_then_complete(files: dict[str, Path]) -> None:
    kind = "fmp4"
    host = Host(buffer_ms=500)
    loop = asyncio.get_running_loop()
    started = loop.time()
    source, output = playing(files[kind], host)
    await asyncio.sleep(1.0)
    sent = max(ts for _, ts, _ in media(output))
    # One second in: about 1.5 s of media sent (the lead), never much more.
    assert 1200 <= sent <= 1500 + 400, sent
    assert loop.time() - started < 1.5
    # A client with a large buffer gets the rest at once (up to max_lead_ms ahead).
    host.buffer_ms = 60_000
    await asyncio.wait_for(host.done.wait(), 10)
    assert loop.time() - started < 2.5
    assert host.completed == 1 and source.ended
    played = media(output)
    # File timestamps (a play from the start), metadata and configs first.
    keyframe = next(p for p in played if p[2] is PacketKind.KEYFRAME)
    assert played[0] == keyframe and keyframe[1] < 50
    kinds = [p.kind for p in output.packets if p.payload[:1] != b"\x57"]
    assert kinds[:3] == [PacketKind.DATA, PacketKind.VIDEO_CONFIG, PacketKind.AUDIO_CONFIG]
    assert len([p for p in played if p[0] == 9]) == SECONDS * 25
    host.closed = True
    await asyncio.sleep(0.4)
    assert output.live[-1] is False  # the source detached once its player left


async def test_start_duration_pause_and_seek(files: dict[str, Path]) -> None:
    host = Host(buffer_ms=200)
    file = load_media_file(files["flv"])
    first = file.entries[file.keyframes[0]].timestamp_ms  # FFmpeg may start video late
    source, output = playing(files["flv"], host, start_ms=1500.0, duration_ms=2000.0)
    # A play with a start counts from its keyframe (1 s in the file).
    assert source.origin_ms == first + 1000 and source.position_ms == first + 1000
    await asyncio.sleep(0.5)
    source.pause()
    await asyncio.sleep(0.1)  # what was being read is dropped
    paused_at = len(output.packets)
    await asyncio.sleep(0.6)
    assert len(output.packets) == paused_at  # nothing while paused
    last_before = max(ts for _, ts, _ in media(output))
    source.resume()
    await asyncio.sleep(0.3)
    after = [ts for _, ts, _ in media(output)[len(media(output)) - 3 :]]
    assert min(after) > last_before - 100  # gapless: on from the next entry
    # Seek to 2.6 s: the keyframe at 2 s, counted from the play's origin (1 s).
    position = source.seek(2600.0)
    assert position == first + 2000
    await asyncio.wait_for(host.done.wait(), 10)
    seeked = [p for p in media(output) if p[2] is PacketKind.KEYFRAME]
    assert (9, 1000, PacketKind.KEYFRAME) in seeked
    # After a seek the play runs to the end of the file (3.x s in, 2.x s after origin).
    assert max(ts for _, ts, _ in media(output)) <= SECONDS * 1000 - 1000
    # After the end, a seek plays again (a large buffer: all at once).
    host.buffer_ms = 60_000
    host.done.clear()
    assert source.seek(0) == first
    assert source.origin_ms == first  # never negative: a seek before the origin moves it
    await asyncio.wait_for(host.done.wait(), 10)
    assert host.completed == 2
    source.stop("test")
