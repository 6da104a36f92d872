"""The exception hierarchy of aiortmp.

One shallow tree, in the manner of h11: everything is an :class:`RTMPError`;
protocol violations are a :class:`ProtocolError`, split by *who* broke the rules:

- :class:`LocalProtocolError`: our side asked for something the protocol forbids
  (a bug in the caller, e.g. sending a message before the handshake).
- :class:`RemoteProtocolError`: the peer sent bytes that break the spec, or that
  exceed a configured limit. A server closes only that session.

Each layer raises its own subclass of :class:`RemoteProtocolError`, so a caller
can tell a broken handshake from a malformed AMF value.
"""

from __future__ import annotations

__all__ = [
    "AMFError",
    "AMFEncodeError",
    "ChunkError",
    "CommandError",
    "HandshakeError",
    "LimitExceededError",
    "LocalProtocolError",
    "MessageError",
    "ProtocolError",
    "RTMPError",
    "RemoteProtocolError",
    "UnsafeValueError",
]


class RTMPError(Exception):
    """Base class of every exception aiortmp raises on purpose."""


class ProtocolError(RTMPError):
    """The RTMP protocol was violated (by either side)."""


class LocalProtocolError(ProtocolError):
    """Our side tried to do something the protocol or the current state forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent data that violates the RTMP 1.0 / AMF / E-RTMP specifications."""


class HandshakeError(RemoteProtocolError):
    """The peer's C0/C1/C2 (or S0/S1/S2) are invalid (RTMP 1.0 §5.2)."""


class ChunkError(RemoteProtocolError):
    """A chunk header or chunk sequence is invalid (RTMP 1.0 §5.3)."""


class MessageError(RemoteProtocolError):
    """A message payload is invalid for its message type (RTMP 1.0 §5.4, §6, §7)."""


class AMFError(RemoteProtocolError):
    """An AMF0 or AMF3 value could not be decoded."""


class AMFEncodeError(LocalProtocolError, TypeError):
    """A Python value has no AMF representation (raised while *encoding*)."""


class CommandError(RemoteProtocolError):
    """A command message (NetConnection/NetStream, RTMP 1.0 §7.2) is malformed."""


class LimitExceededError(RemoteProtocolError):
    """The peer exceeded a configured limit (message size, chunk streams, AMF depth, ...).

    Raised *before* allocating, so a hostile peer cannot make us hold the memory.
    """


class UnsafeValueError(RTMPError, ValueError):
    """A value from the network (an app or stream name) may not be used where it was asked
    for: it is outside the character set allowed there (an exec hook's argument).

    Not a protocol violation: the name is valid RTMP, only this use of it is refused.
    """
