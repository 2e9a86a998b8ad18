"""The webhook endpoint: verify, store, acknowledge.

One endpoint per configured agent (``webhooks/<agent key>/``). In order:

1. the body size is checked on the raw body (413), before anything else;
2. ``X-MMC-Signature`` is verified over the raw body against every secret of
   the agent (rotation), in constant time (401), before anything is parsed;
3. the body is parsed as a JSON:API ``events`` document (4xx on any problem);
4. the event is stored (a duplicate delivery finds it stored and changes
   nothing, answered 200) and handed to a worker after commit; the answer is
   202.

Everything else (updating notifications, messages and dialogues) happens in
:func:`django_mmc.events.process_event`, so the platform gets its answer fast
and a processing bug loses nothing. Errors are JSON:API error documents.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from io import BytesIO
from typing import Any

import django
from django.db import IntegrityError, connections, router, transaction
from django.db.backends.utils import CursorWrapper
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView
from rest_framework_json_api.exceptions import exception_handler as jsonapi_exception_handler
from rest_framework_json_api.renderers import JSONRenderer

from .. import contract, dispatch, signing
from ..client import jsonapi
from ..conf import mmc_settings
from ..events import in_utc, subject_id
from ..models import WebhookEvent

try:
    import psycopg
except ImportError:  # pragma: no cover - psycopg2, or not PostgreSQL at all
    psycopg = None

logger = logging.getLogger("django_mmc.webhooks")

try:  # Django 5.1+
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # pragma: no cover - Django 4.2
    def login_not_required(view: Any) -> Any:
        return view


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is larger than this endpoint accepts."
    default_code = contract.ERROR_PAYLOAD_TOO_LARGE


class BadSignature(exceptions.AuthenticationFailed):
    default_code = "INVALID_SIGNATURE"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class AnyAccept(DefaultContentNegotiation):
    """Answers in JSON:API whatever the sender's ``Accept`` says: a 406 would
    only make the platform retry a delivery we could take."""

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None
                        ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_body(content_type: str | None, body: bytes) -> tuple[str, Any]:
    """The text and the JSON document of a webhook body that has passed the
    signature check.

    The body must be declared as the JSON:API media type (parameters such as
    ``charset`` are tolerated; another type, a wildcard or none is 415) and be
    UTF-8 JSON, with no ``NaN`` or ``Infinity`` (400). The view decodes the
    bytes it verified itself instead of going through a DRF parser: the same
    rules, without a second pass over the stream on every delivery."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != contract.JSONAPI_MEDIA_TYPE:
        raise exceptions.UnsupportedMediaType(media_type or _("none"))
    try:
        text = body.decode("utf-8")
        return text, json.loads(text, parse_constant=_no_constants)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError included
        raise exceptions.ParseError(_("JSON parse error - %(error)s") % {"error": err}) from None
    except RecursionError:  # nested deeper than the json module goes
        raise exceptions.ParseError(_("The JSON is nested too deeply.")) from None


def _storable(text: str) -> bool:
    """Whether ``text`` can be stored and shown: no NUL, lone surrogate or
    other control character (PostgreSQL refuses the first two with a 500)."""
    return text.isprintable()


class WebhookView(APIView):
    """Receives the events the platform pushes to one dialogue agent."""

    resource_name = contract.TYPE_EVENTS
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes: list[Any] = []  # the view decodes the bytes it verified: decode_body
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept
    throttle_classes: list[Any] = []

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        """The view function, marked (once, rather than by wrapping every
        call) as open without a login and outside ``ATOMIC_REQUESTS`` on every
        database: the event is committed before the platform hears 202."""
        view = login_not_required(super().as_view(**initkwargs))
        for alias in connections:
            view = transaction.non_atomic_requests(using=alias)(view)
        return view

    def get_exception_handler(self):
        return jsonapi_exception_handler

    def get_authenticate_header(self, request: Request) -> str:
        return f'{contract.SIGNATURE_HEADER} realm="webhooks"'

    def post(self, request: Request, agent_key: str) -> HttpResponse:
        agent = mmc_settings.agents.get(agent_key)
        if agent is None:
            raise Http404(_("No such webhook endpoint."))
        body = self._raw_body(request)
        signature = request.META.get(contract.SIGNATURE_META_KEY)
        if not agent.webhook_secrets:
            logger.error("django_mmc: webhook for agent %s rejected: no WEBHOOK_SECRETS "
                         "configured", agent_key)
            raise BadSignature(_("This endpoint has no secret configured."))
        if not signing.verify(body, signature, agent.webhook_secrets):
            logger.warning("django_mmc: webhook for agent %s with a %s signature from %s",
                           agent_key, "wrong" if signature else "missing",
                           request.META.get("REMOTE_ADDR"))
            raise BadSignature(_("The X-MMC-Signature header is missing or wrong."))
        text, document = decode_body(request.META.get("CONTENT_TYPE"), body)
        try:
            event = jsonapi.parse_event(document)
            occurred_at = in_utc(event.occurred_at)
        except (ValueError, OverflowError) as err:  # DocumentError, or a bad occurredAt
            raise exceptions.ParseError(str(err)) from None
        subject = subject_id(event)
        self._check_storable(document, event, subject)
        alias = router.db_for_write(WebhookEvent)
        pk = insert_event({
            "event_id": event.id, "agent_key": agent_key, "event_type": event.event_type[:64],
            "body": text, "signature": (signature or "")[:128],
            "occurred_at": occurred_at, "subject_id": subject,
        }, using=alias)
        if pk is not None:  # new: a worker takes it once it is committed
            dispatch.on_commit(dispatch.hand_over_event, pk, using=alias)
        # The same small document every time: a plain response spares the
        # renderer on the hot path. A repeat delivery is 200 and changes nothing.
        return HttpResponse(ACKNOWLEDGEMENT, content_type=contract.JSONAPI_MEDIA_TYPE,
                            status=status.HTTP_200_OK if pk is None else status.HTTP_202_ACCEPTED)

    def _check_storable(self, document: Mapping[str, Any], event: Any, subject: str) -> None:
        """The event id is the deduplication key: a non-empty string (JSON:API
        ids are strings; ``null`` or ``{}`` would be stored as ``"None"`` or
        ``"{}"`` and every later such event dropped as a duplicate)."""
        raw_id = document["data"]["id"]
        if not isinstance(raw_id, str) or not raw_id or len(raw_id) > 128:
            raise exceptions.ParseError(
                _("The event id must be a string of 1 to 128 characters."))
        if not all(_storable(text) for text in (event.id, event.event_type, subject)):
            raise exceptions.ParseError(
                _("The event id, eventType or a relationship id contains control characters."))

    def _raw_body(self, request: Request) -> bytes:
        limit = mmc_settings.WEBHOOK_MAX_BODY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise PayloadTooLarge()
        body = request._request.read(limit + 1)  # bounded, whatever the header said
        if len(body) > limit:
            raise PayloadTooLarge()
        # Whoever reads the request after us (an error reporter, a logging
        # middleware) finds the same bytes.
        request._request._body = body
        request._request._stream = BytesIO(body)
        return body


