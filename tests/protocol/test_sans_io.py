"""The protocol and media cores stay sans-I/O: no sockets, no asyncio, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import aiortmp

FORBIDDEN = {"asyncio", "socket", "selectors", "time", "ssl", "threading", "uvloop"}
ROOT = Path(aiortmp.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_protocol_and_media_import_no_io_modules() -> None:
    files = sorted((ROOT / "protocol").glob("*.py")) + sorted((ROOT / "media").glob("*.py"))
    assert len(files) > 5
    for path in files:
        bad = imported_modules(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_protocol_does_not_import_server_or_client() -> None:
    for path in sorted((ROOT / "protocol").glob("*.py")):
        text = path.read_text()
        assert "aiortmp.server" not in text and "aiortmp.client" not in text, path


def test_the_hub_has_no_sockets_and_no_clock_of_its_own() -> None:
    """The stream core gets its scheduler passed in; it knows no server and no output."""
    files = sorted((ROOT / "hub").glob("*.py"))
    assert len(files) > 5
    for path in files:
        bad = imported_modules(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                layer = ".".join(node.module.split(".")[:2])
                assert layer not in {
                    "aiortmp.server",
                    "aiortmp.client",
                    "aiortmp.outputs",
                    "aiortmp.sources",
                }, f"{path.relative_to(ROOT)} imports {node.module}"
