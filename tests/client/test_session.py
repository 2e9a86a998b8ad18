"""The pooled session reads the environment's proxy settings once."""

from __future__ import annotations

import pytest

from django_mmc.client import MMCClient
from django_mmc.exceptions import MMCTransientError


def test_proxy_variables_are_honoured(sandbox, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = MMCClient()
    assert client.session.proxies.get("http") == "http://127.0.0.1:9"
    with pytest.raises(MMCTransientError):
        client.list_templates()


def test_no_proxy_is_honoured_and_read_once(sandbox, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client = MMCClient()
    assert client.list_templates()
    # Read when the session was made: a later change does not reach it.
    monkeypatch.delenv("NO_PROXY")
    assert client.list_templates()
    assert client.session.trust_env is False
