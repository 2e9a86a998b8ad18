"""How a delivery is stored: one statement, on Django's cursor or on the
driver's, with the same row either way (the indexes the events table keeps
are in tests/test_query_plans.py)."""

from __future__ import annotations

import functools
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from django_mmc.models import WebhookEvent
from django_mmc.webhooks import views

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


def sql_hook_on_cursor_wrapper(monkeypatch: Any, seen: list[str]) -> None:
    """What an APM's SQL hook does: replace ``CursorWrapper.execute`` with a
    wrapper (named like the original) that records the statement."""
    original = CursorWrapper.execute

    @functools.wraps(original)
    def execute(self: Any, sql: str, params: Any = None) -> Any:
        seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", execute)


def toolbar_on_the_connection(monkeypatch: Any, seen: list[str]) -> None:
    """What a toolbar's SQL panel does: replace the connection's ``cursor``
    method with one that hands out cursors recording their statements."""
    original = connection.cursor

    class Recording:
        def __init__(self, cursor: Any) -> None:
            self.cursor = cursor

        def execute(self, sql: str, params: Any = None) -> Any:
            seen.append(sql)
            return self.cursor.execute(sql, params)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.cursor, name)

        def __enter__(self) -> Recording:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.cursor.close()

    monkeypatch.setattr(connection, "cursor", lambda: Recording(original()))


class TestWatchedConnections(WebhookCase):
    """A tool that watches queries by replacing Django's methods, rather than
    installing an execute wrapper, sees the insert too: the view takes the
    driver's cursor only when every method a query goes through is Django's."""

    def test_nothing_watching_takes_the_driver_cursor_on_psycopg(self) -> None:
        connection.ensure_connection()
        expected = connection.vendor == "postgresql"
        assert views._driver_cursor(connection) is expected
        assert not views._watched(connection)

    @pytest.mark.parametrize("patch", [sql_hook_on_cursor_wrapper, toolbar_on_the_connection])
    def test_a_tool_that_replaced_a_method_sees_the_insert(
        self, patch: Any, monkeypatch: Any
    ) -> None:
        seen: list[str] = []
        patch(monkeypatch, seen)
        assert views._watched(connection)
        row = self.store(load_event("notification.status", event_id="evt_watched"))
        inserts = [sql for sql in seen if sql.startswith("INSERT")]
        assert len(inserts) == 1 and WebhookEvent._meta.db_table in inserts[0]
        assert row.state == State.PENDING

    def test_a_cursor_factory_not_of_django_keeps_the_insert_off_the_driver_cursor(
        self, monkeypatch: Any
    ) -> None:
        """A tracer that gave psycopg connections its own cursor factory."""
        if connection.vendor != "postgresql":
            pytest.skip("psycopg's cursor factory: PostgreSQL")
        connection.ensure_connection()
        traced = type("TracedCursor", (connection.connection.cursor_factory,), {})
        traced.__module__ = "a_tracer.psycopg"
        monkeypatch.setattr(connection.connection, "cursor_factory", traced)
        assert not views._driver_cursor(connection)
        assert self.store(load_event("notification.status", event_id="evt_traced")).pk
