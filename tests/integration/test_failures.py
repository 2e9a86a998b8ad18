"""Failure paths on the real stack: the platform misbehaves, workers die, the
broker misses a message. Whatever happens: one platform message per local
row, and every row ends up saying what happened."""

from __future__ import annotations

import time
from typing import Any

import pytest

import django_mmc
from django_mmc.client import get_client
from django_mmc.models import Dialogue, Notification
from django_mmc.status import DialogueStatus, Status
from tests.helpers import (
    NOTIFICATIONS,
    ORDER_SHIPPED_TEMPLATE_ID,
    SALES_AGENT_ID,
    SUPPORT_AGENT_ID,
    SUPPORT_GROUP_ID,
    posts,
    unqueued_notification,
)

pytestmark = pytest.mark.integration


def created_for(sandbox, notification) -> list[dict]:
    return [n for n in sandbox.notifications()
            if n["idempotency_key"] == str(notification.idempotency_key)]


def wait_status(stack, notification, *statuses, timeout=30):
    return stack.wait_for(
        lambda: Notification.objects.get(pk=notification.pk).status in statuses,
        timeout=timeout, message=f"notification {notification.pk} to reach {statuses}")


@pytest.mark.parametrize("fault", ["429", "503", "500"])
def test_transient_answers_are_retried_with_the_same_key(mmc_stack, fault):
    mmc_stack.sandbox.faults.inject(fault, count=1, path=NOTIFICATIONS, method="POST",
                                    retry_after=1)
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    wait_status(mmc_stack, notification, Status.ACCEPTED, Status.SENT, Status.DELIVERED,
                Status.READ)
    notification.refresh_from_db()
    assert notification.attempts == 2
    sent = posts(mmc_stack.sandbox, without_401=True)
    assert [r["status"] for r in sent] == [int(fault), 201]
    assert {r["idempotency_key"] for r in sent} == {str(notification.idempotency_key)}
    assert len(created_for(mmc_stack.sandbox, notification)) == 1


def test_retry_after_is_honoured(mmc_stack):
    mmc_stack.sandbox.faults.inject("429", count=1, path=NOTIFICATIONS, method="POST",
                                    retry_after=2)
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    wait_status(mmc_stack, notification, Status.ACCEPTED, Status.SENT, Status.DELIVERED,
                Status.READ)
    first, second = posts(mmc_stack.sandbox, without_401=True)
    assert second["time"] - first["time"] >= 2.0


def test_timeout_after_the_platform_accepted_sends_one_message(mmc_stack):
    # The sandbox answers after the client's 3 s read timeout, but it does
    # create the notification: the retry must get it back, not make another.
    mmc_stack.sandbox.faults.slow_seconds = 4.0
    mmc_stack.sandbox.faults.inject("slow", count=1, path=NOTIFICATIONS, method="POST")
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    wait_status(mmc_stack, notification, Status.ACCEPTED, Status.SENT, Status.DELIVERED,
                Status.READ, timeout=40)
    notification.refresh_from_db()
    assert notification.attempts == 2
    assert "did not answer in time" in notification.last_error or notification.last_error == ""
    assert len(created_for(mmc_stack.sandbox, notification)) == 1


def test_platform_refusal_is_recorded_and_not_retried(mmc_stack):
    # Our copy of the template lost a required parameter: local validation
    # passes, the platform refuses with 422.
    from django_mmc.models import Template

    Template.objects.filter(platform_id=ORDER_SHIPPED_TEMPLATE_ID).update(
        parameters=[{"name": "first_name", "required": False}])
    notification = django_mmc.send_notification("+353861234567", "order_shipped", {})
    wait_status(mmc_stack, notification, Status.REFUSED)
    notification.refresh_from_db()
    assert notification.failure_code == "TEMPLATE_PARAMETER_MISSING"
    assert "first_name" in notification.failure_detail
    assert notification.attempts == 1
    time.sleep(1.5)  # no retry comes later either
    assert len(posts(mmc_stack.sandbox, without_401=True)) == 1


def test_scripted_failure_reaches_failed_with_the_platform_reason(mmc_stack):
    notification = django_mmc.send_notification("+15005550001", "otp", {"code": "1"})
    wait_status(mmc_stack, notification, Status.FAILED)
    notification.refresh_from_db()
    assert notification.failure_code == "RECIPIENT_UNREACHABLE"
    assert notification.failed_at is not None


