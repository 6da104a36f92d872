"""The cluster (server/cluster.py): in-process nodes on loopback around a real redis-server.

Every test starts its own ``redis-server`` on a free port (tests/interop/redis.py) and
nodes with ``ttl_s = 2``; the media are the synthetic tag bodies of tests/server/media.py,
whose frame index is readable. The FFmpeg version of the whole story (three ``aiortmp
serve`` processes, ``kill -9``) is tests/interop/test_cluster.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

import aiortmp.client as rtmp
from aiortmp.errors import ConfigError, RejectedError
from aiortmp.server.access import Request
from aiortmp.server.app import RTMPServer
from aiortmp.server.auth import sign_token
from aiortmp.server.cluster import (
    EXPIRES_PARAM,
    TOKEN_PARAM,
    ClusterService,
    NodeLoad,
    check_pull_token,
    pull_query,
    sign_pull,
)
from aiortmp.server.config import (
    AppAuth,
    AuthConfig,
    AuthRule,
    ClusterConfig,
    HTTPConfig,
    RelayConfig,
    ServerConfig,
    load_config,
)
from aiortmp.server.http import HTTPService

from ..conftest import ServerFactory, eventually, url
from ..interop.redis import RedisProcess, run_redis
from .test_relay import FAST, Collector, send_frames, start_publishing

SECRET = "cluster-test-secret"
TTL_S = 2.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    with run_redis(tmp_path) as server:
        yield server


@pytest.fixture
async def redis_client(redis_server: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


def cluster_config(redis_url: str, **options: Any) -> ClusterConfig:
    options.setdefault("secret", SECRET)
    options.setdefault("ttl_s", TTL_S)
    options.setdefault("idle_timeout_s", 0.5)
    options.setdefault("redis_timeout_s", 0.5)
    return ClusterConfig(redis=redis_url, **options)


NodeFactory = Callable[..., Awaitable[RTMPServer]]


@pytest.fixture
def start_node(redis_server: RedisProcess, make_server: ServerFactory) -> NodeFactory:
    """``await start_node(auth=...)``: a node of the cluster on this test's Redis (stopped
    before Redis is)."""

    async def start(*, auth: AuthConfig | None = None, http: bool = False) -> RTMPServer:
        return await make_server(
            cluster=cluster_config(redis_server.url),
            relay=RelayConfig(**FAST),
            auth=auth or AuthConfig(),
            http=HTTPConfig(listen=["127.0.0.1:0"] if http else []),
        )

    return start


def cluster_of(server: RTMPServer) -> ClusterService:
    assert server.cluster is not None
    return server.cluster


def claim_key(app: str, name: str) -> str:
    return f"aiortmp:stream:{app}/{name}"


def live(server: RTMPServer, app: str, name: str) -> bool:
    stream = server.registry.get(app, name)
    return stream is not None and stream.is_live


# -- tokens ---------------------------------------------------------------------------------


def play_request(query: str, app: str = "live", name: str = "cam") -> Request:
    return Request(
        action="play", app=app, name=name, query=query, remote_host="127.0.0.1", session_id=1
    )


def test_pull_token_is_sign_token_over_a_cluster_app() -> None:
    token = sign_pull(SECRET, "live", "cam", 1_735_689_600)
    assert token == sign_token(SECRET, "aiortmp-cluster/live", "cam", 1_735_689_600)
    # Not a player token for the same secret (auth.py's TokenPolicy).
    assert token != sign_token(SECRET, "live", "cam", 1_735_689_600)
    assert pull_query(SECRET, "live", "cam", 7) == f"{EXPIRES_PARAM}=7&{TOKEN_PARAM}=" + (
        sign_pull(SECRET, "live", "cam", 7)
    )


def test_check_pull_token() -> None:
    now = 1_000_000.0
    good = pull_query(SECRET, "live", "cam", int(now) + 60)
    decision = check_pull_token(SECRET, play_request(good), now)
    assert decision is not None and decision.allowed and decision.final
    # Ordinary players: not an internal pull (the other play rules decide).
    assert check_pull_token(SECRET, play_request(""), now) is None
    assert check_pull_token(SECRET, play_request("key=abc&token=x&expires=1"), now) is None
    refused = {
        "wrong secret": pull_query("another", "live", "cam", int(now) + 60),
        "other name": pull_query(SECRET, "live", "other", int(now) + 60),
        "other app": pull_query(SECRET, "vod", "cam", int(now) + 60),
        "expired": pull_query(SECRET, "live", "cam", int(now) - 1),
        "no token": f"{EXPIRES_PARAM}={int(now) + 60}",
        "no expiry": f"{TOKEN_PARAM}=" + sign_pull(SECRET, "live", "cam", int(now) + 60),
        "bad expiry": f"{EXPIRES_PARAM}=soon&{TOKEN_PARAM}=00",
        "empty": f"{EXPIRES_PARAM}=&{TOKEN_PARAM}=",
        "too many fields": "&".join(f"f{i}=1" for i in range(100)) + f"&{TOKEN_PARAM}=1",
    }
    for what, query in refused.items():
        decision = check_pull_token(SECRET, play_request(query), now)
        assert decision is not None and not decision.allowed, what
        assert "cluster token" in decision.reason or "malformed" in decision.reason, what
        assert SECRET not in decision.reason
    expired = check_pull_token(SECRET, play_request(refused["expired"]), now)
    assert expired is not None and expired.reason == "cluster token expired"


def test_node_load_round_trip() -> None:
    load = NodeLoad(
        node="rtmp://10.0.0.1:1935",
        connections=3,
        players=2,
        streams=1,
        bitrate_in_bps=1000,
        bitrate_out_bps=2000,
        heartbeat_unix_s=12.5,
    )
    assert NodeLoad.from_json(load.to_json()) == load
    for junk in ("", "[]", "{}", '{"node": "x"}', "null"):
        assert NodeLoad.from_json(junk) is None


# -- configuration --------------------------------------------------------------------------


def test_cluster_configuration(tmp_path: Path) -> None:
    path = tmp_path / "aiortmp.toml"
    path.write_text(
        """
