"""bench/drain.c, the benchmark's compiled players: its chunk reader and a real session.

The drain client is a measuring instrument: if it misread the chunk stream it would count
frames wrongly, stop acknowledging (and servers that wait for acknowledgements would stop
sending) or never see ``NetStream.Play.Start``. Its reader is fed chunk streams written by
aiortmp's :class:`~aiortmp.protocol.chunk.ChunkWriter` whole, one byte at a time, in odd
pieces and with trailing bytes; then it plays a real server (aiortmp, and nginx-rtmp when
installed) fed by the benchmark's publisher, with latency players.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.drain import drain_command, ensure_drain
from bench.media import MediaSpec, ensure_media
from bench.servers import start_server

from aiortmp.protocol import amf0
from aiortmp.protocol.chunk import ChunkReader, ChunkWriter
from aiortmp.protocol.control import (
    Acknowledgement,
    PingRequest,
    PingResponse,
    SetChunkSize,
    WindowAcknowledgementSize,
    decode_control,
    encode_control,
)
from aiortmp.protocol.messages import Message, MessageType

REPO = Path(__file__).resolve().parents[2]
WINDOW = 2000

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler"
)


@pytest.fixture(scope="module")
def drain() -> Path:
    return ensure_drain()


def _stream() -> tuple[bytes, list[list[int]], int, int]:
    """A server-to-client chunk stream: controls, a ping, media at two chunk sizes, a command.

    Returns:
        The bytes, the messages as drain prints them, coded video frames, coded audio frames.
    """
    writer = ChunkWriter()
    chunks: list[bytes] = []
    expected: list[list[int]] = []
    frames = {MessageType.VIDEO: 0, MessageType.AUDIO: 0}

    def send(message: Message) -> None:
        chunks.append(writer.write(message))
        p = message.payload
        expected.append(
            [
                message.type_id,
                message.timestamp_ms,
                len(p),
                message.chunk_stream_id,
                message.message_stream_id,
                p[0] if len(p) > 0 else -1,
                p[1] if len(p) > 1 else -1,
            ]
        )
        if message.type_id in frames and len(p) > 1 and p[1] == 1:
            frames[MessageType(message.type_id)] += 1

    def media(type_id: int, ts: int, size: int, packet_type: int = 1) -> Message:
        head = bytes([0x17 if type_id == MessageType.VIDEO else 0xAF, packet_type])
        body = bytes((i * 7 + size) & 0xFF for i in range(max(0, size - 2)))
        return Message(
            type_id=type_id,
            timestamp_ms=ts,
            message_stream_id=1,
            payload=(head + body)[:size],
            chunk_stream_id=6 if type_id == MessageType.VIDEO else 4,
        )

    send(encode_control(WindowAcknowledgementSize(window_bytes=WINDOW)))
    send(encode_control(PingRequest(timestamp_ms=12345)))
    send(media(MessageType.VIDEO, 0, 40, packet_type=0))  # a sequence header: no frame
    ts = 0
    # Sizes around the chunk size (128, then 300) and a few large ones; regular deltas
    # make the writer use fmt 2 and fmt 3 headers, irregular ones fmt 1.
    for i, size in enumerate([1, 2, 127, 128, 129, 256, 257, 5000, 33, 33, 33, 900]):
        ts += 33 if i % 4 else 40
        send(media(MessageType.VIDEO, ts, size))
        send(media(MessageType.AUDIO, ts + 5, 10 + i))
    send(encode_control(SetChunkSize(chunk_size=300)))
    writer.set_chunk_size(300)
    for size in [299, 300, 301, 600, 601, 20000]:
        ts += 33
        send(media(MessageType.VIDEO, ts, size))
    # Timestamps past 0xFFFFFF: Extended Timestamps, on continuation chunks too.
    for size in [100, 700]:
        ts = 0x1000000 + ts
        send(media(MessageType.VIDEO, ts, size))
    status = amf0.encode("onStatus", 0.0, None, {"level": "status", "code": "NetStream.Play.Start"})
    send(
        Message(
            type_id=MessageType.COMMAND_AMF0,
            timestamp_ms=0,
            message_stream_id=1,
            payload=status,
            chunk_stream_id=5,
        )
    )
    return b"".join(chunks), expected, frames[MessageType.VIDEO], frames[MessageType.AUDIO]


def _parse(drain: Path, path: Path, split: int) -> tuple[list[list[int]], dict[str, Any]]:
    out = subprocess.run(
        [str(drain), "--parse-file", str(path), "--split", str(split)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = out.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert out.returncode == (1 if summary["error"] else 0)
    return [json.loads(line) for line in lines[:-1]], summary


def _sent(hex_bytes: str) -> Iterator[Any]:
    reader = ChunkReader()
    reader.receive_data(bytes.fromhex(hex_bytes))
    while (message := reader.next_message()) is not None:
        yield decode_control(message.type_id, message.payload)


@pytest.mark.parametrize("split", [1, 7, 128, 1 << 20])
def test_reader_follows_every_chunk_however_the_bytes_come(
    drain: Path, tmp_path: Path, split: int
) -> None:
    data, expected, video, audio = _stream()
    path = tmp_path / "stream.bin"
    path.write_bytes(data)
    messages, summary = _parse(drain, path, split)
    assert messages == expected
    assert summary["error"] is False
    assert summary["chunk_size"] == 300
    assert summary["ack_window"] == WINDOW
    assert (summary["video_frames"], summary["audio_frames"]) == (video, audio)
    assert summary["pending_header_bytes"] == 0
    # What the player sent back: the Ping Response, then an Acknowledgement each time a
    # window of bytes had arrived (checked between reads, so up to one read late).
    replies = list(_sent(summary["sent"]))
    assert replies[0] == PingResponse(timestamp_ms=12345)
    acks = [r.sequence_number for r in replies[1:]]
    assert all(isinstance(r, Acknowledgement) for r in replies[1:])
    assert acks and acks[0] >= WINDOW
    assert all(b - a >= WINDOW for a, b in zip(acks, acks[1:], strict=False))
    assert len(data) - acks[-1] < WINDOW + split


def test_reader_waits_for_the_rest_of_a_message(drain: Path, tmp_path: Path) -> None:
    data, expected, _, _ = _stream()
    path = tmp_path / "stream.bin"
    path.write_bytes(data[:-5])  # the last message is incomplete: not reported
    messages, summary = _parse(drain, path, 3)
    assert messages == expected[:-1]
    assert summary["error"] is False


def test_reader_rejects_a_chunk_stream_that_starts_with_fmt_3(drain: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(b"\xc6" + bytes(200))  # RTMP 1.0 §5.3.1.2.1: Type 0 must come first
    messages, summary = _parse(drain, path, 1)
    assert messages == []
    assert summary["error"] is True


# -- a real session ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = MediaSpec(
        width=160, height=96, fps=30, video_kbps=100, audio_kbps=32, audio_channels=1, duration_s=3
    )
    return ensure_media(tmp_path_factory.mktemp("media") / "small.flv", spec)


class _Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *argv: str) -> _Proc:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(REPO),
            limit=1 << 24,
        )
        return cls(proc)

    async def read(self, timeout_s: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        assert line, "the process exited"
        result: dict[str, Any] = json.loads(line)
        return result

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read()

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


@pytest.mark.parametrize(
    "kind",
    [
        "aiortmp",
        pytest.param(
            "nginx",
            marks=[
                pytest.mark.interop,
                pytest.mark.skipif(
                    not Path("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists()
                    and not Path("/usr/share/nginx/modules/ngx_rtmp_module.so").exists(),
                    reason="nginx-rtmp not installed",
                ),
            ],
        ),
    ],
)
async def test_players_join_count_and_time_frames(
    drain: Path, small_media: Path, tmp_path: Path, kind: str
) -> None:
    server = start_server(kind, tmp_path, core=0)
    procs: list[_Proc] = []
    try:
        url = f"rtmp://127.0.0.1:{server.port}/live"
        pub = await _Proc.start(
            sys.executable,
            "-m",
            "bench.loadgen",
            "publish",
            "--url",
            url,
            "--media",
            str(small_media),
            "--sent-times",
        )
        procs.append(pub)
        await pub.read()
        players = await _Proc.start(
            *drain_command(
                port=server.port,
                count=20,
                rate=200,
                latency_first=1,
                latency_last=1,
                tick_ms=100,
                src_addrs=2,
                timeout_s=10,
            )
        )
        procs.append(players)
        ready = await players.read()
        assert (ready["playing"], ready["failed"], ready["latency_playing"]) == (20, 0, 2)
        await asyncio.sleep(2.2)  # nginx-rtmp starts a player at the next keyframe (2 s)
        q0, p0 = await players.ask("snap"), await pub.ask("snap")
        await asyncio.sleep(2.0)
        q1, p1 = await players.ask("snap"), await pub.ask("snap")
        sent = await pub.ask("sent-at")
        published = (p1["payload_bytes"][0] - p0["payload_bytes"][0]) / (p1["t"] - p0["t"])
        for a, b in zip(q0["bytes"], q1["bytes"], strict=True):
            # Generous: the window is short and reads come in 100 ms rounds.
            assert (b - a) / (q1["t"] - q0["t"]) > 0.7 * published
        assert q1["closed"] == 0
        written = dict(zip(sent["timestamp_ms"], sent["t"], strict=True))
        for samples in q1["latency"]:
            assert len(samples) >= 30  # 2 s of 30 fps video
            assert all(int(ts) in written for ts, _ in samples)
            delays = sorted(t - written[int(ts)] for ts, t in samples)
            assert 0 < delays[len(delays) // 2] < 1.0
        stopped = await players.ask("stop")
        assert stopped["event"] == "stopped"
        await pub.ask("stop")
    finally:
        for proc in procs:
            await proc.close()
        server.stop()