def test_token_expiry_mid_run_reauthenticates_once(mmc_stack):
    first = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    wait_status(mmc_stack, first, Status.ACCEPTED, Status.SENT, Status.DELIVERED, Status.READ)
    before = mmc_stack.sandbox.token_requests
    mmc_stack.sandbox.expire_tokens()
    second = django_mmc.send_notification("+353861234567", "otp", {"code": "2"})
    wait_status(mmc_stack, second, Status.ACCEPTED, Status.SENT, Status.DELIVERED, Status.READ)
    assert mmc_stack.sandbox.token_requests == before + 1
    second.refresh_from_db()
    assert second.attempts == 1


def test_worker_killed_after_the_platform_accepted(mmc_stack):
    """SIGKILL the pool child while its create is in flight at the platform.
    The task is redelivered, sends again with the same key, and the platform
    still holds exactly one notification."""
    sandbox = mmc_stack.sandbox
    sandbox.faults.slow_seconds = 2.0
    sandbox.faults.inject("slow", count=1, path=NOTIFICATIONS, method="POST")
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    mmc_stack.wait_for(
        lambda: Notification.objects.get(pk=notification.pk).status == Status.SENDING,
        message="the send to start")
    time.sleep(0.5)  # the POST is now being answered slowly by the sandbox
    assert mmc_stack.worker.kill_children()
    wait_status(mmc_stack, notification, Status.ACCEPTED, Status.SENT, Status.DELIVERED,
                Status.READ, timeout=60)
    assert len(created_for(sandbox, notification)) == 1
    notification.refresh_from_db()
    assert notification.attempts == 2
    assert len({r["idempotency_key"] for r in posts(sandbox, without_401=True)}) == 1


def test_outbox_sweeper_sends_what_was_never_enqueued(mmc_stack):
    """A crash between COMMIT and the on_commit enqueue leaves a QUEUED row
    and no task: the sweeper finds and sends it."""
    from datetime import timedelta

    from django.utils import timezone

    from django_mmc.workers.outbox import sweep_outbox

    notification = unqueued_notification(
        code="7", next_attempt_at=timezone.now() - timedelta(minutes=5))
    time.sleep(0.5)
    assert Notification.objects.get(pk=notification.pk).status == Status.QUEUED
    counts = sweep_outbox()
    assert counts["deliver_notification"] == 1
    wait_status(mmc_stack, notification, Status.ACCEPTED, Status.SENT, Status.DELIVERED,
                Status.READ)


def held_by(agent_id: str) -> Any:
    """A dialogue with the number that ``agent_id`` opened at the platform
    directly, not through django_mmc."""
    return get_client().create_dialogue(
        agent_id, recipient="+353861234567", channel_group_id=SUPPORT_GROUP_ID,
        channel_type="WHATSAPP", idempotency_key=f"held-by-{agent_id}")


def open_dialogue_until(stack: Any, status: str) -> Dialogue:
    """Open a dialogue with the number; wait until the worker moved it to ``status``."""
    dialogue = django_mmc.open_dialogue("+353861234567")
    stack.wait_for(lambda: Dialogue.objects.get(pk=dialogue.pk).status == status,
                   message=f"the dialogue to be {status}")
    dialogue.refresh_from_db()
    return dialogue


def test_open_dialogue_held_by_another_agent_is_a_conflict(mmc_stack):
    held = held_by(SALES_AGENT_ID)
    dialogue = open_dialogue_until(mmc_stack, DialogueStatus.CONFLICT)
    assert dialogue.conflict_agent_id == SALES_AGENT_ID
    assert dialogue.conflict_dialogue_id == held.id
    assert dialogue.failure_code == "DIALOGUE_ACTIVE"

    def creates() -> int:
        return len(posts(mmc_stack.sandbox, "/dialogues", without_401=True))

    # The conflict is found by our create (409) or, when the other agent's
    # dialogue.opened webhook is processed first, before it: either way no
    # retry loop follows.
    attempts = creates()
    time.sleep(1.5)
    assert attempts in (1, 2) and creates() == attempts


def test_open_dialogue_already_held_by_this_agent_is_adopted(mmc_stack):
    held = held_by(SUPPORT_AGENT_ID)
    dialogue = open_dialogue_until(mmc_stack, DialogueStatus.OPEN)
    assert dialogue.platform_id == held.id
    assert len(mmc_stack.sandbox.dialogues()) == 1
