"""The asyncio client against FFmpeg 9 and nginx-rtmp (issue 5: client interop).

- Our client publishes an H.264/AAC FLV (made by FFmpeg) in real time; FFmpeg plays it from
  aiortmp and decodes it. FFmpeg as the RTMP *server* (``-listen 1``) also receives it, with
  both handshakes.
- FFmpeg publishes; our client plays from aiortmp and from nginx-rtmp and checks the codecs
  (parsed from the sequence headers) and the timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import aiortmp
import aiortmp.client as rtmp
from aiortmp.hub.info import StreamInfo
from aiortmp.media.flv import FLVReader
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig, ServerConfig

from .nginx import run_nginx
from .peers import (
    FFMPEG9,
    debian_tool,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    free_port,
    input_streams,
)

pytestmark = pytest.mark.interop

CLIP_S = 4


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of H.264 320x240 at 25 fps (keyframe every second) + AAC, as FLV."""
    path = tmp_path_factory.mktemp("clip") / "clip.flv"
    args = ffmpeg_publish_args(str(path), duration_s=CLIP_S, gop=25)
    args.remove("-re")  # as fast as possible: it is a file
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path


@pytest.fixture
async def server() -> AsyncIterator[RTMPServer]:
    server = RTMPServer(ServerConfig(listen=["127.0.0.1:0"], http=HTTPConfig(listen=[])))
    await server.start()
    yield server
    await server.stop()


def server_url(server: RTMPServer, path: str) -> str:
    host, port = server.addresses[0]
    return f"rtmp://{host}:{port}/{path}"


