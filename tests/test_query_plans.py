"""The hot queries are served by indexes, and the webhook events table has
no index its queries do not use (every delivery writes each of them).
PostgreSQL plans, with sequential scans switched off so that a missing index
shows on a small table."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_mmc import polling
from django_mmc.models import WebhookEvent

State = WebhookEvent.State

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="query plans of PostgreSQL")


@pytest.fixture(autouse=True)
def _no_seq_scan(db: Any) -> Any:
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        yield
        cursor.execute("RESET enable_seqscan")


class TestWebhookEvents:
    """Each query on the events table is served by one of its few indexes."""

    EXPECTED = {"pkey", "mmc_event_id_unique", "mmc_event_subject_idx", "mmc_event_state_idx",
                "received_at"}

    def test_the_table_has_only_the_indexes_its_queries_use(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s",
                           [WebhookEvent._meta.db_table])
            names = {row[0] for row in cursor.fetchall()}
        assert len(names) == len(self.EXPECTED)
        assert all(any(part in name for name in names) for part in self.EXPECTED), names

    @pytest.mark.parametrize(("query", "index"), [
        (lambda: WebhookEvent.objects.filter(event_id="evt_1"), "mmc_event_id_unique"),
        (lambda: WebhookEvent.objects.filter(subject_id="79746"), "mmc_event_subject_idx"),
        (lambda: WebhookEvent.objects.filter(state=State.PENDING).order_by("received_at", "pk"),
         "mmc_event_state_idx"),
        (lambda: WebhookEvent.objects.filter(
            state__in=(State.PROCESSED, State.IGNORED), received_at__lt=timezone.now()),
         "mmc_event_state_idx"),
        (lambda: WebhookEvent.objects.order_by("-received_at")[:100], "received_at"),
    ])
    def test_a_query_uses_its_index(self, query: Any, index: str) -> None:
        assert index in query().explain()


@pytest.mark.parametrize(("query", "index"), [
    (polling.dialogues_due_for_last_look, "mmc_dialogue_last_look_idx"),
    (polling.due_for_poll, "mmc_notif_poll_idx"),
])
def test_the_pollers_queries_use_their_partial_indexes(query: Any, index: str) -> None:
    assert index in query()[:200].explain()
