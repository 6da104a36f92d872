"""The load generator: publishers (with a latency player) and players, one process each.

Run by :mod:`bench.run` pinned to the core the server does not use::

    python -m bench.loadgen publish --url rtmp://127.0.0.1:1935/live --count 1 --latency
    python -m bench.loadgen play --url rtmp://127.0.0.1:1935/live --count 1000 --rate 200

Each process reads one command per line on stdin (``snap``, ``stop``) and answers one JSON
object per line on stdout; it announces ``{"event": "ready", ...}`` once set up.

Cheapness, because the generator must not be the bottleneck:

- Every peer drives our sans-I/O :class:`~aiortmp.protocol.session.ClientSession` through
  handshake, ``connect``, ``createStream`` and ``publish``/``play``. From then on:
- a byte-counting player only counts: its :class:`asyncio.BufferedProtocol` reads into one
  receive buffer shared by all players (nothing is kept), sends an Acknowledgement every
  window as real players do, and sets ``SO_RCVLOWAT`` so the kernel wakes it once per
  64 KiB instead of once per server write;
- a publisher writes pre-serialized chunks (:mod:`bench.media`), every message due by its
  timestamp joined into one write, only the timestamp patched when the file loops.

The latency player parses every message with the ``ClientSession`` and lives in the
publisher's process: the publisher records ``time.monotonic()`` when it writes each video
frame, the latency player looks the frame's timestamp up when the message is complete.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import socket
import struct
import sys
import termios
import time
from pathlib import Path
from typing import Any, cast

from aiortmp.client import parse_url
from aiortmp.protocol.chunk import serialize_message
from aiortmp.protocol.control import Acknowledgement, WindowAcknowledgementSize, encode_control
from aiortmp.protocol.events import (
    CommandResult,
    ControlReceived,
    HandshakeComplete,
    MediaReceived,
    StatusReceived,
)
from aiortmp.protocol.messages import MessageType
from aiortmp.protocol.session import ClientSession

from .media import CHUNK_SIZE, Media, load_media, with_timestamp

__all__ = ["Peer", "main"]

#: One receive buffer for every byte-counting player: the data is thrown away, and the loop
#: runs one protocol callback at a time.
_RX = bytearray(256 * 1024)
_RXV = memoryview(_RX)
_RCVLOWAT = 64 * 1024
#: SO_RCVBUF set with SO_RCVLOWAT (the kernel doubles it): the window of a default socket.
_RCVBUF = 2 * 1024 * 1024


def _ack_bytes(received: int) -> bytes:
    """An Acknowledgement (RTMP 1.0 §5.4.3) as one fmt 0 chunk on csid 2."""
    message = encode_control(Acknowledgement(sequence_number=received & 0xFFFFFFFF))
    return serialize_message(message, CHUNK_SIZE)


def _outq(transport: asyncio.BaseTransport) -> int:
    """Bytes the kernel has not yet sent (or not had acknowledged) on this socket."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", buf)[0])


