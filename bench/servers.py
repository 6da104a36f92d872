"""The servers under test, pinned to one core, and what ``/proc`` says about them.

- aiortmp: ``aiortmp serve`` with a TOML file that raises ``[limits] max_connections``
  and ``max_connections_per_ip`` to 100000 (12,000 players come from a few loopback
  addresses) and without the HTTP surface.
- nginx-rtmp: Debian's nginx with ``libnginx-mod-rtmp`` loaded from a temporary
  ``nginx.conf``: one process (``master_process off``), ``worker_connections 65536``,
  ``chunk_size 4096`` as aiortmp. Its open-file limit is the one it inherits from the
  runner (``worker_rlimit_nofile`` only applies to worker processes, and there are none).

CPU time is ``utime + stime`` of the server process (``/proc/PID/stat`` fields 14 and 15,
children excluded), RSS is ``VmRSS`` of ``/proc/PID/status``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SERVERS",
    "CoreTimes",
    "Server",
    "core_times",
    "nginx_rtmp_module",
    "other_cpu",
    "proc_cpu_s",
    "proc_cpu_times",
    "proc_rss_kb",
    "proc_runqueue_wait_s",
    "start_server",
]

SERVERS = ("aiortmp", "nginx")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_REPO = Path(__file__).resolve().parent.parent


def proc_cpu_times(pid: int) -> tuple[float, float]:
    """CPU seconds in user and in system mode the process used so far, children excluded."""
    with open(f"/proc/{pid}/stat") as fh:
        stat = fh.read()
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / _CLK_TCK, int(fields[12]) / _CLK_TCK


def proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process used so far, children excluded."""
    user, system = proc_cpu_times(pid)
    return user + system


def other_cpu(exclude: set[int]) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds of every process not in ``exclude``: (user processes, kernel threads).

    Other people's jobs on the machine (tests, fuzzers) compete with the server and the
    load generator for their cores; the runner waits for a quiet machine and reports what
    ran beside it. Kernel threads (``ksoftirqd``...) are apart: they may carry our traffic.
    """
    users: dict[int, float] = {}
    kthreads: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in exclude:
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        ppid = int(fields[1])
        (kthreads if pid == 2 or ppid == 2 else users)[pid] = cpu
    return users, kthreads


def proc_runqueue_wait_s(pid: int) -> float:
    """Seconds the process spent runnable but waiting for a CPU (``/proc/PID/schedstat``).

    The direct measure of interference: another process on the server's core shows here.
    """
    try:
        with open(f"/proc/{pid}/schedstat") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_rss_kb(pid: int) -> int:
    """Resident set size of the process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True, kw_only=True, slots=True)
class CoreTimes:
    """One line of ``/proc/stat`` for a core, in clock ticks."""

    busy: int
    total: int


