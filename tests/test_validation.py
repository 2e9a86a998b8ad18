"""Validating what business code asks for (:mod:`django_mmc.validation`):
WhatsApp's care window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

import django_mmc
from django_mmc.models import Message
from django_mmc.status import Direction, Status

pytestmark = pytest.mark.django_db


def inbound(dialogue, hours_ago):
    Message.objects.create(dialogue=dialogue, direction=Direction.INBOUND, text="hi",
                           status=Status.RECEIVED,
                           received_at=timezone.now() - timedelta(hours=hours_ago))


def test_free_text_only_inside_the_care_window(directory):
    dialogue = django_mmc.open_dialogue("+353861234567")
    assert dialogue.can_send_text() is False
    with pytest.raises(ValidationError) as error:
        dialogue.send_message("Hello")
    assert "template" in " ".join(error.value.message_dict["text"])
    dialogue.send_message(template="otp", context={"code": "1"})  # templates always go
    inbound(dialogue, hours_ago=25)
    assert dialogue.can_send_text() is False
    inbound(dialogue, hours_ago=2)
    assert dialogue.can_send_text() is True
    dialogue.send_message("Hello")
    assert dialogue.can_send_text("SMS") is True


def test_care_window_length_and_enforcement_are_settings(directory, settings):
    dialogue = django_mmc.open_dialogue("+353861234567")
    inbound(dialogue, hours_ago=30)
    settings.MMC = {**settings.MMC, "CARE_WINDOW_HOURS": 48}
    assert dialogue.can_send_text() is True
    settings.MMC = {**settings.MMC, "CARE_WINDOW_HOURS": 24, "ENFORCE_CARE_WINDOW": False}
    assert dialogue.can_send_text() is False
    dialogue.send_message("Allowed: enforcement is off")
