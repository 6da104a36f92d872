"""The aiohttp application key under which the :class:`HTTPService` is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from . import HTTPService

__all__ = ["SERVICE_KEY"]

#: ``request.app[SERVICE_KEY]`` is the :class:`~aiortmp.server.http.HTTPService`.
SERVICE_KEY: web.AppKey[HTTPService] = web.AppKey("aiortmp.http.service")
