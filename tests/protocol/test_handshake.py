"""Tests for aiortmp.protocol.handshake (RTMP 1.0 §5.2 and the FP9 digest handshake).

The digest checks below are written independently of the module, from FFmpeg's
libavformat/rtmpproto.c (rtmp_handshake, rtmp_validate_digest, ff_rtmp_calc_digest_pos)
and librtmp's handshake.h, so a layout mistake in the module cannot hide in both.
"""

from __future__ import annotations

import array
import ast
import hashlib
import hmac
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aiortmp.protocol.handshake as handshake_module
from aiortmp.protocol.errors import HandshakeError, LocalProtocolError
from aiortmp.protocol.handshake import (
    HANDSHAKE_BLOCK_SIZE,
    Handshake,
    HandshakeRole,
    HandshakeState,
)

CLIENT = HandshakeRole.CLIENT
SERVER = HandshakeRole.SERVER
SIZE = 1536

# The keys as FFmpeg's rtmp_player_key / rtmp_server_key spell them.
KEY_TAIL = bytes(
    [
        0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02,
        0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8,
        0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
    ]
)  # fmt: skip
PLAYER_KEY = b"Genuine Adobe Flash Player 001" + KEY_TAIL
SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + KEY_TAIL
PLAYER_KEY_OPEN_PART_LEN = 30
SERVER_KEY_OPEN_PART_LEN = 36
FFMPEG_CLIENT_VERSION = bytes([9, 0, 124, 2])  # RTMP_CLIENT_VER1..4 in rtmp.h

# 1528 "random" bytes whose digest positions are easy to work out by hand:
# block[8:12] = 00 01 02 03 -> (0+1+2+3) % 728 + 12 = 18
# block[772:776] = random[764:768] = fc fd fe ff -> (252+253+254+255) % 728 + 776 = 1062
RAMP = (bytes(range(256)) * 6)[:1528]


def fixed_random(data: bytes = RAMP) -> Callable[[int], bytes]:
    def random_bytes(n: int) -> bytes:
        assert n == len(data)
        return data

    return random_bytes


