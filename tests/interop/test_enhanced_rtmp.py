"""Enhanced RTMP v2 with FFmpeg 9: HEVC+Opus, AV1+AAC and VP9+FLAC through aiortmp.

For each pair FFmpeg 9 publishes for ~8 s; a player that joins late (from the GOP cache)
must decode both tracks with the right codecs, and the FLV recording must decode in
FFmpeg 9 (issue: Enhanced RTMP v2 and AMF3).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from .peers import (
    FFMPEG9,
    ServerProcess,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    input_streams,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop

CASES = {
    "hevc_opus": (
        (
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
        ),
        ("-c:a", "libopus", "-b:a", "64k", "-ar", "48000"),
        "Video: hevc",
        "Audio: opus",
    ),
    "av1_aac": (
        ("-c:v", "libsvtav1", "-preset", "12", "-pix_fmt", "yuv420p"),
        ("-c:a", "aac", "-b:a", "64k"),
        "Video: av1",
        "Audio: aac",
    ),
    "vp9_flac": (
        (
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-b:v",
            "500k",
            "-pix_fmt",
            "yuv420p",
        ),
        ("-c:a", "flac"),
        "Video: vp9",
        "Audio: flac",
    ),
}
PUBLISH_S = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_server(tmp_path_factory.mktemp("ertmp")) as srv:
        yield srv


@pytest.mark.parametrize("case", sorted(CASES))
def test_late_player_and_recording(server: ServerProcess, case: str) -> None:
    video, audio, video_text, audio_text = CASES[case]
    url = server.url(f"live/{case}")
    publisher = popen(
        ffmpeg_publish_args(url, duration_s=PUBLISH_S, gop=50, video=video, audio=audio)
    )
    time.sleep(2.5)  # join late: the player starts from the cached GOP
    player = subprocess.run(ffmpeg_play_args(url), capture_output=True, text=True, timeout=60)
    _, perr = publisher.communicate(timeout=60)
    assert publisher.returncode == 0, perr[-3000:]
    streams = input_streams(player.stderr)
    assert any(video_text in s for s in streams), player.stderr[-3000:]
    assert any(audio_text in s for s in streams), player.stderr[-3000:]
    assert decoded_frames(player.stderr) >= 60, player.stderr[-2000:]

    time.sleep(0.5)
    (recording,) = (server.record_dir / "live").glob(f"{case}-*.flv")
    check = subprocess.run(
        [
            FFMPEG9,
            "-hide_banner",
            "-nostdin",
            "-v",
            "info",
            "-i",
            str(recording),
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    rec_streams = input_streams(check.stderr)
    assert any(video_text in s for s in rec_streams), rec_streams
    assert any(audio_text in s for s in rec_streams), rec_streams
    # The whole published duration was recorded (25 fps).
    assert decoded_frames(check.stderr) >= (PUBLISH_S - 1) * 25, check.stderr[-2000:]
    assert "Error" not in check.stderr.replace("Error while decoding", "")
    log = server.log()
    assert f"live/{case}:" in log  # stream info logged at publish
