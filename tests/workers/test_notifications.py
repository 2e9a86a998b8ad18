"""Delivering notifications (:mod:`django_mmc.workers.notifications`):
exactly once against the sandbox, three queries a send, batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_mmc import transitions
from django_mmc.directory import sync_directory
from django_mmc.models import Notification
from django_mmc.policy import Outcome, RetryLater
from django_mmc.status import Status
from django_mmc.workers.notifications import deliver_notification, deliver_notification_batch
from tests.helpers import notification, posts, race, unqueued_notification
from tests.markers import needs_postgresql


def test_a_send_costs_three_queries(synced):
    row = notification()
    with CaptureQueriesContext(connection) as queries:
        result = deliver_notification(row.pk, task_id="t1")
    assert result.outcome is Outcome.DONE
    assert Notification.objects.get(pk=row.pk).status == Status.ACCEPTED
    assert len(queries) == 3, [q["sql"] for q in queries]



def test_a_second_claim_of_a_row_being_sent_sends_nothing(synced):
    row = notification()
    assert transitions.claim(Notification, row.pk, "task-a")
    assert not transitions.claim(Notification, row.pk, "task-b")
    # The same task, redelivered after its worker died, may go on.
    assert transitions.claim(Notification, row.pk, "task-a")



@pytest.mark.django_db(transaction=True)
@needs_postgresql
def test_two_workers_racing_for_one_notification_make_one_call(sandbox, settings):
    sync_directory()
    sandbox.faults.slow_seconds = 0.5
    sandbox.faults.inject("slow", count=1, path="/notifications", method="POST")
    row = unqueued_notification()
    results = race([lambda i=i: deliver_notification(row.pk, task_id=f"task-{i}").outcome
                    for i in range(2)])
    assert sorted(results) == [Outcome.DONE, Outcome.SKIPPED]
    assert len(posts(sandbox)) == 1



def test_retries_used_up_end_in_error_with_the_reason(synced, settings):
    settings.MMC = {**settings.MMC, "MAX_RETRIES": 1}
    synced.faults.inject("503", count=2, path="/notifications", method="POST")
    row = notification()
    with pytest.raises(RetryLater) as later:
        deliver_notification(row.pk, task_id="t")
    assert later.value.countdown == 1.0  # the sandbox's Retry-After
    row.refresh_from_db()
    assert row.status == Status.QUEUED and row.next_attempt_at > timezone.now()
    assert deliver_notification(row.pk, task_id="t").outcome is Outcome.GAVE_UP
    row.refresh_from_db()
    assert row.status == Status.ERROR
    assert row.attempts == 2
    assert "503" in row.last_error and "MMCTransientError" in row.last_error



def test_error_rows_retried_from_the_api_keep_their_key(synced, settings):
    from django_mmc.api import retry_notification

    settings.MMC = {**settings.MMC, "MAX_RETRIES": 0}
    synced.faults.inject("503", count=1, path="/notifications", method="POST")
    row = notification()
    assert deliver_notification(row.pk, task_id="t").outcome is Outcome.GAVE_UP
    retried = retry_notification(Notification.objects.get(pk=row.pk))
    assert retried.pk == row.pk and retried.status == Status.QUEUED
    assert deliver_notification(row.pk, task_id="t2").outcome is Outcome.DONE
    assert {r["idempotency_key"] for r in posts(synced)} == {str(row.idempotency_key)}



def test_refused_rows_are_retried_as_new_notifications(synced):
    from django_mmc.api import retry_notification

    row = notification(number="+15005550001")
    Notification.objects.filter(pk=row.pk).update(status=Status.REFUSED)
    new = retry_notification(Notification.objects.get(pk=row.pk))
    assert new.pk != row.pk and new.retry_of_id == row.pk
    assert new.idempotency_key != row.idempotency_key



@pytest.mark.django_db(transaction=True)
def test_a_committed_send_costs_three_queries_and_a_listener_one_more(sandbox):
    """Counted with real commits, so what runs after commit counts too."""
    from django_mmc import signals

    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(2)]
    with CaptureQueriesContext(connection) as queries:
        deliver_notification(rows[0].pk, task_id="t1")
    assert len(queries) == 3, [q["sql"][:60] for q in queries]

    seen = []

    def receiver(sender, notification, old_status, new_status, **kwargs):
        seen.append((notification.pk, old_status, new_status))

    signals.notification_status_changed.connect(receiver)
    try:
        with CaptureQueriesContext(connection) as queries:
            deliver_notification(rows[1].pk, task_id="t2")
    finally:
        signals.notification_status_changed.disconnect(receiver)
    assert len(queries) == 4
    assert seen == [(rows[1].pk, Status.SENDING, Status.ACCEPTED)]



@pytest.mark.django_db(transaction=True)
def test_a_campaign_batch_claims_and_loads_once(sandbox):
    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(10)]
    with CaptureQueriesContext(connection) as queries:
        outcomes, retries = deliver_notification_batch([r.pk for r in rows], "batch-1")
    assert outcomes == {Outcome.DONE: 10} and retries == []
    assert len(queries) == 2 + 10  # claim and load for all, one record each
    assert len(posts(sandbox)) == 10
    # A second delivery of the same batch sends nothing again.
    assert deliver_notification_batch([r.pk for r in rows], "batch-1") == ({}, [])



@pytest.mark.django_db(transaction=True)
def test_a_batch_retries_one_and_sends_the_others(sandbox):
    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(3)]
    Notification.objects.filter(pk=rows[2].pk).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    sandbox.faults.inject("503", count=1, path="/notifications", method="POST")
    outcomes, retries = deliver_notification_batch([r.pk for r in rows], "batch-2")
    assert outcomes == {Outcome.RETRYING: 1, Outcome.DONE: 1, Outcome.EXPIRED: 1}
    assert retries == [(rows[0].pk, 1.0)]
    assert Notification.objects.get(pk=rows[0].pk).status == Status.QUEUED
    assert Notification.objects.get(pk=rows[2].pk).status == Status.EXPIRED
