"""Event hooks: webhooks (order, retries, bounded queue, signature) and exec hooks
(supervised while live, restarted, stopped on unpublish; one-shot on other events)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import aiortmp.client as rtmp
from aiortmp.errors import UnsafeValueError
from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import (
    ConfigError,
    ExecHookConfig,
    HooksConfig,
    WebhookConfig,
    load_config,
)
from aiortmp.server.http.hooks import HookService, expand_command

from ..conftest import url
from ..interop.peers import FFMPEG9, ffmpeg_publish_args, free_port
from ..webhooks import Receiver
from ..webhooks import receiver as receiver  # the fixture
from .media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame


def hooks_of(server: RTMPServer) -> HookService:
    return next(c for c in server.components if isinstance(c, HookService))


async def publish_some(conn: rtmp.Connection, name: str, frames: int = 30) -> rtmp.Publisher:
    publisher = await conn.publish(name)
    await publisher.send_video(0, AVC_SEQUENCE_HEADER)
    await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
    for i in range(frames):
        await publisher.send_video(i * 40, video_frame(i, 500))
        await publisher.send_audio(i * 40, audio_frame())
    return publisher


# -- webhooks -------------------------------------------------------------------------------


async def test_webhook_receiver_sees_the_events_in_order(
    make_server, receiver: Receiver, tmp_path: Path
) -> None:
    server: RTMPServer = await make_server(
        record_dir=tmp_path,
        hooks=HooksConfig(webhook=[WebhookConfig(url=receiver.url)]),
    )
    emitted: list[ServerEvent] = []
    server.subscribe(emitted.append)
    # FFmpeg publishes a real stream; our client plays it.
    proc = await asyncio.create_subprocess_exec(
        *ffmpeg_publish_args(url(server, "live/cam"), duration_s=2),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await receiver.wait(lambda b: any(x["event"] == "publish" for x in b))
        async with rtmp.connect(url(server, "live"), timeout=5) as conn:
            player = await conn.play("cam")
            async for _message in player:
                break
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    await receiver.wait(lambda b: any(x["event"] == "record_done" for x in b))
    await receiver.wait(lambda b: sum(x["event"] == "disconnect" for x in b) == 2)
    bodies = receiver.bodies
    assert [b["seq"] for b in bodies] == list(range(1, len(bodies) + 1))
    publisher_id = next(b["session_id"] for b in bodies if b["event"] == "publish")
    player_id = next(b["session_id"] for b in bodies if b["event"] == "play")
    of_publisher = [b["event"] for b in bodies if b["session_id"] == publisher_id]
    of_player = [b["event"] for b in bodies if b["session_id"] == player_id]
    assert of_player == ["connect", "play", "stop", "disconnect"]
    # The recording is closed off the event loop once the stream stops: record_done
    # follows the unpublish (queued outputs finish after their source left).
    assert [e for e in of_publisher if e != "record_done"] == [
        "connect",
        "publish",
        "unpublish",
        "disconnect",
    ]
    assert of_publisher.index("record_done") > of_publisher.index("unpublish")
    # Exactly what the server emitted, in the same order.
    assert [(b["event"], b["session_id"]) for b in bodies] == [
        (str(e.kind), e.session_id) for e in emitted
    ]
    events = [b["event"] for b in bodies]
    assert events.index("publish") < events.index("play") < events.index("unpublish")
    publish = next(b for b in bodies if b["event"] == "publish")
    assert publish["app"] == "live" and publish["name"] == "cam"
    assert publish["remote"].startswith("127.0.0.1:")
    assert abs(publish["time"] - time.time()) < 60
    record_done = next(b for b in bodies if b["event"] == "record_done")
    assert Path(record_done["details"]["path"]).exists()
    assert record_done["details"]["bytes"] > 10_000
    headers = receiver.raw[0][1]
    assert headers["Content-Type"] == "application/json"
    assert "X-Aiortmp-Signature" not in headers


async def test_webhook_retries_with_backoff_then_delivers_once(
    make_server, receiver: Receiver
) -> None:
    receiver.answer = lambda attempt: 503 if attempt <= 2 else 200
    server: RTMPServer = await make_server(
        hooks=HooksConfig(
            webhook=[WebhookConfig(url=receiver.url, events=["publish"], backoff_s=0.1)]
        )
    )
    started = time.monotonic()
    server.emit(ServerEvent(kind=EventKind.PUBLISH, session_id=7, remote="x", app="a", name="b"))
    await receiver.wait(lambda b: len(b) == 1)
    assert receiver.attempts == 3
    assert time.monotonic() - started >= 0.1 + 0.2  # 0.1 s, then doubled
    assert receiver.bodies[0]["name"] == "b"
    assert server.stats["webhook_failures"] == 0


async def test_webhook_gives_up_after_the_retries_and_on_a_4xx(
    make_server, receiver: Receiver
) -> None:
    receiver.answer = lambda attempt: 500 if attempt <= 3 else 404
    server: RTMPServer = await make_server(
        hooks=HooksConfig(
            webhook=[WebhookConfig(url=receiver.url, retries=1, backoff_s=0.01, events=["play"])]
        )
    )
    for n in range(2):
        server.emit(ServerEvent(kind=EventKind.PLAY, session_id=n, remote="x"))
    # Two attempts for the first event (500, 500), then 500 and a final 404 for the second.
    deadline = time.monotonic() + 10
    while server.stats["webhook_failures"] < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert receiver.attempts == 4


async def test_webhook_queue_is_bounded_and_never_blocks_the_server(
    make_server, receiver: Receiver
) -> None:
    receiver.delay_s = 1.0  # a slow receiver
    server: RTMPServer = await make_server(
        hooks=HooksConfig(
            webhook=[WebhookConfig(url=receiver.url, queue_size=5, events=["connect"])]
        )
    )
    started = time.perf_counter()
    for n in range(100):
        server.emit(ServerEvent(kind=EventKind.CONNECT, session_id=n, remote="x"))
    assert time.perf_counter() - started < 0.1
    # One in flight, five queued, the rest dropped and counted.
    assert 94 <= server.stats["webhook_events_dropped"] <= 95
    # Media still flows while the webhook is stuck.
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        await publish_some(pub_conn, "cam")
        async with rtmp.connect(url(server, "live"), timeout=5) as play_conn:
            player = await play_conn.play("cam")
            async for _message in player:
                break
    sender = hooks_of(server).webhooks[0]
    assert sender.dropped == server.stats["webhook_events_dropped"]


async def test_webhook_signature(make_server, receiver: Receiver) -> None:
    server: RTMPServer = await make_server(
        hooks=HooksConfig(
            webhook=[
                WebhookConfig(
                    url=receiver.url, secret="k", events=["publish"], headers={"X-Site": "1"}
                )
            ]
        )
    )
    server.emit(ServerEvent(kind=EventKind.PUBLISH, session_id=1, remote="x", name="n"))
    await receiver.wait(lambda b: len(b) == 1)
    body, headers = receiver.raw[0]
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert headers["X-Aiortmp-Signature"] == f"sha256={expected}"
    assert headers["X-Site"] == "1"


async def test_pending_webhooks_are_sent_on_shutdown(make_server, receiver: Receiver) -> None:
    receiver.delay_s = 0.05
    server: RTMPServer = await make_server(
        hooks=HooksConfig(webhook=[WebhookConfig(url=receiver.url, events=["play"])])
    )
    for n in range(5):
        server.emit(ServerEvent(kind=EventKind.PLAY, session_id=n, remote="x"))
    await server.stop()
    assert [b["session_id"] for b in receiver.bodies] == [0, 1, 2, 3, 4]


# -- exec hooks -----------------------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    log = sys.argv[1]
    def note(text):
        with open(log, "a") as fh:
            fh.write(f"{os.getpid()} {text}\\n")
    def on_term(*_):
        note("term")
        if sys.argv[3] == "ignore":
            return
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    note("start " + sys.argv[2])
    time.sleep(float(sys.argv[4]))
    note("exit")
    """
)


