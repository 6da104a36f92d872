"""``aiortmp serve --workers N`` as a subprocess, and how tests reach one of its workers."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiortmp.client as rtmp

from ..interop.peers import free_port


@dataclass
class WorkersProcess:
    """A supervisor and its workers."""

    proc: subprocess.Popen[bytes]
    port: int
    http_port: int
    log_path: Path

    def url(self, path: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/{path}"

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{path.lstrip('/')}"

    def api(self, path: str, method: str = "GET") -> Any:
        """A JSON answer from whichever worker the kernel picks (a new connection)."""
        request = urllib.request.Request(self.http_url(path), method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def text(self, path: str) -> str:
        with urllib.request.urlopen(self.http_url(path), timeout=10) as response:
            return str(response.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def workers(self) -> list[dict[str, Any]]:
        workers: list[dict[str, Any]] = self.api("/api/server")["workers"]
        return workers

    def ready_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.workers() if w["state"] == "ready"]

    def wait(self, check: Any, timeout_s: float = 15.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = check()
            except OSError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not met within {timeout_s} s\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def worker_of_port(self, local_port: int) -> int | None:
        """The worker number serving the client connection from ``local_port``."""
        for session in self.api("/api/sessions")["sessions"]:
            if session["remote"].endswith(f":{local_port}"):
                return int(session["id"]) >> 32
        return None


@contextlib.contextmanager
def run_workers(tmp: Path, *extra: str, workers: int = 2) -> Iterator[WorkersProcess]:
    """Start ``aiortmp serve --workers N`` (RTMP and HTTP on free loopback ports) and wait
    until every worker is ready; SIGTERM at the end."""
    port, http_port = free_port(), free_port()
    log_path = tmp / "workers.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiortmp.cli",
                "serve",
                "--workers",
                str(workers),
                "--listen",
                f"127.0.0.1:{port}",
                "--http-listen",
                f"127.0.0.1:{http_port}",
                "--log-level",
                "info",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = WorkersProcess(proc, port, http_port, log_path)
    try:
        server.wait(lambda: len(server.ready_workers()) == workers, 30, "workers ready")
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def connect_on(
    server: WorkersProcess, number: int, path: str = "live", attempts: int = 40
) -> rtmp.Connection:
    """A client connection that the kernel gave to worker ``number`` (others are closed).

    SO_REUSEPORT picks a worker per connection; a test that needs a given one connects
    until it gets it.
    """
    import asyncio

    for _ in range(attempts):
        conn = await rtmp.connect(server.url(path), timeout=10)
        transport = conn._protocol.transport if conn._protocol else None
        local_port = transport.get_extra_info("sockname")[1] if transport else 0
        found = await asyncio.to_thread(server.worker_of_port, local_port)
        if found == number:
            return conn
        await conn.close()
    raise AssertionError(f"no connection landed on worker {number} in {attempts} attempts")
