"""The ``aiortmp`` command: ``aiortmp serve`` and the client commands.

``aiortmp serve [--listen HOST:PORT]... [--config FILE.toml] [--record-dir DIR]
[--log-level L] [--workers N|auto]``: the flags override the configuration file. With
``workers`` set, a supervisor runs N worker processes on the same ports
(:mod:`aiortmp.server.workers`; ``SIGUSR2`` starts a new generation without dropping
anyone).

Client commands (on :mod:`aiortmp.client`; progress on stderr, results on stdout, exit
status 1 on connection errors and rejections):

- ``aiortmp publish FILE.flv URL [--loop [N]] [--no-realtime] [--no-timecode]``: send an FLV
  file paced by its tag timestamps; ``--loop`` repeats it with increasing timestamps. An
  ``onFI`` wall-clock timecode (Flash Media Live Encoder's ``sd``/``st``) goes out every
  second so ``probe`` can measure the publish→play delay.
- ``aiortmp play URL [-o OUT.flv] [--duration S] [--start S]``: play; ``-o`` records what
  arrives as an FLV file whose timestamps start at 0. On a VOD URL
  (``rtmp://host/vod/clip.mp4``) it plays the file, from ``--start`` seconds, and ends
  with the file (``NetStream.Play.Complete``).
- ``aiortmp probe URL [--duration S] [--json]``: codecs, resolution, measured fps, GOP
  length, bitrates, and delay: from ``onFI`` timecodes when the publisher sends them, plus
  how far behind live the first frame was (the server's cached GOP) and arrival jitter.

``aiortmp recordings [--config FILE.toml | --record-dir DIR] [--app APP] [--name NAME]
[--json]``: the recordings in the record directory, one line per file (app, stream, UTC
start, duration, size), read from the disk (no server needed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any

from .server.config import ConfigError, load_config

__all__ = ["main", "run"]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on uvloop when installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server.app import RTMPServer

    overrides: dict[str, object] = {
        "listen": args.listen or None,
        "record_dir": args.record_dir,
        "log_level": args.log_level,
        "http.listen": args.http_listen,
        "tls.listen": args.tls_listen or None,
        "tls.cert": args.tls_cert,
        "tls.key": args.tls_key,
        "workers": args.workers,
    }
    if args.no_http:
        overrides["http.listen"] = []
    try:
        config = load_config(args.config, **overrides)
    except ConfigError as exc:
        print(f"aiortmp: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)
    if config.workers is not None:
        from .server.workers import Supervisor

        supervisor = Supervisor(
            config,
            config_path=args.config,
            overrides=overrides,
            drain_timeout_s=args.drain_timeout,
        )
        # The supervisor moves no media: the default loop (its child watcher) is enough.
        try:
            return asyncio.run(supervisor.run())
        except KeyboardInterrupt:
            return 0
    server = RTMPServer(config, config_path=args.config, config_overrides=overrides)
    try:
        run(server.serve_forever())
    except (OSError, ConfigError) as exc:
        logging.getLogger("aiortmp").error("cannot start: %s", exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


# -- client commands: publish / play / probe ------------------------------------------------------

_TIMECODE_INTERVAL_MS = 1000


class _Progress:
    """The progress line on stderr: media time, bitrate, frames (``\\r`` on a terminal)."""

    def __init__(self, label: str, *, enabled: bool = True) -> None:
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.interval_s = 0.5 if self.tty else 2.0
        self.started = time.monotonic()
        self.last_print = self.started
        self.window_bytes = 0
        self.total_bytes = 0
        self.frames = 0
        self.media_s = 0.0
        self.kbps = 0.0

    def update(self, media_ms: float, size: int, *, frame: bool) -> None:
        self.total_bytes += size
        self.window_bytes += size
        self.frames += frame
        self.media_s = max(self.media_s, media_ms / 1000)
        now = time.monotonic()
        if now - self.last_print >= self.interval_s:
            self.kbps = self.window_bytes * 8 / 1000 / (now - self.last_print)
            self.window_bytes = 0
            self.last_print = now
            self.show()

    def line(self) -> str:
        return (
            f"{self.label} {self.media_s:8.1f} s  {self.kbps:8.0f} kbit/s  "
            f"{self.frames:6d} frames  {self.total_bytes / 1e6:8.2f} MB"
        )

    def show(self) -> None:
        if self.enabled:
            end = "\r" if self.tty else "\n"
            print(self.line(), end=end, file=sys.stderr, flush=True)

    def finish(self) -> None:
        elapsed = max(1e-6, time.monotonic() - self.started)
        self.kbps = self.total_bytes * 8 / 1000 / elapsed
        if self.enabled:
            print(self.line() + f"  ({elapsed:.1f} s)", file=sys.stderr, flush=True)


def _install_stop(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM end the command cleanly (files are finalized), where possible."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests), or no signals on this platform


async def _until(
    stop: asyncio.Event, work: Coroutine[Any, Any, None], duration_s: float | None
) -> None:
    """Run ``work`` until it ends, ``stop`` is set, or ``duration_s`` seconds pass."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled():
        task.result()  # re-raise its error


