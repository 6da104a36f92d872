"""The workers case of ``make bench``: one publisher, N players, 1 worker vs 2 workers.

For each stream — the 2.66 Mbit/s 720p30 one and a ~232 kbit/s 180p30 one (as many
messages per second for a tenth of the bytes) — and each server — ``aiortmp serve`` (one
process) and ``aiortmp serve --workers 2`` —:

- a probe process (``python -m bench.workers probe``) publishes the stream in real time
  with the aiortmp client and plays it with latency players placed on every worker (a
  connection's worker is found through the HTTP API by its local port). Next to every
  video frame it sends a tiny data message carrying ``time.monotonic()``; a latency
  player's sample is its arrival time minus that (data messages take the media's path:
  the same batches, through the same links; stream timestamps would not do, a link's
  copy has its own timeline);
- one :mod:`bench.loadgen` ``play`` process runs the N byte-counting players (the kernel
  spreads them over the workers);
- over the window: players that kept up (≥ 95 % of the publisher's byte rate), the
  server's CPU (supervisor and every worker, user + system) per GB delivered, the load
  generators' CPU (the ``loadgen`` players and the probe: if either used ≥ 90 % of a core,
  the run is flagged), latency p50/p99 of players on the stream's owner and of players
  served through a link; **the link's added latency** is the link players' p99 minus the
  single process's p99 (target ≤ 5 ms).

Cores: with W workers on a machine of C cores, the server is pinned to cores 0..W-1 and
the generators to core W; when C ≤ W they share the last core (the report says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["main", "report_lines", "run_cases"]

BENCH_DIR = Path(__file__).resolve().parent
#: A player kept up if it received at least this share of the publisher's byte rate.
KEEP_UP = 0.95
#: A generator process using this share of a core may have limited the result.
SATURATED = 0.90
#: Latency players per worker.
LATENCY_PLAYERS = 2
#: The link's added latency the issue aims at (ms, p99 over the single process).
TARGET_ADDED_MS = 5.0
_TOML = """\
# bench: every player connects from 127.0.0.1
[limits]
max_connections = 100000
max_connections_per_ip = 100000
"""


# -- media --------------------------------------------------------------------------------------


def ensure_streams() -> dict[str, Path]:
    """The two benchmark files: ``hd`` (2.66 Mbit/s) and ``low`` (~232 kbit/s)."""
    from . import media

    hd = media.ensure_media()
    low_spec = getattr(media, "LOW", None)
    if low_spec is not None:  # the harness knows the low stream
        return {"hd": hd, "low": media.ensure_media(spec=low_spec)}
    return {"hd": hd, "low": _ensure_low(media.CACHE_DIR, media.ffmpeg_exe())}


def _ensure_low(cache: Path, ffmpeg: str) -> Path:
    """320x180 30 fps H.264 CBR 200 kbit/s + 32 kbit/s stereo AAC, 60 s (made once)."""
    path = cache / "bench-180p30-200k-aac32k-60s.flv"
    if path.exists() and path.stat().st_size > 0:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.flv")
    print(f"bench: generating {path.name} with FFmpeg (once)...", file=sys.stderr, flush=True)
    subprocess.run(
        [
            ffmpeg,
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30,noise=alls=12:allf=t"),
            *("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "60"),
            *("-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast"),
            *("-profile:v", "high", "-pix_fmt", "yuv420p", "-b:v", "200k", "-maxrate", "200k"),
            *("-bufsize", "200k", "-x264-params", "nal-hrd=cbr:force-cfr=1", "-g", "60"),
            *("-keyint_min", "60", "-sc_threshold", "0", "-bf", "2", "-c:a", "aac"),
            *("-b:a", "32k", "-ac", "2", "-f", "flv", str(tmp)),
        ],
        check=True,
    )
    tmp.rename(path)
    return path


# -- the probe process: publisher and latency players ------------------------------------------


async def _probe(args: argparse.Namespace) -> None:
    """``probe``: publish ``--media`` as ``s0`` and place latency players on every worker."""
    from aiortmp import client as rtmp
    from aiortmp.media.flv import FLVReader, TagType
    from aiortmp.protocol import amf0

    with open(args.media, "rb") as fh:
        tags = [(t.tag_type, t.timestamp_ms, t.payload) for t in FLVReader(fh)]
    first_ms = min(ts for _, ts, _ in tags)
    period_ms = max(ts for _, ts, _ in tags) - first_ms + 33
    headers = [t for t in tags if t[0] == TagType.SCRIPT or _is_header(t[0], t[2])]
    frames = [t for t in tags if t not in headers]
    conn = await rtmp.connect(args.url, timeout=10)
    publisher = await conn.publish("s0")
    for kind, _, payload in headers:
        publisher.write(kind, 0, payload)
    await publisher.drain()
    samples: dict[int, list[float]] = {}
    players: list[tuple[int, Any]] = []
    state = {"payload_bytes": 0, "max_lag_s": 0.0, "stop": False}

    async def publish() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        offset = 0
        while not state["stop"]:
            for kind, ts, payload in frames:
                media_ms = ts - first_ms + offset
                due = start + media_ms / 1000
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                else:
                    state["max_lag_s"] = max(float(state["max_lag_s"]), now - due)
                if kind == TagType.VIDEO:
                    stamp = amf0.encode("onProbe", time.monotonic())
                    publisher.write(TagType.SCRIPT, media_ms, stamp)
                publisher.write(kind, media_ms, payload)
                state["payload_bytes"] = int(state["payload_bytes"]) + len(payload)
                await publisher.drain()
                if state["stop"]:
                    return
            offset += period_ms

    async def listen(index: int, player: Any) -> None:
        got = samples.setdefault(index, [])
        async for message in player:
            data = message.data
            if data is not None and data.name == "onProbe" and data.values:
                got.append((time.monotonic() - float(data.values[0])) * 1000)

    pacer = asyncio.create_task(publish())
    await asyncio.sleep(1.0)
    placed: dict[int, int] = {}
    listeners = []
    for _ in range(args.workers * LATENCY_PLAYERS * 20):
        if len(placed) == args.workers and min(placed.values()) >= LATENCY_PLAYERS:
            break
        play_conn = await rtmp.connect(args.url, timeout=10)
        port = play_conn._protocol.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        number = await asyncio.to_thread(_worker_of_port, args.http, port)
        if placed.get(number, 0) >= LATENCY_PLAYERS:
            await play_conn.close()
            continue
        placed[number] = placed.get(number, 0) + 1
        player = await play_conn.play("s0", parse_headers=False)
        players.append((number, play_conn))
        listeners.append(asyncio.create_task(listen(len(players) - 1, player)))
    _emit({"event": "ready", "placed": placed, "t": time.monotonic()})

    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = line.decode().strip()
        if command in ("snap", "stop"):
            out = {
                "t": time.monotonic(),
                "payload_bytes": state["payload_bytes"],
                "max_lag_ms": float(state["max_lag_s"]) * 1000,
                "latency_ms": {str(i): list(samples.get(i, [])) for i in range(len(players))},
                "workers": [number for number, _ in players],
                "closed": sum(c.closed for _, c in players) + int(conn.closed),
            }
            for got in samples.values():
                got.clear()
            _emit(out)
            if command == "stop":
                break
        elif command == "reset-lag":
            state["max_lag_s"] = 0.0
            _emit({"ok": True})
    state["stop"] = True
    pacer.cancel()
    for task in listeners:
        task.cancel()
    for _, play_conn in players:
        await play_conn.close()
    await conn.close()


def _is_header(type_id: int, payload: bytes) -> bool:
    from aiortmp.hub.packet import PacketKind, classify

    if type_id not in (8, 9):
        return False
    return classify(type_id, payload) in (PacketKind.VIDEO_CONFIG, PacketKind.AUDIO_CONFIG)


def _worker_of_port(http: str, port: int) -> int:
    """The worker number serving local port ``port`` (0 for a single process)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{http}/api/sessions", timeout=5) as response:
            sessions = json.loads(response.read())["sessions"]
        for session in sessions:
            if session["remote"].endswith(f":{port}"):
                return int(session["id"]) >> 32
        time.sleep(0.02)
    raise RuntimeError(f"no session for local port {port}")


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- the orchestration -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cores(workers: int) -> tuple[str, int, bool]:
    """(server cores for taskset, generator core, shared?)."""
    count = os.cpu_count() or 1
    server = ",".join(str(c) for c in range(min(workers, count)))
    if count > workers:
        return server, workers, False
    return server, count - 1, True


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def _cpu(pids: list[int]) -> float:
    from .servers import proc_cpu_s

    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += proc_cpu_s(pid)
    return total


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": _percentile(values, 50),
        "p99": _percentile(values, 99),
        "max": max(values) if values else None,
    }


