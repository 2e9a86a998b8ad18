"""The benchmark still runs: ``python -m benchmarks --quick --only queries,token``
end to end (its own database, the sandbox, a real Celery worker) and writes
the JSON and markdown results with the keys the README documents.

Only with ``--run-slow``: it starts several processes and takes a while.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_the_benchmark_runs_and_writes_its_results(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the benchmark brings its own settings
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "queries,token",
         "--output", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    document = json.loads((tmp_path / "latest.json").read_text())
    assert {"benchmark", "version", "started_at", "duration_s", "mode", "scenarios_run",
            "machine", "results", "targets", "all_targets_met"} <= set(document)
    assert document["mode"] == "quick"
    assert document["scenarios_run"] == ["token", "queries"]
    assert {"cpus", "python", "postgresql", "redis"} <= set(document["machine"])

    queries = document["results"]["queries"]
    assert "error" not in queries, queries.get("error")
    assert {"per_send", "bulk", "bulk_chunk_size", "bulk_queries_per_chunk",
            "targets"} <= set(queries)
    assert queries["per_send"]["sends"] > 0 and queries["per_send"]["max"] > 0

    token = document["results"]["token"]
    assert "error" not in token, token.get("error")
    assert {"token_requests_per_round", "targets"} <= set(token)

    for item in document["targets"]:
        assert {"scenario", "name", "value", "op", "limit", "met"} <= set(item)
        assert isinstance(item["met"], bool)
    assert (tmp_path / "latest.md").read_text().startswith("# django_mmc benchmark")
