"""Configuration keys for recording, retention and VOD (src/aiortmp/server/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiortmp.errors import ConfigError
from aiortmp.server.config import load_config, parse_duration_s


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7d", 604800),
        ("12h", 43200),
        ("90m", 5400),
        ("30s", 30),
        ("1d12h", 129600),
        ("2w", 1209600),
        ("1.5h", 5400),
        (3600, 3600),
        ("45", 45),
        (" 1D ", 86400),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration_s(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "-1", "7x", "d7", True, -5, "1d-2h"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration_s(value)


def test_recording_and_vod_keys(tmp_path: Path) -> None:
    path = tmp_path / "aiortmp.toml"
    path.write_text(
        """
record_dir = "/var/lib/aiortmp"
record_format = "mp4"
record_segment_s = 3600
record_max_bytes = 2_000_000_000
record_delete_after = "7d"
record_max_total_bytes = 50_000_000_000

[apps.cctv]
record_segment_s = 600
record_delete_after = "30d"

[apps.scratch]
record = false

[[vod]]
app = "vod"
dir = "/srv/media"

[[vod]]
app = "/archive/"
dir = "/var/lib/aiortmp/live"
max_lead_s = 5
"""
    )
    config = load_config(path)
    assert (config.record_format, config.record_segment_s) == ("mp4", 3600)
    assert config.record_delete_after == 7 * 86400
    assert config.apps["cctv"].record_delete_after == 30 * 86400
    assert config.apps["cctv"].record_format is None  # the top level applies
    assert config.apps["scratch"].record is False
    assert [(v.app, v.dir, v.max_lead_s) for v in config.vod] == [
        ("vod", Path("/srv/media"), 30.0),
        ("archive", Path("/var/lib/aiortmp/live"), 5.0),
    ]
    # Defaults keep today's behaviour: one FLV file per publish, kept forever.
    defaults = load_config(None)
    assert (defaults.record_format, defaults.record_segment_s, defaults.record_max_bytes) == (
        "flv",
        0,
        0,
    )
    assert defaults.record_delete_after is None and defaults.vod == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('record_format = "mkv"', "record_format"),
        ('record_delete_after = "soon"', "record_delete_after"),
        ("record_segment_s = -1", "record_segment_s"),
        ('[apps.x]\nrecord_format = "avi"', "apps.x.record_format"),
        ("[apps.x]\nrecord_sgment_s = 5", "apps.x.record_sgment_s"),
        ('[[vod]]\napp = "a/b"\ndir = "/x"', "vod.0.app"),
        ('[[vod]]\napp = "v"\ndir = "/x"\n[[vod]]\napp = "v"\ndir = "/y"', "vod"),
    ],
)
def test_invalid_keys_name_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load_config(path)
