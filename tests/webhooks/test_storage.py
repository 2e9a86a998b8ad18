"""django_mmc.webhooks.storage: how a delivery becomes a row. One statement
on Django's own cursor, seen by everything that watches queries; one row per
event id; the same row on PostgreSQL, SQLite and the ORM's path (the indexes
the events table keeps are in tests/test_query_plans.py)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection, reset_queries
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as django_timezone

from django_mmc import dispatch
from django_mmc.client import jsonapi
from django_mmc.client.resources import EventResource
from django_mmc.models import WebhookEvent
from django_mmc.webhooks import storage, views

from .cases import WebhookCase, load_event

State = WebhookEvent.State
TABLE = WebhookEvent._meta.db_table

#: The columns of a stored event that do not depend on its id or arrival.
SHAPE = ("agent_key", "event_type", "subject_id", "occurred_at", "state", "processed_at",
         "error", "attempts", "signature")


def parsed(event_type: str = "notification.status", event_id: str | None = None) -> tuple[
        EventResource, str]:
    """A fixture event as the view hands it to storage: parsed, and its text."""
    document = load_event(event_type, event_id=event_id)
    return jsonapi.parse_event(document), json.dumps(document)


def store(event_id: str, event_type: str = "notification.status") -> int | None:
    event, text = parsed(event_type, event_id)
    return storage.store_event(event, agent_key="support", body=text, signature="ab" * 32)


def inserts(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.lstrip().upper().startswith("INSERT")
            and TABLE in sql]


# -- What watches the queries: each records the statements it saw. ----------------


@contextmanager
def execute_wrapper(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """An APM or a query counter installed the documented way."""
    seen: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


@contextmanager
def capture_queries(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """``CaptureQueriesContext``, as ``assertNumQueries`` uses it."""
    seen: list[str] = []
    with CaptureQueriesContext(connection) as captured:
        yield seen
    seen.extend(query["sql"] for query in captured.captured_queries)


@contextmanager
def debug_query_log(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """``DEBUG = True``: ``connection.queries``, as a debug toolbar reads it."""
    seen: list[str] = []
    settings.DEBUG = True
    reset_queries()
    yield seen
    seen.extend(query["sql"] for query in connection.queries)


@contextmanager
def apm_hook_on_cursor_wrapper(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """What several APM agents do: replace ``CursorWrapper.execute``."""
    seen: list[str] = []
    original = CursorWrapper.execute

    @functools.wraps(original)
    def execute(self: Any, sql: str, params: Any = None) -> Any:
        seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(CursorWrapper, "execute", execute)
    yield seen


class Recording:
    """A cursor that records the statements run on it, as tools hand out."""

    def __init__(self, cursor: Any, seen: list[str]) -> None:
        self.cursor, self.seen = cursor, seen

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append(str(sql))
        return self.cursor.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def __iter__(self) -> Any:
        return iter(self.cursor)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cursor.close()


@contextmanager
def toolbar_on_the_connection(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """What a toolbar's SQL panel does: replace the connection's ``cursor``
    method with one that hands out recording cursors."""
    seen: list[str] = []
    original = connection.cursor
    monkeypatch.setattr(connection, "cursor", lambda: Recording(original(), seen))
    yield seen


@contextmanager
def custom_backend(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """A database backend of the project's own that makes its own cursors
    (``DatabaseWrapper.create_cursor``)."""
    seen: list[str] = []
    original = connection.create_cursor
    monkeypatch.setattr(connection, "create_cursor",
                        lambda name=None: Recording(original(name), seen))
    yield seen


@contextmanager
def tracer_on_the_driver_connection(monkeypatch: Any, settings: Any) -> Iterator[list[str]]:
    """What a database tracer does one level down: wrap the driver
    connection's ``cursor()``, which Django's backend calls for every cursor
    it makes. (sqlite3's connection is a C object that cannot be wrapped in
    place; tracers wrap it when it is made.)"""
    if connection.vendor != "postgresql":
        pytest.skip("a driver connection that can be wrapped in place: psycopg")
    seen: list[str] = []
    connection.ensure_connection()
    driver = connection.connection
    original = driver.cursor
    monkeypatch.setattr(driver, "cursor",
                        lambda *args, **kwargs: Recording(original(*args, **kwargs), seen))
    yield seen


WATCHERS = [execute_wrapper, capture_queries, debug_query_log, apm_hook_on_cursor_wrapper,
            toolbar_on_the_connection, custom_backend, tracer_on_the_driver_connection]


class TestEveryWatcherSeesTheInsert(WebhookCase):
    """APM tools, debug toolbars, query counters and custom backends see the
    insert: it runs on Django's cursor whatever is installed, and storage
    never looks at Django's internals to decide."""

    @pytest.mark.parametrize("watcher", WATCHERS, ids=lambda w: w.__name__)
    def test_the_insert_is_seen(self, watcher: Any, monkeypatch: Any) -> None:
        with watcher(monkeypatch, self.settings) as seen:
            response = self.deliver(load_event("notification.status", event_id="evt_seen"))
        assert response.status_code == 202, response.content
        assert len(inserts(seen)) == 1, seen
        assert WebhookEvent.objects.get(event_id="evt_seen").state == State.PENDING

    @pytest.mark.parametrize("watcher", WATCHERS, ids=lambda w: w.__name__)
    def test_a_repeat_is_seen_and_stores_nothing(self, watcher: Any, monkeypatch: Any) -> None:
        event = load_event("notification.status", event_id="evt_seen_twice")
        assert self.deliver(event).status_code == 202
        with watcher(monkeypatch, self.settings) as seen:
            assert self.deliver(event).status_code == 200
        assert len(inserts(seen)) == 1, seen
        assert WebhookEvent.objects.filter(event_id="evt_seen_twice").count() == 1

    @pytest.mark.parametrize("module", [storage, views], ids=lambda m: m.__name__)
    def test_there_is_no_other_way_to_the_database(self, module: Any) -> None:
        """No driver cursor, and nothing that inspects Django's own code."""
        source = module.__loader__.get_source(module.__name__)
        for word in ("psycopg", "cursor_factory", "__code__", "execute_wrappers",
                     "queries_logged", "CursorWrapper"):
            assert word not in source, word