def seeded_random(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


# -- an independent reference of the digest arithmetic (FFmpeg's, in Python) ----------


def calc_digest_pos(buf: bytes | bytearray, off: int) -> int:
    """ff_rtmp_calc_digest_pos(buf, off, 728, off + 4)."""
    return (buf[off] + buf[off + 1] + buf[off + 2] + buf[off + 3]) % 728 + off + 4


def calc_digest(buf: bytes | bytearray, gap: int, key: bytes) -> bytes:
    """ff_rtmp_calc_digest(buf, 1536, gap, key, ...): HMAC-SHA256 skipping buf[gap:gap+32]."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    if gap <= 0:
        mac.update(bytes(buf))
    else:
        mac.update(bytes(buf[:gap]))
        mac.update(bytes(buf[gap + 32 :]))
    return mac.digest()


def hmac256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def validate_digest(buf: bytes, off: int) -> int:
    """rtmp_validate_digest: the digest position if valid, else 0."""
    pos = calc_digest_pos(buf, off)
    if calc_digest(buf, pos, SERVER_KEY[:SERVER_KEY_OPEN_PART_LEN]) == buf[pos : pos + 32]:
        return pos
    return 0


def ffmpeg_c0c1(random1528: bytes, *, scheme_off: int = 8) -> tuple[bytes, int]:
    """C0+C1 as rtmp_handshake builds them (uptime 0, 9.0.124.2, digest imprinted)."""
    c1 = bytearray(bytes(4) + FFMPEG_CLIENT_VERSION + random1528)
    pos = calc_digest_pos(c1, scheme_off)
    c1[pos : pos + 32] = calc_digest(c1, pos, PLAYER_KEY[:PLAYER_KEY_OPEN_PART_LEN])
    return b"\x03" + bytes(c1), pos


def ffmpeg_client_answer(c1: bytes, client_pos: int, s0s1s2: bytes, random1536: bytes) -> bytes:
    """What FFmpeg's rtmp_handshake (playing, is_input) checks and sends as C2.

    Raises AssertionError where FFmpeg would fail the connection.
    """
    assert len(s0s1s2) == 1 + 2 * SIZE
    s1 = s0s1s2[1 : 1 + SIZE]
    s2 = s0s1s2[1 + SIZE :]
    assert s1[4] >= 3, "FFmpeg would not even look for the server digest"
    server_pos = validate_digest(s1, 772) or validate_digest(s1, 8)
    assert server_pos, "Server response validating failed"
    digest = hmac256(SERVER_KEY, c1[client_pos : client_pos + 32])
    signature = hmac256(digest, s2[: SIZE - 32])
    assert signature == s2[SIZE - 32 :], "Signature mismatch"
    digest = hmac256(PLAYER_KEY, s1[server_pos : server_pos + 32])
    return random1536[: SIZE - 32] + hmac256(digest, random1536[: SIZE - 32])


# -- moving bytes between two cores in memory ------------------------------------------


def transfer(src: Handshake, dst: Handshake) -> int:
    data = src.data_to_send()
    if data:
        dst.receive_data(data)
    return len(data)


def run_pair(client: Handshake, server: Handshake) -> None:
    client.initiate()
    while transfer(client, server) + transfer(server, client):
        pass


def feed(hs: Handshake, data: bytes, mode: str) -> None:
    if mode == "whole":
        hs.receive_data(data)
    elif mode == "bytewise":
        for i in range(len(data)):
            hs.receive_data(data[i : i + 1])
    else:
        raise AssertionError(mode)


# -- byte vectors with injected randomness ---------------------------------------------


def test_client_plain_c0c1_vector() -> None:
    client = Handshake(CLIENT, digest=False, epoch_ms=0x01020304, random_bytes=fixed_random())
    assert client.data_to_send() == b""
    client.initiate()
    # RTMP 1.0 §5.2.2/§5.2.3: version 3, time, four zero bytes, 1528 random bytes.
    assert client.data_to_send() == b"\x03" + bytes([1, 2, 3, 4]) + bytes(4) + RAMP
    assert client.data_to_send() == b""
    assert client.state is HandshakeState.AWAIT_VERSION


@pytest.mark.parametrize(("scheme", "offset", "pos"), [(0, 8, 18), (1, 772, 1062)])
def test_client_digest_c1_vector(scheme: int, offset: int, pos: int) -> None:
    client = Handshake(CLIENT, epoch_ms=0, scheme=scheme, random_bytes=fixed_random())
    client.initiate()
    out = client.data_to_send()
    assert len(out) == 1 + SIZE
    assert out[0] == 3
    c1 = out[1:]
    assert c1[:8] == bytes(4) + FFMPEG_CLIENT_VERSION
    assert calc_digest_pos(c1, offset) == pos
    expected = bytearray(bytes(4) + FFMPEG_CLIENT_VERSION + RAMP)
    expected[pos : pos + 32] = calc_digest(expected, pos, PLAYER_KEY[:30])
    assert c1 == bytes(expected)
    # Only the 32 digest bytes differ from the plain layout.
    plain = bytes(4) + FFMPEG_CLIENT_VERSION + RAMP
    changed = [i for i in range(SIZE) if c1[i] != plain[i]]
    assert changed and all(pos <= i < pos + 32 for i in changed)


def test_server_answers_plain_c1_with_simple_handshake_vector() -> None:
    server = Handshake(SERVER, epoch_ms=0x0A0B0C0D, random_bytes=fixed_random())
    c1 = bytes([0, 0, 0, 7]) + bytes(4) + bytes(reversed(RAMP))
    server.receive_data(b"\x03" + c1)
    s1 = bytes([0x0A, 0x0B, 0x0C, 0x0D]) + bytes(4) + RAMP
    assert server.data_to_send() == b"\x03" + s1 + c1  # S2 echoes C1
    assert server.digest_scheme is None
    assert server.peer_flash_version == (0, 0, 0, 0)
    assert server.peer_epoch_ms == 7
    assert not server.complete
    server.receive_data(s1)
    assert server.complete


@pytest.mark.parametrize(("scheme", "offset"), [(0, 8), (1, 772)])
def test_server_answers_digest_c1_in_the_same_scheme_vector(scheme: int, offset: int) -> None:
    c0c1, client_pos = ffmpeg_c0c1(bytes(reversed(RAMP)), scheme_off=offset)
    server = Handshake(SERVER, epoch_ms=5, random_bytes=fixed_random())
    server.receive_data(c0c1)
    out = server.data_to_send()
    s1 = bytearray(bytes([0, 0, 0, 5, 3, 5, 1, 1]) + RAMP)
    pos = calc_digest_pos(s1, offset)
    s1[pos : pos + 32] = calc_digest(s1, pos, SERVER_KEY[:36])
    c1 = c0c1[1:]
    key = hmac256(SERVER_KEY, c1[client_pos : client_pos + 32])
    s2 = c1[: SIZE - 32] + hmac256(key, c1[: SIZE - 32])
    assert out == b"\x03" + bytes(s1) + s2
    assert server.digest_scheme == scheme


# -- FFmpeg's own layout and checks ----------------------------------------------------


def test_ffmpeg_player_c1_is_accepted_and_answer_passes_ffmpeg_checks() -> None:
    rng = random.Random(0xDEADC0DE)
    c0c1, client_pos = ffmpeg_c0c1(rng.randbytes(1528))
    server = Handshake(SERVER, strict=True, epoch_ms=1234, random_bytes=seeded_random(1))
    server.receive_data(c0c1)
    assert server.peer_version == 3
    assert server.peer_flash_version == (9, 0, 124, 2)
    assert server.digest_scheme == 0
    s0s1s2 = server.data_to_send()
    c2 = ffmpeg_client_answer(c0c1[1:], client_pos, s0s1s2, rng.randbytes(SIZE))
    connect = b"\x03\x00\x00\x00\x00\x00\xc5\x14\x00\x00\x00\x00\x02\x00\x07connect"
    server.receive_data(c2 + connect)  # strict: the FFmpeg-signed C2 verifies
    assert server.complete
    assert server.take_unused_data() == connect


def test_ffmpeg_publisher_echo_c2_is_accepted_by_strict_server() -> None:
    # When publishing FFmpeg sends a digested C1 but echoes S1 as C2 (its digest check
    # and signed C2 only run "if (rt->is_input && serverdata[5] >= 3)").
    c0c1, _ = ffmpeg_c0c1(seeded_random(2)(1528))
    server = Handshake(SERVER, strict=True, random_bytes=seeded_random(3))
    server.receive_data(c0c1)
    s1 = server.data_to_send()[1 : 1 + SIZE]
    server.receive_data(s1)
    assert server.complete


def test_librtmp_plain_client_is_accepted_by_strict_server() -> None:
    # librtmp without SWF verification sends version 0 and answers with S1 whose bytes
    # 4..7 it overwrites with its uptime: strict mode checks only the random echo.
    server = Handshake(SERVER, strict=True, random_bytes=seeded_random(4))
    c1 = bytes([0, 0, 0x12, 0x34]) + bytes(4) + seeded_random(5)(1528)
    server.receive_data(b"\x03" + c1)
    out = server.data_to_send()
    assert out[1 + SIZE :] == c1  # librtmp compares S2 with its whole C1
    s1 = out[1 : 1 + SIZE]
    server.receive_data(s1[:4] + bytes([0, 0, 0x56, 0x78]) + s1[8:])
    assert server.complete


# -- client against other servers ------------------------------------------------------


def make_digest_server_reply(c1: bytes, *, scheme_off: int, version: bytes) -> bytes:
    """S0+S1+S2 as nginx-rtmp builds them (its S1 digest is always at offset 8's scheme)."""
    client_pos = validate_digest_with(c1, PLAYER_KEY[:30])
    assert client_pos
    s1 = bytearray(bytes(4) + version + seeded_random(7)(1528))
    pos = calc_digest_pos(s1, scheme_off)
    s1[pos : pos + 32] = calc_digest(s1, pos, SERVER_KEY[:36])
    s2 = seeded_random(8)(SIZE - 32)
    s2 += hmac256(hmac256(SERVER_KEY, c1[client_pos : client_pos + 32]), s2)
    return b"\x03" + bytes(s1) + s2


def validate_digest_with(buf: bytes, key: bytes) -> int:
    for off in (8, 772):
        pos = calc_digest_pos(buf, off)
        if calc_digest(buf, pos, key) == buf[pos : pos + 32]:
            return pos
    return 0


@pytest.mark.parametrize("client_scheme", [0, 1])
def test_client_accepts_digest_reply_in_the_other_scheme(client_scheme: int) -> None:
    client = Handshake(CLIENT, scheme=client_scheme, random_bytes=seeded_random(9))
    client.initiate()
    c1 = client.data_to_send()[1:]
    reply = make_digest_server_reply(c1, scheme_off=8, version=b"\x0d\x0e\x0a\x0d")
    client.receive_data(reply)
    assert client.complete
    assert client.digest_scheme == 0
    assert client.peer_flash_version == (13, 14, 10, 13)
    c2 = client.data_to_send()
    assert len(c2) == SIZE
    # The server (nginx-rtmp, librtmp) checks C2 against its own S1 digest.
    s1 = reply[1 : 1 + SIZE]
    s1_pos = calc_digest_pos(s1, 8)
    assert c2[SIZE - 32 :] == hmac256(hmac256(PLAYER_KEY, s1[s1_pos : s1_pos + 32]), c2[:-32])


@pytest.mark.parametrize("digest", [True, False])
def test_client_against_simple_server_echoes_s1(digest: bool) -> None:
    # FFmpeg's "-listen 1" server: S1 = (C1 time, 0, random), S2 = C1 echo.
    client = Handshake(CLIENT, digest=digest, epoch_ms=42, random_bytes=seeded_random(10))
    client.initiate()
    c1 = client.data_to_send()[1:]
    s1 = c1[:4] + bytes(4) + seeded_random(11)(1528)
    client.receive_data(b"\x03" + s1 + c1[:4] + bytes(4) + c1[8:])
    assert client.complete
    assert client.digest_scheme is None
    assert client.peer_epoch_ms == 42
    assert client.data_to_send() == s1


# -- client <-> server in memory --------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "scheme", "expected_scheme"),
    [(True, 0, 0), (True, 1, 1), (False, 0, None)],
    ids=["digest-scheme0", "digest-scheme1", "simple"],
)
@pytest.mark.parametrize("strict", [False, True])
def test_client_server_roundtrip(
    digest: bool, scheme: int, expected_scheme: int | None, strict: bool
) -> None:
    client = Handshake(
        CLIENT, digest=digest, scheme=scheme, strict=strict, random_bytes=seeded_random(12)
    )
    server = Handshake(SERVER, strict=strict, random_bytes=seeded_random(13))
    run_pair(client, server)
    assert client.complete and server.complete
    assert client.state is server.state is HandshakeState.COMPLETE
    assert client.digest_scheme == server.digest_scheme == expected_scheme
    assert client.peer_version == server.peer_version == 3
    assert client.take_unused_data() == server.take_unused_data() == b""


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
@pytest.mark.parametrize("digest", [True, False])
def test_splits_and_trailing_chunk_stream_bytes(mode: str, digest: bool) -> None:
    client = Handshake(CLIENT, digest=digest, random_bytes=seeded_random(14))
    server = Handshake(SERVER, strict=True, random_bytes=seeded_random(15))
    client.initiate()
    c0c1 = client.data_to_send()
    feed(server, c0c1, mode)
    s0s1s2 = server.data_to_send()
    assert len(s0s1s2) == 1 + 2 * SIZE
    assert server.data_to_send() == b""
    feed(client, s0s1s2 + b"server chunk bytes", mode)
    assert client.complete
    assert client.take_unused_data() == b"server chunk bytes"
    assert client.take_unused_data() == b""
    c2 = client.data_to_send()
    feed(server, c2 + b"\x03connect...", mode)
    assert server.complete
    assert server.take_unused_data() == b"\x03connect..."


def test_all_three_packets_in_one_read_for_the_server() -> None:
    client = Handshake(CLIENT, random_bytes=seeded_random(16))
    server = Handshake(SERVER, random_bytes=seeded_random(17))
    client.initiate()
    c0c1 = client.data_to_send()
    # A non-strict server completes on any C2 of the right length, even one that
    # arrives in the same read as C1 (before S1 could have been seen).
    server.receive_data(c0c1 + bytes(SIZE) + b"tail")
    assert server.complete
    assert server.take_unused_data() == b"tail"
    assert len(server.data_to_send()) == 1 + 2 * SIZE


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    digest=st.booleans(),
    scheme=st.sampled_from([0, 1]),
    epoch_ms=st.integers(0, 2**40),
    cuts=st.lists(st.integers(0, 3200), max_size=8),
    tail=st.binary(max_size=64),
)
def test_any_split_gives_the_same_bytes(
    seed: int, digest: bool, scheme: int, epoch_ms: int, cuts: list[int], tail: bytes
) -> None:
    def pair() -> tuple[Handshake, Handshake]:
        return (
            Handshake(
                CLIENT,
                digest=digest,
                scheme=scheme,
                epoch_ms=epoch_ms,
                random_bytes=seeded_random(seed),
            ),
            Handshake(SERVER, strict=True, epoch_ms=epoch_ms, random_bytes=seeded_random(~seed)),
        )

    def pieces(data: bytes) -> list[bytes]:
        points = sorted({c for c in cuts if c < len(data)} | {0, len(data)})
        return [data[a:b] for a, b in zip(points, points[1:], strict=False)]

    client, server = pair()
    client.initiate()
    c0c1 = client.data_to_send()
    server.receive_data(c0c1)
    s0s1s2 = server.data_to_send()
    client.receive_data(s0s1s2 + tail)
    c2 = client.data_to_send()
    server.receive_data(c2 + tail)
    assert client.complete and server.complete

    client2, server2 = pair()
    client2.initiate()
    assert client2.data_to_send() == c0c1
    for piece in pieces(c0c1):
        server2.receive_data(piece)
    assert server2.data_to_send() == s0s1s2
    for piece in pieces(s0s1s2 + tail):
        client2.receive_data(piece)
    assert client2.data_to_send() == c2
    for piece in pieces(c2 + tail):
        server2.receive_data(piece)
    assert client2.complete and server2.complete
    assert client2.take_unused_data() == server2.take_unused_data() == tail
    assert client2.peer_epoch_ms == server2.peer_epoch_ms == epoch_ms % 2**32


