"""The protocol part of the error tree (see :mod:`aiortmp.errors`, where it is defined)."""

from __future__ import annotations

from aiortmp.errors import (
    AMFEncodeError,
    AMFError,
    ChunkError,
    CommandError,
    HandshakeError,
    LimitExceededError,
    LocalProtocolError,
    MessageError,
    ProtocolError,
    RemoteProtocolError,
    RTMPError,
)

__all__ = [
    "AMFEncodeError",
    "AMFError",
    "ChunkError",
    "CommandError",
    "HandshakeError",
    "LimitExceededError",
    "LocalProtocolError",
    "MessageError",
    "ProtocolError",
    "RTMPError",
    "RemoteProtocolError",
]
