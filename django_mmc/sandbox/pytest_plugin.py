"""pytest fixtures for testing against the MMC sandbox.

Enable them in a ``conftest.py``::

    pytest_plugins = ["django_mmc.sandbox.pytest_plugin"]

then::

    def test_shipping_notice(mmc_settings):
        sandbox = mmc_settings
        send_notification("+353861234567", "order_shipped", {"first_name": "Ann"})
        assert sandbox.notifications()[0]["template"] == "101"

Fixtures:

``mmc_sandbox_server`` (session)
    One started :class:`~django_mmc.sandbox.Sandbox` for the whole session,
    stopped at the end. Its constructor arguments come from the
    ``mmc_sandbox_options`` fixture, which a project may override.
``mmc_sandbox``
    That sandbox, reset before the test (no state, counters or faults) and
    with its agents' endpoints restored after it.
``mmc_settings``
    ``mmc_sandbox`` with Django's ``MMC`` setting pointing at it (through
    pytest-django's ``settings`` fixture, so it is undone after the test).

pytest-django is only needed for ``mmc_settings``.

``--mmc-sandbox-dialect NAME`` makes the session's sandbox play another
dialect of the platform (``filter-operators``, or any name of
:data:`django_mmc.dialect.DIALECTS`) unless ``mmc_sandbox_options`` names
one; ``mmc_settings`` then carries the matching ``CONTRACT``, so the same
tests run against the other dialect by that option alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..dialect import DIALECTS
from .server import Sandbox


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("mmc-sandbox").addoption(
        "--mmc-sandbox-dialect", default=None, choices=sorted(DIALECTS),
        help="the platform dialect the session's MMC sandbox plays (default: default)")


@pytest.fixture(scope="session")
def mmc_sandbox_options() -> dict[str, Any]:
    """Keyword arguments for the session's Sandbox; override to change them."""
    return {}


@pytest.fixture(scope="session")
def mmc_sandbox_server(request: pytest.FixtureRequest,
                       mmc_sandbox_options: dict[str, Any]) -> Iterator[Sandbox]:
    """One running sandbox shared by the session."""
    options = dict(mmc_sandbox_options)
    dialect = request.config.getoption("mmc_sandbox_dialect", None)
    if dialect:
        options.setdefault("dialect", dialect)
    sandbox = Sandbox(**options).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def mmc_sandbox(mmc_sandbox_server: Sandbox) -> Iterator[Sandbox]:
    """The session's sandbox, fresh for this test."""
    mmc_sandbox_server.reset()
    try:
        yield mmc_sandbox_server
    finally:
        # A test that pointed an agent at its own receiver must not leave the
        # next test's webhooks going there.
        mmc_sandbox_server.restore_agent_endpoints()
        mmc_sandbox_server.faults.clear()


@pytest.fixture
def mmc_settings(request: pytest.FixtureRequest, mmc_sandbox: Sandbox) -> Iterator[Sandbox]:
    """``settings.MMC`` points at the fresh sandbox; yields the sandbox."""
    try:
        settings = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        raise pytest.UsageError(
            "The mmc_settings fixture needs pytest-django (pip install pytest-django)."
        ) from None
    settings.MMC = mmc_sandbox.mmc_settings()
    yield mmc_sandbox