def script(tmp_path: Path) -> str:
    path = tmp_path / "hook.py"
    path.write_text(SCRIPT)
    return str(path)


def log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def wait_lines(path: Path, predicate: Callable[[list[str]], bool], timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate(log_lines(path)):
        if time.monotonic() > deadline:
            raise AssertionError(f"hook log: {log_lines(path)}")
        await asyncio.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_exec_hook_runs_while_live_is_restarted_and_stopped_on_unpublish(
    make_server, tmp_path: Path
) -> None:
    log = tmp_path / "hook.log"
    hook = ExecHookConfig(
        command=[sys.executable, script(tmp_path), str(log), "{app}/{name}", "exit", "3600"],
        app="live",
        restart_delay_s=0.1,
    )
    server: RTMPServer = await make_server(hooks=HooksConfig(exec=[hook]))
    execs = hooks_of(server).exec
    async with rtmp.connect(url(server, "other"), timeout=5) as conn:
        await publish_some(conn, "cam", frames=1)  # another app: no hook
        await asyncio.sleep(0.3)
        assert not execs.running and not log.exists()
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        await publish_some(conn, "cam")
        await wait_lines(log, lambda lines: any("start live/cam" in x for x in lines))
        first = int(log_lines(log)[0].split()[0])
        # It dies while the stream is live: restarted after the delay.
        os.kill(first, signal.SIGKILL)
        await wait_lines(log, lambda lines: sum("start" in x for x in lines) == 2)
        second = int(log_lines(log)[-1].split()[0])
        assert second != first and pid_alive(second)
    # Unpublish: SIGTERM, the command exits.
    await wait_lines(log, lambda lines: lines[-1] == f"{second} term")
    deadline = time.monotonic() + 5
    while pid_alive(second) or execs.supervisors or execs.running:
        assert time.monotonic() < deadline, (execs.supervisors, execs.running)
        await asyncio.sleep(0.05)


async def test_exec_hook_ignoring_sigterm_is_killed(make_server, tmp_path: Path) -> None:
    log = tmp_path / "hook.log"
    hook = ExecHookConfig(
        command=[sys.executable, script(tmp_path), str(log), "{name}", "ignore", "3600"],
        stop_timeout_s=0.3,
    )
    server: RTMPServer = await make_server(hooks=HooksConfig(exec=[hook]))
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        await publish_some(conn, "stubborn")
        await wait_lines(log, lambda lines: any("start stubborn" in x for x in lines))
        pid = int(log_lines(log)[0].split()[0])
    await wait_lines(log, lambda lines: lines[-1].endswith("term"))
    deadline = time.monotonic() + 5
    while pid_alive(pid) or hooks_of(server).exec.running:
        assert time.monotonic() < deadline, hooks_of(server).exec.running
        await asyncio.sleep(0.05)


async def test_exec_hooks_are_stopped_with_the_server(make_server, tmp_path: Path) -> None:
    log = tmp_path / "hook.log"
    hook = ExecHookConfig(
        command=[sys.executable, script(tmp_path), str(log), "{name}", "exit", "3600"]
    )
    server: RTMPServer = await make_server(hooks=HooksConfig(exec=[hook]))
    conn = await rtmp.connect(url(server, "live"), timeout=5)
    await publish_some(conn, "cam")
    await wait_lines(log, lambda lines: bool(lines))
    pid = int(log_lines(log)[0].split()[0])
    await server.stop()
    assert not pid_alive(pid)
    await conn.close()


async def test_one_shot_exec_hook_on_record_done(make_server, tmp_path: Path) -> None:
    out = tmp_path / "done.txt"
    hook = ExecHookConfig(
        on="record_done",
        command=[
            sys.executable,
            "-c",
            "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))",
            str(out),
            "{app}",
            "{name}",
            "{path}",
            "{unknown}",
        ],
    )
    server: RTMPServer = await make_server(
        record_dir=tmp_path / "rec", hooks=HooksConfig(exec=[hook])
    )
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        await publish_some(conn, "cam")
    deadline = time.monotonic() + 10
    while not out.exists() or not out.read_text():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    app, name, path, unknown = out.read_text().split(" ")
    assert (app, name, unknown) == ("live", "cam", "{unknown}")
    assert Path(path).parent == tmp_path / "rec" / "live" and Path(path).exists()


async def test_exec_hook_runs_an_ffmpeg_copy_while_the_stream_is_live(make_server) -> None:
    port = free_port()
    hook = ExecHookConfig(
        command=[
            FFMPEG9,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            f"rtmp://127.0.0.1:{port}/{{app}}/{{name}}",
            "-c",
            "copy",
            "-f",
            "flv",
            f"rtmp://127.0.0.1:{port}/copy/{{name}}",
        ],
        app="live",  # the copy is published to "copy": no loop
    )
    server: RTMPServer = await make_server(
        listen=[f"127.0.0.1:{port}"], hooks=HooksConfig(exec=[hook])
    )
    proc = await asyncio.create_subprocess_exec(
        *ffmpeg_publish_args(url(server, "live/cam"), duration_s=6),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            copy = server.registry.get("copy", "cam")
            if copy is not None and copy.is_live and copy.video_frames_in > 25:
                break
            assert time.monotonic() < deadline, "the exec hook's copy never went live"
            await asyncio.sleep(0.1)
        assert copy.info.video[0].width == 320
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    deadline = time.monotonic() + 10
    while server.registry.get("copy", "cam") is not None or hooks_of(server).exec.running:
        assert time.monotonic() < deadline, "the copy outlived its source"
        await asyncio.sleep(0.1)


# -- configuration and substitution ---------------------------------------------------------


def test_hooks_configuration_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "aiortmp.toml"
    path.write_text(
        textwrap.dedent(
            """
            [[hooks.webhook]]
            url = "http://127.0.0.1:9/hook"
            events = ["publish", "unpublish"]
            retries = 5

            [[hooks.exec]]
            on = "publish"
            command = ["ffmpeg", "-i", "rtmp://127.0.0.1/{app}/{name}", "-f", "null", "-"]
            name_regex = "cam[0-9]+"
            """
        )
    )
    config = load_config(path)
    assert config.hooks.webhook[0].events == [EventKind.PUBLISH, EventKind.UNPUBLISH]
    assert config.hooks.webhook[0].retries == 5
    assert config.hooks.exec[0].on is EventKind.PUBLISH
    for bad, where in [
        ('[[hooks.webhook]]\nurl = "ftp://x"', "hooks.webhook.0.url"),
        ('[[hooks.webhook]]\nurl = "http://x"\nevents = ["nope"]', "hooks.webhook.0.events"),
        ("[[hooks.exec]]\ncommand = []", "hooks.exec.0.command"),
        ('[[hooks.exec]]\ncommand = ["x"]\nname_regex = "("', "hooks.exec.0.name_regex"),
        ('[[hooks.exec]]\ncommand = ["x"]\ntypo = 1', "hooks.exec.0.typo"),
        ("[hooks]\nwebhooks = []", "hooks.webhooks"),
    ]:
        path.write_text(bad)
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            load_config(path)


def record_done(app: str = "live", name: str = "cam", **details: object) -> ServerEvent:
    return ServerEvent(
        kind=EventKind.RECORD_DONE,
        session_id=3,
        remote="1.2.3.4:5",
        app=app,
        name=name,
        details={"path": "/rec/live/x.flv", "bytes": 10, "flag": True, **details},
    )


def test_expand_command_substitutes_validated_values_inside_one_argument() -> None:
    argv = expand_command(
        [
            "x",
            "--out={app}/{name}.mp4",
            "{path}",
            "{session_id}",
            "{remote}",
            "{event}",
            "{bytes}",
            "{flag}",
            "{unknown}",
        ],
        record_done(name="cam-1_b.v2"),
    )
    assert argv == [
        "x",
        "--out=live/cam-1_b.v2.mp4",
        "/rec/live/x.flv",
        "3",
        "1.2.3.4:5",
        "record_done",
        "10",
        "{flag}",  # booleans are not substituted
        "{unknown}",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "x;rm -rf",
        "../../etc/passwd",
        "..",
        ".hidden",
        "-y",
        "--output=/etc/passwd",
        "a b",
        "a/b",
        "x\n-y",
        "$(id)",
        "`id`",
        "{app}",
        "caf\u00e9",
        "",
        "a" * 129,
    ],
)
def test_expand_command_refuses_names_that_are_not_plain(name: str) -> None:
    with pytest.raises(UnsafeValueError, match=r"\{name\}"):
        expand_command(["x", "rtmp://h/{app}/{name}"], record_done(name=name))
    with pytest.raises(UnsafeValueError, match=r"\{app\}"):
        expand_command(["x", "{app}"], record_done(app=name))
    # A hook that does not use the name runs.
    assert expand_command(["x", "{path}"], record_done(name=name)) == ["x", "/rec/live/x.flv"]


def test_expand_command_never_substitutes_client_chosen_details() -> None:
    event = ServerEvent(
        kind=EventKind.CONNECT,
        session_id=1,
        remote="[::1]:5",
        app="live",
        details={"tc_url": "rtmp://h/live -y -i /etc/passwd", "reason": "a b"},
    )
    argv = expand_command(["x", "{tc_url}", "{reason}", "{remote}"], event)
    assert argv == ["x", "{tc_url}", "{reason}", "[::1]:5"]
    # One pass: a substituted value is not scanned again.
    event = record_done(path="/rec/{name}/{app}.flv")
    assert expand_command(["{path}"], event) == ["/rec/{name}/{app}.flv"]


ARGV_SCRIPT = "import json, sys; open(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')"


async def test_crafted_names_and_tc_url_cannot_add_arguments_to_exec_hooks(
    make_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "argv.jsonl"
    on_publish = ExecHookConfig(
        on="publish", command=[sys.executable, "-c", ARGV_SCRIPT, str(out), "{app}", "{name}"]
    )
    on_connect = ExecHookConfig(
        on="connect",
        command=[sys.executable, "-c", ARGV_SCRIPT, str(out), "{app}", "{tc_url}", "{remote}"],
    )
    server: RTMPServer = await make_server(hooks=HooksConfig(exec=[on_publish, on_connect]))
    hostile_tc_url = "rtmp://127.0.0.1/live -y -f flv /tmp/pwned ; touch /tmp/pwned"

    def runs() -> list[list[str]]:
        lines = out.read_text().splitlines() if out.exists() else []
        return [json.loads(line) for line in lines]

    async def wait_runs(count: int) -> list[list[str]]:
        deadline = time.monotonic() + 10
        while len(runs()) < count:
            assert time.monotonic() < deadline, runs()
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # and no more
        return runs()

    with caplog.at_level("WARNING", logger="aiortmp.hooks"):
        # The connect hook runs; the client's tcUrl is not substituted.
        async with rtmp.connect(
            url(server, "live"), timeout=5, properties={"tcUrl": hostile_tc_url}
        ) as conn:
            [connect_argv] = await wait_runs(1)
            # A name with shell syntax is published, but its hook does not run.
            await publish_some(conn, "x;rm -rf", frames=1)
            await asyncio.sleep(0.5)
        assert runs() == [connect_argv]
        # An app that is not a plain name: the connect hook does not run either.
        async with rtmp.connect(
            url(server, "live"), timeout=5, properties={"app": "live -o /tmp/pwned"}
        ):
            await asyncio.sleep(0.5)
        assert runs() == [connect_argv]
        # A plain name: the publish hook runs with exactly its two arguments.
        async with rtmp.connect(url(server, "live"), timeout=5) as conn:
            await publish_some(conn, "cam", frames=1)
            all_runs = await wait_runs(3)
    assert connect_argv[0] == "live" and connect_argv[1] == "{tc_url}"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", connect_argv[2]) and len(connect_argv) == 3
    assert ["live", "cam"] in all_runs
    assert all(len(argv) in (2, 3) for argv in all_runs), all_runs
    assert not any("pwned" in arg or "rm" in arg for argv in all_runs for arg in argv)
    # The configuration was warned about at start.
    assert any("{tc_url}" in r.getMessage() and "never" in r.getMessage() for r in caplog.records)
    refused = [r.getMessage() for r in caplog.records if "not run" in r.getMessage()]
    assert len(refused) == 2, refused  # one line per refused event
    assert "x;rm -rf" in refused[0] and "{name}" in refused[0]
    assert "{app}" in refused[1]


async def test_reload_sends_new_events_to_the_new_webhooks(make_server, receiver: Receiver) -> None:
    server: RTMPServer = await make_server(
        hooks=HooksConfig(webhook=[WebhookConfig(url=receiver.url + "?old", events=["play"])])
    )
    server.emit(ServerEvent(kind=EventKind.PLAY, session_id=1, remote="x"))
    await receiver.wait(lambda b: len(b) == 1)
    new = server.config.model_copy(
        update={"hooks": HooksConfig(webhook=[WebhookConfig(url=receiver.url, events=["stop"])])}
    )
    hooks_of(server).reload(new)
    server.emit(ServerEvent(kind=EventKind.PLAY, session_id=2, remote="x"))
    server.emit(ServerEvent(kind=EventKind.STOP, session_id=3, remote="x"))
    await receiver.wait(lambda b: len(b) == 2)
    await asyncio.sleep(0.2)
    assert [(b["event"], b["session_id"]) for b in receiver.bodies] == [("play", 1), ("stop", 3)]
