"""The README stays true: its configuration example is valid, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from aiortmp.cli import build_parser
from aiortmp.server.config import ServerConfig, load_config

README = Path(__file__).parents[1] / "README.md"


def test_readme_configuration_example_is_valid(tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    path = tmp_path / "aiortmp.toml"
    path.write_text(example.group(1))
    config = load_config(path)
    assert config.listen == ["0.0.0.0:1935"]
    assert config.relay.push[0].app == "live"
    assert config.limits.handshake_timeout_s == 5.0
    # The settings it shows at their defaults are the defaults.
    defaults = ServerConfig()
    for key in (
        "chunk_size",
        "window_ack_size",
        "gop_cache",
        "gop_cache_max_bytes",
        "fanout_interval_ms",
        "fanout_max_bytes",
    ):
        assert getattr(config, key) == getattr(defaults, key), key
    assert config.player == defaults.player


def test_readme_limits_table_matches_the_defaults() -> None:
    from aiortmp.server.config import Limits

    text = README.read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \|", text, re.M)
    assert len(rows) >= 9
    defaults = Limits()
    for key, value in rows:
        assert float(getattr(defaults, key)) == float(value), key


def test_readme_commands_exist() -> None:
    parser = build_parser()
    for line in README.read_text().splitlines():
        match = re.match(r"aiortmp (serve|publish|play|probe)\b", line.strip())
        if match:
            command = match.group(1)
            parser.parse_args([command, *_required(command)])


def _required(command: str) -> list[str]:
    return {
        "serve": [],
        "publish": ["x.flv", "rtmp://h/live/x"],
        "play": ["rtmp://h/live/x"],
        "probe": ["rtmp://h/live/x"],
    }[command]