class Peer(asyncio.BufferedProtocol):
    """One RTMP client connection set up by a ``ClientSession``.

    Args:
        url: ``rtmp://host:port/app``.
        name: the stream to publish or play.
        action: ``"publish"`` or ``"play"``.
        parse: keep parsing messages after setup (latency / frame-counting players);
            otherwise only count bytes.
        rcvlowat: ``SO_RCVLOWAT`` once playing (bytes; 0 leaves the default of 1).
    """

    def __init__(
        self, url: str, name: str, action: str, *, parse: bool = False, rcvlowat: int = 0
    ) -> None:
        parsed = parse_url(url)
        self.app = parsed.app
        self.tc_url = parsed.tc_url
        self.name = name
        self.action = action
        self.parse = parse
        self.rcvlowat = rcvlowat
        self.session = ClientSession()
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.counting = False
        self.closed = False
        self.bytes_received = 0
        self.ack_window = 0
        self._last_ack = 0
        self.stream_id = 0
        self._connect_tid = -1.0
        self._create_tid = -1.0
        self.video_frames = 0
        self.audio_frames = 0
        self.video_bytes = 0

    # -- asyncio ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.session.initiate()
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RXV

    def buffer_updated(self, nbytes: int) -> None:
        self.bytes_received += nbytes
        if self.counting:
            # The hot path of the generator: count, and acknowledge once per window.
            if self.ack_window and self.bytes_received - self._last_ack >= self.ack_window:
                self._last_ack = self.bytes_received
                assert self.transport is not None
                self.transport.write(_ack_bytes(self.bytes_received))
            return
        self._feed(bytes(_RXV[:nbytes]))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost during setup: {exc}"))

    # -- the session ------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _feed(self, data: bytes) -> None:
        session = self.session
        session.receive_data(data)
        while (event := session.next_event()) is not None:
            if isinstance(event, MediaReceived):
                self.on_media(event)
            elif isinstance(event, HandshakeComplete):
                self._connect_tid = session.connect(self.app, self.tc_url)
            elif isinstance(event, CommandResult):
                self._on_result(event)
            elif isinstance(event, StatusReceived):
                self._on_status(event)
            elif isinstance(event, ControlReceived):
                if isinstance(event.control, WindowAcknowledgementSize):
                    self.ack_window = event.control.window_bytes
        self._flush()

    def _on_result(self, result: CommandResult) -> None:
        if not result.success:
            self._fail(f"{self.action} setup refused: {result.arguments!r}")
        elif result.transaction_id == self._connect_tid:
            if self.action == "publish":
                self.session.release_stream(self.name)
            self._create_tid = self.session.create_stream()
        elif result.transaction_id == self._create_tid:
            self.stream_id = int(result.arguments[0])
            if self.action == "publish":
                self.session.publish(self.stream_id, self.name)
            else:
                self.session.play(self.stream_id, self.name)

    def _on_status(self, status: StatusReceived) -> None:
        if status.level == "error":
            self._fail(f"{status.code}: {status.description}")
            return
        if status.code not in ("NetStream.Publish.Start", "NetStream.Play.Start"):
            return
        if self.ready.done():
            return
        if self.action == "play":
            self.counting = not self.parse
            if self.rcvlowat and self.transport is not None:
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    # Linux sizes the receive buffer (and so the window) to about twice
                    # SO_RCVLOWAT and stops autotuning it: a window that small makes the
                    # server's writes partial. Fix a large buffer first.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, self.rcvlowat)
        self.ready.set_result(None)

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    def on_media(self, event: MediaReceived) -> None:
        """A parsed audio/video message (parsing players only): count frames."""
        payload = event.payload
        if len(payload) > 1 and payload[1] == 1:
            if event.type_id == MessageType.VIDEO:
                self.video_frames += 1
                self.video_bytes += len(payload)
            elif event.type_id == MessageType.AUDIO:
                self.audio_frames += 1

    def close(self) -> None:
        """Abort the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class LatencyPlayer(Peer):
    """A parsing player that measures publish-to-play delay of each video frame."""

    def __init__(self, url: str, name: str, sent_at: dict[int, float]) -> None:
        super().__init__(url, name, "play", parse=True)
        self.sent_at = sent_at
        self.samples_ms: list[float] = []
        self.missing = 0

    def on_media(self, event: MediaReceived) -> None:
        super().on_media(event)
        payload = event.payload
        if event.type_id == MessageType.VIDEO and len(payload) > 1 and payload[1] == 1:
            sent = self.sent_at.get(event.timestamp_ms)
            if sent is None:
                self.missing += 1
            else:
                self.samples_ms.append((time.monotonic() - sent) * 1000.0)


class Publisher(Peer):
    """A publisher that sends the file's pre-serialized chunks in real time, looping."""

    def __init__(self, url: str, name: str, media_path: Path) -> None:
        super().__init__(url, name, "publish")
        self.media_path = media_path
        self.media: Media | None = None
        self._index = 0
        self._loop_n = 0
        self._t0 = 0.0
        self.payload_bytes = 0
        self.wire_bytes = 0
        self.video_sent = 0
        self.audio_sent = 0
        self.max_lag_s = 0.0
        #: video frame timestamp -> monotonic send time (only if latency is measured)
        self.sent_at: dict[int, float] | None = None
        self.stopped = False

    def start(self, media: Media, t0: float) -> None:
        """Start sending at monotonic time ``t0`` (the file's timestamp 0)."""
        self.media = media
        self._t0 = t0

    def pump(self, now: float) -> float:
        """Write every message due by ``now`` in one write; return when the next is due."""
        media = self.media
        assert media is not None and self.transport is not None
        messages = media.messages
        count = len(messages)
        period = media.period_ms
        out: list[bytes] = []
        frames: list[int] = []
        while True:
            m = messages[self._index]
            ts = self._loop_n * period + m.timestamp_ms
            due = self._t0 + ts / 1000.0
            if due > now:
                break
            if now - due > self.max_lag_s:
                self.max_lag_s = now - due
            if self._loop_n == 0:
                data = m.wire
            elif m.is_header:
                data = b""  # metadata and sequence headers go once, not on every loop
            else:
                data = with_timestamp(m.wire, ts)
            if data:
                out.append(data)
                self.payload_bytes += m.payload_bytes
                self.wire_bytes += len(data)
                if m.is_frame:
                    if m.type_id == MessageType.VIDEO:
                        self.video_sent += 1
                        frames.append(ts)
                    else:
                        self.audio_sent += 1
            self._index += 1
            if self._index == count:
                self._index = 0
                self._loop_n += 1
        if out:
            sent_at = self.sent_at
            if sent_at is not None:
                t = time.monotonic()
                for ts in frames:
                    sent_at[ts] = t
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        return due

    def stop(self) -> None:
        """Unpublish (FCUnpublish + deleteStream) and close."""
        self.stopped = True
        if self.transport is None or self.transport.is_closing():
            return
        self.session.fc_unpublish(self.name)
        self.session.delete_stream(self.stream_id)
        self._flush()
        self.transport.close()


