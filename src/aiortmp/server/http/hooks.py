"""Event hooks: webhooks (POST JSON) and exec hooks (run a command), off the media path.

Server events reach :meth:`HookService.on_event` synchronously, inside media processing, so
it only enqueues or schedules and returns:

- **Webhooks** (``[[hooks.webhook]]``): one bounded queue and one sender task per webhook,
  so a receiver sees events in the order they happened. Each event is POSTed as JSON with a
  per-attempt timeout and retried with exponential backoff (5xx, 408, 429 and network
  errors; other 4xx answers are final). When the queue is full the event is dropped and
  counted (``server.stats["webhook_events_dropped"]``); undelivered events are counted in
  ``webhook_failures``. With ``secret`` set, ``X-Aiortmp-Signature: sha256=<hex>`` is the
  HMAC-SHA256 of the body.
- **Exec hooks** (``[[hooks.exec]]``): ``on = "publish"`` runs the command while the stream
  is live, restarted with backoff if it exits, and stopped (SIGTERM to its process group,
  SIGKILL after ``stop_timeout_s``) on unpublish. Other events run the command once, killed
  after ``timeout_s``. Commands run without a shell; each placeholder expands inside the
  one argument that holds it (see :func:`expand_command`): ``{app}`` and ``{name}`` only if
  they are plain names (:data:`NAME_PATTERN`), else the hook does not run for that event;
  values the client chose freely (``{tc_url}``, reasons, error messages) are never
  substituted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

import aiortmp
from aiortmp.errors import UnsafeValueError
from aiortmp.hub.bus import EventKind, ServerEvent

from ..config import ExecHookConfig, ServerConfig, WebhookConfig

if TYPE_CHECKING:
    from ..app import RTMPServer

__all__ = [
    "NAME_PATTERN",
    "ExecHooks",
    "HookService",
    "WebhookSender",
    "event_payload",
    "expand_command",
]

logger = logging.getLogger("aiortmp.hooks")

#: What ``{app}`` and ``{name}`` must be to reach an exec hook: letters, digits, ``_ . -``,
#: 1 to 128 of them, not starting with ``-`` (an option) or ``.`` (``..``, a hidden file).
#: Nothing a program could read as an option, a path step or shell syntax.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# {remote} is the socket's peer address (never a header): "1.2.3.4:5", "[::1]:5".
_REMOTE_PATTERN = re.compile(r"[0-9A-Za-z.:\[\]%_]{1,80}")
# String details the server makes itself (the recording path is built from record_dir and
# sanitized names); integer details are counters. Other strings come from the client or
# carry its words (tc_url, reason, message) and are never substituted.
_SERVER_STRING_DETAILS = frozenset({"path", "protocol"})
# Details that look like placeholders but are client-controlled: a warning at start.
_REFUSED_PLACEHOLDERS = frozenset({"tc_url", "reason", "message", "error", "query"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Answers worth another attempt; any other 4xx means the request itself is refused.
_RETRYABLE_4XX = frozenset({408, 425, 429})
# A supervised command that ran this long before exiting restarts with the initial delay.
_STABLE_RUN_S = 30.0
_STDERR_TAIL_BYTES = 4096


def _json_safe(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    return str(value)


def event_payload(event: ServerEvent, seq: int, now_s: float) -> dict[str, Any]:
    """The JSON object a webhook receives for ``event``.

    Args:
        event: the server event.
        seq: this webhook's event number, from 1 (gaps mean dropped events).
        now_s: UNIX time of the event, in seconds.

    Returns:
        ``{"event", "seq", "time", "session_id", "remote", "app", "name", "details"}``.
    """
    return {
        "event": str(event.kind),
        "seq": seq,
        "time": now_s,
        "session_id": event.session_id,
        "remote": event.remote,
        "app": event.app,
        "name": event.name,
        "details": _json_safe(event.details),
    }


def _checked(placeholder: str, value: str, pattern: re.Pattern[str]) -> str:
    if pattern.fullmatch(value) is None:
        raise UnsafeValueError(f"{{{placeholder}}} {value[:64]!r} is not a plain name")
    return value


def expand_command(command: Sequence[str], event: ServerEvent) -> list[str]:
    """Substitute the event's placeholders in the arguments of ``command``.

    One pass per argument: a substituted value is never scanned again, and it stays inside
    the argument that held the placeholder (the command runs without a shell).

    - ``{app}``, ``{name}``: must match :data:`NAME_PATTERN`;
    - ``{session_id}``, ``{event}``, ``{remote}`` (the socket's peer address): server-made;
    - details: integers (``{bytes}``...) and ``{path}``, ``{protocol}``. Other details
      (``{tc_url}``, ``{reason}``...) are chosen by the client: never substituted.

    Unknown placeholders are left as they are.

    Args:
        command: the configured argv.
        event: the event that triggers it.

    Returns:
        The argv to execute.

    Raises:
        UnsafeValueError: the command uses ``{app}``, ``{name}`` or ``{remote}`` and the
            event's value is not a plain name or address: the hook must not run.
    """
    values: dict[str, str | Callable[[], str]] = {
        "app": lambda: _checked("app", event.app, NAME_PATTERN),
        "name": lambda: _checked("name", event.name, NAME_PATTERN),
        "remote": lambda: _checked("remote", event.remote, _REMOTE_PATTERN),
        "session_id": str(event.session_id),
        "event": str(event.kind),
    }
    for key, value in event.details.items():
        if key in values:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            values[key] = str(value)
        elif key in _SERVER_STRING_DETAILS and isinstance(value, str):
            values[key] = value

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            return match.group(0)
        return value if isinstance(value, str) else value()

    return [_PLACEHOLDER.sub(substitute, arg) if "{" in arg else arg for arg in command]


def _warn_refused_placeholders(hooks: Sequence[ExecHookConfig]) -> None:
    for hook in hooks:
        for arg in hook.command:
            for match in _PLACEHOLDER.finditer(arg):
                if match.group(1) in _REFUSED_PLACEHOLDERS:
                    logger.warning(
                        "exec hook %s: %s is chosen by the client and is never substituted "
                        "(left as is)",
                        hook.command[0],
                        match.group(0),
                    )


class WebhookSender:
    """One webhook: a bounded queue and the task that POSTs it in order.

    Args:
        config: the webhook's configuration.
        server: the server (for its counters).
    """

    def __init__(self, config: WebhookConfig, server: RTMPServer) -> None:
        self.config = config
        self.server = server
        self.events = frozenset(config.events)
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(config.queue_size)
        self.seq = 0
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, session: aiohttp.ClientSession) -> None:
        """Start the sender task."""
        self._task = asyncio.get_running_loop().create_task(self._run(session))

    def offer(self, event: ServerEvent) -> None:
        """Queue ``event`` if the webhook wants it; drop it (counted) if the queue is full."""
        if event.kind not in self.events:
            return
        self.seq += 1
        try:
            self.queue.put_nowait(event_payload(event, self.seq, time.time()))
        except asyncio.QueueFull:
            self.dropped += 1
            self.server.stats["webhook_events_dropped"] += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                logger.warning(
                    "webhook %s: queue full (%d events), %d events dropped so far",
                    self.config.url,
                    self.config.queue_size,
                    self.dropped,
                )

    async def close(self, timeout_s: float) -> None:
        """Send what is queued for up to ``timeout_s`` seconds, then stop."""
        task = self._task
        if task is None:
            return
        self._task = None
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            pass
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            payload = await self.queue.get()
            if payload is None:
                return
            await self._deliver(session, payload)

    async def _deliver(self, session: aiohttp.ClientSession, payload: dict[str, Any]) -> None:
        config = self.config
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"aiortmp/{aiortmp.__version__}",
            **config.headers,
        }
        if config.secret:
            digest = hmac.new(config.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Aiortmp-Signature"] = f"sha256={digest}"
        timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        delay = config.backoff_s
        error = ""
        for attempt in range(config.retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                async with session.post(
                    config.url, data=body, headers=headers, timeout=timeout
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
                    error = f"HTTP {response.status}"
                    if 400 <= response.status < 500 and response.status not in _RETRYABLE_4XX:
                        break
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.failed += 1
        self.server.stats["webhook_failures"] += 1
        logger.warning(
            "webhook %s: %s event #%d not delivered: %s",
            config.url,
            payload["event"],
            payload["seq"],
            error,
        )


async def _terminate(proc: asyncio.subprocess.Process, timeout_s: float) -> int:
    """SIGTERM the process group, SIGKILL it after ``timeout_s``; return the exit code."""
    if proc.returncode is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return await proc.wait()


async def _collect_tail(
    stream: asyncio.StreamReader | None, tail: collections.deque[bytes]
) -> None:
    # Keep only the end of the output: enough to explain an exit, bounded in memory.
    if stream is None:
        return
    size = 0
    while chunk := await stream.read(4096):
        tail.append(chunk)
        size += len(chunk)
        while size > _STDERR_TAIL_BYTES and len(tail) > 1:
            size -= len(tail.popleft())


def _tail_text(tail: collections.deque[bytes]) -> str:
    text = b"".join(tail).decode(errors="replace").replace("\r", "\n")
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-5:])


class ExecHooks:
    """Commands run on events; the ``publish`` ones supervised for the stream's lifetime.

    Args:
        server: the server.
    """

    def __init__(self, server: RTMPServer) -> None:
        self.server = server
        self.hooks: list[ExecHookConfig] = list(server.config.hooks.exec)
        _warn_refused_placeholders(self.hooks)
        #: (hook index, app, name) → the supervisor task of a publish hook
        self.supervisors: dict[tuple[int, str, str], asyncio.Task[None]] = {}
        self._oneshots: set[asyncio.Task[None]] = set()
        #: pids of the commands running now (for tests and the log)
        self.running: dict[tuple[int, str, str], int] = {}

    def on_event(self, event: ServerEvent) -> None:
        """Start or stop commands for ``event`` (never blocks)."""
        if event.kind is EventKind.UNPUBLISH:
            for key in [k for k in self.supervisors if k[1:] == (event.app, event.name)]:
                self._cancel(self.supervisors.pop(key))
        for index, hook in enumerate(self.hooks):
            if hook.on is not event.kind or not _matches(hook, event):
                continue
            try:
                argv = expand_command(hook.command, event)
            except UnsafeValueError as exc:
                logger.warning(
                    "%s/%s: exec hook %s not run on %s: %s",
                    _printable(event.app),
                    _printable(event.name),
                    hook.command[0],
                    event.kind,
                    exc,
                )
                continue
            loop = asyncio.get_running_loop()
            if hook.on is EventKind.PUBLISH:
                key = (index, event.app, event.name)
                previous = self.supervisors.pop(key, None)
                if previous is not None:
                    self._cancel(previous)
                self.supervisors[key] = loop.create_task(self._supervise(key, hook, argv))
            else:
                task = loop.create_task(self._run_once(hook, argv))
                self._oneshots.add(task)
                task.add_done_callback(self._oneshots.discard)

    def _cancel(self, task: asyncio.Task[None]) -> None:
        # Keep it tracked until its command is gone, so stop() waits for the SIGTERM/SIGKILL.
        task.cancel()
        self._oneshots.add(task)
        task.add_done_callback(self._oneshots.discard)

    async def _spawn(self, argv: list[str]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            # Its own process group: SIGTERM reaches a shell's children too, and a Ctrl-C
            # on the server's terminal does not hit it before the server stops it.
            start_new_session=True,
        )

    async def _supervise(
        self, key: tuple[int, str, str], hook: ExecHookConfig, argv: list[str]
    ) -> None:
        label = f"{key[1]}/{key[2]}"
        loop = asyncio.get_running_loop()
        delay = hook.restart_delay_s
        try:
            while True:
                started = loop.time()
                try:
                    proc = await self._spawn(argv)
                except OSError as exc:
                    logger.error("%s: exec hook %s cannot start: %s", label, argv[0], exc)
                else:
                    self.running[key] = proc.pid
                    logger.info("%s: exec hook started (pid %d): %s", label, proc.pid, argv)
                    tail: collections.deque[bytes] = collections.deque()
                    reader = loop.create_task(_collect_tail(proc.stderr, tail))
                    try:
                        code = await proc.wait()
                    except asyncio.CancelledError:
                        code = await _terminate(proc, hook.stop_timeout_s)
                        logger.info(
                            "%s: exec hook stopped (pid %d, exit %d)", label, proc.pid, code
                        )
                        raise
                    finally:
                        self.running.pop(key, None)
                        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                            await asyncio.wait_for(reader, 1.0)
                    logger.warning(
                        "%s: exec hook exited with %d while the stream is live; restarting "
                        "in %gs%s",
                        label,
                        code,
                        delay,
                        f": {_tail_text(tail)}" if tail else "",
                    )
                if loop.time() - started > _STABLE_RUN_S:
                    delay = hook.restart_delay_s
                await asyncio.sleep(delay)
                delay = min(max(delay * 2, 0.1), hook.restart_delay_max_s)
        finally:
            if self.supervisors.get(key) is asyncio.current_task():
                del self.supervisors[key]

    async def _run_once(self, hook: ExecHookConfig, argv: list[str]) -> None:
        try:
            proc = await self._spawn(argv)
        except OSError as exc:
            logger.error("exec hook on %s cannot start %s: %s", hook.on, argv[0], exc)
            return
        tail: collections.deque[bytes] = collections.deque()
        reader = asyncio.get_running_loop().create_task(_collect_tail(proc.stderr, tail))
        try:
            code = await asyncio.wait_for(proc.wait(), hook.timeout_s)
        except TimeoutError:
            code = await _terminate(proc, hook.stop_timeout_s)
            logger.warning("exec hook on %s killed after %gs: %s", hook.on, hook.timeout_s, argv)
        except asyncio.CancelledError:
            await _terminate(proc, hook.stop_timeout_s)
            raise
        finally:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(reader, 1.0)
        if code:
            logger.warning(
                "exec hook on %s exited with %d: %s%s",
                hook.on,
                code,
                argv,
                f": {_tail_text(tail)}" if tail else "",
            )

    async def stop(self) -> None:
        """Stop every command (SIGTERM, then SIGKILL) and wait for them, including the ones
        an unpublish is already stopping."""
        tasks = [*self.supervisors.values(), *self._oneshots]
        self.supervisors.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _printable(value: str) -> str:
    # A name from the network in a log line: no control characters, bounded.
    return value[:64].encode("unicode_escape").decode("ascii")


def _matches(hook: ExecHookConfig, event: ServerEvent) -> bool:
    if hook.app is not None and hook.app != event.app:
        return False
    return hook.name_regex is None or re.fullmatch(hook.name_regex, event.name) is not None


class HookService:
    """The hooks component: webhooks and exec hooks from ``config.hooks``.

    Args:
        server: the server whose events are hooked.
    """

    def __init__(self, server: RTMPServer) -> None:
        self.server = server
        self.webhooks: list[WebhookSender] = []
        self.exec = ExecHooks(server)
        self._session: aiohttp.ClientSession | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start the webhook senders and listen to server events."""
        self._start_webhooks(self.server.config)
        self._unsubscribe = self.server.subscribe(self.on_event)

    def _start_webhooks(self, config: ServerConfig) -> None:
        self.webhooks = [WebhookSender(w, self.server) for w in config.hooks.webhook]
        if self.webhooks and self._session is None:
            self._session = aiohttp.ClientSession()
        for sender in self.webhooks:
            assert self._session is not None
            sender.start(self._session)

    def on_event(self, event: ServerEvent) -> None:
        """Server event listener: queue for webhooks, start/stop exec hooks."""
        for sender in self.webhooks:
            sender.offer(event)
        self.exec.on_event(event)

    async def stop(self, drain_s: float = 2.0) -> None:
        """Stop listening, deliver queued webhooks for up to ``drain_s``, stop commands."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.exec.stop()
        await asyncio.gather(*(w.close(drain_s) for w in self.webhooks))
        self.webhooks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def reload(self, config: ServerConfig) -> None:
        """New webhooks and exec hooks apply to new events; queued webhook events are still
        sent to their old destination, and running commands keep running."""
        old = self.webhooks
        self._start_webhooks(config)
        self.exec.hooks = list(config.hooks.exec)
        _warn_refused_placeholders(self.exec.hooks)
        loop = asyncio.get_running_loop()
        for sender in old:
            task = loop.create_task(sender.close(30.0))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
