"""Helpers for testing code that receives MMC webhooks.

These build the exact event documents of the contract (section 8) and sign
them the way the platform does, so a test can post a delivery to a webhook
view without a running platform::

    from django_mmc.testing import build_event, signed_delivery

    event = build_event("notification.status", notification="79746", status="DELIVERED")
    body, headers = signed_delivery(event, "agent-17-secret")
    client.post(url, body, content_type=headers["Content-Type"],
                headers={"X-MMC-Signature": headers["X-MMC-Signature"]})

The MMC sandbox (:mod:`django_mmc.sandbox`) builds every event it pushes with
:func:`build_event`, so the two can never disagree. This module does not
import Django.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from . import contract
from .dialect import DEFAULT_DIALECT, Dialect
from .signing import sign

__all__ = ["build_event", "format_timestamp", "new_event_id", "signed_delivery"]

#: A default that means the keyword must be given.
_REQUIRED = contract.REQUIRED


def _keyword(field: str) -> str:
    """The :func:`build_event` keyword of an event schema field: the
    relationship fields drop their ``_id`` (``notification_id`` is given as
    ``notification=``)."""
    return field.removesuffix("_id")


# Per event type, from the contract's event schema: (attribute name, keyword,
# default) for each attribute, and (relationship name, keyword, resource
# type) for each relationship. The dialogue agent relationship is common to
# every type and comes from ``agent_id``.
_ATTRIBUTES: dict[str, tuple[tuple[str, str, Any], ...]] = {
    event_type: tuple((a.wire, _keyword(a.field), a.default) for a in schema.attributes)
    for event_type, schema in contract.EVENT_SCHEMAS.items()
}

_RELATIONSHIPS: dict[str, tuple[tuple[str, str, str], ...]] = {
    event_type: tuple((r.wire, _keyword(r.field), r.resource_type)
                      for r in schema.relationships)
    for event_type, schema in contract.EVENT_SCHEMAS.items()
}


def format_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as an RFC 3339 UTC string with milliseconds.

    Naive datetimes are taken to be UTC. The result always ends in ``Z``,
    e.g. ``2026-11-26T19:00:04.120Z``.
    """
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    else:
        moment = moment.astimezone(timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def new_event_id() -> str:
    """A fresh, unique event id in the platform's style (``evt_<hex>``)."""
    return "evt_" + secrets.token_hex(8)


def _linkage(resource_type: str, resource_id: Any) -> dict[str, Any]:
    return {"data": {"type": resource_type, "id": str(resource_id)}}


def _file_list(files: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # Each file is {"id", "name", "contentType", "size", "url"}; ids are strings
    # on the wire even when a test passes a number.
    result = []
    for item in files:
        entry = dict(item)
        if "id" in entry:
            entry["id"] = str(entry["id"])
        result.append(entry)
    return result


def build_event(
    event_type: str,
    *,
    event_id: str | None = None,
    occurred_at: datetime | str | None = None,
    agent_id: str = "17",
    **fields: Any,
) -> dict[str, Any]:
    """The contract's event document (section 8) for one webhook delivery.

    Keyword arguments are snake_case and become the camelCase members of the
    wire format. Per event type:

    ``notification.status``
        ``status`` (required), ``failure`` (default ``None``),
        ``notification`` (id, required).
    ``message.status``
        ``status`` (required), ``failure``, ``message`` and ``dialogue`` (ids).
    ``message.received``
        ``text``, ``channel_type`` (required), ``files`` (list of
        ``{"id", "name", "contentType", "size", "url"}``), ``message``,
        ``dialogue``, ``recipient`` (E.164 number), ``channel_group`` (ids);
        ``customer_id`` (optional: the recipient named by the platform's
        customer id, with ``recipient``, if not ``None``, in its ``meta``).
    ``dialogue.opened``
        ``initiated_by`` (``AGENT``/``RECIPIENT``), ``channel_type``,
        ``dialogue``, ``recipient``, ``channel_group``; ``customer_id``.
    ``dialogue.closed``
        ``closed_by``, ``dialogue``.

    Every event also has the ``dialogueAgent`` relationship (``agent_id``),
    an ``id`` (``event_id``, default a fresh ``evt_<hex>``) and
    ``occurredAt`` (``occurred_at``: a datetime, an already formatted string,
    or ``None`` for now).

    An unknown ``event_type`` is allowed, as the contract requires receivers
    to keep such events: its ``fields`` become attributes exactly as given.
    For a known type, a missing required field or an unexpected one raises
    :class:`TypeError`, so a typo in a test cannot build a wrong document.
    """
    if occurred_at is None or isinstance(occurred_at, datetime):
        occurred = format_timestamp(occurred_at)
    else:
        occurred = str(occurred_at)
    attributes: dict[str, Any] = {"eventType": event_type, "occurredAt": occurred}
    relationships: dict[str, Any] = {}

    if event_type not in _ATTRIBUTES:
        attributes.update(fields)
    else:
        allowed = {kw for _, kw, _ in _ATTRIBUTES[event_type]}
        allowed |= {kw for _, kw, _ in _RELATIONSHIPS[event_type]}
        if "recipient" in allowed:
            allowed.add("customer_id")
        unexpected = sorted(set(fields) - allowed)
        if unexpected:
            raise TypeError(
                f"build_event({event_type!r}) got unexpected fields {unexpected}; "
                f"it takes {sorted(allowed)}"
            )
        missing = [
            kw
            for _, kw, default in _ATTRIBUTES[event_type]
            if default is _REQUIRED and kw not in fields
        ]
        missing += [kw for _, kw, _ in _RELATIONSHIPS[event_type] if kw not in fields]
        if missing:
            raise TypeError(f"build_event({event_type!r}) needs {missing}")
        for name, keyword, default in _ATTRIBUTES[event_type]:
            value = fields.get(keyword, default)
            if name == "files":
                value = _file_list(value)
            attributes[name] = value
        for name, keyword, resource_type in _RELATIONSHIPS[event_type]:
            relationships[name] = _linkage(resource_type, fields[keyword])
        if fields.get("customer_id"):
            # The customer named by its platform id, with its number (if any) beside it.
            linkage = {"type": DEFAULT_DIALECT.customer_id_type, "id": str(fields["customer_id"])}
            if fields.get("recipient"):
                linkage["meta"] = {DEFAULT_DIALECT.recipient_number_meta: fields["recipient"]}
            relationships["recipient"] = {"data": linkage}

    agent = contract.EVENT_AGENT_RELATIONSHIP
    relationships[agent.wire] = _linkage(agent.resource_type, agent_id)
    return {
        "data": {
            "type": contract.TYPE_EVENTS,
            "id": event_id or new_event_id(),
            "attributes": attributes,
            "relationships": relationships,
        }
    }


def signed_delivery(event: Mapping[str, Any] | bytes, secret: str,
                    dialect: Dialect = DEFAULT_DIALECT) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of one webhook delivery of ``event``.

    ``event`` is an event document (serialised compactly as UTF-8 JSON) or
    an already serialised body, which is signed byte for byte as given. The
    headers are ``Content-Type`` (the JSON:API media type) and
    ``X-MMC-Signature``, the HMAC of exactly the returned body under
    ``secret``. With another ``dialect`` (a site's ``mmc_settings.dialect``),
    a document is sent in its words, and signed and headed by its scheme.
    """
    if isinstance(event, (bytes, bytearray)):
        body = bytes(event)
    else:
        document = event if dialect is DEFAULT_DIALECT else dialect.wire_event(event)
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = str(int(datetime.now(timezone.utc).timestamp()))
    headers = {
        "Content-Type": contract.JSONAPI_MEDIA_TYPE,
        dialect.signature_header: sign(body, secret, dialect, timestamp),
    }
    if dialect.signature_timestamp_header:
        headers[dialect.signature_timestamp_header] = timestamp
    return body, headers
