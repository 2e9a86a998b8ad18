"""How a delivery is stored: one statement, on Django's cursor or on the
driver's, with the same row either way; and the events table carries only
the indexes that its queries use (every delivery writes each of them)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_mmc.models import WebhookEvent

from .cases import WebhookCase, load_event

State = WebhookEvent.State

#: The columns of a stored event that do not depend on its id or body.
SHAPE = ("agent_key", "event_type", "subject_id", "occurred_at", "state", "processed_at",
         "error", "attempts")


class TestInsert(WebhookCase):
    def test_an_execute_wrapper_sees_the_insert_and_the_row_is_the_same(self) -> None:
        """With an execute wrapper (an APM, a query counter) the insert goes
        through Django's cursor, so the wrapper sees it; without one it may go
        straight to the driver. Both store the same row."""
        seen: list[str] = []

        def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            seen.append(sql)
            return execute(sql, params, many, context)

        before = timezone.now()
        plain = self.store(load_event("message.received", event_id="evt_plain"))
        with connection.execute_wrapper(wrapper):
            wrapped = self.store(load_event("message.received", event_id="evt_wrapped"))
        after = timezone.now()

        inserts = [sql for sql in seen if sql.startswith("INSERT")]
        assert len(inserts) == 1 and WebhookEvent._meta.db_table in inserts[0]
        assert {f: getattr(plain, f) for f in SHAPE} == {f: getattr(wrapped, f) for f in SHAPE}
        assert plain.state == WebhookEvent.State.PENDING
        for row in (plain, wrapped):
            assert before <= row.received_at <= after
            assert row.enqueued_at == row.received_at
            assert row.occurred_at.utcoffset() == timedelta(0)
            assert json.loads(row.body)["data"]["id"] == row.event_id

    def test_a_repeat_is_found_by_the_constraint_on_either_path(self) -> None:
        event = load_event("notification.status", event_id="evt_again")
        assert self.deliver(event).status_code == 202
        with connection.execute_wrapper(lambda execute, *args: execute(*args)):
            assert self.deliver(event).status_code == 200
        assert self.deliver(event).status_code == 200
        assert WebhookEvent.objects.filter(event_id="evt_again").count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans of PostgreSQL")
class TestIndexes:
    """Each query on the events table is served by one of its few indexes."""

    EXPECTED = {"pkey", "mmc_event_id_unique", "mmc_event_subject_idx", "mmc_event_state_idx",
                "received_at"}

    @pytest.fixture(autouse=True)
    def _no_seq_scan(self, db: Any) -> Any:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            yield
            cursor.execute("RESET enable_seqscan")

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
