"""Worker processes (server/workers.py, server/worker.py, sources/link.py, http/aggregate.py).

In memory: the supervisor's channel and directory, the merge of worker snapshots. Then one
``aiortmp serve --workers 2`` for the module, driven by our client: ownership across
workers, links (a play on a worker that does not own the stream), players that wait for a
publisher on another worker, republishing elsewhere, the API and metrics of the whole
server on any worker, API actions routed to the worker that has the object.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aiortmp.client as rtmp
from aiortmp.errors import ConfigError
from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.events import StatusReceived
from aiortmp.server.config import ServerConfig, load_config
from aiortmp.server.http.aggregate import merge_metrics, merge_server, merge_streams
from aiortmp.server.workers import Channel, Supervisor, worker_count

from .media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame
from .workers_peer import WorkersProcess, connect_on, run_workers

# -- in memory --------------------------------------------------------------------------------


def test_worker_count_and_the_config_setting() -> None:
    assert worker_count(None) is None
    assert worker_count(3) == 3
    auto = worker_count("auto")
    assert auto is not None and auto >= 1
    assert load_config(workers="auto").workers == "auto"
    assert load_config(workers="4").workers == 4
    assert ServerConfig().workers is None
    for bad in (0, -1, 2000, "many", True):
        with pytest.raises(ConfigError, match="workers"):
            load_config(workers=bad)


async def test_channel_requests_answers_and_notifications() -> None:
    a_sock, b_sock = socket.socketpair()
    seen: list[dict[str, Any]] = []

    async def slow(message: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"twice": message["n"] * 2}

    def handle(message: dict[str, Any]) -> Any:
        seen.append(message)
        if message["op"] == "never":
            return asyncio.sleep(30)
        return slow(message) if message["op"] == "double" else None

    a = await Channel.over(a_sock)
    b = await Channel.over(b_sock, handle)
    runners = [asyncio.ensure_future(a.run()), asyncio.ensure_future(b.run())]
    a.send({"op": "hello", "text": "x" * 200_000})  # longer than asyncio's default line
    answers = await asyncio.gather(*(a.request({"op": "double", "n": n}, 5) for n in range(5)))
    assert [answer["twice"] for answer in answers] == [0, 2, 4, 6, 8]
    assert seen[0]["op"] == "hello" and len(seen[0]["text"]) == 200_000
    # Unknown requests get an empty answer; one that is never answered fails when the
    # channel closes.
    assert await a.request({"op": "unknown"}, 5) == {"op": "answer", "id": 6}
    pending = asyncio.ensure_future(a.request({"op": "never"}, 5))
    await asyncio.sleep(0.05)
    b.close()
    with pytest.raises(ConnectionError):
        await pending
    await asyncio.wait(runners, timeout=2)
    assert a.closed


class _FakeChannel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


class _FakeWorker:
    def __init__(self, number: int, generation: int, state: str = "ready") -> None:
        self.number, self.generation, self.state = number, generation, state
        self.channel = _FakeChannel()


def test_the_directory_gives_a_name_one_owner_and_hands_it_to_a_newer_generation() -> None:
    supervisor = Supervisor(ServerConfig(workers=2))
    try:
        w1, w2, w3 = _FakeWorker(1, 1), _FakeWorker(2, 1), _FakeWorker(3, 2)
        supervisor.workers = {1: w1, 2: w2, 3: w3}  # type: ignore[dict-item]
        claim = supervisor._claim  # the directory's one rule, without processes
        assert claim(w1, "live", "cam") == {"ok": True, "handover": False}  # type: ignore[arg-type]
        assert claim(w1, "live", "cam")["ok"]  # type: ignore[arg-type]  # idempotent
        assert claim(w2, "live", "cam") == {"ok": False, "owner": 1}  # type: ignore[arg-type]
        # A newer generation takes a name over only from a draining owner.
        assert not claim(w3, "live", "cam")["ok"]  # type: ignore[arg-type]
        w1.state = "draining"
        assert claim(w3, "live", "cam") == {"ok": True, "handover": True}  # type: ignore[arg-type]
        assert supervisor.owners == {("live", "cam"): 3}
        broadcast = [m for m in w2.channel.sent if m["op"] == "claimed"]
        assert [(m["worker"], m["handover"]) for m in broadcast] == [(1, False), (3, True)]
        # Only the owner releases.
        assert not supervisor._release(("live", "cam"), 1)
        assert supervisor._release(("live", "cam"), 3)
        assert w1.channel.sent[-1] == {"op": "released", "app": "live", "name": "cam", "worker": 3}
        assert supervisor.owners == {}
    finally:
        supervisor._cleanup()


def _view(app: str, name: str, **fields: Any) -> dict[str, Any]:
    view = {
        "app": app,
        "name": name,
        "live": True,
        "copy": False,
        "players": 0,
        "players_by_protocol": {},
        "bytes_out": 0,
        "bitrate_out_bps": 0,
        "bitrate_in_bps": 0,
    }
    view.update(fields)
    return view


def _item(number: int, views: list[dict[str, Any]], **server: Any) -> dict[str, Any]:
    summary = {"connections": 0, "streams": 0, "players": 0, "http_viewers": 0, "stats": {}}
    summary.update(server)
    return {
        "worker": {"number": number, "pid": 100 + number, "generation": 1, "state": "ready"},
        "data": {"server": summary, "streams": views, "sessions": [], "metrics": []},
    }


def test_merging_takes_the_owner_description_and_sums_players() -> None:
    owner = _view(
        "live", "cam", players=3, players_by_protocol={"rtmp": 3}, bitrate_in_bps=800, bytes_out=30
    )
    copy = _view(
        "live",
        "cam",
        copy=True,
        players=2,
        players_by_protocol={"rtmp": 1, "http-flv": 1},
        bitrate_in_bps=799,
        bytes_out=20,
    )
    waiting = _view("live", "later", live=False, players=1, players_by_protocol={"rtmp": 1})
    items = [
        _item(2, [copy, waiting], players=3, connections=3, stats={"connections_total": 4}),
        _item(1, [owner], players=3, connections=4, streams=1, stats={"connections_total": 5}),
    ]
    (cam,) = merge_streams(items, everything=False)
    assert cam["bitrate_in_bps"] == 800 and cam["players"] == 5 and cam["bytes_out"] == 50
    assert cam["players_by_protocol"] == {"rtmp": 4, "http-flv": 1}
    assert [w["number"] for w in cam["workers"]] == [2, 1]
    assert [s["name"] for s in merge_streams(items, everything=True)] == ["cam", "later"]
    server = merge_server({"version": "x", "connections": 4}, items)
    assert (server["connections"], server["players"], server["streams"]) == (7, 6, 1)
    assert server["stats"] == {"connections_total": 9}
    assert [w["number"] for w in server["workers"]] == [1, 2]


def test_merged_metrics_sum_each_sample_once() -> None:
    def family(value: float, players: float) -> list[dict[str, Any]]:
        return [
            {
                "name": "aiortmp_players",
                "type": "gauge",
                "doc": "players",
                "samples": [["aiortmp_players", {"protocol": "rtmp"}, value]],
            },
            {
                "name": "aiortmp_stream_players",
                "type": "gauge",
                "doc": "per stream",
                "samples": [["aiortmp_stream_players", {"app": "live", "name": "c"}, players]],
            },
            {
                "name": "aiortmp_bytes_sent",
                "type": "counter",
                "doc": "bytes",
                "samples": [["aiortmp_bytes_sent_total", {}, value * 10]],
            },
        ]

    items = [_item(1, []), _item(2, [])]
    items[0]["data"]["metrics"] = family(3, 3)
    items[1]["data"]["metrics"] = family(4, 4)
    text = merge_metrics(items).decode()
    assert 'aiortmp_players{protocol="rtmp"} 7.0' in text
    assert 'aiortmp_stream_players{app="live",name="c"} 7.0' in text
    assert "aiortmp_bytes_sent_total 70.0" in text
    assert "# TYPE aiortmp_bytes_sent_total counter" in text  # as one process writes it


# -- two worker processes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkersProcess]:
    with run_workers(tmp_path_factory.mktemp("workers"), "--drain-timeout", "3") as server:
        yield server


def _other(server: WorkersProcess, number: int) -> int:
    return next(w["number"] for w in server.ready_workers() if w["number"] != number)


async def _publish(conn: rtmp.Connection, name: str) -> rtmp.Publisher:
    publisher = await conn.publish(name)
    await publisher.send_metadata({"width": 320.0, "height": 240.0})
    await publisher.send_video(0, AVC_SEQUENCE_HEADER)
    await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
    return publisher


async def _feed(publisher: rtmp.Publisher, start: int, count: int) -> None:
    for i in range(start, start + count):
        await publisher.send_video(i * 40, video_frame(i, 300))
        await publisher.send_audio(i * 40, audio_frame())
        await asyncio.sleep(0.005)


async def _next_event(player: rtmp.Player, kind: Any, timeout_s: float = 10.0) -> Any:
    async def find() -> Any:
        async for item in player.events():
            if isinstance(item, kind):
                return item
        raise AssertionError("the play ended")

    return await asyncio.wait_for(find(), timeout_s)


async def _status(player: rtmp.Player, code: str, timeout_s: float = 10.0) -> None:
    async def find() -> None:
        async for item in player.events():
            if isinstance(item, StatusReceived) and item.code == code:
                return
        raise AssertionError(f"the play ended before {code}")

    await asyncio.wait_for(find(), timeout_s)


def _owner(server: WorkersProcess, name: str) -> int:
    stream = server.api(f"/api/streams/live/{name}")
    return int(stream["publisher"]["session_id"]) >> 32


async def test_session_ids_are_unique_across_workers(workers: WorkersProcess) -> None:
    numbers = [w["number"] for w in workers.ready_workers()]
    conns = [await connect_on(workers, n) for n in numbers]
    try:
        sessions = await asyncio.to_thread(workers.api, "/api/sessions")
        ids = [s["id"] for s in sessions["sessions"]]
        assert len(ids) == len(set(ids)) >= 2
        assert {i >> 32 for i in ids} >= set(numbers)  # the worker number in the high bits
    finally:
        for conn in conns:
            await conn.close()


async def test_a_player_waiting_on_another_worker_is_told_when_the_stream_starts(
    workers: WorkersProcess,
) -> None:
    first = workers.ready_workers()[0]["number"]
    second = _other(workers, first)
    play_conn = await connect_on(workers, first)
    pub_conn = await connect_on(workers, second)
    try:
        player = await play_conn.play("waiter", stop_on_unpublish=False)
        publisher = await _publish(pub_conn, "waiter")
        await _status(player, NetStatusCode.PLAY_PUBLISH_NOTIFY)
        feed = asyncio.ensure_future(_feed(publisher, 0, 30))
        video = []
        async for message in player:
            if message.type_id == 9:
                video.append(message.payload)
            if len(video) >= 5:
                break
        await feed
        assert video[0] == AVC_SEQUENCE_HEADER
        assert video[1] == video_frame(0, 300)  # from the keyframe on, through the link
        assert _owner(workers, "waiter") == second
        # The publisher leaves: the player is told and stays...
        await publisher.close()
        await _status(player, NetStatusCode.PLAY_UNPUBLISH_NOTIFY)
        # ...and a republish on its own worker reaches it (the name moved, once the
        # owner's release went round).
        await workers_wait(workers, lambda: not workers.api("/api/streams/live/waiter")["live"])
        local = await _publish(play_conn, "waiter")
        await _status(player, NetStatusCode.PLAY_PUBLISH_NOTIFY)
        await workers_wait(workers, lambda: _owner(workers, "waiter") == first)
        await local.close()
        await _status(player, NetStatusCode.PLAY_UNPUBLISH_NOTIFY)
        # And back on the other worker once more.
        again = await _publish(pub_conn, "waiter")
        await _status(player, NetStatusCode.PLAY_PUBLISH_NOTIFY)
        await _feed(again, 0, 2)
        assert (await _next_event(player, rtmp.MediaMessage)).type_id in (8, 9, 18)
        await again.close()
    finally:
        await play_conn.close()
        await pub_conn.close()


async def workers_wait(server: WorkersProcess, check: Any, timeout_s: float = 10.0) -> None:
    await asyncio.to_thread(server.wait, check, timeout_s)


async def test_a_second_publisher_is_refused_on_every_worker(workers: WorkersProcess) -> None:
    numbers = [w["number"] for w in workers.ready_workers()]
    owner_conn = await connect_on(workers, numbers[0])
    try:
        await _publish(owner_conn, "taken")
        for number in numbers:
            conn = await connect_on(workers, number)
            try:
                with pytest.raises(rtmp.RejectedError) as refused:
                    await conn.publish("taken")
                assert refused.value.code == NetStatusCode.PUBLISH_BAD_NAME
            finally:
                await conn.close()
        assert _owner(workers, "taken") == numbers[0]
    finally:
        await owner_conn.close()
    # Released with the publisher: anyone may publish the name now.
    await workers_wait(workers, lambda: not workers.api("/api/streams")["streams"])
    conn = await connect_on(workers, numbers[1])
    try:
        await conn.publish("taken")
    finally:
        await conn.close()


async def test_the_api_and_metrics_show_the_whole_server_on_any_worker(
    workers: WorkersProcess,
) -> None:
    first = workers.ready_workers()[0]["number"]
    second = _other(workers, first)
    pub_conn = await connect_on(workers, first)
    players = [await connect_on(workers, n) for n in (first, second, second)]
    try:
        publisher = await _publish(pub_conn, "counted")
        plays = [await conn.play("counted") for conn in players]
        await _feed(publisher, 0, 10)
        for _ in range(6):  # every answer counts 3 players, whichever worker answers
            stream = await asyncio.to_thread(workers.api, "/api/streams/live/counted")
            assert stream["players"] == 3 and stream["live"]
            assert stream["publisher"]["kind"] == "rtmp"
            by_worker = {w["number"]: w["players"] for w in stream["workers"]}
            assert by_worker == {first: 1, second: 2}
            server = await asyncio.to_thread(workers.api, "/api/server")
            assert server["players"] == 3 and server["streams"] == 1
            metrics = await asyncio.to_thread(workers.text, "/metrics")
            assert re.search(r'aiortmp_stream_players\{app="live",name="counted"\} 3\.0', metrics)
            assert re.search(r"^aiortmp_streams 1\.0$", metrics, re.M)
            assert re.search(r'^aiortmp_players\{protocol="rtmp"\} 3\.0$', metrics, re.M)
        # Closing a session on the other worker goes there.
        sessions = (await asyncio.to_thread(workers.api, "/api/sessions"))["sessions"]
        victim = next(s for s in sessions if s["id"] >> 32 == second and s["playing"])
        for _ in range(4):  # whichever worker answers
            try:
                closed = await asyncio.to_thread(
                    workers.api, f"/api/sessions/{victim['id']}", "DELETE"
                )
            except OSError:  # 404: closed by an earlier round
                continue
            assert closed == {"closed": victim["id"]}
        await workers_wait(
            workers, lambda: workers.api("/api/streams/live/counted")["players"] == 2
        )
        # Kicking the publisher through the API reaches its worker.
        kicked = await asyncio.to_thread(workers.api, "/api/streams/live/counted", "DELETE")
        assert kicked["kicked"] >> 32 == first
        for play in plays[:1]:
            await _status(play, NetStatusCode.PLAY_UNPUBLISH_NOTIFY)
    finally:
        for conn in [pub_conn, *players]:
            await conn.close()


async def test_http_flv_on_a_worker_that_does_not_own_the_stream(
    workers: WorkersProcess, tmp_path: Path
) -> None:
    import aiohttp

    first = workers.ready_workers()[0]["number"]
    pub_conn = await connect_on(workers, first)
    try:
        publisher = await _publish(pub_conn, "flv")
        feed = asyncio.ensure_future(_feed(publisher, 0, 200))
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(6):  # some land on the other worker: they play through its link
                async with http.get(workers.http_url("/live/flv.flv")) as response:
                    assert response.status == 200
                    body = await response.content.readexactly(2000)
                    assert body.startswith(b"FLV")
        feed.cancel()
    finally:
        await pub_conn.close()


def test_the_supervisor_restarts_a_worker_that_dies(workers: WorkersProcess) -> None:
    import os
    import signal

    before = workers.ready_workers()
    victim = before[-1]
    os.kill(victim["pid"], signal.SIGKILL)
    workers.wait(
        lambda: (
            len(workers.ready_workers()) == len(before)
            and victim["number"] not in [w["number"] for w in workers.ready_workers()]
        ),
        15,
        "a new worker",
    )
    log = workers.log()
    assert f"worker {victim['number']} (pid {victim['pid']}) exited with signal 9" in log
    assert "restarting slot" in log


def _answered(socks: list[socket.socket], within_s: float) -> set[socket.socket]:
    """The sockets that have something to read within ``within_s``."""
    answered: set[socket.socket] = set()
    deadline = time.monotonic() + within_s
    while len(answered) < len(socks) and (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([s for s in socks if s not in answered], [], [], left)
        answered.update(readable)
    return answered


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_connections_waiting_for_a_worker_that_dies_are_served_by_another(
    tmp_path: Path,
) -> None:
    """A stopped worker (SIGSTOP) leaves connections in its listen queues; it is killed: the
    supervisor hands them to the other worker, which answers their RTMP handshake and
    their HTTP request (they were reset before)."""
    with run_workers(tmp_path) as server:
        victim = server.ready_workers()[0]
        os.kill(victim["pid"], signal.SIGSTOP)
        rtmp_socks: list[socket.socket] = []
        http_socks: list[socket.socket] = []
        try:
            for _ in range(24):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(b"\x03" + bytes(1536))  # C0 + C1 (RTMP 1.0 §5.2)
                rtmp_socks.append(sock)
                sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
                sock.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                http_socks.append(sock)
            # The live worker answers its share; the rest wait in the stopped one's queues.
            answered = _answered(rtmp_socks + http_socks, 3.0)
            waiting = [s for s in rtmp_socks if s not in answered]
            waiting_http = [s for s in http_socks if s not in answered]
            assert waiting and waiting_http  # 24 each: both workers got some
            os.kill(victim["pid"], signal.SIGKILL)
            for sock in waiting:
                reply = _read_exactly(sock, 1 + 1536)  # S0 + S1
                assert reply[:1] == b"\x03" and len(reply) == 1537
            for sock in waiting_http:
                assert _read_exactly(sock, 12).startswith(b"HTTP/1.1 404"), server.log()[-3000:]
            assert re.search(
                r"\d+ connection\(s\) waiting for worker \d+ handed over", server.log()
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim["pid"], signal.SIGKILL)
            for sock in rtmp_socks + http_socks:
                sock.close()


async def test_the_players_of_a_dead_owner_are_told_and_wait_for_a_republish(
    workers: WorkersProcess,
) -> None:
    import os
    import signal

    first = workers.ready_workers()[0]
    second = _other(workers, first["number"])
    pub_conn = await connect_on(workers, first["number"])
    play_conn = await connect_on(workers, second)
    try:
        publisher = await _publish(pub_conn, "orphan")
        player = await play_conn.play("orphan", stop_on_unpublish=False)
        await _feed(publisher, 0, 3)
        await _next_event(player, rtmp.MediaMessage)
        os.kill(first["pid"], signal.SIGKILL)
        await _status(player, NetStatusCode.PLAY_UNPUBLISH_NOTIFY)
        # The player stays; a republish on its worker (the name was released) reaches it.
        await workers_wait(workers, lambda: not workers.api("/api/streams")["streams"])
        again = await _publish(play_conn, "orphan")
        await _status(player, NetStatusCode.PLAY_PUBLISH_NOTIFY)
        await again.close()
    finally:
        await pub_conn.close()
        await play_conn.close()
    await workers_wait(workers, lambda: len(workers.ready_workers()) == 2, 15)


async def test_sigusr2_moves_publishers_that_follow_and_drains_the_rest(
    workers: WorkersProcess,
) -> None:
    import signal

    old = {w["number"] for w in workers.ready_workers()}
    mover_conn = await rtmp.connect(workers.url("live"), timeout=10)
    stayer_conn = await rtmp.connect(workers.url("live"), timeout=10, follow_reconnect=False)
    play_conn: rtmp.Connection | None = None
    try:
        mover = await _publish(mover_conn, "mover")
        stayer = await _publish(stayer_conn, "stayer")
        await _feed(mover, 0, 3)  # frame 0 is a keyframe (a GOP is 25 frames)
        await _feed(stayer, 0, 3)
        workers.proc.send_signal(signal.SIGUSR2)
        await asyncio.wait_for(_until(lambda: mover_conn.reconnect_request is not None), 20)
        # New connections go to the new generation; its player links to the old owners.
        play_conn = await rtmp.connect(workers.url("live"), timeout=10)
        moving = await play_conn.play("mover", stop_on_unpublish=False)
        staying = await play_conn.play("stayer", stop_on_unpublish=False)
        await _feed(mover, 3, 5)  # no keyframe yet: the mover stays where it is
        await _feed(stayer, 3, 5)
        assert mover.moves == 0
        seen = await _frames(moving, 3)
        # The next keyframe goes to the new generation; the new player's link follows.
        await _feed(mover, 25, 10)
        assert mover.moves == 1 and _owner(workers, "mover") not in old
        seen += await _frames(moving, 8)
        assert video_frame(25, 300) in seen
        assert not [s for s in moving.statuses if s.code == NetStatusCode.PLAY_UNPUBLISH_NOTIFY]
        # The publisher that does not follow stays with the old generation until its
        # drain deadline (3 s), then its stream ends.
        assert _owner(workers, "stayer") in old
        await _feed(stayer, 8, 3)
        await _status(staying, NetStatusCode.PLAY_UNPUBLISH_NOTIFY, 15)
        await workers_wait(workers, lambda: not old & {w["number"] for w in workers.workers()}, 15)
        assert mover_conn.closed  # the publisher left it for the new connection
        assert not mover.connection.closed
    finally:
        for conn in (mover_conn, stayer_conn, play_conn):
            if conn is not None:
                await conn.close()


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.02)


async def _frames(player: rtmp.Player, count: int) -> list[bytes]:
    frames: list[bytes] = []

    async def run() -> None:
        async for message in player:
            if message.type_id == 9 and message.payload != AVC_SEQUENCE_HEADER:
                frames.append(message.payload)
                if len(frames) >= count:
                    return

    await asyncio.wait_for(run(), 10)
    return frames


def test_a_busy_port_stops_the_supervisor_before_any_worker_starts(tmp_path: Path) -> None:
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "aiortmp.cli",
                "serve",
                "--workers",
                "2",
                "--listen",
                f"127.0.0.1:{port}",
                "--no-http",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "worker 1 started" not in done.stderr
