"""Races, on real connections (transactional database): the same delivery
twice at once over HTTP, and processing that meets a worker mid-open."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.db import connections, transaction

from django_mmc.models import ChannelGroup, Dialogue, Message, Recipient, WebhookEvent
from django_mmc.processing import process_event
from django_mmc.status import DialogueStatus
from django_mmc.testing import build_event, signed_delivery
from django_mmc.workers.dialogues import opened
from tests.helpers import SUPPORT_GROUP_ID, race
from tests.markers import needs_postgresql

from .cases import SECRETS, WebhookCase, load_event

NUMBER = "+353861234567"


def in_thread(func: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``func`` in a thread with its own database connection."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = func()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def wait_until_blocked_on_a_lock(timeout: float = 10) -> None:
    """Until another connection of this database waits for a row lock."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("nothing waited for the lock")


def post_at_once(url: str, body: bytes, headers: dict[str, str], copies: int = 2
                 ) -> list[int]:
    """POST the same delivery from ``copies`` threads released together."""
    def post() -> int:
        return requests.post(url, data=body, headers=headers, timeout=10).status_code

    return race([post] * copies, timeout=15)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
class TestConcurrentDeliveries(WebhookCase):
    def test_the_same_event_posted_twice_at_once_is_stored_once(
        self, live_server: Any, private_queue: Any
    ) -> None:
        url = live_server.url + self.url()
        rounds = 5
        for index in range(rounds):
            event = load_event("notification.status", f"evt_{index}")
            body, headers = signed_delivery(event, SECRETS["support"])

            assert sorted(post_at_once(url, body, headers)) == [200, 202], index
            assert WebhookEvent.objects.filter(event_id=f"evt_{index}").count() == 1
        assert WebhookEvent.objects.count() == rounds
        # Committed first, then handed over in one batch: nobody took the
        # batch task yet, so every event found it waiting.
        tasks = private_queue.tasks()
        assert len(tasks) == 1 and b"process_pending_events" in tasks[0]
        assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"PENDING"}


@needs_postgresql
@pytest.mark.django_db(transaction=True)
class TestProcessingMeetsTheOpeningWorker(WebhookCase):
    """The platform's events for a dialogue we are opening can be processed
    while the worker that opens it still holds its row (it locks the row
    for the platform call, then stores the platform id)."""

    @pytest.mark.parametrize("event_type", ["dialogue.opened", "message.received"])
    def test_the_event_joins_the_dialogue_the_worker_opened(
        self, event_type: str, private_queue: Any
    ) -> None:
        group = ChannelGroup.objects.create(platform_id=SUPPORT_GROUP_ID, name="Support")
        ours = Dialogue.objects.create(
            agent_key="support", recipient=Recipient.objects.for_number(NUMBER),
            channel_group=group, channel_type="WHATSAPP", status=DialogueStatus.OPENING)
        fields: dict[str, Any] = {"channel_type": "WHATSAPP"}
        if event_type == "message.received":
            fields.update(message="55101", text="Hello")
        else:
            fields.update(initiated_by="AGENT")
        stored = self.store(build_event(event_type, dialogue="9002", recipient=NUMBER,
                                        channel_group=SUPPORT_GROUP_ID, **fields))

        locked = threading.Event()
        release = threading.Event()

        def opening_worker() -> None:
            # What workers.dialogues.open_on_platform does around the platform call.
            with transaction.atomic():
                dialogue = Dialogue.objects.select_for_update().get(pk=ours.pk)
                locked.set()
                release.wait(10)
                opened(dialogue, "9002")

        worker, worker_outcome = in_thread(opening_worker)
        assert locked.wait(10)
        processing, outcome = in_thread(lambda: process_event(stored.pk))
        wait_until_blocked_on_a_lock()
        release.set()
        worker.join(10)
        processing.join(10)

        assert "error" not in worker_outcome and "error" not in outcome
        stored.refresh_from_db()
        assert stored.state == WebhookEvent.State.PROCESSED, stored.error
        dialogue = Dialogue.objects.get()
        assert dialogue.pk == ours.pk
        assert dialogue.platform_id == "9002" and dialogue.status == DialogueStatus.OPEN
        if event_type == "message.received":
            assert Message.objects.get().dialogue_id == ours.pk