[cluster]
redis = "redis://10.0.0.5:6379/0"
node_url = "rtmp://10.0.0.1:1935/"
secret = "s3cret"
ttl_s = 5
"""
    )
    config = load_config(path).cluster
    assert config.redis == "redis://10.0.0.5:6379/0" and config.ttl_s == 5
    assert config.node_url == "rtmp://10.0.0.1:1935"
    assert config.secret is not None and config.secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    assert load_config().cluster.redis is None  # off by default
    bad = {
        "no secret": 'redis = "redis://h:6379"',
        "empty secret": 'redis = "redis://h:6379"\nsecret = ""',
        "not redis": 'redis = "http://h:6379"\nsecret = "s"',
        "node_url with a path": 'redis = "redis://h"\nsecret = "s"\nnode_url = "rtmp://h/live"',
        "node_url not rtmp": 'redis = "redis://h"\nsecret = "s"\nnode_url = "http://h:1935"',
        "ttl too small": 'redis = "redis://h"\nsecret = "s"\nttl_s = 0.1',
    }
    for what, text in bad.items():
        path.write_text(f"[cluster]\n{text}\n")
        with pytest.raises(ConfigError):
            load_config(path)
        assert "s3cret" not in what


async def test_wildcard_listen_needs_node_url(redis_server: RedisProcess) -> None:
    server = RTMPServer(
        ServerConfig(
            listen=["0.0.0.0:0"],
            http={"listen": []},
            cluster=cluster_config(redis_server.url),
        )
    )
    with pytest.raises(ConfigError, match="node_url"):
        await server.start()
    assert server.addresses == []  # stopped again


# -- claims ---------------------------------------------------------------------------------


async def test_a_name_is_published_on_one_node_at_a_time(
    start_node: NodeFactory, redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    a = await start_node()
    b = await start_node()
    node_a, node_b = cluster_of(a).node, cluster_of(b).node
    assert node_a == url(a, "").rstrip("/") and node_a != node_b
    async with rtmp.connect(url(a, "live"), timeout=5) as a_conn:
        publisher = await a_conn.publish("cam")
        assert await redis_client.get(claim_key("live", "cam")) == node_a
        ttl_ms = await redis_client.pttl(claim_key("live", "cam"))
        assert 0 < ttl_ms <= TTL_S * 1000
        async with rtmp.connect(url(b, "live"), timeout=5) as b_conn:
            with pytest.raises(RejectedError) as refused:
                await b_conn.publish("cam")
            assert refused.value.code == "NetStream.Publish.BadName"
            assert "another node" in refused.value.description
            assert node_a not in refused.value.description  # no internal addresses
            # Another name is free; the same name on A itself is refused by A.
            other = await b_conn.publish("other")
            assert await redis_client.get(claim_key("live", "other")) == node_b
            await other.close()
            await eventually(lambda: not live(b, "live", "other"))
        async with rtmp.connect(url(a, "live"), timeout=5) as again_conn:
            with pytest.raises(RejectedError):
                await again_conn.publish("cam")
        # The claim is renewed while the stream is live (ttl_s passes twice).
        await start_publishing(publisher)
        await asyncio.sleep(TTL_S * 1.5)
        assert await redis_client.get(claim_key("live", "cam")) == node_a
        await publisher.close()
        # Released on unpublish (not left to expire).
        deadline = time.monotonic() + 1.0
        while await redis_client.exists(claim_key("live", "cam")):
            assert time.monotonic() < deadline, "the claim was not released"
            await asyncio.sleep(0.02)
    async with rtmp.connect(url(b, "live"), timeout=5) as b_conn:
        await b_conn.publish("cam")
        assert await redis_client.get(claim_key("live", "other")) is None
        assert await redis_client.get(claim_key("live", "cam")) == node_b


async def test_a_claim_for_a_publish_that_never_starts_is_let_go(
    start_node: NodeFactory, redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    a = await start_node()
    cluster = cluster_of(a)
    assert (await cluster.claim("live", "ghost")).allowed
    assert await redis_client.get(claim_key("live", "ghost")) == cluster.node
    deadline = time.monotonic() + TTL_S * 3
    while await redis_client.exists(claim_key("live", "ghost")):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert ("live", "ghost") not in cluster.claims


# -- edges ----------------------------------------------------------------------------------


async def test_an_edge_pulls_once_with_the_gop_and_lets_go_when_idle(
    start_node: NodeFactory, redis_server: RedisProcess
) -> None:
    a = await start_node()
    b = await start_node()
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        await send_frames(publisher, range(15))
        await eventually(lambda: cluster_of(b).directory.get(("live", "cam")))
        async with (
            rtmp.connect(url(b, "live"), timeout=5) as c1,
            rtmp.connect(url(b, "live"), timeout=5) as c2,
        ):
            first = Collector(await c1.play("cam"))
            await eventually(lambda: first.frames[-1:] == [14])
            second = Collector(await c2.play("cam"))
            await eventually(lambda: second.frames[-1:] == [14])
            await send_frames(publisher, range(15, 25))
            await eventually(lambda: first.frames[-1:] == [24] and second.frames[-1:] == [24])
            origin = a.registry.get("live", "cam")
            assert origin is not None and origin.player_count == 1  # one link for two players
            (pull,) = b.relay.pull_status() if b.relay else []
            assert pull["url"].startswith(f"{cluster_of(a).node}/live/cam?{EXPIRES_PARAM}=")
            assert (await cluster_of(b).status())["streams"] == [
                {"app": "live", "name": "cam", "origin": cluster_of(a).node, "here": "pulled"}
            ]
            await first.close()
            await second.close()
        # No players: the edge lets go after idle_timeout_s.
        await eventually(lambda: b.relay is not None and not b.relay.pull_status(), 5)
        await eventually(lambda: origin.player_count == 0)
    assert first.messages[0].metadata == {"width": 1920.0, "height": 1080.0}
    assert first.frames == list(range(10, 25))  # the origin's GOP: an instant start


def http_url(server: RTMPServer, path: str) -> str:
    service = next(c for c in server.components if isinstance(c, HTTPService))
    host, port = service.addresses[0]
    return f"http://{host}:{port}/{path}"


async def test_an_http_flv_viewer_on_an_edge_gets_the_stream_pulled(
    start_node: NodeFactory, redis_server: RedisProcess
) -> None:
    a = await start_node()
    b = await start_node(http=True)
    async with aiohttp.ClientSession() as client:
        # Not live anywhere: 404 at once (nothing to pull).
        started = time.monotonic()
        async with client.get(http_url(b, "live/cam.flv")) as response:
            assert response.status == 404
        assert time.monotonic() - started < 1.0
        async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
            publisher = await pub_conn.publish("cam")
            await start_publishing(publisher)
            await send_frames(publisher, range(12))
            await eventually(lambda: cluster_of(b).directory.get(("live", "cam")))
            async with client.get(http_url(b, "live/cam.flv")) as response:
                assert response.status == 200
                body = b""
                while len(body) < 2 * 500:  # the FLV header, then the GOP (frames 10, 11)
                    chunk = await asyncio.wait_for(response.content.read(65536), 5)
                    assert chunk, f"the response ended after {len(body)} bytes"
                    body += chunk
            assert body[:3] == b"FLV"
            assert (10).to_bytes(4, "big") + bytes(16) in body  # keyframe 10's payload
            # The viewer left: the edge lets go after idle_timeout_s.
            await eventually(lambda: b.relay is not None and not b.relay.pull_status(), 5)


async def test_a_waiting_player_is_served_when_the_stream_starts_on_another_node(
    start_node: NodeFactory, redis_server: RedisProcess
) -> None:
    a = await start_node()
    b = await start_node()
    async with rtmp.connect(url(b, "live"), timeout=5) as play_conn:
        player = Collector(await play_conn.play("later", stop_on_unpublish=False))
        await asyncio.sleep(0.2)
        assert b.relay is not None and b.relay.pull_status() == []
        async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
            publisher = await pub_conn.publish("later")
            await start_publishing(publisher)
            started = time.monotonic()
            frame = 0
            while not player.video:  # pub/sub tells B (test_junk_in_redis_is_ignored)
                await send_frames(publisher, range(frame, frame + 1), pause_s=0.02)
                frame += 1
                assert time.monotonic() - started < 10, "B's player was never served"
            await player.close()
    assert player.frames[0] == 0


async def test_edges_follow_a_republish_on_another_node(
    start_node: NodeFactory, redis_server: RedisProcess
) -> None:
    a = await start_node()
    b = await start_node()
    c = await start_node()
    async with rtmp.connect(url(c, "live"), timeout=5) as play_conn:
        player = Collector(await play_conn.play("cam", stop_on_unpublish=False))
        async with rtmp.connect(url(a, "live"), timeout=5) as a_conn:
            on_a = await a_conn.publish("cam")
            await start_publishing(on_a)
            frame = 0
            while not player.video:
                await send_frames(on_a, range(frame, frame + 1), pause_s=0.02)
                frame += 1
                assert frame < 200
            await on_a.close()
        await eventually(lambda: "NetStream.Play.UnpublishNotify" in player.codes())
        async with rtmp.connect(url(b, "live"), timeout=5) as b_conn:
            on_b = await b_conn.publish("cam")  # free: A released it
            await start_publishing(on_b)
            frame = 1000
            while player.frames[-1] < 1000:
                await send_frames(on_b, range(frame, frame + 1), pause_s=0.02)
                frame += 1
                assert frame < 1200, "the edge did not follow the stream to B"
            # The link to A is closed, not left waiting there, and A does not pull from B
            # to pass it on: B has one player, C's link.
            await eventually(lambda: a.registry.get("live", "cam") is None)
            b_stream = b.registry.get("live", "cam")
            assert b_stream is not None and b_stream.player_count == 1
            assert a.relay is not None and a.relay.pull_status() == []
            # A node pull that reaches A now is sent to ask its directory again.
            async with rtmp.connect(url(a, "live"), timeout=5) as conn:
                query = pull_query(SECRET, "live", "cam", int(time.time()) + 60)
                with pytest.raises(RejectedError) as refused:
                    await conn.play(f"cam?{query}")
                assert "on another node" in refused.value.description
            await player.close()
    assert c.relay is not None
    (pull,) = c.relay.pull_status()
    assert pull["url"].startswith(cluster_of(b).node + "/")


# -- node-to-node pulls and play rules ------------------------------------------------------


PLAY_SECRET = "player-token-secret"


async def test_internal_pulls_need_the_cluster_token_and_skip_the_play_rules(
    start_node: NodeFactory, redis_server: RedisProcess
) -> None:
    rules = AuthConfig(
        apps={"live": AppAuth(play=AuthRule(token_secrets=[PLAY_SECRET], deny=["127.0.0.0/8"]))}
    )
    a = await start_node(auth=rules)
    b = await start_node(auth=rules)
    expires = int(time.time()) + 60
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        await send_frames(publisher, range(12))
        await eventually(lambda: cluster_of(b).directory.get(("live", "cam")))
        refused = {
            "an ordinary player (the play rules)": "cam",
            "a player token": f"cam?expires={expires}&token="
            + sign_token(PLAY_SECRET, "live", "cam", expires),
            "another cluster's secret": "cam?" + pull_query("not-ours", "live", "cam", expires),
            "a token for another name": "cam?" + pull_query(SECRET, "live", "other", expires),
            "an expired token": "cam?" + pull_query(SECRET, "live", "cam", expires - 120),
            "a token without expiry": f"cam?{TOKEN_PARAM}=" + sign_pull(SECRET, "live", "cam", 0),
        }
        for what, name in refused.items():
            async with rtmp.connect(url(a, "live"), timeout=5) as conn:
                with pytest.raises(RejectedError) as denied:
                    await conn.play(name)
                assert denied.value.code == "NetStream.Play.Failed", what
        # The signed pull is let in although 127.0.0.0/8 may not play.
        async with rtmp.connect(url(a, "live"), timeout=5) as conn:
            internal = Collector(
                await conn.play("cam?" + pull_query(SECRET, "live", "cam", expires))
            )
            await eventually(lambda: internal.frames[-1:] == [11])
            await internal.close()
        # The edge asks its own play rules of its players: denied there too.
        async with rtmp.connect(url(b, "live"), timeout=5) as conn:
            with pytest.raises(RejectedError):
                await conn.play(
                    f"cam?expires={expires}&token="
                    + sign_token(PLAY_SECRET, "live", "cam", expires)
                )
        assert b.relay is not None and b.relay.pull_status() == []


async def test_edge_players_pass_the_play_rules_and_the_edge_pulls(
    start_node: NodeFactory, redis_server: RedisProcess
) -> None:
    rules = AuthConfig(apps={"live": AppAuth(play=AuthRule(token_secrets=[PLAY_SECRET]))})
    a = await start_node(auth=rules)
    b = await start_node(auth=rules)
    expires = int(time.time()) + 60
    token = sign_token(PLAY_SECRET, "live", "cam", expires)
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        await send_frames(publisher, range(12))
        await eventually(lambda: cluster_of(b).directory.get(("live", "cam")))
        async with rtmp.connect(url(b, "live"), timeout=5) as conn:
            with pytest.raises(RejectedError):
                await conn.play("cam")
        async with rtmp.connect(url(b, "live"), timeout=5) as conn:
            player = Collector(await conn.play(f"cam?expires={expires}&token={token}"))
            await eventually(lambda: player.frames[-1:] == [11])
            await player.close()
    # After a reload the pull gate is still asked first (auth puts its policies in front).
    b.reload()
    assert b.policies[0].__class__.__name__ == "_PullGate"


# -- Redis failures -------------------------------------------------------------------------


async def test_redis_outage_keeps_local_streams_and_claims_come_back(
    start_node: NodeFactory, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    a = await start_node()
    node = cluster_of(a).node
    async with (
        rtmp.connect(url(a, "live"), timeout=5) as pub_conn,
        rtmp.connect(url(a, "live"), timeout=5) as play_conn,
    ):
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        player = Collector(await play_conn.play("cam"))
        await send_frames(publisher, range(5), pause_s=0.01)
        redis_server.kill()
        await eventually(lambda: not cluster_of(a).reachable, TTL_S * 2)
        # Local publishing and playing go on; a new publish is accepted meanwhile.
        await send_frames(publisher, range(5, 40), pause_s=0.01)
        async with rtmp.connect(url(a, "live"), timeout=5) as other_conn:
            other = await other_conn.publish("during")
            await start_publishing(other)
            redis_server.restart()
            started = time.monotonic()
            client = aioredis.from_url(redis_server.url, decode_responses=True)
            try:
                while (
                    await client.get(claim_key("live", "cam")) != node
                    or await client.get(claim_key("live", "during")) != node
                ):
                    assert time.monotonic() - started < TTL_S, "claims not back within ttl_s"
                    await asyncio.sleep(0.05)
            finally:
                await client.aclose()
        await send_frames(publisher, range(40, 45))
        await eventually(lambda: player.frames[-1:] == [44])
        await player.close()
    assert player.frames == list(range(45))
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # logged once for the outage


async def test_a_conflict_after_an_outage_is_logged_and_the_directory_wins(
    start_node: NodeFactory,
    redis_server: RedisProcess,
    redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = await start_node()
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        # Another node took the name while this one could not renew (simulated).
        await redis_client.set(claim_key("live", "cam"), "rtmp://elsewhere:1935", px=60_000)
        status = await eventually_status(a, lambda s: s["conflicts"])
        assert status["conflicts"] == [
            {"app": "live", "name": "cam", "origin": "rtmp://elsewhere:1935"}
        ]
        assert live(a, "live", "cam")  # the local publisher is not kicked
        assert any("holds its claim" in r.getMessage() for r in caplog.records)
        # The other node lets go: this one takes it back.
        await redis_client.delete(claim_key("live", "cam"))
        await eventually_status(a, lambda s: not s["conflicts"])
        assert await redis_client.get(claim_key("live", "cam")) == cluster_of(a).node


async def eventually_status(server: RTMPServer, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + TTL_S * 3
    while True:
        status = await cluster_of(server).status()
        if check(status):
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


async def test_junk_in_redis_is_ignored(
    start_node: NodeFactory, redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    b = await start_node()
    await asyncio.sleep(0.2)  # subscribed
    junk_messages = [
        "",
        "null",
        "[1,2]",
        '{"event": "publish"}',
        '{"event": 1, "app": 2}',
        "\xff",
        # Not node URLs: an edge must never pull from them.
        '{"event": "publish", "app": "live", "name": "x", "node": "http://evil/"}',
        '{"event": "publish", "app": "live", "name": "x", "node": "rtmp://h/app?x"}',
    ]
    for junk in junk_messages:
        await redis_client.publish("aiortmp:events", junk)
    await redis_client.set(claim_key("live", "bogus"), "not a url", px=60_000)
    # The listener is still there: a good message that only pub/sub carries arrives.
    probe = {"event": "publish", "app": "live", "name": "probe", "node": "rtmp://127.0.0.1:9"}
    await redis_client.publish("aiortmp:events", json.dumps(probe))
    await eventually(lambda: ("live", "probe") in cluster_of(b).directory)
    assert ("live", "x") not in cluster_of(b).directory
    await asyncio.sleep(TTL_S / 2)  # a full read of the directory has happened
    assert ("live", "bogus") not in cluster_of(b).directory


async def test_stop_releases_claims_and_the_heartbeat(
    start_node: NodeFactory, redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    a = await start_node()
    node = cluster_of(a).node
    await eventually_status(a, lambda s: [n for n in s["nodes"] if n["node"] == node])
    conn = await rtmp.connect(url(a, "live"), timeout=5)
    await conn.publish("cam")
    assert await redis_client.get(claim_key("live", "cam")) == node
    await a.stop()
    await conn.close()
    assert await redis_client.get(claim_key("live", "cam")) is None
    assert (
        await redis_client.get(f"aiortmp:node:{node.replace(':', '%3A').replace('/', '%2F')}")
        is None
    )
