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
from tests.helpers import notification, posts, race, statements, unqueued_notification
from tests.markers import needs_postgresql


def test_a_send_costs_three_queries(synced):
    row = notification()
    with CaptureQueriesContext(connection) as queries:
        result = deliver_notification(row.pk, task_id="t1")
    assert result.outcome is Outcome.DONE
    assert Notification.objects.get(pk=row.pk).status == Status.ACCEPTED
    # Claim and load share a transaction (the consent check): its BEGIN and
    # COMMIT, or its savepoint here, are not counted.
    assert len(statements(queries)) == 3, statements(queries)



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
    assert len(statements(queries)) == 3, statements(queries)

    seen = []

    def receiver(sender, notification, old_status, new_status, **kwargs):
        seen.append((notification.pk, old_status, new_status))

    signals.notification_status_changed.connect(receiver)
    try:
        with CaptureQueriesContext(connection) as queries:
            deliver_notification(rows[1].pk, task_id="t2")
    finally:
        signals.notification_status_changed.disconnect(receiver)
    assert len(statements(queries)) == 4
    assert seen == [(rows[1].pk, Status.SENDING, Status.ACCEPTED)]



@pytest.mark.django_db(transaction=True)
def test_a_campaign_batch_claims_and_loads_once(sandbox):
    sync_directory()
    rows = [unqueued_notification(code=str(i)) for i in range(10)]
    with CaptureQueriesContext(connection) as queries:
        outcomes, retries = deliver_notification_batch([r.pk for r in rows], "batch-1")
    assert outcomes == {Outcome.DONE: 10} and retries == []
    assert len(statements(queries)) == 2 + 10  # claim and load for all, one record each
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


# -- issue 13: consent at claim time, fenced claims, "maybe sent" ----------------------


def reached_the_platform(row: Notification) -> str:
    """What an attempt whose answer was lost leaves behind: the platform has
    the notification under the row's key; returns its platform id."""
    from django_mmc.client import get_client

    return get_client().create_notification(
        recipient=row.recipient.phone_number, template_id=row.template.platform_id,
        channel_group_id=row.channel_group.platform_id, channel_type=row.channel_type,
        context=row.context, idempotency_key=str(row.idempotency_key)).id


def test_item_01_an_opt_out_stops_a_notification_already_stored(synced, settings,
                                                               django_capture_on_commit_callbacks):
    from django_mmc import signals
    from django_mmc.api import set_consent

    row = notification()
    set_consent("+353861234567", row.channel_type, True)  # STOP, after the row was stored
    seen = []

    def receiver(sender, notification, old_status, new_status, **kwargs):
        seen.append((notification.failure_code, old_status, new_status))

    signals.notification_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = deliver_notification(row.pk, task_id="t")
    finally:
        signals.notification_status_changed.disconnect(receiver)
    assert result.outcome is Outcome.OPTED_OUT
    row.refresh_from_db()
    assert (row.status, row.failure_code) == (Status.REFUSED, "OPTED_OUT")
    assert seen == [("OPTED_OUT", Status.SENDING, Status.REFUSED)]
    assert posts(synced) == []


@pytest.mark.parametrize("allowed,expected", [(True, Outcome.DONE), (False, Outcome.OPTED_OUT)])
def test_item_01_transactional_rows_follow_the_setting(synced, settings, allowed, expected):
    from django_mmc.api import set_consent

    row = django_mmc_send(transactional=True)
    set_consent("+353861234567", row.channel_type, True)
    settings.MMC = {**settings.MMC, "ALLOW_TRANSACTIONAL_TO_OPTED_OUT": allowed}
    assert deliver_notification(row.pk, task_id="t").outcome is expected


def test_item_01_a_campaign_batch_leaves_out_whoever_opted_out_meanwhile(synced):
    from django_mmc.api import set_consent

    rows = [notification(number=f"+35386123456{i}", code=str(i)) for i in range(3)]
    set_consent(rows[1].recipient, rows[1].channel_type, True)
    outcomes, _retries = deliver_notification_batch([r.pk for r in rows], "batch")
    assert outcomes == {Outcome.DONE: 2, Outcome.OPTED_OUT: 1}
    assert sorted(n["recipient"] for n in synced.notifications()) == [
        "+353861234560", "+353861234562"]


