"""redis-server (Debian ``redis-server``) as a test peer: the cluster directory.

``run_redis(tmp)`` starts ``redis-server --port <free> --save "" --appendonly no`` in
``tmp`` (nothing persisted, so a restart comes back empty, as after a crash), waits until
it answers, and kills only that process on exit. ``RedisProcess.restart()`` kills it and
starts a new one on the same port. The system's own redis service is never touched.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .peers import debian_tool, free_port

__all__ = ["RedisProcess", "run_redis"]


def _ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2) as s:
        s.settimeout(0.5)
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")
    return False


def _spawn(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """Start redis-server on ``port`` and wait until it answers PING."""
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [
            debian_tool("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"redis-server did not start on port {port}:\n{text[-2000:]}")
        time.sleep(0.02)
    return proc


@dataclass
class RedisProcess:
    """A running redis-server of the test."""

    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL this test's redis-server (a crash: nothing saved, clients cut)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        """Kill it and start an empty one on the same port."""
        self.kill()
        self.proc = _spawn(self.port, self.workdir)


@contextlib.contextmanager
def run_redis(tmp: Path) -> Iterator[RedisProcess]:
    """Run a redis-server of our own for the duration of the ``with`` block.

    A missing redis-server is a failure, not a skip (``make sysdeps`` installs it).
    """
    workdir = tmp / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = RedisProcess(proc=_spawn(port, workdir), port=port, workdir=workdir)
    try:
        yield server
    finally:
        server.kill()
