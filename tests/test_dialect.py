"""The platform's dialect (``MMC['CONTRACT']``): how it is selected and
validated, the words it translates, its signature scheme, and the tolerant
readings where the contract is silent (token responses, extra fields)."""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

import pytest

from django_mmc import contract, signing
from django_mmc.client import jsonapi
from django_mmc.client.auth import ASSUMED_TOKEN_LIFETIME, token_from_response
from django_mmc.conf import MMCSettings
from django_mmc.dialect import (
    DEFAULT_DIALECT,
    DIALECTS,
    FILTER_OPERATORS,
    Dialect,
    DialectError,
    load_dialect,
)
from django_mmc.exceptions import MMCConfigurationError
from django_mmc.testing import build_event, signed_delivery

#: Used by the dotted-path tests below.
SITE_DIALECT = Dialect(name="site", pagination="links")


class SiteDialect(Dialect):
    """A subclass, instantiated with no arguments."""

    def __init__(self) -> None:
        super().__init__(name="site-class", filter_style="operators")


# -- selection -------------------------------------------------------------------


def test_the_default_is_todays_reading_of_the_contract() -> None:
    d = load_dialect(None)
    assert d is DEFAULT_DIALECT is load_dialect("default")
    assert d.token_url_for("https://login/x/", "flow") == contract.token_url("https://login/x",
                                                                             "flow")
    assert d.organisation_url("https://api/", "7") == contract.organisation_url("https://api",
                                                                               "7")
    assert d.notifications_path == contract.NOTIFICATIONS_PATH
    assert d.filter_parameter("id", "in") == "filter[id]"
    assert d.first_page(100) == {"page[number]": 1, "page[size]": 100}
    assert d.signature_header == contract.SIGNATURE_HEADER
    assert d.signature_meta_key == contract.SIGNATURE_META_KEY
    assert all(d.our_status(s.value) == s.value for s in contract.PlatformStatus)
    assert all(d.event_name(e.value) == e.value for e in contract.EventType)


@pytest.mark.parametrize("value, name", [
    ("filter-operators", "filter-operators"),
    ({"pagination": "links"}, "default+custom"),
    ({"base": "filter-operators", "signature_prefix": ""}, "filter-operators+custom"),
    ("tests.test_dialect.SITE_DIALECT", "site"),
    ("tests.test_dialect.SiteDialect", "site-class"),
    (FILTER_OPERATORS, "filter-operators"),
])
def test_contract_selects_a_dialect(value: Any, name: str) -> None:
    assert load_dialect(value).name == name


def test_the_shipped_second_dialect_differs_in_every_item() -> None:
    for item in fields(Dialect):
        if item.name in ("signature_algorithm",):
            continue  # HMAC-SHA256 stays; its encoding, prefix and header differ
        assert getattr(FILTER_OPERATORS, item.name) != getattr(DEFAULT_DIALECT, item.name), (
            item.name)
    assert set(DIALECTS) == {"default", "filter-operators"}


def test_overrides_merge_words_and_replace_the_rest() -> None:
    d = load_dialect({"statuses": {"queued": "ACCEPTED"},
                      "event_names": {"dialogue.opened": "conversation.started"}})
    assert d.our_status("queued") == "ACCEPTED"
    assert d.our_status("ACCEPTED") is None  # the override took its place
    assert d.our_status("SENT") == "SENT"
    assert d.platform_status("ACCEPTED") == "queued"
    assert d.event_name("dialogue.opened") == "conversation.started"
    assert d.our_event("conversation.started") == "dialogue.opened"
    assert d.our_event("dialogue.renamed") == "dialogue.renamed"  # unknown: kept
    assert DEFAULT_DIALECT.our_status("queued") is None  # the default is untouched


@pytest.mark.parametrize("value, key, kind", [
    ("no-such-dialect", "CONTRACT", "selection"),
    ("tests.test_dialect.NOTHING", "CONTRACT", "selection"),
    ("tests.test_dialect.pytest", "CONTRACT", "selection"),
    (42, "CONTRACT", "selection"),
    ({"base": "nope"}, "base", "selection"),
    ({"filter_styel": "operators"}, "filter_styel", "key"),
    ({"filter_style": "brackets"}, "filter_style", "value"),
    ({"pagination": "cursor"}, "pagination", "value"),
    ({"signature_encoding": "base32"}, "signature_encoding", "value"),
    ({"signature_algorithm": "rot13"}, "signature_algorithm", "value"),
    ({"notification_path": "/n"}, "notification_path", "value"),
    ({"dialogues_path": "agents/{agent_id}"}, "dialogues_path", "value"),
    ({"token_url": "{oauth_base_url}/token?p={policy}"}, "token_url", "value"),
    ({"statuses": {"queued": "WAITING"}}, "statuses", "value"),
    ({"event_names": {"dialogue.renamed": "x"}}, "event_names", "value"),
    ({"type_events": 7}, "type_events", "value"),
])
def test_a_bad_contract_names_what_is_wrong(value: Any, key: str, kind: str) -> None:
    with pytest.raises(DialectError) as error:
        load_dialect(value)
    assert (error.value.key, error.value.kind) == (key, kind)


