"""The RTMP handshake, sans-I/O, for both roles.

Two handshakes share the same bytes on the wire (RTMP 1.0 §5.2): one version byte
(C0/S0) and two 1536-byte blocks per side (C1/S1, then C2/S2).

*Simple handshake* (RTMP 1.0 §5.2.3, §5.2.4): C1/S1 are ``time(4) zero(4) random(1528)``
and C2/S2 echo the peer's block. librtmp (rtmpdump) sends it unless it needs SWF
verification or RTMPE.

*Digest ("FP9", "complex") handshake*, which Flash Player 9+, FFmpeg, nginx-rtmp and SRS
use; it is not in the RTMP 1.0 document, the layout below follows FFmpeg's
``libavformat/rtmpproto.c``/``rtmpdigest.c`` and librtmp's ``handshake.h``:

- C1/S1 are ``time(4) version(4) random(1528)`` with a nonzero version and a 32-byte
  HMAC-SHA256 digest hidden in the random part. Its position depends on the *scheme*:

  - scheme 0: ``offset = (b[8] + b[9] + b[10] + b[11]) % 728 + 12``
  - scheme 1: ``offset = (b[772] + b[773] + b[774] + b[775]) % 728 + 776``

  (SRS names these the other way round: its "schema0" is key-then-digest, our scheme 1.)
  The digest is HMAC-SHA256 over the 1504 other bytes of the block, keyed with the
  30-byte "Genuine Adobe Flash Player 001" (C1) or the 36-byte "Genuine Adobe Flash
  Media Server 001" (S1).
- S2/C2 end with a 32-byte signature: ``HMAC(HMAC(full_key, peer_digest), block[:1504])``,
  where ``full_key`` is the server key (S2) or player key (C2) extended by the same
  32-byte constant, and ``peer_digest`` is the digest found in C1 (for S2) or S1 (for C2).

This module only turns bytes into bytes: no sockets, no asyncio, no clock. The caller
passes our epoch (``epoch_ms``) and may inject the random source for reproducible tests.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
from collections.abc import Callable

from aiortmp.protocol.errors import HandshakeError, LocalProtocolError

__all__ = [
    "HANDSHAKE_BLOCK_SIZE",
    "RTMP_VERSION",
    "Handshake",
    "HandshakeRole",
    "HandshakeState",
]

_logger = logging.getLogger(__name__)

RTMP_VERSION = 3
"""The only C0/S0 version we speak (RTMP 1.0 §5.2.2: "The version defined by this
specification is 3")."""

HANDSHAKE_BLOCK_SIZE = 1536
"""Size in bytes of each of C1, S1, C2 and S2 (RTMP 1.0 §5.2.3, §5.2.4)."""

_DIGEST_SIZE = 32
_SIGNED_SIZE = HANDSHAKE_BLOCK_SIZE - _DIGEST_SIZE  # C2/S2 bytes covered by the signature
_RANDOM_SIZE = HANDSHAKE_BLOCK_SIZE - 8  # after the two 4-byte header fields
_UINT32_MOD = 1 << 32

# The 32 bytes Adobe appends to both "Genuine ..." strings to form the full keys.
_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
_PLAYER_KEY_PARTIAL = b"Genuine Adobe Flash Player 001"  # 30 bytes: signs C1
_SERVER_KEY_PARTIAL = b"Genuine Adobe Flash Media Server 001"  # 36 bytes: signs S1
_PLAYER_KEY_FULL = _PLAYER_KEY_PARTIAL + _KEY_TAIL  # 62 bytes: keys the C2 signature
_SERVER_KEY_FULL = _SERVER_KEY_PARTIAL + _KEY_TAIL  # 68 bytes: keys the S2 signature

# Where each scheme reads the four bytes that place the digest (see the module docstring).
_SCHEME_BASE = {0: 8, 1: 772}

# The version field of a digested C1: Flash Player 9.0.124.2, what FFmpeg sends
# (libavformat/rtmp.h RTMP_CLIENT_VER1..4); librtmp: "set version to at least 9.0.115.0".
_CLIENT_FLASH_VERSION = bytes((9, 0, 124, 2))
# The version field of a digested S1: FMS 3.5.1.1, as librtmp's server announces.
# FFmpeg only looks for an S1 digest when the first byte is >= 3 (rtmpproto.c:
# "serverdata[5] >= 3"), librtmp when it is nonzero.
_SERVER_FMS_VERSION = bytes((3, 5, 1, 1))

# Version bytes that a misdirected or unsupported client sends first, for a useful error.
_RTMPE_VERSIONS = frozenset({6, 8, 9})
_TLS_HANDSHAKE_RECORD = 0x16


class HandshakeRole(enum.Enum):
    """Which side of the handshake we play."""

    CLIENT = "client"
    SERVER = "server"


class HandshakeState(enum.Enum):
    """Where a :class:`Handshake` is; each waiting state names the next thing expected.

    The client goes IDLE → AWAIT_VERSION (S0) → AWAIT_HELLO (S1) → AWAIT_ECHO (S2) →
    COMPLETE; the server starts at AWAIT_VERSION (C0) and follows the same path with
    C1 and C2. An error while processing input moves to FAILED for good.
    """

    IDLE = "idle"
    AWAIT_VERSION = "await C0/S0"
    AWAIT_HELLO = "await C1/S1"
    AWAIT_ECHO = "await C2/S2"
    COMPLETE = "complete"
    FAILED = "failed"


_PEER_NAMES = {
    HandshakeRole.SERVER: ("C0", "C1", "C2"),
    HandshakeRole.CLIENT: ("S0", "S1", "S2"),
}


def _hmac_sha256(key: bytes, *parts: bytes | memoryview) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def _digest_offset(block: bytes | bytearray, scheme: int) -> int:
    base = _SCHEME_BASE[scheme]
    return sum(block[base : base + 4]) % 728 + base + 4


def _block_digest(block: bytes | bytearray, offset: int, key: bytes) -> bytes:
    """HMAC-SHA256 of the block without the 32 digest bytes at ``offset``."""
    view = memoryview(block)
    return _hmac_sha256(key, view[:offset], view[offset + _DIGEST_SIZE :])


def _find_digest(block: bytes, key: bytes, schemes: tuple[int, ...]) -> tuple[int, bytes] | None:
    """Return ``(scheme, digest)`` of the first scheme whose digest verifies, else None."""
    for scheme in schemes:
        offset = _digest_offset(block, scheme)
        found = block[offset : offset + _DIGEST_SIZE]
        if hmac.compare_digest(found, _block_digest(block, offset, key)):
            return scheme, found
    return None


def _signature(full_key: bytes, peer_digest: bytes, block: bytes | bytearray) -> bytes:
    """The C2/S2 signature: HMAC(HMAC(full_key, peer_digest), block[:1504])."""
    return _hmac_sha256(_hmac_sha256(full_key, peer_digest), memoryview(block)[:_SIGNED_SIZE])


def _version_error(version: int, packet: str) -> HandshakeError:
    if version in _RTMPE_VERSIONS:
        detail = "RTMPE encryption is not supported"
    elif version == _TLS_HANDSHAKE_RECORD:
        detail = "this looks like a TLS ClientHello: RTMPS sent to a plain RTMP port?"
    elif 0x20 <= version < 0x7F:
        # RTMP 1.0 §5.2.2: "32-255 are not allowed (to allow distinguishing RTMP from
        # text-based protocols, which always start with a printable character)".
        detail = f"printable {chr(version)!r}: a text protocol such as HTTP?"
    else:
        detail = f"expected {RTMP_VERSION}"
    return HandshakeError(f"{packet}: unsupported RTMP version {version} ({detail})")


class Handshake:
    """One side of the RTMP handshake (simple or FP9 digest), as a sans-I/O state machine.

    Feed every received byte to :meth:`receive_data`, write whatever :meth:`data_to_send`
    returns, and once :attr:`complete` is true hand :meth:`take_unused_data` to the chunk
    layer: those bytes already belong to the chunk stream.

    The server answers as soon as C0+C1 are in, with S0+S1+S2 in one write; it answers a
    C1 that carries a valid digest (either scheme) with a digested S1 (same scheme) and a
    signed S2, and any other C1 with the simple handshake. It is complete when the 1536
    bytes of C2 have arrived; only their length is checked unless ``strict`` is set,
    because real clients disagree on C2 (nginx-rtmp sends random bytes where RTMP 1.0
    wants an echo).

    The client sends C0+C1 on :meth:`initiate` and C2 once S0, S1 and S2 are in. When S1
    carries a valid digest it verifies S2's signature and signs C2; when S1's version
    field is zero it echoes S1 (simple handshake); a nonzero version without a valid
    digest is rejected, as FFmpeg does.

    Follows RTMP 1.0 §5.2 and, for the digest handshake, FFmpeg's rtmpproto.c.

    Args:
        role: which side we play.
        digest: client only: send a digested (FP9) C1 if true, a plain RTMP 1.0 C1 if
            false. Ignored by the server, which accepts both.
        epoch_ms: our epoch in milliseconds, written into the time field of our C1/S1
            (RTMP 1.0 §5.2.3: "This field contains a timestamp, which SHOULD be used as
            the epoch for all future chunks sent from this endpoint"). Wraps at 2**32.
        random_bytes: returns n random bytes; called once, for the 1528 random bytes of
            C1/S1. Injectable so tests are deterministic.
        scheme: client only: the digest scheme (0 or 1) of our digested C1. Scheme 0 is
            what FFmpeg and librtmp send.
        strict: also verify the peer's final block: a server checks that C2 echoes S1's
            random bytes, or (after a digested C1) carries a valid signature; a client
            checks that a simple S2 echoes C1's random bytes. A digest S2 is always
            verified.

    Raises:
        LocalProtocolError: ``epoch_ms`` is negative or ``scheme`` is not 0 or 1.
    """

    def __init__(
        self,
        role: HandshakeRole,
        *,
        digest: bool = True,
        epoch_ms: int = 0,
        random_bytes: Callable[[int], bytes] = os.urandom,
        scheme: int = 0,
        strict: bool = False,
    ) -> None:
        if epoch_ms < 0:
            raise LocalProtocolError(f"epoch_ms must be >= 0, got {epoch_ms}")
        if scheme not in _SCHEME_BASE:
            raise LocalProtocolError(f"digest scheme must be 0 or 1, got {scheme}")
        self._role = role
        self._digest = digest
        self._epoch = (epoch_ms % _UINT32_MOD).to_bytes(4, "big")
        self._random_bytes = random_bytes
        self._scheme = scheme
        self._strict = strict

        self._state = (
            HandshakeState.AWAIT_VERSION if role is HandshakeRole.SERVER else HandshakeState.IDLE
        )
        self._buffer = bytearray()  # the partial C0/C1/C2 (S0/S1/S2) being collected
        self._outgoing = bytearray()
        self._unused = bytearray()

        self._peer_version: int | None = None
        self._peer_epoch_ms: int | None = None
        self._peer_flash_version: tuple[int, int, int, int] | None = None
        self._digest_scheme: int | None = None
        self._peer_digest: bytes | None = None  # the 32 bytes found in C1/S1
        self._peer_hello: bytes | None = None  # their C1/S1
        self._my_hello: bytes | None = None  # our C1/S1
        self._my_digest: bytes | None = None  # the digest inside our C1/S1, if any

    # -- public API ------------------------------------------------------------------

    @property
    def role(self) -> HandshakeRole:
        """The side this handshake plays."""
        return self._role

    @property
    def state(self) -> HandshakeState:
        """The current state; see :class:`HandshakeState`."""
        return self._state

    @property
    def complete(self) -> bool:
        """True once the handshake is over for this side (C2 received / S2 received)."""
        return self._state is HandshakeState.COMPLETE

    @property
    def peer_version(self) -> int | None:
        """The peer's C0/S0 version byte (always 3 once accepted), None before it arrives."""
        return self._peer_version

    @property
    def peer_epoch_ms(self) -> int | None:
        """The time field of the peer's C1/S1 in milliseconds, None before it arrives."""
        return self._peer_epoch_ms

    @property
    def peer_flash_version(self) -> tuple[int, int, int, int] | None:
        """The four version bytes of the peer's C1/S1 (e.g. ``(9, 0, 124, 2)`` for FFmpeg).

        All zero for a simple RTMP 1.0 peer ("Zero (4 bytes): This field MUST be all
        0s", RTMP 1.0 §5.2.3); None before C1/S1 arrives.
        """
        return self._peer_flash_version

    @property
    def digest_scheme(self) -> int | None:
        """0 or 1 if the peer's C1/S1 carried a valid digest in that scheme, else None."""
        return self._digest_scheme

    def initiate(self) -> None:
        """Queue C0+C1 for sending (client only).

        Raises:
            LocalProtocolError: called on a server, or called twice.
        """
        if self._role is not HandshakeRole.CLIENT:
            raise LocalProtocolError("only the client initiates the handshake; a server waits")
        if self._state is not HandshakeState.IDLE:
            raise LocalProtocolError("initiate() was already called")
        if self._digest:
            c1 = self._make_digested_hello(_CLIENT_FLASH_VERSION, _PLAYER_KEY_PARTIAL, self._scheme)
        else:
            c1 = self._make_plain_hello()
        self._my_hello = c1
        self._outgoing += bytes((RTMP_VERSION,)) + c1
        self._state = HandshakeState.AWAIT_VERSION
        if _logger.isEnabledFor(logging.DEBUG):
            kind = f"digest scheme {self._scheme}" if self._digest else "plain"
            _logger.debug("> C0 version %d, C1 %s", RTMP_VERSION, kind)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes received from the peer, split anywhere.

        Only as many bytes as the handshake needs are consumed; the rest (and anything
        fed after completion) is kept for :meth:`take_unused_data`.

        Args:
            data: the received bytes.

        Raises:
            HandshakeError: the peer's C0/C1/C2 (or S0/S1/S2) are invalid; the handshake
                is then FAILED.
            LocalProtocolError: a client called this before :meth:`initiate`, or the
                handshake already failed.
        """
        if self._state is HandshakeState.FAILED:
            raise LocalProtocolError("the handshake already failed")
        if self._state is HandshakeState.IDLE:
            raise LocalProtocolError("call initiate() before receiving data")
        with memoryview(data) as outer, outer.cast("B") as view:
            pos = 0
            while pos < len(view) and (self._role, self._state) in _TRANSITIONS:
                needed, handler, next_state = _TRANSITIONS[self._role, self._state]
                take = min(needed - len(self._buffer), len(view) - pos)
                self._buffer += view[pos : pos + take]
                pos += take
                if len(self._buffer) < needed:
                    break
                packet = bytes(self._buffer)
                self._buffer.clear()
                try:
                    handler(self, packet)
                except BaseException:
                    # Half-processed input cannot be replayed: every later call fails.
                    self._state = HandshakeState.FAILED
                    raise
                self._state = next_state
            if pos < len(view):
                self._unused += view[pos:]

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes to write to the peer now; ``b""`` if none."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def take_unused_data(self) -> bytes:
        """Return (and forget) the bytes received after the handshake ended.

        They are the start of the chunk stream (RTMP 1.0 §5.3) and go to the chunk layer.
        """
        out = bytes(self._unused)
        self._unused.clear()
        return out

    # -- receiving: one handler per (role, state), see _TRANSITIONS below ----------------

    def _on_version(self, packet: bytes) -> None:
        version = packet[0]
        name = _PEER_NAMES[self._role][0]
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("< %s version %d", name, version)
        # RTMP 1.0 §5.2.2 lets a server answer an unknown version with 3, but every peer
        # we know (FFmpeg, nginx-rtmp, librtmp) gives up instead, and a wrong first byte
        # is almost always a different protocol: fail fast with a clear reason.
        if version != RTMP_VERSION:
            raise _version_error(version, name)
        self._peer_version = version

    def _note_hello(self, block: bytes) -> None:
        self._peer_hello = block
        self._peer_epoch_ms = int.from_bytes(block[0:4], "big")
        self._peer_flash_version = (block[4], block[5], block[6], block[7])

    def _on_c1(self, c1: bytes) -> None:
        self._note_hello(c1)
        found = _find_digest(c1, _PLAYER_KEY_PARTIAL, (0, 1))
        if found is None:
            s1 = self._make_plain_hello()
            # RTMP 1.0 §5.2.4 wants S2 = C1's time, our read time ("Time2"), C1's random
            # data. We echo C1 byte for byte instead, as FFmpeg and nginx-rtmp do: librtmp
            # compares S2 with its whole C1 and logs "client signature does not match!"
            # otherwise, and this clockless core has no read time to give.
            s2 = c1
        else:
            scheme, c1_digest = found
            self._digest_scheme = scheme
            self._peer_digest = c1_digest
            # Answer in the client's scheme, as SRS does: FFmpeg and librtmp try both,
            # and a client that only checks its own scheme still finds the digest.
            s1 = self._make_digested_hello(_SERVER_FMS_VERSION, _SERVER_KEY_PARTIAL, scheme)
            # S2 is C1 echoed, as librtmp's server builds it, with the last 32 bytes
            # replaced by the signature FFmpeg, librtmp and nginx-rtmp check:
            # HMAC(HMAC(server full key, C1 digest), S2[:1504]).
            s2 = c1[:_SIGNED_SIZE] + _signature(_SERVER_KEY_FULL, c1_digest, c1)
        self._my_hello = s1
        self._outgoing += bytes((RTMP_VERSION,)) + s1 + s2
        if _logger.isEnabledFor(logging.DEBUG):
            kind = "plain" if found is None else f"digest scheme {found[0]}"
            _logger.debug("< C1 %s, version %s", kind, _dotted(c1[4:8]))
            _logger.debug("> S0 S1 S2 (%s)", kind)

    def _on_s1(self, s1: bytes) -> None:
        self._note_hello(s1)
        found = _find_digest(s1, _SERVER_KEY_PARTIAL, (self._scheme, 1 - self._scheme))
        if found is not None:
            self._digest_scheme, self._peer_digest = found
        elif self._digest and any(s1[4:8]):
            # FFmpeg fails here too ("Server response validating failed"): a server that
            # announces a version takes part in the digest handshake, so a digest that
            # does not verify means S1 was damaged or forged.
            raise HandshakeError(
                f"S1 announces server version {_dotted(s1[4:8])} "
                "but carries no valid digest in either scheme"
            )
        if _logger.isEnabledFor(logging.DEBUG):
            kind = "plain" if found is None else f"digest scheme {found[0]}"
            _logger.debug("< S1 %s, version %s", kind, _dotted(s1[4:8]))

    def _on_c2(self, c2: bytes) -> None:
        if self._strict:
            assert self._my_hello is not None
            # RTMP 1.0 §5.2.4: "Random echo (1528 bytes): This field MUST contain the
            # random data field sent by the peer in S1 (for C2) ..."
            echoes = hmac.compare_digest(c2[8:], self._my_hello[8:])
            if self._my_digest is None:
                if not echoes:
                    raise HandshakeError("C2 does not echo the random data of S1")
            # A digest client may still echo: FFmpeg signs C2 only when it plays
            # (rtmpproto.c: "if (rt->is_input && serverdata[5] >= 3)") and echoes S1
            # when it publishes.
            elif not echoes and not hmac.compare_digest(
                _signature(_PLAYER_KEY_FULL, self._my_digest, c2), c2[_SIGNED_SIZE:]
            ):
                raise HandshakeError("C2 neither echoes S1 nor carries a valid signature")
        if _logger.isEnabledFor(logging.DEBUG):
            _logger.debug("< C2, handshake complete")

    def _on_s2(self, s2: bytes) -> None:
        assert self._my_hello is not None and self._peer_hello is not None
        s1 = self._peer_hello
        if self._peer_digest is not None and self._my_digest is not None:
            expected = _signature(_SERVER_KEY_FULL, self._my_digest, s2)
            if not hmac.compare_digest(expected, s2[_SIGNED_SIZE:]):
                raise HandshakeError("S2 signature does not match the digest of our C1")
            # C2 mirrors our S2: S1 echoed with the last 32 bytes replaced by the
            # signature FFmpeg and librtmp send: HMAC(HMAC(player full key, S1 digest),
            # C2[:1504]).
            c2 = s1[:_SIGNED_SIZE] + _signature(_PLAYER_KEY_FULL, self._peer_digest, s1)
        else:
            if self._strict and s2[8:] != self._my_hello[8:]:
                # RTMP 1.0 §5.2.4: the random echo of S2 "MUST contain the random data
                # field sent by the peer in ... C1".
                raise HandshakeError("S2 does not echo the random data of C1")
            c2 = s1  # a byte-for-byte echo, for the reason given in _on_c1
        self._outgoing += c2
        if _logger.isEnabledFor(logging.DEBUG):
            kind = "simple" if self._my_digest is None or self._peer_digest is None else "signed"
            _logger.debug("< S2, > C2 (%s), handshake complete", kind)

    # -- building ----------------------------------------------------------------------

    def _random(self) -> bytes:
        data = self._random_bytes(_RANDOM_SIZE)
        if len(data) != _RANDOM_SIZE:
            raise LocalProtocolError(f"random_bytes({_RANDOM_SIZE}) returned {len(data)} bytes")
        return bytes(data)

    def _make_plain_hello(self) -> bytes:
        """C1/S1 of RTMP 1.0 §5.2.3: time(4), zero(4), random(1528)."""
        return self._epoch + bytes(4) + self._random()

    def _make_digested_hello(self, version: bytes, key: bytes, scheme: int) -> bytes:
        """C1/S1 of the digest handshake: time(4), version(4), random holding the digest."""
        block = bytearray(self._epoch + version + self._random())
        offset = _digest_offset(block, scheme)
        digest = _block_digest(block, offset, key)
        block[offset : offset + _DIGEST_SIZE] = digest
        self._my_digest = digest
        return bytes(block)


def _dotted(version: bytes) -> str:
    return ".".join(str(b) for b in version)


_Handler = Callable[[Handshake, bytes], None]

# The state machine: for each (role, waiting state), how many bytes that state consumes,
# the handler that checks them, and the state that follows. A pair that is missing
# (IDLE, COMPLETE, FAILED) consumes no handshake bytes.
_TRANSITIONS: dict[tuple[HandshakeRole, HandshakeState], tuple[int, _Handler, HandshakeState]] = {
    (HandshakeRole.SERVER, HandshakeState.AWAIT_VERSION): (
        1,
        Handshake._on_version,
        HandshakeState.AWAIT_HELLO,
    ),
    (HandshakeRole.SERVER, HandshakeState.AWAIT_HELLO): (
        HANDSHAKE_BLOCK_SIZE,
        Handshake._on_c1,
        HandshakeState.AWAIT_ECHO,
    ),
    (HandshakeRole.SERVER, HandshakeState.AWAIT_ECHO): (
        HANDSHAKE_BLOCK_SIZE,
        Handshake._on_c2,
        HandshakeState.COMPLETE,
    ),
    (HandshakeRole.CLIENT, HandshakeState.AWAIT_VERSION): (
        1,
        Handshake._on_version,
        HandshakeState.AWAIT_HELLO,
    ),
    (HandshakeRole.CLIENT, HandshakeState.AWAIT_HELLO): (
        HANDSHAKE_BLOCK_SIZE,
        Handshake._on_s1,
        HandshakeState.AWAIT_ECHO,
    ),
    (HandshakeRole.CLIENT, HandshakeState.AWAIT_ECHO): (
        HANDSHAKE_BLOCK_SIZE,
        Handshake._on_s2,
        HandshakeState.COMPLETE,
    ),
}
