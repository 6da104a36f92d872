"""The cluster with real peers: three ``aiortmp serve`` nodes on loopback, a redis-server of
the test's own, FFmpeg publishing and playing (issue 16, "Done when").

FFmpeg ends its play at ``NetStream.Play.UnpublishNotify``, so the player that must live
through the origin's death is an aiortmp client player (``stop_on_unpublish=False``) in
another process than the nodes: it stays, as the issue asks of players.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

import aiortmp.client as rtmp
from aiortmp.protocol.events import StatusReceived
from aiortmp.server.cluster import pull_query

from .peers import (
    ServerProcess,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    popen,
    run_server,
)
from .redis import RedisProcess, run_redis

pytestmark = pytest.mark.interop

SECRET = "interop-cluster-secret"
TTL_S = 2.0


def node_config(redis_url: str) -> str:
    # node_url is left to its default: rtmp://127.0.0.1:<the --listen port>.
    return f"""
[cluster]
redis = "{redis_url}"
secret = "{SECRET}"
ttl_s = {TTL_S}
idle_timeout_s = 3

[relay]
reconnect_initial_s = 0.2
reconnect_max_s = 1.0
timeout_s = 3
"""


@contextlib.contextmanager
def cluster(tmp: Path, redis: RedisProcess, names: str) -> Iterator[list[ServerProcess]]:
    """One ``aiortmp serve`` per letter of ``names``, each with its HTTP surface."""
    with contextlib.ExitStack() as stack:
        nodes = []
        for name in names:
            workdir = tmp / name
            workdir.mkdir()
            nodes.append(
                stack.enter_context(run_server(workdir, http=True, config=node_config(redis.url)))
            )
        yield nodes


def node_url(node: ServerProcess) -> str:
    return f"rtmp://127.0.0.1:{node.port}"


def api(node: ServerProcess, path: str) -> Any:
    with urllib.request.urlopen(node.http_url(path), timeout=5) as response:
        return json.loads(response.read())


async def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.1)
    return value


async def finish(proc: subprocess.Popen[str], timeout_s: float) -> tuple[int, str]:
    """Wait for ``proc`` without blocking the loop; its exit code and stderr."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            break
        await asyncio.sleep(0.1)
    _, err = proc.communicate()
    return proc.wait(), err


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Every FFmpeg started in the block is killed at its end (ours only)."""
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


class StayingPlayer:
    """An aiortmp player that stays through UnpublishNotify; counts what it gets."""

    def __init__(self, player: rtmp.Player) -> None:
        self.video_frames = 0
        self.codes: list[str] = []
        self.task = asyncio.ensure_future(self._run(player))

    async def _run(self, player: rtmp.Player) -> None:
        async for item in player.events():
            if isinstance(item, rtmp.MediaMessage):
                if item.type_id == 9 and not item.is_sequence_header:
                    self.video_frames += 1
            elif isinstance(item, StatusReceived):
                self.codes.append(item.code)


async def test_origin_edges_failover(tmp_path: Path) -> None:
    """Publish on A, play on B and C, one publisher per name, kill -9 of A, republish on B."""
    with (
        run_redis(tmp_path) as redis,
        cluster(tmp_path, redis, "abc") as (a, b, c),
        processes() as started,
    ):
        started.append(popen(ffmpeg_publish_args(a.url("live/cam"), duration_s=40)))
        expected = {"app": "live", "name": "cam", "origin": node_url(a), "here": None}
        await wait_for(
            lambda: expected in api(c, "api/cluster")["streams"], 15, "C sees the stream on A"
        )

        # FFmpeg plays from B and C: each edge pulls A's stream.
        players = [popen(ffmpeg_play_args(n.url("live/cam"), "-frames:v", "100")) for n in (b, c)]
        started.extend(players)

        # Meanwhile a second publisher of the name, on B, is refused.
        second = popen(ffmpeg_publish_args(b.url("live/cam"), duration_s=5))
        started.append(second)
        code, err = await finish(second, 30)
        assert code != 0, err[-2000:]
        assert "publish cam denied: live/cam is published on another node" in b.log()

        # An internal pull without the right token is refused (and so is one with none
        # but the marker); an ordinary player is not an internal pull.
        expires = int(time.time()) + 60
        for query in (pull_query("not-the-secret", "live", "cam", expires), "cluster_token="):
            bad = popen(ffmpeg_play_args(a.url(f"live/cam?{query}"), "-frames:v", "5"))
            started.append(bad)
            code, err = await finish(bad, 30)
            assert code != 0 and decoded_frames(err) == 0, err[-2000:]
        assert a.log().count("denied: invalid cluster token") == 2

        for player, node in zip(players, (b, c), strict=True):
            code, err = await finish(player, 60)
            assert code == 0 and decoded_frames(err) >= 90, (node.log()[-3000:], err[-2000:])

        status = api(c, "api/cluster")
        assert status["node"] == node_url(c) and status["redis"] == "reachable"
        (stream,) = status["streams"]
        assert stream["origin"] == node_url(a) and (stream["app"], stream["name"]) == (
            "live",
            "cam",
        )
        loads = {n["node"]: n for n in status["nodes"]}
        assert set(loads) == {node_url(n) for n in (a, b, c)}
        assert all(0 <= n["heartbeat_age_s"] < TTL_S for n in loads.values())
        assert loads[node_url(a)]["bitrate_in_bps"] > 0  # the publisher's stream

        # A player on C that stays; then A dies.
        async with rtmp.connect(c.url("live"), timeout=10) as conn:
            staying = StayingPlayer(await conn.play("cam", stop_on_unpublish=False))
            await wait_for(lambda: staying.video_frames >= 25, 15, "C's player gets video")
            a.proc.kill()  # SIGKILL: no unpublish, no release; the claim must expire
            killed = time.monotonic()
            await wait_for(
                lambda: "NetStream.Play.UnpublishNotify" in staying.codes, 10, "C's copy ends"
            )

            # A new publish of the name on B succeeds within ttl_s + 5 s.
            accepted = 0
            while not accepted:
                assert time.monotonic() - killed < TTL_S + 5, "B never took the name over"
                republish = popen(ffmpeg_publish_args(b.url("live/cam"), duration_s=30))
                started.append(republish)
                await asyncio.sleep(1.0)
                if republish.poll() is None and "publish live/cam (live) started" in b.log():
                    accepted = 1
            frames_at_republish = staying.video_frames

            # The player on C gets video again, without a new play.
            await wait_for(
                lambda: staying.video_frames >= frames_at_republish + 25,
                15,
                "C's player gets video from B",
            )
            assert not staying.task.done()
            assert staying.codes.count("NetStream.Play.Start") == 1
            staying.task.cancel()
        stream_on_c = api(c, "api/cluster")["streams"]
        assert [s["origin"] for s in stream_on_c] == [node_url(b)]
        for node in (a, b, c):  # pull tokens are credentials: never logged
            assert "cluster_token=" not in node.log()


async def test_redis_restart_mid_stream(tmp_path: Path) -> None:
    """Redis dies and comes back empty: no player stops, the claim is back within ttl_s."""
    with (
        run_redis(tmp_path) as redis,
        cluster(tmp_path, redis, "ab") as (a, b),
        processes() as started,
    ):
        started.append(popen(ffmpeg_publish_args(a.url("live/cam"), duration_s=30)))
        await wait_for(lambda: api(b, "api/cluster")["streams"], 15, "B sees the stream")
        # 200 frames at 25 fps: 8 s of playing, across the outage.
        players = [popen(ffmpeg_play_args(n.url("live/cam"), "-frames:v", "200")) for n in (a, b)]
        started.extend(players)
        await asyncio.sleep(2.0)

        redis.kill()
        await wait_for(
            lambda: api(a, "api/cluster")["redis"] == "unreachable", 5, "A notices the outage"
        )
        redis.restart()  # empty: --save "" and no AOF
        back = time.monotonic()
        client = aioredis.from_url(redis.url, decode_responses=True)
        try:
            while await client.get("aiortmp:stream:live/cam") != node_url(a):
                assert time.monotonic() - back < TTL_S, "the claim is not back within ttl_s"
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

        for player, node in zip(players, (a, b), strict=True):
            code, err = await finish(player, 60)
            assert code == 0 and decoded_frames(err) >= 200, (node.log()[-3000:], err[-2000:])
        assert a.log().count("unreachable") == 1
        assert "Redis answers again" in a.log()
