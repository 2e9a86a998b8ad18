"""``make demo-check``: the example project, the sandbox, Celery and the dev
server, run unattended through the demo's scenario.

It runs in its own processes, on free ports and a temporary SQLite database
and filesystem broker: it needs neither PostgreSQL nor Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STEPS = [
    "admin login",
    "directory synced from the sandbox",
    "notification sent and READ",
    "order shipped, its notification DELIVERED",
    "admin lists the notifications",
    "dialogue opened",
    "customer reply received",
    "reply sent from the admin and DELIVERED",
    "admin transcript shows the conversation",
    "dialogue closed from the admin",
]


def test_demo_check_passes_every_step() -> None:
    env = dict(os.environ)
    # The demo picks its own settings; nothing of the test suite's may leak in.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "example_project" / "demo.py"), "--check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = output.splitlines()
    for step in STEPS:
        assert any(line.startswith(f"PASS  {step} (") for line in lines), (step, output)
    assert not any(line.startswith("FAIL") for line in lines), output
    assert f"{len(STEPS)}/{len(STEPS)} steps passed" in output
