"""Real peers for interop tests: FFmpeg 9 (imageio-ffmpeg), Debian tools, our server."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg

FFMPEG9 = imageio_ffmpeg.get_ffmpeg_exe()


def debian_tool(name: str) -> str:
    """Path of a Debian-packaged peer; `make test` installs them (scripts/sysdeps.sh).

    A missing tool is a failure, not a skip: CI must run every interop test.
    """
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run `make sysdeps` (scripts/sysdeps.sh)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@dataclass
class ServerProcess:
    """``aiortmp serve`` running as a subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    record_dir: Path
    log_path: Path
    http_port: int

    def http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/{path.lstrip('/')}"

    def url(self, path: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def run_server(
    tmp: Path,
    *extra: str,
    http: bool = False,
    file_size_limit: int | None = None,
    config: str | None = None,
) -> Iterator[ServerProcess]:
    """Start ``aiortmp serve`` on a free port, recording to ``tmp/records``.

    With ``http=True`` the HTTP surface listens on another free port, else it is off.
    ``file_size_limit`` (bytes) runs the server as under ``ulimit -f``; ``config`` is the
    text of a TOML configuration file.
    """
    if config is not None:
        (tmp / "aiortmp.toml").write_text(config)
        extra = ("--config", str(tmp / "aiortmp.toml"), *extra)

    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    port = free_port()
    http_port = free_port() if http else 0
    http_args = ["--http-listen", f"127.0.0.1:{http_port}"] if http else ["--no-http"]
    record_dir = tmp / "records"
    log_path = tmp / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiortmp.cli",
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--record-dir",
                str(record_dir),
                "--log-level",
                "info",
                *http_args,
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit if file_size_limit is not None else None,
        )
    server = ServerProcess(proc, port, record_dir, log_path, http_port)
    try:
        wait_port(port)
        if http:
            wait_port(http_port)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ffmpeg_publish_args(
    url: str,
    *,
    duration_s: float,
    gop: int = 50,
    rate: int = 25,
    size: str = "320x240",
    video: Sequence[str] = (
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
    ),
    audio: Sequence[str] = ("-c:a", "aac", "-b:a", "64k"),
    ffmpeg: str = FFMPEG9,
) -> list[str]:
    """FFmpeg publishing a generated stream (lavfi testsrc2 + sine) in real time."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "info",
        "-re",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        str(duration_s),
        *video,
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        *audio,
        "-f",
        "flv",
        url,
    ]


def ffmpeg_play_args(url: str, *extra: str, ffmpeg: str = FFMPEG9) -> list[str]:
    """FFmpeg playing ``url`` and decoding every frame to nowhere."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "info",
        "-i",
        url,
        *extra,
        "-f",
        "null",
        "-",
    ]


#: How the tests start Debian's Chromium (headless, no network chatter, a video may
#: play without a click).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@contextlib.contextmanager
def chromium_context(tmp: Path, **options: Any) -> Iterator[Any]:
    """A Playwright browser context of Debian's Chromium with a fresh profile in ``tmp``
    (``options`` go to ``launch_persistent_context``: viewport...)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp / "profile"),
            executable_path=debian_tool("chromium"),
            headless=True,
            args=CHROMIUM_FLAGS,
            **options,
        )
        try:
            yield context
        finally:
            context.close()


def popen(args: Sequence[str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"},
        **kw,  # type: ignore[call-overload]
    )


_FRAME_RE = re.compile(r"frame=\s*(\d+)")


def decoded_frames(stderr: str) -> int:
    """The last ``frame=`` count FFmpeg printed (video frames decoded and encoded)."""
    found = _FRAME_RE.findall(stderr)
    return int(found[-1]) if found else 0


def input_streams(stderr: str) -> list[str]:
    """FFmpeg's ``Stream #0:N...: Video: h264 ...`` lines of the first input."""
    lines = []
    section = ""
    for line in stderr.splitlines():
        if line.startswith("Input #"):
            section = "input"
        elif line.startswith("Output #") or line.startswith("Stream mapping"):
            section = ""
        elif section == "input" and "Stream #0:" in line:
            lines.append(line.strip())
    return lines
