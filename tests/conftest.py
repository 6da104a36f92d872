"""Shared fixtures: in-process servers on loopback (tests/server, tests/test_client.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig, ServerConfig

ServerFactory = Callable[..., Awaitable[RTMPServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """``await make_server(**config)`` starts an RTMPServer on 127.0.0.1:<free port>."""
    servers: list[RTMPServer] = []

    async def factory(**options: Any) -> RTMPServer:
        options.setdefault("listen", ["127.0.0.1:0"])
        options.setdefault("http", HTTPConfig(listen=[]))
        server = RTMPServer(ServerConfig(**options))
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


def url(server: RTMPServer, path: str) -> str:
    host, port = server.addresses[0]
    return f"rtmp://{host}:{port}/{path}"


async def eventually(check: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    """Poll ``check()`` every 20 ms until it is truthy; return its value.

    Raises:
        AssertionError: not truthy within ``timeout_s`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (value := check()):
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)
    return value