# -- version byte -----------------------------------------------------------------------


def test_rtmpe_version_is_rejected_with_a_clear_message() -> None:
    server = Handshake(SERVER)
    with pytest.raises(HandshakeError) as excinfo:
        server.receive_data(b"\x06")  # fails on C0 alone, without waiting for C1
    assert "unsupported RTMP version 6 (RTMPE encryption is not supported)" in str(excinfo.value)
    assert server.state is HandshakeState.FAILED
    assert server.data_to_send() == b""


@pytest.mark.parametrize("version", [0, 1, 2, 4, 8, 9, 0x16, ord("G"), ord("P"), 0x80, 0xFF])
def test_other_versions_are_rejected(version: int) -> None:
    server = Handshake(SERVER)
    with pytest.raises(HandshakeError, match=f"unsupported RTMP version {version} "):
        server.receive_data(bytes([version]) + bytes(SIZE))
    assert server.peer_version is None


def test_client_rejects_bad_s0() -> None:
    client = Handshake(CLIENT)
    client.initiate()
    with pytest.raises(HandshakeError, match="S0: unsupported RTMP version 6"):
        client.receive_data(b"\x06")
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"\x03")


# -- truncated input waits ---------------------------------------------------------------


def test_truncated_input_waits() -> None:
    client = Handshake(CLIENT, random_bytes=seeded_random(18))
    server = Handshake(SERVER, random_bytes=seeded_random(19))
    client.initiate()
    c0c1 = client.data_to_send()
    server.receive_data(c0c1[:1])
    assert server.state is HandshakeState.AWAIT_HELLO
    assert server.peer_version == 3
    server.receive_data(c0c1[1:-1])
    assert server.data_to_send() == b""
    assert server.state is HandshakeState.AWAIT_HELLO
    server.receive_data(c0c1[-1:])
    s0s1s2 = server.data_to_send()
    assert len(s0s1s2) == 1 + 2 * SIZE
    client.receive_data(s0s1s2[:-1])
    assert client.state is HandshakeState.AWAIT_ECHO
    assert client.data_to_send() == b""  # C2 waits for the whole of S2
    assert not client.complete
    client.receive_data(s0s1s2[-1:])
    c2 = client.data_to_send()
    server.receive_data(c2[:-1])
    assert not server.complete
    assert server.take_unused_data() == b""
    server.receive_data(c2[-1:])
    assert server.complete


