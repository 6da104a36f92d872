"""Access control (src/aiortmp/server/auth.py) against an in-process server and our client.

Each method is checked for publish and play separately, per app: static keys and a keys
file, signed tokens, the HTTP callback (an aiohttp server in the test), livego channel
keys, IP allow/deny lists; then the status codes of rejections, that nothing secret is
logged, that a reload swaps the rules without dropping streams, and that decisions that
arrive after the client closed its stream change nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import aiortmp.client as rtmp
from aiortmp.protocol.session import ClientSession
from aiortmp.server.access import Request
from aiortmp.server.app import RTMPServer
from aiortmp.server.auth import AuthService, ChannelKeyStore, IPPolicy, sign_token
from aiortmp.server.config import (
    AppAuth,
    AuthConfig,
    AuthRule,
    ConfigError,
    load_config,
)

from ..conftest import url
from .media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame

ServerFactory = Callable[..., Awaitable[RTMPServer]]

KEY = "K3Y-alpha-7731"
OTHER_KEY = "K3Y-beta-4410"
SECRET = "t0k3n-s3cret-9931"


def auth(**apps: AppAuth) -> AuthConfig:
    return AuthConfig(apps=apps)


def auth_service(server: RTMPServer) -> AuthService:
    found = [c for c in server.components if isinstance(c, AuthService)]
    assert found, "AuthService is not registered in build_components"
    return found[0]


async def publisher_of(
    server: RTMPServer, path: str, frames: int = 5
) -> tuple[rtmp.Connection, rtmp.Publisher]:
    """Connect and publish ``path`` (``app/name?query``); the caller closes the connection."""
    app, _, name = path.partition("/")
    conn = await rtmp.connect(url(server, app), timeout=5)
    try:
        publisher = await conn.publish(name)
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
        for i in range(frames):
            await publisher.send_video(i * 40, video_frame(i, 200))
            await publisher.send_audio(i * 40, audio_frame())
    except BaseException:
        await conn.close()
        raise
    return conn, publisher


async def publish(server: RTMPServer, path: str) -> rtmp.Connection:
    return (await publisher_of(server, path))[0]


async def rejected(coro: Awaitable[Any]) -> rtmp.RejectedError:
    with pytest.raises(rtmp.RejectedError) as info:
        await coro
    return info.value


async def publish_rejected(server: RTMPServer, path: str) -> rtmp.RejectedError:
    app, _, name = path.partition("/")
    async with rtmp.connect(url(server, app), timeout=5) as conn:
        return await rejected(conn.publish(name))


async def play_rejected(server: RTMPServer, path: str) -> rtmp.RejectedError:
    app, _, name = path.partition("/")
    async with rtmp.connect(url(server, app), timeout=5) as conn:
        return await rejected(conn.play(name))


async def plays(server: RTMPServer, path: str) -> bool:
    app, _, name = path.partition("/")
    async with rtmp.connect(url(server, app), timeout=5) as conn:
        player = await conn.play(name)
        return player.started


# -- tokens and the channel key store ------------------------------------------------------


def test_sign_token_is_what_openssl_computes() -> None:
    openssl = shutil.which("openssl")
    assert openssl is not None
    message = "live/cam:1735689600"
    out = subprocess.run(
        [openssl, "dgst", "-sha256", "-hmac", SECRET],
        input=message.encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert out.strip().endswith(sign_token(SECRET, "live", "cam", 1735689600))


def test_channel_key_store_creates_revokes_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys.json"
    store = ChannelKeyStore(path)
    store.load()  # a missing file is an empty store
    key = store.create("studio")
    assert len(key) >= 32 and "/" not in key and "?" not in key
    assert store.room_for_key(key) == "studio"
    assert store.list() == {"studio": key}
    # A new key replaces (revokes) the old one.
    again = store.create("studio")
    assert again != key and store.room_for_key(key) is None
    assert store.room_for_key(again) == "studio"
    store.create("lobby")
    assert json.loads(path.read_text()) == store.list()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reread = ChannelKeyStore(path)
    reread.load()
    assert reread.list() == store.list()
    assert store.revoke("lobby") and not store.revoke("lobby")
    assert "lobby" not in json.loads(path.read_text())
    with pytest.raises(ValueError):
        store.create("")


def test_channel_key_store_refuses_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="room -> key"):
        ChannelKeyStore(path).load()
    path.write_text("{")
    with pytest.raises(ConfigError, match="cannot read"):
        ChannelKeyStore(path).load()


def test_config_checks_networks_and_callbacks_and_hides_secrets(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[auth]\ndeny = ["10.0.0.300"]\n')
    with pytest.raises(ConfigError, match="auth.deny"):
        load_config(bad)
    bad.write_text('[auth.apps.live.publish]\ncallback = "ftp://x/y"\n')
    with pytest.raises(ConfigError, match="callback"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text(f'[auth.apps.live.publish]\nkeys = ["{KEY}"]\ntoken_secrets = ["{SECRET}"]\n')
    config = load_config(good)
    assert KEY not in repr(config) and SECRET not in repr(config)


# -- methods, per app and per action --------------------------------------------------------


async def test_static_keys_protect_publish_only_where_configured(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(f"# comment\n{OTHER_KEY}\nbackstage only-backstage-key\n")
    rule = AuthRule(keys=[KEY], stream_keys={"cam2": "cam2-own-key"}, keys_file=keys_file)
    server = await make_server(auth=auth(live=AppAuth(publish=rule)))
    missing = await publish_rejected(server, "live/cam")
    assert missing.code == "NetStream.Publish.BadName"
    assert missing.description == "missing stream key"
    wrong = await publish_rejected(server, "live/cam?key=nope")
    assert wrong.code == "NetStream.Publish.BadName" and wrong.description == "invalid stream key"
    for path in (
        f"live/cam?key={KEY}",
        "live/cam2?key=cam2-own-key",
        f"live/cam3?key={OTHER_KEY}",
        "live/backstage?key=only-backstage-key",
    ):
        conn = await publish(server, path)
        await conn.close()
    # A stream's own key is only good for that stream.
    assert (await publish_rejected(server, "live/cam4?key=cam2-own-key")).code
    assert (await publish_rejected(server, "live/cam4?key=only-backstage-key")).code
    # The keys file is re-read when it changes.
    keys_file.write_text("rotated-key-0001\n")
    await asyncio.sleep(1.1)
    assert (await publish_rejected(server, f"live/cam5?key={OTHER_KEY}")).code
    conn = await publish(server, "live/cam5?key=rotated-key-0001")
    await conn.close()
    # Play and other apps are open.
    conn = await publish(server, f"live/cam?key={KEY}")
    try:
        assert await plays(server, "live/cam")
    finally:
        await conn.close()
    conn = await publish(server, "other/cam")
    await conn.close()
    assert server.stats["auth_denials"] == 5


async def test_signed_tokens_protect_play(make_server: ServerFactory) -> None:
    rule = AuthRule(token_secrets=["old-secret-rotated", SECRET])
    server = await make_server(auth=auth(**{"*": AppAuth(play=rule)}))
    conn = await publish(server, "live/cam")
    try:
        denied = await play_rejected(server, "live/cam")
        assert denied.code == "NetStream.Play.Failed"
        assert denied.description == "missing token"
        expires = int(time.time()) + 60
        token = sign_token(SECRET, "live", "cam", expires)
        assert await plays(server, f"live/cam?expires={expires}&token={token}")
        # Any of the secrets (rotation), upper-case hex too.
        old = sign_token("old-secret-rotated", "live", "cam", expires).upper()
        assert await plays(server, f"live/cam?expires={expires}&token={old}")
        # Bound to the app, the stream name and the expiry.
        other = sign_token(SECRET, "live", "other", expires)
        assert (await play_rejected(server, f"live/cam?expires={expires}&token={other}")).code
        later = expires + 1
        bad = await play_rejected(server, f"live/cam?expires={later}&token={token}")
        assert bad.description == "invalid token"
        past = int(time.time()) - 1
        stale = sign_token(SECRET, "live", "cam", past)
        expired = await play_rejected(server, f"live/cam?expires={past}&token={stale}")
        assert expired.description == "token expired"
        junk = await play_rejected(server, "live/cam?expires=soon&token=abc")
        assert junk.description == "invalid token"
    finally:
        await conn.close()


class Callback:
    """An auth callback server: allows names holding ``ok``, answers ``slow...`` late."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

    async def always_ok(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        if body["name"].startswith("slow"):
            await asyncio.sleep(2)
        if body["name"].startswith("redirect"):
            raise web.HTTPFound("/always-ok")
        if "ok" in body["name"]:
            return web.Response(status=204)
        return web.Response(status=403, text="no")


@pytest.fixture
async def callback() -> AsyncIterator[Callback]:
    cb = Callback()
    app = web.Application()
    app.router.add_post("/on_publish", cb.handle)
    app.router.add_route("*", "/always-ok", cb.always_ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    cb.url = f"http://127.0.0.1:{port}/on_publish"
    yield cb
    await runner.cleanup()


async def test_http_callback_allows_2xx_and_denies_the_rest(
    make_server: ServerFactory, callback: Callback
) -> None:
    rule = AuthRule(callback=callback.url, callback_timeout_s=0.5)
    server = await make_server(auth=auth(live=AppAuth(publish=rule)))
    conn = await publish(server, "live/ok-cam?sig=abc")
    await conn.close()
    body = callback.bodies[-1]
    assert body["action"] == "publish" and body["app"] == "live" and body["name"] == "ok-cam"
    assert body["query"] == "sig=abc" and body["args"] == {"sig": "abc"}
    assert body["remote_addr"] == "127.0.0.1" and isinstance(body["session_id"], int)
    denied = await publish_rejected(server, "live/cam")
    assert denied.code == "NetStream.Publish.BadName"
    assert "403" in denied.description
    slow = await publish_rejected(server, "live/slow-ok")
    assert slow.description == "authorization callback timed out"
    # A redirect (to a URL that would say yes) is not followed.
    redirected = await publish_rejected(server, "live/redirect-ok")
    assert "302" in redirected.description
    # Play is not behind the callback.
    conn = await publish(server, "live/ok-2")
    try:
        assert await plays(server, "live/ok-2")
    finally:
        await conn.close()


async def test_unreachable_callback_denies(make_server: ServerFactory) -> None:
    rule = AuthRule(callback="http://127.0.0.1:9/nothing-listens", callback_timeout_s=2)
    server = await make_server(auth=auth(live=AppAuth(publish=rule)))
    denied = await publish_rejected(server, "live/cam")
    assert denied.description == "authorization callback failed"


async def test_channel_keys_map_a_key_to_its_room(
    make_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keys_path = tmp_path / "channel-keys.json"
    config = AuthConfig(
        apps={"live": AppAuth(publish=AuthRule(channel_keys=True))}, channel_keys_file=keys_path
    )
    server = await make_server(auth=config)
    keys = server.channel_keys  # type: ignore[attr-defined]
    key = keys.create("studio")
    assert json.loads(keys_path.read_text()) == {"studio": key}
    conn = await publish(server, f"live/{key}")
    try:
        stream = server.registry.get("live", "studio")
        assert stream is not None and stream.is_live
        assert server.registry.get("live", key) is None
        async with rtmp.connect(url(server, "live"), timeout=5) as viewer:
            player = await viewer.play("studio")
            first = await asyncio.wait_for(anext(aiter(player)), 5)
            assert first.type_id in (8, 9, 18)
        # Neither the room name nor a wrong key publishes.
        assert (await publish_rejected(server, "live/studio")).description == "unknown channel key"
        assert (await publish_rejected(server, "live/wrong-key-1234")).code == (
            "NetStream.Publish.BadName"
        )
        # Revoking keeps the running stream, refuses the key from now on.
        assert keys.revoke("studio")
        await asyncio.sleep(0.2)
        assert stream.is_live
    finally:
        await conn.close()
    assert (await publish_rejected(server, f"live/{key}")).description == "unknown channel key"
    # The store was read back from the file by a new server.
    keys.create("lobby")
    second = await make_server(auth=config)
    assert second.channel_keys.list() == keys.list()  # type: ignore[attr-defined]
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("aiortmp.client")
    )
    assert key not in logged and "wrong-key-1234" not in logged
    assert "<channel key>" in logged


async def test_ip_lists_at_connect_and_per_rule(make_server: ServerFactory) -> None:
    server = await make_server(auth=AuthConfig(deny=["127.0.0.0/8"]))
    with pytest.raises(rtmp.RejectedError) as info:
        await rtmp.connect(url(server, "live"), timeout=5)
    assert info.value.code == "NetConnection.Connect.Rejected"
    assert info.value.description == "client address not allowed"

    server = await make_server(
        auth=AuthConfig(
            allow=["127.0.0.1", "::1"],
            apps={
                "live": AppAuth(
                    publish=AuthRule(allow=["10.0.0.0/8"]),
                    play=AuthRule(allow=["127.0.0.0/8"], deny=["127.0.0.1/32"]),
                )
            },
        )
    )
    denied = await publish_rejected(server, "live/cam")
    assert denied.description == "client address not allowed"
    assert (await play_rejected(server, "live/cam")).code == "NetStream.Play.Failed"
    conn = await publish(server, "open/cam")  # other apps: only the connect lists apply
    await conn.close()


async def test_ip_lists_match_ipv4_clients_of_dual_stack_listeners(
    make_server: ServerFactory,
) -> None:
    server = await make_server(auth=AuthConfig(deny=["192.0.2.0/24"]))
    policy = IPPolicy(auth_service(server))

    def connect_from(host: str) -> Request:
        return Request(
            action="connect", app="live", name="", query="", remote_host=host, session_id=1
        )

    assert not (await policy.check(connect_from("::ffff:192.0.2.7"))).allowed
    assert not (await policy.check(connect_from("192.0.2.7"))).allowed
    assert (await policy.check(connect_from("::ffff:198.51.100.7"))).allowed
    assert (await policy.check(connect_from("2001:db8::1"))).allowed
    unknown = await policy.check(connect_from("not-an-address"))
    assert not unknown.allowed and unknown.reason == "client address unknown"


async def test_secrets_never_reach_the_log(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rule = AuthRule(keys=[KEY], token_secrets=[SECRET])
    server = await make_server(auth=auth(live=AppAuth(publish=rule, play=rule)))
    expires = int(time.time()) + 60
    token = sign_token(SECRET, "live", "cam", expires)
    query = f"key={KEY}&expires={expires}&token={token}"
    async with rtmp.connect(url(server, f"live?{query}"), timeout=5) as conn:
        await conn.publish(f"cam?{query}")
    await publish_rejected(server, f"live/cam?key={KEY}x")
    wrong = token[:-1] + ("1" if token.endswith("0") else "0")  # a token that differs
    await play_rejected(server, f"live/cam?key={KEY}&expires={expires}&token={wrong}")
    server_lines = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("aiortmp.client")
    )
    assert "denied" in server_lines
    for secret in (KEY, SECRET, token, token[:-1]):
        assert secret not in server_lines


# -- reload -----------------------------------------------------------------------------------


async def test_reload_swaps_rules_and_limits_without_dropping_streams(tmp_path: Path) -> None:
    path = tmp_path / "aiortmp.toml"
    header = 'listen = ["127.0.0.1:0"]\n[http]\nlisten = []\n'
    path.write_text(header + f'[auth.apps.live.publish]\nkeys = ["{KEY}"]\n')
    server = RTMPServer(load_config(path), config_path=path)
    await server.start()
    try:
        conn, publisher = await publisher_of(server, f"live/cam?key={KEY}")
        viewer = await rtmp.connect(url(server, "live"), timeout=5)
        player = await viewer.play("cam")
        path.write_text(
            header
            + "[limits]\nmax_connections_per_ip = 3\n"
            + f'[auth.apps.live.publish]\nkeys = ["{OTHER_KEY}"]\n'
        )
        server.reload()
        # The running publisher and player are untouched.
        for i in range(5, 15):
            await publisher.send_video(i * 40, video_frame(i, 200))

        async def last_frame() -> None:
            async for message in player:
                if message.type_id == 9 and message.payload[5:9] == (14).to_bytes(4, "big"):
                    return

        await asyncio.wait_for(last_frame(), 5)
        assert server.registry.get("live", "cam").is_live  # type: ignore[union-attr]
        # New requests get the new rules.
        assert (await publish_rejected(server, f"live/cam2?key={KEY}")).code
        # ... and the new limits: two connections are open, a third is the last one allowed.
        third = await publish(server, f"live/cam2?key={OTHER_KEY}")
        with pytest.raises(rtmp.ClientError):
            await rtmp.connect(url(server, "live"), timeout=2)
        await third.close()
        await viewer.close()
        await conn.close()
    finally:
        await server.stop()


# -- decisions that come too late ---------------------------------------------------------


async def raw_client(server: RTMPServer) -> tuple[ClientSession, Any, asyncio.StreamWriter]:
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    session = ClientSession()
    session.initiate()

    async def until(predicate: Callable[[Any], bool]) -> None:
        while True:
            data = session.data_to_send()
            if data:
                writer.write(data)
            while (event := session.next_event()) is not None:
                if predicate(event):
                    return
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            assert chunk, "server closed the connection"
            session.receive_data(chunk)

    await until(lambda e: type(e).__name__ == "HandshakeComplete")
    session.connect("live", url(server, "live"))
    await until(lambda e: type(e).__name__ == "CommandResult")
    session.create_stream()
    await until(lambda e: type(e).__name__ == "CommandResult")
    return session, until, writer


@pytest.mark.parametrize("slow_policy", [False, True])
async def test_requests_closed_before_the_decision_change_nothing(
    make_server: ServerFactory,
    callback: Callback,
    caplog: pytest.LogCaptureFixture,
    slow_policy: bool,
) -> None:
    options: dict[str, Any] = {}
    if slow_policy:
        rule = AuthRule(callback=callback.url, callback_timeout_s=5)
        options["auth"] = auth(live=AppAuth(publish=rule, play=rule))
    server = await make_server(**options)
    session, until, writer = await raw_client(server)
    # publish + closeStream, play + deleteStream: each pair in one write, so the server
    # reads the close before it (or its policy) answers the request.
    session.publish(1, "slow-ok-a")
    session.send_command("closeStream", 0.0, None, stream_id=1)
    writer.write(session.data_to_send())
    session.create_stream()
    await until(lambda e: type(e).__name__ == "CommandResult")
    session.play(2, "slow-ok-b")
    session.delete_stream(2)
    writer.write(session.data_to_send())
    await asyncio.sleep(2.5 if slow_policy else 0.3)
    # The connection is alive and the server kept no stream for either request.
    session.create_stream()
    await until(lambda e: type(e).__name__ == "CommandResult")
    assert server.registry.get("live", "slow-ok-a") is None
    assert server.registry.get("live", "slow-ok-b") is None
    assert len(server.connections) == 1
    writer.close()
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage() for r in problems]


async def test_pipelined_connect_create_stream_publish_behind_a_slow_callback(
    make_server: ServerFactory, callback: Callback
) -> None:
    """OBS and FFmpeg send connect, createStream and publish without waiting for answers;
    while the server decides connect and then publish (a 2 s HTTP callback), nothing is
    lost and everything is answered in order."""
    rule = AuthRule(callback=callback.url, callback_timeout_s=5)
    server = await make_server(auth=auth(live=AppAuth(publish=rule)))
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    session = ClientSession()
    session.initiate()
    events: list[Any] = []

    async def until(predicate: Callable[[Any], bool]) -> Any:
        while True:
            if data := session.data_to_send():
                writer.write(data)
            while (event := session.next_event()) is not None:
                events.append(event)
                if predicate(event):
                    return event
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, "server closed the connection"
            session.receive_data(chunk)

    await until(lambda e: type(e).__name__ == "HandshakeComplete")
    session.connect("live", url(server, "live"))
    session.release_stream("slow-ok")
    session.create_stream()
    session.publish(1, "slow-ok")
    writer.write(session.data_to_send())  # one write
    # (onFCPublish answers FCPublish on NetStream 0; publish's onStatus comes on msid 1.)
    status = await until(
        lambda e: getattr(e, "stream_id", 0) == 1 and getattr(e, "code", "").startswith("NetStream")
    )
    assert status.code == "NetStream.Publish.Start"
    results = [e for e in events if type(e).__name__ == "CommandResult"]
    assert results[0].info["code"] == "NetConnection.Connect.Success"
    assert any(r.arguments == (1.0,) for r in results)  # createStream: msid 1
    stream = server.registry.get("live", "slow-ok")
    assert stream is not None and stream.is_live
    writer.close()