# -- processes ----------------------------------------------------------------------------


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _open(peer: Peer, host: str, port: int, timeout_s: float) -> Peer:
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.create_connection(lambda: peer, host, port), timeout_s)
    await asyncio.wait_for(peer.ready, timeout_s)
    return peer


async def run_publishers(args: argparse.Namespace) -> None:
    """``publish``: ``--count`` publishers on ``<prefix>0``.., optionally a latency player."""
    parsed = parse_url(args.url)
    names = [f"{args.prefix}{i}" for i in range(args.count)]
    pubs = [Publisher(args.url, name, Path(args.media)) for name in names]
    for pub in pubs:
        await _open(pub, parsed.host, parsed.port, 10.0)
    media_by_msid: dict[int, Media] = {}
    for pub in pubs:
        if pub.stream_id not in media_by_msid:
            media_by_msid[pub.stream_id] = load_media(
                Path(args.media), message_stream_id=pub.stream_id
            )
    # Latency players, in the order they joined: the first before any player, a second
    # one after them on "add-latency" (servers serve players in join order or in reverse).
    latency: list[LatencyPlayer] = []
    if args.latency or args.sent_times:
        pubs[0].sent_at = {}
    now = time.monotonic()
    # Stagger the publishers over one second so their keyframes do not coincide.
    for i, pub in enumerate(pubs):
        pub.start(media_by_msid[pub.stream_id], now + 0.05 + i / max(1, len(pubs)))

    async def pace() -> None:
        while True:
            now = time.monotonic()
            next_due = now + 0.05
            for pub in pubs:
                if not pub.stopped and not pub.closed:
                    next_due = min(next_due, pub.pump(now))
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))

    pacer = asyncio.create_task(pace())

    async def add_latency_player() -> None:
        sent_at = pubs[0].sent_at
        assert sent_at is not None
        player = LatencyPlayer(args.url, names[0], sent_at)
        await _open(player, parsed.host, parsed.port, 10.0)
        latency.append(player)

    if args.latency:
        await asyncio.sleep(0.5)
        await add_latency_player()
    _emit({"event": "ready", "publishers": len(pubs), "t": time.monotonic()})

    def snap() -> dict[str, Any]:
        lat = [p.samples_ms for p in latency]
        missing = sum(p.missing for p in latency)
        for p in latency:
            p.samples_ms = []
            p.missing = 0
        # Keep the map small: frames older than 30 s will not be looked up.
        sent_at = pubs[0].sent_at
        if sent_at is not None and len(sent_at) > 3000:
            cut = sorted(sent_at)[-1500]
            for k in [k for k in sent_at if k < cut]:
                del sent_at[k]
        return {
            "t": time.monotonic(),
            "payload_bytes": [p.payload_bytes for p in pubs],
            "wire_bytes": [p.wire_bytes for p in pubs],
            "video_sent": [p.video_sent for p in pubs],
            "audio_sent": [p.audio_sent for p in pubs],
            "max_lag_ms": max(p.max_lag_s for p in pubs) * 1000.0,
            "backlog_bytes": [
                (p.transport.get_write_buffer_size() + _outq(p.transport)) if p.transport else 0
                for p in pubs
            ],
            "closed": sum(p.closed for p in pubs),
            "latency_ms": lat,
            "latency_missing": missing,
            "latency_closed": sum(p.closed for p in latency),
        }

    reader = await _commands()
    while line := await reader.readline():
        cmd = line.decode().strip()
        if cmd == "snap":
            _emit(snap())
        elif cmd == "add-latency":
            await add_latency_player()
            _emit({"ok": True, "latency_players": len(latency)})
        elif cmd == "sent-at":
            sent = pubs[0].sent_at or {}
            _emit({"timestamp_ms": list(sent), "t": list(sent.values())})
        elif cmd == "reset-lag":
            for pub in pubs:
                pub.max_lag_s = 0.0
            _emit({"ok": True})
        elif cmd == "stop":
            pacer.cancel()
            for pub in pubs:
                pub.stop()
            out = snap()
            out["event"] = "stopped"
            _emit(out)
            break
    pacer.cancel()
    for player in latency:
        player.close()
    await asyncio.sleep(0.2)


