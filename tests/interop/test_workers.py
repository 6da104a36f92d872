"""``aiortmp serve --workers 2`` with real FFmpeg 9 peers (issue 15, "Done when").

One supervisor with two workers for the module; in order:

1. 20 FFmpeg players (10 RTMP, 10 HTTP-FLV), spread over both workers, all decode the
   stream FFmpeg publishes on one of them; the API and ``/metrics`` count 20 players.
2. A duplicate FFmpeg publisher is refused (``NetStream.Publish.BadName``) on either worker.
3. ``kill -9`` of the worker that does not own the stream: its players drop, the others
   go on, and a new FFmpeg player decodes video within 3 s.
4. ``SIGUSR2`` while ``aiortmp publish`` streams and FFmpeg players watch: the publisher
   follows ReconnectRequest to the new generation, players see no gap over 1 s and no
   error, and the old generation exits once its players left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..server.workers_peer import WorkersProcess, run_workers
from .peers import (
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    popen,
)

pytestmark = pytest.mark.interop

FPS = 25
MAX_GAP_S = 1.0

# Our client as a player in its own process: its local port (to find its worker), every
# video arrival, every status, and how it ended (after DURATION seconds: "END clean").
WATCHER = """
import asyncio, sys, time
import aiortmp.client as rtmp

async def main(url, duration):
    try:
        async with rtmp.connect(url, timeout=10) as conn:
            port = conn._protocol.transport.get_extra_info("sockname")[1]
            print("PORT", port, flush=True)
            player = await conn.play(stop_on_unpublish=False)
            async def watch():
                async for item in player.events():
                    code = getattr(item, "code", None)
                    if code is not None:
                        print("S", code, flush=True)
                    elif getattr(item, "type_id", None) == 9:
                        print("V", time.monotonic(), flush=True)
            try:
                await asyncio.wait_for(watch(), duration)
            except asyncio.TimeoutError:
                pass
        print("END clean", flush=True)
    except Exception as exc:
        print("END", type(exc).__name__, exc, flush=True)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