def test_item_01_retrying_an_error_row_refuses_a_recipient_who_opted_out(synced):
    from django.core.exceptions import ValidationError

    from django_mmc.api import retry_notification, set_consent

    row = notification()
    Notification.objects.filter(pk=row.pk).update(status=Status.ERROR)
    set_consent(row.recipient, row.channel_type, True)
    with pytest.raises(ValidationError) as error:
        retry_notification(Notification.objects.get(pk=row.pk))
    assert error.value.code == "opted_out"
    assert Notification.objects.get(pk=row.pk).status == Status.ERROR


def django_mmc_send(**options):
    import django_mmc

    return django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, **options)


def test_item_09_a_stale_workers_late_result_never_moves_a_row_another_claim_owns(synced,
                                                                                  settings):
    row = notification()
    first = transitions.claim(Notification, row.pk, "task-a")
    # The lease runs out while task-a waits for the platform; the sweeper's
    # task takes the row over.
    Notification.objects.filter(pk=row.pk).update(
        send_started_at=timezone.now() - timedelta(seconds=settings.MMC["SEND_LEASE"] + 1))
    second = transitions.claim(Notification, row.pk, "task-b")
    assert second and second.token != first.token
    platform_id = reached_the_platform(Notification.objects.get(pk=row.pk))

    class Answer:
        id, status, failure = platform_id, "ACCEPTED", None

    transitions.record_sent(Notification, row.pk, Answer, first.token)  # task-a, late
    row.refresh_from_db()
    assert (row.status, row.platform_id, row.claim_token) == (Status.SENDING, None, second.token)
    assert row.maybe_sent  # taken over from a worker that may have sent it
    transitions.record_sent(Notification, row.pk, Answer, second.token)
    row.refresh_from_db()
    assert (row.status, row.platform_id) == (Status.ACCEPTED, platform_id)


def test_item_09_a_late_result_never_leaves_a_waiting_row_with_a_platform_id(synced):
    row = notification()
    claim = transitions.claim(Notification, row.pk, "task-a")
    transitions.release(Notification, row.pk, claim.token)  # QUEUED again meanwhile

    class Answer:
        id, status, failure = "80999", "ACCEPTED", None

    transitions.record_sent(Notification, row.pk, Answer, claim.token)
    row.refresh_from_db()
    assert (row.status, row.platform_id) == (Status.QUEUED, None)


