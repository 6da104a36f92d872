"""The exception hierarchy of aiortmp: one shallow tree, in the manner of h11.

Everything aiortmp raises on purpose is an :class:`RTMPError`::

    RTMPError
    ├── ProtocolError                  the RTMP protocol was violated, by either side
    │   ├── LocalProtocolError         our side asked for something the protocol forbids
    │   │   └── AMFEncodeError         a Python value has no AMF representation
    │   └── RemoteProtocolError        the peer's bytes break a spec or a configured limit
    │       ├── HandshakeError         RTMP 1.0 §5.2
    │       ├── ChunkError             RTMP 1.0 §5.3
    │       ├── MessageError           RTMP 1.0 §5.4, §6, §7
    │       ├── AMFError               AMF0 / AMF3
    │       ├── CommandError           RTMP 1.0 §7.2
    │       ├── LimitExceededError     a configured limit, checked before allocating
    │       └── MediaError             FLV / codec data
    │           ├── FLVError           FLV v10.1 Annex E
    │           ├── CodecHeaderError   tag headers, codec configuration records
    │           ├── FrameError         a coded frame a muxer cannot carry
    │           └── MP4Error           ISO/IEC 14496-12 boxes (the MP4 reader)
    ├── ClientError                    the client could not do what was asked
    │   ├── RejectedError              the server said no (carries the NetStatus code)
    │   └── ClientTimeoutError         the server did not answer in time
    ├── ConfigError                    the configuration is invalid (names the key)
    ├── UnsafeValueError               a network value refused where it would be used
    └── StreamBusy                     a stream already has a source

A server closes only the session whose peer raised a :class:`RemoteProtocolError`.
``aiortmp.protocol.errors`` and ``aiortmp.media.errors`` re-export their parts of the tree.
"""

from __future__ import annotations

__all__ = [
    "AMFEncodeError",
    "AMFError",
    "ChunkError",
    "ClientError",
    "ClientTimeoutError",
    "CodecHeaderError",
    "CommandError",
    "ConfigError",
    "FLVError",
    "FrameError",
    "HandshakeError",
    "LimitExceededError",
    "LocalProtocolError",
    "MP4Error",
    "MediaError",
    "MessageError",
    "ProtocolError",
    "RTMPError",
    "RejectedError",
    "RemoteProtocolError",
    "StreamBusy",
    "UnsafeValueError",
]


class RTMPError(Exception):
    """Base class of every exception aiortmp raises on purpose."""


# -- protocol ---------------------------------------------------------------------------------


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


# -- media ------------------------------------------------------------------------------------


class MediaError(RemoteProtocolError):
    """Media data (an FLV file, tag or codec payload) is malformed."""


class FLVError(MediaError):
    """An FLV file header or tag is malformed (FLV spec v10.1, Annex E)."""


class CodecHeaderError(MediaError):
    """An audio/video tag header or codec configuration record is malformed
    (FLV spec v10.1 E.4.2/E.4.3, E-RTMP v2 ExVideoTagHeader/ExAudioTagHeader)."""


class FrameError(MediaError):
    """A coded frame cannot be muxed as its codec requires: NAL unit lengths that overrun
    the access unit (ISO/IEC 14496-15 §5.3.2), an AAC access unit too long for an ADTS
    header (ISO/IEC 13818-7 §6.2.1, 13-bit ``frame_length``)."""


class MP4Error(MediaError):
    """An MP4 file cannot be read: not ISO BMFF, a box that overruns its container, a
    sample table that contradicts itself (ISO/IEC 14496-12 §4.2, §8), or a reader limit."""


# -- client -----------------------------------------------------------------------------------


class ClientError(RTMPError):
    """The client could not do what was asked (connection lost, bad URL...)."""


class RejectedError(ClientError):
    """The server refused connect, createStream, publish or play.

    Attributes:
        code: the NetStatus code (``NetConnection.Connect.Rejected``,
            ``NetStream.Publish.BadName``, ``NetStream.Play.StreamNotFound``...).
        description: the server's description.
    """

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


class ClientTimeoutError(ClientError, TimeoutError):
    """The server did not answer (or sent nothing) within the timeout."""


# -- server -----------------------------------------------------------------------------------


class ConfigError(RTMPError, ValueError):
    """The configuration file or a flag is invalid; the message says where and why."""


class UnsafeValueError(RTMPError, ValueError):
    """A value from the network (an app or stream name) may not be used where it was asked
    for: it is outside the character set allowed there (an exec hook's argument).

    Not a protocol violation: the name is valid RTMP, only this use of it is refused.
    """


class StreamBusy(RTMPError):
    """A stream already has a source (a second publisher, a pull racing a publish).

    Attributes:
        key: the ``(app, name)`` of the stream.
    """

    def __init__(self, key: tuple[str, str]) -> None:
        super().__init__(f"{key[0]}/{key[1]} already has a source")
        self.key = key
