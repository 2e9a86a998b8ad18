"""The one small layer that builds and reads JSON:API documents.

Building: :func:`resource_document` makes a ``{"data": {...}}`` request body.
Reading: the ``parse_*`` functions turn a resource object into the plain
dataclasses of :mod:`.resources`. Unknown attributes are ignored and unknown
enum values are kept as strings, so a platform that adds things does not break
the client. Type names, event types and status words are read through the
site's dialect (``MMC['CONTRACT']``, :mod:`django_mmc.dialect`) and come out
in our words. A status word the dialect does not know (a new word, or one of
django_mmc's local statuses such as ``CANCELLED``) is kept as it came and
logged once per word: whoever applies statuses ignores it
(:func:`django_mmc.status.can_advance`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from .. import contract
from ..conf import mmc_settings
from ..dialect import Dialect
from .resources import (
    ChannelGroupResource,
    ChannelResource,
    DialogueResource,
    EventFields,
    EventResource,
    Failure,
    FileResource,
    MessageResource,
    NotificationResource,
    TemplateParameter,
    TemplateResource,
)

logger = logging.getLogger("django_mmc.client")

#: Our words for the statuses the platform reports for notifications and messages.
PLATFORM_STATUS_WORDS = frozenset(status.value for status in contract.PlatformStatus)
_unknown_words: set[str] = set()
_unknown_words_lock = threading.Lock()


def dialect() -> Dialect:
    """The site's dialect, which every reader here goes through."""
    return mmc_settings.dialect


def status_word(value: Any, resource_type: str, resource_id: str) -> str:
    """The status of a notification or message, in our words.

    A word the dialect does not know is kept as it came (callers never apply
    it) and logged, once per word for the process, so a platform that sends
    something odd on every poll does not flood the log."""
    word = str(value or "")
    ours = dialect().our_status(word) if word else None
    if ours is not None:
        return ours
    if word and word not in PLATFORM_STATUS_WORDS:
        with _unknown_words_lock:
            first = word not in _unknown_words
            _unknown_words.add(word)
        if first:
            logger.warning(
                "django_mmc: the platform reported the status %r for %s %s; it is not a "
                "status the platform reports, so it is ignored", word[:64], resource_type,
                str(resource_id)[:64])
    return word


def forget_unknown_status_words() -> None:
    """Log each unknown status word again the next time it comes."""
    with _unknown_words_lock:
        _unknown_words.clear()


class DocumentError(ValueError):
    """A document from the platform does not have the JSON:API shape we need."""


def identifier(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"type": resource_type, "id": str(resource_id)}


def resource_document(
    resource_type: str,
    attributes: Mapping[str, Any] | None = None,
    relationships: Mapping[str, Any] | None = None,
    resource_id: str | None = None,
) -> dict[str, Any]:
    """A request body with one resource object. ``relationships`` maps a name
    to a ``(type, id)`` pair, a list of pairs, or ``None``."""
    data: dict[str, Any] = {"type": resource_type}
    if resource_id is not None:
        data["id"] = str(resource_id)
    if attributes:
        data["attributes"] = dict(attributes)
    if relationships:
        rels: dict[str, Any] = {}
        for name, target in relationships.items():
            if target is None:
                rels[name] = {"data": None}
            elif isinstance(target, list):
                rels[name] = {"data": [identifier(t, i) for t, i in target]}
            else:
                rels[name] = {"data": identifier(*target)}
        data["relationships"] = rels
    return {"data": data}


def primary_data(document: Any) -> Any:
    if not isinstance(document, Mapping) or "data" not in document:
        raise DocumentError("The response is not a JSON:API document with primary data.")
    return document["data"]


def _resource(obj: Any, expected_type: str | None = None) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping) or "id" not in obj or "type" not in obj:
        raise DocumentError("Expected a JSON:API resource object with 'type' and 'id'.")
    if expected_type and obj["type"] != expected_type:
        raise DocumentError(f"Expected a {expected_type!r} resource, got {obj['type']!r}.")
    return obj


