"""Relays with real peers (issue 5): push to nginx-rtmp and to a second aiortmp, pull on
demand from both, and an nginx destination that goes away and comes back.

`aiortmp serve` runs as a subprocess with a TOML ``[[relay.*]]`` configuration, FFmpeg 9
publishes and plays; the outage test runs the relaying server in-process with our client
as publisher and players so it can check every frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

import aiortmp.client as rtmp
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig, RelayConfig, RelayPush, ServerConfig

from ..server.media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, frame_index, video_frame
from .nginx import run_nginx
from .peers import (
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    free_port,
    input_streams,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop

RELAY_TIMING = "[relay]\nreconnect_initial_s = 0.2\nreconnect_max_s = 2\n"
#: Decode 60 video frames and exit. Not ``-t``: FFmpeg counts it from the first packet of
#: any stream, and a mirror joined mid-stream has media timestamps starting at ~2 s.
PLAY_60_FRAMES = ("-frames:v", "60")


class Peer(Protocol):
    def url(self, path: str) -> str: ...


@contextlib.contextmanager
def peer(kind: str, tmp: Path) -> Iterator[Peer]:
    """nginx-rtmp or a second `aiortmp serve`, with an application ``live``."""
    tmp.mkdir(parents=True, exist_ok=True)
    if kind == "nginx":
        with run_nginx(tmp) as nginx:
            yield nginx
    else:
        with run_server(tmp) as server:
            yield server


def write_config(tmp: Path, body: str) -> str:
    path = tmp / "relay.toml"
    path.write_text(RELAY_TIMING + body)
    return str(path)


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def check_player(rc: int | None, err: str, min_frames: int) -> None:
    assert rc == 0, err[-3000:]
    streams = input_streams(err)
    assert any("Video: h264" in s for s in streams), streams
    assert any("Audio: aac" in s for s in streams), streams
    assert decoded_frames(err) >= min_frames, err[-2000:]


@pytest.mark.parametrize("destination", ["nginx", "aiortmp"])
def test_push_ffmpeg_plays_the_pushed_stream(tmp_path: Path, destination: str) -> None:
    with peer(destination, tmp_path / "destination") as dest:
        edge_dir = tmp_path / "edge"
        edge_dir.mkdir()
        config = write_config(
            edge_dir, f'[[relay.push]]\napp = "live"\nurl = "{dest.url("live")}"\n'
        )
        with run_server(edge_dir, "--config", config) as edge:
            publisher = popen(ffmpeg_publish_args(edge.url("live/pushed"), duration_s=5.5, gop=25))
            wait_for(lambda: "publishing" in edge.log(), 10, "the push to start")
            time.sleep(1.0)
            player = popen(ffmpeg_play_args(dest.url("live/pushed"), *PLAY_60_FRAMES))
            _, err = player.communicate(timeout=40)
            _, pub_err = publisher.communicate(timeout=40)
            log = edge.log()
    assert publisher.returncode == 0, pub_err[-2000:]
    check_player(player.returncode, err, 60)
    assert f"push live/pushed -> {dest.url('live/pushed')}: publishing" in log


@pytest.mark.parametrize("origin", ["nginx", "aiortmp"])
def test_pull_on_demand_ffmpeg_plays_the_mirror(tmp_path: Path, origin: str) -> None:
    with peer(origin, tmp_path / "origin") as source:
        edge_dir = tmp_path / "edge"
        edge_dir.mkdir()
        config = write_config(
            edge_dir,
            f'[[relay.pull]]\napp = "mirror"\nurl = "{source.url("live")}"\nidle_timeout_s = 1\n',
        )
        with run_server(edge_dir, "--config", config) as edge:
            publisher = popen(ffmpeg_publish_args(source.url("live/src"), duration_s=6, gop=25))
            time.sleep(1.5)
            assert "pull " not in edge.log()  # nothing is pulled before a player asks
            player = popen(ffmpeg_play_args(edge.url("mirror/src"), *PLAY_60_FRAMES))
            _, err = player.communicate(timeout=40)
            # The last player left: the pull stops after idle_timeout_s.
            wait_for(lambda: "no players, stopping" in edge.log(), 6, "the pull to stop")
            _, pub_err = publisher.communicate(timeout=40)
            log = edge.log()
    assert publisher.returncode == 0, pub_err[-2000:]
    check_player(player.returncode, err, 60)
    assert f"pull {source.url('live/src')} -> mirror/src: live" in log


async def test_nginx_destination_goes_away_and_comes_back(tmp_path: Path) -> None:
    """Local players of a pushed stream get every frame while nginx is down; after nginx
    returns, a player on it receives video again, starting at a keyframe."""
    port = free_port()
    nginx_url = f"rtmp://127.0.0.1:{port}/live"
    server = RTMPServer(
        ServerConfig(
            listen=["127.0.0.1:0"],
            http=HTTPConfig(listen=[]),
            relay=RelayConfig(
                push=[RelayPush(app="live", url=nginx_url)],
                reconnect_initial_s=0.1,
                reconnect_max_s=0.5,
            ),
        )
    )
    await server.start()
    host, local_port = server.addresses[0]
    local_url = f"rtmp://{host}:{local_port}/live"
    relay: Any = getattr(server, "relay")  # noqa: B009
    received_local: list[tuple[int, int]] = []
    sent = 0

    async def publish(publisher: rtmp.Publisher) -> None:
        nonlocal sent
        await publisher.send_metadata({"width": 1920.0, "height": 1080.0})
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
        while True:  # 25 fps, a keyframe every second
            await publisher.send_video(sent * 40, video_frame(sent, 2000, 25))
            sent += 1
            await asyncio.sleep(0.04)

    async def collect_local(player: rtmp.Player) -> None:
        async for message in player:
            if message.type_id == 9 and not message.is_sequence_header:
                received_local.append((frame_index(message.payload), message.timestamp_ms))

    async def frames_from_nginx(count: int) -> list[rtmp.MediaMessage]:
        got: list[rtmp.MediaMessage] = []
        async with rtmp.connect(nginx_url, timeout=5) as conn:
            player = await conn.play("cam", stop_on_unpublish=False)
            async for message in player:
                if message.type_id == 9 and not message.is_sequence_header:
                    got.append(message)
                    if len(got) >= count:
                        return got
        return got

    try:
        async with rtmp.connect(local_url, timeout=5) as pub_conn:
            publisher = await pub_conn.publish("cam")
            sender = asyncio.ensure_future(publish(publisher))
            async with rtmp.connect(local_url, timeout=5) as local_conn:
                local = asyncio.ensure_future(collect_local(await local_conn.play("cam")))
                with run_nginx(tmp_path / "first", port=port):
                    before = await asyncio.wait_for(frames_from_nginx(10), 10)
                # nginx is gone: the pusher retries, local players go on.
                await asyncio.sleep(1.5)
                (down,) = relay.status()
                with run_nginx(tmp_path / "second", port=port):
                    after = await asyncio.wait_for(frames_from_nginx(10), 15)
                    (up,) = relay.status()
                sender.cancel()
                await asyncio.sleep(0.2)
                local.cancel()
    finally:
        await server.stop()
    assert down["state"] in ("retrying", "connecting") and down["last_error"]
    assert up["state"] == "publishing" and up["reconnects"] >= 1
    # The local player: every frame sent, in order, timestamps 40 ms apart, no gap.
    indexes = [i for i, _ in received_local]
    assert indexes == list(range(len(indexes))) and len(indexes) >= sent - 2
    assert all(ts == i * 40 for i, ts in received_local)
    # nginx players before and after the outage decode from a keyframe, frames in order.
    for frames in (before, after):
        assert frames[0].is_keyframe
        numbers = [frame_index(m.payload) for m in frames]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert frame_index(after[0].payload) > frame_index(before[-1].payload) + 25
