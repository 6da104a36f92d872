"""Hostile clients against `aiortmp serve` while FFmpeg 9 publishes and two players watch.

The robustness issue measured nginx-rtmp 1.2.2 (a worker dies on a connect holding a
50 000-level AMF0 object) and node-media-server 4.4.3 (the process dies on random bytes after
the handshake). Here, while FFmpeg publishes ``live/stream`` and both our client library (in
a subprocess, timing every video message) and FFmpeg play it, raw sockets from other loopback
addresses send: garbage handshakes, HTTP and TLS to the RTMP port, random bytes after the
handshake, oversized message lengths, chunk sizes 0, 0x7FFFFFFF and 0x80000000, thousands of
chunk stream ids, deep and self-expanding AMF, truncated messages and headers, NaN stream ids,
cyclic metadata, requests closed before their answer, a publish hijack, a createStream flood,
slowloris handshakes and a 1000-connection flood. Then:

- the player never went more than 1 s without video, and FFmpeg decoded all along;
- every hostile session was closed by the server, with at most one warning line each, and
  nothing was logged as an internal error;
- the server's resident memory stayed bounded;
- a new player still gets video, and the publisher was never interrupted.

One scenario (about 35 s of wall time) runs once per module; each test checks one property.
"""

from __future__ import annotations

import asyncio
import random
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import aiortmp.client as rtmp
from aiortmp.protocol import amf0
from aiortmp.protocol.chunk import ChunkWriter
from aiortmp.protocol.events import CommandResult, HandshakeComplete
from aiortmp.protocol.handshake import Handshake, HandshakeRole
from aiortmp.protocol.messages import Message, MessageType
from aiortmp.protocol.session import ClientSession

