"""Video on demand over RTMP: ``[[vod]]`` applications play files, like nginx-rtmp's ``play``.

``[[vod]] app = "vod", dir = "/srv/media"`` makes ``rtmp://HOST/vod/REL/PATH.flv`` and
``rtmp://HOST/vod/mp4:REL/PATH.mp4`` play ``/srv/media/REL/PATH``. Names follow
nginx-rtmp, FFmpeg and librtmp: a ``mp4:`` or ``flv:`` prefix is dropped, a name without
an extension gets ``.mp4`` (after ``mp4:``) or ``.flv`` (FFmpeg and rtmpdump strip
``.flv`` from URLs), and since FFmpeg and rtmpdump put the first path steps after the app
into the app (``app = "vod/REL"``, name ``PATH.flv``), an app under a VOD app
contributes its steps to the path.

Paths never leave ``dir``: absolute paths, ``..`` steps, and symlinks that resolve
outside it are refused with ``NetStream.Play.StreamNotFound``, as is anything that is
not a readable FLV or MP4 file.

Each player gets its own private stream (not in the registry: no hooks, recording or
relays), fed by a :class:`~aiortmp.sources.file.FileSource`, and played by an
:class:`~aiortmp.outputs.rtmp_play.RTMPPlay` whose player pauses gaplessly
(:class:`VodPlayer`). The play is answered once the file is indexed (off the event loop;
indexes are cached while the file is unchanged).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from aiortmp.errors import FLVError, MP4Error
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.packet import rtmp_wire
from aiortmp.hub.stream import Stream, StreamSettings
from aiortmp.outputs.player import Player
from aiortmp.outputs.rtmp_play import PlayingConnection, RTMPPlay
from aiortmp.protocol.events import PlayRequest, SeekRequest, StreamLengthRequest
from aiortmp.protocol.session import NetStreamState
from aiortmp.sources.file import (
    _IO,
    FileSource,
    MediaFile,
    load_media_file,
)

if TYPE_CHECKING:
    from .config import PlayerPolicy, ServerConfig, VodConfig

__all__ = ["VodConnection", "VodPlay", "VodPlayer", "VodService", "resolve_vod_path"]

logger = logging.getLogger("aiortmp.vod")

_MP4_EXTENSIONS = (".mp4", ".m4v", ".m4a", ".mov", ".f4v", ".3gp")
#: Indexed files kept (by path, while their size and mtime do not change).
_CACHE_FILES = 16


def resolve_vod_path(root: Path, app_rest: str, name: str) -> Path | None:
    """The file a play name means under ``root``, or None if it is not allowed there.

    Args:
        root: the ``[[vod]]`` ``dir``.
        app_rest: what the connect app had after the VOD app (``"a/b"`` for ``vod/a/b``).
        name: the play name, query string removed (``mp4:dir/clip.mp4``, ``clip``).

    Returns:
        The resolved path of an existing regular file inside ``root`` (symlinks
        followed, and refused if they lead out), or None.
    """
    lowered = name.lower()
    default = ".flv"
    if lowered.startswith("mp4:"):
        name, default = name[4:], ".mp4"
    elif lowered.startswith("flv:"):
        name = name[4:]
    relative = f"{app_rest.strip('/')}/{name}" if app_rest.strip("/") else name
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("..", "") for part in relative.split("/")):
        return None
    if pure.suffix.lower() not in (".flv", *_MP4_EXTENSIONS):
        pure = pure.with_name(pure.name + default)
    try:
        base = root.resolve(strict=True)
        path = (base / pure).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


class VodConnection(PlayingConnection, Protocol):
    """What the VOD service needs of an RTMP connection."""

    id: int
    remote: str
    app: str
    playing: dict[int, RTMPPlay]

    def log(self, level: int, msg: str, *args: object) -> None:
        """Log one line about the connection."""

    def event(self, kind: EventKind, name: str = "", **details: Any) -> ServerEvent:
        """A server event about the connection."""
        ...


class VodPlayer(Player):
    """A player of a file: pausing stops the file and resuming goes on gaplessly (a live
    player drops what comes until the next keyframe).

    Attributes:
        source: the file source, once the file is open.
    """

    __slots__ = ("source",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source: FileSource | None = None

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the file (RTMP 1.0 §7.2.2.8)."""
        self.paused = paused
        self._update_simple()
        source = self.source
        if source is not None:
            if paused:
                source.pause()
            else:
                source.resume()


