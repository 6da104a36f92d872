"""Recordings over HTTP (src/aiortmp/server/http/recordings.py), in-process: a 6 s clip
is published with our client as fast as it goes and recorded as MP4 in 2 s files; the
listing shows them, the stitched MP4 decodes in FFmpeg, files answer Range requests, and
playback follows the app's play rules while the listing stays a control route."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import aiortmp.client as rtmp
from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.media.flv import FLVReader
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import AppAuth, AuthConfig, AuthRule, HTTPConfig
from aiortmp.server.http.recordings import format_time, parse_time

from ..conftest import ServerFactory, eventually, url
from ..interop.peers import FFMPEG9, debian_tool
from ..vod_media import make_flv
from .test_http_api import http_url

HTTP = HTTPConfig(listen=["127.0.0.1:0"])
SECONDS = 6


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_flv(tmp_path_factory.mktemp("http-rec") / "clip.flv", SECONDS)


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def publish_file(server: RTMPServer, name: str, path: Path) -> None:
    """Publish an FLV file as fast as the server takes it."""
    async with rtmp.connect(url(server, "live"), timeout=10) as conn:
        publisher = await conn.publish(name)
        with path.open("rb") as file:
            for tag in FLVReader(file):
                await publisher.send_flv_tag(tag.tag_type, tag.timestamp_ms, tag.payload)
        await publisher.close()


async def recorded(
    make_server: ServerFactory, tmp_path: Path, clip: Path, **options: Any
) -> RTMPServer:
    server = await make_server(
        http=HTTP, record_dir=tmp_path, record_format="mp4", record_segment_s=2, **options
    )
    done: list[ServerEvent] = []
    server.subscribe(lambda e: done.append(e) if e.kind is EventKind.RECORD_DONE else None)
    await publish_file(server, "cam?key=s3cret", clip)
    await eventually(lambda: len(done) == 3, 20)
    return server


async def get_json(client: aiohttp.ClientSession, address: str) -> tuple[int, Any]:
    async with client.get(address) as response:
        return response.status, await response.json()


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [debian_tool("ffprobe"), "-v", "error", "-count_packets", "-show_format"]
        + ["-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout))


async def test_listing_and_stitched_playback(
    make_server: ServerFactory, tmp_path: Path, clip: Path, client: aiohttp.ClientSession
) -> None:
    server = await recorded(make_server, tmp_path, clip)
    status, listing = await get_json(client, http_url(server, "/api/recordings"))
    assert status == 200
    (stream,) = listing["recordings"]
    assert (stream["app"], stream["name"], stream["files"], stream["recording"]) == (
        "live",
        "cam",
        3,
        False,
    )
    # One span: the files of one publish join.
    (span,) = stream["spans"]
    assert span["duration_s"] == pytest.approx(SECONDS, abs=0.3)
    status, detail = await get_json(client, http_url(server, "/api/recordings/live/cam"))
    assert status == 200 and len(detail["files"]) == 3
    first = detail["files"][0]
    assert [round(f["duration_s"]) for f in detail["files"]] == [2, 2, 2]
    assert first["start"] == span["start"] and first["url"].startswith("/recordings/live/cam/")

    # From 2.5 s for 3 s: from the keyframe at 2 s (the second file) to 5.5 s (the third).
    start = parse_time(first["start"]) + dt.timedelta(seconds=2.5)
    address = http_url(server, "/recordings/live/cam.mp4")
    async with client.get(address, params={"start": format_time(start), "duration": "3"}) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
        body = await r.read()
    out = tmp_path / "stitched.mp4"
    out.write_bytes(body)
    info = probe(out)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert float(info["format"]["duration"]) == pytest.approx(3.5, abs=0.15)
    assert int(video["nb_read_packets"]) == pytest.approx(3.5 * 25, abs=2)
    for ffmpeg in (debian_tool("ffmpeg"), FFMPEG9):
        decode = subprocess.run(
            [ffmpeg, "-v", "error", "-i", str(out), "-f", "null", "-"],
            capture_output=True,
            timeout=60,
        )
        assert decode.returncode == 0 and not decode.stderr, decode.stderr
    # Without a duration: to the end of the recordings.
    async with client.get(address, params={"start": format_time(start)}) as r:
        out.write_bytes(await r.read())
    assert float(probe(out)["format"]["duration"]) == pytest.approx(SECONDS - 2, abs=0.2)
    # Before the recordings: from their first keyframe.
    early = parse_time(first["start"]) - dt.timedelta(hours=1)
    async with client.get(address, params={"start": format_time(early), "duration": "3700"}) as r:
        out.write_bytes(await r.read())
    assert float(probe(out)["format"]["duration"]) == pytest.approx(SECONDS, abs=0.2)


async def test_errors_and_ranges(
    make_server: ServerFactory, tmp_path: Path, clip: Path, client: aiohttp.ClientSession
) -> None:
    server = await recorded(make_server, tmp_path, clip)
    _, detail = await get_json(client, http_url(server, "/api/recordings/live/cam"))
    first = detail["files"][0]
    address = http_url(server, "/recordings/live/cam.mp4")
    after = format_time(parse_time(first["start"]) + dt.timedelta(hours=1))
    cases = [
        ({"start": after}, 404),
        ({"start": "yesterday"}, 400),
        ({}, 400),
        ({"start": first["start"], "duration": "-1"}, 400),
        ({"start": first["start"], "duration": "nan"}, 400),
    ]
    for params, status in cases:
        async with client.get(address, params=params) as response:
            assert response.status == status, params
    async with client.get(
        http_url(server, "/recordings/live/nope.mp4"), params={"start": first["start"]}
    ) as r:
        assert r.status == 404
    status, _ = await get_json(client, http_url(server, "/api/recordings/live/nope"))
    assert status == 404
    # Whole files with Range requests.
    path = tmp_path / "live" / first["file"]
    data = path.read_bytes()
    async with client.get(http_url(server, first["url"]), headers={"Range": "bytes=100-199"}) as r:
        assert r.status == 206 and r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        assert await r.read() == data[100:200]
    async with client.get(http_url(server, first["url"])) as r:
        assert r.status == 200 and await r.read() == data
    for name in ("notes.txt", "..%2Fcam-20240101-000000.000.mp4", "cam-20000101-000000.000.mp4"):
        async with client.get(http_url(server, f"/recordings/live/cam/{name}")) as r:
            assert r.status == 404, name


async def test_playback_follows_the_play_rules_and_listing_is_control(
    make_server: ServerFactory, tmp_path: Path, clip: Path, client: aiohttp.ClientSession
) -> None:
    server = await recorded(
        make_server,
        tmp_path,
        clip,
        auth=AuthConfig(apps={"live": AppAuth(play=AuthRule(keys=["s3cret"]))}),
    )
    _, detail = await get_json(client, http_url(server, "/api/recordings/live/cam"))
    first = detail["files"][0]
    address = http_url(server, "/recordings/live/cam.mp4")
    async with client.get(address, params={"start": first["start"]}) as r:
        assert r.status == 403
    async with client.get(http_url(server, first["url"])) as r:
        assert r.status == 403
    async with client.get(address, params={"start": first["start"], "key": "s3cret"}) as r:
        assert r.status == 200 and len(await r.read()) > 10_000
    async with client.get(http_url(server, first["url"]) + "?key=s3cret") as r:
        assert r.status == 200
    # Playback is public (a page on another site may embed it); the listing is not.
    foreign = {"Origin": "http://elsewhere.example"}
    async with client.get(http_url(server, "/api/recordings"), headers=foreign) as r:
        assert r.status == 403
    async with client.get(
        address, params={"start": first["start"], "key": "s3cret"}, headers=foreign
    ) as r:
        assert r.status == 200
