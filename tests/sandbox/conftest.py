"""Fixtures for the sandbox's own tests: real HTTP, no Django.

The sandbox is a stand-alone program, so these tests talk to it with plain
``requests`` and receive its webhooks with a tiny ``http.server``. They need
neither Django nor the services of the integration suite; the two autouse
fixtures of ``tests/conftest.py`` are replaced by no-ops for this directory.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_mmc.sandbox import Sandbox

from .helpers import Api, Receiver


@pytest.fixture(autouse=True)
def _require_services() -> None:
    """The sandbox tests need no database, Redis or Celery."""


@pytest.fixture(autouse=True)
def _fresh_client_and_cache() -> None:
    """The sandbox tests use no django_mmc client and no Django cache."""


# -- the sandbox -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    # Manual statuses and quick retries: tests that need automatic progress
    # start their own sandbox.
    server = Sandbox(progress_interval=None, webhook_retry_delays=(0.05, 0.1)).start()
    yield server
    server.stop()


@pytest.fixture
def sb(sandbox_server: Sandbox) -> Iterator[Sandbox]:
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.restore_agent_endpoints()
    sandbox_server.faults.clear()


@pytest.fixture
def api(sb: Sandbox) -> Iterator[Api]:
    caller = Api(sb)
    yield caller
    caller.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()
