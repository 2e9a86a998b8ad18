"""Status polling (:mod:`django_mmc.polling`): the safety net for lost
webhooks, batched, never backwards, and a last look after a dialogue closes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import django_mmc
from django_mmc import transitions
from django_mmc.client import get_client
from django_mmc.models import Dialogue, Message, Notification
from django_mmc.polling import poll_dialogues, poll_notifications
from django_mmc.status import DialogueStatus, Direction, Status
from django_mmc.workers import dialogues
from django_mmc.workers.notifications import deliver_notification
from tests.helpers import notification


def sent_notifications(count):
    """``count`` notifications sent and left ACCEPTED an hour ago, unpolled."""
    client = get_client()
    rows = [notification(code=str(i)) for i in range(count)]
    for row in rows:
        deliver_notification(row.pk, task_id=f"t{row.pk}")
    old = timezone.now() - timedelta(hours=1)
    Notification.objects.update(status=Status.ACCEPTED, status_changed_at=old, checked_at=None)
    return client



@pytest.mark.parametrize("count,requests", [(40, 1), (250, 3)])
def test_polling_batches_requests_and_queries(synced, settings, count, requests):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    sent_notifications(count)
    assert synced.wait_for_webhooks(timeout=10)  # the platform has moved them all on
    client = get_client()
    before = client.request_count
    with CaptureQueriesContext(connection) as queries:
        totals = poll_notifications()
    assert totals["polled"] == count
    assert totals["requests"] == requests
    assert client.request_count - before == requests
    # Per batch: select, one update per (old, new) group, mark checked, the
    # savepoints of the atomic block; and after commit nothing per row.
    per_batch = len(queries) / requests
    assert per_batch <= 8, [q["sql"][:80] for q in queries]
    assert Notification.objects.filter(status=Status.ACCEPTED).count() == 0



def test_polling_skips_final_and_fresh_rows(synced, settings):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    sent_notifications(3)
    first, second, third = Notification.objects.order_by("pk")
    Notification.objects.filter(pk=first.pk).update(status=Status.READ)
    Notification.objects.filter(pk=second.pk).update(status_changed_at=timezone.now())
    synced.wait_for_webhooks(timeout=10)
    totals = poll_notifications()
    assert totals["polled"] == 1
    assert Notification.objects.get(pk=third.pk).status != Status.ACCEPTED



def test_polling_never_moves_a_status_backwards(synced, settings):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    row = notification(number="+15005550004")  # the sandbox keeps it at SENT
    deliver_notification(row.pk, task_id="t")
    synced.wait_for_webhooks(timeout=5)
    # Locally we already know more than the platform's (stale) answer says.
    Notification.objects.filter(pk=row.pk).update(
        status=Status.DELIVERED, status_changed_at=timezone.now() - timedelta(hours=1))
    totals = poll_notifications()
    assert totals == {"polled": 1, "changed": 0, "requests": 1}
    row.refresh_from_db()
    assert row.status == Status.DELIVERED and row.checked_at is not None



def test_dialogue_poll_recovers_what_dropped_webhooks_lost(synced, settings,
                                                           django_capture_on_commit_callbacks):
    """Every webhook of a dialogue dropped: the transcript poll stores the
    recipient's messages once, moves outbound statuses and sees the close."""
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    synced.faults.inject("drop_webhook", count=None)
    dialogue = django_mmc.open_dialogue("+353861234567")
    dialogues.open_on_platform(dialogue.pk, task_id="t")
    dialogue.refresh_from_db()
    message = dialogue.send_message(template="welcome")
    dialogues.deliver_message(message.pk, task_id="t")
    synced.reply("+353861234567", "Hello from the customer")
    synced.reply("+353861234567", "And again")
    assert synced.wait_for_webhooks(timeout=10)
    old = timezone.now() - timedelta(hours=1)
    Dialogue.objects.filter(pk=dialogue.pk).update(updated_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        totals = poll_dialogues()
    assert totals == {"dialogues": 1, "received": 2, "changed": 1, "closed": 0, "requests": 2}
    inbound = Message.objects.filter(dialogue=dialogue, direction=Direction.INBOUND)
    assert sorted(inbound.values_list("text", flat=True)) == ["And again",
                                                              "Hello from the customer"]
    assert Message.objects.get(pk=message.pk).status == Status.READ
    # Polled again: nothing twice. Then the platform closes it.
    synced.close_dialogue(dialogue.platform_id, closed_by="TIMEOUT")
    Dialogue.objects.filter(pk=dialogue.pk).update(updated_at=old, checked_at=old)
    totals = poll_dialogues()
    assert totals["received"] == 0 and totals["closed"] == 1
    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.CLOSED and dialogue.closed_by == "TIMEOUT"
    assert inbound.count() == 2



def test_a_closed_dialogue_gets_one_last_look_at_its_transcript(synced, settings):
    """The recipient's STOP came just before the close and its webhook was
    lost: the last look after the close stores it and honours it, once."""
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    dialogue = django_mmc.open_dialogue("+353861234567")
    dialogues.open_on_platform(dialogue.pk, task_id="t")
    dialogue.refresh_from_db()
    synced.wait_for_webhooks(timeout=5)
    synced.faults.inject("drop_webhook", count=None)
    synced.reply("+353861234567", "STOP")
    assert synced.wait_for_webhooks(timeout=10)
    assert transitions.mark_dialogue_closed(dialogue, closed_by="AGENT")
    old = timezone.now() - timedelta(hours=1)

    # Not before the stragglers have had POLL_AFTER to arrive.
    assert poll_dialogues()["dialogues"] == 0
    Dialogue.objects.filter(pk=dialogue.pk).update(updated_at=old, closed_at=old)
    totals = poll_dialogues()
    assert totals == {"dialogues": 1, "received": 1, "changed": 0, "closed": 0, "requests": 2}
    inbound = Message.objects.get(dialogue=dialogue, direction=Direction.INBOUND)
    assert inbound.text == "STOP"
    assert dialogue.recipient.__class__.objects.get(
        pk=dialogue.recipient_id).has_opted_out(dialogue.channel_type)
    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.CLOSED and dialogue.checked_at > dialogue.closed_at

    # Once only; and never for a dialogue closed longer ago than POLL_MAX_AGE.
    assert poll_dialogues()["dialogues"] == 0
    Dialogue.objects.filter(pk=dialogue.pk).update(checked_at=None)
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60, "POLL_MAX_AGE": 1800}
    assert poll_dialogues()["dialogues"] == 0
    assert Message.objects.filter(dialogue=dialogue).count() == 1


def test_item_04_inbound_messages_recovered_by_polling_keep_their_channel_type(
        synced, settings, django_capture_on_commit_callbacks):
    """An SMS STOP whose webhook was lost opts the recipient out of SMS, not
    of the dialogue's WhatsApp."""
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    dialogue = django_mmc.open_dialogue("+353861234567")
    dialogues.open_on_platform(dialogue.pk, task_id="t")
    dialogue.refresh_from_db()
    assert dialogue.channel_type == "WHATSAPP"
    synced.wait_for_webhooks(timeout=5)
    synced.faults.inject("drop_webhook", count=None)
    synced.reply("+353861234567", "STOP", channel_type="SMS")
    assert synced.wait_for_webhooks(timeout=10)
    Dialogue.objects.filter(pk=dialogue.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert poll_dialogues()["received"] == 1
    inbound = Message.objects.get(dialogue=dialogue, direction=Direction.INBOUND)
    assert inbound.channel_type == "SMS"
    recipient = dialogue.recipient.__class__.objects.get(pk=dialogue.recipient_id)
    assert recipient.opted_out_channel_types == ["SMS"]
