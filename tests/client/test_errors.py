"""Every error class of the contract's table, produced by real HTTP answers."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from django_mmc.client import MMCClient, get_client
from django_mmc.exceptions import (
    MMCAPIError,
    MMCAuthError,
    MMCConfigurationError,
    MMCConflictError,
    MMCError,
    MMCNotFoundError,
    MMCPermanentError,
    MMCRateLimitedError,
    MMCTransientError,
    MMCValidationError,
)
from tests.helpers import (
    APPOINTMENT_REMINDER_TEMPLATE_ID,
    SALES_AGENT_ID,
    SALES_GROUP_ID,
    SUPPORT_AGENT_ID,
    free_port,
)

from . import (
    CutOffServer,
    api_requests,
    assert_no_secrets,
    notify,
    open_dialogue,
    secrets_of,
    wait_for_log,
)


def _no_secrets(client: MMCClient, error: BaseException) -> None:
    assert_no_secrets([error], secrets_of(client))


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (MMCError, False),
        (MMCAPIError, False),
        (MMCConfigurationError, False),
        (MMCAuthError, False),
        (MMCPermanentError, False),
        (MMCNotFoundError, False),
        (MMCConflictError, False),
        (MMCValidationError, False),
        (MMCTransientError, True),
        (MMCRateLimitedError, True),
    ],
)
def test_retryable_of_each_class(cls: type[MMCError], retryable: bool) -> None:
    assert cls.retryable is retryable
    assert cls("x").retryable is retryable


# -- 4xx -------------------------------------------------------------------------


def test_400_is_permanent(sandbox: Any, client: MMCClient) -> None:
    with pytest.raises(MMCPermanentError) as caught:
        client.list_dialogues(SUPPORT_AGENT_ID, status="BOGUS")

    error = caught.value
    assert type(error) is MMCPermanentError
    assert error.status_code == 400
    assert error.code == "BAD_REQUEST"
    assert error.retryable is False
    assert len(api_requests(sandbox)) == 1  # never retried
    _no_secrets(client, error)


def test_403_not_dialogue_owner_is_permanent(sandbox: Any, client: MMCClient) -> None:
    dialogue = open_dialogue(client, agent=SUPPORT_AGENT_ID)

    with pytest.raises(MMCPermanentError) as caught:
        client.close_dialogue(SALES_AGENT_ID, dialogue.id)

    error = caught.value
    assert error.status_code == 403
    assert error.code == "NOT_DIALOGUE_OWNER"
    assert error.retryable is False
    assert "403" in str(error) and "NOT_DIALOGUE_OWNER" in str(error)
    _no_secrets(client, error)


def test_404_is_not_found(sandbox: Any, client: MMCClient) -> None:
    with pytest.raises(MMCNotFoundError) as caught:
        client.get_notification("999999999")

    error = caught.value
    assert error.status_code == 404
    assert error.code == "NOT_FOUND"
    assert error.method == "GET"
    assert error.path == "/notifications/999999999"
    assert error.retryable is False
    _no_secrets(client, error)


def test_409_dialogue_active_names_the_holder(sandbox: Any, client: MMCClient) -> None:
    held = open_dialogue(client, agent=SUPPORT_AGENT_ID, key="open-support")

    with pytest.raises(MMCConflictError) as caught:
        open_dialogue(client, agent=SALES_AGENT_ID, key="open-sales")

    error = caught.value
    assert error.status_code == 409
    assert error.code == "DIALOGUE_ACTIVE"
    assert error.dialogue_id == held.id
    assert error.dialogue_agent_id == SUPPORT_AGENT_ID
    assert error.retryable is False
    # Celery pickles errors: the details survive.
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.dialogue_id, copy.dialogue_agent_id, copy.code) == (
        held.id, SUPPORT_AGENT_ID, error.code)
    _no_secrets(client, error)


def test_409_dialogue_closed(sandbox: Any, client: MMCClient) -> None:
    dialogue = open_dialogue(client)
    client.close_dialogue(SUPPORT_AGENT_ID, dialogue.id)

    with pytest.raises(MMCConflictError) as caught:
        client.send_message(SUPPORT_AGENT_ID, dialogue.id, text="late", idempotency_key="late")

    assert caught.value.code == "DIALOGUE_CLOSED"
    assert caught.value.dialogue_id == dialogue.id


@pytest.mark.parametrize(
    ("overrides", "code", "pointer"),
    [
        ({"recipient": "0861234567"}, "INVALID_RECIPIENT", "/data/relationships/recipient"),
        ({"context": {}}, "TEMPLATE_PARAMETER_MISSING", "/data/attributes/context/first_name"),
        ({"context": {"first_name": "Ann", "colour": "red"}}, "TEMPLATE_PARAMETER_UNKNOWN",
         "/data/attributes/context/colour"),
        ({"template_id": APPOINTMENT_REMINDER_TEMPLATE_ID, "channel_type": "SMS"},
         "TEMPLATE_NOT_FOR_CHANNEL", "/data/attributes/channelType"),
        ({"channel_group_id": SALES_GROUP_ID, "channel_type": "SMS"}, "CHANNEL_NOT_IN_GROUP",
         "/data/attributes/channelType"),
        ({"context": {"first_name": 7}}, "VALIDATION_ERROR",
         "/data/attributes/context/first_name"),
    ],
)
def test_422_is_validation_error_with_code_and_pointer(
    sandbox: Any, client: MMCClient, overrides: dict[str, Any], code: str, pointer: str
) -> None:
    with pytest.raises(MMCValidationError) as caught:
        notify(client, f"bad-{code}", **overrides)

    error = caught.value
    assert error.status_code == 422
    assert error.code == code
    assert error.pointer == pointer
    assert error.retryable is False
    assert pointer in str(error)
    assert sandbox.notifications() == []
    assert len(api_requests(sandbox)) == 1
    _no_secrets(client, error)


def test_422_idempotency_key_reused_with_another_body(sandbox: Any, client: MMCClient) -> None:
    notify(client, "reused")

    with pytest.raises(MMCValidationError) as caught:
        notify(client, "reused", recipient="+353861234599")

    assert caught.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert len(sandbox.notifications()) == 1


# -- 429 and 5xx -----------------------------------------------------------------


def test_429_is_rate_limited_with_retry_after(sandbox: Any, client: MMCClient) -> None:
    sandbox.faults.inject("429", path="/notifications", retry_after=7)

    with pytest.raises(MMCRateLimitedError) as caught:
        notify(client, "limited")

    error = caught.value
    assert error.status_code == 429
    assert error.code == "RATE_LIMITED"
    assert error.retry_after == 7.0
    assert error.retryable is True
    assert isinstance(error, MMCTransientError)
    assert sandbox.notifications() == []
    assert len(api_requests(sandbox, "POST")) == 1  # the client does not retry by itself
    copy = pickle.loads(pickle.dumps(error))
    assert copy.retry_after == 7.0
    _no_secrets(client, error)


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_5xx_is_transient(sandbox: Any, client: MMCClient, status: str) -> None:
    sandbox.faults.inject(status, path="/notifications", retry_after=3)

    with pytest.raises(MMCTransientError) as caught:
        notify(client, f"fail-{status}")

    error = caught.value
    assert type(error) is MMCTransientError
    assert error.status_code == int(status)
    assert error.retryable is True
    assert error.retry_after == (3.0 if status == "503" else None)
    assert sandbox.notifications() == []
    assert len(api_requests(sandbox, "POST")) == 1
    # The same key goes through once the platform is back.
    assert notify(client, f"fail-{status}").status == "ACCEPTED"
    assert len(sandbox.notifications()) == 1
    _no_secrets(client, error)


def test_timeout_is_transient(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "TIMEOUT": (2, 0.3)}
    sandbox.faults.slow_seconds = 1.0
    sandbox.faults.inject("slow", path="/channel-groups")
    client = get_client()
    assert client.timeout == (2.0, 0.3)

    with pytest.raises(MMCTransientError) as caught:
        client.list_channel_groups()

    error = caught.value
    assert error.retryable is True
    assert error.status_code is None
    assert "in time" in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert len(client.list_channel_groups()) == 2  # the fault was used up
    _no_secrets(client, error)
    # The request the client gave up on was still served, once.
    wait_for_log(sandbox, lambda log: len([e for e in log if "/channel-groups" in e["path"]]) == 2)


def test_connection_refused_is_transient(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "BASE_URL": f"http://127.0.0.1:{free_port()}"}
    client = get_client()

    with pytest.raises(MMCTransientError) as caught:
        client.list_channel_groups()

    error = caught.value
    assert error.retryable is True
    assert "could not be reached" in str(error)
    assert sandbox.token_requests == 1  # the token came from the sandbox
    _no_secrets(client, error)


def test_answer_cut_off_mid_body_is_transient(sandbox: Any, settings: Any) -> None:
    with CutOffServer() as server:
        settings.MMC = {**settings.MMC, "BASE_URL": server.url}
        client = get_client()

        with pytest.raises(MMCTransientError) as caught:
            client.list_channel_groups()

    assert caught.value.retryable is True
    assert server.requests == 1
    _no_secrets(client, caught.value)


def test_token_answer_cut_off_mid_body_is_transient(sandbox: Any, settings: Any) -> None:
    with CutOffServer() as server:
        settings.MMC = {**settings.MMC, "OAUTH_BASE_URL": server.url + "/oauth2/v2.0"}
        client = get_client()

        with pytest.raises(MMCTransientError) as caught:
            client.list_channel_groups()

    assert caught.value.retryable is True
    assert server.requests == 1
    assert api_requests(sandbox) == []


def test_token_endpoint_unreachable_is_transient(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "OAUTH_BASE_URL": f"http://127.0.0.1:{free_port()}/oauth"}
    client = get_client()

    with pytest.raises(MMCTransientError) as caught:
        client.list_channel_groups()

    assert caught.value.retryable is True
    assert api_requests(sandbox) == []
    assert_no_secrets([caught.value], [settings.MMC["CLIENT_SECRET"]])


def test_the_platform_detail_is_kept_in_the_error(sandbox: Any, client: MMCClient) -> None:
    """The platform's detail helps support, so it is kept; the token is not."""
    with pytest.raises(MMCValidationError) as caught:
        notify(client, "bad-number", recipient="12")

    assert "'12' is not a valid E.164 number" in caught.value.detail
    assert caught.value.detail in str(caught.value)
    assert caught.value.method == "POST" and caught.value.path == "/notifications"
    _no_secrets(client, caught.value)


def test_client_without_credentials_names_the_keys(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "CLIENT_ID": None, "CLIENT_SECRET": ""}

    with pytest.raises(MMCConfigurationError) as caught:
        get_client()

    assert "MMC['CLIENT_ID']" in str(caught.value)
    assert "MMC['CLIENT_SECRET']" in str(caught.value)
    assert sandbox.requests_log == []
