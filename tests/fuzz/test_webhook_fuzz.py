"""Property tests of the webhook view through Django's test client.

Whatever is POSTed, the answer is a JSON:API 4xx error or a 2xx for a
correctly signed event, never a 5xx. Nothing is stored without the right
signature (missing, almost right, or over a body with one byte changed), for
an unknown agent, or with another media type; a valid signed event is stored
once and its repeats are 200. Whatever a signed event holds, processing it
never raises and never moves a notification's or message's status
backwards. A few fixed cases pin what the fuzzing found (timestamp offsets,
wildcard content types)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import assume, event, given
from hypothesis import strategies as st

from django_mmc import contract
from django_mmc.models import Dialogue, Message, Notification, Recipient, WebhookEvent
from django_mmc.processing import process_event
from django_mmc.signing import sign, verify
from django_mmc.status import DialogueStatus, Direction, Status, can_advance
from django_mmc.testing import build_event, signed_delivery
from tests.helpers import SUPPORT_GROUP_ID, stored_ids

from . import (
    SECRETS,
    any_body,
    body_limit,
    check_answer,
    content_types,
    error_document,
    fuzz_settings,
    plausible_events,
    post,
    serialise,
    signed,
    wild_event_documents,
    wrong_signatures,
)

State = WebhookEvent.State
agents = st.sampled_from(sorted(SECRETS))


@pytest.fixture
def client(db: Any) -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def known_rows(directory: dict[str, Any]) -> dict[str, Any]:
    """Rows the fuzzed events can be about: two notifications, an open
    dialogue with one outbound message."""
    ann = Recipient.objects.create(phone_number="+353861234567")
    rows = {
        "n1": Notification.objects.create(
            recipient=ann, template=directory["otp"], channel_group=directory["support"],
            channel_type="SMS", context={"code": "1"}, platform_id="n-fuzz-1",
            status=Status.ACCEPTED),
        "n2": Notification.objects.create(
            recipient=ann, template=directory["otp"], channel_group=directory["support"],
            channel_type="SMS", context={"code": "2"}, platform_id="n-fuzz-2",
            status=Status.DELIVERED),
    }
    dialogue = Dialogue.objects.create(
        agent_key="support", recipient=ann, channel_group=directory["support"],
        channel_type="WHATSAPP", platform_id="d-fuzz-1", status=DialogueStatus.OPEN)
    rows["d1"] = dialogue
    rows["m1"] = Message.objects.create(
        dialogue=dialogue, direction=Direction.OUTBOUND, text="Hello", channel_type="WHATSAPP",
        platform_id="m-fuzz-1", status=Status.ACCEPTED)
    return rows


def statuses() -> dict[tuple[str, int], str]:
    found = {("n", pk): s for pk, s in Notification.objects.values_list("pk", "status")}
    found.update({("m", pk): s for pk, s in Message.objects.values_list("pk", "status")})
    return found


@st.composite
def valid_events(draw: Any) -> dict[str, Any]:
    """Well-formed events of every type of the contract, with generated values."""
    event_type = draw(st.sampled_from(contract.EVENT_TYPES))
    text_ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,24}\Z")
    fields: dict[str, Any] = {}
    if event_type in (contract.EVENT_NOTIFICATION_STATUS, contract.EVENT_MESSAGE_STATUS):
        fields["status"] = draw(st.sampled_from(contract.STATUS_ORDER + contract.FAILURE_STATUSES))
    if event_type == contract.EVENT_NOTIFICATION_STATUS:
        fields["notification"] = draw(text_ids)
    if event_type == contract.EVENT_MESSAGE_STATUS:
        fields.update(message=draw(text_ids), dialogue=draw(text_ids))
    if event_type == contract.EVENT_MESSAGE_RECEIVED:
        fields.update(text=draw(st.text(max_size=50)), channel_type="WHATSAPP",
                      message=draw(text_ids), dialogue=draw(text_ids),
                      recipient="+353861234567", channel_group=SUPPORT_GROUP_ID)
    if event_type == contract.EVENT_DIALOGUE_OPENED:
        fields.update(initiated_by="RECIPIENT", channel_type="SMS", dialogue=draw(text_ids),
                      recipient="+353861234567", channel_group=SUPPORT_GROUP_ID)
    if event_type == contract.EVENT_DIALOGUE_CLOSED:
        fields.update(closed_by="TIMEOUT", dialogue=draw(text_ids))
    event_id = draw(st.from_regex(r"\Aevt_[0-9a-f]{12}\Z"))
    return build_event(event_type, event_id=event_id, **fields)


# -- without the right signature -------------------------------------------------


@fuzz_settings(400)
@given(body=any_body, signature=wrong_signatures, content_type=content_types, agent=agents)
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(
    client: Client, body: bytes, signature: str | None, content_type: str, agent: str
) -> None:
    assume(signature is None or not verify(body, signature, [SECRETS[agent]]))
    response = post(client, body, signature=signature, content_type=content_type,
                    agent_key=agent)
    check_answer(response)
    assert response.status_code == (413 if len(body) > body_limit() else 401)
    if response.status_code == 401:
        assert response["WWW-Authenticate"].startswith(contract.SIGNATURE_HEADER)
    assert WebhookEvent.objects.count() == 0


@fuzz_settings(200)
@given(body=any_body, how=st.sampled_from(["other agent", "other body", "prefixed", "spaces"]),
       agent=agents)
def test_a_signature_that_is_almost_right_is_401(
    client: Client, body: bytes, how: str, agent: str
) -> None:
    other = "sales" if agent == "support" else "support"
    signature = {
        "other agent": sign(body, SECRETS[other]),
        "other body": sign(body + b" ", SECRETS[agent]),
        "prefixed": "sha256=" + sign(body, SECRETS[agent]),
        "spaces": " ".join(sign(body, SECRETS[agent])),
    }[how]
    response = post(client, body, signature=signature, agent_key=agent)
    check_answer(response)
    assert response.status_code == (413 if len(body) > body_limit() else 401)
    assert WebhookEvent.objects.count() == 0


@fuzz_settings(100)
@given(body=any_body, agent_key=st.from_regex(r"\A[A-Za-z0-9_-]{1,30}\Z"))
def test_an_unknown_agent_is_404_whatever_the_body(client: Client, body: bytes,
                                                   agent_key: str) -> None:
    assume(agent_key not in SECRETS)
    for secret in SECRETS.values():
        response = client.generic(
            "POST", f"/mmc/webhooks/{agent_key}/", body,
            content_type=contract.JSONAPI_MEDIA_TYPE,
            headers={contract.SIGNATURE_HEADER: sign(body, secret)})
        check_answer(response)
        assert response.status_code == 404
    assert WebhookEvent.objects.count() == 0


@fuzz_settings(300)
@given(event=valid_events(), data=st.data())
def test_any_changed_byte_of_a_signed_body_is_401_and_stores_nothing(
    client: Client, event: dict[str, Any], data: Any
) -> None:
    body, headers = signed_delivery(event, SECRETS["support"])
    how = data.draw(st.sampled_from(["replace", "replace", "replace", "drop", "insert"]))
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    if how == "replace":
        byte = data.draw(st.integers(min_value=0, max_value=255).filter(
            lambda b: b != body[index]))
        tampered = body[:index] + bytes([byte]) + body[index + 1:]
    elif how == "drop":
        tampered = body[:index] + body[index + 1:]
    else:
        tampered = body[:index] + data.draw(st.binary(min_size=1, max_size=3)) + body[index:]
    assert tampered != body
    response = post(client, tampered, signature=headers[contract.SIGNATURE_HEADER])
    check_answer(response)
    assert response.status_code == 401
    assert error_document(response)["code"] == "INVALID_SIGNATURE"
    assert WebhookEvent.objects.count() == 0


# -- with the right signature -----------------------------------------------------


@fuzz_settings(400)
@given(body=any_body, content_type=content_types, agent=agents)
def test_signed_bodies_of_any_shape_are_never_a_server_error(
    client: Client, body: bytes, content_type: str, agent: str
) -> None:
    before = stored_ids()
    response = post(client, body, signature=signed(body, agent), content_type=content_type,
                    agent_key=agent)
    check_answer(response)
    after = stored_ids()
    if len(body) > body_limit():
        assert response.status_code == 413
    if response.status_code == 202:
        (new,) = after - before
        stored = WebhookEvent.objects.get(event_id=new)
        assert stored.body.encode("utf-8") == body
        assert stored.agent_key == agent
        assert stored.state == State.PENDING
    else:
        assert after == before


@fuzz_settings(150)
@given(event=valid_events(), content_type=content_types)
def test_a_valid_signed_event_is_2xx_only_with_the_jsonapi_media_type(
    client: Client, event: dict[str, Any], content_type: str
) -> None:
    body, headers = signed_delivery(event, SECRETS["support"])
    before = stored_ids()
    response = post(client, body, signature=headers[contract.SIGNATURE_HEADER],
                    content_type=content_type)
    check_answer(response)
    base = content_type.split(";")[0].strip().lower()
    if base != contract.JSONAPI_MEDIA_TYPE:  # wildcards such as */* included
        assert response.status_code == 415
        assert stored_ids() == before
    elif response.status_code != 415:  # media type parameters are the parser's call
        assert response.status_code in (200, 202)
        assert WebhookEvent.objects.filter(event_id=event["data"]["id"]).count() == 1


@fuzz_settings(150)
@given(event=valid_events(), repeats=st.integers(min_value=1, max_value=3))
def test_a_valid_signed_event_is_stored_once_and_repeats_are_200(
    client: Client, event: dict[str, Any], repeats: int
) -> None:
    assume(not WebhookEvent.objects.filter(event_id=event["data"]["id"]).exists())
    body, headers = signed_delivery(event, SECRETS["support"])
    answers = [post(client, body, signature=headers[contract.SIGNATURE_HEADER]).status_code
               for _ in range(1 + repeats)]
    assert answers == [202] + [200] * repeats
    assert WebhookEvent.objects.filter(event_id=event["data"]["id"]).count() == 1


@fuzz_settings(300)
@given(document=wild_event_documents, pretty=st.booleans(), agent=agents)
def test_signed_documents_of_the_wrong_shape_are_400_and_store_nothing(
    client: Client, document: Any, pretty: bool, agent: str
) -> None:
    body = serialise(document, pretty)
    before = stored_ids()
    response = post(client, body, signature=signed(body, agent), agent_key=agent)
    check_answer(response)
    event(f"answered {response.status_code}")
    if response.status_code == 202:
        assert len(stored_ids() - before) == 1
    else:
        assert stored_ids() == before


@fuzz_settings(500)
@given(document=plausible_events(), pretty=st.booleans(), agent=agents)
def test_signed_events_are_stored_and_processing_them_never_raises(
    client: Client, known_rows: dict[str, Any], document: dict[str, Any], pretty: bool,
    agent: str
) -> None:
    """Signed with the right secret, so every parser path behind the
    signature runs: the view's, then the worker's on what the view stored.
    Whatever the event says, processing ends in a state that says what
    happened, and no status moves backwards."""
    body = serialise(document, pretty)
    before_ids = stored_ids()
    before = statuses()
    response = post(client, body, signature=signed(body, agent), agent_key=agent)
    check_answer(response)
    event(f"answered {response.status_code}")
    new = stored_ids() - before_ids
    if response.status_code != 202:
        assert not new
        return
    (event_id,) = new
    assert document["data"]["id"] == event_id
    stored = WebhookEvent.objects.get(event_id=event_id)
    assert stored.body.encode("utf-8") == body

    state = process_event(stored.pk)

    event(f"processed: {state}")
    stored.refresh_from_db()
    assert state == stored.state
    assert state in (State.PROCESSED, State.IGNORED, State.WAITING, State.FAILED)
    if state == State.FAILED:
        assert stored.error
    else:
        assert not stored.error
    assert stored.attempts == 1
    after = statuses()
    for key, old in before.items():
        assert after[key] == old or can_advance(old, after[key]), (key, old, after[key])
    # A second run changes nothing once the event is done with.
    if state in (State.PROCESSED, State.IGNORED):
        assert process_event(stored.pk) == state
        assert statuses() == after


def test_the_error_documents_name_the_problem(client: Client) -> None:
    """A few fixed cases of the rule above, to show what the answers say."""
    body = json.dumps({"data": {"type": "events", "id": 7, "attributes": {"eventType": "x"}}}
                      ).encode()
    response = post(client, body, signature=signed(body))
    assert response.status_code == 400
    assert "1 to 128 characters" in error_document(response)["detail"]
    response = post(client, b"[" * 5000 + b"]" * 5000, signature=signed(b"[" * 5000 + b"]" * 5000))
    assert response.status_code == 400
    response = post(client, b"\xff\xfe", signature=signed(b"\xff\xfe"))
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("occurred_at", [
    "4184-09-17T04:16:37-19:55",  # RFC 3339 allows it; PostgreSQL does not
    "2026-11-26T19:00:04+23:59",
    "2026-11-26T19:00:04",        # no offset: UTC, as the contract's timestamps are
])
def test_an_unusual_offset_is_stored_in_utc_and_applied(
    client: Client, known_rows: dict[str, Any], occurred_at: str
) -> None:
    """Found by the schema-driven run: an offset past 15:59 was a 500 (the
    platform would have retried the delivery for a day, to no avail)."""
    event = build_event("dialogue.opened", occurred_at=occurred_at, initiated_by="RECIPIENT",
                        channel_type="SMS", dialogue="d-new", recipient="+353861234999",
                        channel_group=SUPPORT_GROUP_ID)
    body, headers = signed_delivery(event, SECRETS["support"])
    response = post(client, body, signature=headers[contract.SIGNATURE_HEADER])
    assert response.status_code == 202, response.content
    stored = WebhookEvent.objects.get()
    assert stored.occurred_at.utcoffset().total_seconds() == 0
    assert process_event(stored.pk) == State.PROCESSED
    assert Dialogue.objects.get(platform_id="d-new").opened_at == stored.occurred_at


@pytest.mark.parametrize("occurred_at", ["9999-12-31T23:59:59-05:00",
                                         "0001-01-01T00:00:00+05:00"])
def test_an_occurred_at_outside_the_calendar_in_utc_is_400(client: Client,
                                                            occurred_at: str) -> None:
    event = build_event("x.unknown", occurred_at=occurred_at)
    body, headers = signed_delivery(event, SECRETS["support"])
    response = post(client, body, signature=headers[contract.SIGNATURE_HEADER])
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("content_type", ["*/*", "application/*", "*/vnd.api+json"])
def test_a_wildcard_content_type_is_415(client: Client, content_type: str) -> None:
    """Found by the fuzzing: DRF let a wildcard request type match the parser."""
    body, headers = signed_delivery(build_event("x.unknown"), SECRETS["support"])
    response = post(client, body, signature=headers[contract.SIGNATURE_HEADER],
                    content_type=content_type)
    assert response.status_code == 415
    assert error_document(response)["status"] == "415"
    assert WebhookEvent.objects.count() == 0
