"""The stream core: sources feed streams, streams feed outputs. No sockets, no clock.

- :mod:`.packet` — one relayed message, serialized once per wire format;
- :mod:`.stream` — a stream: its source, batching, outputs (the hot path);
- :mod:`.cache` — what a joiner gets first (metadata, configuration, GOP);
- :mod:`.gate` — the one "drop video until the next keyframe" policy;
- :mod:`.queue` — the bounded queue of a queued output and its overflow policy;
- :mod:`.timeline` — timestamp normalization (wrap, jumps, new sources);
- :mod:`.info` — codec information per track;
- :mod:`.registry` — streams by key; publish/unpublish for every kind of source;
- :mod:`.bus` — server events.
"""

from .bus import EventBus, EventKind, ServerEvent
from .packet import FLV, Packet, PacketKind, WireFormat, rtmp_wire
from .registry import Registry
from .stream import Output, Source, StartAt, Stream, StreamKey, StreamSettings

__all__ = [
    "FLV",
    "EventBus",
    "EventKind",
    "Output",
    "Packet",
    "PacketKind",
    "Registry",
    "ServerEvent",
    "Source",
    "StartAt",
    "Stream",
    "StreamKey",
    "StreamSettings",
    "WireFormat",
    "rtmp_wire",
]
