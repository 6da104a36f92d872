"""``make bench``, HLS: LL-HLS latency and the HLS output's CPU cost, beside RTMP delivery.

::

    python -m bench.run --hls-only                   # this case alone
    python -m bench.hls load --rtmp ... --http ...   # its load process (run by the case)

One aiortmp server with its HTTP surface, pinned to core 0; one load process on core 1
publishes ``--hls-streams`` copies of the benchmark stream (720p30 H.264 + AAC, 2.66 Mbit/s,
a keyframe every 2 s) in real time (:class:`bench.loadgen.Publisher`) and then, phase by
phase, adds clients. Each phase warms up, then the server's CPU time is read over a window:

1. ``publish``: the streams alone (no HLS output runs);
2. ``hls``: one LL-HLS *follower* per stream, as hls.js plays: a blocking playlist reload
   for the next part (``_HLS_msn``/``_HLS_part``, delta updates), then a GET of each new
   part. Its latency is, per video frame, the time the follower has the part holding the
   frame minus the time the publisher wrote the frame (one clock, one process). An RTMP
   latency player on stream 0 measures RTMP delivery the same way;
3. ``hls-viewers``: ``--hls-viewers`` more followers on stream 0;
4. ``rtmp-players``: those followers stop; as many RTMP players play stream 0.

The HLS output's cost per stream is (2 − 1) / streams; per 1000 viewers, (3 − 2) and
(4 − 2) scaled to 1000 (measured with fewer, since one Python core cannot make thousands
of LL-HLS requests a second for the generator: the scale is linear as long as the server's
core is not saturated, which the report says).

The followers speak HTTP/1.1 over keep-alive connections with asyncio streams (a GET is a
write, a read of the head, a read of Content-Length bytes), far cheaper than a full client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["append_report", "main", "report_lines", "run_case", "summary"]

SERVER_CORE = 0
LOADGEN_CORE = 1
_TOML = """\
[limits]
max_connections = 100000
max_connections_per_ip = 100000

