"""Plain Python objects for what the platform sends back.

The client turns JSON:API documents into these (see :mod:`.jsonapi`), so the
rest of django_mmc never touches a JSON:API document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Failure:
    code: str
    detail: str = ""


@dataclass(frozen=True)
class ChannelResource:
    id: str
    name: str
    channel_type: str


@dataclass(frozen=True)
class ChannelGroupResource:
    id: str
    name: str
    channels: tuple[ChannelResource, ...] = ()


@dataclass(frozen=True)
class TemplateParameter:
    name: str
    required: bool = False


@dataclass(frozen=True)
class TemplateResource:
    id: str
    name: str
    description: str = ""
    channel_types: tuple[str, ...] = ()
    parameters: tuple[TemplateParameter, ...] = ()
    preview: str = ""


@dataclass(frozen=True)
class NotificationResource:
    id: str
    status: str
    channel_type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    failure: Failure | None = None
    recipient: str | None = None
    template_id: str | None = None
    channel_group_id: str | None = None


@dataclass(frozen=True)
class DialogueResource:
    id: str
    status: str
    initiated_by: str | None = None
    channel_type: str | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    recipient: str | None = None
    channel_group_id: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True)
class FileResource:
    id: str
    name: str = ""
    content_type: str = ""
    size: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class MessageResource:
    id: str
    status: str | None = None
    direction: str | None = None
    text: str | None = None
    created_at: datetime | None = None
    failure: Failure | None = None
    dialogue_id: str | None = None
    files: tuple[FileResource, ...] = ()
    channel_type: str | None = None


@dataclass(frozen=True)
class EventResource:
    """A webhook event as it arrived. ``attributes`` and ``related`` (the
    relationship names mapped to the related resource id) keep the wire's
    names; :func:`~django_mmc.client.jsonapi.event_fields` reads them into
    an :class:`EventFields`."""

    id: str
    event_type: str
    occurred_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    related: dict[str, str | None] = field(default_factory=dict)
    #: The platform's customer id, where the event names the recipient by it
    #: (``related["recipient"]`` is then the number beside it, or ``None``).
    customer_id: str | None = None


@dataclass(frozen=True)
class EventFields:
    """What an event of a known type carries, checked and typed (see
    ``EVENT_SCHEMAS`` in :mod:`django_mmc.contract`); what a type does not
    carry stays empty."""

    status: str = ""
    failure: Failure | None = None
    text: str = ""
    channel_type: str = ""
    files: tuple[FileResource, ...] = ()
    initiated_by: str = ""
    closed_by: str = ""
    notification_id: str | None = None
    message_id: str | None = None
    dialogue_id: str | None = None
    recipient: str | None = None
    customer_id: str | None = None
    channel_group_id: str | None = None
    dialogue_agent_id: str | None = None
