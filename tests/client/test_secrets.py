"""No secret and no bearer token in logs, reprs or error messages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from django_mmc.client import get_client
from django_mmc.client.auth import Token
from django_mmc.conf import mmc_settings
from django_mmc.exceptions import MMCAuthError, MMCConfigurationError, MMCTransientError

from . import TOKEN_PATH, assert_no_secrets, current_token, secrets_of

_LOGGERS = ("requests_oauthlib", "oauthlib", "urllib3", "django_mmc")


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """requests-oauthlib, oauthlib and urllib3 at DEBUG, all captured."""
    previous = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for name, level in previous.items():
        logging.getLogger(name).setLevel(level)


def _record_texts(records: list[logging.LogRecord]) -> list[str]:
    texts = []
    for record in records:
        texts.append(str(record.msg))
        texts.append(record.getMessage())
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        texts.extend(repr(arg) for arg in args)
        texts.extend(str(arg) for arg in args)
    return texts


def test_debug_logging_never_shows_the_token_or_the_client_secret(
    sandbox: Any, debug_logging: pytest.LogCaptureFixture
) -> None:
    client = get_client()

    client.list_channel_groups()  # a token fetch and an API call
    first = current_token(client)
    sandbox.expire_tokens()
    client.list_templates()  # a 401, a second fetch, a retry
    second = current_token(client)

    secrets = [first, second, *mmc_settings.secret_values()]
    assert sandbox.token_requests == 2 and first != second
    assert mmc_settings.CLIENT_SECRET in secrets
    records = debug_logging.records
    # The capture works: urllib3 logged the token request at DEBUG.
    assert any(TOKEN_PATH in r.getMessage() for r in records if r.name.startswith("urllib3"))
    assert any("fetched an access token" in r.getMessage() for r in records)
    for text in _record_texts(records):
        for secret in secrets:
            assert secret not in text
        assert "Bearer" not in text


def test_reprs_show_no_secret(sandbox: Any) -> None:
    client = get_client()
    client.list_channel_groups()
    token = current_token(client)
    agents = list(mmc_settings.agents.values())
    assert agents and all(agent.webhook_secrets for agent in agents)

    secrets = secrets_of(client)
    assert token in secrets and mmc_settings.CLIENT_SECRET in secrets

    assert_no_secrets(
        [client, client.tokens, client.tokens._local, mmc_settings, *agents], secrets
    )
    assert "access_token" not in repr(Token(access_token="abc", expires_at=1, lifetime=1))


def test_errors_of_the_auth_flow_show_no_secret(sandbox: Any, settings: Any) -> None:
    client = get_client()
    client.list_channel_groups()
    secrets = secrets_of(client)
    sandbox.faults.inject("expire_token", count=2, path="/channel-groups")
    with pytest.raises(MMCAuthError) as auth_error:
        client.list_channel_groups()
    secrets += secrets_of(client)

    sandbox.faults.inject("503", path=TOKEN_PATH)
    sandbox.expire_tokens()
    with pytest.raises(MMCTransientError) as token_error:
        client.list_channel_groups()

    settings.MMC = {**settings.MMC, "CLIENT_SECRET": "a-wrong-secret"}
    with pytest.raises(MMCConfigurationError) as config_error:
        get_client().list_channel_groups()

    assert_no_secrets(
        [auth_error.value, token_error.value, config_error.value],
        [*secrets, "a-wrong-secret"],
    )
