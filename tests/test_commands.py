"""The management commands, against the sandbox and the database."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

import django_mmc
from django_mmc.models import Channel, ChannelGroup, Notification, Template, WebhookEvent
from django_mmc.status import Status
from django_mmc.testing import build_event
from django_mmc.workers.notifications import deliver_notification
from tests.helpers import (
    ORDER_SHIPPED_TEMPLATE_ID,
    SALES_GROUP_ID,
    SUPPORT_GROUP_ID,
    SUPPORT_SMS_CHANNEL_ID,
)

pytestmark = pytest.mark.django_db


def run(*args, **kwargs) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_sync_directory_creates_updates_and_deactivates(sandbox):
    stale = Template.objects.create(platform_id="999", name="gone")
    output = run("mmc_sync_directory")
    assert "Synced 2 channel group(s), 3 channel(s)" in output
    assert set(ChannelGroup.objects.values_list("platform_id", flat=True)) == {
        SUPPORT_GROUP_ID, SALES_GROUP_ID}
    assert Channel.objects.get(platform_id=SUPPORT_SMS_CHANNEL_ID).channel_type == "SMS"
    shipped = Template.objects.get(platform_id=ORDER_SHIPPED_TEMPLATE_ID)
    assert shipped.required_parameters == ["first_name"]
    assert "{{first_name}}" in shipped.preview
    stale.refresh_from_db()
    assert stale.is_active is False  # marked, never deleted
    run("mmc_sync_directory")  # idempotent
    assert Template.objects.filter(platform_id=ORDER_SHIPPED_TEMPLATE_ID).count() == 1


def test_sync_directory_reports_platform_errors(sandbox):
    sandbox.faults.inject("503", count=1, path="/channel-groups")
    with pytest.raises(CommandError, match="Sync failed"):
        run("mmc_sync_directory")


def test_poll_statuses_command(sandbox, settings):
    run("mmc_sync_directory")
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    deliver_notification(notification.pk, task_id="t")
    sandbox.wait_for_webhooks(timeout=10)
    Notification.objects.update(status_changed_at=timezone.now() - timedelta(hours=1))
    output = run("mmc_poll_statuses")
    assert "Polled 1 notification(s) in 1 request(s); 1 changed." in output
    assert Notification.objects.get().status == Status.READ


def _stored(event: dict, state=WebhookEvent.State.FAILED) -> WebhookEvent:
    return WebhookEvent.objects.create(
        event_id=event["data"]["id"], agent_key="support",
        event_type=event["data"]["attributes"]["eventType"], body=json.dumps(event),
        subject_id=event["data"]["relationships"]["notification"]["data"]["id"], state=state)


def test_process_events_again(directory):
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    Notification.objects.filter(pk=notification.pk).update(platform_id="p-1",
                                                           status=Status.ACCEPTED)
    failed = _stored(build_event("notification.status", event_id="evt_1",
                                 notification="p-1", status="DELIVERED"))
    output = run("mmc_process_events")
    assert "Processed 1 event(s): 1 processed." in output
    failed.refresh_from_db()
    assert failed.state == WebhookEvent.State.PROCESSED
    assert Notification.objects.get().status == Status.DELIVERED
    # By id, whatever the state; unknown ids are named.
    assert "Processed 1 event(s)" in run("mmc_process_events", "--id", "evt_1")
    with pytest.raises(CommandError, match="evt_nope"):
        run("mmc_process_events", "--id", "evt_nope")


def test_delete_old_events_keeps_failed_and_recent(directory):
    old = timezone.now() - timedelta(days=40)
    for index, state in enumerate([WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED,
                                   WebhookEvent.State.FAILED]):
        event = _stored(build_event("notification.status", event_id=f"evt_old_{index}",
                                    notification="x", status="SENT"), state=state)
        WebhookEvent.objects.filter(pk=event.pk).update(received_at=old)
    _stored(build_event("notification.status", event_id="evt_new", notification="x",
                        status="SENT"), state=WebhookEvent.State.PROCESSED)
    assert "Deleted 2 webhook event(s) older than 30 day(s)." in run("mmc_delete_old_events")
    assert sorted(WebhookEvent.objects.values_list("event_id", flat=True)) == [
        "evt_new", "evt_old_2"]
    with pytest.raises(CommandError):
        run("mmc_delete_old_events", "--days", "-1")


def test_sweep_outbox_command(directory, settings):
    settings.MMC = {**settings.MMC, "OUTBOX_DELAY": 60}
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert "deliver_notification: 0" in run("mmc_sweep_outbox")  # not overdue yet
    Notification.objects.filter(pk=notification.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert "deliver_notification: 1" in run("mmc_sweep_outbox")
