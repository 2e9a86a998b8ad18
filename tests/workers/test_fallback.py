"""Channel fallback (:mod:`django_mmc.workers.fallback`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import django_mmc
from django_mmc.models import Notification
from django_mmc.policy import Outcome
from django_mmc.polling import poll_notifications
from django_mmc.status import Status
from django_mmc.workers.fallback import start_fallback
from django_mmc.workers.notifications import deliver_notification

pytestmark = pytest.mark.django_db


def fail_and_poll(sandbox, settings, row):
    settings.MMC = {**settings.MMC, "POLL_AFTER": 60}
    deliver_notification(row.pk, task_id="t")
    sandbox.wait_for_webhooks(timeout=10)
    Notification.objects.filter(pk=row.pk).update(
        status_changed_at=timezone.now() - timedelta(hours=1))


def test_not_on_whatsapp_falls_back_to_sms_once(synced, settings,
                                                django_capture_on_commit_callbacks):
    row = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                       channel_type="WHATSAPP", fallback=["WHATSAPP", "SMS"])
    assert row.fallback_channel_types == ["SMS"]
    fail_and_poll(synced, settings, row)
    with django_capture_on_commit_callbacks(execute=True):
        poll_notifications()
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.failure_code == "NOT_ON_CHANNEL"
    follow_up = row.fallback
    assert follow_up.channel_type == "SMS" and follow_up.fallback_channel_types == []
    assert follow_up.idempotency_key != row.idempotency_key
    assert deliver_notification(follow_up.pk, task_id="t2").outcome is Outcome.DONE
    assert synced.wait_for_webhooks(timeout=10)
    remote = {n["id"]: n for n in synced.notifications()}
    assert remote[Notification.objects.get(pk=follow_up.pk).platform_id]["status"] == "READ"
    # Never a second follow-up for the same failure.
    assert start_fallback(row.pk) is None
    assert Notification.objects.filter(fallback_of=row).count() == 1


def test_no_fallback_without_a_chain_or_after_delivery(synced, settings,
                                                       django_capture_on_commit_callbacks):
    plain = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                         channel_type="WHATSAPP")
    fail_and_poll(synced, settings, plain)
    with django_capture_on_commit_callbacks(execute=True):
        poll_notifications()
    assert Notification.objects.get(pk=plain.pk).status == Status.FAILED
    assert Notification.objects.count() == 1
    delivered = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                             fallback=["WHATSAPP", "SMS"])
    Notification.objects.filter(pk=delivered.pk).update(
        status=Status.FAILED, failure_code="NOT_ON_CHANNEL", delivered_at=timezone.now())
    assert start_fallback(delivered.pk) is None


def test_fallback_setting_is_the_default_chain(directory, settings):
    settings.MMC = {**settings.MMC, "FALLBACK_CHANNEL_TYPES": ["WHATSAPP", "SMS"]}
    row = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert row.fallback_channel_types == ["SMS"]
    none = django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, fallback=False)
    assert none.fallback_channel_types == []


def test_the_fallback_listens_for_failed_notifications_once_the_app_is_ready():
    from django_mmc import transitions

    assert transitions.hooks_for(Notification, Status.FAILED) == [start_fallback]


@pytest.mark.parametrize("allowed,falls_back", [(True, True), (False, False)])
def test_item_02_fallback_applies_the_consent_rules_of_a_direct_send(
        synced, settings, allowed, falls_back, django_capture_on_commit_callbacks):
    from django_mmc.api import set_consent

    settings.MMC = {**settings.MMC, "ALLOW_TRANSACTIONAL_TO_OPTED_OUT": allowed}
    row = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                       channel_type="WHATSAPP", fallback=["WHATSAPP", "SMS"],
                                       transactional=True)
    set_consent(row.recipient, "SMS", True)  # texted STOP to the SMS number
    fail_and_poll(synced, settings, row)
    with django_capture_on_commit_callbacks(execute=True):
        poll_notifications()
    assert Notification.objects.get(pk=row.pk).status == Status.FAILED
    assert Notification.objects.filter(fallback_of=row).exists() is falls_back