def test_item_09_a_batch_checks_its_claim_again_before_each_call(synced, settings,
                                                                monkeypatch):
    rows = [notification(code=str(i)) for i in range(3)]
    real_claim = transitions.claim
    lease = settings.MMC["SEND_LEASE"]

    def slow_claim(*args, **kwargs):
        claim = real_claim(*args, **kwargs)
        # As if the earlier rows had been slow: the claim is past half its lease.
        return transitions.Claim(claim.token, claim.count, claim.started - lease)

    monkeypatch.setattr(transitions, "claim", slow_claim)

    def take_over(pk):
        Notification.objects.filter(pk=pk).update(
            send_started_at=timezone.now() - timedelta(seconds=lease + 1))
        assert real_claim(Notification, pk, "sweeper-task")

    from django_mmc import client as client_module

    real_create = client_module.MMCClient.create_notification
    calls = []

    def create(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        if len(calls) == 1:
            take_over(rows[1].pk)  # while the first call was slow
        return real_create(self, **kwargs)

    monkeypatch.setattr(client_module.MMCClient, "create_notification", create)
    outcomes, _retries = deliver_notification_batch([r.pk for r in rows], "batch")
    assert outcomes == {Outcome.DONE: 2, Outcome.SKIPPED: 1}
    assert str(rows[1].idempotency_key) not in calls
    assert Notification.objects.get(pk=rows[1].pk).status == Status.SENDING  # the sweeper's


def abandoned(row: Notification, settings) -> None:
    """The worker sending ``row`` died mid-call, and its expiry has passed."""
    lease = settings.MMC["SEND_LEASE"]
    Notification.objects.filter(pk=row.pk).update(
        status=Status.SENDING, send_started_at=timezone.now() - timedelta(seconds=lease + 1),
        expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("reached", [True, False])
def test_item_10_expiry_covers_a_send_abandoned_mid_call(synced, settings, reached):
    from django_mmc.workers.outbox import sweep_outbox

    row = notification()
    platform_id = reached_the_platform(row) if reached else None
    abandoned(row, settings)
    assert deliver_notification(row.pk, task_id="t-new").outcome is (
        Outcome.SKIPPED if reached else Outcome.EXPIRED)
    sweep_outbox()
    row.refresh_from_db()
    if reached:  # asked the platform: it has it, so it is not declared unsent
        assert (row.status, row.platform_id) == (Status.ACCEPTED, platform_id)
    else:
        assert (row.status, row.failure_code) == (Status.EXPIRED, "EXPIRED_UNSENT")
    # Either way the sweeper stops handing it over.
    assert sweep_outbox()["deliver_notification"] == 0


@pytest.mark.parametrize("reached", [True, False])
def test_item_11_cancelling_a_row_that_may_have_been_sent_asks_the_platform(synced, reached):
    from django_mmc.api import cancel_notification

    row = notification()
    platform_id = reached_the_platform(row) if reached else None
    Notification.objects.filter(pk=row.pk).update(maybe_sent=True, attempts=1)  # timed out
    assert cancel_notification(Notification.objects.get(pk=row.pk)) is (not reached)
    row.refresh_from_db()
    if reached:
        assert (row.status, row.platform_id) == (Status.ACCEPTED, platform_id)
    else:
        assert row.status == Status.CANCELLED


def test_item_11_cancel_refuses_when_the_platform_cannot_be_asked(synced):
    from django.core.exceptions import ValidationError

    from django_mmc.api import cancel_notification

    row = notification()
    Notification.objects.filter(pk=row.pk).update(maybe_sent=True, attempts=1)
    synced.faults.inject("500", count=10, path="/notifications", method="GET")
    with pytest.raises(ValidationError) as error:
        cancel_notification(Notification.objects.get(pk=row.pk))
    assert error.value.code == "maybe_sent"
    assert Notification.objects.get(pk=row.pk).status == Status.QUEUED


@pytest.mark.parametrize("reached", [True, False])
def test_item_12_retrying_an_error_row_asks_the_platform_by_key_first(synced, reached,
                                                                      django_capture_on_commit_callbacks):
    from django_mmc.api import retry_notification

    row = notification()
    platform_id = reached_the_platform(row) if reached else None
    Notification.objects.filter(pk=row.pk).update(
        status=Status.ERROR, maybe_sent=True, attempts=9,
        status_changed_at=timezone.now() - timedelta(days=2))  # past the key's 24 hours
    before = len(posts(synced))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retried = retry_notification(Notification.objects.get(pk=row.pk))
    if reached:
        assert (retried.status, retried.platform_id) == (Status.ACCEPTED, platform_id)
        assert callbacks == []  # nothing is sent again
    else:
        assert retried.status == Status.QUEUED and len(callbacks) == 1
    assert len(posts(synced)) == before


def test_item_01_an_attempt_made_before_the_opt_out_is_never_declared_unsent(synced):
    from django_mmc.api import set_consent

    row = notification()
    platform_id = reached_the_platform(row)  # its first attempt timed out, but arrived
    Notification.objects.filter(pk=row.pk).update(maybe_sent=True, attempts=1)
    set_consent(row.recipient, row.channel_type, True)
    assert deliver_notification(row.pk, task_id="t").outcome is Outcome.DONE
    row.refresh_from_db()
    assert (row.status, row.platform_id) == (Status.ACCEPTED, platform_id)
    assert len(synced.notifications()) == 1
