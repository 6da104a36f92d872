"""The one "drop video until the next keyframe" policy.

Every output that can lose video — a slow player, a queued output that falls behind, an
output that starts mid-GOP or resumes after ``receiveVideo false`` / ``pause`` — uses a
:class:`KeyframeGate`: once closed, non-key video is dropped until a keyframe, because
"inter frames ... reference previous frames" and are undecodable after a gap. Configuration
packets, metadata, audio and keyframes always pass.
"""

from __future__ import annotations

from .packet import PacketKind

__all__ = ["KeyframeGate"]

_VIDEO = PacketKind.VIDEO
_KEYFRAME = PacketKind.KEYFRAME


class KeyframeGate:
    """Drops non-key video while closed; the next keyframe opens it.

    Args:
        closed: start closed (wait for a keyframe before any inter frame).

    Attributes:
        closed: True while inter frames are dropped.
        dropped: inter frames dropped so far.
    """

    __slots__ = ("closed", "dropped")

    def __init__(self, *, closed: bool = True) -> None:
        self.closed = closed
        self.dropped = 0

    def close(self) -> None:
        """Drop non-key video from now until the next keyframe."""
        self.closed = True

    def admit(self, kind: PacketKind, *, hold: bool = False) -> bool:
        """Whether a packet of ``kind`` passes.

        Args:
            kind: the packet's kind.
            hold: keep the gate closed even at a keyframe (the output is still too far
                behind to resume); the keyframe itself passes.

        Returns:
            False only for non-key video while the gate is closed.
        """
        if kind is _VIDEO:
            if self.closed:
                self.dropped += 1
                return False
            return True
        if kind is _KEYFRAME and not hold:
            self.closed = False
        return True
