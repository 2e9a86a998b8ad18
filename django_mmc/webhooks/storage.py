"""Storing a webhook delivery: one row per event id, written before the
platform hears its answer, then handed to a worker.

The view calls :func:`store_event` once it has verified the signature and
parsed the document. A webhook body is untrusted input even when its
signature is valid: what the row keeps of it (the event id, type and subject)
is checked here before it is written, and everything from the request reaches
the database as a query parameter.

Every statement runs on Django's own cursor (``connection.cursor()``), so
whatever watches the queries sees the insert: ``DEBUG``'s query log,
``CaptureQueriesContext``, ``connection.execute_wrapper()``, an APM's or a
toolbar's SQL hook, a custom database backend.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import dispatch
from ..client.resources import EventResource
from ..models import WebhookEvent

#: The longest event id the table keeps (``WebhookEvent.event_id``).
MAX_EVENT_ID_LENGTH = 128

#: The columns every new event starts with, written as constants in the SQL.
NEW_EVENT: dict[str, Any] = {"state": WebhookEvent.State.PENDING.value, "processed_at": None,
                             "error": "", "attempts": 0}

#: The columns the insert binds, in the order of its parameters.
COLUMNS = ("event_id", "agent_key", "event_type", "body", "signature", "occurred_at",
           "subject_id", "received_at", "enqueued_at")
#: Those whose values are datetimes, adapted by the database backend.
_DATETIME_COLUMNS = frozenset({"occurred_at", "received_at", "enqueued_at"})


class UnstorableEvent(ValueError):
    """The event cannot be stored as it is; the message says why (the view
    answers it with a 400)."""


def in_utc(moment: datetime | None) -> datetime | None:
    """An event's ``occurredAt`` as it is stored and used: in UTC. RFC 3339
    allows offsets PostgreSQL refuses (past 15:59), and a time without an
    offset is UTC, as every timestamp of the contract is. Raises
    ``OverflowError`` when UTC falls outside the years 1 to 9999."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt_timezone.utc)
    return moment.astimezone(dt_timezone.utc)


def subject_id(event: EventResource) -> str:
    """The platform id the event is mainly about (staff search events by it)."""
    for name in ("notification", "message", "dialogue"):
        value = event.related.get(name)
        if value:
            return value[:64]
    return ""


def _storable(text: str) -> bool:
    """Whether ``text`` can be stored and shown: no NUL, lone surrogate or
    other control character (PostgreSQL refuses the first two with a 500)."""
    return text.isprintable()


def event_row(event: EventResource, *, agent_key: str, body: str,
              signature: str) -> dict[str, Any]:
    """The values :func:`insert_event` stores for a parsed event (without the
    arrival time, which the insert stamps).

    Raises :class:`UnstorableEvent` when the event id, which is the
    deduplication key, is empty or longer than the column; when the id, the
    type or the subject holds control characters; or when ``occurredAt`` in
    UTC falls outside the calendar."""
    if not event.id or len(event.id) > MAX_EVENT_ID_LENGTH:
        raise UnstorableEvent(_("The event id must be a string of 1 to 128 characters."))
    subject = subject_id(event)
    if not all(_storable(text) for text in (event.id, event.event_type, subject)):
        raise UnstorableEvent(
            _("The event id, eventType or a relationship id contains control characters."))
    try:
        occurred_at = in_utc(event.occurred_at)
    except OverflowError as err:
        raise UnstorableEvent(str(err)) from None
    return {"event_id": event.id, "agent_key": agent_key, "event_type": event.event_type[:64],
            "body": body, "signature": signature[:128], "occurred_at": occurred_at,
            "subject_id": subject}


def store_event(event: EventResource, *, agent_key: str, body: str,
                signature: str) -> int | None:
    """Store a verified, parsed webhook event and, once it is committed, hand
    it to a worker (:func:`django_mmc.dispatch.hand_over_event`).

    Returns the new row's primary key, or ``None`` when an event with that id
    is stored already: a repeat delivery changes nothing and hands nothing
    over. Runs in autocommit (the view is outside ``ATOMIC_REQUESTS``), so the
    row is committed when this returns. Raises :class:`UnstorableEvent` as
    :func:`event_row` says."""
    values = event_row(event, agent_key=agent_key, body=body, signature=signature)
    alias = router.db_for_write(WebhookEvent)
    pk = insert_event(values, using=alias)
    if pk is not None:
        dispatch.on_commit(dispatch.hand_over_event, pk, using=alias)
    return pk


_INSERT_SQL: dict[str, str] = {}


def insert_event(values: dict[str, Any], using: str | None = None) -> int | None:
    """Insert one webhook event row (``values`` as :func:`event_row` makes
    them); its primary key, or ``None`` if an event with that id is stored
    already. Idempotent per event id, also for two deliveries at once: the
    unique constraint on the event id decides.

    On PostgreSQL and SQLite this is one ``INSERT ... ON CONFLICT DO NOTHING
    RETURNING`` on Django's cursor, with the values adapted by the database
    backend as the ORM adapts them; it costs less than the ORM's insert, which
    needs a savepoint and a second statement to survive a repeat. Elsewhere it
    is the ORM's insert with the unique constraint as the judge."""
    now = timezone.now()
    row = {**values, "received_at": now, "enqueued_at": now}
    alias = using or router.db_for_write(WebhookEvent)
    db = connections[alias]
    if db.vendor not in ("postgresql", "sqlite"):
        try:
            with transaction.atomic(using=alias):
                return WebhookEvent.objects.using(alias).create(**row, **NEW_EVENT).pk
        except IntegrityError:
            return None
    sql = _INSERT_SQL.get(alias) or _insert_sql(db, alias)
    adapt = db.ops.adapt_datetimefield_value
    params = [adapt(row[name]) if name in _DATETIME_COLUMNS else row[name] for name in COLUMNS]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return found[0] if found else None


def _insert_sql(db: Any, alias: str) -> str:
    meta = WebhookEvent._meta
    quote = db.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in [*COLUMNS, *NEW_EVENT])
    literals = ", ".join("NULL" if v is None else repr(v) if isinstance(v, int) else f"'{v}'"
                         for v in NEW_EVENT.values())
    # Only quoted names of our own table and our own constants go into the
    # text; every value from the request is a parameter.
    sql = _INSERT_SQL[alias] = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(COLUMNS))}, {literals}) "
        f"ON CONFLICT ({quote(meta.get_field('event_id').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}")
    return sql
