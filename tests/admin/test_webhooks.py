"""The webhook events admin: the list, the page and "Process again"."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from django_mmc.models import (
    WebhookEvent,
)
from tests.admin.helpers import (
    follow_messages,
    make_event,
    run_action,
)

pytestmark = pytest.mark.django_db


def test_reprocess_action_message(admin_client: Any, monkeypatch: Any) -> None:
    queued = []
    def enqueue(work: Any, pk: int, **kwargs: Any) -> bool:
        # The work's name, however the dispatcher spells it (a name or an enum).
        queued.append((str(getattr(work, "value", work)).rsplit(".", 1)[-1], pk))
        return True

    monkeypatch.setattr("django_mmc.dispatch.enqueue", enqueue)
    failed = make_event("evt_a", WebhookEvent.State.FAILED)
    processed = make_event("evt_b", WebhookEvent.State.PROCESSED)
    response = run_action(admin_client, "webhookevent", "process_again", [failed, processed])
    assert "2 webhook events queued to be processed again" in follow_messages(response)
    assert sorted(queued) == sorted([("process_event", failed.pk),
                                     ("process_event", processed.pk)])
    processed.refresh_from_db()
    assert processed.state == WebhookEvent.State.PENDING


def test_event_search_is_exact_on_the_event_or_subject_id(admin_client: Any) -> None:
    make_event("evt_a")
    other = make_event("evt_b")
    WebhookEvent.objects.filter(pk=other.pk).update(subject_id="55012")
    url = reverse("admin:django_mmc_webhookevent_changelist")

    def found(term: str) -> list[str]:
        response = admin_client.get(url, {"q": term})
        assert response.status_code == 200
        return sorted(e.event_id for e in response.context["cl"].result_list)

    assert found("evt_a") == ["evt_a"]
    assert found("55012") == ["evt_b"]
    assert found("79746") == ["evt_a"]
    # Platform ids are compared as they are: no case folding, no substrings.
    assert found("EVT_A") == []
    assert found("evt") == []
    assert found("5501") == []
