"""Forgetting a person: django_mmc.erasure.forget_recipient and the
mmc_forget_recipient command."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_mmc import api, erasure
from django_mmc.erasure import forget_recipient, redacted_body
from django_mmc.models import (
    ConsentChange,
    Dialogue,
    Message,
    Notification,
    Recipient,
    WebhookEvent,
)
from django_mmc.status import DialogueStatus, Direction, Status

pytestmark = pytest.mark.django_db

NUMBER = "+353861234567"
OTHER = "+353861234568"
FIXTURES = "tests/fixtures/events"


def fixture_body(name: str, **replace: str) -> str:
    with open(f"{FIXTURES}/{name}.json") as fh:
        text = fh.read()
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def store_event(event_id: str, event_type: str, subject_id: str, body: str) -> WebhookEvent:
    return WebhookEvent.objects.create(
        event_id=event_id, agent_key="support", event_type=event_type, body=body,
        signature="ab" * 32, subject_id=subject_id, state=WebhookEvent.State.PROCESSED)


@pytest.fixture
def person(directory: dict, admin_user: Any) -> dict[str, Any]:
    """A customer with a history of every kind, and someone else's event."""
    recipient = Recipient.objects.for_number(NUMBER, name="Ann Murphy")
    Recipient.objects.filter(pk=recipient.pk).update(metadata={"crm_id": "C-77"})
    now = timezone.now()
    delivered = Notification.objects.create(
        recipient=recipient, template=directory["order_shipped"],
        channel_group=directory["support"], channel_type="WHATSAPP",
        context={"first_name": "Ann", "tracking_url": "https://t.example/ann"},
        status=Status.FAILED, platform_id="79746", failure_code="RECIPIENT_UNREACHABLE",
        failure_detail=f"{NUMBER} cannot be reached", failed_at=now, accepted_at=now)
    scheduled = Notification.objects.create(
        recipient=recipient, template=directory["otp"], channel_group=directory["support"],
        channel_type="SMS", context={"code": "123456"}, status=Status.SCHEDULED,
        send_at=now + timedelta(hours=1))
    dialogue = Dialogue.objects.create(
        recipient=recipient, agent_key="support", channel_group=directory["support"],
        channel_type="WHATSAPP", status=DialogueStatus.CLOSED, platform_id="9002",
        opened_at=now, closed_at=now)
    inbound = Message.objects.create(
        dialogue=dialogue, direction=Direction.INBOUND, text="Hi, where is my order?",
        status=Status.RECEIVED, platform_id="55101", received_at=now,
        files=[{"id": "f_301", "name": "receipt.jpg", "url": "https://files.example/f_301"}])
    outbound = Message.objects.create(
        dialogue=dialogue, direction=Direction.OUTBOUND, template=directory["order_shipped"],
        context={"first_name": "Ann"}, status=Status.READ, platform_id="55102", read_at=now)
    api.set_consent(recipient, "SMS", True, source="KEYWORD", detail="STOP please, Ann")
    events = {
        "status": store_event("evt_7f3a2c", "notification.status", "79746",
                              fixture_body("notification.status")),
        "received": store_event("evt_c4e2a8", "message.received", "55101",
                                fixture_body("message.received")),
        "opened": store_event("evt_c4e2a7", "dialogue.opened", "9002",
                              fixture_body("dialogue.opened")),
        "other": store_event("evt_other", "message.received", "66000", fixture_body(
            "message.received", **{NUMBER: OTHER, "55101": "66000", "9002": "9100"})),
    }
    LogEntry.objects.create(
        user=admin_user, content_type=ContentType.objects.get_for_model(Recipient),
        object_id=str(recipient.pk), object_repr=str(recipient), action_flag=CHANGE,
        change_message="[]")
    return {"recipient": recipient, "delivered": delivered, "scheduled": scheduled,
            "dialogue": dialogue, "inbound": inbound, "outbound": outbound, "events": events}


def everything_said(person: dict[str, Any]) -> str:
    """Every stored value that could name the person, as one text."""
    recipient = Recipient.objects.get(pk=person["recipient"].pk)
    parts = [recipient.phone_number, recipient.name, json.dumps(recipient.metadata)]
    for n in Notification.objects.filter(recipient=recipient):
        parts += [json.dumps(n.context), n.failure_detail, n.last_error]
    for m in Message.objects.filter(dialogue__recipient=recipient):
        parts += [m.text, json.dumps(m.files), json.dumps(m.context)]
    parts += [c.detail for c in ConsentChange.objects.filter(recipient=recipient)]
    parts += [e.body for e in WebhookEvent.objects.exclude(event_id="evt_other")]
    parts += [e.object_repr for e in LogEntry.objects.all()]
    return "\n".join(parts)


