"""The webhook endpoint: verify, store, acknowledge.

One endpoint per configured agent (``webhooks/<agent key>/``). In order:

1. the body size is checked on the raw body (413), before anything else;
2. ``X-MMC-Signature`` is verified over the raw body against every secret of
   the agent (rotation), in constant time (401), before anything is parsed;
3. the body is parsed as a JSON:API ``events`` document (4xx on any problem);
4. the event is stored (a duplicate delivery finds it stored and changes
   nothing) and handed to a worker after commit; the answer is 202.

Everything else (updating notifications, messages and dialogues) happens in
:func:`django_mmc.events.process_event`, so the platform gets its answer fast
and a processing bug loses nothing. Errors are JSON:API error documents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_json_api.exceptions import exception_handler as jsonapi_exception_handler
from rest_framework_json_api.renderers import JSONRenderer

from .. import contract, dispatch, signing
from ..client import jsonapi
from ..conf import mmc_settings
from ..events import in_utc, subject_id
from ..models import WebhookEvent

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


class EventParser(parsers.JSONParser):
    """Decodes a JSON:API body, nothing more: the view checks the document
    itself (:func:`~django_mmc.client.jsonapi.parse_event`). DJA's parser is
    not used: it fails with a 500 on ``attributes`` or ``relationships`` that
    are not objects."""

    media_type = contract.JSONAPI_MEDIA_TYPE

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # nested deeper than the json module goes
            raise exceptions.ParseError(_("The JSON is nested too deeply.")) from None


class AnyAccept(DefaultContentNegotiation):
    """Answers in JSON:API whatever the sender's ``Accept`` says: a 406 would
    only make the platform retry a delivery we could take. Takes a body only
    with a concrete ``Content-Type`` (a wildcard is 415)."""

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None
                        ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type

    def select_parser(self, request: Request, parsers: Any) -> Any:
        # A body has one concrete media type: DRF would let a request
        # ``Content-Type`` of ``*/*`` or ``application/*`` match any parser.
        if "*" in (request.content_type or "").split(";")[0]:
            return None
        return super().select_parser(request, parsers)


def _storable(text: str) -> bool:
    """Whether ``text`` can be stored and shown: no NUL, lone surrogate or
    other control character (PostgreSQL refuses the first two with a 500)."""
    return text.isprintable()


@method_decorator(login_not_required, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class WebhookView(APIView):
    """Receives the events the platform pushes to one dialogue agent."""

    resource_name = contract.TYPE_EVENTS
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [EventParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept
    throttle_classes: list[Any] = []

    def get_exception_handler(self):
        return jsonapi_exception_handler

    def get_authenticate_header(self, request: Request) -> str:
        return f'{contract.SIGNATURE_HEADER} realm="webhooks"'

    def post(self, request: Request, agent_key: str) -> Response:
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
        document = request.data  # the parser checks the media type and decodes the JSON
        try:
            event = jsonapi.parse_event(document)
            occurred_at = in_utc(event.occurred_at)
        except (ValueError, OverflowError) as err:  # DocumentError, or a bad occurredAt
            raise exceptions.ParseError(str(err)) from None
        self._check_storable(document, event)
        stored, created = self._store(agent_key, event, body, signature, occurred_at)
        if created:
            dispatch.on_commit(dispatch.hand_over_event, stored.pk)
        # The same small document every time: a plain response spares the
        # renderer on the hot path.
        return HttpResponse(ACKNOWLEDGEMENT, content_type=contract.JSONAPI_MEDIA_TYPE,
                            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

    def _check_storable(self, document: Mapping[str, Any], event: Any) -> None:
        """The event id is the deduplication key: a non-empty string (JSON:API
        ids are strings; ``null`` or ``{}`` would be stored as ``"None"`` or
        ``"{}"`` and every later such event dropped as a duplicate)."""
        raw_id = document["data"]["id"]
        if not isinstance(raw_id, str) or not raw_id or len(raw_id) > 128:
            raise exceptions.ParseError(
                _("The event id must be a string of 1 to 128 characters."))
        if not all(_storable(text) for text in (event.id, event.event_type, subject_id(event))):
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
        request._request._body = body  # the parser reads the same bytes
        request._request._stream = BytesIO(body)
        return body

    def _store(self, agent_key: str, event: Any, body: bytes, signature: str | None,
               occurred_at: Any) -> tuple[WebhookEvent, bool]:
        """Insert first: one statement for a new event (the common case); a
        duplicate fails on the unique event id and is looked up."""
        values = {
            "event_id": event.id, "agent_key": agent_key, "event_type": event.event_type[:64],
            "body": body.decode("utf-8"), "signature": (signature or "")[:128],
            "occurred_at": occurred_at, "subject_id": subject_id(event),
        }
        pk = insert_event(values)
        if pk is None:
            return WebhookEvent.objects.get(event_id=event.id), False
        return WebhookEvent(pk=pk, **values), True


#: The body of every 2xx answer: a JSON:API document with no primary data.
ACKNOWLEDGEMENT = b'{"data":null}'

_INSERT_SQL: dict[str, str] = {}


def insert_event(values: dict[str, Any]) -> int | None:
    """Store a webhook event; its primary key, or ``None`` if an event with
    that id is stored already.

    This runs on every delivery, so on PostgreSQL and SQLite it is one
    prepared ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` rather than the
    ORM's (which costs more than the rest of the request); elsewhere it is
    the ORM's insert with the unique constraint as the judge."""
    now = timezone.now()
    row = {**values, "received_at": now, "enqueued_at": now}
    # Columns every new event starts with, written as constants in the SQL.
    constants = {"state": WebhookEvent.State.PENDING.value, "processed_at": None, "error": "",
                 "attempts": 0}
    alias = router.db_for_write(WebhookEvent)
    db = connections[alias]
    if db.vendor not in ("postgresql", "sqlite"):
        try:
            with transaction.atomic(using=alias):
                return WebhookEvent.objects.using(alias).create(**row, **constants).pk
        except IntegrityError:
            return None
    meta = WebhookEvent._meta
    sql = _INSERT_SQL.get(alias)
    if sql is None:
        quote = db.ops.quote_name
        columns = ", ".join(quote(meta.get_field(name).column) for name in [*row, *constants])
        literals = ", ".join("NULL" if v is None else repr(v) if isinstance(v, int) else f"'{v}'"
                             for v in constants.values())
        # Only quoted names of our own table and our own constants go into the
        # text; every value from the request is a parameter.
        sql = _INSERT_SQL[alias] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(row))}, {literals}) "
            f"ON CONFLICT ({quote(meta.get_field('event_id').column)}) DO NOTHING "
            f"RETURNING {quote(meta.pk.column)}")
    params = [meta.get_field(name).get_db_prep_save(value, db) for name, value in row.items()]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return found[0] if found else None
