"""The outbox sweeper (:mod:`django_mmc.workers.outbox`): scheduled sends,
expiry, cancelling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import django_mmc
from django_mmc.api import cancel_notification
from django_mmc.models import Notification
from django_mmc.policy import Outcome
from django_mmc.status import Status
from django_mmc.workers.notifications import deliver_notification
from django_mmc.workers.outbox import sweep_outbox
from tests.helpers import posts

pytestmark = pytest.mark.django_db


def test_scheduled_notification_waits_for_the_sweeper(synced,
                                                      django_capture_on_commit_callbacks):
    send_at = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                           send_at=send_at)
    assert callbacks == []  # no countdown task: the sweeper releases it when due
    assert row.status == Status.SCHEDULED
    assert sweep_outbox()["scheduled"] == 0
    Notification.objects.filter(pk=row.pk).update(send_at=timezone.now() - timedelta(seconds=1))
    counts = sweep_outbox()
    assert counts["scheduled"] == 1 and counts["deliver_notification"] == 1
    assert deliver_notification(row.pk, task_id="t").outcome is Outcome.DONE


def test_expired_notification_is_never_sent(synced):
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                       expires_at=timezone.now() + timedelta(minutes=10))
    Notification.objects.filter(pk=row.pk).update(expires_at=timezone.now())
    assert deliver_notification(row.pk, task_id="t").outcome is Outcome.EXPIRED
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
    assert sweep_outbox()["expired"] == 1
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
    assert sweep_outbox()["scheduled"] == 0
