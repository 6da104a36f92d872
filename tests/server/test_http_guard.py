"""The control surface is closed by default (guard.py), over real loopback HTTP.

A real RTMPServer with its HTTPService; our RTMP client publishes a stream with a name that
must never reach an untrusted client; aiohttp's client plays the remote client
(``trust_loopback = false``), the token holder and the browser marking a request
cross-site.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import aiortmp.client as rtmp
from aiortmp.outputs.http_flv import FLV_FILE_HEADER
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig
from aiortmp.server.http import HTTPService
from aiortmp.server.http.guard import ACCESS_KEY, Access

from ..conftest import eventually, url
from .media import AVC_SEQUENCE_HEADER, video_frame
from .test_http_api import http_url

SECRET_NAME = "obs-key-7f3a9c"  # in the OBS convention, the stream name is the stream key
ROOM = "studio"
TOKEN = "t0k3n-for-tests"
JSON_BODY = {"room": ROOM, "app": "live", "url": "rtmp://127.0.0.1:1/elsewhere"}


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def publish(server: RTMPServer) -> rtmp.Connection:
    conn = await rtmp.connect(url(server, "live"), timeout=5)
    stream = await conn.publish(SECRET_NAME)
    await stream.send_video(0, AVC_SEQUENCE_HEADER)
    for i in range(3):
        await stream.send_video(i * 40, video_frame(i, 500))
    live = await eventually(lambda: server.registry.get("live", SECRET_NAME))
    assert live.is_live
    return conn


def control_requests(server: RTMPServer, session_id: int) -> list[tuple[str, str]]:
    """(method, path) of every route the application does not mark public."""
    service = next(c for c in server.components if isinstance(c, HTTPService))
    app = service.build_app()
    flags = app.get(ACCESS_KEY, {})
    out = []
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        if flags.get(resource, Access.CONTROL) is Access.PUBLIC:
            continue
        path = (
            resource.canonical.replace("{app}", "live")
            .replace("{name}", SECRET_NAME)
            .replace("{id}", str(session_id))
            .replace("{room}", ROOM)
        )
        if path.startswith("/control/"):
            path += f"?room={ROOM}"
        out.append((route.method, path))
    return out


async def call(
    client: aiohttp.ClientSession, server: RTMPServer, method: str, path: str, **kw: Any
) -> tuple[int, bytes]:
    if method in ("POST", "PUT"):
        kw.setdefault("json", JSON_BODY)
    async with client.request(method, http_url(server, path), **kw) as response:
        return response.status, await response.read()


async def test_without_token_a_remote_client_is_refused_everything_and_sees_no_name(
    make_server, client
) -> None:
    server: RTMPServer = await make_server(
        http=HTTPConfig(listen=["127.0.0.1:0"], trust_loopback=False)
    )
    assert server.channel_keys is not None
    key = server.channel_keys.create(ROOM)
    conn = await publish(server)
    publisher_id = server.registry.get("live", SECRET_NAME).source.session_id
    requests = control_requests(server, publisher_id)
    paths = {path.partition("?")[0] for _, path in requests}
    # The routes the issue names are all among them.
    assert {"/api/streams", "/api/sessions", "/api/keys", "/metrics", "/control/reset"} <= paths
    assert len(requests) >= 17
    for method, path in requests:
        status, body = await call(client, server, method, path)
        assert status == 403, (method, path, status, body)
        assert SECRET_NAME.encode() not in body and key.encode() not in body, (method, path)
    # Nothing changed: the publisher is still live, the room keeps its key, no relay.
    assert server.registry.get("live", SECRET_NAME).source.session_id == publisher_id
    assert server.channel_keys.list() == {ROOM: key}
    assert server.relay is not None and server.relay.status() == []
    # Playback stays public, and the dashboard page holds no names.
    async with client.get(http_url(server, f"/live/{SECRET_NAME}.flv")) as response:
        assert response.status == 200
        assert await response.content.readexactly(13) == FLV_FILE_HEADER
    async with client.get(http_url(server, "/")) as response:
        assert response.status == 200
        assert SECRET_NAME not in await response.text()
    await conn.close()


async def test_with_a_token_everyone_must_present_it(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTPConfig(listen=["127.0.0.1:0"], api_token=TOKEN))
    conn = await publish(server)
    good = {"Authorization": f"Bearer {TOKEN}"}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        for method, path in [("GET", "/api/streams"), ("GET", "/metrics"), ("POST", "/api/keys")]:
            status, body = await call(client, server, method, path, headers=headers)
            assert status == 401 and SECRET_NAME.encode() not in body, (headers, path)
    assert server.channel_keys is not None and server.channel_keys.list() == {}
    status, body = await call(client, server, "GET", "/api/streams", headers=good)
    assert status == 200 and SECRET_NAME.encode() in body
    status, body = await call(client, server, "GET", "/metrics", headers=good)
    assert status == 200 and f'name="{SECRET_NAME}"'.encode() in body
    status, _ = await call(client, server, "POST", "/api/keys", headers=good)
    assert status == 201 and ROOM in server.channel_keys.list()
    status, _ = await call(client, server, "GET", f"/control/get?room={ROOM}", headers=good)
    assert status == 200
    await conn.close()


async def test_defaults_let_loopback_clients_use_the_api_without_a_token(
    make_server, client
) -> None:
    server: RTMPServer = await make_server(http=HTTPConfig(listen=["127.0.0.1:0"]))
    conn = await publish(server)
    status, body = await call(client, server, "GET", "/api/streams")
    assert status == 200 and SECRET_NAME.encode() in body
    status, body = await call(client, server, "GET", "/metrics")
    assert status == 200 and SECRET_NAME.encode() in body
    status, _ = await call(client, server, "POST", "/api/keys")
    assert status == 201
    status, _ = await call(client, server, "DELETE", f"/api/streams/live/{SECRET_NAME}")
    assert status == 200
    await eventually(lambda: server.registry.get("live", SECRET_NAME) is None)
    await conn.close()


async def test_a_proxy_or_a_rebound_host_name_is_not_trusted(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTPConfig(listen=["127.0.0.1:0"]))
    port = http_url(server, "/").split(":")[-1].rstrip("/")
    for headers in (
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
        {"X-Real-IP": "203.0.113.9"},
        {"Host": f"attacker.example:{port}"},  # DNS rebinding: the page's own name
    ):
        status, _ = await call(client, server, "GET", "/api/server", headers=headers)
        assert status == 403, headers
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        status, _ = await call(client, server, "GET", "/api/server", headers={"Host": host})
        assert status == 200, host


async def test_cross_site_and_non_json_requests_never_change_state(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTPConfig(listen=["127.0.0.1:0"]))
    assert server.channel_keys is not None
    key = server.channel_keys.create(ROOM)
    conn = await publish(server)
    own = http_url(server, "/").rstrip("/")
    cross_site: list[dict[str, str]] = [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": own.replace("127.0.0.1", "localhost")},  # another origin, same machine
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # every port of a host is the same site
        {"Referer": "http://evil.example/page.html"},
    ]
    # Trusted (loopback) or holding the token: cross-site marks win either way.
    for headers in cross_site:
        for method, path in [
            ("POST", "/api/keys"),
            ("POST", "/api/relays"),
            ("DELETE", f"/api/streams/live/{SECRET_NAME}"),
            ("DELETE", f"/api/keys/{ROOM}"),
            ("GET", f"/control/reset?room={ROOM}"),
            ("GET", f"/control/delete?room={ROOM}"),
            ("GET", "/control/get?room=fresh"),
            ("GET", "/api/keys"),
        ]:
            status, body = await call(client, server, method, path, headers=headers)
            assert status == 403, (headers, method, path, status)
            assert b"cross-site" in body and key.encode() not in body
    # A body that is not JSON (what an HTML form or a no-preflight fetch can send).
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        async with client.post(
            http_url(server, "/api/keys"),
            data=f'{{"room": "{ROOM}"}}',
            headers={"Content-Type": content_type},
        ) as response:
            assert response.status == 415, content_type
    async with client.delete(
        http_url(server, f"/api/keys/{ROOM}"), data="x", headers={"Content-Type": "text/plain"}
    ) as response:
        assert response.status == 415
    assert server.channel_keys.list() == {ROOM: key}
    assert server.relay is not None and server.relay.status() == []
    assert server.registry.get("live", SECRET_NAME).is_live
    # Our own pages (same origin) and programs that send no marks get through.
    same_origin = {"Origin": own, "Sec-Fetch-Site": "same-origin", "Referer": own + "/"}
    status, _ = await call(client, server, "POST", "/api/keys", headers=same_origin)
    assert status == 201 and server.channel_keys.list()[ROOM] != key
    status, body = await call(client, server, "GET", f"/control/reset?room={ROOM}")
    assert status == 200 and server.channel_keys.list()[ROOM] in body.decode()
    await conn.close()


async def test_a_token_set_by_sighup_applies_to_the_next_request(
    make_server, client, tmp_path: Path
) -> None:
    server: RTMPServer = await make_server(http=HTTPConfig(listen=["127.0.0.1:0"]))
    assert (await call(client, server, "GET", "/api/server"))[0] == 200
    config = tmp_path / "aiortmp.toml"
    config.write_text(f'[http]\nlisten = ["127.0.0.1:0"]\napi_token = "{TOKEN}"\n')
    server.config_path = config
    server.reload()
    assert (await call(client, server, "GET", "/api/server"))[0] == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert (await call(client, server, "GET", "/api/server", headers=headers))[0] == 200
