"""The stitched MP4 of a recording plays in a browser: Debian's headless Chromium, driven
by Playwright, loads ``/recordings/live/cam.mp4?start=...&duration=...`` in a plain
``<video>`` tag (no MSE, no script) and plays it across the recording's files (issue:
recordings people can use). Playwright drives /usr/bin/chromium, it downloads nothing."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from aiortmp.server.http.recordings import format_time, parse_time

from ..vod_media import make_flv
from .peers import FFMPEG9, chromium_context, run_server

pytestmark = pytest.mark.interop

SECONDS = 6


def recordings(server_url: str) -> dict[str, object]:
    with urllib.request.urlopen(server_url, timeout=5) as response:
        return dict(json.load(response))


def test_the_stitched_mp4_plays_in_a_video_tag(tmp_path: Path) -> None:
    clip = make_flv(tmp_path / "clip.flv", SECONDS, size="320x240")
    config = 'record_format = "mp4"\nrecord_segment_s = 2\n'
    with run_server(tmp_path, http=True, config=config) as server:
        # Publish the clip as fast as the server takes it (stream copy, no -re).
        subprocess.run(
            [FFMPEG9, "-v", "error", "-i", str(clip), "-c", "copy", "-f", "flv"]
            + [server.url("live/cam")],
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + 15
        while True:
            listing = recordings(server.http_url("/api/recordings/live/cam"))
            files = listing.get("files", [])
            assert isinstance(files, list)
            if len(files) == 3 and not any(f["recording"] for f in files):
                break
            assert time.monotonic() < deadline, listing
            time.sleep(0.2)
        # From 1 s in for 3 s: the video starts at the keyframe at 1 s, crosses two files.
        start = parse_time(files[0]["start"]) + datetime.timedelta(seconds=1)
        query = urllib.parse.urlencode({"start": format_time(start), "duration": "3"})
        source = server.http_url(f"/recordings/live/cam.mp4?{query}")
        with chromium_context(tmp_path) as context:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_content(f'<video id="v" muted playsinline src="{source}"></video>')
            page.wait_for_function("document.getElementById('v').readyState >= 2", timeout=15_000)
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').currentTime > 1.5", timeout=15_000)
            state = page.evaluate(
                "(() => { const v = document.getElementById('v');"
                " return [v.duration, v.videoWidth, v.videoHeight, v.error]; })()"
            )
            # Played to the end: the whole span is there.
            page.wait_for_function("document.getElementById('v').ended", timeout=15_000)
            assert errors == []
    duration, width, height, error = state
    assert error is None
    assert (width, height) == (320, 240)
    assert duration == pytest.approx(3.0, abs=0.3)