async def _line(proc: asyncio.subprocess.Process, timeout_s: float) -> dict[str, Any]:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    if not line:
        raise RuntimeError(f"generator exited with {await proc.wait()}")
    value: dict[str, Any] = json.loads(line)
    return value


async def _ask(proc: asyncio.subprocess.Process, command: str, timeout_s: float = 60) -> Any:
    assert proc.stdin is not None
    proc.stdin.write(command.encode() + b"\n")
    await proc.stdin.drain()
    return await _line(proc, timeout_s)


async def _generator(core: int, nice: int, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *("nice", "-n", str(nice), "taskset", "-c", str(core), sys.executable, "-m", *args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(BENCH_DIR.parent),
        limit=64 * 1024 * 1024,
    )


async def run_case(
    *,
    stream: str,
    media: Path,
    players: int,
    workers: int,
    warmup_s: float,
    window_s: float,
    rate: float,
    nice: int = 0,
) -> dict[str, Any]:
    """One run: ``players`` players of ``media`` on ``workers`` worker processes (1: the
    plain single process).

    Returns:
        The result (``scenario`` ``"workers"``).
    """
    server_cores, gen_core, shared = _cores(workers)
    port, http_port = _free_port(), _free_port()
    http = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        config = Path(tmp) / "aiortmp.toml"
        config.write_text(_TOML)
        log_path = Path(tmp) / "aiortmp.log"
        command = [
            str(Path(sys.executable).parent / "aiortmp"),
            *("serve", "--listen", f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{http_port}"),
            *("--config", str(config)),
            *(("--workers", str(workers)) if workers > 1 else ()),
        ]
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                ["nice", "-n", str(nice), "taskset", "-c", server_cores, *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        generators: list[asyncio.subprocess.Process] = []
        try:
            await asyncio.to_thread(_wait_ready, http, workers, server)
            pids = [server.pid, *_children(server.pid)]
            url = f"rtmp://127.0.0.1:{port}/live"
            probe = await _generator(
                gen_core,
                nice,
                *("bench.workers", "probe", "--url", url, "--media", str(media)),
                *("--http", http, "--workers", str(workers)),
            )
            generators.append(probe)
            placed = (await _line(probe, 60))["placed"]
            play = await _generator(
                gen_core,
                nice,
                *("bench.loadgen", "play", "--url", url, "--count", str(players)),
                # SO_RCVLOWAT would hold up to 64 KiB uncounted: seconds of the low stream.
                *("--rate", str(rate), "--rcvlowat", "0"),
            )
            generators.append(play)
            ready = await _line(play, players / rate + 120)
            await asyncio.sleep(warmup_s)
            await _ask(probe, "reset-lag")
            owner = await asyncio.to_thread(_owner, http)
            spread = await asyncio.to_thread(_spread, http)
            t0 = time.monotonic()
            cpu0 = _cpu(pids)
            gen0 = [_cpu([g.pid]) for g in generators]
            p0, q0 = await asyncio.gather(_ask(probe, "snap"), _ask(play, "snap"))
            await asyncio.sleep(window_s)
            p1, q1 = await asyncio.gather(_ask(probe, "snap"), _ask(play, "snap"))
            cpu1 = _cpu(pids)
            gen1 = [_cpu([g.pid]) for g in generators]
            dt = time.monotonic() - t0
            await _ask(play, "stop")
            await _ask(probe, "stop")
        finally:
            for proc in generators:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            problems = [
                line
                for line in log_path.read_text(errors="replace").splitlines()
                if " ERROR " in line or " CRITICAL " in line
            ][:5]
    pub_rate = (p1["payload_bytes"] - p0["payload_bytes"]) / (p1["t"] - p0["t"])
    qdt = q1["t"] - q0["t"]
    rates = [(b - a) / qdt for a, b in zip(q0["bytes"], q1["bytes"], strict=True)]
    delivered = sum(rates)
    kept = sum(1 for r in rates if pub_rate and r / pub_rate >= KEEP_UP)
    by_place: dict[str, list[float]] = {"owner": [], "link": []}
    for index, number in enumerate(p1["workers"]):
        place = "owner" if workers == 1 or number == owner else "link"
        by_place[place] += p1["latency_ms"].get(str(index), [])
    gen_cores = [(b - a) / dt for a, b in zip(gen0, gen1, strict=True)]
    server_cores_used = (cpu1 - cpu0) / dt
    return {
        "scenario": "workers",
        "stream": stream,
        "workers": workers,
        "players": players,
        "players_playing": ready["playing"],
        "players_failed": ready["failed"],
        "players_per_worker": spread,
        "latency_players": placed,
        "kept_up": kept,
        "publisher_payload_bps": pub_rate * 8,
        "publisher_max_lag_ms": p1["max_lag_ms"],
        "delivered_bps": delivered * 8,
        "server_cores": server_cores_used,
        "cpu_s_per_gb": server_cores_used / (delivered / 1e9) if delivered else None,
        "latency_ms": {
            "owner": _stats(by_place["owner"]),
            "link": _stats(by_place["link"]),
        },
        "probe_cores": gen_cores[0],
        "loadgen_cores": gen_cores[1],
        "loadgen_saturated": max(gen_cores) >= SATURATED,
        "cores": {"server": server_cores, "generators": gen_core, "shared": shared},
        "server_errors": problems,
    }


def _wait_ready(http: str, workers: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{http}/api/server", timeout=2) as response:
                body = json.loads(response.read())
            ready = [w for w in body.get("workers", [{}]) if w.get("state", "ready") == "ready"]
            if len(ready) >= workers:
                return
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


def _owner(http: str) -> int:
    with urllib.request.urlopen(f"{http}/api/streams/live/s0", timeout=5) as response:
        stream = json.loads(response.read())
    return int(stream["publisher"]["session_id"]) >> 32


def _spread(http: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{http}/api/server", timeout=5) as response:
        body = json.loads(response.read())
    return {str(w["number"]): int(w["players"]) for w in body.get("workers", [])}


async def run_cases(
    *,
    players: dict[str, list[int]],
    warmup_s: float,
    window_s: float,
    rate: float,
    nice: int = 0,
    log: Any = print,
) -> list[dict[str, Any]]:
    """Every workers case: each stream, each N, 1 worker then 2 workers.

    Args:
        players: stream (``hd``, ``low``) → the N to run.
        warmup_s / window_s: seconds after the players joined / of measurement.
        rate: player connections per second.
        nice: niceness of the server and the generators.
        log: called with one summary line per run.
    """
    streams = ensure_streams()
    results = []
    for stream, counts in players.items():
        for count in counts:
            for workers in (1, 2):
                result = await run_case(
                    stream=stream,
                    media=streams[stream],
                    players=count,
                    workers=workers,
                    warmup_s=warmup_s,
                    window_s=window_s,
                    rate=rate,
                    nice=nice,
                )
                log(summary(result))
                results.append(result)
    return results


def summary(r: dict[str, Any]) -> str:
    """One line for the log."""
    lat = r["latency_ms"]
    link = lat["link"]["p99"]
    return (
        f"workers={r['workers']} {r['stream']} N={r['players']}: kept up "
        f"{r['kept_up']}/{r['players']}, {r['cpu_s_per_gb'] or 0:.2f} CPU-s/GB, server "
        f"{r['server_cores']:.2f} cores, latency p99 owner {lat['owner']['p99'] or 0:.1f} ms"
        + (f", link {link:.1f} ms" if link is not None else "")
        + f", generators {r['loadgen_cores']:.2f} + {r['probe_cores']:.2f} cores"
    )


def _f(value: float | None, fmt: str = ".1f") -> str:
    return "–" if value is None else format(value, fmt)


def report_lines(results: list[dict[str, Any]]) -> list[str]:
    """The workers section of ``docs/benchmarks.md``."""
    rows = [r for r in results if r.get("scenario") == "workers"]
    if not rows:
        return []
    lines = [
        "## Worker processes: 1 worker vs 2 workers",
        "",
        "One publisher, N players, `aiortmp serve` (1) and `aiortmp serve --workers 2` (2); "
        "latency players on every worker (*owner*: the worker the publisher is on; *link*: "
        "served through the owner's link). The link's added latency is the link's p99 minus "
        f"the single process's p99 (target ≤ {TARGET_ADDED_MS:g} ms), and minus the owner's "
        "p99 in the same run (less sensitive to a busy machine). Server CPU counts the "
        "supervisor and every worker. ⚠: a generator used ≥ 90 % of a core.",
        "",
        "| stream | N | workers | kept up | players per worker | server cores | CPU-s/GB "
        "| latency p50 / p99 ms: owner | link | link's added p99 ms: vs 1 worker, vs owner "
        "(same run) | generators: players, probe (cores) | cores: server / generators |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    single = {(r["stream"], r["players"]): r for r in rows if r["workers"] == 1}
    for r in rows:
        lat = r["latency_ms"]
        base = single.get((r["stream"], r["players"]))
        added = beside = None
        if r["workers"] > 1 and lat["link"]["p99"] is not None:
            if base is not None:
                added = lat["link"]["p99"] - (base["latency_ms"]["owner"]["p99"] or 0.0)
            if lat["owner"]["p99"] is not None:
                beside = lat["link"]["p99"] - lat["owner"]["p99"]
        rate = r["publisher_payload_bps"] / 1e6
        cores = r["cores"]
        lines.append(
            f"| {r['stream']} ({rate:.2f} Mbit/s) | {r['players']} | {r['workers']} | "
            f"{r['kept_up']}/{r['players']} | "
            f"{_spread_text(r)} | "
            f"{r['server_cores']:.2f} | {_f(r['cpu_s_per_gb'], '.2f')} | "
            f"{_f(lat['owner']['p50'])} / {_f(lat['owner']['p99'])} | "
            f"{_f(lat['link']['p50'])} / {_f(lat['link']['p99'])} | "
            f"{_f(added)}, {_f(beside)} | "
            f"{r['loadgen_cores']:.2f}, {r['probe_cores']:.2f}"
            f"{' ⚠' if r['loadgen_saturated'] else ''} | "
            f"{cores['server']} / {cores['generators']}{' (shared)' if cores['shared'] else ''} |"
        )
    lines.append("")
    return lines


def _spread_text(r: dict[str, Any]) -> str:
    spread = r.get("players_per_worker") or {}
    return " + ".join(str(v) for v in spread.values()) if spread else "–"


def append_report(doc: dict[str, Any], path: Path) -> None:
    """Add the workers section (``doc["workers"]``) to the report ``bench/report.py`` wrote."""
    lines = report_lines(doc.get("workers", []))
    if lines:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.workers probe ...`` (the probe process) or ``... run`` (the
    workers case alone: ``--players 500 --low-players 2000``)."""
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    sub = parser.add_subparsers(dest="role", required=True)
    probe = sub.add_parser("probe")
    probe.add_argument("--url", required=True)
    probe.add_argument("--media", required=True)
    probe.add_argument("--http", required=True)
    probe.add_argument("--workers", type=int, default=1)
    alone = sub.add_parser("run")
    alone.add_argument("--players", default="500", help="N for the 2.66 Mbit/s stream")
    alone.add_argument("--low-players", default="2000", help="N for the 232 kbit/s stream")
    alone.add_argument("--warmup", type=float, default=5.0)
    alone.add_argument("--window", type=float, default=20.0)
    alone.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args(argv)
    if args.role == "probe":
        asyncio.run(_probe(args))
        return 0
    players = {
        "hd": [int(n) for n in args.players.split(",") if n.strip()],
        "low": [int(n) for n in args.low_players.split(",") if n.strip()],
    }
    results = asyncio.run(
        run_cases(
            players=players,
            warmup_s=args.warmup,
            window_s=args.window,
            rate=args.rate,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    )
    print(json.dumps(results, indent=1))
    print("\n".join(report_lines(results)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
