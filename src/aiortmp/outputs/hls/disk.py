"""Mirroring an HLS output into a directory, for nginx or a CDN origin to serve.

``[hls] directory = "/var/www/hls"`` writes, for each stream with a running HLS output::

    /var/www/hls/<app>/<name>/index.m3u8        multivariant playlist
    /var/www/hls/<app>/<name>/v0.m3u8           media playlist (classic: no parts)
    /var/www/hls/<app>/<name>/v0-<token>-init0.mp4, v0-<token>-12.m4s ...

A static file server cannot hold a request (blocking reload) nor serve a part that is
still being made, so the files are classic HLS over fMP4: complete segments only, and
playlists rewritten when a segment completes (written to a temporary name, then renamed
over the old one, so readers never see half a playlist). Segments leaving the window are
deleted. Writes happen in a worker thread, in order, one batch at a time: the event loop
never waits for the disk, and a slow disk only delays the files.

Run the output all the time for such streams with ``[hls] always_on = ["app"]``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path

from .output import FMP4, HLSOutput

__all__ = ["DirectoryWriter", "stream_directory"]

logger = logging.getLogger("aiortmp.hls")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

# One operation: (file name, bytes to write) or (file name, None) to delete it.
_Op = tuple[str, bytes | None]


def _safe(part: str) -> str:
    # Stream names come from the network: never let one escape the directory.
    cleaned = _UNSAFE.sub("_", part).lstrip(".")
    return cleaned or "_"


def stream_directory(root: Path, app: str, name: str) -> Path:
    """Where a stream's files go: ``root/<app>/<name>`` with unsafe characters replaced.

    Args:
        root: the ``[hls] directory``.
        app: the application name.
        name: the stream name.
    """
    return root / _safe(app) / _safe(name)


class DirectoryWriter:
    """Writes one output's fMP4 playlists and segments into ``directory``.

    Args:
        directory: the stream's directory (created on the first write).

    Attributes:
        errors: write errors so far (each is logged once per batch).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.errors = 0
        self._files: set[str] = set()
        self._pending: list[_Op] = []
        self._task: asyncio.Task[None] | None = None
        self._multivariant = b""
        self._states: dict[str, tuple[int | None, bool, int]] = {}

    def update(self, output: HLSOutput) -> None:
        """Queue what changed in ``output`` since the last call (called on the loop)."""
        ops: list[_Op] = []
        wanted: set[str] = set()
        for variant in output.variants:
            segmenter = variant.fmp4
            for uri, data in segmenter.inits.items():
                wanted.add(uri)
                if uri not in self._files:
                    ops.append((uri, data))
            playlist = variant.playlists[FMP4]
            for segment in playlist.segments:
                if not segment.complete:
                    continue
                uri = playlist.segment_uri(segment.msn)
                wanted.add(uri)
                if uri not in self._files:
                    ops.append((uri, segment.data))
            name = variant.playlist_uri(FMP4)
            wanted.add(name)
            state = (playlist.last_complete_msn, playlist.ended, playlist.media_sequence)
            if (playlist.complete_count or playlist.ended) and self._states.get(name) != state:
                self._states[name] = state
                ops.append((name, playlist.render(low_latency=False).encode()))
        if output.ready(FMP4) and output.variants:
            multivariant = output.multivariant(FMP4).encode()
            wanted.add("index.m3u8")
            if multivariant != self._multivariant or "index.m3u8" not in self._files:
                self._multivariant = multivariant
                ops.append(("index.m3u8", multivariant))
        for uri in sorted(self._files - wanted):
            if uri.endswith(".m4s"):  # old segments go; playlists and inits stay
                ops.append((uri, None))
        for uri, content in ops:
            if content is None:
                self._files.discard(uri)
            else:
                self._files.add(uri)
        if not ops:
            return
        self._pending.extend(ops)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._apply, batch)
            except OSError as exc:
                self.errors += 1
                logger.warning("hls directory %s: %s", self.directory, exc)

    def _apply(self, batch: list[_Op]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Only the last write of a playlist in a batch matters.
        last: dict[str, int] = {name: i for i, (name, _) in enumerate(batch)}
        for index, (name, data) in enumerate(batch):
            if last[name] != index:
                continue
            path = self.directory / name
            if data is None:
                path.unlink(missing_ok=True)
                continue
            temporary = path.with_name(f".{name}.tmp")
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, path)

    async def close(self) -> None:
        """Wait for the queued writes."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)
