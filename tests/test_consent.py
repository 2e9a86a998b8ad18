"""Consent (:mod:`django_mmc.consent`): opting out and in, keywords."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

import django_mmc
from django_mmc.api import set_consent
from django_mmc.models import ConsentChange, Notification, Recipient
from tests.helpers import SUPPORT_GROUP_ID

pytestmark = pytest.mark.django_db


def test_opted_out_recipients_are_refused_unless_transactional(directory, settings):
    assert set_consent("+353861234567", "whatsapp", True) is True
    assert set_consent("+353861234567", "WHATSAPP", True) is False  # no change, no log
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert "opted out" in " ".join(error.value.message_dict["to"])
    assert Notification.objects.count() == 0
    django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, channel_type="SMS")
    django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, transactional=True)
    settings.MMC = {**settings.MMC, "ALLOW_TRANSACTIONAL_TO_OPTED_OUT": False}
    with pytest.raises(ValidationError):
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                     transactional=True)
    assert [(c.channel_type, c.opted_out, c.source) for c in ConsentChange.objects.all()] == [
        ("WHATSAPP", True, "API")]


def test_campaigns_leave_opted_out_recipients_out(directory):
    set_consent("+353861234568", "WHATSAPP", True)
    sent = django_mmc.send_notifications(["+353861234567", "+353861234568"], "otp",
                                         {"code": "1"})
    assert sent == 1
    assert list(Notification.objects.values_list("recipient__phone_number", flat=True)) == [
        "+353861234567"]


def test_opting_back_in(directory):
    set_consent("+353861234567", "WHATSAPP", True)
    set_consent("+353861234567", "WHATSAPP", False, source="ADMIN")
    assert Recipient.objects.get().opted_out_channel_types == []
    django_mmc.send_notification("+353861234567", "otp", {"code": "1"})


@pytest.mark.parametrize("text,expected", [
    ("STOP", True), (" stop. ", True), ("Unsubscribe", True), ("START", False),
    ("please stop sending", None), ("", None),
])
def test_consent_keywords(text, expected):
    from django_mmc.consent import consent_keyword

    assert consent_keyword(text) is expected


def test_an_inbound_stop_opts_the_recipient_out(directory, django_capture_on_commit_callbacks):
    from django_mmc.models import WebhookEvent
    from django_mmc.signals import consent_changed
    from django_mmc.testing import build_event

    changes = []

    def receiver(sender, recipient, channel_type, opted_out, source, **kwargs):
        changes.append((recipient.phone_number, channel_type, opted_out, source))

    consent_changed.connect(receiver)
    try:
        for index, text in enumerate(["STOP", "Start"]):
            event = build_event("message.received", event_id=f"evt_{index}",
                                message=f"m-{index}", dialogue="d-1",
                                recipient="+353861234567", channel_group=SUPPORT_GROUP_ID,
                                channel_type="WHATSAPP", text=text)
            stored = WebhookEvent.objects.create(
                event_id=f"evt_{index}", agent_key="support", event_type="message.received",
                body=json.dumps(event))
            from django_mmc.processing import process_event

            with django_capture_on_commit_callbacks(execute=True):
                assert process_event(stored.pk) == WebhookEvent.State.PROCESSED
            if index == 0:
                assert Recipient.objects.get().opted_out_channel_types == ["WHATSAPP"]
                with pytest.raises(ValidationError):
                    django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    finally:
        consent_changed.disconnect(receiver)
    assert changes == [("+353861234567", "WHATSAPP", True, "KEYWORD"),
                       ("+353861234567", "WHATSAPP", False, "KEYWORD")]
    assert Recipient.objects.get().opted_out_channel_types == []
    assert ConsentChange.objects.filter(source="KEYWORD").count() == 2


def test_item_03_keywords_apply_in_the_order_they_were_written(directory):
    from datetime import timedelta

    from django.utils import timezone

    from django_mmc.models import WebhookEvent
    from django_mmc.processing import process_event
    from django_mmc.testing import build_event

    written = timezone.now() - timedelta(minutes=5)

    def deliver(index, text, at):
        event = build_event("message.received", event_id=f"evt_kw_{index}",
                            message=f"m-kw-{index}", dialogue="d-kw", recipient="+353861234567",
                            channel_group=SUPPORT_GROUP_ID, channel_type="SMS", text=text,
                            occurred_at=at)
        stored = WebhookEvent.objects.create(
            event_id=f"evt_kw_{index}", agent_key="support", event_type="message.received",
            body=json.dumps(event))
        assert process_event(stored.pk) == WebhookEvent.State.PROCESSED

    # STOP written second arrives first; START written first arrives late.
    deliver(1, "STOP", written + timedelta(seconds=30))
    deliver(2, "START", written)
    assert Recipient.objects.get().has_opted_out("SMS")
    log = list(ConsentChange.objects.order_by("created_at").values_list(
        "opted_out", "superseded"))
    assert log == [(True, False), (False, True)]


def test_item_03_a_repeated_keyword_counts_for_the_order(directory):
    from datetime import timedelta

    from django.utils import timezone

    from django_mmc.consent import apply_keyword

    recipient = Recipient.objects.for_number("+353861234567")
    t0 = timezone.now() - timedelta(minutes=5)
    assert apply_keyword(recipient, "SMS", "STOP", t0) is True
    assert apply_keyword(recipient, "SMS", "STOP", t0 + timedelta(minutes=2)) is False
    # A START written between the two STOPs arrives last: the later STOP wins.
    assert apply_keyword(recipient, "SMS", "START", t0 + timedelta(minutes=1)) is False
    assert Recipient.objects.get().has_opted_out("SMS")
