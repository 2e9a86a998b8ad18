"""Rows, users and requests the admin tests share."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_mmc.client.resources import NotificationResource
from django_mmc.models import (
    Dialogue,
    Notification,
    Recipient,
    WebhookEvent,
)
from django_mmc.status import DialogueStatus

NUMBER = "+353861234567"


OTHER_NUMBER = "+353861234568"


SEND_URL = "admin:django_mmc_notification_send"


MODELS = ["recipient", "channelgroup", "template", "notification", "dialogue", "message",
          "webhookevent", "consentchange"]


ROW_OF = {"recipient": "recipient", "channelgroup": "channel_group", "template": "template",
          "notification": "notification", "dialogue": "dialogue", "message": "inbound",
          "webhookevent": "event", "consentchange": "consent"}


#: The management form of the (read-only) consent history inline.
CONSENT_INLINE = {"consent_changes-TOTAL_FORMS": "0", "consent_changes-INITIAL_FORMS": "0",
                  "consent_changes-MIN_NUM_FORMS": "0", "consent_changes-MAX_NUM_FORMS": "0"}


def make_user(django_user_model: Any, username: str, *perms: str, staff: bool = True) -> Any:
    user = django_user_model.objects.create_user(username, password="pw", is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(
            content_type__app_label=app_label, codename=codename))
    return user


def make_notification(directory: dict, number: str = NUMBER, **fields: Any) -> Notification:
    recipient = Recipient.objects.for_number(number)
    values = {"template": directory["order_shipped"], "channel_group": directory["support"],
              "channel_type": "WHATSAPP", "context": {"first_name": "Ann"}}
    values.update(fields)
    return Notification.objects.create(recipient=recipient, **values)


def make_dialogue(directory: dict, number: str = NUMBER, **fields: Any) -> Dialogue:
    values = {"agent_key": "support", "channel_group": directory["support"],
              "channel_type": "WHATSAPP", "status": DialogueStatus.OPEN,
              "platform_id": f"d-{number[-4:]}", "opened_at": timezone.now()}
    values.update(fields)
    return Dialogue.objects.create(recipient=Recipient.objects.for_number(number), **values)


def make_event(event_id: str = "evt_1", state: str = WebhookEvent.State.PROCESSED
               ) -> WebhookEvent:
    body = {"data": {"type": "events", "id": event_id,
                     "attributes": {"eventType": "notification.status", "status": "SENT"}}}
    return WebhookEvent.objects.create(
        event_id=event_id, agent_key="support", event_type="notification.status",
        body=json.dumps(body), signature="ab" * 32, subject_id="79746", state=state)


def follow_messages(response: Any) -> list[str]:
    return [str(m) for m in list(response.context["messages"])]


def send_data(directory: dict, **overrides: Any) -> dict[str, Any]:
    data = {"to": NUMBER, "template": directory["order_shipped"].pk,
            "channel_group": directory["support"].pk, "channel_type": "WHATSAPP",
            "param_first_name": "Ann", "param_tracking_url": "https://t.example/1"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def run_action(client: Any, model: str, action: str, objects: list[Any]) -> Any:
    return client.post(reverse(f"admin:django_mmc_{model}_changelist"), {
        "action": action, "_selected_action": [o.pk for o in objects]}, follow=True)


def fresh(obj: Any) -> Any:
    obj.refresh_from_db()
    return obj


class FakeClient:
    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.calls: list[list[str]] = []

    def get_notifications(self, ids: list[str]) -> list[NotificationResource]:
        self.calls.append(list(ids))
        return [NotificationResource(id=i, status=self.statuses[i]) for i in ids
                if i in self.statuses]


def changelist_queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200
    return len(queries)
