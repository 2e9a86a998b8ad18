"""Priorities, scheduling and expiry, channel fallback, the care window and
consent, on the real parts (PostgreSQL, the Redis broker, the sandbox)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import django_mmc
from django_mmc import sending
from django_mmc.api import cancel_notification, set_consent
from django_mmc.directory import sync_directory
from django_mmc.models import ConsentChange, Message, Notification, Recipient
from django_mmc.polling import poll_notifications
from django_mmc.status import Direction, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(sandbox, db):
    sync_directory()
    return sandbox


def posts(sandbox):
    return [r for r in sandbox.requests_log
            if r["method"] == "POST" and r["path"].endswith("/notifications")]


# -- priorities ----------------------------------------------------------------


@pytest.fixture
def broker():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queues = ["mmc-test-now", "mmc-test-low"]
    client.delete(*queues)
    yield client
    client.delete(*queues)
    client.close()


def queued_ids(broker, queue):
    """The first task argument of every message waiting in a Redis queue."""
    ids = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        ids.extend(args[0] if isinstance(args[0], list) else [args[0]])  # campaigns: batches
    return ids


def test_each_priority_goes_to_its_own_queue(directory, settings, broker,
                                             django_capture_on_commit_callbacks):
    settings.MMC = {**settings.MMC, "PRIORITY_QUEUES": {"now": "mmc-test-now",
                                                        "low": "mmc-test-low"}}
    with django_capture_on_commit_callbacks(execute=True):
        otp = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                           priority="now")
        django_mmc.send_notifications(["+353861234568", "+353861234569"], "otp",
                                      {"code": "2"})
    assert queued_ids(broker, "mmc-test-now") == [otp.pk]
    campaign = list(Notification.objects.filter(priority="low").values_list("pk", flat=True))
    assert sorted(queued_ids(broker, "mmc-test-low")) == sorted(campaign)


def test_unknown_priority_is_refused(directory):
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, priority="asap")
    assert "priority" in error.value.message_dict


# -- scheduling and expiry --------------------------------------------------------


def test_scheduled_notification_waits_for_the_sweeper(synced,
                                                      django_capture_on_commit_callbacks):
    send_at = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                           send_at=send_at)
    assert callbacks == []  # no countdown task: the sweeper releases it when due
    assert row.status == Status.SCHEDULED
    assert sending.sweep_outbox()["scheduled"] == 0
    Notification.objects.filter(pk=row.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    counts = sending.sweep_outbox()
    assert counts["scheduled"] == 1 and counts["send_notification"] == 1
    assert sending.send_notification(row.pk, task_id="t").status == Status.ACCEPTED


def test_expired_notification_is_never_sent(synced):
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                       expires_at=timezone.now() + timedelta(minutes=10))
    Notification.objects.filter(pk=row.pk).update(expires_at=timezone.now())
    outcome = sending.send_notification(row.pk, task_id="t")
    assert outcome.status == Status.EXPIRED
    row.refresh_from_db()
    assert row.status == Status.EXPIRED and row.failure_code == "EXPIRED_UNSENT"
    assert posts(synced) == []


def test_the_sweeper_expires_overdue_rows(directory):
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                       send_at=timezone.now() + timedelta(minutes=5),
                                       expires_at=timezone.now() + timedelta(minutes=10))
    Notification.objects.filter(pk=row.pk).update(
        send_at=timezone.now() - timedelta(minutes=20),
        expires_at=timezone.now() - timedelta(minutes=1))
    assert sending.sweep_outbox()["expired"] == 1
    assert Notification.objects.get(pk=row.pk).status == Status.EXPIRED


def test_bad_times_are_refused(directory):
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                     expires_at=timezone.now() - timedelta(seconds=1))
    assert "expires_at" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                     send_at=timezone.now().replace(tzinfo=None))
    assert "send_at" in error.value.message_dict


def test_cancel_a_scheduled_notification(directory):
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                       send_at=timezone.now() + timedelta(hours=1))
    assert cancel_notification(row) is True
    assert Notification.objects.get(pk=row.pk).status == Status.CANCELLED
    assert cancel_notification(row) is False
    Notification.objects.filter(pk=row.pk).update(send_at=timezone.now())
    assert sending.sweep_outbox()["scheduled"] == 0


# -- channel fallback ----------------------------------------------------------------


def _fail_and_poll(sandbox, settings, row):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    sending.send_notification(row.pk, task_id="t")
    sandbox.wait_for_webhooks(timeout=10)
    Notification.objects.filter(pk=row.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=1))


def test_not_on_whatsapp_falls_back_to_sms_once(synced, settings,
                                                django_capture_on_commit_callbacks):
    row = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                       channel_type="WHATSAPP", fallback=["WHATSAPP", "SMS"])
    assert row.fallback_channel_types == ["SMS"]
    _fail_and_poll(synced, settings, row)
    with django_capture_on_commit_callbacks(execute=True):
        poll_notifications()
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.failure_code == "NOT_ON_CHANNEL"
    follow_up = row.fallback
    assert follow_up.channel_type == "SMS" and follow_up.fallback_channel_types == []
    assert follow_up.idempotency_key != row.idempotency_key
    assert sending.send_notification(follow_up.pk, task_id="t2").status == Status.ACCEPTED
    assert synced.wait_for_webhooks(timeout=10)
    remote = {n["id"]: n for n in synced.notifications()}
    assert remote[Notification.objects.get(pk=follow_up.pk).platform_id]["status"] == "READ"
    # Never a second follow-up for the same failure.
    assert sending.start_fallback(row.pk) is None
    assert Notification.objects.filter(fallback_of=row).count() == 1


def test_no_fallback_without_a_chain_or_after_delivery(synced, settings,
                                                       django_capture_on_commit_callbacks):
    plain = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                         channel_type="WHATSAPP")
    _fail_and_poll(synced, settings, plain)
    with django_capture_on_commit_callbacks(execute=True):
        poll_notifications()
    assert Notification.objects.get(pk=plain.pk).status == Status.FAILED
    assert Notification.objects.count() == 1
    delivered = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                             fallback=["WHATSAPP", "SMS"])
    Notification.objects.filter(pk=delivered.pk).update(
        status=Status.FAILED, failure_code="NOT_ON_CHANNEL", delivered_at=timezone.now())
    assert sending.start_fallback(delivered.pk) is None


def test_fallback_setting_is_the_default_chain(directory, settings):
    settings.MMC = {**settings.MMC, "FALLBACK_CHANNEL_TYPES": ["WHATSAPP", "SMS"]}
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert row.fallback_channel_types == ["SMS"]
    none = django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, fallback=False)
    assert none.fallback_channel_types == []


# -- the care window ------------------------------------------------------------------


def _inbound(dialogue, hours_ago):
    Message.objects.create(dialogue=dialogue, direction=Direction.INBOUND, text="hi",
                           status=Status.RECEIVED,
                           received_at=timezone.now() - timedelta(hours=hours_ago))


def test_free_text_only_inside_the_care_window(directory):
    dialogue = django_mmc.open_dialogue("+353861234567")
    assert dialogue.can_send_text() is False
    with pytest.raises(ValidationError) as error:
        dialogue.send_message("Hello")
    assert "template" in " ".join(error.value.message_dict["text"])
    dialogue.send_message(template="otp", context={"code": "1"})  # templates always go
    _inbound(dialogue, hours_ago=25)
    assert dialogue.can_send_text() is False
    _inbound(dialogue, hours_ago=2)
    assert dialogue.can_send_text() is True
    dialogue.send_message("Hello")
    assert dialogue.can_send_text("SMS") is True


def test_care_window_length_and_enforcement_are_settings(directory, settings):
    dialogue = django_mmc.open_dialogue("+353861234567")
    _inbound(dialogue, hours_ago=30)
    settings.MMC = {**settings.MMC, "CARE_WINDOW_HOURS": 48}
    assert dialogue.can_send_text() is True
    settings.MMC = {**settings.MMC, "CARE_WINDOW_HOURS": 24, "ENFORCE_CARE_WINDOW": False}
    assert dialogue.can_send_text() is False
    dialogue.send_message("Allowed: enforcement is off")


# -- consent ---------------------------------------------------------------------------


def test_opted_out_recipients_are_refused_unless_transactional(directory, settings):
    assert set_consent("+353861234567", "whatsapp", True) is True
    assert set_consent("+353861234567", "WHATSAPP", True) is False  # no change, no log
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert "opted out" in " ".join(error.value.message_dict["to"])
    assert Notification.objects.count() == 0
    django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, channel_type="SMS")
    django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, transactional=True)
    settings.MMC = {**settings.MMC, "ALLOW_TRANSACTIONAL_TO_OPTED_OUT": False}
    with pytest.raises(ValidationError):
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                     transactional=True)
    assert [(c.channel_type, c.opted_out, c.source) for c in ConsentChange.objects.all()] == [
        ("WHATSAPP", True, "API")]


def test_campaigns_leave_opted_out_recipients_out(directory):
    set_consent("+353861234568", "WHATSAPP", True)
    sent = django_mmc.send_notifications(["+353861234567", "+353861234568"], "otp",
                                         {"code": "1"})
    assert sent == 1
    assert list(Notification.objects.values_list("recipient__phone_number", flat=True)) == [
        "+353861234567"]


def test_opting_back_in(directory):
    set_consent("+353861234567", "WHATSAPP", True)
    set_consent("+353861234567", "WHATSAPP", False, source="ADMIN")
    assert Recipient.objects.get().opted_out_channel_types == []
    django_mmc.send_notification("+353861234567", "otp", {"code": "1"})


@pytest.mark.parametrize("text,expected", [
    ("STOP", True), (" stop. ", True), ("Unsubscribe", True), ("START", False),
    ("please stop sending", None), ("", None),
])
def test_consent_keywords(text, expected):
    from django_mmc.events import consent_keyword

    assert consent_keyword(text) is expected


def test_an_inbound_stop_opts_the_recipient_out(directory, django_capture_on_commit_callbacks):
    from django_mmc.models import WebhookEvent
    from django_mmc.signals import consent_changed
    from django_mmc.testing import build_event

    changes = []

    def receiver(sender, recipient, channel_type, opted_out, source, **kwargs):
        changes.append((recipient.phone_number, channel_type, opted_out, source))

    consent_changed.connect(receiver)
    try:
        for index, text in enumerate(["STOP", "Start"]):
            event = build_event("message.received", event_id=f"evt_{index}",
                                message=f"m-{index}", dialogue="d-1",
                                recipient="+353861234567", channel_group="7",
                                channel_type="WHATSAPP", text=text)
            stored = WebhookEvent.objects.create(
                event_id=f"evt_{index}", agent_key="support", event_type="message.received",
                body=json.dumps(event))
            from django_mmc.events import process_event

            with django_capture_on_commit_callbacks(execute=True):
                assert process_event(stored.pk) == WebhookEvent.State.PROCESSED
            if index == 0:
                assert Recipient.objects.get().opted_out_channel_types == ["WHATSAPP"]
                with pytest.raises(ValidationError):
                    django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    finally:
        consent_changed.disconnect(receiver)
    assert changes == [("+353861234567", "WHATSAPP", True, "KEYWORD"),
                       ("+353861234567", "WHATSAPP", False, "KEYWORD")]
    assert Recipient.objects.get().opted_out_channel_types == []
    assert ConsentChange.objects.filter(source="KEYWORD").count() == 2