def test_empty_input_is_harmless() -> None:
    server = Handshake(SERVER)
    server.receive_data(b"")
    assert server.state is HandshakeState.AWAIT_VERSION


# -- the client verifies a digest server -------------------------------------------------


def digest_exchange() -> tuple[Handshake, bytes]:
    client = Handshake(CLIENT, random_bytes=seeded_random(20))
    server = Handshake(SERVER, random_bytes=seeded_random(21))
    client.initiate()
    server.receive_data(client.data_to_send())
    return client, server.data_to_send()


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_tampered_s1_digest_is_rejected() -> None:
    client, s0s1s2 = digest_exchange()
    s1 = s0s1s2[1 : 1 + SIZE]
    pos = calc_digest_pos(s1, 8)
    with pytest.raises(HandshakeError, match="no valid digest"):
        client.receive_data(flip(s0s1s2, 1 + pos))
    assert client.state is HandshakeState.FAILED
    assert client.data_to_send() == b""  # no C2 goes out


def test_tampered_s1_body_is_rejected() -> None:
    client, s0s1s2 = digest_exchange()
    with pytest.raises(HandshakeError, match=r"S1 announces server version 3\.5\.1\.1"):
        client.receive_data(flip(s0s1s2, 1 + 900))


def test_tampered_s2_signature_is_rejected() -> None:
    client, s0s1s2 = digest_exchange()
    with pytest.raises(HandshakeError, match="S2 signature"):
        client.receive_data(flip(s0s1s2, len(s0s1s2) - 1))
    assert client.data_to_send() == b""


