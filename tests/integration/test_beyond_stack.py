"""Priorities, scheduling, fallback and consent on the whole stack: a real
worker, the sandbox and signed webhooks over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import django_mmc
from django_mmc.models import Message, Notification, Recipient
from django_mmc.status import Direction, Status
from django_mmc.workers.outbox import sweep_outbox

pytestmark = pytest.mark.integration


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