def test_settings_read_the_dialect_and_refuse_a_bad_one() -> None:
    assert MMCSettings({"CONTRACT": "filter-operators"}).dialect is FILTER_OPERATORS
    assert MMCSettings({}).dialect is DEFAULT_DIALECT
    assert MMCSettings({"OAUTH_BASE_URL": "https://l/o", "OAUTH_FLOW": "f",
                        "CONTRACT": "filter-operators"}).token_url == "https://l/o/f/token"
    with pytest.raises(MMCConfigurationError, match="CONTRACT"):
        MMCSettings({"CONTRACT": {"pagination": "cursor"}}).dialect  # noqa: B018


# -- signatures ----------------------------------------------------------------------


def test_the_default_signature_is_lowercase_hex_of_the_body() -> None:
    body = b'{"data":null}'
    signature = signing.sign(body, "secret")
    assert len(signature) == 64 and signature == signature.lower()
    assert signing.verify(body, signature.upper(), ["other", "secret"])
    assert not signing.verify(body, signature, ["other"])


def test_a_dialect_signs_a_timestamp_in_base64_with_a_prefix() -> None:
    body = b'{"data":null}'
    signature = FILTER_OPERATORS.sign(body, "secret", "1700000000")
    assert signature.startswith("sha256=") and signature.endswith("=")
    assert signing.verify(body, signature, ["secret"], FILTER_OPERATORS, "1700000000")
    assert not signing.verify(body, signature, ["secret"], FILTER_OPERATORS, "1700000001")
    assert not signing.verify(body, signature, ["secret"], FILTER_OPERATORS, None)
    assert not signing.verify(body, signature.lower(), ["secret"], FILTER_OPERATORS,
                              "1700000000")
    assert not signing.verify(body, signature, ["secret"])  # the default scheme


def test_an_event_goes_out_in_the_dialects_words() -> None:
    event = build_event("notification.status", notification="5", status="ACCEPTED",
                        agent_id="17")
    wire = FILTER_OPERATORS.wire_event(event)
    assert wire["data"]["type"] == "event"
    assert wire["data"]["attributes"]["eventType"] == "NOTIFICATION_STATUS_CHANGED"
    assert wire["data"]["attributes"]["status"] == "queued"
    assert wire["data"]["relationships"]["notification"]["data"]["type"] == "notification"
    assert event["data"]["type"] == "events"  # the original is untouched


# -- reading in a dialect, tolerantly ----------------------------------------------------


def test_events_and_resources_are_read_into_our_words(settings: Any) -> None:
    settings.MMC = {**settings.MMC, "CONTRACT": "filter-operators"}
    event = jsonapi.parse_event(FILTER_OPERATORS.wire_event(build_event(
        "message.status", message="m-1", dialogue="9", status="DELIVERED", agent_id="17")))
    assert event.event_type == "message.status"
    assert jsonapi.event_fields(event).status == "DELIVERED"
    notification = jsonapi.parse_notification({
        "type": "notification", "id": "5",
        "attributes": {"status": "queued", "channelType": "SMS", "priority": "high",
                       "cost": {"amount": 1}},
        "relationships": {"campaign": {"data": {"type": "campaign", "id": "3"}}},
        "meta": {"requestId": "r-1"}})
    assert (notification.id, notification.status) == ("5", "ACCEPTED")


def test_an_unknown_status_word_is_kept_and_logged_once(settings: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    settings.MMC = {**settings.MMC, "CONTRACT": "filter-operators"}
    jsonapi.forget_unknown_status_words()
    caplog.set_level(logging.WARNING, "django_mmc.client")
    for _ in range(3):
        found = jsonapi.parse_notification({"type": "notification", "id": "5",
                                            "attributes": {"status": "throttled"}})
        assert found.status == "throttled"
    assert sum("throttled" in r.getMessage() for r in caplog.records) == 1


def test_extra_token_fields_are_ignored() -> None:
    token = token_from_response({
        "access_token": "t", "token_type": "Bearer", "expires_in": 3599,
        "not_before": 1700000000, "expires_on": 1700003599, "ext_expires_in": 3599,
        "resource": "https://login/auth"}, 1000.0)
    assert (token.lifetime, token.expires_at) == (3599.0, 4599.0)


@pytest.mark.parametrize("expires_in", [..., None, "", "soon", 0, -5, float("nan")])
def test_a_token_without_a_usable_lifetime_gets_a_safe_one(
        expires_in: Any, caplog: pytest.LogCaptureFixture) -> None:
    response = {"access_token": "t", "token_type": "Bearer"}
    if expires_in is not ...:
        response["expires_in"] = expires_in
    caplog.set_level(logging.WARNING, "django_mmc.client")
    token = token_from_response(response, 1000.0)
    assert token.lifetime == ASSUMED_TOKEN_LIFETIME
    assert "expires_in" in caplog.text


def test_signed_delivery_speaks_a_dialect() -> None:
    event = build_event("dialogue.closed", dialogue="9", closed_by="AGENT", agent_id="17")
    body, headers = signed_delivery(event, "secret", FILTER_OPERATORS)
    assert b'"CONVERSATION_ENDED"' in body and b'"conversation"' in body
    timestamp = headers["X-MMC-Timestamp"]
    assert signing.verify(body, headers["X-MMC-Signature-256"], ["secret"], FILTER_OPERATORS,
                          timestamp)
    plain_body, plain = signed_delivery(event, "secret")
    assert set(plain) == {"Content-Type", "X-MMC-Signature"}
    assert signing.verify(plain_body, plain["X-MMC-Signature"], ["secret"])
