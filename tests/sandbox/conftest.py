"""Fixtures for the sandbox's own tests: real HTTP, no Django.

The sandbox is a stand-alone program, so these tests talk to it with plain
``requests`` and receive its webhooks with a tiny ``http.server``. They need
neither Django nor the services of the integration suite. The sandbox is the
one the package's pytest plugin gives (``mmc_sandbox``, reset for each test),
started for each module with manual statuses and quick webhook retries.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from django_mmc.sandbox import Sandbox

from .helpers import Api, Receiver


@pytest.fixture(scope="module")
def mmc_sandbox_server() -> Iterator[Sandbox]:
    """Statuses move only when a test says so; tests that need automatic
    progress start a sandbox of their own."""
    with Sandbox(progress_interval=None, webhook_retry_delays=(0.05, 0.1)) as server:
        yield server


@pytest.fixture
def sb(mmc_sandbox: Sandbox) -> Sandbox:
    return mmc_sandbox


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
