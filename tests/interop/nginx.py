"""nginx-rtmp (Debian ``nginx-light`` + ``libnginx-mod-rtmp``) as a test peer.

``run_nginx(tmp)`` writes an nginx.conf into ``tmp``, starts nginx in the foreground
(``daemon off; master_process off``) on a free loopback port, waits for the port, and stops
it on exit. Pass ``port=`` to start it again on the same port (a destination that comes
back). Shared by the relay tests and the benchmark.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .peers import debian_tool, free_port, wait_port

__all__ = ["NGINX_RTMP_MODULE", "NginxProcess", "nginx_conf", "run_nginx"]

NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

#: The default application: a plain live relay, as most nginx-rtmp deployments have.
LIVE_APPLICATION = "application live { live on; }"


@dataclass
class NginxProcess:
    """A running nginx-rtmp."""

    proc: subprocess.Popen[bytes]
    port: int
    prefix: Path

    def url(self, path: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/{path}"

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGTERM: fast shutdown (SIGQUIT would wait for every RTMP session to end).
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def nginx_conf(prefix: Path, port: int, applications: str = LIVE_APPLICATION) -> str:
    """An nginx.conf with one RTMP server on ``127.0.0.1:port``; logs and pid in ``prefix``."""
    return f"""
load_module {NGINX_RTMP_MODULE};
daemon off;
master_process off;
worker_processes 1;
error_log {prefix}/error.log info;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        {applications}
    }}
}}
"""


@contextlib.contextmanager
def run_nginx(
    tmp: Path, *, port: int | None = None, applications: str = LIVE_APPLICATION
) -> Iterator[NginxProcess]:
    """Run nginx-rtmp for the duration of the ``with`` block.

    A missing nginx or RTMP module is a failure, not a skip (``make sysdeps`` installs
    them), as for every Debian peer.
    """
    nginx = debian_tool("nginx")
    if not NGINX_RTMP_MODULE.exists():
        raise RuntimeError(f"{NGINX_RTMP_MODULE} is missing: run `make sysdeps`")
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port, applications))
    with open(tmp / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            [nginx, "-e", str(tmp / "error.log"), "-c", str(conf), "-p", f"{tmp}/"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = NginxProcess(proc, port, tmp)
    try:
        wait_port(port)
        yield server
    finally:
        server.stop()
