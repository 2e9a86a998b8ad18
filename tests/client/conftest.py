"""Fixtures shared by the client tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from django_mmc.client import MMCClient, get_client

from . import use_private_cache


@pytest.fixture(autouse=True)
def _private_cache(settings: Any, services: None) -> Iterator[dict[str, Any]]:
    """A Redis database and key prefix of this test's own: other runs on the
    same server clear the shared test cache, which would wipe a token lock."""
    yield from use_private_cache(settings)


@pytest.fixture
def client(sandbox: Any) -> MMCClient:
    return get_client()