class VodPlay(RTMPPlay):
    """One file played on one NetStream: the RTMP host of a :class:`VodPlayer`, and the
    :class:`~aiortmp.sources.file.PlaybackHost` of its source."""

    __slots__ = ("name", "source", "vod_player", "_pending_seeks")

    def __init__(
        self,
        connection: PlayingConnection,
        message_stream_id: int,
        stream: Stream,
        policy: PlayerPolicy,
        clock: Any,
        name: str,
    ) -> None:
        super().__init__(connection, message_stream_id, stream, policy, clock)
        session = connection.session
        self.vod_player = VodPlayer(
            self,
            stream,
            policy,
            clock,
            rtmp_wire(message_stream_id, session.chunk_size),
            counter=session.connection,
        )
        self.player = self.vod_player
        self.name = name
        self.source: FileSource | None = None
        self._pending_seeks: list[SeekRequest] = []

    # -- PlaybackHost ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """The player or its connection is gone."""
        return self.player.closed or self.connection.closed

    def buffer_length_ms(self) -> int | None:
        """The client's Set Buffer Length for this NetStream."""
        return self.connection.session.buffer_length_ms(self.message_stream_id)

    def backlog_bytes(self) -> int:
        """Bytes queued on the connection."""
        return self.transport.get_write_buffer_size()

    def complete(self, source: FileSource) -> None:
        """``onPlayStatus NetStream.Play.Complete``, ``NetStream.Play.Stop``, StreamEOF."""
        connection = self.connection
        if self.closed or not connection.session.is_open:
            return
        connection.session.notify_play_complete(
            self.message_stream_id,
            self.name,
            duration_ms=max(0, source.position_ms - source.start_position_ms),
            bytes_sent=self.player.bytes_sent,
        )
        connection.flush()

    # -- the player side --------------------------------------------------------------

    def notify_unpublish(self, player: Player) -> None:
        """The file source ended because the player left: nothing to tell."""

    def seek(self, request: SeekRequest) -> None:
        """``seek``: to the keyframe at or before the position, then
        ``NetStream.Seek.Notify`` (a seek before the file is open waits for it)."""
        source = self.source
        session = self.connection.session
        if source is None:
            self._pending_seeks.append(request)
            return
        if session.stream_state(self.message_stream_id) is not NetStreamState.PLAYING:
            return
        self.player.gate.close()
        position = source.seek(request.position_ms)
        session.accept_seek(request, position)
        self.connection.flush()

    def started(self, source: FileSource) -> None:
        """The file is open and playing: apply the seeks that came meanwhile."""
        self.source = source
        self.vod_player.source = source
        pending, self._pending_seeks = self._pending_seeks, []
        for request in pending:
            self.seek(request)