def test_tampered_s2_body_is_rejected() -> None:
    client, s0s1s2 = digest_exchange()
    with pytest.raises(HandshakeError, match="S2 signature"):
        client.receive_data(flip(s0s1s2, 1 + SIZE + 100))


def test_plain_client_ignores_the_digest_check() -> None:
    # digest=False speaks RTMP 1.0 only: an S1 with a version but no digest is fine.
    client = Handshake(CLIENT, digest=False, random_bytes=seeded_random(22))
    client.initiate()
    c1 = client.data_to_send()[1:]
    s1 = bytes(4) + b"\x01\x02\x03\x04" + seeded_random(23)(1528)
    client.receive_data(b"\x03" + s1 + c1)
    assert client.complete
    assert client.data_to_send() == s1


# -- strict checks of the last block ---------------------------------------------------


def test_strict_client_checks_simple_s2_echo() -> None:
    for strict in (False, True):
        client = Handshake(CLIENT, digest=False, strict=strict, random_bytes=seeded_random(24))
        client.initiate()
        c1 = client.data_to_send()[1:]
        s1 = bytes(8) + seeded_random(25)(1528)
        reply = b"\x03" + s1 + flip(c1, 500)
        if strict:
            with pytest.raises(HandshakeError, match="S2 does not echo"):
                client.receive_data(reply)
        else:
            client.receive_data(reply)
            assert client.complete


