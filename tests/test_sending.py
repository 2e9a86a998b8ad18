"""The worker-side functions, run in this process against the sandbox:
claims, retries, refusals, counts of queries and HTTP calls."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import django_mmc
from django_mmc import sending
from django_mmc.client import get_client
from django_mmc.directory import sync_directory
from django_mmc.models import Notification
from django_mmc.polling import poll_notifications
from django_mmc.status import Status
from tests.markers import needs_postgresql


@pytest.fixture
def synced(sandbox, db):
    sync_directory()
    return sandbox


def notification(number="+353861234567", code="1"):
    return django_mmc.send_notification(number, "otp", {"code": code})


def unqueued_notification(code="1"):
    """A notification stored without a task: in a committed test, a worker
    process started by another test must not take it first."""
    from django_mmc.models import ChannelGroup, Recipient, Template

    return Notification.objects.create(
        recipient=Recipient.objects.for_number("+353861234567"),
        template=Template.objects.get(name="otp"),
        channel_group=ChannelGroup.objects.get(platform_id="7"), channel_type="SMS",
        context={"code": code})


def posts(sandbox):
    return [r for r in sandbox.requests_log
            if r["method"] == "POST" and r["path"].endswith("/notifications")]


def test_a_send_costs_three_queries(synced):
    row = notification()
    with CaptureQueriesContext(connection) as queries:
        outcome = sending.send_notification(row.pk, task_id="t1")
    assert outcome.status == Status.ACCEPTED
    assert len(queries) == 3, [q["sql"] for q in queries]


def test_a_second_claim_of_a_row_being_sent_sends_nothing(synced):
    row = notification()
    assert sending.claim(Notification, row.pk, "task-a")
    assert not sending.claim(Notification, row.pk, "task-b")
    # The same task, redelivered after its worker died, may go on.
    assert sending.claim(Notification, row.pk, "task-a")


@pytest.mark.django_db(transaction=True)
@needs_postgresql
def test_two_workers_racing_for_one_notification_make_one_call(sandbox, settings):
    sync_directory()
    sandbox.faults.slow_seconds = 0.5
    sandbox.faults.inject("slow", count=1, path="/notifications", method="POST")
    row = unqueued_notification()
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(task_id):
        barrier.wait()
        outcomes.append(sending.send_notification(row.pk, task_id=task_id).status)
        connection.close()

    threads = [threading.Thread(target=worker, args=(f"task-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == [Status.ACCEPTED, "skipped"]
    assert len(posts(sandbox)) == 1


def test_retries_used_up_end_in_error_with_the_reason(synced, settings):
    settings.MMC = {**settings.MMC, "MAX_RETRIES": 1}
    synced.faults.inject("503", count=2, path="/notifications", method="POST")
    row = notification()
    with pytest.raises(sending.RetryLater) as later:
        sending.send_notification(row.pk, task_id="t")
    assert later.value.countdown == 1.0  # the sandbox's Retry-After
    row.refresh_from_db()
    assert row.status == Status.QUEUED and row.next_attempt_at > timezone.now()
    outcome = sending.send_notification(row.pk, task_id="t")
    assert outcome.status == Status.ERROR
    row.refresh_from_db()
    assert row.status == Status.ERROR
    assert row.attempts == 2
    assert "503" in row.last_error and "MMCTransientError" in row.last_error


def test_backoff_without_retry_after_uses_celery_full_jitter(settings):
    settings.MMC = {**settings.MMC, "RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 60}
    delays = {sending.retry_delay(5) for _ in range(50)}
    assert all(0 < d <= 32 for d in delays)
    assert len(delays) > 5  # jittered, not one fixed delay


def test_retry_after_is_capped(settings):
    from django_mmc.exceptions import MMCRateLimitedError

    settings.MMC = {**settings.MMC, "RETRY_AFTER_MAX": 30}
    assert sending.retry_delay(1, MMCRateLimitedError(retry_after=7)) == 7
    assert sending.retry_delay(1, MMCRateLimitedError(retry_after=3600)) == 30


def test_error_rows_retried_from_the_api_keep_their_key(synced, settings):
    from django_mmc.api import retry_notification

    settings.MMC = {**settings.MMC, "MAX_RETRIES": 0}
    synced.faults.inject("503", count=1, path="/notifications", method="POST")
    row = notification()
    assert sending.send_notification(row.pk, task_id="t").status == Status.ERROR
    retried = retry_notification(Notification.objects.get(pk=row.pk))
    assert retried.pk == row.pk and retried.status == Status.QUEUED
    assert sending.send_notification(row.pk, task_id="t2").status == Status.ACCEPTED
    assert {r["idempotency_key"] for r in posts(synced)} == {str(row.idempotency_key)}


def test_refused_rows_are_retried_as_new_notifications(synced):
    from django_mmc.api import retry_notification

    row = notification(number="+15005550001")
    Notification.objects.filter(pk=row.pk).update(status=Status.REFUSED)
    new = retry_notification(Notification.objects.get(pk=row.pk))
    assert new.pk != row.pk and new.retry_of_id == row.pk
    assert new.idempotency_key != row.idempotency_key


def _sent_notifications(count):
    client = get_client()
    rows = [notification(code=str(i)) for i in range(count)]
    for row in rows:
        sending.send_notification(row.pk, task_id=f"t{row.pk}")
    old = timezone.now() - timedelta(hours=1)
    Notification.objects.update(status=Status.ACCEPTED, status_changed_at=old, checked_at=None)
    return client


@pytest.mark.parametrize("count,requests", [(40, 1), (250, 3)])
def test_polling_batches_requests_and_queries(synced, settings, count, requests):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    _sent_notifications(count)
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
    _sent_notifications(3)
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
    sending.send_notification(row.pk, task_id="t")
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
    from django_mmc.models import Dialogue, Message
    from django_mmc.polling import poll_dialogues
    from django_mmc.status import DialogueStatus, Direction

    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    synced.faults.inject("drop_webhook", count=None)
    dialogue = django_mmc.open_dialogue("+353861234567")
    sending.open_dialogue(dialogue.pk, task_id="t")
    dialogue.refresh_from_db()
    message = dialogue.send_message(template="welcome")
    sending.send_message(message.pk, task_id="t")
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
    from django_mmc.models import Dialogue, Message
    from django_mmc.polling import poll_dialogues
    from django_mmc.sending import _mark_closed
    from django_mmc.status import DialogueStatus, Direction

    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    dialogue = django_mmc.open_dialogue("+353861234567")
    sending.open_dialogue(dialogue.pk, task_id="t")
    dialogue.refresh_from_db()
    synced.wait_for_webhooks(timeout=5)
    synced.faults.inject("drop_webhook", count=None)
    synced.reply("+353861234567", "STOP")
    assert synced.wait_for_webhooks(timeout=10)
    assert _mark_closed(dialogue, closed_by="AGENT")
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


@pytest.mark.django_db(transaction=True)
def test_a_committed_send_costs_three_queries_and_a_listener_one_more(sandbox):
    """Counted with real commits, so what runs after commit counts too."""
    from django_mmc import signals

    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(2)]
    with CaptureQueriesContext(connection) as queries:
        sending.send_notification(rows[0].pk, task_id="t1")
    assert len(queries) == 3, [q["sql"][:60] for q in queries]

    seen = []

    def receiver(sender, notification, old_status, new_status, **kwargs):
        seen.append((notification.pk, old_status, new_status))

    signals.notification_status_changed.connect(receiver)
    try:
        with CaptureQueriesContext(connection) as queries:
            sending.send_notification(rows[1].pk, task_id="t2")
    finally:
        signals.notification_status_changed.disconnect(receiver)
    assert len(queries) == 4
    assert seen == [(rows[1].pk, Status.SENDING, Status.ACCEPTED)]


@pytest.mark.django_db(transaction=True)
def test_a_campaign_batch_claims_and_loads_once(sandbox):
    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(10)]
    with CaptureQueriesContext(connection) as queries:
        outcomes, retries = sending.send_notification_batch([r.pk for r in rows], "batch-1")
    assert outcomes == {Status.ACCEPTED: 10} and retries == []
    assert len(queries) == 2 + 10  # claim and load for all, one record each
    assert len(posts(sandbox)) == 10
    # A second delivery of the same batch sends nothing again.
    assert sending.send_notification_batch([r.pk for r in rows], "batch-1") == ({}, [])


@pytest.mark.django_db(transaction=True)
def test_a_batch_retries_one_and_sends_the_others(sandbox):
    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(3)]
    Notification.objects.filter(pk=rows[2].pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    sandbox.faults.inject("503", count=1, path="/notifications", method="POST")
    outcomes, retries = sending.send_notification_batch([r.pk for r in rows], "batch-2")
    assert outcomes == {"retrying": 1, Status.ACCEPTED: 1, Status.EXPIRED: 1}
    assert retries == [(rows[0].pk, 1.0)]
    assert Notification.objects.get(pk=rows[0].pk).status == Status.QUEUED
    assert Notification.objects.get(pk=rows[2].pk).status == Status.EXPIRED


def test_update_in_status_reuses_the_orms_statement_and_binds_new_values(directory,
                                                                           monkeypatch):
    """The statement run once per notification sent: compiled once per shape
    of change, and the same rows change as with ``QuerySet.update``."""
    from django_mmc.models import ChannelGroup, Recipient, Template

    def row(status):
        return Notification.objects.create(
            recipient=Recipient.objects.for_number("+353861234567"),
            template=Template.objects.get(name="otp"),
            channel_group=ChannelGroup.objects.get(platform_id="7"), channel_type="SMS",
            context={"code": "1"}, status=status)

    first, second, other = row(Status.SENDING), row(Status.SENDING), row(Status.QUEUED)
    compiled: dict = {}
    monkeypatch.setattr(sending, "_UPDATE_SQL", compiled)
    now = timezone.now()
    changes = sending.status_changes(Status.SENDING, Status.ACCEPTED, now)
    with CaptureQueriesContext(connection) as queries:
        assert sending.update_in_status(Notification, first.pk, Status.SENDING,
                                        {**changes, "platform_id": "p-1"}) == 1
        assert sending.update_in_status(Notification, second.pk, Status.SENDING,
                                        {**changes, "platform_id": "p-2"}) == 1
        assert sending.update_in_status(Notification, other.pk, Status.SENDING,
                                        {**changes, "platform_id": "p-3"}) == 0
        assert len(compiled) == 1 and all(compiled.values())
        # Another shape (a NULL written) is a statement of its own.
        assert sending.update_in_status(Notification, first.pk, Status.ACCEPTED,
                                        {"platform_id": None, "last_error": "x"}) == 1
    assert len(queries) == 4 and len(compiled) == 2
    assert '"platform_id" = NULL' in queries[3]["sql"]
    values = {n.pk: n for n in Notification.objects.all()}
    assert (values[first.pk].platform_id, values[first.pk].last_error) == (None, "x")
    assert values[second.pk].platform_id == "p-2"
    assert values[second.pk].status == Status.ACCEPTED
    assert values[second.pk].accepted_at == now
    assert values[other.pk].status == Status.QUEUED and values[other.pk].platform_id is None
