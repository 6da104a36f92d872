"""The startup cache of a stream: what an output needs before live packets.

A player or recorder that joins a live stream gets, in this order (:meth:`replay`):

1. the last ``onMetaData``;
2. every configuration packet, per track — sequence headers (FLV v10.1 E.4.2.2/E.4.3.1,
   E-RTMP v2 ``SequenceStart``), E-RTMP video ``Metadata`` (HDR ``colorInfo``) and audio
   ``MultichannelConfig`` — video first, since players probe the video codec first;
3. the current GOP: from the last keyframe on, capped in bytes (past the cap the GOP is
   dropped and caching resumes at the next keyframe).

With every joiner started from the same cache, a late player, a recording started by the
API and a push that reconnects all begin decodable.
"""

from __future__ import annotations

import logging

from .packet import Packet, PacketKind, config_key

__all__ = ["StartupCache"]

logger = logging.getLogger("aiortmp.stream")

_KEYFRAME = PacketKind.KEYFRAME
_FIRST_MEDIA = PacketKind.KEYFRAME


class StartupCache:
    """Metadata, configuration packets and the current GOP of one stream.

    Args:
        gop: keep the current GOP (else only metadata and configuration).
        gop_max_bytes: GOP cap in payload bytes.
        label: ``app/name`` for the log line when the cap is hit.

    Attributes:
        metadata: the ``onMetaData`` packet, or None.
        configs: configuration packets by :func:`~aiortmp.hub.packet.config_key`.
        gop: the cached GOP (starts with a keyframe) or ``[]``.
        gop_bytes: payload bytes in :attr:`gop`.
    """

    __slots__ = ("gop_enabled", "gop_max_bytes", "label", "metadata", "configs", "gop", "gop_bytes")

    def __init__(self, *, gop: bool = True, gop_max_bytes: int = 8 << 20, label: str = "") -> None:
        self.gop_enabled = gop
        self.gop_max_bytes = gop_max_bytes
        self.label = label
        self.metadata: Packet | None = None
        self.configs: dict[tuple[int, int, tuple[int, ...]], Packet] = {}
        self.gop: list[Packet] = []
        self.gop_bytes = 0

    def clear(self) -> None:
        """Forget everything (the source changed)."""
        self.metadata = None
        self.configs.clear()
        self.gop = []
        self.gop_bytes = 0

    def add(self, packet: Packet) -> None:
        """Cache a relayed audio/video packet (called for each one: cheap)."""
        kind = packet.kind
        if kind >= _FIRST_MEDIA:
            if not self.gop_enabled:
                return
            if kind is _KEYFRAME:
                self.gop = [packet]
                self.gop_bytes = len(packet.payload)
                return
            if not self.gop:
                return  # no keyframe yet: nothing a late joiner could decode
            self.gop.append(packet)
            self.gop_bytes += len(packet.payload)
            if self.gop_bytes > self.gop_max_bytes:
                logger.info(
                    "%s: GOP exceeds the %d-byte cache cap; caching resumes at the next keyframe",
                    self.label,
                    self.gop_max_bytes,
                )
                self.gop = []
                self.gop_bytes = 0
        elif kind is not PacketKind.DATA:
            self.configs[config_key(packet.type_id, packet.payload)] = packet

    def replay(self, *, gop: bool = True) -> list[Packet]:
        """What a joiner gets first: metadata, configuration (video first), then the GOP.

        Args:
            gop: include the cached GOP (False: the joiner waits for the next keyframe).
        """
        packets: list[Packet] = []
        if self.metadata is not None:
            packets.append(self.metadata)
        packets.extend(sorted(self.configs.values(), key=lambda p: p.kind))
        if gop:
            packets.extend(self.gop)
        return packets
