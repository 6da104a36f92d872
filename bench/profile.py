"""Where the server spends its CPU: py-spy (Python + native frames) and perf (kernel/user).

Run by :mod:`bench.run` with ``--profile PY_SPY`` *after* the measurement window of the
aiortmp fan-out runs, so the numbers in the tables are not disturbed by the profilers.
Both profilers run on the load generator's core.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["perf_split", "pyspy_record", "summarize_collapsed"]

_LINE = re.compile(r":\d+\)")


def pyspy_record(pyspy: str, pid: int, seconds: int, out: Path, core: int) -> dict[str, Any]:
    """Sample ``pid`` with ``py-spy record --native`` for ``seconds``; summarize the stacks.

    ``--native`` stops the process for each sample (100 Hz), which is why this does not
    run during the measurement window.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["taskset", "-c", str(core), pyspy, "record", "--native", "--pid", str(pid)]
    cmd += ["--duration", str(seconds), "--rate", "100", "--format", "raw", "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        return {"error": (proc.stderr or proc.stdout).strip()[-500:]}
    summary = summarize_collapsed(out.read_text())
    summary["file"] = str(out)
    return summary


def summarize_collapsed(text: str, top: int = 20) -> dict[str, Any]:
    """Self and inclusive shares of each function in py-spy's collapsed stacks.

    Returns:
        ``samples``, ``self`` and ``inclusive``: lists of ``[function, share]``, largest
        first (line numbers dropped so a function counts once).
    """
    total = 0
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = [_LINE.sub(")", f) for f in stack.split(";")]
        own[names[-1]] += n
        for name in set(names):
            incl[name] += n
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    # Frames every stack goes through (the loop, main...) say nothing: keep those below 99 %.
    inclusive = [(f, n / total) for f, n in incl.most_common() if n / total < 0.99]
    return {
        "samples": total,
        "self": [[f, n / total] for f, n in own.most_common(top)],
        "inclusive": [[f, share] for f, share in inclusive[:top]],
    }


def perf_split(pid: int, seconds: int, out: Path, core: int) -> dict[str, Any]:
    """``perf record`` of ``pid``: share of samples per binary (kernel, libpython, uvloop...)
    and the top symbols. Returns ``{}`` if perf is not installed."""
    perf = shutil.which("perf")
    if perf is None:
        return {}
    out.parent.mkdir(parents=True, exist_ok=True)
    record = ["taskset", "-c", str(core), perf, "record", "-o", str(out), "-p", str(pid)]
    proc = subprocess.run([*record, "--", "sleep", str(seconds)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}

    def report(sort: str, limit: int) -> list[list[Any]]:
        cmd = [perf, "report", "-i", str(out), "--no-children", "--sort", sort, "--stdio"]
        text = subprocess.run(cmd, capture_output=True, text=True).stdout
        rows: list[list[Any]] = []
        for line in text.splitlines():
            match = re.match(r"\s*([\d.]+)%\s+(.*?)\s*$", line)
            if match and not line.startswith("#"):
                name = re.sub(r"\s+-\s+-\s*$", "", match.group(2)).strip()
                rows.append([name, float(match.group(1)) / 100])
            if len(rows) >= limit:
                break
        return rows

    return {"dso": report("dso", 8), "symbols": report("dso,symbol", 25)}
