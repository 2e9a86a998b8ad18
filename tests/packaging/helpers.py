"""Fresh virtualenvs for the packaging tests, and the marker that keeps them
to the one leg of the matrix that runs them (they take a minute each)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

#: Fresh virtualenvs and real installs are slow: scripts/run-tests runs these
#: once, in the main leg, with DJANGO_MMC_TEST_PACKAGING=1.
packaging = [
    pytest.mark.packaging,
    pytest.mark.skipif(os.environ.get("DJANGO_MMC_TEST_PACKAGING") != "1",
                       reason="builds fresh virtualenvs: run with DJANGO_MMC_TEST_PACKAGING=1 "
                              "(the matrix's main leg does)"),
]


def fresh_venv(path: Path) -> Path:
    """A new virtualenv with pip, from the interpreter running the tests;
    returns its python."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    python = path / "bin" / "python"
    assert python.exists(), f"no python in the new virtualenv {path}"
    return python


def pip_install(python: Path, *requirements: str, cwd: Path = ROOT, timeout: float = 300) -> str:
    """``pip install`` into that virtualenv; the output is returned, and
    shown in full if pip fails."""
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
         *requirements],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PIP_REQUIRE_VIRTUALENV": "0"},
    )
    assert result.returncode == 0, f"pip install {' '.join(requirements)} failed:\n" \
                                   f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def installed_version(python: Path, distribution: str) -> str:
    return subprocess.run(
        [str(python), "-c", "import importlib.metadata, sys; "
         "print(importlib.metadata.version(sys.argv[1]))", distribution],
        capture_output=True, text=True, check=True).stdout.strip()


__all__ = ["ROOT", "fresh_venv", "installed_version", "packaging", "pip_install", "sys"]
