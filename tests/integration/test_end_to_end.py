"""The whole path on real parts: business code -> PostgreSQL -> Redis ->
Celery worker process -> sandbox over HTTP -> signed webhooks over HTTP ->
live server -> worker -> models and signals.

Notifications, dialogues and campaigns; then what the sending options and
the recipient change on that path: fallback to another channel when a
webhook reports a failure, a scheduled send, and STOP from the recipient."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import django_mmc
from django_mmc.models import Dialogue, Message, Notification, Recipient, WebhookEvent
from django_mmc.status import DialogueStatus, Direction, Status
from django_mmc.workers.outbox import sweep_outbox

pytestmark = pytest.mark.integration


def test_committed_notification_is_delivered_through_webhooks(mmc_stack):
    with transaction.atomic():
        notification = django_mmc.send_notification(
            "+353861234567", "order_shipped", {"first_name": "Ann"})
    mmc_stack.wait_for(
        lambda: Notification.objects.get(pk=notification.pk).status == Status.READ,
        message="the notification to be READ")
    notification.refresh_from_db()
    assert notification.platform_id
    assert notification.accepted_at and notification.delivered_at and notification.read_at
    assert notification.attempts == 1
    created = [n for n in mmc_stack.sandbox.notifications()
               if n["idempotency_key"] == str(notification.idempotency_key)]
    assert len(created) == 1
    # Every status came in as a stored, processed webhook event.
    events = WebhookEvent.objects.filter(subject_id=notification.platform_id)
    assert events.count() >= 3
    assert set(events.values_list("state", flat=True)) == {WebhookEvent.State.PROCESSED}


def test_rolled_back_notification_sends_nothing(mmc_stack):
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        django_mmc.send_notification("+353861234567", "otp", {"code": "1234"})
        raise Rollback
    assert Notification.objects.count() == 0
    sentinel = django_mmc.send_notification("+353861234568", "otp", {"code": "9"})
    mmc_stack.wait_for(lambda: Notification.objects.get(pk=sentinel.pk).platform_id,
                       message="the sentinel to be sent")
    assert [n["recipient"] for n in mmc_stack.sandbox.notifications()] == ["+353861234568"]


def test_recipient_reply_arrives_once_in_the_open_dialogue(mmc_stack):
    dialogue = django_mmc.open_dialogue("+353861234567")
    mmc_stack.wait_for(
        lambda: Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.OPEN,
        message="the dialogue to open")
    dialogue.refresh_from_db()
    # WhatsApp: an agent starts with a template; free text once they wrote.
    dialogue.send_message(template="welcome")
    mmc_stack.sandbox.reply("+353861234567", "My parcel is late")
    inbound = mmc_stack.wait_for(
        lambda: Message.objects.filter(dialogue=dialogue, direction=Direction.INBOUND)
        .first(), message="the reply")
    assert inbound.text == "My parcel is late"
    dialogue.send_message("Sorry about that, it leaves today.")
    mmc_stack.wait_for(lambda: mmc_stack.signals("message_received"),
                       message="message_received")
    mmc_stack.sandbox.wait_for_webhooks(timeout=5)
    received = mmc_stack.signals("message_received")
    assert [(s["message"], s["dialogue"]) for s in received] == [(inbound.pk, dialogue.pk)]
    assert [s["dialogue"] for s in mmc_stack.signals("dialogue_opened")] == [dialogue.pk]
    for outbound in Message.objects.filter(dialogue=dialogue,
                                           direction=Direction.OUTBOUND):
        mmc_stack.wait_for(
            lambda pk=outbound.pk: Message.objects.get(pk=pk).status in (
                Status.DELIVERED, Status.READ),
            message="the outbound messages to be delivered")
    dialogue.close()
    mmc_stack.wait_for(
        lambda: Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.CLOSED,
        message="the dialogue to close")
    assert [d["status"] for d in mmc_stack.sandbox.dialogues()] == ["CLOSED"]
    closed = mmc_stack.wait_for(lambda: mmc_stack.signals("dialogue_closed"),
                                message="dialogue_closed")
    assert closed == [{"signal": "dialogue_closed", "dialogue": dialogue.pk,
                       "closed_by": "AGENT"}]


def test_recipient_initiated_dialogue_is_created_from_webhooks(mmc_stack):
    mmc_stack.sandbox.reply("+353861234599", "Hello?")
    message = mmc_stack.wait_for(
        lambda: Message.objects.filter(direction=Direction.INBOUND).first(),
        message="the inbound message")
    mmc_stack.sandbox.wait_for_webhooks(timeout=5)
    dialogue = Dialogue.objects.get()
    assert message.dialogue_id == dialogue.pk
    assert dialogue.status == DialogueStatus.OPEN
    assert dialogue.initiated_by == "RECIPIENT"
    assert dialogue.agent_key == "support"
    assert dialogue.recipient.phone_number == "+353861234599"


def test_a_customer_the_platform_names_by_id_is_found_and_linked(mmc_stack):
    customer_id = mmc_stack.sandbox.customer_id_for("+353861234598")
    known = Recipient.objects.for_customer(customer_id)  # known here by the id only
    mmc_stack.sandbox.reply("+353861234598", "Hello?", by_customer_id=True)
    mmc_stack.wait_for(lambda: Message.objects.filter(direction=Direction.INBOUND).first(),
                       message="the inbound message")
    mmc_stack.sandbox.wait_for_webhooks(timeout=5)
    known.refresh_from_db()
    assert known.phone_number == "+353861234598"  # the number beside the id, linked
    assert Dialogue.objects.get().recipient == known
    assert Recipient.objects.count() == 1


def test_a_campaign_is_sent_in_batches_and_delivered(mmc_stack):
    numbers = [f"+3538612{i:05d}" for i in range(25)]
    assert django_mmc.send_notifications(numbers, "otp", {"code": "42"}) == 25
    mmc_stack.wait_for(
        lambda: Notification.objects.filter(status=Status.READ).count() == 25,
        timeout=40, message="the whole campaign to be read")
    keys = [n["idempotency_key"] for n in mmc_stack.sandbox.notifications()]
    assert len(keys) == len(set(keys)) == 25
    assert set(Notification.objects.values_list("priority", flat=True)) == {"low"}
    assert "django_mmc.send_notification_batch" in mmc_stack.worker.output()


# -- sending options and consent ----------------------------------------------------


def test_whatsapp_failure_falls_back_to_sms_through_webhooks(mmc_stack):
    first = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                         channel_type="WHATSAPP", fallback=["WHATSAPP", "SMS"])
    follow_up = mmc_stack.wait_for(
        lambda: Notification.objects.filter(fallback_of=first).first(),
        message="the SMS fallback")
    mmc_stack.wait_for(lambda: Notification.objects.get(pk=follow_up.pk).status == Status.READ,
                       message="the fallback to be read")
    first.refresh_from_db()
    assert first.status == Status.FAILED and first.failure_code == "NOT_ON_CHANNEL"
    assert follow_up.channel_type == "SMS"
    remote = mmc_stack.sandbox.notifications()
    assert sorted(n["channelType"] for n in remote) == ["SMS", "WHATSAPP"]
    assert [n["status"] for n in remote if n["channelType"] == "SMS"] == ["READ"]


def test_scheduled_notification_is_sent_when_due(mmc_stack):
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                       send_at=timezone.now() + timedelta(hours=1))
    assert mmc_stack.sandbox.notifications() == []
    Notification.objects.filter(pk=row.pk).update(send_at=timezone.now())
    assert sweep_outbox()["scheduled"] == 1
    mmc_stack.wait_for(lambda: Notification.objects.get(pk=row.pk).status == Status.READ,
                       message="the scheduled notification")


def test_stop_from_the_recipient_blocks_later_sends(mmc_stack):
    mmc_stack.sandbox.reply("+353861234567", "STOP")
    mmc_stack.wait_for(
        lambda: Recipient.objects.filter(opted_out_channel_types__contains=["WHATSAPP"])
        .exists(), message="the opt-out")
    assert Message.objects.get(direction=Direction.INBOUND).text == "STOP"
    assert [s["opted_out"] for s in mmc_stack.signals("consent_changed")] == [True]
    with pytest.raises(ValidationError):
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