def _timecode(now: float) -> dict[str, str]:
    """An ``onFI`` timecode as Flash Media Live Encoder sends it: local date and time."""
    stamp = datetime.datetime.fromtimestamp(now)
    return {"sd": stamp.strftime("%d-%m-%y"), "st": stamp.strftime("%H:%M:%S.%f")[:-3]}


def _parse_timecode(values: Sequence[Any]) -> float | None:
    """Unix time of an ``onFI`` ``{sd: "dd-mm-yy", st: "HH:MM:SS.mmm"}`` (local time)."""
    info = next((v for v in values if isinstance(v, Mapping)), None)
    if info is None or not isinstance(info.get("sd"), str) or not isinstance(info.get("st"), str):
        return None
    text = f"{info['sd']} {info['st']}"
    for layout in ("%d-%m-%y %H:%M:%S.%f", "%d-%m-%y %H:%M:%S"):  # FMLE may omit the ms
        try:
            return datetime.datetime.strptime(text, layout).timestamp()
        except ValueError:
            continue
    return None


def _looped_tags(path: str, passes: int | None) -> Iterator[tuple[int, int, bytes]]:
    """``(tag type, timestamp ms, payload)`` of an FLV file, ``passes`` times (0: forever).

    Each pass after the first is shifted to start one frame after the stream (audio or
    video) that ended last, so timestamps keep increasing; ``onMetaData`` goes once.
    """
    from .media.flv import FLVReader, TagType
    from .protocol import amf0

    on_metadata = amf0.encode("onMetaData")
    offset_ms = 0
    done = 0
    while True:
        first_ms: int | None = None
        last_ms: dict[int, int] = {}  # per tag type: last timestamp and frame step
        step_ms: dict[int, int] = {}
        with open(path, "rb") as fh:
            for tag in FLVReader(fh):
                kind, ts = tag.tag_type, tag.timestamp_ms
                if kind == TagType.SCRIPT:
                    if done and tag.payload.startswith(on_metadata):
                        continue
                else:
                    first_ms = ts if first_ms is None else min(first_ms, ts)
                    previous = last_ms.get(kind)
                    if previous is not None and ts > previous:
                        step_ms[kind] = ts - previous
                    last_ms[kind] = ts
                yield kind, ts + offset_ms, tag.payload
        done += 1
        if passes is None or (passes and done >= passes) or first_ms is None:
            return
        offset_ms += max(ts + step_ms.get(kind, 40) for kind, ts in last_ms.items()) - first_ms


