"""Signals to `aiortmp serve` while FFmpeg 9 publishes and players watch.

SIGTERM: the server stops accepting, tells its players the stream ended
(``NetStream.Play.UnpublishNotify`` + Stream EOF), closes every connection, finishes the
recording (duration patched, every tag whole) and exits 0 within 5 s.

SIGHUP: the configuration file is read again; new auth rules and limits apply to new
requests while the running publisher and player go on without a stall.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import aiortmp.client as rtmp
from aiortmp.media.flv import FLVReader
from aiortmp.protocol import amf0

from .peers import ffmpeg_play_args, ffmpeg_publish_args, popen, run_server

pytestmark = pytest.mark.interop

FPS = 25
SHUTDOWN_LIMIT_S = 5.0
MAX_STALL_S = 1.0
KEY_A = "before-reload-K3Y"
KEY_B = "after-reload-K3Y"

# Our client as a player in its own process: prints every video arrival and status code,
# then how the iteration ended.
WATCHER = """
import asyncio, sys, time
import aiortmp.client as rtmp

async def main(url):
    try:
        async with rtmp.connect(url, timeout=10) as conn:
            player = await conn.play()
            print("START", time.monotonic(), flush=True)
            async for item in player.events():
                code = getattr(item, "code", None)
                if code is not None:
                    print("S", code, flush=True)
                elif getattr(item, "type_id", None) == 9:
                    print("V", time.monotonic(), flush=True)
        print("END clean", flush=True)
    except Exception as exc:
        print("END", type(exc).__name__, exc, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def watcher(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WATCHER, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def video_times(out: str) -> list[float]:
    return [float(line.split()[1]) for line in out.splitlines() if line.startswith("V ")]


def worst_gap(times: list[float]) -> float:
    return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


# -- SIGTERM ----------------------------------------------------------------------------------


@dataclass
class Shutdown:
    exit_s: float = 0.0
    returncode: int | None = None
    refused_after_signal: bool = False
    watcher_out: str = ""
    ffmpeg_player_exited: bool = False
    recordings: list[Path] = field(default_factory=list)
    log: str = ""


@pytest.fixture(scope="module")
def shutdown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shutdown]:
    result = Shutdown()
    with run_server(tmp_path_factory.mktemp("sigterm")) as server:
        url = server.url("live/stream")
        publisher = popen(ffmpeg_publish_args(url, duration_s=60, gop=FPS, rate=FPS))
        try:
            time.sleep(2.0)
            ours = watcher(url)
            theirs = popen(ffmpeg_play_args(url))
            time.sleep(4.0)
            start = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            result.refused_after_signal = refused(server.port)
            try:
                result.returncode = server.proc.wait(SHUTDOWN_LIMIT_S + 5)
            finally:
                result.exit_s = time.monotonic() - start
            result.watcher_out, _ = ours.communicate(timeout=10)
            try:
                theirs.communicate(timeout=10)
                result.ffmpeg_player_exited = True
            except subprocess.TimeoutExpired:
                theirs.kill()
                theirs.communicate()
        finally:
            if publisher.poll() is None:
                publisher.terminate()
            publisher.communicate(timeout=10)
        result.recordings = sorted(server.record_dir.rglob("*.flv"))
        result.log = server.log()
    yield result


def test_sigterm_exits_cleanly_within_5s(shutdown: Shutdown) -> None:
    assert shutdown.returncode == 0, shutdown.log[-3000:]
    assert shutdown.exit_s < SHUTDOWN_LIMIT_S
    assert "shutting down" in shutdown.log
    assert "Traceback" not in shutdown.log


def test_sigterm_stops_accepting_at_once(shutdown: Shutdown) -> None:
    assert shutdown.refused_after_signal


def test_sigterm_tells_the_players(shutdown: Shutdown) -> None:
    out = shutdown.watcher_out
    assert len(video_times(out)) >= 3 * FPS
    assert "S NetStream.Play.UnpublishNotify" in out, out[-2000:]
    assert out.rstrip().endswith("END clean"), out[-2000:]
    # FFmpeg's player saw the end of the stream and exited by itself.
    assert shutdown.ffmpeg_player_exited


def test_sigterm_finishes_the_recording(shutdown: Shutdown) -> None:
    (recording,) = shutdown.recordings
    assert "recording closed" in shutdown.log
    with recording.open("rb") as fh:
        reader = FLVReader(fh)
        tags = list(reader)
    assert not reader.truncated
    video = [t for t in tags if t.tag_type == 9]
    assert len(video) >= 4 * FPS
    script = next(t for t in tags if t.tag_type == 18)
    name, metadata = amf0.decode_all(script.payload)
    assert name == "onMetaData"
    # The duration was patched in at close: the span of the recorded video.
    span_s = (video[-1].timestamp_ms - video[0].timestamp_ms) / 1000
    assert metadata["duration"] == pytest.approx(span_s, abs=0.5)
    assert metadata["duration"] >= 4


# -- SIGHUP -----------------------------------------------------------------------------------

CONFIG = """
[limits]
max_connections_per_ip = {per_ip}

[auth.apps.live.publish]
keys = ["{key}"]
"""


@dataclass
class Reload:
    reload_at: float = 0.0
    watcher_out: str = ""
    old_key_after: str = ""
    new_key_after: bool = False
    limit_after: str = ""
    publisher_alive: bool = False
    log: str = ""


async def after_reload(port: int, result: Reload) -> None:
    base = f"rtmp://127.0.0.1:{port}/live"
    async with rtmp.connect(base, timeout=5) as conn:
        try:
            await conn.publish(f"other?key={KEY_A}")
        except rtmp.RejectedError as exc:
            result.old_key_after = exc.code
    async with rtmp.connect(base, timeout=5) as conn:
        await conn.publish(f"other?key={KEY_B}")
        result.new_key_after = True
        # Publisher, watcher and this connection: the new per-address limit of 3 is reached.
        try:
            async with rtmp.connect(base, timeout=3):
                result.limit_after = "accepted"
        except rtmp.ClientError as exc:
            result.limit_after = type(exc).__name__


@pytest.fixture(scope="module")
def reload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reload]:
    tmp = tmp_path_factory.mktemp("sighup")
    config = tmp / "aiortmp.toml"
    config.write_text(CONFIG.format(per_ip=100, key=KEY_A))
    result = Reload()
    with run_server(tmp, "--config", str(config)) as server:
        url = server.url(f"live/stream?key={KEY_A}")
        publisher = popen(ffmpeg_publish_args(url, duration_s=60, gop=FPS, rate=FPS))
        try:
            time.sleep(2.0)
            ours = watcher(server.url("live/stream"))
            time.sleep(3.0)
            config.write_text(CONFIG.format(per_ip=3, key=KEY_B))
            result.reload_at = time.monotonic()
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while "configuration reloaded" not in server.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            asyncio.run(after_reload(server.port, result))
            time.sleep(3.0)
            result.publisher_alive = publisher.poll() is None
            result.log = server.log()
            ours.terminate()
            result.watcher_out, _ = ours.communicate(timeout=10)
        finally:
            if publisher.poll() is None:
                publisher.terminate()
            publisher.communicate(timeout=10)
    yield result


def test_sighup_reloads_without_dropping_streams(reload: Reload) -> None:
    assert "configuration reloaded" in reload.log
    assert reload.publisher_alive
    assert "publish live/stream stopped" not in reload.log
    times = video_times(reload.watcher_out)
    # Video flowed before the reload and well after it (the watcher is stopped ~3 s after
    # the reload's follow-up requests; a 1.5 s margin leaves room for scheduling).
    assert times and times[0] < reload.reload_at - 2 and times[-1] > reload.reload_at + 1.5
    assert worst_gap(times) <= MAX_STALL_S


def test_sighup_applies_new_auth_rules(reload: Reload) -> None:
    assert reload.old_key_after == "NetStream.Publish.BadName"
    assert reload.new_key_after


def test_sighup_applies_new_limits(reload: Reload) -> None:
    assert reload.limit_after in ("ClientError", "ClientTimeoutError")
    assert "max_connections_per_ip" in reload.log


def test_secrets_are_not_logged_across_reload(reload: Reload) -> None:
    assert KEY_A not in reload.log and KEY_B not in reload.log
