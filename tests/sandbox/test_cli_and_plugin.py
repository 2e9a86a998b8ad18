"""``python -m django_mmc.sandbox`` and the pytest plugin, each in a real process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from django_mmc import contract

ROOT = Path(__file__).resolve().parents[2]


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(extra)
    return env


def test_cli_serves_until_sigint() -> None:
    # Port 0: the sandbox picks a free one and prints its URL.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_mmc.sandbox",
            "--port",
            "0",
            "--progress-interval",
            "none",
            "--agent",
            "21=s3cret@http://127.0.0.1:9/hook",
            "--latency",
            "0.001",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Stop with" in line:
                break
        output = "".join(lines)
        found = re.search(r"^BASE_URL       = (http://127\.0\.0\.1:[1-9][0-9]*)$", output, re.M)
        assert found is not None, output
        base = found[1]
        assert f"OAUTH_BASE_URL = {base}/oauth2/v2.0" in output
        assert "'agent-21': {'ID': '21', 'WEBHOOK_SECRETS': ['s3cret']}" in output
        assert "MMC sandbox" in requests.get(base + "/", timeout=5).text
        token = requests.post(
            f"{base}/oauth2/v2.0/token?p={contract.DEFAULT_OAUTH_FLOW}",
            data={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "scope": contract.DEFAULT_SCOPE,
            },
            timeout=5,
        )
        assert token.status_code == 200
        state = requests.get(f"{base}/_sandbox/state", timeout=5).json()
        assert state["token_requests"] == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        rest, errors = process.communicate(timeout=5)
        assert "stopped" in rest
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_pytest_plugin_fixtures(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["django_mmc.sandbox.pytest_plugin"]\n')
    (tmp_path / "plugin_settings.py").write_text(
        'SECRET_KEY = "x"\nINSTALLED_APPS: list = []\nUSE_TZ = True\n'
    )
    (tmp_path / "test_users_side.py").write_text(
        textwrap.dedent(
            """
        import requests

        def test_first(mmc_sandbox):
            mmc_sandbox.set_agent_endpoint("17", "http://127.0.0.1:9/hook")
            mmc_sandbox.faults.inject("503", count=None)
            mmc_sandbox.reply("+353861234567", "hi")
            assert len(mmc_sandbox.dialogues()) == 1

        def test_second_starts_fresh(mmc_sandbox, mmc_sandbox_server):
            assert mmc_sandbox is mmc_sandbox_server
            assert mmc_sandbox.dialogues() == []
            assert mmc_sandbox.faults.injected == []
            assert mmc_sandbox.platform.agents["17"].endpoint is None
            assert requests.get(mmc_sandbox.url + "/", timeout=5).status_code == 200

        def test_settings(mmc_settings, settings):
            assert settings.MMC == mmc_settings.mmc_settings()
            assert settings.MMC["BASE_URL"] == mmc_settings.url
        """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(
            DJANGO_SETTINGS_MODULE="plugin_settings",
            PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        ),
    )
    assert "3 passed" in result.stdout, result.stdout + result.stderr


def test_cli_takes_a_dialect() -> None:
    from django_mmc.sandbox.__main__ import build_parser

    assert build_parser().parse_args([]).dialect == "default"
    assert build_parser().parse_args(["--dialect", "filter-operators"]).dialect == (
        "filter-operators")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--dialect", "no-such-dialect"])


def test_pytest_plugin_option_plays_a_dialect(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["django_mmc.sandbox.pytest_plugin"]\n')
    (tmp_path / "test_dialect_side.py").write_text(textwrap.dedent(
        """
        def test_dialect(mmc_sandbox):
            assert mmc_sandbox.wire.name == "filter-operators"
            assert mmc_sandbox.mmc_settings()["CONTRACT"] == "filter-operators"
        """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django",
         "--mmc-sandbox-dialect", "filter-operators", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env=environment(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)])),
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr
