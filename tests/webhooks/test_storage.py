"""How a delivery is stored: one statement, on Django's cursor or on the
driver's, with the same row either way (the indexes the events table keeps
are in tests/test_query_plans.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

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