class VodService:
    """The ``[[vod]]`` applications (a server component).

    Args:
        config: the server configuration (``vod`` entries, player policy).
        bus: where ``play`` events go.

    Attributes:
        entries: the ``[[vod]]`` entries by app.
    """

    def __init__(self, config: ServerConfig, bus: EventBus) -> None:
        self.config = config
        self.bus = bus
        self.entries: dict[str, VodConfig] = {entry.app: entry for entry in config.vod}
        self._cache: collections.OrderedDict[Path, MediaFile] = collections.OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- component --------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to start: files are opened per play."""

    async def stop(self) -> None:
        """Cancel the plays still opening their files."""
        for task in list(self._tasks):
            task.cancel()

    def reload(self, config: ServerConfig) -> None:
        """New ``[[vod]]`` entries apply to new plays."""
        self.config = config
        self.entries = {entry.app: entry for entry in config.vod}
        self._cache.clear()

    # -- names ------------------------------------------------------------------------

    def entry_for(self, app: str) -> tuple[VodConfig, str] | None:
        """The ``[[vod]]`` entry serving a connect app, and the rest of the app (the
        path steps FFmpeg and librtmp put there), or None."""
        app = app.strip("/")
        for base, entry in self.entries.items():
            if app == base:
                return entry, ""
            if app.startswith(base + "/"):
                return entry, app[len(base) + 1 :]
        return None

    def handles(self, app: str) -> bool:
        """Whether ``app`` is a VOD application."""
        return self.entry_for(app) is not None

    def resolve(self, app: str, name: str) -> Path | None:
        """The file ``app``/``name`` plays, or None (not VOD, missing, or outside)."""
        found = self.entry_for(app)
        if found is None:
            return None
        entry, rest = found
        return resolve_vod_path(entry.dir, rest, name)

    async def open(self, path: Path) -> MediaFile:
        """The index of ``path`` (cached while the file is unchanged).

        Raises:
            OSError: the file cannot be read.
            FLVError / MP4Error: not a readable FLV/MP4 file.
        """
        cached = self._cache.get(path)
        if cached is not None:
            try:
                info = os.stat(path)
            except OSError:
                info = None
            if info is not None and (info.st_size, info.st_mtime_ns) == (
                cached.size_bytes,
                cached.mtime_ns,
            ):
                self._cache.move_to_end(path)
                return cached
        media = await asyncio.get_running_loop().run_in_executor(_IO, load_media_file, path)
        self._cache[path] = media
        while len(self._cache) > _CACHE_FILES:
            self._cache.popitem(last=False)
        return media

    async def _media(self, app: str, name: str) -> MediaFile | None:
        path = self.resolve(app, name)
        if path is None:
            return None
        try:
            return await self.open(path)
        except (OSError, FLVError, MP4Error) as exc:
            logger.warning("VOD %s/%s: %s cannot be played: %s", app, name, path, exc)
            return None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- getStreamLength --------------------------------------------------------------

    def stream_length(self, connection: VodConnection, request: StreamLengthRequest) -> None:
        """Answer ``getStreamLength`` with the file's duration in seconds (0 if none)."""

        async def answer() -> None:
            media = await self._media(connection.app, request.name)
            if connection.closed or not connection.session.is_open:
                return
            length = media.duration_ms / 1000 if media is not None else 0.0
            connection.session.answer_stream_length(request, length)
            connection.flush()

        self._spawn(answer())

    # -- play -------------------------------------------------------------------------

    def play(self, connection: VodConnection, request: PlayRequest, name: str) -> None:
        """Play a file on the NetStream of ``request`` (access already granted).

        The NetStream is registered as playing at once, so ``seek``, ``pause`` and
        ``closeStream`` reach it while the file is opened; the play is then accepted
        (``NetStream.Play.Start`` + StreamIsRecorded) or refused with
        ``NetStream.Play.StreamNotFound``.
        """
        app = connection.app
        found = self.entry_for(app)
        assert found is not None
        entry = found[0]
        stream = Stream(
            app,
            name,
            scheduler=asyncio.get_running_loop(),
            settings=StreamSettings(
                gop_cache=False,
                fanout_interval_s=0.0,
                normalize_timestamps=False,  # the player seeks in the file's own time
            ),
        )
        loop = asyncio.get_running_loop()
        play = VodPlay(
            connection,
            request.stream_id,
            stream,
            self.config.player,
            loop.time,
            request.name,
        )
        connection.playing[request.stream_id] = play

        def still_wanted() -> bool:
            return (
                connection.playing.get(request.stream_id) is play
                and not connection.closed
                and connection.session.stream_state(request.stream_id)
                is NetStreamState.PLAY_PENDING
            )

        async def start() -> None:
            media = await self._media(app, name)
            if not still_wanted():
                return
            session = connection.session
            if media is None:
                connection.playing.pop(request.stream_id, None)
                session.reject_play(request, f"{name} not found")
                connection.flush()
                connection.log(logging.INFO, "play %s/%s: no such file", app, name)
                return
            session.accept_play(request, recorded=True)
            connection.flush()
            source = FileSource(
                stream,
                media,
                play,
                session_id=connection.id,
                start_ms=request.start_ms,
                duration_ms=request.duration_ms,
                max_lead_ms=round(entry.max_lead_s * 1000),
            )
            # The player does not wait for a publisher: no PublishNotify when the file
            # source attaches.
            play.player.waited_for_publisher = False
            stream.subscribe(play.player)
            source.start()
            play.started(source)
            connection.log(
                logging.INFO,
                "play %s/%s started (%s, %.1f s, from %d ms)",
                app,
                name,
                media.path,
                media.duration_ms / 1000,
                source.position_ms,
            )
            self.bus.emit(connection.event(EventKind.PLAY, name, live=False, vod=str(media.path)))

        self._spawn(start())