def _attributes(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = obj.get("attributes") or {}
    if not isinstance(attrs, Mapping):
        raise DocumentError("'attributes' must be an object.")
    return attrs


def related_id(obj: Mapping[str, Any], name: str) -> str | None:
    """The id of a to-one relationship, or ``None``."""
    rel = (obj.get("relationships") or {}).get(name)
    if not isinstance(rel, Mapping):
        return None
    data = rel.get("data")
    if isinstance(data, Mapping) and data.get("id") is not None:
        return str(data["id"])
    return None


def related_ids(obj: Mapping[str, Any], name: str) -> list[str]:
    rel = (obj.get("relationships") or {}).get(name)
    data = rel.get("data") if isinstance(rel, Mapping) else None
    if not isinstance(data, list):
        return []
    return [str(item["id"]) for item in data if isinstance(item, Mapping) and "id" in item]


def parse_timestamp(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    return parse_datetime(value)


def parse_failure(value: Any) -> Failure | None:
    if not isinstance(value, Mapping) or not value.get("code"):
        return None
    return Failure(code=str(value["code"]), detail=str(value.get("detail") or ""))


def parse_channel(obj: Any) -> ChannelResource:
    obj = _resource(obj, dialect().type_channels)
    attrs = _attributes(obj)
    return ChannelResource(
        id=str(obj["id"]),
        name=str(attrs.get("name") or ""),
        channel_type=str(attrs.get("channelType") or ""),
    )


def parse_channel_groups(document: Any) -> list[ChannelGroupResource]:
    """Channel groups with their channels, from ``?include=channels``."""
    data = primary_data(document)
    words = dialect()
    included = {
        (item.get("type"), str(item.get("id"))): item
        for item in document.get("included") or []
        if isinstance(item, Mapping)
    }
    groups = []
    for obj in data or []:
        obj = _resource(obj, words.type_channel_groups)
        channels = tuple(
            parse_channel(included[(words.type_channels, channel_id)])
            for channel_id in related_ids(obj, "channels")
            if (words.type_channels, channel_id) in included
        )
        groups.append(
            ChannelGroupResource(
                id=str(obj["id"]), name=str(_attributes(obj).get("name") or ""), channels=channels
            )
        )
    return groups


def parse_template(obj: Any) -> TemplateResource:
    obj = _resource(obj, dialect().type_templates)
    attrs = _attributes(obj)
    parameters = tuple(
        TemplateParameter(name=str(p["name"]), required=bool(p.get("required", False)))
        for p in attrs.get("parameters") or []
        if isinstance(p, Mapping) and p.get("name")
    )
    return TemplateResource(
        id=str(obj["id"]),
        name=str(attrs.get("name") or ""),
        description=str(attrs.get("description") or ""),
        channel_types=tuple(str(t) for t in attrs.get("channelTypes") or ()),
        parameters=parameters,
        preview=str(attrs.get("preview") or ""),
    )


def parse_notification(obj: Any) -> NotificationResource:
    obj = _resource(obj, dialect().type_notifications)
    attrs = _attributes(obj)
    return NotificationResource(
        id=str(obj["id"]),
        status=status_word(attrs.get("status"), contract.TYPE_NOTIFICATIONS, obj["id"]),
        channel_type=attrs.get("channelType"),
        created_at=parse_timestamp(attrs.get("createdAt")),
        updated_at=parse_timestamp(attrs.get("updatedAt")),
        failure=parse_failure(attrs.get("failure")),
        recipient=related_id(obj, "recipient"),
        template_id=related_id(obj, "template"),
        channel_group_id=related_id(obj, "channelGroup"),
    )


def parse_dialogue(obj: Any) -> DialogueResource:
    obj = _resource(obj, dialect().type_dialogues)
    attrs = _attributes(obj)
    return DialogueResource(
        id=str(obj["id"]),
        status=str(attrs.get("status") or ""),
        initiated_by=attrs.get("initiatedBy"),
        channel_type=attrs.get("channelType"),
        opened_at=parse_timestamp(attrs.get("openedAt")),
        closed_at=parse_timestamp(attrs.get("closedAt")),
        closed_by=attrs.get("closedBy"),
        recipient=related_id(obj, "recipient"),
        channel_group_id=related_id(obj, "channelGroup"),
        agent_id=related_id(obj, "dialogueAgent"),
    )


def parse_file(obj: Any) -> FileResource:
    """A file, from a ``files`` resource object or from the plain
    ``{"id", "name", ...}`` entries of a ``message.received`` event."""
    if not isinstance(obj, Mapping) or "id" not in obj:
        raise DocumentError("Expected a file with an 'id'.")
    attrs = obj.get("attributes") if "attributes" in obj else obj
    attrs = attrs if isinstance(attrs, Mapping) else {}
    size = attrs.get("size")
    return FileResource(
        id=str(obj["id"]),
        name=str(attrs.get("name") or ""),
        content_type=str(attrs.get("contentType") or ""),
        size=size if isinstance(size, int) else None,
        url=attrs.get("url"),
    )


def parse_message(obj: Any) -> MessageResource:
    obj = _resource(obj, dialect().type_messages)
    attrs = _attributes(obj)
    return MessageResource(
        id=str(obj["id"]),
        status=status_word(attrs.get("status"), contract.TYPE_MESSAGES, obj["id"]) or None,
        direction=attrs.get("direction"),
        text=attrs.get("text"),
        created_at=parse_timestamp(attrs.get("createdAt")),
        failure=parse_failure(attrs.get("failure")),
        dialogue_id=related_id(obj, "dialogue"),
        files=tuple(parse_file({"id": i}) for i in related_ids(obj, "files")),
        channel_type=attrs.get("channelType") or None,
    )


def parse_event(document: Any) -> EventResource:
    """A webhook event document, its ``eventType`` in our words (an unknown
    one as it came). Raises :class:`DocumentError` when it is not an
    ``events`` resource with an ``eventType``."""
    words = dialect()
    obj = _resource(primary_data(document), words.type_events)
    attrs = dict(_attributes(obj))
    event_type = attrs.pop("eventType", None)
    if not event_type or not isinstance(event_type, str):
        raise DocumentError("The event has no 'eventType' attribute.")
    event_type = words.our_event(event_type)
    rels = obj.get("relationships") or {}
    related = {
        name: related_id(obj, name) for name in (rels if isinstance(rels, Mapping) else {})
    }
    customer_id = None
    if isinstance(rels, Mapping) and "recipient" in rels:
        recipient = rels["recipient"]
        related["recipient"], customer_id = words.read_recipient(
            recipient.get("data") if isinstance(recipient, Mapping) else None)
    return EventResource(
        id=str(obj["id"]),
        event_type=event_type,
        occurred_at=parse_timestamp(attrs.pop("occurredAt", None)),
        attributes=attrs,
        related=related,
        customer_id=customer_id,
    )


def _event_value(name: str, value: Any) -> Any:
    """One attribute of an event, checked: a bad value is a
    :class:`DocumentError` naming it."""
    if name == "files":
        if not isinstance(value, (list, tuple)):
            raise DocumentError("'files' must be a list.")
        return tuple(parse_file(item) for item in value)
    if name == "failure":
        return parse_failure(value)
    if name == "text":
        if value is not None and not isinstance(value, str):
            raise DocumentError("'text' must be a string.")
        return value or ""
    return str(value or "")


def event_fields(event: EventResource) -> EventFields:
    """The typed content of ``event``, by the contract's event schema.
    Raises :class:`DocumentError` naming the first malformed value."""
    schema = contract.EVENT_SCHEMAS.get(event.event_type)
    values: dict[str, Any] = {
        "dialogue_agent_id": event.related.get(contract.EVENT_AGENT_RELATIONSHIP.wire),
        "customer_id": event.customer_id}
    if schema is not None:
        for attribute in schema.attributes:
            default = None if attribute.default is contract.REQUIRED else attribute.default
            values[attribute.field] = _event_value(
                attribute.field, event.attributes.get(attribute.wire, default))
        for relationship in schema.relationships:
            values[relationship.field] = event.related.get(relationship.wire)
    if values.get("status"):
        values["status"] = status_word(values["status"], dialect().type_events, event.id)
    return EventFields(**values)


def error_objects(document: Any) -> list[dict[str, Any]]:
    """The ``errors`` array of an error document, or ``[]``."""
    if isinstance(document, Mapping) and isinstance(document.get("errors"), list):
        return [e for e in document["errors"] if isinstance(e, dict)]
    return []


def next_link(document: Any) -> str | None:
    links = document.get("links") if isinstance(document, Mapping) else None
    if isinstance(links, Mapping):
        link = links.get("next")
        if isinstance(link, Mapping):  # a JSON:API link object
            link = link.get("href")
        if isinstance(link, str) and link:
            return link
    return None
