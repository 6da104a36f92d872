"""``make sysdeps`` (scripts/sysdeps.sh, run by ``make test``) never stops a process it did
not start: a user's own nginx keeps running through the install (issue: safe by default).

``SYSDEPS_FORCE=1`` makes the script go through its install path even though every package
is present (``apt-get install`` of installed packages changes nothing), which is where it
used to ``pkill -x nginx``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from .nginx import run_nginx

pytestmark = pytest.mark.interop

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sysdeps.sh"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def _can_install() -> bool:
    if os.geteuid() == 0:
        return True
    return (
        shutil.which("sudo") is not None and subprocess.run(["sudo", "-n", "true"]).returncode == 0
    )


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


@pytest.mark.skipif(not _can_install(), reason="needs root or passwordless sudo (apt-get)")
def test_sysdeps_leaves_a_running_nginx_alive(tmp_path: Path) -> None:
    policy_before = _read(POLICY_RC_D)
    with run_nginx(tmp_path / "nginx") as nginx:
        pid = nginx.proc.pid
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "nginx"
        result = subprocess.run(
            ["bash", str(SCRIPT)],
            env={**os.environ, "SYSDEPS_FORCE": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "sysdeps: installing" in result.stdout  # the install path ran
        assert nginx.proc.poll() is None, "sysdeps.sh stopped a process it did not start"
        with socket.create_connection(("127.0.0.1", nginx.port), timeout=5):
            pass
    # A policy-rc.d that was there (a container's) is untouched; one it made is gone.
    assert _read(POLICY_RC_D) == policy_before