from ..fuzz.hostile import amf0_reference_bomb, amf3_reference_bomb, deep_amf0_object
from .peers import (
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop

PUBLISH_S = 60.0  # stopped by the test once it is done
WATCH_S = 28.0  # the timing player's lifetime
FPS = 25
MAX_STALL_S = 1.0  # the threshold
FLOOD = 1000
PER_IP = 400  # max_connections_per_ip in the test configuration
MAX_MESSAGE = 4 * 1024 * 1024
FLOOD_IP = "127.0.0.2"
SLOW_IP = "127.0.0.3"
ATTACK_IP = "127.0.0.4"
SLOWLORIS = 100

CONFIG = f"""
[limits]
max_connections_per_ip = {PER_IP}
max_message_size = {MAX_MESSAGE}
handshake_timeout_s = 5
"""

# The timing player: our client library, in its own process so that the attackers in this
# process cannot delay it. It prints the monotonic time of every video message.
WATCHER = """
import asyncio, sys, time
import aiortmp.client as rtmp

async def main(url, seconds):
    deadline = time.monotonic() + seconds
    async with rtmp.connect(url, timeout=10) as conn:
        player = await conn.play()
        print("START", time.monotonic(), flush=True)
        async for message in player:
            if message.type_id == 9:
                print("V", time.monotonic(), flush=True)
            if time.monotonic() > deadline:
                break
    print("END", time.monotonic(), flush=True)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


# -- bytes ------------------------------------------------------------------------------------


def handshake() -> bytes:
    """C0+C1 of a digest client, then a C2 (the server does not check its contents)."""
    hs = Handshake(HandshakeRole.CLIENT)
    hs.initiate()
    return hs.data_to_send() + bytes(1536)


def chunks(*messages: Message, chunk_size: int = 128) -> bytes:
    """The messages chunked at ``chunk_size``, announced first if it is not the default."""
    writer = ChunkWriter(chunk_size=chunk_size)
    prefix = set_chunk_size(chunk_size) if chunk_size != 128 else b""
    return prefix + b"".join(writer.write(m) for m in messages)


def command(*values: Any, raw: bytes = b"", msid: int = 0) -> Message:
    return Message(
        type_id=MessageType.COMMAND_AMF0,
        timestamp_ms=0,
        message_stream_id=msid,
        payload=amf0.encode(*values) + raw,
    )


def set_chunk_size(size: int) -> bytes:
    # By hand: our encoder refuses 0 and sizes with the high bit set.
    return b"\x02" + bytes(3) + b"\x00\x00\x04\x01" + bytes(4) + size.to_bytes(4, "big")


CONNECT = command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://127.0.0.1/live"})
_random = random.Random(6)  # fixed: every run sends the same "random" bytes
TLS_CLIENT_HELLO = bytes.fromhex("1603010200010001fc0303") + _random.randbytes(600)


def csid_flood(count: int) -> bytes:
    out = bytearray()
    for csid in range(64, 64 + count):
        n = csid - 64
        basic = bytes((0, n)) if csid < 320 else bytes((1, n & 0xFF, n >> 8))
        out += basic + b"\x00\x00\x00\x00\x00\x01\x08\x01\x00\x00\x00\xaf"
    return bytes(out)


def one_shot_attacks() -> dict[str, bytes]:
    """Attacks that need no answer from the server: bytes, then wait for the close."""
    shake = handshake()
    return {
        "garbage handshake": b"\x42" + _random.randbytes(4000),
        "version 6 (RTMPE)": b"\x06" + _random.randbytes(3072),
        "HTTP request": b"GET /live/stream HTTP/1.1\r\nHost: x\r\n\r\n",
        "TLS ClientHello": TLS_CLIENT_HELLO,
        "random bytes after handshake": shake + _random.randbytes(65536),
        "chunk size 0": shake + chunks(CONNECT) + set_chunk_size(0),
        "chunk size 0x80000000": shake + set_chunk_size(0x80000000),
        "oversized message length": shake + b"\x03" + bytes(3) + b"\xff\xff\xff\x14" + bytes(4),
        "chunk size 0x7FFFFFFF, 16 MiB message": shake
        + set_chunk_size(0x7FFFFFFF)
        + b"\x06\x00\x00\x00\xff\xff\xff\x09\x01\x00\x00\x00"
        + _random.randbytes(256 * 1024),
        "thousands of chunk stream ids": shake + csid_flood(3000),
        "50 000-level AMF0 connect": shake
        + chunks(command("connect", 1.0, raw=deep_amf0_object(50_000)), chunk_size=60_000),
        "AMF0 reference bomb": shake + chunks(command("connect", 1.0, raw=amf0_reference_bomb(40))),
        "AMF3 reference bomb": shake
        + chunks(
            Message(
                type_id=MessageType.COMMAND_AMF3,
                timestamp_ms=0,
                message_stream_id=0,
                payload=b"\x00" + amf0.encode("connect", 1.0) + b"\x11" + amf3_reference_bomb(40),
            ),
            chunk_size=60_000,
        ),
        "fmt 3 chunk first": shake + b"\xc4" + _random.randbytes(500),
        "fmt 0 while a message is incomplete": shake
        + b"\x04\x00\x00\x00\x00\x01\x00\x08\x01\x00\x00\x00"
        + bytes(128)
        + b"\x04\x00\x00\x00\x00\x00\x10\x08\x01\x00\x00\x00",
    }


def truncated_attacks() -> dict[str, bytes]:
    """Bytes that stop mid-message or mid-header; the attacker then closes."""
    shake = handshake()
    connect = chunks(CONNECT)
    return {
        "message within limits, never completed": shake
        + set_chunk_size(0x7FFFFFFF)
        + b"\x06\x00\x00\x00\x3f\xff\xff\x09\x01\x00\x00\x00"
        + _random.randbytes(256 * 1024),
        "truncated C1": b"\x03" + _random.randbytes(700),
        "truncated message": shake + connect[: len(connect) // 2],
        "truncated header": shake + connect[:5],
        "truncated extended timestamp": shake + b"\x04\xff\xff\xff\x00\x00\x10\x08\x01\x00",
    }


# -- sockets ----------------------------------------------------------------------------------


async def open_from(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, timeout_s: float) -> bool:
    """Read until the server closes (EOF or reset); False if it is still open at timeout."""
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            data = await asyncio.wait_for(reader.read(65536), left)
            if not data:
                return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def send_expect_close(port: int, data: bytes, timeout_s: float = 10.0) -> bool:
    reader, writer = await open_from(port, ATTACK_IP)
    try:
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:
            return True
        return await closed_by_server(reader, timeout_s)
    finally:
        writer.close()


async def send_and_leave(port: int, data: bytes) -> None:
    _, writer = await open_from(port, ATTACK_IP)
    writer.write(data)
    try:
        await writer.drain()
        await asyncio.sleep(0.2)
    except ConnectionError:
        pass
    writer.close()


class RawClient:
    """Our sans-I/O client session on a raw socket, for attacks that need answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.session = ClientSession()

    @classmethod
    async def connected(cls, port: int) -> RawClient:
        client = cls(*await open_from(port, ATTACK_IP))
        client.session.initiate()
        await client.until(lambda e: isinstance(e, HandshakeComplete))
        client.session.connect("live", f"rtmp://127.0.0.1:{port}/live")
        await client.until(lambda e: isinstance(e, CommandResult))
        return client

    def send(self, data: bytes = b"") -> None:
        self.writer.write(data + self.session.data_to_send())

    async def until(self, predicate: Callable[[Any], bool], timeout_s: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            self.send()
            while (event := self.session.next_event()) is not None:
                if predicate(event):
                    return event
            data = await asyncio.wait_for(self.reader.read(65536), deadline - time.monotonic())
            if not data:
                raise ConnectionError("closed by the server")
            self.session.receive_data(data)

    async def create_stream(self) -> int:
        self.session.create_stream()
        result = await self.until(lambda e: isinstance(e, CommandResult))
        return int(result.arguments[0])

    def close(self) -> None:
        self.writer.close()


async def stateful_attacks(port: int) -> dict[str, bool]:
    """Attacks on a connected session. Value: the server closed it (True) or kept it."""
    outcome: dict[str, bool] = {}

    client = await RawClient.connected(port)
    await client.create_stream()
    client.session.send_command("deleteStream", 0.0, None, float("nan"))
    client.send()
    outcome["NaN deleteStream"] = await closed_by_server(client.reader, 5)
    client.close()

    client = await RawClient.connected(port)
    sid = await client.create_stream()
    client.session.publish(sid, "evil")
    await client.until(lambda e: getattr(e, "code", "") == "NetStream.Publish.Start")
    cyclic = b"\x08\x00\x00\x00\x01\x00\x04self\x07\x00\x00\x00\x00\x09"
    metadata = Message(
        type_id=MessageType.DATA_AMF0,
        timestamp_ms=0,
        message_stream_id=sid,
        payload=amf0.encode("@setDataFrame", "onMetaData") + cyclic,
        chunk_stream_id=5,
    )
    client.session.send_message(metadata)
    client.send()
    outcome["cyclic metadata"] = await closed_by_server(client.reader, 5)
    client.close()

    client = await RawClient.connected(port)
    sid = await client.create_stream()
    client.session.publish(sid, "stream")  # FFmpeg's stream: must be refused, not taken
    status = await client.until(lambda e: hasattr(e, "code") and e.stream_id == sid)
    assert status.code == "NetStream.Publish.BadName", status
    # publish + closeStream and play + deleteStream in one write each.
    client.session.publish(sid, "pipelined")
    client.session.send_command("closeStream", 0.0, None, stream_id=sid)
    client.send()
    other = await client.create_stream()
    client.session.play(other, "stream")
    client.session.delete_stream(other)
    client.send()
    for _ in range(40):
        client.session.create_stream()
    client.send()
    answered = 0

    def counted(event: Any) -> bool:
        nonlocal answered
        answered += isinstance(event, CommandResult)
        return answered == 40

    await client.until(counted)
    # Still answered: the connection survived all of it.
    tid = client.session.call("getStreamLength", "stream")
    await client.until(lambda e: isinstance(e, CommandResult) and e.transaction_id == tid)
    outcome["hijack, pipelined requests, createStream flood"] = False
    client.close()
    return outcome


async def slowloris(port: int) -> list[float]:
    """Handshakes sent one byte every 0.5 s; returns how long each lived."""

    async def one() -> float:
        reader, writer = await open_from(port, SLOW_IP)
        start = time.monotonic()
        data = handshake()
        try:
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
                if reader.at_eof():
                    break
                try:
                    got = await asyncio.wait_for(reader.read(65536), 0.5)
                    if not got:
                        break
                except TimeoutError:
                    pass
        except ConnectionError:
            pass
        writer.close()
        return time.monotonic() - start

    return await asyncio.gather(*(one() for _ in range(SLOWLORIS)))


async def flood(port: int) -> tuple[int, int]:
    """Open FLOOD connections at once, hold them 3 s; returns (accepted, refused)."""
    sem = asyncio.Semaphore(200)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        async with sem:
            try:
                return await open_from(port, FLOOD_IP)
            except OSError:
                return None

    conns = [c for c in await asyncio.gather(*(one() for _ in range(FLOOD))) if c is not None]
    await asyncio.sleep(1.0)
    # A refused connection is closed by the server at once.
    refused = 0
    for reader, _ in conns:
        if reader.at_eof() or reader.exception() is not None:
            refused += 1
        else:
            try:
                if await asyncio.wait_for(reader.read(1), 0.001) == b"":
                    refused += 1
            except TimeoutError:
                pass
            except ConnectionError:
                refused += 1
    await asyncio.sleep(2.0)
    for _, writer in conns:
        writer.close()
    return len(conns) - refused, refused


# -- the scenario ---------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@dataclass
class Scenario:
    video_times: list[float] = field(default_factory=list)
    watcher_err: str = ""
    attack_window: tuple[float, float] = (0.0, 0.0)
    closed: dict[str, bool] = field(default_factory=dict)
    slowloris_lifetimes: list[float] = field(default_factory=list)
    flood_accepted: int = 0
    flood_refused: int = 0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    new_player_s: float | None = None
    publisher_alive: bool = False
    ffmpeg_player_rc: int | None = None
    ffmpeg_player_frames: int = 0
    ffmpeg_player_s: float = 0.0
    server_alive: bool = False
    server_log: str = ""
    log_while_live: str = ""

    def summary(self) -> str:
        gaps = [b - a for a, b in zip(self.video_times, self.video_times[1:], strict=False)]
        mib = 1024 * 1024
        return (
            f"video messages {len(self.video_times)}, worst gap {max(gaps, default=0):.3f}s; "
            f"RSS {self.rss_before / mib:.0f} -> peak {self.rss_peak / mib:.0f} -> "
            f"{self.rss_after / mib:.0f} MiB; flood {self.flood_accepted} accepted, "
            f"{self.flood_refused} refused; slowloris lived "
            f"{min(self.slowloris_lifetimes, default=0):.1f}-"
            f"{max(self.slowloris_lifetimes, default=0):.1f}s; new player {self.new_player_s}s; "
            f"attacks {self.attack_window[1] - self.attack_window[0]:.1f}s"
        )


async def attack(port: int, pid: int, result: Scenario) -> None:
    peak = [rss_bytes(pid)]
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            peak.append(rss_bytes(pid))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    start = time.monotonic()
    one_shot = one_shot_attacks()
    truncated = truncated_attacks()

    async def one_shots() -> None:
        names = list(one_shot)
        closed = await asyncio.gather(*(send_expect_close(port, one_shot[n]) for n in names))
        result.closed.update(zip(names, closed, strict=True))
        await asyncio.gather(*(send_and_leave(port, data) for data in truncated.values()))

    async def stateful() -> None:
        result.closed.update(await stateful_attacks(port))

    async def slow() -> None:
        result.slowloris_lifetimes = await slowloris(port)

    async def flooding() -> None:
        await asyncio.sleep(1.0)
        result.flood_accepted, result.flood_refused = await flood(port)

    tasks: list[Awaitable[None]] = [one_shots(), stateful(), slow(), flooding()]
    await asyncio.gather(*tasks)
    # Everything once more, now that the server has been busy for a while.
    await asyncio.gather(*(send_expect_close(port, data) for data in one_shot_attacks().values()))
    result.attack_window = (start, time.monotonic())
    done.set()
    await sampler
    result.rss_peak = max(peak)


async def new_player_delay(url: str) -> float:
    start = time.monotonic()
    async with rtmp.connect(url.rsplit("/", 1)[0], timeout=5) as conn:
        player = await conn.play(url.rsplit("/", 1)[1])
        async for message in player:
            if message.type_id == 9 and message.payload[:1] in (b"\x17", b"\x27"):
                return time.monotonic() - start
    raise AssertionError("the stream ended before any video")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    tmp = tmp_path_factory.mktemp("hostile")
    config = tmp / "aiortmp.toml"
    config.write_text(CONFIG)
    result = Scenario()
    with run_server(tmp, "--config", str(config)) as server:
        url = server.url("live/stream")
        publisher = popen(ffmpeg_publish_args(url, duration_s=PUBLISH_S, gop=FPS, rate=FPS))
        try:
            time.sleep(2.0)
            watcher = subprocess.Popen(
                [sys.executable, "-c", WATCHER, url, str(WATCH_S)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            ffmpeg_start = time.monotonic()
            ffmpeg_player = popen(ffmpeg_play_args(url))
            time.sleep(3.0)
            result.rss_before = rss_bytes(server.proc.pid)
            asyncio.run(attack(server.port, server.proc.pid, result))
            time.sleep(1.0)
            result.rss_after = rss_bytes(server.proc.pid)
            result.new_player_s = asyncio.run(asyncio.wait_for(new_player_delay(url), 10))
            out, result.watcher_err = watcher.communicate(timeout=WATCH_S + 15)
            result.video_times = [
                float(line.split()[1]) for line in out.splitlines() if line[:2] == "V "
            ]
            result.publisher_alive = publisher.poll() is None
            result.log_while_live = server.log()
            ffmpeg_player.terminate()
            _, err = ffmpeg_player.communicate(timeout=15)
            result.ffmpeg_player_s = time.monotonic() - ffmpeg_start
            result.ffmpeg_player_rc = ffmpeg_player.returncode
            result.ffmpeg_player_frames = decoded_frames(err)
            result.server_alive = server.proc.poll() is None
        finally:
            if publisher.poll() is None:
                publisher.terminate()
            publisher.communicate(timeout=15)
        result.server_log = server.log()
    print(result.summary())
    yield result


# -- the properties -----------------------------------------------------------------------------


def test_the_player_never_stalled(scenario: Scenario) -> None:
    times = scenario.video_times
    assert len(times) >= FPS * (WATCH_S - 3), (len(times), scenario.watcher_err[-2000:])
    start, end = scenario.attack_window
    assert times[0] < start and times[-1] > end, "the player did not watch the whole attack"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    worst = max(gaps)
    assert worst <= MAX_STALL_S, f"video stalled for {worst:.2f}s"


def test_ffmpeg_player_decoded_throughout(scenario: Scenario) -> None:
    # FFmpeg exits with 255 on SIGTERM; what matters is that it decoded all along.
    expected = FPS * (scenario.ffmpeg_player_s - 2)
    assert scenario.ffmpeg_player_frames >= 0.85 * expected, scenario.ffmpeg_player_frames


def test_every_hostile_session_was_closed(scenario: Scenario) -> None:
    kept = [name for name, closed in scenario.closed.items() if not closed]
    assert kept == ["hijack, pipelined requests, createStream flood"], scenario.closed
    assert len(scenario.closed) == len(one_shot_attacks()) + 3


def test_slowloris_handshakes_time_out(scenario: Scenario) -> None:
    lifetimes = scenario.slowloris_lifetimes
    assert len(lifetimes) == SLOWLORIS
    # handshake_timeout_s = 5, checked while a byte trickles in every 0.5 s.
    assert max(lifetimes) < 8.0, max(lifetimes)
    assert min(lifetimes) >= 4.5, min(lifetimes)


def test_the_flood_is_capped_per_address(scenario: Scenario) -> None:
    assert scenario.flood_accepted + scenario.flood_refused == FLOOD
    assert scenario.flood_refused >= FLOOD - PER_IP - 10, scenario.flood_refused
    assert scenario.flood_accepted >= PER_IP // 2, scenario.flood_accepted
    assert "max_connections_per_ip" in scenario.server_log


def test_memory_stayed_bounded(scenario: Scenario) -> None:
    mib = 1024 * 1024
    grown = (scenario.rss_after - scenario.rss_before) / mib
    peak = (scenario.rss_peak - scenario.rss_before) / mib
    assert peak < 200, f"RSS peaked {peak:.0f} MiB above the {scenario.rss_before / mib:.0f} MiB"
    assert grown < 64, f"RSS grew by {grown:.0f} MiB"


def test_a_new_player_still_gets_video(scenario: Scenario) -> None:
    assert scenario.new_player_s is not None and scenario.new_player_s < 3.0


def test_publisher_and_server_were_never_interrupted(scenario: Scenario) -> None:
    assert scenario.server_alive
    assert scenario.publisher_alive
    log = scenario.log_while_live
    assert "publish live/stream (live) started" in log
    assert "publish live/stream stopped" not in log


_SESSION = re.compile(r"(WARNING|ERROR|CRITICAL)\s+\S+: \[(\d+) ")


def test_one_log_line_per_bad_session_and_no_internal_errors(scenario: Scenario) -> None:
    log = scenario.server_log
    for marker in ("Traceback", "Fatal error", "Exception in callback", "never retrieved"):
        assert marker not in log, log[log.index(marker) - 2000 : log.index(marker) + 2000]
    assert " ERROR " not in log and "CRITICAL" not in log
    per_session = Counter(m.group(2) for m in _SESSION.finditer(log))
    assert per_session, "no hostile session was logged"
    noisy = {sid: n for sid, n in per_session.items() if n > 1}
    assert not noisy, noisy
    assert log.count("protocol error, closing") >= len(one_shot_attacks())
    assert "handshake not completed within 5s" in log
