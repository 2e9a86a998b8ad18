"""The directory admin: channel groups, templates and "Sync from the platform"."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from django_mmc.exceptions import MMCAPIError
from tests.admin.helpers import (
    follow_messages,
    run_action,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["channelgroup", "template"])
def test_sync_action_and_button_messages(admin_client: Any, directory: dict, monkeypatch: Any,
                                         model: str) -> None:
    calls = []

    def fake_sync() -> dict[str, int]:
        calls.append(1)
        return {"channel_groups": 2, "channels": 3, "templates": 5}

    monkeypatch.setattr("django_mmc.directory.sync_directory", fake_sync)
    obj = directory["support"] if model == "channelgroup" else directory["otp"]
    expected = ("Synced from the platform: 2 channel groups, 3 channels and 5 templates "
                "are active.")
    response = run_action(admin_client, model, "sync_from_platform", [obj])
    assert expected in follow_messages(response)
    button = admin_client.post(reverse(f"admin:django_mmc_{model}_sync"), follow=True)
    assert expected in follow_messages(button)
    assert len(calls) == 2


def test_sync_failure_is_reported(admin_client: Any, monkeypatch: Any) -> None:
    def failing() -> dict[str, int]:
        raise MMCAPIError("connection refused")

    monkeypatch.setattr("django_mmc.directory.sync_directory", failing)
    response = admin_client.post(reverse("admin:django_mmc_channelgroup_sync"), follow=True)
    assert follow_messages(response)[0].startswith("Could not sync from the platform:")
