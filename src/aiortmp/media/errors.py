"""The media part of the error tree (see :mod:`aiortmp.errors`, where it is defined)."""

from __future__ import annotations

from aiortmp.errors import CodecHeaderError, FLVError, FrameError, MediaError, MP4Error

__all__ = ["CodecHeaderError", "FLVError", "FrameError", "MP4Error", "MediaError"]
