"""``docs/benchmarks.md`` from a results document of :mod:`bench.run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["render", "write_report"]

_NAMES = {"aiortmp": "aiortmp", "nginx": "nginx-rtmp"}
#: A fan-out run whose median latency exceeds this is marked "behind" even if its players
#: received the publisher's byte rate (a server that fell behind then catches up does).
_LATE_MS = 500.0


def _f(value: float | None, fmt: str = ".2f", none: str = "–") -> str:
    return none if value is None else format(value, fmt)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or not b:
        return "–"
    return f"**{a / b:.2f}×**"


def _mib(kb: int | None) -> str:
    return "–" if not kb else f"{kb / 1024:.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _by(results: list[dict[str, Any]], scenario: str) -> list[dict[str, Any]]:
    return [r for r in results if r["scenario"] == scenario]


def _flag(r: dict[str, Any]) -> str:
    flags = []
    if r.get("loadgen_saturated"):
        flags.append("⚠ generator core saturated")
    cpu = r["cpu"]
    waits = cpu.get("runqueue_wait") or {}
    foreign = cpu.get("foreign_cores", 0.0)
    if waits.get("server", 0.0) >= 0.03 and foreign >= 0.1:
        flags.append(
            f"⚠ disturbed: the server waited {waits['server']:.1%} of the window for a CPU "
            f"while other jobs used {foreign:.2f} cores"
        )
    elif foreign >= 0.1:
        flags.append(
            f"other jobs used {foreign:.2f} cores (server waited {waits.get('server', 0):.1%})"
        )
    late = (r.get("latency_ms") or {}).get("p50")
    if late is not None and late > _LATE_MS:
        flags.append(
            f"⚠ behind: the latency players got frames {late / 1000:.1f} s late (p50), so "
            "the bytes counted include a backlog"
        )
    rate = (r.get("player_rate_ratio") or {}).get("median")
    if rate is not None and rate > 1.03:
        flags.append(f"⚠ players received {rate:.2f}× the published rate: catching up a backlog")
    if r.get("publisher_max_lag_ms", 0) > 50:
        flags.append(f"publisher up to {r['publisher_max_lag_ms']:.0f} ms late")
    if r.get("players_failed"):
        flags.append(f"{r['players_failed']} players failed to start")
    if r.get("players_closed"):
        flags.append(f"{r['players_closed']} players disconnected")
    if r.get("latency_player_closed"):
        flags.append("latency player disconnected")
    return "; ".join(flags)


def _late(r: dict[str, Any]) -> bool:
    """Behind the live edge: seconds of latency, or receiving a backlog faster than live."""
    p50 = r["latency_ms"]["p50"] or 0.0
    rate = r["player_rate_ratio"]["median"] or 0.0
    return bool(p50 > _LATE_MS or rate > 1.03)


def _lat_pair(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("count"):
        return "–"
    return f"{_f(stats['p50'], '.1f')} / {_f(stats['p99'], '.1f')}"


def _kept(r: dict[str, Any]) -> str:
    return f"{r['kept_up']}/{r['players']} ({_pct(r['kept_up_share'])})"


def _median(values: list[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    mid = len(present) // 2
    return present[mid] if len(present) % 2 else (present[mid - 1] + present[mid]) / 2


def _rows(rows: list[dict[str, Any]], server: str, **match: Any) -> list[dict[str, Any]]:
    return [
        r for r in rows if r["server"] == server and all(r.get(k) == v for k, v in match.items())
    ]


def _cpu_cell(rows: list[dict[str, Any]]) -> str:
    """Median CPU-s/GB, with the range when the run was repeated."""
    values = [r["cpu_s_per_gb"] for r in rows if r["cpu_s_per_gb"] is not None]
    if not values:
        return "–"
    text = _f(_median(values))
    if len(values) > 1:
        text += f" ({min(values):.2f}–{max(values):.2f})"
    if any(r.get("loadgen_saturated") for r in rows):
        text += " ⚠"
    return text


def _label(r: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    name = _NAMES[r["server"]]
    same = [x for x in rows if x["server"] == r["server"]]
    return f"{name} #{same.index(r) + 1}" if len(same) > 1 else name


def _summary(fan: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N players | kept up: aiortmp | kept up: nginx-rtmp | CPU-s/GB: aiortmp "
        "| CPU-s/GB: nginx-rtmp | **CPU ratio** | RSS MiB: aiortmp / nginx-rtmp "
        "| **RSS ratio** | latency p50 / p99 ms: aiortmp | nginx-rtmp |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sorted({r["players"] for r in fan}):
        a = _rows(fan, "aiortmp", players=n)
        b = _rows(fan, "nginx", players=n)

        def kept(rows: list[dict[str, Any]]) -> str:
            if not rows:
                return "–"
            worst = min(rows, key=lambda r: r["kept_up"])
            text = _kept(worst)
            if any(_late(r) for r in rows):
                text += " but late"
            return text + (" ⚠" if any(r.get("loadgen_saturated") for r in rows) else "")

        def lat(rows: list[dict[str, Any]]) -> str:
            p50 = _median([r["latency_ms"]["p50"] for r in rows])
            p99 = _median([r["latency_ms"]["p99"] for r in rows])
            return f"{_f(p50, '.1f')} / {_f(p99, '.1f')}"

        def med(rows: list[dict[str, Any]], key: str) -> float | None:
            if key == "rss":
                return _median([r["rss_kb"]["max"] for r in rows])
            return _median([r[key] for r in rows])

        rss_a, rss_b = med(a, "rss"), med(b, "rss")
        lines.append(
            f"| {n} | {kept(a)} | {kept(b)} | {_cpu_cell(a)} | {_cpu_cell(b)} "
            f"| {_ratio(med(a, 'cpu_s_per_gb'), med(b, 'cpu_s_per_gb'))} "
            f"| {_mib(int(rss_a or 0))} / {_mib(int(rss_b or 0))} | {_ratio(rss_a, rss_b)} "
            f"| {lat(a)} | {lat(b)} |"
        )
    return lines


def _fanout_table(rows: list[dict[str, Any]]) -> list[str]:
    nginx = _median([r["cpu_s_per_gb"] for r in _rows(rows, "nginx")])
    lines = [
        "| | kept up | received / published rate: min, p5, median | delivered Mbit/s "
        "| server CPU in cores (of which system) | core 0 busy | CPU-s per GB delivered "
        "| vs nginx-rtmp "
        "| RSS MiB: before players, after joins, max in window "
        "| latency ms: p50, p99, max (samples) "
        "| latency p50 / p99 ms: player joined first, joined last "
        "| generator: players, publisher (cores), "
        "core 1 busy | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rr = r["player_rate_ratio"]
        lat = r["latency_ms"]
        cpu = r["cpu"]
        lg = cpu["loadgen_cores"]
        rss = r["rss_kb"]
        lines.append(
            f"| {_label(r, rows)} | {_kept(r)} "
            f"| {_f(rr['min'])}, {_f(rr['p5'])}, {_f(rr['median'])} "
            f"| {r['delivered_bps'] / 1e6:.0f} "
            f"| {cpu['server_cores']:.2f} ({cpu.get('server_sys_cores', 0):.2f}) "
            f"| {_pct(cpu['core0_busy'])} | {_f(r['cpu_s_per_gb'])} "
            f"| {_ratio(r['cpu_s_per_gb'], nginx)} "
            f"| {_mib(rss['idle'])}, {_mib(rss['connected'])}, {_mib(rss['max'])} "
            f"| {_f(lat['p50'], '.1f')}, {_f(lat['p99'], '.1f')}, {_f(lat['max'], '.0f')} "
            f"({lat['count']}) "
            f"| {_lat_pair(lat.get('first_joined'))}, {_lat_pair(lat.get('last_joined'))} "
            f"| {lg.get('players', 0):.2f}, {lg.get('publisher', 0):.2f}, "
            f"{_pct(cpu['core1_busy'])} | {_flag(r)} |"
        )
    return lines


def _ingest_table(rows: list[dict[str, Any]], bps: float) -> list[str]:
    lines = [
        "| | publishers | ingested Mbit/s | server CPU (cores) | CPU-s per GB ingested "
        "| vs nginx-rtmp (median) | RSS max MiB | publisher lag max ms "
        "| unsent backlog max: bytes (ms of one stream) | generator core busy | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        same = [x for x in rows if x["publishers"] == r["publishers"]]
        nginx = _median([x["cpu_s_per_gb"] for x in _rows(same, "nginx")])
        cpu = r["cpu"]
        notes = [_flag(r)]
        ticks = round(cpu["server_cpu_s"] * 100)
        if ticks < 50:
            notes.append(f"only {ticks} CPU ticks of 10 ms in the window: a rough figure")
        if r["publishers_closed"]:
            notes.append(f"{r['publishers_closed']} publishers disconnected")
        backlog = r["publisher_backlog_max_bytes"]
        lines.append(
            f"| {_label(r, same)} | {r['publishers']} | {r['ingest_wire_bps'] / 1e6:.1f} "
            f"| {cpu['server_cores']:.3f} | {_f(r['cpu_s_per_gb'])} "
            f"| {_ratio(r['cpu_s_per_gb'], nginx)} "
            f"| {_mib(r['rss_kb']['max'])} | {r['publisher_max_lag_ms']:.0f} "
            f"| {backlog} ({backlog * 8000 / bps:.0f}) | {_pct(cpu['core1_busy'])} "
            f"| {'; '.join(n for n in notes if n)} |"
        )
    return lines


def _frames_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| | streams with every frame | video frames received / sent "
        "| audio frames received / sent | worst stream (video) | server CPU (cores) "
        "| vs nginx-rtmp | generator core busy | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        notes = _flag(r)
        base = _median([x["cpu"]["server_cores"] for x in _rows(rows, "nginx")])
        lines.append(
            f"| {_label(r, rows)} | {r['streams_complete']}/{r['publishers']} "
            f"| {r['video_received']} / {r['video_sent']} "
            f"| {r['audio_received']} / {r['audio_sent']} "
            f"| {_pct(r['worst_stream_video_share'])} | {r['cpu']['server_cores']:.2f} "
            f"| {_ratio(r['cpu']['server_cores'], base)} "
            f"| {_pct(r['cpu']['core1_busy'])} | {notes} |"
        )
    return lines


def _headline(
    fan: list[dict[str, Any]],
    ingest: list[dict[str, Any]],
    frames: list[dict[str, Any]],
    lowat: list[dict[str, Any]],
) -> list[str]:
    """The ratios in a few lines (medians over repetitions)."""
    lines = ["## In short", ""]

    def p99(rows: list[dict[str, Any]], server: str) -> str:
        return _f(_median([r["latency_ms"]["p99"] for r in _rows(rows, server)]), ".0f")

    def ratio(rows: list[dict[str, Any]], get: Any) -> float | None:
        a = _median([get(r) for r in _rows(rows, "aiortmp")])
        b = _median([get(r) for r in _rows(rows, "nginx")])
        return a / b if a is not None and b else None

    if fan:
        ns = sorted({r["players"] for r in fan})
        by_n = {n: [r for r in fan if r["players"] == n] for n in ns}
        cpu = [(n, ratio(by_n[n], lambda r: r["cpu_s_per_gb"])) for n in ns]
        rss = [(n, ratio(by_n[n], lambda r: r["rss_kb"]["max"])) for n in ns]
        cpu_text = ", ".join(f"{v:.2f}× at N = {n}" for n, v in cpu if v is not None)
        rss_text = ", ".join(f"{v:.2f}×" for _, v in rss if v is not None)
        behind = [r for r in fan if r["kept_up"] < r["players"] or _late(r)]
        kept = (
            "every player kept up with both servers in every run"
            if not behind
            else "players fell behind in: "
            + ", ".join(f"{_NAMES[r['server']]} N = {r['players']}" for r in behind)
        )
        lat_text = ", ".join(f"{p99(by_n[n], 'aiortmp')} / {p99(by_n[n], 'nginx')}" for n in ns)
        lines += [
            f"- Fan-out, server CPU per GB delivered, aiortmp / nginx-rtmp: {cpu_text}.",
            f"- Resident memory, aiortmp / nginx-rtmp: {rss_text} (same N order).",
            f"- Latency p99 in ms, aiortmp / nginx-rtmp: {lat_text} (same N order).",
            f"- Up to N = {ns[-1]}: {kept}.",
        ]
    if lowat:
        ns = sorted({r["players"] for r in lowat})
        by_n = {n: [r for r in lowat if r["players"] == n] for n in ns}
        parts = []
        for n in ns:
            value = ratio(by_n[n], lambda r: r["cpu_s_per_gb"])
            cores = _median([r["cpu"]["server_cores"] for r in _rows(by_n[n], "aiortmp")])
            parts.append(
                f"N = {n}: CPU {_f(value)}×, aiortmp at {_pct(cores)} of its core, latency "
                f"p99 {p99(by_n[n], 'aiortmp')} / {p99(by_n[n], 'nginx')} ms"
            )
        lines.append(
            "- Beyond 2000 (players with `SO_RCVLOWAT`, see below), aiortmp / nginx-rtmp: "
            + "; ".join(parts)
            + "."
        )
    if ingest:
        for count in sorted({r["publishers"] for r in ingest}):
            rows = [r for r in ingest if r["publishers"] == count]
            value = ratio(rows, lambda r: r["cpu_s_per_gb"])
            if value is not None and count > 1:
                lines.append(
                    f"- Ingest from {count} publishers, server CPU per GB ingested, "
                    f"aiortmp / nginx-rtmp: {value:.2f}×."
                )
    for r in frames:
        lines.append(
            f"- {_NAMES[r['server']]}: {r['streams_complete']}/{r['publishers']} streams "
            "got every frame (one publisher and one player per stream)."
        )
    return [*lines, ""]


def _profile(results: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    seen: set[int] = set()
    for r in results:
        prof = r.get("profile")
        if not prof or r["players"] in seen:
            continue
        seen.add(r["players"])  # the first repetition's profile is enough
        lines += [f"### aiortmp, N = {r['players']} (after the measurement window)", ""]
        perf = prof.get("perf") or {}
        if perf.get("dso"):
            split = ", ".join(
                f"{name} {share:.0%}" for name, share in perf["dso"] if share >= 0.005
            )
            lines += [f"perf, samples by binary: {split}.", ""]
            lines += ["| perf: top symbols | share |", "|---|---:|"]
            lines += [
                f"| `{' '.join(name.split())}` | {share:.1%} |"
                for name, share in perf["symbols"][:15]
            ]
            lines += [""]
        spy = prof.get("pyspy") or {}
        if spy.get("samples"):
            lines += [
                f"py-spy `--native`, {spy['samples']} samples: functions by own time "
                "(self) and with their callees (inclusive).",
                "",
                "| self | function | | inclusive | function |",
                "|---:|---|---|---:|---|",
            ]
            for own, inc in zip(spy["self"][:15], spy["inclusive"][:15], strict=False):
                lines.append(f"| {own[1]:.1%} | `{own[0]}` | | {inc[1]:.1%} | `{inc[0]}` |")
            lines += [""]
        elif spy.get("error"):
            lines += [f"py-spy failed: {spy['error']}", ""]
    return lines


def _logs(results: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for r in results:
        log = r.get("server_log") or {}
        counts = log.get("counts") or {}
        if not counts:
            continue
        what = r["scenario"] + (
            f" N={r['players']}" if "players" in r else f" x{r.get('publishers')}"
        )
        summary = ", ".join(f"{n} {level}" for level, n in sorted(counts.items()))
        lines.append(f"- {_NAMES[r['server']]}, {what}: {summary}")
        for sample in log.get("samples", [])[:4]:
            lines.append(f"    - `{sample}`")
    return lines or ["- none: no warning or error in any server log."]


def render(doc: dict[str, Any]) -> str:
    """The Markdown report of one results document."""
    m = doc["machine"]
    s = doc["settings"]
    media = doc["media"]
    results = doc["results"]
    fan = [r for r in _by(results, "fanout") if not r.get("rcvlowat")]
    lowat = [r for r in _by(results, "fanout") if r.get("rcvlowat")]
    runs = [doc, *doc.get("more_runs", [])]
    produced = " and ".join(f"`{run['command']}`" for run in runs)
    out = [
        "# Benchmarks: aiortmp and nginx-rtmp side by side",
        "",
        "<!-- Generated by `make bench` (bench/run.py, bench/report.py): do not edit by hand;",
        "     re-run the command below to refresh. -->",
        "",
        f'Produced by {produced} (each is `make bench ARGS="..."`), '
        f"{doc['started']} to {runs[-1]['finished']}.",
        "",
        "One publisher sends a 720p30 H.264 + AAC stream at "
        f"{media['payload_bps'] / 1e6:.2f} Mbit/s in real time; N players play it. The "
        f"server is pinned to core 0, the load generator to core 1. **Ratios are aiortmp "
        f"divided by nginx-rtmp** (below 1 is better for aiortmp). ⚠ marks rows where the "
        f"load generator's core was ≥ {s['saturated_threshold']:.0%} busy, so the "
        f"generator may have limited the result.",
        "",
    ]
    out += _headline(fan, _by(results, "ingest"), _by(results, "frames"), lowat)
    if fan:
        out += ["## Summary: fan-out to N players", ""]
        out += _summary(fan)
        out += [""]
        for n in sorted({r["players"] for r in fan}):
            out += [f"### N = {n} players", ""]
            out += _fanout_table([r for r in fan if r["players"] == n])
            out += [""]
    if lowat:
        values = sorted({r["rcvlowat"] for r in lowat})
        out += [
            f"## Beyond 2000 players: players with `SO_RCVLOWAT` = {values[0]} bytes",
            "",
            "Players that read whatever arrives cost the generator about 0.4 core per "
            "1000 players, so one core cannot play more than about 2000. Here each player "
            f"sets `SO_RCVLOWAT` = {values[0]} bytes: the kernel wakes it once per that "
            "many bytes, which makes the generator several times cheaper. It also "
            "changes the servers' cost (their writes wake readers less often), so compare "
            "these rows with each other, not with the tables above.",
            "",
        ]
        out += _summary(lowat)
        out += [""]
        for n in sorted({r["players"] for r in lowat}):
            out += [f"### N = {n} players, `SO_RCVLOWAT`", ""]
            out += _fanout_table([r for r in lowat if r["players"] == n])
            out += [""]
    ingest = _by(results, "ingest")
    if ingest:
        out += [
            "## Ingest: publishers and no player",
            "",
            "Server CPU per GB received from publishers. The publishers' *lag* is how late "
            "the generator wrote a message against its timestamp; the *unsent backlog* is "
            "what was still queued towards the server (user space + kernel send queue) at "
            "the end of the window: near zero means the server read everything in real "
            "time.",
            "",
        ]
        out += _ingest_table(ingest, media["payload_bps"])
        out += [""]
    fr = _by(results, "frames")
    if fr:
        out += [
            f"## Do all frames arrive? {s['publishers']} publishers, one player each",
            "",
            "Each player joins before its publisher starts and parses every message; after "
            "the publishers stop, every coded video frame (AVC NALU) and audio frame (AAC "
            "raw) the publishers sent is looked for on the player side.",
            "",
        ]
        out += _frames_table(fr)
        out += [""]
    prof = _profile(results)
    if prof:
        out += ["## Where aiortmp spends its CPU", ""] + prof
    out += ["## Server logs (warnings and errors)", ""]
    out += _logs(results)
    out += [
        "",
        "## Machine",
        "",
        f"- aiortmp at commit {m.get('aiortmp_commit') or '?'}",
        f"- {m['nproc']} CPUs: {m['cpu_model']}",
        f"- Linux {m['kernel']}, Python {m['python']}, uvloop {m['uvloop']}",
        f"- {m['nginx']} with libnginx-mod-rtmp {m['nginx_rtmp']}",
        "",
        "## Method",
        "",
        f"- Media: `{media['file']}`, made once by FFmpeg 9 (`bench/media.py`): 1280x720 "
        "30 fps libx264 CBR 2.5 Mbit/s, keyframe every 2 s, 2 B-frames, AAC 128 kbit/s "
        "stereo; looped with rising timestamps.",
        "- Servers: a fresh process per scenario, `taskset -c 0`. aiortmp: `aiortmp serve` "
        + (
            f"(uvloop, settings `{s['aiortmp_settings']}`, "
            if s.get("aiortmp_settings")
            else "(uvloop, default settings: `fanout_interval_ms = "
            f"{s.get('aiortmp_fanout_interval_ms', 0):g}`, "
        )
        + "chunk size 4096, HTTP off, per-IP connection limit lifted). nginx-rtmp: one "
        "process (`master_process off`), `chunk_size 4096`, "
        "`application live { live on; }`.",
        "- Load generator (`bench/loadgen.py`, uvloop, `taskset -c 1`): one publisher process "
        "writing pre-serialized chunks paced by timestamp, with the latency players in the "
        "same process; one process for the N players. Players set up with aiortmp's "
        "`ClientSession` (handshake, connect, createStream, play), then only count bytes "
        "into one shared buffer and acknowledge every window. "
        + (
            f"They set `SO_RCVLOWAT` = {s['rcvlowat']} bytes, so the kernel wakes them "
            "once per that many bytes (this also spares the server's system calls some "
            "wake-ups: not what real players do). "
            if s["rcvlowat"]
            else "They read whatever arrives, as real players do (no `SO_RCVLOWAT`). "
        )
        + f"Players join at {s['connect_rate_per_s']:g}/s.",
        f"- Each fan-out run: all players join, {s['warmup_s']:g} s warm-up, then a "
        f"{s['window_s']:g} s window. A player **kept up** if its byte rate in the window "
        f"(RTMP bytes received) was ≥ {s['keep_up_threshold']:.0%} of the publisher's payload "
        "byte rate over the same window (chunk headers add about 0.3 %, so a player that "
        "gets everything is at 1.00). A server that fell behind earlier and is catching up "
        "passes that test with a rate above 1.00; the latency players show it: rows whose "
        f"median latency exceeds {_LATE_MS / 1000:g} s are marked *late*.",
        "- **CPU-s per GB**: the server process's utime + stime (`/proc/PID/stat`, children "
        "excluded) in the window, divided by the bytes all players received in it (GB = "
        "10^9 bytes). It includes the kernel's TCP work done in the server's system calls "
        "(loopback delivery to the players). *core 0 busy* is the whole core's busy share "
        "from `/proc/stat` (softirq included). RSS is `VmRSS`, sampled every 0.25 s.",
        "- **Latency**: for every coded video frame, the time from the publisher's write to "
        "a latency player having parsed the whole message, on one monotonic clock (same "
        "process). Two latency players: one joins before the N players, one after them. "
        "aiortmp writes to its players in join order and nginx-rtmp in reverse, so each "
        "server serves one of them first and the other last; p50/p99 are over both. It "
        "includes the latency players' own parsing and the generator core's scheduling, "
        "so it is an upper bound for the server's share.",
        "- The generator's own CPU (players process, publisher process, and core 1 as a "
        "whole) is reported for every run.",
        "- Other jobs share this machine. Servers and generators run at niceness "
        f"{s.get('nice', 0)}; each run starts once other processes use less than "
        f"{s.get('foreign_max_cores', 0.1):g} cores (or after a while), and is redone "
        "when the server spent more than "
        f"{s.get('max_runqueue_wait', 0.03):.0%} of the window waiting for a CPU "
        "(`/proc/PID/schedstat`) while other processes ran; the notes column says when a "
        "run stayed disturbed or others ran beside it.",
        "- Ingest: the same publisher × 1 and × N without players; frame check: N "
        "publishers, one parsing player each (see the tables).",
        "",
        "Raw numbers: `bench/results/*.json` of the run (not committed).",
        "",
    ]
    return "\n".join(out)


def write_report(doc: dict[str, Any], path: Path) -> None:
    """Write :func:`render` of ``doc`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc))