#: The body of every 2xx answer: a JSON:API document with no primary data.
ACKNOWLEDGEMENT = b'{"data":null}'

_INSERT_SQL: dict[str, str] = {}


def insert_event(values: dict[str, Any], using: str | None = None) -> int | None:
    """Store a webhook event; its primary key, or ``None`` if an event with
    that id is stored already.

    This runs on every delivery, so on PostgreSQL and SQLite it is one
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` rather than the ORM's
    (which costs more than the rest of the request); elsewhere it is the
    ORM's insert with the unique constraint as the judge. With psycopg 3 and
    nobody watching the queries (:func:`_watched`) it runs on a plain psycopg
    cursor: values are bound by the server and the statement is prepared as
    the connection's ``prepare_threshold`` says."""
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
    sql = _INSERT_SQL.get(alias) or _insert_sql(db, alias, list(row))
    if _driver_cursor(db):
        # Every value is a str or an aware datetime (USE_TZ), which psycopg
        # adapts as Django would.
        with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
            found = cursor.execute(sql, list(row.values())).fetchone()
    else:
        meta = WebhookEvent._meta
        params = [meta.get_field(name).get_db_prep_save(value, db) for name, value in row.items()]
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchone()
    return found[0] if found else None


#: The columns every new event starts with, written as constants in the SQL.
NEW_EVENT: dict[str, Any] = {"state": WebhookEvent.State.PENDING.value, "processed_at": None,
                             "error": "", "attempts": 0}


def _insert_sql(db: Any, alias: str, names: list[str]) -> str:
    meta = WebhookEvent._meta
    quote = db.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in [*names, *NEW_EVENT])
    literals = ", ".join("NULL" if v is None else repr(v) if isinstance(v, int) else f"'{v}'"
                         for v in NEW_EVENT.values())
    # Only quoted names of our own table and our own constants go into the
    # text; every value from the request is a parameter.
    sql = _INSERT_SQL[alias] = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(names))}, {literals}) "
        f"ON CONFLICT ({quote(meta.get_field('event_id').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}")
    return sql


def _driver_cursor(db: Any) -> bool:
    """Whether the insert may bypass Django's cursor wrapper (connecting if
    need be): on psycopg 3, when nothing would miss it (see :func:`_watched`)."""
    if psycopg is None or db.vendor != "postgresql" or _watched(db):
        return False
    db.ensure_connection()
    return isinstance(db.connection, psycopg.Connection) and _django_code(
        db.connection.cursor_factory)


#: Where Django's own code lives: a method whose code is elsewhere was
#: replaced by a tool that watches queries.
_DJANGO_DIR = django.__path__[0]


def _django_code(obj: Any) -> bool:
    """Whether ``obj`` (a function, a method or a class) is Django's own."""
    if isinstance(obj, type):
        return obj.__module__.startswith("django.")
    code = getattr(getattr(obj, "__func__", obj), "__code__", None)
    return code is not None and code.co_filename.startswith(_DJANGO_DIR)


def _watched(db: Any) -> bool:
    """Whether anything watches this connection's queries: Django's query log
    (``DEBUG``, ``CaptureQueriesContext``), an execute wrapper, or a tool that
    replaced the methods queries go through, on the connection (a toolbar's
    SQL panel) or on Django's cursor wrapper (an APM's SQL hook)."""
    return bool(
        db.queries_logged or db.execute_wrappers
        or not all(_django_code(f) for f in (db.cursor, db.create_cursor, db.make_cursor,
                                              CursorWrapper.execute, CursorWrapper._execute))
    )
