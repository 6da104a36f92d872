"""aiortmp: a live-streaming RTMP media server and client library on asyncio.

``aiortmp.connect`` is :func:`aiortmp.client.connect`; it is imported on first use, so
``import aiortmp.protocol`` (the sans-I/O core) does not pull in asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import connect

__version__ = "0.1.0"

__all__ = ["__version__", "connect"]


def __getattr__(name: str) -> Any:
    if name == "connect":
        from .client import connect

        return connect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
