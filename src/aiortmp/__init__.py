"""aiortmp: a live-streaming RTMP media server and client library on asyncio."""

from __future__ import annotations

__version__ = "0.1.0"