async def _publish(args: argparse.Namespace) -> int:
    from .client import connect, parse_url
    from .media.flv import TagType
    from .protocol import amf0

    if not parse_url(args.url).stream:
        print("aiortmp: the URL needs a stream name: rtmp://host/app/stream", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    _install_stop(stop)
    loop = asyncio.get_running_loop()
    progress = _Progress("publish", enabled=not args.quiet)

    async with connect(args.url, timeout=args.timeout) as conn:
        publisher = await conn.publish()

        async def send() -> None:
            start_s = loop.time()
            first_ms: int | None = None
            next_timecode_ms = 0
            for kind, ts, payload in _looped_tags(args.file, args.loop):
                if first_ms is None:
                    first_ms = ts
                media_ms = ts - first_ms
                if not args.no_realtime:
                    # Real time: tag N goes out when its timestamp says, relative to the first.
                    delay_s = start_s + media_ms / 1000 - loop.time()
                    if delay_s > 0:
                        await asyncio.sleep(delay_s)
                if not args.no_timecode and media_ms >= next_timecode_ms:
                    timecode = amf0.ECMAArray(_timecode(time.time()))
                    publisher.write(TagType.SCRIPT, ts, amf0.encode("onFI", timecode))
                    next_timecode_ms = media_ms + _TIMECODE_INTERVAL_MS
                publisher.write(kind, ts, payload)
                await publisher.drain()
                progress.update(media_ms, len(payload), frame=kind == TagType.VIDEO)

        try:
            await _until(stop, send(), None)
        finally:
            progress.finish()
        await publisher.close()
    return 0


async def _play(args: argparse.Namespace) -> int:
    from .client import connect
    from .media.flv import FLVWriter, TagType

    stop = asyncio.Event()
    _install_stop(stop)
    progress = _Progress("play", enabled=not args.quiet)
    out = open(args.output, "wb") if args.output else None
    writer = FLVWriter(out) if out is not None else None
    try:
        async with connect(args.url, timeout=args.timeout) as conn:
            start_ms = -2.0 if args.start is None else args.start * 1000
            player = await conn.play(start_ms=start_ms)
            base_ms: int | None = None

            async def receive() -> None:
                nonlocal base_ms
                async for message in player:
                    if message.metadata is not None:
                        if writer is not None:
                            writer.write_metadata(message.metadata)
                        continue
                    if message.data is not None and message.data.name == "onFI":
                        continue  # timecodes: players would see an unknown data stream
                    if base_ms is None and message.type_id != TagType.SCRIPT:
                        if not message.is_sequence_header:
                            base_ms = message.timestamp_ms
                    # Recordings start at 0 (at the first frame), whatever the live
                    # timestamps were; cached sequence headers before it get 0.
                    ts = 0 if base_ms is None else max(0, message.timestamp_ms - base_ms)
                    if writer is not None:
                        writer.write_tag(message.type_id, ts, message.payload)
                    progress.update(
                        ts, len(message.payload), frame=message.type_id == TagType.VIDEO
                    )

            try:
                await _until(stop, receive(), args.duration)
            finally:
                progress.finish()
    finally:
        if writer is not None:
            writer.close()
        if out is not None:
            out.close()
    return 0


class _ProbeStats:
    """What ``aiortmp probe`` measures from the messages it plays."""

    def __init__(self) -> None:
        from .hub.info import StreamInfo

        self.info = StreamInfo()
        self.metadata: dict[str, Any] | None = None
        self.video_ts: list[int] = []
        self.video_bytes = 0
        self.keyframe_at: list[int] = []  # indexes into video_ts
        self.audio_ts: list[int] = []
        self.audio_bytes = 0
        self.offsets_ms: list[float] = []  # arrival (monotonic ms) - timestamp, per A/V frame
        self.delays_ms: list[float] = []  # from onFI timecodes
        self.messages = 0

    def add(self, message: Any, arrival_mono_s: float, arrival_wall_s: float) -> None:
        from .media.tags import AudioKind, AudioTag, VideoKind, VideoTag

        self.messages += 1
        if message.metadata is not None:
            if self.metadata is None:
                self.metadata = dict(message.metadata)
            return
        if message.data is not None:
            if message.data.name == "onFI":
                sent = _parse_timecode(message.data.values)
                if sent is not None:
                    self.delays_ms.append((arrival_wall_s - sent) * 1000)
            return
        header = message.header
        payload = message.payload
        if isinstance(header, VideoTag):
            kind = header.kind
            if kind is VideoKind.SEQUENCE_HEADER:
                self.info.on_video_header(payload)
            elif kind is VideoKind.KEYFRAME or kind is VideoKind.INTER:
                if kind is VideoKind.KEYFRAME:
                    self.keyframe_at.append(len(self.video_ts))
                    if self.info.wants_keyframe:
                        self.info.on_keyframe(payload)
                self.video_ts.append(message.timestamp_ms)
                self.video_bytes += len(payload)
                self.offsets_ms.append(arrival_mono_s * 1000 - message.timestamp_ms)
        elif isinstance(header, AudioTag):
            kind_a = header.kind
            if kind_a is AudioKind.SEQUENCE_HEADER:
                self.info.on_audio_header(payload)
            elif kind_a is AudioKind.FRAME:
                if self.info.wants_audio_frame:
                    self.info.on_audio_frame(payload)
                self.audio_ts.append(message.timestamp_ms)
                self.audio_bytes += len(payload)
                self.offsets_ms.append(arrival_mono_s * 1000 - message.timestamp_ms)

    @staticmethod
    def _rate(timestamps: list[int], size: int) -> tuple[float | None, int | None]:
        """(frames per second, bits per second) over the span of ``timestamps``."""
        if len(timestamps) < 2:
            return None, None
        span_ms = max(timestamps) - min(timestamps)
        if span_ms <= 0:
            return None, None
        frame_ms = span_ms / (len(timestamps) - 1)
        return round(1000 / frame_ms, 2), int(size * 8 * 1000 / (span_ms + frame_ms))

    def report(self) -> dict[str, Any]:
        import dataclasses
        import statistics

        fps, video_bps = self._rate(self.video_ts, self.video_bytes)
        _, audio_bps = self._rate(self.audio_ts, self.audio_bytes)
        gops = [b - a for a, b in itertools.pairwise(self.keyframe_at)]
        gop_s = None
        if gops and fps:
            gop_s = round(statistics.mean(gops) / fps, 3)
        media_ts = self.video_ts or self.audio_ts
        report: dict[str, Any] = {
            "video": [
                {"track_id": tid, **dataclasses.asdict(v)}
                for tid, v in sorted(self.info.video.items())
            ],
            "audio": [
                {"track_id": tid, **dataclasses.asdict(a)}
                for tid, a in sorted(self.info.audio.items())
            ],
            "metadata": self.metadata,
            "video_frames": len(self.video_ts),
            "audio_frames": len(self.audio_ts),
            "media_duration_s": round((max(media_ts) - min(media_ts)) / 1000, 3)
            if media_ts
            else 0.0,
            "fps": fps,
            "gop_frames": gops,
            "gop_frames_at_least": len(self.video_ts) - self.keyframe_at[-1]
            if self.keyframe_at
            else None,
            "gop_s": gop_s,
            "video_bitrate_bps": video_bps,
            "audio_bitrate_bps": audio_bps,
            "delay_ms": round(statistics.median(self.delays_ms), 1) if self.delays_ms else None,
            "delay_samples": len(self.delays_ms),
            "behind_live_at_join_ms": None,
            "jitter_ms": None,
        }
        if self.offsets_ms:
            base = min(self.offsets_ms)
            report["behind_live_at_join_ms"] = round(self.offsets_ms[0] - base, 1)
            tail = sorted(self.offsets_ms[len(self.offsets_ms) // 2 :])
            report["jitter_ms"] = round(tail[int(0.95 * (len(tail) - 1))] - base, 1)
        return report


def _format_probe(report: dict[str, Any]) -> str:
    lines = []
    for v in report["video"]:
        size = f"{v['width']}x{v['height']}" if v["width"] else "size unknown"
        fields = [v["codec"], v["profile"], v["level"], size]
        lines.append(f"video[{v['track_id']}]: " + " ".join(str(f) for f in fields if f))
    for a in report["audio"]:
        fields = [a["codec"], a["profile"]]
        if a["sample_rate"]:
            fields.append(f"{a['sample_rate']} Hz")
        if a["channels"]:
            fields.append(f"{a['channels']} ch")
        lines.append(f"audio[{a['track_id']}]: " + " ".join(str(f) for f in fields if f))
    if not report["video"] and not report["audio"]:
        lines.append("codecs: no sequence header received")
    lines.append(
        f"frames: {report['video_frames']} video, {report['audio_frames']} audio over "
        f"{report['media_duration_s']:.1f} s of media"
    )
    if report["fps"]:
        lines.append(f"frame rate: {report['fps']:g} fps (measured)")
    if report["gop_frames"]:
        gops = report["gop_frames"]
        gop_text = f"{min(gops)}" if min(gops) == max(gops) else f"{min(gops)}-{max(gops)}"
        seconds = f" ({report['gop_s']:g} s)" if report["gop_s"] else ""
        lines.append(f"GOP: {gop_text} frames{seconds}")
    elif report["gop_frames_at_least"] is not None:
        lines.append(f"GOP: at least {report['gop_frames_at_least']} frames (one keyframe seen)")
    for kind in ("video", "audio"):
        bps = report[f"{kind}_bitrate_bps"]
        if bps is not None:
            lines.append(f"{kind} bitrate: {bps / 1000:.0f} kbit/s")
    if report["delay_ms"] is not None:
        lines.append(
            f"publish->play delay: {report['delay_ms']:.0f} ms "
            f"(median of {report['delay_samples']} onFI timecodes)"
        )
    else:
        lines.append("publish->play delay: not measurable (no onFI wall-clock timecodes)")
    if report["behind_live_at_join_ms"] is not None:
        lines.append(
            f"behind live at join: {report['behind_live_at_join_ms']:.0f} ms (cached GOP); "
            f"arrival jitter p95: {report['jitter_ms']:.0f} ms"
        )
    return "\n".join(lines)


async def _probe(args: argparse.Namespace) -> int:
    from .client import connect

    stop = asyncio.Event()
    _install_stop(stop)
    stats = _ProbeStats()
    loop = asyncio.get_running_loop()
    async with connect(args.url, timeout=args.timeout) as conn:
        player = await conn.play()

        async def receive() -> None:
            async for message in player:
                stats.add(message, loop.time(), time.time())

        await _until(stop, receive(), args.duration)
    report = stats.report()
    if args.json:
        print(json.dumps(report, default=str, indent=2))
    else:
        print(_format_probe(report))
    return 0 if stats.messages else 1


def _client_command(
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
) -> Callable[[argparse.Namespace], int]:
    """Run a client command; errors become one line on stderr and exit status 1."""

    def command(args: argparse.Namespace) -> int:
        from .client import ClientError, RejectedError
        from .protocol.errors import RTMPError

        _setup_logging(args.log_level)
        try:
            result: int = run(handler(args))
        except RejectedError as exc:
            print(f"aiortmp: rejected by the server: {exc}", file=sys.stderr)
            return 1
        except (ClientError, RTMPError, OSError) as exc:
            print(f"aiortmp: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        return result

    return command


def _add_client_commands(sub: Any) -> None:
    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--timeout", type=float, default=10.0, metavar="S", help="per request (default 10)"
        )
        parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
        parser.add_argument(
            "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
        )

    publish = sub.add_parser("publish", help="publish an FLV file, paced by its tag timestamps")
    publish.add_argument("file", metavar="FILE.flv")
    publish.add_argument("url", metavar="URL", help="rtmp[s]://host[:port]/app/stream[?query]")
    publish.add_argument(
        "--loop",
        nargs="?",
        const=0,
        type=int,
        metavar="N",
        help="send the file N times (forever without N); timestamps keep increasing",
    )
    publish.add_argument(
        "--no-realtime", action="store_true", help="send as fast as the server takes it"
    )
    publish.add_argument(
        "--no-timecode",
        action="store_true",
        help="do not send onFI wall-clock timecodes (used by probe to measure delay)",
    )
    common(publish)
    publish.set_defaults(func=_client_command(_publish))

    play = sub.add_parser("play", help="play a stream, optionally recording it to FLV")
    play.add_argument("url", metavar="URL", help="rtmp[s]://host[:port]/app/stream[?query]")
    play.add_argument("-o", "--output", metavar="OUT.flv", help="write what is received")
    play.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    play.add_argument(
        "--start",
        type=float,
        metavar="S",
        help="a recorded (VOD) stream: start S seconds in (at the keyframe at or before)",
    )
    common(play)
    play.set_defaults(func=_client_command(_play))

    probe = sub.add_parser(
        "probe", help="play a stream for a while and print codecs, rates, GOP and delay"
    )
    probe.add_argument("url", metavar="URL", help="rtmp[s]://host[:port]/app/stream[?query]")
    probe.add_argument(
        "--duration", type=float, default=5.0, metavar="S", help="seconds to play (default 5)"
    )
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    common(probe)
    probe.set_defaults(func=_client_command(_probe))


# -- recordings ------------------------------------------------------------------------------


def _size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size_bytes)  # pragma: no cover


def _clock(ms: int) -> str:
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{ms // 100}"


def _cmd_recordings(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .outputs.record import RecordingCatalog

    record_dir = Path(args.record_dir) if args.record_dir else None
    if record_dir is None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"aiortmp: {exc}", file=sys.stderr)
            return 2
        record_dir = config.record_dir
    if record_dir is None:
        print(
            "aiortmp: no record directory (--record-dir, or record_dir in --config)",
            file=sys.stderr,
        )
        return 2
    files = RecordingCatalog(record_dir).list(args.app, args.name)
    if args.json:
        rows = [
            {
                "app": f.app,
                "name": f.name,
                "path": str(f.path),
                "format": f.format,
                "start": f.start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "duration_s": f.duration_ms / 1000,
                "bytes": f.size_bytes,
            }
            for f in files
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not files:
        print(f"no recordings in {record_dir}", file=sys.stderr)
        return 0
    table = [("APP", "STREAM", "START (UTC)", "DURATION", "SIZE", "FILE")]
    for f in files:
        table.append(
            (
                f.app,
                f.name,
                f"{f.start:%Y-%m-%d %H:%M:%S}.{f.start.microsecond // 1000:03d}",
                _clock(f.duration_ms),
                _size(f.size_bytes),
                f.path.name,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        cells[3] = row[3].rjust(widths[3])
        cells[4] = row[4].rjust(widths[4])
        print("  ".join(cells).rstrip())
    total = sum(f.size_bytes for f in files)
    print(f"{len(files)} files, {_size(total)}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aiortmp`` command."""
    parser = argparse.ArgumentParser(
        prog="aiortmp", description="Live-streaming RTMP server and client."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the RTMP server")
    serve.add_argument(
        "--listen",
        action="append",
        metavar="HOST:PORT",
        help="address to accept RTMP on (repeatable; default 0.0.0.0:1935)",
    )
    serve.add_argument("--config", metavar="FILE.toml", help="configuration file")
    serve.add_argument(
        "--record-dir", metavar="DIR", help="record every stream to DIR (FLV, or record_format)"
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default: info"
    )
    serve.add_argument(
        "--http-listen",
        action="append",
        metavar="HOST:PORT",
        help="address of the HTTP API/metrics/HTTP-FLV (repeatable; default 0.0.0.0:8080)",
    )
    serve.add_argument("--no-http", action="store_true", help="do not start the HTTP surface")
    serve.add_argument(
        "--tls-listen",
        action="append",
        metavar="HOST:PORT",
        help="address to accept RTMPS on (repeatable; port defaults to 1936)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain for RTMPS")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key for RTMPS")
    serve.add_argument(
        "--workers",
        metavar="N|auto",
        help="run N worker processes sharing the ports and streams (auto: one per core); "
        "SIGUSR2 then restarts them without dropping anyone (docs/workers.md)",
    )
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="with --workers: how long an old generation may serve its players after "
        "SIGUSR2 (default 300)",
    )
    serve.set_defaults(func=_cmd_serve)
    _add_client_commands(sub)
    recordings = sub.add_parser("recordings", help="list the recordings in the record directory")
    where = recordings.add_mutually_exclusive_group()
    where.add_argument("--config", metavar="FILE.toml", help="read record_dir from this file")
    where.add_argument("--record-dir", metavar="DIR", help="the record directory")
    recordings.add_argument("--app", help="only this application")
    recordings.add_argument("--name", help="only this stream name")
    recordings.add_argument("--json", action="store_true", help="print JSON")
    recordings.set_defaults(func=_cmd_recordings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aiortmp`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