def watcher(url: str, duration_s: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WATCHER, url, str(duration_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return int(line.split()[1])


def video_times(out: str) -> list[float]:
    return [float(line.split()[1]) for line in out.splitlines() if line.startswith("V ")]


def worst_gap(times: list[float]) -> float:
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


_STATS_RE = re.compile(r"frame=\s*(\d+).*?elapsed=(\d+):(\d+):([\d.]+)")


def ffmpeg_stall_s(stderr: str) -> float:
    """The longest wall-clock time FFmpeg decoded no frame, from its stats lines
    (``-stats_period 0.2``: one line at least every 0.2 s while frames come)."""
    points = [
        (int(h) * 3600 + int(m) * 60 + float(s), int(frame))
        for frame, h, m, s in _STATS_RE.findall(stderr.replace("\r", "\n"))
    ]
    stall = 0.0
    since: float | None = None
    last_frame = 0
    for elapsed, frame in points:
        if frame > last_frame:
            if since is not None and last_frame:
                stall = max(stall, elapsed - since)
            since, last_frame = elapsed, frame
    return stall


def owner_of(server: WorkersProcess, name: str) -> int:
    stream = server.api(f"/api/streams/live/{name}")
    return int(stream["publisher"]["session_id"]) >> 32


def live(server: WorkersProcess, name: str) -> bool:
    streams = server.api("/api/streams")["streams"]
    return any(s["name"] == name and s["live"] for s in streams)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkersProcess]:
    with run_workers(tmp_path_factory.mktemp("workers")) as server:
        yield server


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of H.264 (a keyframe a second) + AAC for ``aiortmp publish --loop``."""
    path = tmp_path_factory.mktemp("clip") / "clip.flv"
    subprocess.run(
        [
            *ffmpeg_publish_args(str(path), duration_s=2, gop=FPS, rate=FPS, size="320x240"),
        ],
        check=True,
        capture_output=True,
    )
    return path


def test_twenty_players_on_both_workers_decode_over_rtmp_and_http_flv(
    workers: WorkersProcess,
) -> None:
    publisher = popen(ffmpeg_publish_args(workers.url("live/cam"), duration_s=12, gop=FPS))
    players: list[subprocess.Popen[str]] = []
    try:
        workers.wait(lambda: live(workers, "cam"), 10, "the stream live")
        owner = owner_of(workers, "cam")
        for _ in range(10):
            players.append(popen(ffmpeg_play_args(workers.url("live/cam"), "-t", "4")))
            players.append(popen(ffmpeg_play_args(workers.http_url("/live/cam.flv"), "-t", "4")))
        stream = workers.wait(
            lambda: (s := workers.api("/api/streams/live/cam"))["players"] == 20 and s,
            10,
            "20 players",
        )
        # Spread over both workers; the owner's link copy is no player and no stream.
        per_worker = {w["number"]: w["players"] for w in stream["workers"]}
        assert len(per_worker) == 2 and all(per_worker.values()), per_worker
        assert stream["players_by_protocol"] == {"rtmp": 10, "http-flv": 10}
        assert [w["copy"] for w in stream["workers"] if w["number"] == owner] == [False]
        server = workers.api("/api/server")
        assert server["players"] == 20 and server["streams"] == 1
        assert server["http_viewers"] == 10
        metrics = workers.text("/metrics")
        assert re.search(r'aiortmp_stream_players\{app="live",name="cam"\} 20\.0', metrics)
        assert re.search(r'^aiortmp_players\{protocol="rtmp"\} 10\.0$', metrics, re.M)
        assert re.search(r'^aiortmp_players\{protocol="http-flv"\} 10\.0$', metrics, re.M)
        for player in players:
            _, err = player.communicate(timeout=30)
            assert player.returncode == 0, err[-2000:]
            assert decoded_frames(err) >= 3 * FPS, err[-2000:]
    finally:
        for proc in [publisher, *players]:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def test_a_duplicate_publisher_is_refused_whichever_worker_it_reaches(
    workers: WorkersProcess,
) -> None:
    publisher = popen(ffmpeg_publish_args(workers.url("live/dup"), duration_s=20, gop=FPS))
    try:
        workers.wait(lambda: live(workers, "dup"), 10, "the stream live")
        owner = owner_of(workers, "dup")
        refused_on: set[int] = set()
        for _ in range(8):  # the kernel picks the worker: until both refused one
            batch = [
                popen(ffmpeg_publish_args(workers.url("live/dup"), duration_s=5)) for _ in range(4)
            ]
            for proc in batch:
                _, err = proc.communicate(timeout=30)
                assert proc.returncode != 0
                assert "NetStream.Publish.BadName" in err or "Server error" in err, err[-1500:]
            # "denied" by the ownership policy elsewhere, "refused" by the owner itself.
            refusals = r"w(\d+) aiortmp\.server: .*publish (?:dup denied|live/dup refused)"
            refused_on = {int(n) for n in re.findall(refusals, workers.log())}
            if len(refused_on) == 2:
                break
        assert len(refused_on) == 2, workers.log()[-3000:]
        assert owner_of(workers, "dup") == owner  # the first publisher goes on
        assert publisher.poll() is None
    finally:
        publisher.kill()
        publisher.communicate()


def test_kill_9_of_the_worker_that_does_not_own_the_stream(workers: WorkersProcess) -> None:
    publisher = popen(ffmpeg_publish_args(workers.url("live/k9"), duration_s=20, gop=FPS))
    watchers: list[tuple[subprocess.Popen[str], int]] = []
    try:
        workers.wait(lambda: live(workers, "k9"), 10, "the stream live")
        owner = owner_of(workers, "k9")
        victim = next(w for w in workers.ready_workers() if w["number"] != owner)
        on = {owner: 0, victim["number"]: 0}
        while min(on.values()) < 2 and len(watchers) < 16:
            proc = watcher(workers.url("live/k9"), 6.5)
            port = read_port(proc)
            number = workers.wait(lambda port=port: workers.worker_of_port(port), 5, "a session")
            watchers.append((proc, number))
            on[number] += 1
        assert min(on.values()) >= 2, on
        time.sleep(1.5)
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)
        # A new player decodes video within 3 s (it lands on a worker that is up).
        started = time.monotonic()
        newcomer = popen(ffmpeg_play_args(workers.url("live/k9"), "-frames:v", "1"))
        _, err = newcomer.communicate(timeout=15)
        assert newcomer.returncode == 0 and decoded_frames(err) >= 1, err[-2000:]
        assert time.monotonic() - started < 3.0
        outputs = [(proc.communicate(timeout=20)[0], number) for proc, number in watchers]
        for out, number in outputs:
            times = video_times(out)
            if number == victim["number"]:
                # Dropped with their worker.
                assert "END clean" not in out, out[-500:]
                assert not [t for t in times if t > killed_at + 0.5]
            else:
                # The rest go on, without a stall.
                assert out.rstrip().endswith("END clean"), out[-500:]
                assert "S NetStream.Play.UnpublishNotify" not in out
                assert times and times[-1] > killed_at + 3.0
                assert worst_gap(times) < MAX_GAP_S
        workers.wait(lambda: len(workers.ready_workers()) == 2, 15, "the slot restarted")
        assert f"worker {victim['number']} (pid {victim['pid']}) exited with signal 9" in (
            workers.log()
        )
    finally:
        for proc in [publisher, *(p for p, _ in watchers)]:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def test_sigusr2_moves_the_publisher_and_players_see_no_gap(
    workers: WorkersProcess, clip: Path
) -> None:
    url = workers.url("live/mv")
    publisher = subprocess.Popen(
        [sys.executable, "-m", "aiortmp.cli", "publish", str(clip), url, "--loop", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    players: list[subprocess.Popen[str]] = []
    watchers: list[subprocess.Popen[str]] = []
    try:
        workers.wait(lambda: live(workers, "mv"), 10, "the stream live")
        old = {w["number"] for w in workers.ready_workers()}
        players = [
            popen(ffmpeg_play_args(url, "-t", "9", "-stats_period", "0.2")) for _ in range(3)
        ]
        watchers = [watcher(url, 9) for _ in range(3)]
        for proc in watchers:
            read_port(proc)
        time.sleep(3.0)
        signalled_at = time.monotonic()
        workers.proc.send_signal(signal.SIGUSR2)
        # The publisher moves to the new generation.
        workers.wait(lambda: owner_of(workers, "mv") not in old, 15, "the publisher moved")
        for proc in watchers:
            out, _ = proc.communicate(timeout=30)
            assert out.rstrip().endswith("END clean"), out[-800:]
            assert "S NetStream.Play.UnpublishNotify" not in out, out[-800:]
            times = video_times(out)
            assert times[-1] > signalled_at + 3.0
            assert worst_gap(times) < MAX_GAP_S, worst_gap(times)
        for proc in players:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err[-2000:]
            assert decoded_frames(err) >= 8 * FPS, err[-2000:]
            assert not re.search(r"error|invalid|corrupt", err, re.I), err[-2000:]
            assert ffmpeg_stall_s(err) < MAX_GAP_S, err[-2000:]
        # The old generation leaves once its players did.
        workers.wait(
            lambda: not old & {w["number"] for w in workers.workers()}, 15, "old generation gone"
        )
        assert publisher.poll() is None, publisher.communicate()[1]
    finally:
        for proc in [*players, *watchers]:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        publisher.kill()
        _, err = publisher.communicate()
    assert "rejected" not in err and "Error" not in err, err[-2000:]