def test_forget_removes_personal_data_and_keeps_accounting(person: dict[str, Any]) -> None:
    before = everything_said(person)
    for secret in (NUMBER, "Ann", "C-77", "where is my order", "receipt.jpg", "t.example",
                   "STOP please"):
        assert secret in before  # the fixture does hold it, so the test can fail

    report = forget_recipient(person["recipient"])

    after = everything_said(person)
    for secret in (NUMBER, "Ann", "C-77", "where is my order", "receipt.jpg", "t.example",
                   "STOP please", "353861234567"):
        assert secret not in after, secret
    recipient = Recipient.objects.get(pk=person["recipient"].pk)
    assert recipient.phone_number == f"erased-{recipient.pk}"
    assert report.recipients == 1 and report.messages == 2 and report.notifications == 2
    assert report.webhook_events == 3 and report.consent_changes == 1
    assert report.cancelled_notifications == 1 and report.log_entries == 1
    # What accounting needs is kept: rows, statuses, times, templates, codes.
    delivered = Notification.objects.get(pk=person["delivered"].pk)
    assert delivered.status == Status.FAILED and delivered.failure_code == "RECIPIENT_UNREACHABLE"
    assert delivered.template_id == person["delivered"].template_id
    assert delivered.failed_at is not None and delivered.platform_id == "79746"
    assert Notification.objects.get(pk=person["scheduled"].pk).status == Status.CANCELLED
    outbound = Message.objects.get(pk=person["outbound"].pk)
    assert outbound.status == Status.READ and outbound.template_id is not None
    assert outbound.read_at is not None
    consent = ConsentChange.objects.get()
    assert consent.opted_out and consent.channel_type == "SMS" and consent.source == "KEYWORD"
    assert recipient.opted_out_channel_types == ["SMS"]
    # Webhook bodies keep their type, time, status and platform ids, no signature.
    status = WebhookEvent.objects.get(event_id="evt_7f3a2c")
    body = json.loads(status.body)
    assert body["data"]["attributes"]["status"] == "DELIVERED"
    assert body["data"]["attributes"]["occurredAt"] == "2026-11-26T19:00:04.120Z"
    assert body["data"]["relationships"]["notification"]["data"]["id"] == "79746"
    assert status.signature == ""
    received = json.loads(WebhookEvent.objects.get(event_id="evt_c4e2a8").body)
    assert "recipient" not in received["data"]["relationships"]
    assert "text" not in received["data"]["attributes"]
    # Someone else's event is left alone.
    other = WebhookEvent.objects.get(event_id="evt_other")
    assert OTHER in other.body and other.signature


def test_forget_is_safe_to_run_twice(person: dict[str, Any]) -> None:
    forget_recipient(person["recipient"])
    snapshot = everything_said(person)
    bodies = {e.pk: (e.body, e.signature) for e in WebhookEvent.objects.all()}
    again = forget_recipient(person["recipient"].pk)
    assert everything_said(person) == snapshot
    assert {e.pk: (e.body, e.signature) for e in WebhookEvent.objects.all()} == bodies
    assert again.cancelled_notifications == 0
    # By the erased label, too.
    forget_recipient(f"erased-{person['recipient'].pk}")
    assert everything_said(person) == snapshot


def test_forget_is_all_or_nothing(person: dict[str, Any], monkeypatch: Any) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(erasure, "_erase_admin_history", broken)
    before = everything_said(person)
    with pytest.raises(RuntimeError):
        forget_recipient(person["recipient"])
    assert everything_said(person) == before
    assert Notification.objects.get(pk=person["scheduled"].pk).status == Status.SCHEDULED


def test_forget_waits_for_an_open_dialogue(person: dict[str, Any]) -> None:
    Dialogue.objects.filter(pk=person["dialogue"].pk).update(status=DialogueStatus.OPEN)
    before = everything_said(person)
    with pytest.raises(ValidationError) as caught:
        forget_recipient(NUMBER)
    assert caught.value.code == "busy"
    assert everything_said(person) == before
    # The cancellation it tried first is rolled back with the rest.
    assert Notification.objects.get(pk=person["scheduled"].pk).status == Status.SCHEDULED


def test_a_number_without_a_recipient_still_has_its_events_erased(db: Any) -> None:
    event = store_event("evt_x", "message.received", "70000", fixture_body("message.received"))
    report = forget_recipient("+353 86 123 4567")
    assert report.recipients == 0 and report.webhook_events == 1
    event.refresh_from_db()
    assert NUMBER not in event.body and "where is my order" not in event.body
    with pytest.raises(ValidationError):
        forget_recipient("not a number")
    with pytest.raises(ValidationError):
        forget_recipient(999_999)


def test_redacted_body_of_anything_else_says_nothing() -> None:
    assert redacted_body("not json", NUMBER) == "{}"
    assert redacted_body(json.dumps({"data": [NUMBER]}), NUMBER) == "{}"
    sneaky = json.dumps({"data": {"type": "events", "id": NUMBER, "attributes": {}}})
    assert redacted_body(sneaky, NUMBER) == "{}"


def test_command_forgets_and_reports(person: dict[str, Any]) -> None:
    out = io.StringIO()
    call_command("mmc_forget_recipient", NUMBER, "--no-input", stdout=out)
    assert "forgotten" in out.getvalue() and "messages: 2" in out.getvalue()
    assert NUMBER not in everything_said(person)
    again = io.StringIO()
    call_command("mmc_forget_recipient", str(person["recipient"].pk), "--id", "--no-input",
                 stdout=again)
    assert "forgotten" in again.getvalue()
    with pytest.raises(CommandError):
        call_command("mmc_forget_recipient", "12345", "--no-input", stderr=io.StringIO())
    with pytest.raises(CommandError):
        call_command("mmc_forget_recipient", "abc", "--id", "--no-input")


def test_command_asks_first(person: dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError):
        call_command("mmc_forget_recipient", NUMBER)
    assert NUMBER in everything_said(person)
