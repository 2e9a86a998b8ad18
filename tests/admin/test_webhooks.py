"""The webhook events admin: the list, the page and "Process again"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from django_mmc.models import (
    Message,
    WebhookEvent,
)
from django_mmc.status import Direction, Status
from tests.admin.helpers import (
    changelist_queries,
    follow_messages,
    make_dialogue,
    make_event,
    make_notification,
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


def _event(event_id: str, event_type: str, subject: str, status: str | None = None,
           state: str = WebhookEvent.State.PROCESSED) -> WebhookEvent:
    kind = event_type.split(".")[0]
    attributes = {"eventType": event_type}
    if status:
        attributes["status"] = status
    body = {"data": {"type": "events", "id": event_id, "attributes": attributes,
                     "relationships": {kind: {"data": {"type": f"{kind}s", "id": subject}}}}}
    return WebhookEvent.objects.create(event_id=event_id, agent_key="support",
                                       event_type=event_type, body=json.dumps(body),
                                       subject_id=subject, state=state)


def test_an_event_links_to_what_it_is_about_and_shows_the_status_it_carried(
        admin_client: Any, directory: dict) -> None:
    notification = make_notification(directory, status=Status.DELIVERED, platform_id="79746")
    dialogue = make_dialogue(directory, platform_id="9002")
    message = Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                                     text="Hello", status=Status.READ, platform_id="55012")
    _event("e1", "notification.status", "79746", "DELIVERED")
    _event("e2", "message.status", "55012", "READ")
    _event("e3", "dialogue.closed", "9002")
    unknown = _event("e4", "notification.status", "00000", "<script>")
    html = admin_client.get(reverse("admin:django_mmc_webhookevent_changelist")
                            ).content.decode()
    for obj, model in ((notification, "notification"), (message, "message"),
                       (dialogue, "dialogue")):
        assert reverse(f"admin:django_mmc_{model}_change", args=[obj.pk]) in html
    assert 'class="mmc-status mmc-status-delivered"' in html
    assert 'class="mmc-status mmc-status-read"' in html
    assert "<script>" not in html  # an unknown status word is not shown at all
    page = admin_client.get(reverse("admin:django_mmc_webhookevent_change",
                                    args=[unknown.pk])).content.decode()
    assert "00000" in page  # not known here: the id, without a link


def test_the_events_list_queries_do_not_grow_with_the_subjects(admin_client: Any,
                                                               directory: dict) -> None:
    url = reverse("admin:django_mmc_webhookevent_changelist")
    counter = iter(range(1000))

    def add(count: int) -> None:
        for _ in range(count):
            i = next(counter)
            make_notification(directory, f"+35386{3000000 + i:07d}", platform_id=f"n{i}")
            dialogue = make_dialogue(directory, f"+35386{4000000 + i:07d}", platform_id=f"d{i}")
            Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND, text="x",
                                   status=Status.SENT, platform_id=f"m{i}")
            _event(f"n-{i}", "notification.status", f"n{i}", "SENT")
            _event(f"m-{i}", "message.status", f"m{i}", "SENT")
            _event(f"d-{i}", "dialogue.opened", f"d{i}")

    add(2)
    admin_client.get(url)
    few = changelist_queries(admin_client, url)
    add(12)
    assert changelist_queries(admin_client, url) == few


def test_a_failed_events_page_has_process_again(admin_client: Any, monkeypatch: Any) -> None:
    queued = []
    monkeypatch.setattr("django_mmc.dispatch.enqueue",
                        lambda work, pk, **kw: queued.append(pk) or True)
    failed = make_event("evt_f", WebhookEvent.State.FAILED)
    processed = make_event("evt_p", WebhookEvent.State.PROCESSED)
    page = reverse("admin:django_mmc_webhookevent_change", args=[failed.pk])
    assert 'id="mmc-process-again"' in admin_client.get(page).content.decode()
    assert 'id="mmc-process-again"' not in admin_client.get(reverse(
        "admin:django_mmc_webhookevent_change", args=[processed.pk])).content.decode()
    response = admin_client.post(reverse("admin:django_mmc_webhookevent_process_again",
                                         args=[failed.pk]), follow=True)
    assert response.redirect_chain[-1][0] == page
    assert queued == [failed.pk]
    failed.refresh_from_db()
    assert failed.state == WebhookEvent.State.PENDING