async def run_players(args: argparse.Namespace) -> None:
    """``play``: ``--count`` players over ``--streams`` streams, ``--rate`` connections/s."""
    parsed = parse_url(args.url)
    players: list[Peer] = []
    failed: list[str] = []
    tasks: list[asyncio.Task[Peer]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(args.count):
        name = f"{args.prefix}{i % args.streams}"
        peer = Peer(args.url, name, "play", parse=args.parse, rcvlowat=args.rcvlowat)
        players.append(peer)
        tasks.append(asyncio.create_task(_open(peer, parsed.host, parsed.port, 30.0)))
        delay = start + (i + 1) / args.rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            failed.append(f"{type(result).__name__}: {result}")
    _emit(
        {
            "event": "ready",
            "playing": len(players) - len(failed),
            "failed": len(failed),
            "errors": sorted(set(failed))[:5],
            "t": time.monotonic(),
        }
    )

    def snap() -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": time.monotonic(),
            "bytes": [p.bytes_received for p in players],
            "closed": sum(p.closed for p in players),
        }
        if args.parse:
            out["video_frames"] = [p.video_frames for p in players]
            out["audio_frames"] = [p.audio_frames for p in players]
            out["streams"] = [p.name for p in players]
        return out

    reader = await _commands()
    while line := await reader.readline():
        cmd = line.decode().strip()
        if cmd == "snap":
            _emit(snap())
        elif cmd == "stop":
            out = snap()
            out["event"] = "stopped"
            _emit(out)
            break
    for p in players:
        p.close()
    await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m bench.loadgen publish|play ...``."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    sub = parser.add_subparsers(dest="role", required=True)
    pub = sub.add_parser("publish")
    pub.add_argument("--url", required=True, help="rtmp://host:port/app")
    pub.add_argument("--media", required=True)
    pub.add_argument("--count", type=int, default=1)
    pub.add_argument("--prefix", default="s")
    pub.add_argument("--latency", action="store_true", help="add a latency player on <prefix>0")
    pub.add_argument(
        "--sent-times",
        action="store_true",
        help="record when each video frame of <prefix>0 was written (the sent-at command)",
    )
    play = sub.add_parser("play")
    play.add_argument("--url", required=True)
    play.add_argument("--count", type=int, required=True)
    play.add_argument("--streams", type=int, default=1, help="players play <prefix>(i % streams)")
    play.add_argument("--prefix", default="s")
    play.add_argument("--rate", type=float, default=200.0, help="connections per second")
    play.add_argument("--rcvlowat", type=int, default=_RCVLOWAT, help="bytes; 0: off")
    play.add_argument("--parse", action="store_true", help="parse messages, count frames")
    args = parser.parse_args(argv)
    coro = run_publishers(args) if args.role == "publish" else run_players(args)
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
