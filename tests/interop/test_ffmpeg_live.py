"""FFmpeg 9 publishes H.264/AAC to `aiortmp serve`; FFmpeg players, a late ffprobe player,
a second publisher and the FLV recording are checked against it (issue: live relay core).

One real-time scenario (about 13 s of wall time) is run once per module; each test asserts
one property of it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .peers import (
    debian_tool,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    input_streams,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop

PUBLISH_S = 12.0
LATE_JOIN_S = 5.0
GOP = 250  # 10 s at 25 fps: keyframes at 0 s and 10 s only


@dataclass
class Scenario:
    publisher_rc: int = -1
    publisher_err: str = ""
    players: list[tuple[int, str]] = field(default_factory=list)
    second_rc: int | None = None
    second_err: str = ""
    second_elapsed_s: float = 0.0
    late_frames: list[dict[str, str]] = field(default_factory=list)
    late_err: str = ""
    recordings: list[Path] = field(default_factory=list)
    server_log: str = ""


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    ffprobe = debian_tool("ffprobe")
    result = Scenario()
    with run_server(tmp_path_factory.mktemp("live")) as server:
        url = server.url("live/test")
        publisher = popen(ffmpeg_publish_args(url, duration_s=PUBLISH_S, gop=GOP))
        start = time.monotonic()
        time.sleep(1.0)
        players = [popen(ffmpeg_play_args(url)) for _ in range(2)]
        time.sleep(1.0)
        # A second publisher on the same name must be refused; the first is untouched.
        t0 = time.monotonic()
        second = popen(ffmpeg_publish_args(url, duration_s=3))
        try:
            _, result.second_err = second.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
            _, result.second_err = second.communicate()
        result.second_rc = second.returncode
        result.second_elapsed_s = time.monotonic() - t0
        # A late player: its first decoded frame must come from the GOP cache.
        time.sleep(max(0.0, LATE_JOIN_S - (time.monotonic() - start)))
        late = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_frames",
                "-read_intervals",
                "%+#3",
                "-show_entries",
                "frame=pts_time,key_frame",
                "-of",
                "json",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        result.late_err = late.stderr
        if late.stdout.strip():
            result.late_frames = json.loads(late.stdout).get("frames", [])
        _, result.publisher_err = publisher.communicate(timeout=PUBLISH_S + 20)
        result.publisher_rc = publisher.returncode
        for player in players:
            try:
                _, err = player.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                player.kill()
                _, err = player.communicate()
            result.players.append((player.returncode, err))
        time.sleep(0.5)  # the server closes the recording when the publisher leaves
        result.recordings = sorted(server.record_dir.rglob("*.flv"))
        result.server_log = server.log()
    yield result


def test_publisher_runs_to_the_end(scenario: Scenario) -> None:
    assert scenario.publisher_rc == 0, scenario.publisher_err[-3000:]


def test_two_players_decode_at_least_90_frames(scenario: Scenario) -> None:
    assert len(scenario.players) == 2
    for rc, err in scenario.players:
        assert rc == 0, err[-3000:]
        streams = input_streams(err)
        assert any("Video: h264" in s for s in streams), streams
        assert any("Audio: aac" in s for s in streams), streams
        assert decoded_frames(err) >= 90, err[-2000:]


def test_late_player_starts_from_the_gop_cache(scenario: Scenario) -> None:
    frames = scenario.late_frames
    assert frames, scenario.late_err[-2000:]
    first = frames[0]
    # Joined at ~5 s; the next keyframe is at 10 s. A frame stamped before the join time
    # can only come from the cached GOP.
    assert first["key_frame"] == 1
    assert float(first["pts_time"]) < LATE_JOIN_S - 1.0, frames


def test_second_publisher_is_refused(scenario: Scenario) -> None:
    assert scenario.second_rc != 0
    assert "NetStream.Publish.BadName" in scenario.server_log or "already" in scenario.second_err
    assert "refused: already publishing" in scenario.server_log


def test_recording_is_valid_with_the_published_duration(scenario: Scenario) -> None:
    assert len(scenario.recordings) == 1, scenario.recordings
    probe = subprocess.run(
        [
            debian_tool("ffprobe"),
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(scenario.recordings[0]),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    info = json.loads(probe.stdout)
    codecs = sorted(s["codec_name"] for s in info["streams"])
    assert codecs == ["aac", "h264"]
    duration = float(info["format"]["duration"])
    assert abs(duration - PUBLISH_S) <= 1.0, duration
    name = scenario.recordings[0].name
    assert name.startswith("test-") and name.endswith(".flv")
    assert scenario.recordings[0].parent.name == "live"
