"""Exceptions raised by :mod:`aiortmp.media` parsers."""

from __future__ import annotations

from aiortmp.protocol.errors import RemoteProtocolError

__all__ = ["CodecHeaderError", "FLVError", "FrameError", "MediaError"]


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