async def send_clip(publisher: rtmp.Publisher, clip: Path, *, realtime: bool) -> int:
    """Send every tag of ``clip``, paced by its timestamps if ``realtime``; returns tags."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    count = 0
    with open(clip, "rb") as fh:
        for tag in FLVReader(fh):
            if realtime:
                await asyncio.sleep(max(0.0, start + tag.timestamp_ms / 1000 - loop.time()))
            await publisher.send_flv_tag(tag.tag_type, tag.timestamp_ms, tag.payload)
            count += 1
    return count


async def run(args: list[str], timeout_s: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


# -- our client publishes ---------------------------------------------------------------------


async def test_client_publishes_and_ffmpeg_plays(server: RTMPServer, clip: Path) -> None:
    url = server_url(server, "live/fromclient")
    async with aiortmp.connect(url, timeout=5) as conn:
        publisher = await conn.publish()
        sender = asyncio.ensure_future(send_clip(publisher, clip, realtime=True))
        await asyncio.sleep(0.5)
        rc, err = await run(ffmpeg_play_args(url, "-frames:v", "60"), 30)
        await sender
        await publisher.close()
    assert rc == 0, err[-3000:]
    streams = input_streams(err)
    assert any("Video: h264" in s and "320x240" in s for s in streams), streams
    assert any("Audio: aac" in s and "44100 Hz" in s for s in streams), streams
    assert decoded_frames(err) >= 60, err[-2000:]


@contextlib.contextmanager
def ffmpeg_listening(port: int, out: Path) -> Iterator[subprocess.Popen[bytes]]:
    """FFmpeg as an RTMP server waiting for one publisher; it copies the stream to ``out``."""
    proc = subprocess.Popen(
        [
            FFMPEG9,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "info",
            "-listen",
            "1",
            "-f",
            "flv",
            "-i",
            f"rtmp://127.0.0.1:{port}/live/in",
            "-c",
            "copy",
            "-f",
            "flv",
            str(out),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.parametrize("digest", [True, False], ids=["digest", "simple"])
async def test_client_publishes_to_ffmpeg_as_server(
    tmp_path: Path, clip: Path, digest: bool
) -> None:
    port = free_port()
    out = tmp_path / "received.flv"
    with ffmpeg_listening(port, out) as ffmpeg:
        conn = None
        for _ in range(100):  # FFmpeg needs a moment to listen
            try:
                conn = await aiortmp.connect(
                    f"rtmp://127.0.0.1:{port}/live", timeout=5, digest_handshake=digest
                )
                break
            except rtmp.ClientError:
                await asyncio.sleep(0.05)
        assert conn is not None, "FFmpeg never listened"
        async with conn:
            publisher = await conn.publish("in")
            sent = await send_clip(publisher, clip, realtime=False)
            await publisher.close()
        assert sent > 100
        _, err = await asyncio.to_thread(ffmpeg.communicate, timeout=30)
    assert ffmpeg.returncode == 0, err.decode(errors="replace")[-3000:]
    probe = subprocess.run(
        [
            debian_tool("ffprobe"),
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    streams = {s["codec_name"]: s for s in json.loads(probe.stdout)["streams"]}
    assert set(streams) == {"h264", "aac"}
    assert (streams["h264"]["width"], streams["h264"]["height"]) == (320, 240)
    assert int(streams["h264"]["nb_read_frames"]) == CLIP_S * 25


# -- FFmpeg publishes, our client plays ----------------------------------------------------------


def steps(values: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(values)]


async def play_and_check(url: str, publish_url: str) -> None:
    publisher = await asyncio.create_subprocess_exec(
        *ffmpeg_publish_args(publish_url, duration_s=5, gop=25),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(1.0)
        messages: list[rtmp.MediaMessage] = []
        async with aiortmp.connect(url, timeout=5) as conn:
            player = await conn.play()

            async def collect() -> None:
                async for message in player:
                    messages.append(message)
                    if sum(m.type_id == 9 for m in messages) >= 60:
                        return

            await asyncio.wait_for(collect(), 15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            publisher.kill()
        await publisher.wait()

    info = StreamInfo()
    for m in messages:
        if m.is_sequence_header:
            (info.on_video_header if m.type_id == 9 else info.on_audio_header)(m.payload)
    video_info, audio_info = info.video[0], info.audio[0]
    assert (video_info.codec, video_info.width, video_info.height) == ("avc1", 320, 240)
    assert video_info.profile == "Constrained Baseline"
    assert (audio_info.codec, audio_info.profile) == ("mp4a", "LC")
    assert (audio_info.sample_rate, audio_info.channels) == (44100, 1)
    (metadata,) = [m.metadata for m in messages if m.metadata is not None]
    assert (metadata["width"], metadata["height"], metadata["framerate"]) == (320, 240, 25)

    video = [m for m in messages if m.type_id == 9 and not m.is_sequence_header]
    audio = [m for m in messages if m.type_id == 8 and not m.is_sequence_header]
    assert video[0].is_keyframe  # both servers start a player at a keyframe
    assert all(m.video is not None for m in video) and all(m.audio is not None for m in audio)
    keyframes = [m.timestamp_ms for m in video if m.is_keyframe]
    assert len(keyframes) >= 2 and set(steps(keyframes)) == {1000}
    # 25 fps: video DTS 40 ms apart; AAC frames of 1024 samples at 44.1 kHz: 23.2 ms.
    video_steps = set(steps([m.timestamp_ms for m in video]))
    audio_steps = set(steps([m.timestamp_ms for m in audio]))
    assert video_steps == {40}, video_steps
    assert audio_steps <= {23, 24}, audio_steps


async def test_ffmpeg_publishes_and_client_plays_from_aiortmp(server: RTMPServer) -> None:
    url = server_url(server, "live/fromffmpeg")
    await play_and_check(url, url)


async def test_ffmpeg_publishes_and_client_plays_from_nginx(tmp_path: Path) -> None:
    with run_nginx(tmp_path) as nginx:
        url = nginx.url("live/fromffmpeg")
        await play_and_check(url, url)


# -- the PyAV example of docs/client.md ------------------------------------------------------------

DOCS = Path(__file__).parents[2] / "docs" / "client.md"


def docs_example(marker: str) -> str:
    """The Python code block that follows ``<!-- example: marker`` in docs/client.md."""
    text = DOCS.read_text()
    after = text[text.index(f"<!-- example: {marker}") :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```", start)]


async def test_docs_pyav_example_decodes_frames(server: RTMPServer) -> None:
    pytest.importorskip("av", reason="the optional extra aiortmp[av] is not installed")
    namespace: dict[str, object] = {}
    exec(compile(docs_example("pyav"), str(DOCS), "exec"), namespace)
    decode_frames = namespace["decode_frames"]
    url = server_url(server, "live/pyav")
    publisher = await asyncio.create_subprocess_exec(
        *ffmpeg_publish_args(url, duration_s=5, gop=25),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(0.5)
        frames = await asyncio.wait_for(decode_frames(url, 30), 20)  # type: ignore[operator]
    finally:
        with contextlib.suppress(ProcessLookupError):
            publisher.kill()
        await publisher.wait()
    assert len(frames) == 30
    assert all(f.shape == (240, 320, 3) and f.dtype.name == "uint8" for f in frames)
    # testsrc2 moves: consecutive frames differ, and they are not blank.
    assert (frames[0] != frames[10]).any() and frames[0].std() > 10