def core_times(core: int) -> CoreTimes:
    """Busy (everything but idle and iowait) and total ticks of ``cpuN``."""
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith(f"cpu{core} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]
                total = sum(values[:8])  # guest time is already counted in user
                return CoreTimes(busy=total - idle, total=total)
    raise RuntimeError(f"no cpu{core} in /proc/stat")


def nginx_rtmp_module() -> Path:
    """The ``ngx_rtmp_module.so`` of Debian's ``libnginx-mod-rtmp``."""
    for base in (Path("/usr/lib/nginx/modules"), Path("/usr/share/nginx/modules")):
        candidate = base / "ngx_rtmp_module.so"
        if candidate.exists():
            return candidate
    raise RuntimeError("ngx_rtmp_module.so not found: apt-get install libnginx-mod-rtmp")


@dataclass(kw_only=True, slots=True)
class Server:
    """A running server process.

    Attributes:
        kind: ``aiortmp`` or ``nginx``.
        proc: the process (its pid is the server's: ``taskset`` execs it).
        port: the RTMP port on 127.0.0.1.
        log_path: where its log goes.
        command: the command line, for the report.
    """

    kind: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    command: list[str]

    @property
    def pid(self) -> int:
        """The server's pid."""
        return self.proc.pid

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM (SIGQUIT for nginx: graceful), then SIGKILL after ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if self.kind == "nginx" else signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_problems(self) -> dict[str, object]:
        """Warning/error lines of the server log: counts by level and a few samples."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return {"counts": {}, "samples": []}
        if self.kind == "nginx":
            pattern = re.compile(r"\[(warn|error|crit|alert|emerg)\]")
        else:
            pattern = re.compile(r" (WARNING|ERROR|CRITICAL) ")
        counts: dict[str, int] = {}
        samples: list[str] = []
        kinds: set[str] = set()
        lines = text.splitlines()
        for i, line in enumerate(lines):
            match = pattern.search(line)
            if match is None:
                continue
            level = match.group(1).lower()
            counts[level] = counts.get(level, 0) + 1
            # One sample per distinct message shape (numbers and addresses removed).
            shape = re.sub(r"[0-9]+", "#", line.split(match.group(0), 1)[-1])[:120]
            if shape not in kinds and len(samples) < 8:
                kinds.add(shape)
                sample = line.strip()[:300]
                # A Python traceback follows: its last line names the exception.
                j = i + 1
                while j < len(lines) and not re.match(r"\d{4}[-/]\d\d[-/]\d\d ", lines[j]):
                    j += 1
                if j > i + 1:
                    sample += " … " + lines[j - 1].strip()[:200]
                samples.append(sample)
        return {"counts": counts, "samples": samples}

    def keep_log(self, dest: Path) -> None:
        """Copy the log out of the temporary directory (for a look after the run)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self.log_path, dest)
        except OSError:
            pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not listening on {port} after {timeout_s:g}s")


_AIORTMP_TOML = """\
# bench: up to 12,000 players, from a few loopback addresses
[limits]
max_connections = 100000
max_connections_per_ip = 100000
"""

_NGINX_CONF = """\
load_module {module};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{
    worker_connections 65536;
}}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
        }}
    }}
}}
"""


def start_server(
    kind: str,
    workdir: Path,
    *,
    core: int = 0,
    nice: int = 0,
    python: str = "",
    aiortmp_settings: str = "",
) -> Server:
    """Start ``kind`` pinned to ``core`` on a free port of 127.0.0.1 and wait until it listens.

    Args:
        kind: ``aiortmp`` or ``nginx``.
        workdir: a temporary directory for its configuration and log.
        core: the CPU it is pinned to (``taskset -c``).
        nice: its niceness (``nice -n``; below 0 needs root).
        python: the venv's ``bin`` directory holding ``aiortmp`` (default: next to
            ``sys.executable``).
        aiortmp_settings: top-level TOML settings for aiortmp (``fanout_interval_ms = 20``).

    Raises:
        RuntimeError: the server did not start.
    """
    port = _free_port()
    taskset = ["taskset", "-c", str(core)]
    if nice:
        taskset = ["nice", "-n", str(nice), *taskset]
    if kind == "aiortmp":
        import sys

        bindir = Path(python) if python else Path(sys.executable).parent
        config = workdir / "aiortmp.toml"
        # Top-level keys must come before the [limits] table.
        config.write_text(f"{aiortmp_settings}\n{_AIORTMP_TOML}")
        log_path = workdir / "aiortmp.log"
        command = [
            str(bindir / "aiortmp"),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--config",
            str(config),
            "--no-http",
        ]
    elif kind == "nginx":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = workdir / "nginx.conf"
        conf.write_text(_NGINX_CONF.format(module=nginx_rtmp_module(), dir=workdir, port=port))
        log_path = workdir / "error.log"
        command = [nginx, "-p", str(workdir), "-c", str(conf), "-e", str(log_path)]
    else:
        raise ValueError(f"unknown server {kind!r}")
    log = open(workdir / "stdout.log" if kind == "nginx" else log_path, "wb")
    proc = subprocess.Popen(
        taskset + command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    log.close()
    server = Server(kind=kind, proc=proc, port=port, log_path=log_path, command=command)
    try:
        _wait_listening(port, proc)
    except RuntimeError:
        server.stop()
        raise
    return server
