"""The suite without its services: pure tests still run, the others are
skipped with the reason, and with ``CI=true`` the run fails instead.

Each case runs pytest in a subprocess with Redis and PostgreSQL pointed at
a port nothing listens on (the discard port, 9)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PURE_MODULES = ["tests/test_policy.py", "tests/test_architecture.py"]
#: Every test here uses the database.
SERVICE_MODULE = "tests/test_commands.py"


def run_pytest(tmp_path: Path, *args: str, ci: bool = False
               ) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("CI", "DJANGO_MMC_TEST_DB", "DJANGO_MMC_TEST_BROKER")}
    env.update(DJANGO_MMC_TEST_REDIS="redis://127.0.0.1:9", PGHOST="127.0.0.1", PGPORT="9")
    if ci:
        env["CI"] = "true"
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-rs",
         f"--junit-xml={report}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    counts: dict[str, int] = {}
    if report.exists():
        suite = ET.parse(report).getroot().find("testsuite")
        assert suite is not None
        counts = {key: int(suite.get(key, 0)) for key in ("tests", "skipped", "failures",
                                                          "errors")}
    return result, counts


def test_pure_tests_pass_and_the_others_are_skipped_without_redis_and_postgresql(
    tmp_path: Path,
) -> None:
    pure, pure_counts = run_pytest(tmp_path, *PURE_MODULES)
    assert pure.returncode == 0, pure.stdout[-3000:] + pure.stderr[-3000:]
    assert pure_counts["tests"] > 5
    assert pure_counts["skipped"] == pure_counts["failures"] == pure_counts["errors"] == 0

    needing, counts = run_pytest(tmp_path, SERVICE_MODULE)
    assert needing.returncode == 0, needing.stdout[-3000:] + needing.stderr[-3000:]
    assert counts["tests"] > 0 and counts["skipped"] == counts["tests"], counts
    assert "needs Redis, PostgreSQL" in needing.stdout


def test_ci_fails_the_run_when_a_service_is_missing(tmp_path: Path) -> None:
    result, _ = run_pytest(tmp_path, *PURE_MODULES, ci=True)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert "CI=true and Redis, PostgreSQL cannot be reached" in result.stdout + result.stderr
