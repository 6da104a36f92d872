"""A webhook receiver on loopback for tests that watch server events from outside."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web


class Receiver:
    """Records webhook bodies; ``answer`` picks each status, ``delay_s`` slows it down."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0
        self.answer: Callable[[int], int] = lambda attempt: 200
        self.delay_s = 0.0
        self.url = ""
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        status = self.answer(self.attempts)
        body = await request.read()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if status == 200:
            self.raw.append((body, dict(request.headers)))
            self.bodies.append(json.loads(body))
            self.arrived.set()
        return web.Response(status=status)

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The bodies of ``kind`` events, in arrival order."""
        return [b for b in self.bodies if b["event"] == kind]

    async def wait(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 15.0
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.bodies):
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook bodies so far: {self.bodies}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A :class:`Receiver` listening on ``receiver.url``."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rec.url = f"http://{host}:{port}/hook"
    yield rec
    await runner.cleanup()