@pytest.mark.parametrize("digest", [True, False])
def test_strict_server_checks_c2(digest: bool) -> None:
    for strict in (False, True):
        client = Handshake(CLIENT, digest=digest, random_bytes=seeded_random(26))
        server = Handshake(SERVER, strict=strict, random_bytes=seeded_random(27))
        client.initiate()
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
        bad_c2 = flip(client.data_to_send(), 600)
        if strict:
            with pytest.raises(HandshakeError, match="C2"):
                server.receive_data(bad_c2)
            assert server.state is HandshakeState.FAILED
        else:
            server.receive_data(bad_c2)  # only the length counts by default
            assert server.complete


# -- misuse and state ------------------------------------------------------------------


def test_server_cannot_initiate() -> None:
    with pytest.raises(LocalProtocolError):
        Handshake(SERVER).initiate()


def test_client_initiates_once() -> None:
    client = Handshake(CLIENT)
    client.initiate()
    with pytest.raises(LocalProtocolError):
        client.initiate()


def test_client_must_initiate_before_receiving() -> None:
    client = Handshake(CLIENT)
    assert client.state is HandshakeState.IDLE
    with pytest.raises(LocalProtocolError, match="initiate"):
        client.receive_data(b"\x03")


def test_failed_handshake_refuses_more_data() -> None:
    server = Handshake(SERVER)
    with pytest.raises(HandshakeError):
        server.receive_data(b"\x09")
    with pytest.raises(LocalProtocolError, match="failed"):
        server.receive_data(b"\x03")


