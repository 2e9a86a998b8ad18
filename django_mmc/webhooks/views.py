"""The webhook endpoint: verify, store, acknowledge.

One endpoint per configured agent (``webhooks/<agent key>/``). In order:

1. the body size is checked on the raw body (413), before anything else;
2. the signature header (``X-MMC-Signature``, or the dialect's) is verified
   over the raw body by the dialect's scheme against every secret of the
   agent (rotation), in constant time (401), before anything is parsed; while
   ``WEBHOOK_DIAGNOSIS_UNTIL`` lies ahead, a refused delivery's shape is
   logged (:mod:`.diagnosis`), never its body or a secret;
3. the body is parsed as a JSON:API ``events`` document (4xx on any problem);
4. the event is stored and handed to a worker after commit
   (:mod:`django_mmc.webhooks.storage`; a duplicate delivery finds it stored
   and changes nothing, answered 200); the answer is 202.

Everything else (updating notifications, messages and dialogues) happens in
:func:`django_mmc.processing.process_event`, so the platform gets its answer fast
and a processing bug loses nothing. Errors are JSON:API error documents.
"""

from __future__ import annotations

import json
import logging
from io import BytesIO
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db import connections, transaction
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

from .. import contract, signing
from ..client import jsonapi
from ..client.resources import EventResource
from ..conf import mmc_settings
from . import diagnosis, storage

logger = logging.getLogger("django_mmc.webhooks")

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


def parse_document(document: Any) -> EventResource:
    """The event of a decoded webhook document; ``ParseError`` (400) when it
    is not a JSON:API ``events`` resource with an ``eventType`` and a string
    id. JSON:API ids are strings: ``null`` or ``{}`` would become ``"None"`` or
    ``"{}"``, and every later such event would be dropped as a duplicate."""
    try:
        event = jsonapi.parse_event(document)
    except (ValueError, OverflowError) as err:  # DocumentError, or a bad occurredAt
        raise exceptions.ParseError(str(err)) from None
    if not isinstance(document["data"]["id"], str):
        raise exceptions.ParseError(_("The event id must be a string of 1 to 128 characters."))
    return event


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
        return f'{mmc_settings.dialect.signature_header} realm="webhooks"'

    def post(self, request: Request, agent_key: str) -> HttpResponse:
        agent = mmc_settings.agents.get(agent_key)
        if agent is None:
            raise Http404(_("No such webhook endpoint."))
        body = self._raw_body(request)
        dialect = mmc_settings.dialect
        signature = request.META.get(dialect.signature_meta_key)
        timestamp = request.META.get(dialect.timestamp_meta_key) if dialect.timestamp_meta_key \
            else None
        if not agent.webhook_secrets:
            logger.error("django_mmc: webhook for agent %s rejected: no WEBHOOK_SECRETS "
                         "configured", agent_key)
            raise BadSignature(_("This endpoint has no secret configured."))
        if not signing.verify(body, signature, agent.webhook_secrets, dialect, timestamp):
            logger.warning("django_mmc: webhook for agent %s with a %s signature from %s",
                           agent_key, "wrong" if signature else "missing",
                           request.META.get("REMOTE_ADDR"))
            if diagnosis.active(mmc_settings.webhook_diagnosis_until, timezone.now()):
                diagnosis.log_refused_delivery(agent_key, body, request.META,
                                               agent.webhook_secrets, dialect)
            raise BadSignature(_("The %(header)s header is missing or wrong.")
                               % {"header": dialect.signature_header})
        text, document = decode_body(request.META.get("CONTENT_TYPE"), body)
        event = parse_document(document)
        try:
            pk = storage.store_event(event, agent_key=agent_key, body=text,
                                     signature=signature or "")
        except storage.UnstorableEvent as err:
            raise exceptions.ParseError(str(err)) from None
        # The same small document every time: a plain response spares the
        # renderer on the hot path. A repeat delivery is 200 and changes nothing.
        return HttpResponse(ACKNOWLEDGEMENT, content_type=contract.JSONAPI_MEDIA_TYPE,
                            status=status.HTTP_200_OK if pk is None else status.HTTP_202_ACCEPTED)

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
