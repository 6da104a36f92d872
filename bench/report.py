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
    if rate is not None and rate > _catch_up_ratio(r):
        flags.append(f"⚠ players received {rate:.2f}× the published rate: catching up a backlog")
    if r.get("publisher_max_lag_ms", 0) > 50:
        flags.append(f"publisher up to {r['publisher_max_lag_ms']:.0f} ms late")
    if r.get("players_failed"):
        errors = "; ".join(r.get("setup_errors") or [])
        flags.append(
            f"{r['players_failed']} players failed to join" + (f" ({errors})" if errors else "")
        )
    join = r.get("join") or {}
    if join.get("join_s", 0) > 30.0:
        flags.append(f"joins took {join['join_s']:.0f} s")
    if r.get("players_closed"):
        flags.append(f"{r['players_closed']} players disconnected")
    if r.get("latency_player_closed"):
        flags.append("latency player disconnected")
    return "; ".join(flags)


def _catch_up_ratio(r: dict[str, Any]) -> float:
    """Players above this share of the published payload rate are receiving a backlog.

    Chunk headers come on top of the payload: 0.3 % at 2.66 Mbit/s, 2–5 % at 232 kbit/s
    (about 77 messages a second either way). The publisher's own chunking (a 12-byte fmt 0
    header on every message) bounds what a server adds; 3 % more is a backlog.
    """
    payload = r.get("publisher_payload_bps") or 0.0
    wire = r.get("publisher_wire_bps") or 0.0
    overhead = wire / payload if payload and wire else 1.0
    return max(1.0, overhead) + 0.03


def _late(r: dict[str, Any]) -> bool:
    """Behind the live edge: seconds of latency, or receiving a backlog faster than live."""
    p50 = r["latency_ms"]["p50"] or 0.0
    rate = r["player_rate_ratio"]["median"] or 0.0
    return bool(p50 > _LATE_MS or rate > _catch_up_ratio(r))


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


def _generator_cores(r: dict[str, Any]) -> float:
    """The load generator processes' CPU in the window (players + publisher), in cores."""
    return float(sum(r["cpu"]["loadgen_cores"].values()))


def _joined(rows: list[dict[str, Any]]) -> str:
    """Players that joined (worst repetition), and how long the slowest join took."""
    if not rows:
        return "–"
    worst = min(rows, key=lambda r: r.get("players_playing", r["players"]))
    text = f"{worst.get('players_playing', worst['players'])}/{worst['players']}"
    join = worst.get("join") or {}
    if join.get("join_s") is not None and join["join_s"] >= 0:
        text += f" in {join['join_s']:.0f} s"
    return text


def _served_all(rows: list[dict[str, Any]]) -> bool:
    """Every player joined and kept up, on time, in every run: CPU per GB compares alike."""
    return bool(rows) and all(r["kept_up"] == r["players"] and not _late(r) for r in rows)


#: After a CPU ratio whose servers did not both serve every player.
_NOT_ALIKE = "†"
_NOT_ALIKE_NOTE = (
    f"{_NOT_ALIKE} Not a like-for-like ratio: at least one server did not serve every player "
    "(players that failed to join, or a server behind the live edge), so the two servers "
    "delivered different loads."
)


