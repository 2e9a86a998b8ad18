"""One token for the whole site: threads and processes that all need a token at
once on an empty cache cause exactly one request to the token endpoint.

The sandbox's token endpoint is made slow (0.5 s per grant) so the requests
really overlap: without the shared lock every contender would fetch its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from django_mmc.client import MMCClient, get_client
from django_mmc.conf import MMCSettings
from tests.helpers import race

from . import TOKEN_PATH, token_log

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_token_endpoint(sandbox: Any) -> Any:
    sandbox.faults.slow_seconds = 0.5
    sandbox.faults.inject("slow", count=None, path=TOKEN_PATH)  # every grant is slow
    return sandbox


def test_eight_threads_of_one_client_fetch_one_token(slow_token_endpoint: Any) -> None:
    client = get_client()

    tokens = race([client.tokens.get_token] * 8, timeout=30)

    assert slow_token_endpoint.token_requests == 1
    assert len(token_log(slow_token_endpoint)) == 1
    assert len(set(tokens)) == 1
    assert client.tokens.fetch_count == 1


def test_eight_workers_share_one_token_through_the_cache(
    slow_token_endpoint: Any, settings: Any
) -> None:
    """Eight TokenManagers with nothing in common but the cache (as eight
    worker processes would be): the cache.add lock lets one fetch."""
    clients = [MMCClient(MMCSettings(settings.MMC)) for _ in range(8)]

    tokens = race([c.tokens.get_token for c in clients], timeout=30)

    assert slow_token_endpoint.token_requests == 1
    assert len(token_log(slow_token_endpoint)) == 1
    assert len(set(tokens)) == 1
    assert sum(c.tokens.fetch_count for c in clients) == 1
    assert caches["default"].get(clients[0].tokens.lock_key) is None  # released


def test_eight_workers_then_all_call_the_api(slow_token_endpoint: Any, settings: Any) -> None:
    clients = [MMCClient(MMCSettings(settings.MMC)) for _ in range(8)]

    groups = race([c.list_channel_groups for c in clients], timeout=30)

    assert all(len(g) == 2 for g in groups)
    assert slow_token_endpoint.token_requests == 1


_WORKER = """
import json, os, sys

import django
from django.conf import settings

# The test's own cache (see use_private_cache), before anything uses a cache.
settings.CACHES = {"default": json.loads(os.environ["DJANGO_MMC_CLIENT_TEST_CACHE"])}
django.setup()

from django_mmc.client import get_client
from tests.helpers import race

client = get_client()
print("ready", flush=True)
sys.stdin.readline()
try:
    tokens, errors = race([client.tokens.get_token] * 4, timeout=30), []
except Exception as error:
    tokens, errors = [], [repr(error)]
print(json.dumps({"tokens": tokens, "errors": errors, "fetched": client.tokens.fetch_count}),
      flush=True)
"""


def test_two_processes_of_four_threads_fetch_one_token(
    slow_token_endpoint: Any, settings: Any
) -> None:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DJANGO_MMC_TEST_MMC=json.dumps(settings.MMC),
        DJANGO_MMC_CLIENT_TEST_CACHE=json.dumps(settings.CACHES["default"]),
        PYTHONPATH=str(ROOT),
    )
    env.pop("DJANGO_MMC_WORKER_DB", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "ready", process.communicate(timeout=10)
        assert slow_token_endpoint.token_requests == 0  # nothing fetched before the start
        for process in processes:  # release both at once
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=30)
            assert process.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert [r["errors"] for r in results] == [[], []]
    tokens = [t for r in results for t in r["tokens"]]
    assert len(tokens) == 8
    assert len(set(tokens)) == 1
    assert sum(r["fetched"] for r in results) == 1
    assert slow_token_endpoint.token_requests == 1
    assert len(token_log(slow_token_endpoint)) == 1