class TestStoreEvent(WebhookCase):
    def test_a_new_event_is_stored_and_handed_over_after_commit(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        before = django_timezone.now()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            pk = store("evt_new")
        after = django_timezone.now()

        row = WebhookEvent.objects.get(pk=pk)
        assert [(c.func, c.args) for c in callbacks] == [(dispatch.hand_over_event, (pk,))]
        assert row.event_id == "evt_new" and row.agent_key == "support"
        assert row.event_type == "notification.status" and row.subject_id == "79746"
        assert row.signature == "ab" * 32
        assert json.loads(row.body)["data"]["id"] == "evt_new"
        assert (row.state, row.processed_at, row.error, row.attempts) == (
            State.PENDING, None, "", 0)
        assert before <= row.received_at <= after and row.enqueued_at == row.received_at
        assert row.occurred_at == datetime(2026, 11, 26, 19, 0, 4, 120000, tzinfo=timezone.utc)

    def test_a_duplicate_stores_nothing_and_hands_nothing_over(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        pk = store("evt_twice", "message.status")
        first = WebhookEvent.objects.values().get(pk=pk)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            # Another type and body under the same id: still the same event.
            assert store("evt_twice", "dialogue.closed") is None
        assert callbacks == []
        assert list(WebhookEvent.objects.values()) == [first]

    def test_values_from_the_request_are_parameters(self) -> None:
        event_id = "evt_'); DELETE FROM django_mmc_webhookevent; --"
        pk = store(event_id)
        assert WebhookEvent.objects.get(pk=pk).event_id == event_id
        assert store(event_id) is None

    def test_the_orm_path_of_other_databases_stores_the_same_row(self, monkeypatch: Any) -> None:
        """Databases other than PostgreSQL and SQLite take the ORM's insert,
        the unique constraint judging a repeat: same row, same answers."""
        fast = WebhookEvent.objects.get(pk=store("evt_sql"))
        monkeypatch.setattr(connection, "vendor", "another")
        with CaptureQueriesContext(connection) as captured:
            orm = WebhookEvent.objects.get(pk=store("evt_orm"))
            assert store("evt_orm") is None
        assert {f: getattr(fast, f) for f in SHAPE} == {f: getattr(orm, f) for f in SHAPE}
        assert orm.body == fast.body.replace("evt_sql", "evt_orm")
        assert any(q["sql"].startswith("INSERT") and "ON CONFLICT" not in q["sql"]
                   for q in captured.captured_queries)
        assert WebhookEvent.objects.filter(event_id="evt_orm").count() == 1


class TestEventRow(WebhookCase):
    @pytest.mark.parametrize("event_id", ["", "e" * 129])
    def test_an_id_that_cannot_be_the_key_is_refused(self, event_id: str) -> None:
        event, text = parsed()
        event = EventResource(id=event_id, event_type=event.event_type)
        with pytest.raises(storage.UnstorableEvent, match="1 to 128 characters"):
            storage.event_row(event, agent_key="support", body=text, signature="")

    @pytest.mark.parametrize("field", ["id", "event_type", "subject"])
    def test_control_characters_are_refused(self, field: str) -> None:
        values = {"id": "evt_1", "event_type": "notification.status", "subject": "79746"}
        values[field] += "\x00"
        event = EventResource(id=values["id"], event_type=values["event_type"],
                              related={"notification": values["subject"]})
        with pytest.raises(storage.UnstorableEvent, match="control characters"):
            storage.event_row(event, agent_key="support", body="{}", signature="")

    def test_an_occurred_at_outside_the_calendar_in_utc_is_refused(self) -> None:
        late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
        event = EventResource(id="evt_1", event_type="x", occurred_at=late)
        with pytest.raises(storage.UnstorableEvent):
            storage.event_row(event, agent_key="support", body="{}", signature="")

    def test_the_longest_id_is_stored(self) -> None:
        assert store("e" * 128)


class TestHelpers:
    @pytest.mark.parametrize(("moment", "expected"), [
        (None, None),
        (datetime(2026, 11, 26, 19, 0), datetime(2026, 11, 26, 19, 0, tzinfo=timezone.utc)),
        (datetime(2026, 11, 26, 19, 0, tzinfo=timezone(timedelta(hours=23, minutes=59))),
         datetime(2026, 11, 25, 19, 1, tzinfo=timezone.utc)),
    ])
    def test_in_utc(self, moment: datetime | None, expected: datetime | None) -> None:
        result = storage.in_utc(moment)
        assert result == expected
        assert result is None or result.utcoffset() == timedelta(0)

    def test_in_utc_outside_the_calendar_overflows(self) -> None:
        with pytest.raises(OverflowError):
            storage.in_utc(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))

    @pytest.mark.parametrize(("related", "expected"), [
        ({"dialogue": "9002", "message": "55012"}, "55012"),
        ({"dialogue": "9002", "notification": "79746"}, "79746"),
        ({"dialogue": "9002", "message": None}, "9002"),
        ({"dialogueAgent": "17"}, ""),
        ({"notification": "n" * 80}, "n" * 64),
    ])
    def test_subject_id(self, related: dict[str, Any], expected: str) -> None:
        assert storage.subject_id(EventResource(id="e", event_type="x", related=related)) == (
            expected)
