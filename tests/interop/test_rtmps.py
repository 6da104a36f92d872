"""RTMPS: `aiortmp serve --tls-listen/--tls-cert/--tls-key` with FFmpeg 9 and our client.

A self-signed certificate for 127.0.0.1 is made with the openssl command. FFmpeg publishes
over rtmps:// without verifying (``-tls_verify 0``) and plays verifying against the
certificate (``-ca_file``); our client publishes and plays with an SSL context that trusts
it. Plain RTMP to the TLS port and TLS to the plain port fail cleanly, and the default RTMPS
port of the configuration is 1936.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import aiortmp.client as rtmp
from aiortmp.media.flv import FLVReader
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig, load_config

from ..server.media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame
from .peers import (
    ServerProcess,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    free_port,
    popen,
    run_server,
    wait_port,
)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cert.pem, key.pem): self-signed, valid for IP 127.0.0.1 and localhost."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the openssl command is needed to make a test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[tuple[ServerProcess, int]]:
    """`aiortmp serve` with RTMP on one port and RTMPS on another; (server, TLS port)."""
    cert, key = certificate
    tls_port = free_port()
    tmp = tmp_path_factory.mktemp("rtmps")
    args = ["--tls-listen", f"127.0.0.1:{tls_port}", "--tls-cert", str(cert), "--tls-key", str(key)]
    with run_server(tmp, *args) as proc:
        wait_port(tls_port)
        yield proc, tls_port


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_ffmpeg_publishes_and_plays_over_rtmps(
    server: tuple[ServerProcess, int], certificate: tuple[Path, Path]
) -> None:
    proc, tls_port = server
    cert, _ = certificate
    url = f"rtmps://127.0.0.1:{tls_port}/live/tls"
    publish_args = ffmpeg_publish_args(url, duration_s=6, gop=25)
    assert publish_args[-3:] == ["-f", "flv", url]
    # The publisher does not verify (a self-signed certificate)...
    publisher = popen([*publish_args[:-3], "-tls_verify", "0", *publish_args[-3:]])
    try:
        time.sleep(1.5)
        play_args = ffmpeg_play_args(url, "-t", "3")
        i = play_args.index("-i")
        # ... the player verifies it against the certificate (FFmpeg 9 verifies by default).
        player = popen([*play_args[:i], "-ca_file", str(cert), *play_args[i:]])
        _, play_err = player.communicate(timeout=30)
    finally:
        _, publish_err = publisher.communicate(timeout=30)
    assert publisher.returncode == 0, publish_err[-2000:]
    assert player.returncode == 0, play_err[-2000:]
    assert decoded_frames(play_err) >= 60, play_err[-2000:]
    log = proc.log()
    assert "listening for RTMPS on 127.0.0.1" in log
    assert f"connect tcUrl=rtmps://127.0.0.1:{tls_port}/live" in log
    # What came in over TLS was recorded like any other stream.
    deadline = time.monotonic() + 5
    while "recording closed" not in proc.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    (recording,) = (proc.record_dir / "live").glob("tls-*.flv")
    with recording.open("rb") as fh:
        video = [t for t in FLVReader(fh) if t.tag_type == 9]
    assert len(video) >= 100


async def test_our_client_publishes_and_plays_over_rtmps(
    server: tuple[ServerProcess, int], certificate: tuple[Path, Path]
) -> None:
    proc, tls_port = server
    cert, _ = certificate
    tls_url = f"rtmps://127.0.0.1:{tls_port}/live"
    async with rtmp.connect(tls_url, ssl=trusting(cert), timeout=5) as conn:
        publisher = await conn.publish("ours")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
        async with (
            rtmp.connect(tls_url, ssl=trusting(cert), timeout=5) as tls_viewer,
            rtmp.connect(proc.url("live"), timeout=5) as plain_viewer,
        ):
            players = [await tls_viewer.play("ours"), await plain_viewer.play("ours")]
            for i in range(50):
                await publisher.send_video(i * 40, video_frame(i, 2000))
                await publisher.send_audio(i * 40, audio_frame())

            async def frames(player: rtmp.Player) -> int:
                count = 0
                async for message in player:
                    if message.type_id == 9 and message.payload[5:9] == (49).to_bytes(4, "big"):
                        return count + 1
                    count += message.type_id == 9
                return count

            counts = await asyncio.wait_for(asyncio.gather(*(frames(p) for p in players)), 10)
    # Both got every frame (and the sequence header), over TLS and over plain RTMP.
    assert counts == [51, 51]


async def test_the_client_verifies_the_server_certificate(
    server: tuple[ServerProcess, int],
) -> None:
    _, tls_port = server
    with pytest.raises(rtmp.ClientError, match="(?i)certificate"):
        await rtmp.connect(f"rtmps://127.0.0.1:{tls_port}/live", timeout=5)


def test_wrong_protocol_on_either_port_fails_cleanly(
    server: tuple[ServerProcess, int], certificate: tuple[Path, Path]
) -> None:
    proc, tls_port = server
    cert, _ = certificate
    # RTMP to the TLS port: the TLS handshake fails and the server closes, without S0.
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as sock:
        sock.sendall(b"\x03" + bytes(1536))
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                received += data
        assert not received.startswith(b"\x03")
    # RTMPS to the plain port: refused with a useful log line.
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as raw:
        context = trusting(cert)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.recv(1)
    deadline = time.monotonic() + 5
    while "RTMPS sent to a plain RTMP port?" not in proc.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "RTMPS sent to a plain RTMP port?" in proc.log()
    # Both listeners still work.
    assert asyncio.run(_plays(f"rtmps://127.0.0.1:{tls_port}/live", cert))
    assert asyncio.run(_plays(proc.url("live"), None))


async def _plays(url: str, cert: Path | None) -> bool:
    context = trusting(cert) if cert is not None else None
    async with rtmp.connect(url, ssl=context, timeout=5) as conn:
        player = await conn.play("nothing-here")
        return player.started


async def test_default_rtmps_port_is_1936(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    config = load_config(
        **{
            "listen": ["127.0.0.1:0"],
            "tls.listen": ["127.0.0.1"],
            "tls.cert": str(cert),
            "tls.key": str(key),
        }
    )
    config = config.model_copy(update={"http": HTTPConfig(listen=[])})
    server = RTMPServer(config)
    try:
        await server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            pytest.skip("port 1936 is in use on this machine")
        raise
    try:
        assert ("127.0.0.1", 1936) in server.addresses
        async with rtmp.connect("rtmps://127.0.0.1:1936/live", ssl=trusting(cert), timeout=5):
            pass
    finally:
        await server.stop()