def _summary(fan: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| N players | joined: aiortmp | nginx-rtmp | kept up: aiortmp | nginx-rtmp "
        "| CPU-s/GB: aiortmp | nginx-rtmp | **CPU ratio** | RSS MiB: aiortmp / nginx-rtmp "
        "| **RSS ratio** | latency p50 / p99 ms: aiortmp | nginx-rtmp "
        "| generator cores: aiortmp / nginx-rtmp runs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    unlike = False
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

        def gen(rows: list[dict[str, Any]]) -> str:
            if not rows:
                return "–"
            worst = max(rows, key=_generator_cores)
            return f"{_generator_cores(worst):.2f}" + (
                " ⚠" if any(r.get("loadgen_saturated") for r in rows) else ""
            )

        rss_a, rss_b = med(a, "rss"), med(b, "rss")
        alike = _served_all(a) and _served_all(b)
        if not alike:
            unlike = True
        lines.append(
            f"| {n} | {_joined(a)} | {_joined(b)} | {kept(a)} | {kept(b)} "
            f"| {_cpu_cell(a)} | {_cpu_cell(b)} "
            f"| {_ratio(med(a, 'cpu_s_per_gb'), med(b, 'cpu_s_per_gb'))}"
            f"{'' if alike else ' ' + _NOT_ALIKE} "
            f"| {_mib(int(rss_a or 0))} / {_mib(int(rss_b or 0))} | {_ratio(rss_a, rss_b)} "
            f"| {lat(a)} | {lat(b)} | {gen(a)} / {gen(b)} |"
        )
    if unlike:
        lines += ["", _NOT_ALIKE_NOTE]
    return lines


def _join_cell(r: dict[str, Any]) -> str:
    join = r.get("join") or {}
    text = f"{r.get('players_playing', r['players'])}/{r['players']}"
    if join.get("join_s") is not None and join["join_s"] >= 0:
        text += f" in {join['join_s']:.1f} s"
        setup = join.get("setup_ms") or {}
        if setup.get("p99") is not None:
            text += f" (setup p99 {setup['p99']:.0f} ms)"
    return text


def _generator_cell(r: dict[str, Any]) -> str:
    cpu = r["cpu"]
    lg = cpu["loadgen_cores"]
    text = f"{lg.get('players', 0):.2f}, {lg.get('publisher', 0):.2f}, {_pct(cpu['core1_busy'])}"
    drain = r.get("drain")
    if drain:
        text += f", {drain['reads_per_s']:,.0f} reads/s"
    return text + (" ⚠" if r.get("loadgen_saturated") else "")


def _fanout_table(rows: list[dict[str, Any]]) -> list[str]:
    nginx = _median([r["cpu_s_per_gb"] for r in _rows(rows, "nginx")])
    lines = [
        "| | joined | kept up | received / published rate: min, p5, median "
        "| delivered Mbit/s "
        "| server CPU in cores (of which system) | core 0 busy | CPU-s per GB delivered "
        "| vs nginx-rtmp "
        "| RSS MiB: before players, after joins, max in window "
        "| latency ms: p50, p99, max (samples) "
        "| latency p50 / p99 ms: player joined first, joined last "
        "| generator: players, publisher (cores), core 1 busy, drain reads "
        "| notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rr = r["player_rate_ratio"]
        lat = r["latency_ms"]
        cpu = r["cpu"]
        rss = r["rss_kb"]
        lines.append(
            f"| {_label(r, rows)} | {_join_cell(r)} | {_kept(r)} "
            f"| {_f(rr['min'])}, {_f(rr['p5'])}, {_f(rr['median'])} "
            f"| {r['delivered_bps'] / 1e6:.0f} "
            f"| {cpu['server_cores']:.2f} ({cpu.get('server_sys_cores', 0):.2f}) "
            f"| {_pct(cpu['core0_busy'])} | {_f(r['cpu_s_per_gb'])} "
            f"| {_ratio(r['cpu_s_per_gb'], nginx)} "
            f"| {_mib(rss['idle'])}, {_mib(rss['connected'])}, {_mib(rss['max'])} "
            f"| {_f(lat['p50'], '.1f')}, {_f(lat['p99'], '.1f')}, {_f(lat['max'], '.0f')} "
            f"({lat['count']}) "
            f"| {_lat_pair(lat.get('first_joined'))}, {_lat_pair(lat.get('last_joined'))} "
            f"| {_generator_cell(r)} | {_flag(r)} |"
        )
    return lines


def _ingest_table(rows: list[dict[str, Any]], bps: float) -> list[str]:
    lines = [
        "| | publishers | read in real time | ingested Mbit/s | server CPU (cores) "
        "| CPU-s per GB ingested "
        "| vs nginx-rtmp (median) | RSS max MiB | RSS per publisher KiB "
        "| publisher lag max ms "
        "| unsent backlog max: bytes (ms of one stream) | generator core busy | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
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
        realtime = r.get("publishers_realtime")
        realtime_text = "–" if realtime is None else f"{realtime}/{r['publishers']}"
        lines.append(
            f"| {_label(r, same)} | {r['publishers']} | {realtime_text} "
            f"| {r['ingest_wire_bps'] / 1e6:.1f} "
            f"| {cpu['server_cores']:.3f} | {_f(r['cpu_s_per_gb'])} "
            f"| {_ratio(r['cpu_s_per_gb'], nginx)} "
            f"| {_mib(r['rss_kb']['max'])} | {_f(r.get('rss_per_publisher_kb'), '.0f')} "
            f"| {r['publisher_max_lag_ms']:.0f} "
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
    low: list[dict[str, Any]],
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
            "- Fan-out at 2.66 Mbit/s, server CPU per GB delivered, aiortmp / nginx-rtmp: "
            f"{cpu_text}.",
            f"- Resident memory, aiortmp / nginx-rtmp: {rss_text} (same N order).",
            f"- Latency p99 in ms, aiortmp / nginx-rtmp: {lat_text} (same N order).",
            f"- Up to N = {ns[-1]}: {kept}.",
        ]
    if low:
        lines.append("- Fan-out at 232 kbit/s, one core, aiortmp vs nginx-rtmp:")
        for n in sorted({r["players"] for r in low}):
            rows = [r for r in low if r["players"] == n]
            parts = []
            for server in ("aiortmp", "nginx"):
                mine = _rows(rows, server)
                if not mine:
                    continue
                worst = min(mine, key=lambda r: r["kept_up"])
                cores = _median([r["cpu"]["server_cores"] for r in mine])
                text = (
                    f"{_NAMES[server]} joined {_joined(mine)}, "
                    f"{worst['kept_up']}/{worst['players']} kept up"
                    + (" but late" if any(_late(r) for r in mine) else "")
                    + f", {_pct(cores)} of its core, p99 {p99(rows, server)} ms"
                )
                if any(r.get("loadgen_saturated") for r in mine):
                    text += " (⚠ generator saturated)"
                parts.append(text)
            value = ratio(rows, lambda r: r["cpu_s_per_gb"])
            alike = _served_all(_rows(rows, "aiortmp")) and _served_all(_rows(rows, "nginx"))
            gen = max(_generator_cores(r) for r in rows)
            lines.append(
                f"    - N = {n}: "
                + "; ".join(parts)
                + f"; CPU per GB ratio {_f(value)}×"
                + ("" if alike else " (not like for like: the loads differed)")
                + f"; load generator at most {gen:.2f} cores."
            )
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
            memory = ratio(rows, lambda r: r["rss_kb"]["max"])
            if value is not None and count > 1:
                realtime = [
                    f"{_NAMES[r['server']]} {r['publishers_realtime']}/{count}"
                    for r in rows
                    if r.get("publishers_realtime") is not None
                ]
                lines.append(
                    f"- Ingest from {count} publishers, server CPU per GB ingested, "
                    f"aiortmp / nginx-rtmp: {value:.2f}×; resident memory {_f(memory)}×"
                    + (f"; read in real time: {', '.join(realtime)}" if realtime else "")
                    + "."
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


def _fanout_sections(rows: list[dict[str, Any]], title: str, suffix: str = "") -> list[str]:
    out = [f"## {title}", "", *_summary(rows), ""]
    for n in sorted({r["players"] for r in rows}):
        out += [f"### N = {n} players{suffix}", ""]
        out += _fanout_table([r for r in rows if r["players"] == n])
        out += [""]
    return out


def _is_low(r: dict[str, Any]) -> bool:
    return r.get("case") == "low"


def render(doc: dict[str, Any]) -> str:
    """The Markdown report of one results document."""
    m = doc["machine"]
    s = doc["settings"]
    media = doc["media"]
    media_low = doc.get("media_low")
    results = doc["results"]
    fanouts = _by(results, "fanout")
    fan = [r for r in fanouts if not r.get("rcvlowat") and not _is_low(r)]
    low = [r for r in fanouts if _is_low(r)]
    lowat = [r for r in fanouts if r.get("rcvlowat") and not _is_low(r)]
    runs = [doc, *doc.get("more_runs", [])]
    produced = " and ".join(f"`{run['command']}`" for run in runs)
    streams = f"a 720p30 H.264 + AAC stream at {media['payload_bps'] / 1e6:.2f} Mbit/s"
    if media_low:
        streams += (
            " (and, for the message-bound cases, a 180p30 one at 232 kbit/s nominal, "
            f"{media_low['payload_bps'] / 1e3:.0f} kbit/s of payload measured)"
        )
    out = [
        "# Benchmarks: aiortmp and nginx-rtmp side by side",
        "",
        "<!-- Generated by `make bench` (bench/run.py, bench/report.py): do not edit by hand;",
        "     re-run the command below to refresh. -->",
        "",
        f'Produced by {produced} (each is `make bench ARGS="..."`), '
        f"{doc['started']} to {runs[-1]['finished']}.",
        "",
        f"One publisher sends {streams} in real time; N players play it. The server is "
        "pinned to core 0, the load generator to core 1. **Ratios are aiortmp divided by "
        "nginx-rtmp** (below 1 is better for aiortmp). ⚠ marks rows where the load "
        f"generator's core, or its processes, were ≥ {s['saturated_threshold']:.0%} busy, "
        "so the generator may have limited the result.",
        "",
    ]
    out += _headline(fan, low, _by(results, "ingest"), _by(results, "frames"), lowat)
    if low:
        out += _fanout_sections(
            low, "Fan-out at 232 kbit/s: N players on one core", " at 232 kbit/s"
        )
    if fan:
        out += _fanout_sections(fan, "Fan-out at 2.66 Mbit/s: N players")
    if lowat:
        values = sorted({r["rcvlowat"] for r in lowat})
        out += [
            f"## Beyond 2000 players: players with `SO_RCVLOWAT` = {values[0]} bytes",
            "",
            "Players of the Python load generator that read whatever arrives cost it about "
            "0.4 core per 1000 players, so one core cannot play more than about 2000. Here "
            f"each player sets `SO_RCVLOWAT` = {values[0]} bytes: the kernel wakes it once "
            "per that many bytes, which makes the generator several times cheaper. It also "
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
        gop = media.get("gop_bytes_max")
        out += [
            "## Ingest: publishers and no player",
            "",
            "Server CPU per GB received from publishers. The publishers' *lag* is how late "
            "the generator wrote a message against its timestamp; the *unsent backlog* is "
            "what was queued towards the server (user space + kernel send queue), sampled "
            "every 2 s of the window: a publisher was **read in real time** if its largest "
            "sample stayed under one second of its stream. *RSS per publisher* is the "
            "server's largest RSS in the window less its RSS before the publishers came, "
            "divided by their number"
            + (
                f"; one GOP of this stream (2 s) is {gop / 1024:.0f} KiB of payload, and "
                "aiortmp caches the last GOP of each stream "
                f"(`gop_cache_max_bytes` = {s.get('aiortmp_gop_cache_max_bytes', 0) / 2**20:g} "
                "MiB by default)."
                if gop
                else "."
            ),
            "",
        ]
        out += _ingest_table(ingest, media["payload_bps"])
        out += [""]
    fr = _by(results, "frames")
    if fr:
        out += [
            f"## Do all frames arrive? {s['publishers']} publishers, one player each",
            "",
            "Each player joins before its publisher starts and follows every message; after "
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
    ]
    out += _method(doc)
    return "\n".join(out)


def _method(doc: dict[str, Any]) -> list[str]:
    """How the numbers were made: the part of the report a reader checks first."""
    s = doc["settings"]
    media = doc["media"]
    media_low = doc.get("media_low")
    compiled = s.get("generator", "python") == "c"
    ticks = s.get("drain_tick_ms") or {}
    out = [
        "## Method",
        "",
        "Commands: `make bench` runs `python -m bench.run` (every case below, both servers; "
        "`ARGS=...` passes options: `--quick` for small N and 5 s windows, `--players`, "
        "`--low-players`, `--servers`, `--repeat`, `--generator python`, `--profile`; "
        "`python -m bench.run --help` lists them). `--render RESULTS.json` rewrites this "
        "page from a results file. Where the CPU goes (perf profiles and their commands): "
        "[profiles.md](profiles.md).",
        "",
        f"- Media (`bench/media.py`, made once by FFmpeg 9, looped with rising timestamps): "
        f"`{media['file']}`: 1280x720 30 fps libx264 CBR 2.5 Mbit/s, keyframe every 2 s, "
        "2 B-frames, AAC 128 kbit/s stereo"
        + (
            f"; `{media_low['file']}`: 320x180 30 fps libx264 CBR 200 kbit/s with AAC "
            "32 kbit/s, the same GOP and frame rate, so as many messages a second (about "
            "77) for a tenth of the bytes: the cost there is per message"
            if media_low
            else ""
        )
        + ".",
        "- Servers: a fresh process per scenario, `taskset -c 0`. aiortmp: `aiortmp serve` "
        + (
            f"(uvloop, settings `{s['aiortmp_settings']}`, "
            if s.get("aiortmp_settings")
            else "(uvloop, default settings: `fanout_interval_ms = "
            f"{s.get('aiortmp_fanout_interval_ms', 0):g}`, "
        )
        + "chunk size 4096, HTTP off, `[limits] max_connections` and "
        "`max_connections_per_ip` raised to 100000). nginx-rtmp: one process "
        "(`master_process off`), `worker_connections 65536`, `chunk_size 4096`, "
        "`application live { live on; }`; it leaves Nagle's algorithm on for its "
        "sockets (no `TCP_NODELAY`), aiortmp does not, and its `listen` takes no "
        "`backlog=`, so its accept queue holds nginx's default 511 connections where "
        "aiortmp asks for 4096.",
        f"- Open files: the runner raises `RLIMIT_NOFILE` to 65536 where the hard limit "
        f"allows (here the servers ran with {s.get('rlimit_nofile', '?')}); the drain client "
        "raises its own to what its connections need. 12,000 players need about 12,000 "
        "descriptors in the server and in the drain client.",
    ]
    if compiled:
        out += [
            "- Load generator, on core 1: one Python publisher process (`bench/loadgen.py`, "
            "uvloop) writing pre-serialized chunks paced by timestamp, and **one compiled "
            "drain client** (`bench/drain.c`, built by `make bench` with the system C "
            "compiler into `bench/cache/`): one process, one thread, epoll, non-blocking "
            "sockets, 256 KiB reads into one buffer. Every player is a real RTMP client: "
            "simple handshake, connect, createStream, Set Buffer Length, play; it follows "
            "the chunk stream header by header (payloads skipped, not copied), obeys Set "
            "Chunk Size, sends an Acknowledgement every Window Acknowledgement Size bytes "
            "and answers Ping Requests. Players connect from 127.0.0.2 .. "
            f"127.0.0.{1 + int(s.get('src_addrs', 0))} in turn "
            "(`IP_BIND_ADDRESS_NO_PORT`), so the ephemeral port range is never the limit.",
            "- The drain players are read in rounds: every "
            f"{ticks.get('hd', 0):g} ms at 2.66 Mbit/s"
            + (f" and every {ticks['low']:g} ms at 232 kbit/s" if ticks.get("low") else "")
            + f" (about {s.get('drain_read_kb', 16):g} KiB per read; the socket buffers "
            "hold that many times over, and the kernel acknowledges what arrives in the "
            "meantime as it always does). The generator's cost is per `recv()` rather "
            "than per byte, and a player blocked in `read()` would make one per server "
            "write: reading in rounds is what lets one core drain 12,000 connections. It "
            "also spares the server the wake-ups of 12,000 readers (on loopback the "
            "sender's system call delivers the data and wakes the reader), which real "
            "players on other machines spare it too. A snapshot reads every player first, "
            "so byte counts are exact at the window's edges.",
            "- Reading in rounds changes what the servers pay, and with it the 2.66 Mbit/s "
            "ratios, compared with reports made with the Python players, which read as data "
            "arrived: a reader woken for every server write makes that write pay for the "
            "wake-up (on loopback the writer's system call delivers the data), and "
            "nginx-rtmp writes once per message (about 77 a second per player) where aiortmp "
            "writes once per 20 ms batch. Between rounds the kernel acknowledges arriving "
            "data from its delayed-ACK timer, which runs on the core that received the data "
            "(the server's, on loopback) and, for nginx-rtmp, releases what Nagle's "
            "algorithm held back in the same timer. Neither is exactly what a server pays "
            "for players on other machines; rounds are what one core can sustain for 12,000 "
            "players. `--read-kb 0` reads as data arrives (the drain client then saturates "
            "its core near 1,000 players at 2.66 Mbit/s).",
            "- Two latency players (also in the drain client) play the same stream and are "
            "read as soon as data arrives, one joined before the N players and one after "
            "them (aiortmp writes to its players in join order and nginx-rtmp in reverse, "
            "so each server serves one of them first and the other last). For each coded "
            "video frame the publisher records `CLOCK_MONOTONIC` when it wrote it and the "
            "latency player when it had read the whole message; the runner joins them by "
            "RTMP timestamp (one clock for every process of the machine). p50/p99 are over "
            "both players; the figure includes the generator core's scheduling, so it is "
            "an upper bound of the server's share.",
            "- **Joined**: the player got `NetStream.Play.Start` within "
            f"{s.get('join_timeout_s', 30):g} s of its `connect()`; players connect at "
            f"{s['connect_rate_per_s']:g}/s at 2.66 Mbit/s and at "
            f"{s.get('low_connect_rate_per_s', s['connect_rate_per_s']):g}/s at 232 kbit/s "
            "(12,000 in 24 s); *in X s* is from the first `connect()` to the last "
            "`Play.Start`.",
            "- **Generator share**: the CPU of the drain client and of the publisher "
            "(`/proc/PID/stat`) in the window, with core 1's busy share and the drain "
            "client's `recv()` rate; a row is marked ⚠ when core 1 or the generator "
            f"processes were ≥ {s['saturated_threshold']:.0%} busy. On loopback, part of "
            "the TCP work of one side runs in the other side's system calls (a reader's "
            "acknowledgement can release data nginx-rtmp's socket held back for Nagle's "
            "algorithm, and that transmission then runs on core 1): the generator's share "
            "is higher against nginx-rtmp for the same bytes.",
        ]
    else:
        out += [
            "- Load generator (`bench/loadgen.py`, uvloop, `taskset -c 1`): one publisher "
            "process writing pre-serialized chunks paced by timestamp, with the latency "
            "players in the same process; one process for the N players. Players set up "
            "with aiortmp's `ClientSession` (handshake, connect, createStream, play), then "
            "only count bytes into one shared buffer and acknowledge every window. "
            + (
                f"They set `SO_RCVLOWAT` = {s['rcvlowat']} bytes, so the kernel wakes them "
                "once per that many bytes (this also spares the server's system calls some "
                "wake-ups: not what real players do). "
                if s["rcvlowat"]
                else "They read whatever arrives, as real players do (no `SO_RCVLOWAT`). "
            )
            + f"Players join at {s['connect_rate_per_s']:g}/s.",
            "- **Latency**: for every coded video frame, the time from the publisher's write "
            "to a latency player having parsed the whole message, on one monotonic clock "
            "(same process). Two latency players: one joins before the N players, one after "
            "them; p50/p99 are over both.",
        ]
    out += [
        f"- Each fan-out run: all players join, {s['warmup_s']:g} s warm-up, then a "
        f"{s['window_s']:g} s window. A player **kept up** if its byte rate in the window "
        f"(RTMP bytes received) was ≥ {s['keep_up_threshold']:.0%} of the publisher's payload "
        "byte rate over the same window (chunk headers add 0.3 % at 2.66 Mbit/s and 2–5 % "
        "at 232 kbit/s, so a player that gets everything is at 1.00–1.05). A server that "
        "fell behind earlier and is catching up passes that test with a higher rate; the "
        "latency players show it: rows whose median latency exceeds "
        f"{_LATE_MS / 1000:g} s, or whose players received 3 % more than the publisher "
        "wrote, are marked *late*.",
        "- **CPU-s per GB**: the server process's utime + stime (`/proc/PID/stat`, children "
        "excluded) in the window, divided by the bytes all players received in it (GB = "
        "10^9 bytes). It includes the kernel's TCP work done in the server's system calls "
        "(loopback delivery to the players). *core 0 busy* is the whole core's busy share "
        "from `/proc/stat` (softirq included). RSS is `VmRSS`, sampled every 0.25 s.",
        "- Other jobs share this machine. Servers and generators run at niceness "
        f"{s.get('nice', 0)}; each run starts once other processes use less than "
        f"{s.get('foreign_max_cores', 0.1):g} cores (or after a while), and is redone "
        "when the server spent more than "
        f"{s.get('max_runqueue_wait', 0.03):.0%} of the window waiting for a CPU "
        "(`/proc/PID/schedstat`) while other processes ran; the notes column says when a "
        "run stayed disturbed or others ran beside it.",
        "- Ingest: the 2.66 Mbit/s publisher × 1 and × N without players; frame check: N "
        "publishers, one player each (see the tables).",
        "",
        "Raw numbers: `bench/results/*.json` of the run (not committed).",
        "",
    ]
    return out


def write_report(doc: dict[str, Any], path: Path) -> None:
    """Write :func:`render` of ``doc`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc))
