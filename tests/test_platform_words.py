"""Item 17 of the hardening issue, the polling half: a poll answer whose
status names one of django_mmc's local statuses is logged (once per word)
and never applied to a row."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from django_mmc.models import Notification
from django_mmc.polling import poll_notifications
from django_mmc.status import Status
from django_mmc.workers.notifications import deliver_notification
from tests.helpers import notification


def platform_says(sandbox, platform_id: str, word: str) -> None:
    """The platform's record of the notification now reads ``word``, with no
    further steps planned (a platform that answers something odd)."""
    with sandbox.platform.lock:
        record = sandbox.platform.notifications[platform_id]
        record.status = word
        record.plan = []


@pytest.mark.parametrize("word", ["CANCELLED", "QUEUED", "RECEIVED", "ERROR"])
def test_item_17_a_poll_answer_naming_a_local_status_changes_nothing(synced, settings, caplog,
                                                                      word):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    caplog.set_level(logging.WARNING, logger="django_mmc")
    rows = [notification(number="+15005550004", code=str(i)) for i in range(2)]
    for row in rows:
        deliver_notification(row.pk, task_id=f"t{row.pk}")
    synced.wait_for_webhooks(timeout=5)
    old = timezone.now() - timedelta(hours=1)
    Notification.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=Status.ACCEPTED, status_changed_at=old, checked_at=None)
    for row in Notification.objects.filter(pk__in=[r.pk for r in rows]):
        platform_says(synced, row.platform_id, word)

    totals = poll_notifications()

    assert totals["polled"] == 2 and totals["changed"] == 0
    for row in Notification.objects.filter(pk__in=[r.pk for r in rows]):
        assert row.status == Status.ACCEPTED, row.status
        assert row.status_changed_at == old and row.checked_at is not None
    logged = [r.getMessage() for r in caplog.records if repr(word) in r.getMessage()]
    assert len(logged) == 1, logged  # once per word, not once per row