[hls]
segment_target_s = 1.0
part_target_s = 0.2
"""
_PART = re.compile(rb'#EXT-X-PART:[^\n]*URI="([^"?]*-(\d+)\.(\d+)\.m4s)')
_HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"?]*-(\d+)\.(\d+)\.m4s')


# -- the load process ------------------------------------------------------------------------


class HTTPClient:
    """One keep-alive HTTP/1.1 connection: ``GET`` after ``GET``, Content-Length bodies."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        """The status and body of ``GET path``."""
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        start = head.lower().find(b"\r\ncontent-length:")
        length = int(head[start + 17 : head.index(b"\r\n", start + 2)]) if start >= 0 else 0
        body = await self._reader.readexactly(length)
        if b"connection: close" in head.lower():
            self.close()
        return status, body

    def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def video_dts_ms(part: bytes) -> list[int]:
    """Decode times (ms) of the video samples (track 1) of a ``moof`` + ``mdat`` part
    (ISO/IEC 14496-12 §8.8: ``tfhd``, ``tfdt`` version 1, ``trun`` with durations)."""
    out: list[int] = []
    offset = 0
    while offset + 8 <= len(part):
        size, kind = struct.unpack_from(">I4s", part, offset)
        if kind == b"moof":
            inner = offset + 8
            while inner + 8 <= offset + size:
                box_size, box = struct.unpack_from(">I4s", part, inner)
                if box == b"traf":
                    out.extend(_traf_video(part, inner + 8, inner + box_size))
                inner += box_size
        offset += max(size, 8)
    return out


def _traf_video(data: bytes, start: int, end: int) -> list[int]:
    track = base = None
    durations: list[int] = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        if kind == b"tfhd":
            track = struct.unpack_from(">I", data, offset + 12)[0]
        elif kind == b"tfdt":
            base = struct.unpack_from(">Q", data, offset + 12)[0]
        elif kind == b"trun":
            flags = struct.unpack_from(">I", data, offset + 8)[0] & 0xFFFFFF
            count = struct.unpack_from(">I", data, offset + 12)[0]
            cursor = offset + 16 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
            fields = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
            for _ in range(count):
                durations.append(struct.unpack_from(">I", data, cursor)[0] if flags & 0x100 else 0)
                cursor += fields
        offset += size
    if track != 1 or base is None:
        return []
    out = []
    for duration in durations:
        out.append(base // 90)  # 90 kHz video timescale
        base += duration
    return out


class Follower:
    """An LL-HLS client: blocking reload for the next part, then the new parts.

    Args:
        client: its connection.
        stream: the stream name.
        sent_at: video timestamp → time the publisher wrote it (latency), or None.
    """

    def __init__(self, client: HTTPClient, stream: str, sent_at: dict[int, float] | None) -> None:
        self.client = client
        self.stream = stream
        self.sent_at = sent_at
        self.requests = 0
        self.bytes = 0
        self.errors = 0
        self.latency_ms: list[float] = []
        self.missing = 0
        self.task: asyncio.Task[None] | None = None

    async def _get(self, path: str) -> tuple[int, bytes]:
        status, body = await self.client.get(f"/live/{self.stream}/{path}")
        self.requests += 1
        self.bytes += len(body)
        if status != 200:
            self.errors += 1
        return status, body

    async def run(self) -> None:
        """Follow until cancelled."""
        last: tuple[int, int] | None = None
        hint = None
        while True:
            if hint is None:
                status, body = await self._get("v0.m3u8")
            else:
                status, body = await self._get(
                    f"v0.m3u8?_HLS_msn={hint[0]}&_HLS_part={hint[1]}&_HLS_skip=YES"
                )
            if status != 200:
                hint = None
                await asyncio.sleep(0.2)
                continue
            wanted = hint
            match = _HINT.search(body)
            hint = (int(match.group(1)), int(match.group(2))) if match else None
            if wanted is None:
                last = None if hint is None else (hint[0], hint[1] - 1)
                continue  # start at the live edge
            for uri, msn, index in _PART.findall(body):
                key = (int(msn), int(index))
                if key < wanted or (last is not None and key <= last):
                    continue
                status, data = await self._get(uri.decode())
                last = key
                if status == 200 and self.sent_at is not None:
                    now = time.monotonic()
                    for dts in video_dts_ms(data):
                        sent = self.sent_at.get(dts)
                        if sent is None:
                            self.missing += 1
                        else:
                            self.latency_ms.append((now - sent) * 1000)


async def _load(args: argparse.Namespace) -> None:
    from aiortmp.client import parse_url

    from .loadgen import LatencyPlayer, Peer, Publisher, _commands, _emit, _open
    from .media import load_media

    rtmp = parse_url(args.rtmp)
    http_host, _, http_port = args.http.rpartition(":")
    names = [f"s{i}" for i in range(args.streams)]
    pubs = [Publisher(args.rtmp, name, Path(args.media)) for name in names]
    for pub in pubs:
        await _open(pub, rtmp.host, rtmp.port, 10.0)
        pub.sent_at = {}
    media = {p.stream_id: load_media(Path(args.media), message_stream_id=p.stream_id) for p in pubs}
    now = time.monotonic()
    for i, pub in enumerate(pubs):
        pub.start(media[pub.stream_id], now + 0.05 + i / len(pubs))

    async def pace() -> None:
        while True:
            now = time.monotonic()
            due = now + 0.05
            for pub in pubs:
                due = min(due, pub.pump(now))
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    pacer = asyncio.create_task(pace())
    followers: list[Follower] = []
    viewers: list[Follower] = []
    players: list[Peer] = []
    latency: list[LatencyPlayer] = []

    def start_followers(stream_names: list[str], count: int, measure: bool) -> list[Follower]:
        out = []
        for i in range(count):
            name = stream_names[i % len(stream_names)]
            sent_at = pubs[names.index(name)].sent_at if measure else None
            follower = Follower(HTTPClient(http_host, int(http_port)), name, sent_at)
            follower.task = asyncio.create_task(follower.run())
            out.append(follower)
        return out

    def snap() -> dict[str, Any]:
        everyone = followers + viewers
        out = {
            "t": time.monotonic(),
            "hls_requests": sum(f.requests for f in everyone),
            "hls_bytes": sum(f.bytes for f in everyone),
            "hls_errors": sum(f.errors for f in everyone),
            "hls_latency_ms": [x for f in followers for x in f.latency_ms],
            "hls_latency_missing": sum(f.missing for f in followers),
            "rtmp_latency_ms": [x for p in latency for x in p.samples_ms],
            "rtmp_bytes": sum(p.bytes_received for p in players),
            "rtmp_closed": sum(p.closed for p in players),
            "publisher_max_lag_ms": max(p.max_lag_s for p in pubs) * 1000,
        }
        for f in followers:
            f.latency_ms, f.missing = [], 0
        for p in latency:
            p.samples_ms = []
        for pub in pubs:  # keep the maps small
            sent_at = pub.sent_at
            if sent_at is not None and len(sent_at) > 3000:
                for key in sorted(sent_at)[:-1500]:
                    del sent_at[key]
        return out

    _emit({"event": "ready", "publishers": len(pubs)})
    reader = await _commands()
    while line := await reader.readline():
        command = line.decode().strip()
        if command == "hls":
            followers = start_followers(names, len(names), measure=True)
            player = LatencyPlayer(args.rtmp, names[0], pubs[0].sent_at or {})
            await _open(player, rtmp.host, rtmp.port, 10.0)
            latency.append(player)
            _emit({"ok": True})
        elif command == "hls-viewers":
            viewers = start_followers(names[:1], args.viewers, measure=False)
            _emit({"ok": True})
        elif command == "rtmp-players":
            for viewer in viewers:
                assert viewer.task is not None
                viewer.task.cancel()
                viewer.client.close()
            viewers = []
            for _ in range(args.viewers):
                peer = Peer(args.rtmp, names[0], "play")
                players.append(await _open(peer, rtmp.host, rtmp.port, 10.0))
            _emit({"ok": True})
        elif command == "snap":
            _emit(snap())
        elif command == "stop":
            break
    pacer.cancel()
    for follower in followers + viewers:
        if follower.task is not None:
            follower.task.cancel()
    for peer in [*players, *latency, *pubs]:
        peer.close()
    await asyncio.sleep(0.2)


# -- the case (orchestrator) ---------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def run_case(
    *, streams: int, viewers: int, warmup_s: float, window_s: float, nice: int = 0
) -> dict[str, Any]:
    """Run the four phases; returns the ``"scenario": "hls"`` result.

    Args:
        streams: published streams (one LL-HLS follower each in phase 2).
        viewers: LL-HLS followers (phase 3), then RTMP players (phase 4), on stream 0.
        warmup_s: seconds before each window.
        window_s: the measurement window of each phase, seconds.
        nice: niceness of the server and the load process.
    """
    from .media import ensure_media
    from .servers import Server, _free_port, _wait_listening, core_times, proc_cpu_s, proc_rss_kb

    media = ensure_media()
    with tempfile.TemporaryDirectory(prefix="bench-hls-") as tmp:
        workdir = Path(tmp)
        port, http_port = _free_port(), _free_port()
        (workdir / "aiortmp.toml").write_text(_TOML)
        log_path = workdir / "aiortmp.log"
        prefix = ["nice", "-n", str(nice)] if nice else []
        command = [
            str(Path(sys.executable).parent / "aiortmp"),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--http-listen",
            f"127.0.0.1:{http_port}",
            "--config",
            str(workdir / "aiortmp.toml"),
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [*prefix, "taskset", "-c", str(SERVER_CORE), *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = Server(kind="aiortmp", proc=proc, port=port, log_path=log_path, command=command)
        load: asyncio.subprocess.Process | None = None
        try:
            _wait_listening(port, proc)
            _wait_listening(http_port, proc)
            load = await asyncio.create_subprocess_exec(
                *prefix,
                "taskset",
                "-c",
                str(LOADGEN_CORE),
                sys.executable,
                "-m",
                "bench.hls",
                "load",
                "--rtmp",
                f"rtmp://127.0.0.1:{port}/live",
                "--http",
                f"127.0.0.1:{http_port}",
                "--media",
                str(media),
                "--streams",
                str(streams),
                "--viewers",
                str(viewers),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=str(Path(__file__).resolve().parent.parent),
                limit=64 * 1024 * 1024,
            )

            async def ask(command: str | None) -> dict[str, Any]:
                assert load is not None and load.stdin is not None and load.stdout is not None
                if command is not None:
                    load.stdin.write(command.encode() + b"\n")
                    await load.stdin.drain()
                line = await asyncio.wait_for(load.stdout.readline(), 120)
                if not line:
                    raise RuntimeError(f"the HLS load process exited with {await load.wait()}")
                answer: dict[str, Any] = json.loads(line)
                return answer

            await ask(None)  # publishing
            phases: dict[str, dict[str, Any]] = {}
            for phase in ("publish", "hls", "hls-viewers", "rtmp-players"):
                if phase != "publish":
                    await ask(phase)
                await asyncio.sleep(warmup_s)
                await ask("snap")  # resets the latency samples
                c0, b0, t0 = proc_cpu_s(proc.pid), core_times(LOADGEN_CORE), time.monotonic()
                s0 = await ask("snap")
                await asyncio.sleep(window_s)
                c1, b1, t1 = proc_cpu_s(proc.pid), core_times(LOADGEN_CORE), time.monotonic()
                s1 = await ask("snap")
                dt = t1 - t0
                hls_lat = s1["hls_latency_ms"]
                rtmp_lat = s1["rtmp_latency_ms"]
                phases[phase] = {
                    "server_cores": (c1 - c0) / dt,
                    "loadgen_core_busy": (b1.busy - b0.busy) / max(1, b1.total - b0.total),
                    "hls_requests_per_s": (s1["hls_requests"] - s0["hls_requests"]) / dt,
                    "hls_bps": (s1["hls_bytes"] - s0["hls_bytes"]) * 8 / dt,
                    "hls_errors": s1["hls_errors"] - s0["hls_errors"],
                    "hls_latency_ms": {
                        "count": len(hls_lat),
                        "missing": s1["hls_latency_missing"],
                        "p50": _percentile(hls_lat, 50),
                        "p99": _percentile(hls_lat, 99),
                        "mean": statistics.fmean(hls_lat) if hls_lat else None,
                    },
                    "rtmp_latency_ms": {
                        "count": len(rtmp_lat),
                        "p50": _percentile(rtmp_lat, 50),
                        "p99": _percentile(rtmp_lat, 99),
                    },
                    "rtmp_bps": (s1["rtmp_bytes"] - s0["rtmp_bytes"]) * 8 / dt,
                    "rtmp_closed": s1["rtmp_closed"],
                    "publisher_max_lag_ms": s1["publisher_max_lag_ms"],
                    "rss_kb": proc_rss_kb(proc.pid),
                }
            assert load.stdin is not None
            load.stdin.write(b"stop\n")
            await load.stdin.drain()
            await asyncio.wait_for(load.wait(), 30)
        finally:
            if load is not None and load.returncode is None:
                load.kill()
                await load.wait()
            exit_code = server.stop()
        base = phases["publish"]["server_cores"]
        hls = phases["hls"]["server_cores"]
        return {
            "scenario": "hls",
            "server": "aiortmp",
            "streams": streams,
            "viewers": viewers,
            "window_s": window_s,
            "phases": phases,
            "hls_output_cores_per_stream": (hls - base) / streams,
            "hls_cores_per_1000_viewers": (phases["hls-viewers"]["server_cores"] - hls)
            * 1000
            / viewers,
            "rtmp_cores_per_1000_players": (phases["rtmp-players"]["server_cores"] - hls)
            * 1000
            / viewers,
            "hls_latency_ms": phases["hls"]["hls_latency_ms"],
            "rtmp_latency_ms": phases["hls"]["rtmp_latency_ms"],
            "server_exit_code": exit_code,
            "server_log": server.log_problems(),
        }


def summary(result: dict[str, Any]) -> str:
    """One log line."""
    lat = result["hls_latency_ms"]
    rtmp = result["rtmp_latency_ms"]
    return (
        f"hls x{result['streams']}: latency p50 {lat['p50'] or 0:.0f} ms p99 "
        f"{lat['p99'] or 0:.0f} ms (RTMP {rtmp['p50'] or 0:.0f}/{rtmp['p99'] or 0:.0f} ms); "
        f"output {result['hls_output_cores_per_stream']:.1%} of a core per stream; "
        f"per 1000 viewers: HLS {result['hls_cores_per_1000_viewers']:.2f} cores, RTMP "
        f"{result['rtmp_cores_per_1000_players']:.2f} cores"
    )


def report_lines(results: list[dict[str, Any]]) -> list[str]:
    """The ``## LL-HLS`` section of docs/benchmarks.md (empty without an HLS result)."""
    rows = [r for r in results if r.get("scenario") == "hls"]
    if not rows:
        return []
    lines = [
        "## LL-HLS",
        "",
        "One aiortmp with its HTTP surface (core 0), streams of the benchmark media published in",
        "real time; LL-HLS followers do what hls.js does: a blocking playlist reload for the",
        "next part (`_HLS_msn`/`_HLS_part`, delta updates), then a GET of each new part.",
        "Latency: per video frame, the time the follower holds the part minus the time the",
        "publisher wrote the frame (player buffering, `PART-HOLD-BACK`, comes on top); RTMP:",
        "the same frames through an RTMP player. 1 s segments (2 s here: the keyframe",
        "interval), 200 ms parts.",
        "",
        "| streams | LL-HLS latency p50 / p99 ms | RTMP p50 / p99 ms | HLS output, cores per "
        "stream | per 1000 viewers: LL-HLS cores | RTMP cores | viewers measured |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lat, rtmp = r["hls_latency_ms"], r["rtmp_latency_ms"]
        busy = max(p["loadgen_core_busy"] for p in r["phases"].values())
        lines.append(
            f"| {r['streams']} | {lat['p50'] or 0:.0f} / {lat['p99'] or 0:.0f} | "
            f"{rtmp['p50'] or 0:.0f} / {rtmp['p99'] or 0:.0f} | "
            f"{r['hls_output_cores_per_stream']:.3f} | "
            f"{r['hls_cores_per_1000_viewers']:.2f} | {r['rtmp_cores_per_1000_players']:.2f} | "
            f"{r['viewers']}{' ⚠' if busy >= 0.9 else ''} |"
        )
    lines += [
        "",
        "Per-1000 figures are scaled from the viewers measured (⚠: the load generator's core",
        "was saturated, so the viewers polled less than they would have). A follower makes",
        "about ten requests a second (a playlist and a part per 200 ms part).",
        "",
    ]
    return lines


def append_report(doc: dict[str, Any], path: Path) -> None:
    """Put the ``## LL-HLS`` section at the end of the report ``path`` (replacing one)."""
    lines = report_lines(doc.get("results", []))
    if not lines or not path.exists():
        return
    commit = doc.get("machine", {}).get("aiortmp_commit", "?")
    lines += [f"From `{doc.get('command', '?')}` at commit {commit}.", ""]
    text = path.read_text()
    if "\n## LL-HLS\n" in text:
        head, _, rest = text.partition("\n## LL-HLS\n")
        following = rest.find("\n## ")
        text = head + ("\n" + rest[following + 1 :] if following >= 0 else "\n")
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.hls load ...``: the load process."""
    parser = argparse.ArgumentParser(prog="python -m bench.hls")
    sub = parser.add_subparsers(dest="role", required=True)
    load = sub.add_parser("load")
    load.add_argument("--rtmp", required=True, help="rtmp://host:port/app")
    load.add_argument("--http", required=True, help="host:port of the HTTP surface")
    load.add_argument("--media", required=True)
    load.add_argument("--streams", type=int, default=1)
    load.add_argument("--viewers", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_load(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_load(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
