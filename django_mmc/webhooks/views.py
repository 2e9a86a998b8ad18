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

import json
import logging
from io import BytesIO
from typing import Any

from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_json_api.exceptions import exception_handler as jsonapi_exception_handler
from rest_framework_json_api.parsers import JSONParser
from rest_framework_json_api.renderers import JSONRenderer

from .. import contract, dispatch, signing
from ..client import jsonapi
from ..conf import mmc_settings
from ..events import subject_id
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


class EventParser(JSONParser):
    """JSON:API parser; our view checks the document itself, so only the
    decoding and the resource ``type`` check are the parser's."""


@method_decorator(login_not_required, name="dispatch")
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class WebhookView(APIView):
    """Receives the events the platform pushes to one dialogue agent."""

    resource_name = contract.TYPE_EVENTS
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [EventParser]
    renderer_classes = [JSONRenderer]
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
        request.data  # noqa: B018 - the JSON:API parser checks media type, JSON and type
        try:
            event = jsonapi.parse_event(json.loads(body))
        except (ValueError, jsonapi.DocumentError) as err:
            raise exceptions.ParseError(str(err)) from None
        if len(event.id) > 128:
            raise exceptions.ParseError(_("The event id is too long."))
        stored, created = self._store(agent_key, event, body, signature)
        if created:
            dispatch.enqueue_on_commit("process_event", stored.pk)
        return Response(status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)

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

    def _store(self, agent_key: str, event: Any, body: bytes, signature: str | None
               ) -> tuple[WebhookEvent, bool]:
        existing = WebhookEvent.objects.filter(event_id=event.id).first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                stored = WebhookEvent.objects.create(
                    event_id=event.id, agent_key=agent_key, event_type=event.event_type[:64],
                    body=body.decode("utf-8"), signature=(signature or "")[:128],
                    occurred_at=event.occurred_at, subject_id=subject_id(event),
                )
            return stored, True
        except IntegrityError:  # the same event delivered twice at once
            return WebhookEvent.objects.get(event_id=event.id), False

