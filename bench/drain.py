"""The compiled drain client (``bench/drain.c``): build it, and the command that runs it.

``make bench`` builds ``bench/cache/drain`` with the system C compiler (``cc``, or ``$CC``)
the first time, and again whenever ``drain.c`` or the flags change (a stamp file holds a
hash of both); otherwise it does nothing. The build goes to a temporary file that is renamed
into place, so an interrupted build never leaves a broken binary.

The client itself is described in ``drain.c``'s header comment; :func:`drain_command` is
its command line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .media import CACHE_DIR

__all__ = ["DRAIN_BINARY", "DRAIN_SOURCE", "drain_command", "ensure_drain"]

DRAIN_SOURCE = Path(__file__).resolve().parent / "drain.c"
DRAIN_BINARY = CACHE_DIR / "drain"
_STAMP = CACHE_DIR / "drain.stamp"
_CFLAGS = ["-O2", "-g", "-std=gnu11", "-Wall", "-Wextra"]


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler: apt-get install gcc (bench/drain.c is built with it)")
    return cc


def ensure_drain() -> Path:
    """Build ``bench/cache/drain`` unless it is up to date.

    Returns:
        The path of the binary.

    Raises:
        RuntimeError: no C compiler.
        subprocess.CalledProcessError: the compiler failed.
    """
    cc = _compiler()
    digest = hashlib.sha256(
        DRAIN_SOURCE.read_bytes() + "\0".join([cc, *_CFLAGS]).encode()
    ).hexdigest()
    if DRAIN_BINARY.exists() and _STAMP.exists() and _STAMP.read_text().strip() == digest:
        return DRAIN_BINARY
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = DRAIN_BINARY.with_suffix(".tmp")
    print(f"bench: building {DRAIN_BINARY} with {cc}", file=sys.stderr, flush=True)
    subprocess.run([cc, *_CFLAGS, "-o", str(tmp), str(DRAIN_SOURCE), "-lm"], check=True)
    tmp.replace(DRAIN_BINARY)
    _STAMP.write_text(digest + "\n")
    return DRAIN_BINARY


def drain_command(
    *,
    port: int,
    count: int,
    rate: float,
    host: str = "127.0.0.1",
    app: str = "live",
    prefix: str = "s",
    streams: int = 1,
    latency_first: int = 0,
    latency_last: int = 0,
    tick_ms: float = 0.0,
    src_addrs: int = 0,
    timeout_s: float = 30.0,
    frames: bool = False,
) -> list[str]:
    """The command line of one drain client process.

    Args:
        port: the server's RTMP port on ``host``.
        count: drain players.
        rate: drain player connections started per second.
        host: the server's IPv4 address.
        app: the RTMP application.
        prefix: stream names are ``<prefix><i % streams>``.
        streams: how many streams the players spread over.
        latency_first: latency players joining before the drain players.
        latency_last: latency players joining after them.
        tick_ms: drain players are read in rounds this often (ms); 0: as data arrives.
        src_addrs: bind the players to 127.0.0.2 .. 127.0.0.(K+1) in turn (0: no bind).
        timeout_s: a player not playing this long after its ``connect()`` has failed.
        frames: report coded video/audio frames per player.

    Returns:
        The argv list (binary first).
    """
    argv = [
        str(DRAIN_BINARY),
        "--host",
        host,
        "--port",
        str(port),
        "--app",
        app,
        "--stream",
        prefix,
        "--streams",
        str(streams),
        "--count",
        str(count),
        "--rate",
        f"{rate:g}",
        "--latency-first",
        str(latency_first),
        "--latency-last",
        str(latency_last),
        "--tick-ms",
        f"{tick_ms:g}",
        "--src-addrs",
        str(src_addrs),
        "--timeout",
        f"{timeout_s:g}",
    ]
    if frames:
        argv.append("--frames")
    return argv
