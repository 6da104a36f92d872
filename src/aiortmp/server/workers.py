"""Worker processes: ``aiortmp serve --workers N`` uses every core, and restarts drop no one.

One Python process uses one core. With ``workers`` set (config ``workers = 4`` or
``"auto"`` — the number of usable cores —, or ``--workers N|auto``), ``aiortmp serve``
runs a :class:`Supervisor` that starts N worker processes, each a whole server
(:mod:`.worker` adds what makes them one server):

- **One port, N acceptors.** The supervisor binds every RTMP, RTMPS and HTTP address N
  times with ``SO_REUSEPORT`` — one socket per worker *slot* — and hands slot *i*'s
  sockets to worker *i*: the kernel spreads new connections over the workers. Binding
  once in the supervisor makes port 0 work, reports a busy port before any worker starts,
  and lets a new generation take over the very same sockets: no connection waiting in a
  listen queue is ever reset by a restart.
- **One owner per live name.** The supervisor keeps the directory: a publish anywhere
  claims its name first (:class:`~aiortmp.server.worker.OwnershipPolicy`); a second
  publisher gets ``NetStream.Publish.BadName`` whichever worker it reaches. Every claim
  and release is broadcast, so each worker knows where a stream lives; a play on another
  worker is served through a link from the owner (:mod:`aiortmp.sources.link`).
- **Restarts with backoff.** A worker that dies takes only its own connections: its
  names are released (their players elsewhere get ``UnpublishNotify`` and wait for a
  republish), the connections waiting in its slot's listen queues are handed to a live
  worker (:meth:`Supervisor.hand_off`), its slot's sockets are closed (new connections go
  to the others),
  and the slot gets a new worker after 0.2 s, doubling up to 10 s while it keeps dying.
- **Generations** (``SIGUSR2``; systemd: ``ExecReload=/bin/kill -USR2 $MAINPID``): a new
  generation of workers starts on the same sockets; once every one of them is ready,
  the old generation drains: it stops accepting, asks its publishers that announced
  ``capsEx`` Reconnect to reconnect (E-RTMP v2 ``NetConnection.Connect.ReconnectRequest``
  with their tcUrl), keeps its players fed from the new owner once a publisher moved,
  and exits when its last player left or at the drain deadline. The configuration is
  read again, so a new ``workers`` count applies.

``SIGHUP`` is passed on to the workers (each reloads its configuration); ``SIGTERM`` and
``SIGINT`` stop them all.

Supervisor and workers speak JSON lines over a socket pair (:class:`Channel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

from aiortmp.errors import ConfigError

from .config import ServerConfig, load_config, parse_host_port

__all__ = ["Channel", "Supervisor", "worker_count", "worker_main"]

logger = logging.getLogger("aiortmp.workers")

#: The environment variable a worker process finds its instructions in (JSON).
SPEC_ENV: Final = "AIORTMP_WORKER"
#: Longest JSON line on a channel (a snapshot of a busy worker).
_LINE_LIMIT: Final = 64 * 1024 * 1024
#: How long a new worker may take to be ready (seconds).
START_TIMEOUT_S: Final = 30.0
#: Default drain deadline of an old generation (seconds).
DRAIN_TIMEOUT_S: Final = 300.0
#: Restart delays of a slot whose worker died: first, cap (seconds); a worker that lived
#: this long resets them.
RESTART_INITIAL_S: Final = 0.2
#: Most connections taken from a dead worker's listen queues (the rest are reset).
HANDOFF_MAX: Final = 4096
#: File descriptors per hand-over message (SCM_MAX_FD is 253).
HANDOFF_BATCH: Final = 200
RESTART_MAX_S: Final = 10.0
RESTART_STABLE_S: Final = 10.0
#: How long the supervisor waits for its workers to exit on SIGTERM before SIGKILL.
STOP_TIMEOUT_S: Final = 10.0
_DEFAULT_PORTS: Final = {"rtmp": 1935, "rtmps": 1936, "http": 8080}


def worker_count(setting: int | str | None) -> int | None:
    """The number of workers for a ``workers`` setting.

    Args:
        setting: a count, ``"auto"`` (the cores this process may run on), or None.

    Returns:
        The count, or None: no supervisor, one process as always.
    """
    if setting is None:
        return None
    if setting == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    return int(setting)


# -- the channel ------------------------------------------------------------------------------


Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None] | dict[str, Any] | None]


class Channel:
    """JSON lines both ways over a stream socket: notifications ``{"op": ...}``, and
    requests (with an ``id``) that get one ``{"op": "answer", "id": ...}`` back.

    Args:
        reader / writer: the asyncio streams of the socket.
        handler: called with each message that is not an answer; what it returns
            (awaited if it is a coroutine) answers a request.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: Handler | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handler = handler
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    @classmethod
    async def over(cls, sock: socket.socket, handler: Handler | None = None) -> Channel:
        """A channel over a connected unix stream socket."""
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_LINE_LIMIT)
        return cls(reader, writer, handler)

    def send(self, message: Mapping[str, Any]) -> None:
        """Send a notification (dropped if the channel is closed)."""
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def request(self, message: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send a request and wait for its answer.

        Raises:
            TimeoutError: no answer within ``timeout_s``.
            ConnectionError: the channel closed.
        """
        if self.closed:
            raise ConnectionError("channel closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.send({**message, "id": request_id})
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._pending.pop(request_id, None)

    async def receive(self) -> dict[str, Any] | None:
        """Read one message directly (before :meth:`run`); None at EOF."""
        line = await self.reader.readline()
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        return message

    async def run(self) -> None:
        """Read and dispatch messages until EOF; pending requests then fail."""
        try:
            while line := await self.reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    logger.error("unreadable message on a worker channel: %.80r", line)
                    continue
                if message.get("op") == "answer":
                    future = self._pending.get(message.get("id", 0))
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    self._dispatch(message)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.close()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if self.handler is None:
            return
        try:
            result = self.handler(message)
        except Exception:
            logger.exception("handling %s failed", message.get("op"))
            result = None
        if asyncio.iscoroutine(result):
            task = asyncio.get_running_loop().create_task(self._answer_later(message, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif "id" in message:
            self._answer(message, result if isinstance(result, dict) else None)

    async def _answer_later(self, message: dict[str, Any], result: Awaitable[Any]) -> None:
        try:
            answer = await result
        except Exception:
            logger.exception("handling %s failed", message.get("op"))
            answer = None
        if "id" in message:
            self._answer(message, answer if isinstance(answer, dict) else None)

    def _answer(self, message: Mapping[str, Any], answer: Mapping[str, Any] | None) -> None:
        self.send({**(answer or {}), "op": "answer", "id": message["id"]})

    def close(self) -> None:
        """Close the socket; waiting requests fail with ConnectionError."""
        if self.closed:
            return
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("channel closed"))
        self._pending.clear()
        self.writer.close()


# -- the supervisor ---------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class WorkerProcess:
    """One worker process, as the supervisor sees it.

    Attributes:
        number: unique for the life of the supervisor (the high bits of its session ids).
        slot: which listening sockets it accepts on.
        generation: 1, then one more per SIGUSR2.
        state: ``starting``, ``ready``, ``draining`` or ``gone``.
        restart: started to replace a worker that died (restarted again if it dies
            before it is ready; a new generation's workers are not: it is given up).
    """

    number: int
    slot: int
    generation: int
    process: asyncio.subprocess.Process
    channel: Channel
    link_path: Path
    state: str = "starting"
    restart: bool = False
    started_s: float = dataclasses.field(default_factory=time.monotonic)
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = dataclasses.field(default_factory=list)
    #: the supervisor's end of the socket connections are handed over on (SCM_RIGHTS)
    handoff: socket.socket | None = None

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def info(self) -> dict[str, Any]:
        """What the API shows of the worker."""
        return {
            "number": self.number,
            "pid": self.pid,
            "slot": self.slot,
            "generation": self.generation,
            "state": self.state,
        }


def listen_addresses(config: ServerConfig) -> list[tuple[str, str]]:
    """``(kind, address)`` of every listener: ``rtmp``, ``rtmps`` and ``http``."""
    addresses = [("rtmp", item) for item in config.listen]
    addresses += [("rtmps", item) for item in config.tls.listen]
    addresses += [("http", item) for item in config.http.listen]
    return addresses


def bind_listener(host: str, port: int, *, backlog: int = 4096) -> socket.socket:
    """A listening TCP socket on ``host:port`` with SO_REUSEPORT (and SO_REUSEADDR).

    Raises:
        OSError: the address cannot be resolved or bound.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Supervisor:
    """Starts, restarts and replaces the worker processes; keeps the stream directory.

    Args:
        config: the validated configuration (``workers`` set).
        config_path: the configuration file (workers read it too; re-read on SIGUSR2).
        overrides: the command-line overrides (passed on to the workers).
        drain_timeout_s: how long an old generation may drain (seconds).

    Attributes:
        count: the number of workers per generation.
        generation: the current generation.
        workers: the live worker processes by number.
        owners: ``(app, name)`` → number of the worker that owns the live name.
        run_dir: where the workers' internal unix sockets are.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        config_path: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.config_path = str(config_path) if config_path is not None else None
        self.overrides = dict(overrides or {})
        self.drain_timeout_s = drain_timeout_s
        self.count = worker_count(config.workers) or 1
        self.generation = 1
        self.workers: dict[int, WorkerProcess] = {}
        self.owners: dict[tuple[str, str], int] = {}
        self.run_dir = Path(tempfile.mkdtemp(prefix="aiortmp-workers-"))
        self._numbers = itertools.count(1)
        self._addresses = listen_addresses(config)
        self._ports: dict[tuple[str, str], int] = {}
        self._slots: dict[int, dict[tuple[str, str], socket.socket]] = {}
        self._failures: dict[int, int] = {}
        self._stopping = False
        self._stop = asyncio.Event()
        self._upgrading = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- sockets ------------------------------------------------------------------------

    def slot_sockets(self, slot: int) -> dict[tuple[str, str], socket.socket]:
        """The listening sockets of ``slot``, bound on first use (same ports for all).

        Raises:
            OSError: an address cannot be bound.
        """
        sockets = self._slots.get(slot)
        if sockets is not None:
            return sockets
        sockets = {}
        try:
            for kind, item in self._addresses:
                host, port = parse_host_port(item, _DEFAULT_PORTS[kind])
                port = self._ports.get((kind, item), port)
                sock = bind_listener(host, port)
                sockets[(kind, item)] = sock
                if (kind, item) not in self._ports:
                    self._ports[(kind, item)] = sock.getsockname()[1]
                    logger.info("listening for %s on %s:%d", kind.upper(), *sock.getsockname()[:2])
        except BaseException:
            for sock in sockets.values():
                sock.close()
            raise
        self._slots[slot] = sockets
        return sockets

    def hand_off(self, slot: int) -> int:
        """Accept what waits in the listen queues of ``slot`` (its worker died; the
        supervisor holds the last copy of its sockets) and pass each connection to a ready
        worker of the current generation (SCM_RIGHTS over a datagram socket pair), which
        serves it as its own: a client that connected as the worker died is served,
        not reset. Connections that cannot be passed are closed.

        Returns:
            The connections handed over.
        """
        targets = [
            w
            for w in self.workers.values()
            if w.state == "ready" and w.generation == self.generation and w.handoff is not None
        ]
        moved = 0
        for (kind, _item), listener in self._slots.get(slot, {}).items():
            accepted: list[socket.socket] = []
            listener.setblocking(False)
            with contextlib.suppress(OSError):  # BlockingIOError: the queue is empty
                while len(accepted) < HANDOFF_MAX:
                    accepted.append(listener.accept()[0])
            for index, target in enumerate(targets):
                batch = accepted[index :: len(targets)]
                header = json.dumps({"kind": kind}).encode()
                for start in range(0, len(batch), HANDOFF_BATCH):
                    fds = [c.fileno() for c in batch[start : start + HANDOFF_BATCH]]
                    try:
                        socket.send_fds(target.handoff, [header], fds)  # type: ignore[arg-type]
                        moved += len(fds)
                    except OSError as exc:
                        logger.warning(
                            "cannot hand connections to worker %d: %s", target.number, exc
                        )
            for conn in accepted:
                conn.close()  # the worker has its own descriptor now
        return moved

    def close_slot(self, slot: int) -> None:
        """Close the supervisor's copy of a slot's sockets (the kernel stops sending new
        connections there once no worker has them open)."""
        for sock in self._slots.pop(slot, {}).values():
            sock.close()

    @property
    def ports(self) -> dict[tuple[str, str], int]:
        """The bound port of every ``(kind, address)``."""
        return dict(self._ports)

    # -- running ------------------------------------------------------------------------

    async def run(self) -> int:
        """Bind, start the first generation, supervise until SIGTERM/SIGINT.

        Returns:
            The exit status: 0, or 1 if the listeners cannot be bound or the first
            generation cannot start.
        """
        loop = asyncio.get_running_loop()
        try:
            for slot in range(self.count):
                self.slot_sockets(slot)
        except OSError as exc:
            logger.error("cannot start: %s", exc)
            self._cleanup()
            return 1
        for sig, action in (
            (signal.SIGTERM, self.stop),
            (signal.SIGINT, self.stop),
            (signal.SIGHUP, self._forward_hup),
            (signal.SIGUSR2, self.upgrade),
        ):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, action)
        logger.info("supervisor %d: starting %d workers", os.getpid(), self.count)
        try:
            first = [await self._spawn(slot, self.generation) for slot in range(self.count)]
        except OSError as exc:
            logger.error("cannot start a worker: %s", exc)
            await self._shutdown()
            return 1
        auth = self.config.auth
        if auth.channel_keys_file is None and any(
            rule.publish is not None and rule.publish.channel_keys for rule in auth.apps.values()
        ):
            logger.warning(
                "channel keys are kept per worker without auth.channel_keys_file: set one so "
                "that every worker knows the keys created through the API"
            )
        if not await self._all_ready(first):
            logger.error("cannot start: a worker did not start (see its log lines above)")
            await self._shutdown()
            return 1
        await self._stop.wait()
        await self._shutdown()
        return 0

    def stop(self) -> None:
        """Stop every worker and exit (SIGTERM, SIGINT)."""
        if not self._stopping:
            logger.info("supervisor: stopping the workers")
        self._stopping = True
        self._stop.set()

    def upgrade(self) -> None:
        """Start a new generation; the current one drains (SIGUSR2)."""
        if self._stopping:
            return
        if self._upgrading:
            logger.warning("supervisor: a new generation is already starting")
            return
        self._spawn_task(self._upgrade())

    async def _upgrade(self) -> None:
        self._upgrading = True
        try:
            try:
                config = load_config(self.config_path, **self.overrides)
            except ConfigError as exc:
                logger.error("new generation not started, the configuration is invalid: %s", exc)
                return
            count = worker_count(config.workers) or self.count
            old = [w for w in self.workers.values() if w.state in ("starting", "ready")]
            self.generation += 1
            logger.info(
                "supervisor: generation %d starting (%d workers); generation %d will drain",
                self.generation,
                count,
                self.generation - 1,
            )
            for slot in range(count, max(count, self.count)):
                self.close_slot(slot)  # fewer workers: their sockets go with the old ones
            self.count = count
            try:
                new = [await self._spawn(slot, self.generation) for slot in range(count)]
            except OSError as exc:
                logger.error("new generation not started: %s", exc)
                self.generation -= 1
                return
            if not await self._all_ready(new):
                logger.error("generation %d did not start; the old one goes on", self.generation)
                for worker in new:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
                self.generation -= 1
                self._respawn_missing()
                return
            for worker in old:
                if worker.state in ("starting", "ready"):
                    worker.state = "draining"
                    worker.channel.send({"op": "drain", "deadline_s": self.drain_timeout_s})
            logger.info("supervisor: generation %d ready", self.generation)
        finally:
            self._upgrading = False

    async def _all_ready(self, workers: list[WorkerProcess]) -> bool:
        async def ready(worker: WorkerProcess) -> bool:
            waiter = asyncio.ensure_future(worker.ready.wait())
            died = asyncio.ensure_future(worker.process.wait())
            try:
                await asyncio.wait(
                    {waiter, died}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
                died.cancel()
            return worker.ready.is_set() and worker.state != "gone"

        results = await asyncio.gather(*(ready(w) for w in workers))
        return all(results)

    async def _spawn(self, slot: int, generation: int) -> WorkerProcess:
        number = next(self._numbers)
        sockets = self.slot_sockets(slot)
        parent, child = socket.socketpair()
        handoff, handoff_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        handoff.setblocking(False)
        link_path = self.run_dir / f"w{number}.sock"
        spec = {
            "number": number,
            "slot": slot,
            "generation": generation,
            "control_fd": child.fileno(),
            "handoff_fd": handoff_child.fileno(),
            "sockets": [[kind, item, sock.fileno()] for (kind, item), sock in sockets.items()],
            "link_path": str(link_path),
            "config_path": self.config_path,
            "overrides": self.overrides,
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "aiortmp.server.workers",
                pass_fds=[
                    child.fileno(),
                    handoff_child.fileno(),
                    *(s.fileno() for s in sockets.values()),
                ],
                env={**os.environ, SPEC_ENV: json.dumps(spec)},
            )
        except BaseException:
            parent.close()
            handoff.close()
            raise
        finally:
            child.close()
            handoff_child.close()
        channel = await Channel.over(parent)
        worker = WorkerProcess(
            number, slot, generation, process, channel, link_path, handoff=handoff
        )
        channel.handler = lambda message: self._on_message(worker, message)
        self.workers[number] = worker
        # The directory as it is now: the worker knows where every stream lives at once.
        channel.send({"op": "hello", "owners": [[a, n, w] for (a, n), w in self.owners.items()]})
        worker.tasks = [
            asyncio.get_running_loop().create_task(channel.run()),
            asyncio.get_running_loop().create_task(self._watch(worker)),
        ]
        logger.info(
            "worker %d started (pid %d, slot %d, generation %d)",
            number,
            process.pid,
            slot,
            generation,
        )
        return worker

    async def _watch(self, worker: WorkerProcess) -> None:
        status = await worker.process.wait()
        was_ready = worker.ready.is_set()
        worker.ready.set()  # nobody waits for it any more
        worker.state, draining = "gone", worker.state == "draining"
        worker.channel.close()
        if worker.handoff is not None:
            worker.handoff.close()
        self.workers.pop(worker.number, None)
        with contextlib.suppress(OSError):
            worker.link_path.unlink()
        for key in [k for k, owner in self.owners.items() if owner == worker.number]:
            self._release(key, worker.number)
        how = f"signal {-status}" if status < 0 else f"status {status}"
        if self._stopping or (draining and status == 0):
            logger.info("worker %d (pid %d) exited with %s", worker.number, worker.pid, how)
            return
        logger.error("worker %d (pid %d) exited with %s", worker.number, worker.pid, how)
        if worker.generation != self.generation or not (was_ready or worker.restart):
            # An old generation is not restarted; a new generation that does not start is
            # given up by whoever waits for it (the first start, or SIGUSR2).
            return
        # New connections must not queue for a dead process: close its sockets now, once
        # the connections already waiting there went to the live workers.
        moved = self.hand_off(worker.slot)
        if moved:
            logger.warning(
                "%d connection(s) waiting for worker %d handed over", moved, worker.number
            )
        self.close_slot(worker.slot)
        failures = self._failures.get(worker.slot, 0)
        if time.monotonic() - worker.started_s >= RESTART_STABLE_S:
            failures = 0
        delay = min(RESTART_MAX_S, RESTART_INITIAL_S * 2**failures)
        self._failures[worker.slot] = failures + 1
        logger.warning("restarting slot %d in %.1f s", worker.slot, delay)
        await asyncio.sleep(delay)
        if not self._stopping and worker.generation == self.generation:
            self._respawn(worker.slot)

    def _respawn(self, slot: int) -> None:
        async def spawn() -> None:
            try:
                worker = await self._spawn(slot, self.generation)
                worker.restart = True
            except OSError as exc:
                logger.error("cannot restart slot %d: %s", slot, exc)

        self._spawn_task(spawn())

    def _respawn_missing(self) -> None:
        live = {w.slot for w in self.workers.values() if w.generation == self.generation}
        for slot in range(self.count):
            if slot not in live:
                self._respawn(slot)

    def _spawn_task(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forward_hup(self) -> None:
        logger.info("supervisor: reloading the workers' configuration")
        for worker in list(self.workers.values()):
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGHUP)

    async def _shutdown(self) -> None:
        self._stopping = True
        workers = list(self.workers.values())
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        if workers:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(w.process.wait()) for w in workers],
                timeout=STOP_TIMEOUT_S,
            )
            if pending:
                for worker in workers:
                    if worker.process.returncode is None:
                        logger.warning("worker %d did not stop; killing it", worker.number)
                        with contextlib.suppress(ProcessLookupError):
                            worker.process.kill()
                await asyncio.wait(pending, timeout=5.0)
        for worker in workers:
            for task in worker.tasks:
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._cleanup()

    def _cleanup(self) -> None:
        for slot in list(self._slots):
            self.close_slot(slot)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- the directory and the messages ---------------------------------------------------

    def _broadcast(self, message: Mapping[str, Any]) -> None:
        for worker in self.workers.values():
            worker.channel.send(message)

    def _release(self, key: tuple[str, str], number: int) -> bool:
        if self.owners.get(key) != number:
            return False
        del self.owners[key]
        self._broadcast({"op": "released", "app": key[0], "name": key[1], "worker": number})
        return True

    def _claim(self, worker: WorkerProcess, app: str, name: str) -> dict[str, Any]:
        key = (app, name)
        owner_number = self.owners.get(key)
        handover = False
        if owner_number is not None and owner_number != worker.number:
            owner = self.workers.get(owner_number)
            # A publisher that follows ReconnectRequest moves from a draining generation.
            handover = (
                owner is not None
                and owner.state == "draining"
                and worker.generation > owner.generation
            )
            if not handover:
                return {"ok": False, "owner": owner_number}
        if owner_number != worker.number:
            self.owners[key] = worker.number
            self._broadcast(
                {
                    "op": "claimed",
                    "app": app,
                    "name": name,
                    "worker": worker.number,
                    "handover": handover,
                }
            )
        return {"ok": True, "handover": handover}

    def _on_message(self, worker: WorkerProcess, message: dict[str, Any]) -> Any:
        op = message.get("op")
        if op == "ready":
            if worker.state == "starting":
                worker.state = "ready"
            worker.ready.set()
            return None
        if op == "claim":
            return self._claim(worker, str(message["app"]), str(message["name"]))
        if op == "release":
            self._release((str(message["app"]), str(message["name"])), worker.number)
            return None
        if op == "gather":
            return self._gather()
        if op == "call":
            return self._call(worker, message)
        logger.warning("worker %d sent an unknown message %r", worker.number, op)
        return None

    async def _ask(self, worker: WorkerProcess, message: Mapping[str, Any]) -> dict[str, Any]:
        return await worker.channel.request(message, 5.0)

    def _answering(self) -> list[WorkerProcess]:
        return [w for w in self.workers.values() if w.state in ("ready", "draining")]

    async def _gather(self) -> dict[str, Any]:
        """Every worker's snapshot, for the API of the worker that asked."""
        workers = self._answering()
        answers = await asyncio.gather(
            *(self._ask(w, {"op": "snapshot"}) for w in workers), return_exceptions=True
        )
        items = []
        for worker, answer in zip(workers, answers, strict=True):
            if isinstance(answer, BaseException):
                logger.warning("worker %d did not answer: %r", worker.number, answer)
                continue
            items.append({"worker": worker.info(), "data": answer.get("data", {})})
        return {"items": items}

    async def _call(self, asker: WorkerProcess, message: Mapping[str, Any]) -> dict[str, Any]:
        """Run an API action where it belongs (see :mod:`.http.aggregate`)."""
        to = message.get("to")
        args = message.get("args", {})
        if to == "owner":
            owner = self.owners.get((str(args.get("app")), str(args.get("name"))))
            targets = [self.workers[owner]] if owner in self.workers else []
        elif to is None:
            targets = [w for w in self._answering() if w is not asker]
        else:
            worker = self.workers.get(int(to))
            targets = [worker] if worker is not None and worker.state != "gone" else []
        request = {"op": "call", "action": message.get("action"), "args": args}
        answers = await asyncio.gather(
            *(self._ask(w, request) for w in targets), return_exceptions=True
        )
        results = [a.get("result", {}) for a in answers if not isinstance(a, BaseException)]
        return {"results": results}


# -- a worker process -------------------------------------------------------------------------


def worker_main() -> int:
    """Entry of a worker process (``python -m aiortmp.server.workers``, started by the
    :class:`Supervisor` with its instructions in the ``AIORTMP_WORKER`` variable).

    Returns:
        The exit status.
    """
    from aiortmp.cli import run

    spec = json.loads(os.environ[SPEC_ENV])
    try:
        config = load_config(spec["config_path"], **spec["overrides"])
    except ConfigError as exc:
        print(f"aiortmp worker {spec['number']}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)-7s w{spec['number']} %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from .worker import run_worker

    try:
        result: int = run(run_worker(spec, config))
    except KeyboardInterrupt:
        return 0
    return result


if __name__ == "__main__":
    sys.exit(worker_main())
