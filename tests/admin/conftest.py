"""Fixtures of the admin tests: one row of every model, a platform that
does nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from django_mmc import api
from django_mmc.models import (
    ConsentChange,
    Message,
)
from django_mmc.status import Direction, Status
from tests.admin.helpers import (
    FakeClient,
    make_dialogue,
    make_event,
    make_notification,
)


@pytest.fixture
def rows(directory: dict) -> dict[str, Any]:
    """One row of every model."""
    notification = make_notification(directory, status=Status.FAILED,
                                     failure_code="RECIPIENT_UNREACHABLE",
                                     failure_detail="The recipient's number cannot be reached.",
                                     platform_id="79746")
    dialogue = make_dialogue(directory)
    inbound = Message.objects.create(
        dialogue=dialogue, direction=Direction.INBOUND, text="Where is my order?",
        status=Status.RECEIVED, platform_id="m-1", received_at=timezone.now(),
        files=[{"id": "9", "name": "photo.jpg", "contentType": "image/jpeg", "size": 2048,
                "url": "https://files.example/9"},
               {"id": "10", "name": "evil.html", "url": "javascript:alert(1)"}])
    outbound = Message.objects.create(
        dialogue=dialogue, direction=Direction.OUTBOUND, text="It left today.",
        status=Status.DELIVERED, platform_id="m-2")
    event = make_event()
    api.set_consent(notification.recipient, "SMS", True, source="API", detail="STOP")
    consent = ConsentChange.objects.get()
    return {"notification": notification, "dialogue": dialogue, "inbound": inbound,
            "outbound": outbound, "event": event, "recipient": notification.recipient,
            "channel_group": directory["support"], "template": directory["order_shipped"],
            "consent": consent}


@pytest.fixture
def harmless_platform(monkeypatch: Any) -> None:
    monkeypatch.setattr("django_mmc.directory.sync_directory",
                        lambda: {"channel_groups": 0, "channels": 0, "templates": 0})
    monkeypatch.setattr("django_mmc.dispatch.enqueue", lambda *a, **k: True)
    monkeypatch.setattr("django_mmc.client.get_client",
                        lambda: FakeClient({"601": "DELIVERED"}))
