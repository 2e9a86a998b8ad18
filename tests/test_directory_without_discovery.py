"""A directory the platform does not list: rows entered by hand in the
admin or declared in MMC["DIRECTORY"], kept by every sync, and a sync that
says plainly when a list endpoint is not there."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

import django_mmc
from django_mmc.checks import directory_problems
from django_mmc.client import MMCClient
from django_mmc.directory import sync_directory
from django_mmc.exceptions import MMCNotFoundError, MMCPermanentError
from django_mmc.models import Channel, ChannelGroup, Template
from django_mmc.models.directory import Origin

pytestmark = pytest.mark.django_db

DECLARED = {
    "channel_groups": [{"id": "7", "name": "Support", "channel_types": ["WHATSAPP", "sms"]}],
    "templates": [{"id": "101", "name": "order_shipped", "channel_types": ["WHATSAPP", "SMS"],
                   "parameters": ["first_name", {"name": "tracking_url", "required": False}]}],
}


def no_lists(monkeypatch: pytest.MonkeyPatch, status: int = 404) -> None:
    error = (MMCNotFoundError("no such list", status_code=404, code="NOT_FOUND")
             if status == 404 else
             MMCPermanentError("not allowed", status_code=403, code="FORBIDDEN"))

    def refuse(self: Any) -> list:
        raise error

    monkeypatch.setattr(MMCClient, "list_channel_groups", refuse)
    monkeypatch.setattr(MMCClient, "list_templates", refuse)


def hand_entered() -> tuple[ChannelGroup, Template]:
    group = ChannelGroup.objects.create(platform_id="900", name="By hand", origin=Origin.ADMIN)
    Channel.objects.create(platform_id="900:SMS", group=group, channel_type="SMS")
    template = Template.objects.create(platform_id="901", name="by_hand", origin=Origin.ADMIN,
                                       channel_types=["SMS"])
    return group, template


@pytest.mark.parametrize("status", [404, 403])
def test_a_missing_list_endpoint_is_said_plainly_and_keeps_every_row(sandbox, monkeypatch,
                                                                      status):
    sync_directory()
    hand_entered()
    no_lists(monkeypatch, status)
    out = StringIO()
    call_command("mmc_sync_directory", stdout=out)

    text = out.getvalue()
    assert f"The platform does not list channel groups (it answered {status} " in text
    assert "The platform does not list templates" in text
    assert "Kept 1 channel group(s) and 1 template(s) entered by hand" in text
    # Nothing is deactivated on a list that is not there, synced rows included.
    assert not ChannelGroup.objects.filter(is_active=False).exists()
    assert not Template.objects.filter(is_active=False).exists()
    assert not Channel.objects.filter(is_active=False).exists()


def test_an_empty_list_keeps_the_rows_entered_by_hand(sandbox, monkeypatch):
    sync_directory()
    group, template = hand_entered()
    monkeypatch.setattr(MMCClient, "list_channel_groups", lambda self: [])
    monkeypatch.setattr(MMCClient, "list_templates", lambda self: [])
    out = StringIO()
    call_command("mmc_sync_directory", stdout=out)

    assert "The platform listed no channel groups." in out.getvalue()
    assert "The platform listed no templates." in out.getvalue()
    assert set(ChannelGroup.objects.filter(is_active=True)) == {group}
    assert set(Template.objects.filter(is_active=True)) == {template}
    assert group.channels.get().is_active
    assert ChannelGroup.objects.filter(origin=Origin.PLATFORM, is_active=False).exists()


def test_a_sync_never_overwrites_a_row_entered_by_hand(sandbox):
    ChannelGroup.objects.create(platform_id="7", name="Ours", origin=Origin.ADMIN)
    sync_directory()
    group = ChannelGroup.objects.get(platform_id="7")
    assert group.name == "Ours" and group.origin == Origin.ADMIN and group.synced_at is None


def test_declared_rows_are_created_kept_and_used_for_sends(sandbox, settings, monkeypatch):
    settings.MMC = {**settings.MMC, "DIRECTORY": DECLARED}
    no_lists(monkeypatch)
    report = sync_directory()

    group = ChannelGroup.objects.get()
    template = Template.objects.get()
    assert report["unavailable"] == {"channel_groups": "404 NOT_FOUND",
                                     "templates": "404 NOT_FOUND"}
    assert report["kept"] == {"channel_groups": 1, "templates": 1}
    assert (group.origin, group.name, group.channel_types()) == (
        Origin.SETTINGS, "Support", ["SMS", "WHATSAPP"])
    assert template.origin == Origin.SETTINGS
    assert template.parameters == [{"name": "first_name", "required": True},
                                   {"name": "tracking_url", "required": False}]
    notification = django_mmc.send_notification("+353861234567", "order_shipped",
                                                 {"first_name": "Ann"}, channel_group=group)
    assert notification.template == template and notification.channel_type == "WHATSAPP"

    # Declared no more: marked inactive, never deleted.
    settings.MMC = {**settings.MMC, "DIRECTORY": {"channel_groups": [], "templates": []}}
    sync_directory()
    assert not ChannelGroup.objects.get().is_active and not Template.objects.get().is_active


def test_staff_enter_channel_groups_and_templates_by_hand(admin_client: Any, sandbox):
    response = admin_client.post(reverse("admin:django_mmc_channelgroup_add"), {
        "platform_id": "77", "name": "Support", "channel_types_text": "whatsapp, SMS",
        "is_active": "on", "channels-TOTAL_FORMS": "0", "channels-INITIAL_FORMS": "0"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    group = ChannelGroup.objects.get(platform_id="77")
    assert group.origin == Origin.ADMIN and group.channel_types() == ["SMS", "WHATSAPP"]

    response = admin_client.post(reverse("admin:django_mmc_template_add"), {
        "platform_id": "555", "name": "welcome_back", "description": "", "preview": "Hi",
        "channel_types_text": "WHATSAPP", "required_parameters": "first_name",
        "optional_parameters": "code", "is_active": "on"})
    assert response.status_code == 302
    template = Template.objects.get(platform_id="555")
    assert template.origin == Origin.ADMIN and template.channel_types == ["WHATSAPP"]
    assert template.required_parameters == ["first_name"] and template.parameter_names == [
        "first_name", "code"]

    change = reverse("admin:django_mmc_channelgroup_change", args=[group.pk])
    admin_client.post(change, {
        "platform_id": "77", "name": "Support", "channel_types_text": "SMS",
        "channels-TOTAL_FORMS": "0", "channels-INITIAL_FORMS": "0"})
    group.refresh_from_db()
    assert not group.is_active and group.channel_types() == ["SMS"]


def test_synced_rows_stay_read_only_in_the_admin(admin_client: Any, synced):
    group = ChannelGroup.objects.get(platform_id="7")
    change = reverse("admin:django_mmc_channelgroup_change", args=[group.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="name"' not in page.content.decode()
    admin_client.post(change, {"platform_id": "7", "name": "Renamed",
                               "channel_types_text": "SMS"})
    group.refresh_from_db()
    assert group.name == "Support"


@pytest.mark.parametrize(("value", "problem"), [
    (None, None),
    (DECLARED, None),
    ([], "must be a dict"),
    ({"groups": []}, "no key 'groups'"),
    ({"templates": [{"id": "1"}]}, "needs 'name'"),
    ({"channel_groups": [{"id": "7"}]}, "needs 'channel_types'"),
    ({"channel_groups": [{"id": "7", "channel_types": "SMS"}]}, "channel_types must be"),
    ({"templates": [{"id": "1", "name": "a", "parameters": [{"nom": "x"}]}]}, "parameters"),
    ({"templates": [{"id": "1", "name": "a"}, {"id": 1, "name": "b"}]}, "more than once"),
])
def test_the_directory_setting_is_checked(value, problem):
    problems = directory_problems(value)
    if problem is None:
        assert problems == []
    else:
        assert problems and problem in problems[0], problems
