"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, opens
``/``, sees the stream FFmpeg publishes, plays it with mpegts.js over HTTP-FLV (H.264/AAC
through Media Source Extensions) and takes a screenshot (issue: HTTP surface).

Playwright never downloads a browser here: it drives /usr/bin/chromium (scripts/sysdeps.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from .peers import chromium_context, ffmpeg_publish_args, popen, run_server

pytestmark = pytest.mark.interop

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def wait_listed(
    api_url: str, timeout_s: float = 15.0, headers: dict[str, str] | None = None
) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while True:
        request = urllib.request.Request(api_url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=5) as response:
            streams = json.load(response)["streams"]
        ready = [s for s in streams if s["video"] and s["bitrate_in_bps"]]
        if ready:
            return dict(ready[0])
        assert time.monotonic() < deadline, streams
        time.sleep(0.2)


def test_dashboard_lists_and_plays_the_stream(tmp_path: Path) -> None:
    with run_server(tmp_path, http=True) as server:
        publisher = popen(
            ffmpeg_publish_args(server.url("live/cam"), duration_s=40, size="640x360", gop=25)
        )
        try:
            wait_listed(server.http_url("/api/streams"))
            with chromium_context(tmp_path, viewport={"width": 1280, "height": 860}) as context:
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(server.http_url("/"))
                row = page.locator('tr[data-stream="live/cam"]')
                row.wait_for(timeout=10_000)
                # The table updates live: the uptime cell moves.
                uptime_cell = row.locator("td").nth(6)
                first_uptime = uptime_cell.inner_text()
                page.wait_for_function(
                    "([sel, before]) => document.querySelector(sel).innerText !== before",
                    arg=['tr[data-stream="live/cam"] td:nth-child(7)', first_uptime],
                    timeout=5_000,
                )
                assert "H.264" in row.inner_text() and "640×360" in row.inner_text()
                # Debian's Chromium plays H.264/AAC through MSE (what mpegts.js needs).
                assert page.evaluate(
                    "MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42E01E,mp4a.40.2\"')"
                )
                row.locator("button.preview").click()
                page.wait_for_function(
                    "document.getElementById('preview').currentTime > 1.0", timeout=15_000
                )
                t1 = page.evaluate("document.getElementById('preview').currentTime")
                time.sleep(2.0)
                t2 = page.evaluate("document.getElementById('preview').currentTime")
                assert t2 - t1 > 1.0, (t1, t2)
                size = page.evaluate(
                    "[document.getElementById('preview').videoWidth,"
                    " document.getElementById('preview').videoHeight]"
                )
                assert size == [640, 360]
                # The viewer shows up in the table's player count.
                page.wait_for_function(
                    "document.querySelector('tr[data-stream=\"live/cam\"] td:nth-child(6)')"
                    ".innerText === '1'",
                    timeout=5_000,
                )
                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot))
                assert errors == []
        finally:
            publisher.kill()
            publisher.wait()
    assert shot.stat().st_size > 10_000
    # docs/dashboard.png is committed: refresh it on request only, so test runs leave the
    # work tree clean.
    if not DOCS_SCREENSHOT.exists() or os.environ.get("AIORTMP_UPDATE_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_dashboard_asks_for_the_token_and_sends_it(tmp_path: Path) -> None:
    """With ``[http] api_token`` the page prompts for it, keeps it in sessionStorage, sends
    it as a bearer token, and its buttons change state with JSON requests."""
    token = "dashboard-t0ken"
    config = tmp_path / "aiortmp.toml"
    config.write_text(f'[http]\napi_token = "{token}"\n')
    with run_server(tmp_path, "--config", str(config), http=True) as server:
        publisher = popen(ffmpeg_publish_args(server.url("live/cam"), duration_s=30))
        try:
            wait_listed(
                server.http_url("/api/streams"), headers={"Authorization": f"Bearer {token}"}
            )
            with chromium_context(tmp_path) as context:
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("dialog", lambda dialog: dialog.accept())
                page.goto(server.http_url("/"))
                form = page.locator("#token-form")
                form.wait_for(state="visible", timeout=10_000)
                assert page.locator('tr[data-stream="live/cam"]').count() == 0
                page.fill("#token", "wrong")
                page.click("#token-form button[type=submit]")
                page.wait_for_function(
                    "document.getElementById('status').innerText === 'wrong API token'",
                    timeout=5_000,
                )
                page.fill("#token", token)
                page.click("#token-form button[type=submit]")
                row = page.locator('tr[data-stream="live/cam"]')
                row.wait_for(timeout=10_000)
                assert form.is_hidden()
                assert page.evaluate("sessionStorage.getItem('aiortmp.token')") == token
                assert page.evaluate("localStorage.length") == 0
                # record_dir records from the start: stop, then start again (a JSON
                # POST from our own origin passes the cross-site checks).
                rec = row.locator("td").nth(8)
                rec.wait_for(timeout=5_000)
                page.wait_for_function(
                    "document.querySelector('tr[data-stream=\"live/cam\"] td:nth-child(9)')"
                    ".innerText.includes('REC')",
                    timeout=5_000,
                )
                row.locator("button", has_text="Stop rec").click()
                page.wait_for_function(
                    "document.querySelector('tr[data-stream=\"live/cam\"] td:nth-child(9)')"
                    ".innerText === '–'",
                    timeout=5_000,
                )
                page.locator('tr[data-stream="live/cam"] button', has_text="Record").click()
                page.wait_for_function(
                    "document.querySelector('tr[data-stream=\"live/cam\"] td:nth-child(9)')"
                    ".innerText.includes('REC')",
                    timeout=5_000,
                )
                assert errors == []
        finally:
            publisher.kill()
            publisher.wait()
    assert len(list((tmp_path / "records" / "live").glob("cam-*.flv"))) == 2
