# tests/test_delivery_reports.py in your project
import pytest
from django.urls import reverse

import django_mmc
from django_mmc.processing import process_event
from django_mmc.models import Channel, ChannelGroup, Notification, Template, WebhookEvent
from django_mmc.testing import build_event, signed_delivery

SECRET = "test-webhook-secret"


@pytest.fixture
def mmc_config(settings, db):
    settings.MMC = {
        "CLIENT_ID": "test-client",
        "CLIENT_SECRET": "test-secret",
        "ORGANISATION_ID": "1001",
        "AGENTS": {"support": {"ID": "17", "WEBHOOK_SECRETS": [SECRET]}},
        "DEFAULT_AGENT": "support",
        "DEFAULT_CHANNEL_GROUP": "7",
    }
    group = ChannelGroup.objects.create(platform_id="7", name="Support")
    Channel.objects.create(platform_id="48", group=group, channel_type="WHATSAPP")
    Template.objects.create(
        platform_id="101", name="order_shipped", channel_types=["WHATSAPP"],
        parameters=[{"name": "first_name", "required": True}],
    )


def post_delivery(client, event, secret):
    body, headers = signed_delivery(event, secret)
    return client.post(
        reverse("django_mmc:webhook", args=["support"]),
        body,
        content_type=headers["Content-Type"],
        headers={"X-MMC-Signature": headers["X-MMC-Signature"]},
    )


def test_delivery_report_updates_the_notification(client, mmc_config):
    notification = django_mmc.send_notification(
        "+353861234567", "order_shipped", {"first_name": "Ann"}
    )
    # As if a worker had sent it and the platform had answered with id 79746.
    Notification.objects.filter(pk=notification.pk).update(platform_id="79746", status="ACCEPTED")

    event = build_event("notification.status", notification="79746", status="DELIVERED")
    response = post_delivery(client, event, SECRET)
    assert response.status_code == 202  # stored; a worker applies it after the commit

    stored = WebhookEvent.objects.get(event_id=event["data"]["id"])
    assert process_event(stored.pk) == "PROCESSED"  # what that worker does
    notification.refresh_from_db()
    assert notification.status == "DELIVERED"

    # The platform delivers at least once: a repeat is acknowledged and changes nothing.
    assert post_delivery(client, event, SECRET).status_code == 200


def test_a_wrong_signature_is_refused(client, mmc_config):
    event = build_event("notification.status", notification="79746", status="SENT")
    response = post_delivery(client, event, "not-the-secret")
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()