@pytest.mark.parametrize(
    "kwargs",
    [{"scheme": 2}, {"scheme": -1}, {"epoch_ms": -1}],
)
def test_bad_arguments(kwargs: dict[str, int]) -> None:
    with pytest.raises(LocalProtocolError):
        Handshake(CLIENT, **kwargs)  # type: ignore[arg-type]


def test_short_random_source_is_our_error() -> None:
    client = Handshake(CLIENT, random_bytes=lambda n: bytes(n - 1))
    with pytest.raises(LocalProtocolError, match="random_bytes"):
        client.initiate()


def test_epoch_goes_into_the_time_field_and_wraps() -> None:
    client = Handshake(CLIENT, epoch_ms=2**32 + 7, random_bytes=fixed_random())
    client.initiate()
    assert client.data_to_send()[1:5] == bytes([0, 0, 0, 7])


def test_data_after_completion_is_unused_data() -> None:
    client = Handshake(CLIENT, random_bytes=seeded_random(28))
    server = Handshake(SERVER, random_bytes=seeded_random(29))
    run_pair(client, server)
    server.receive_data(b"abc")
    server.receive_data(bytearray(b"def"))
    assert server.take_unused_data() == b"abcdef"
    assert server.take_unused_data() == b""
    assert server.data_to_send() == b""


def test_accepts_bytearray_and_memoryview() -> None:
    client = Handshake(CLIENT, random_bytes=seeded_random(30))
    server = Handshake(SERVER, random_bytes=seeded_random(31))
    client.initiate()
    c0c1 = client.data_to_send()
    server.receive_data(bytearray(c0c1[:100]))
    server.receive_data(memoryview(c0c1)[100:])
    s0s1s2 = server.data_to_send()
    # A memoryview whose items are not bytes is read as its raw bytes.
    words = array.array("H")
    words.frombytes(s0s1s2[1:] + b"zz")
    client.receive_data(s0s1s2[:1])
    client.receive_data(memoryview(words))
    assert client.complete
    assert client.take_unused_data() == b"zz"
    buffer = bytearray(client.data_to_send())
    server.receive_data(buffer)
    buffer.extend(b"resizable again")  # receive_data released its view of the buffer
    assert server.complete


def test_block_size_constant() -> None:
    assert HANDSHAKE_BLOCK_SIZE == SIZE


# -- fuzz: malformed input raises only HandshakeError ----------------------------------


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4000), first=st.sampled_from([3, 6, 0x16, None]))
def test_server_fuzz(data: bytes, first: int | None) -> None:
    if first is not None:
        data = bytes([first]) + data
    server = Handshake(SERVER, strict=True, random_bytes=seeded_random(32))
    try:
        server.receive_data(data)
    except HandshakeError:
        assert server.state is HandshakeState.FAILED
        return
    assert len(server.take_unused_data()) == max(0, len(data) - 1 - 2 * SIZE)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=4000),
    digest=st.booleans(),
    strict=st.booleans(),
)
def test_client_fuzz(data: bytes, digest: bool, strict: bool) -> None:
    client = Handshake(CLIENT, digest=digest, strict=strict, random_bytes=seeded_random(33))
    client.initiate()
    client.data_to_send()
    try:
        client.receive_data(b"\x03" + data)
    except HandshakeError:
        assert client.state is HandshakeState.FAILED


# -- the core stays sans-I/O -----------------------------------------------------------


def test_module_imports_no_io() -> None:
    source = Path(handshake_module.__file__).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported, "the AST walk found no imports at all"
    assert not imported & {"asyncio", "socket", "selectors", "time", "trio", "anyio"}
