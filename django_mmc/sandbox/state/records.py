"""What the sandbox platform stores, and the rules its values follow.

Plain dataclasses, one per kind of object, plus :class:`Lifecycle` (how a
status may move) and :func:`is_e164`. Nothing here locks or renders.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from ... import contract

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

#: How long a stored idempotent response is replayed (contract: 24 hours).
IDEMPOTENCY_TTL = 24 * 3600


@functools.lru_cache(maxsize=65536)
def is_e164(number: str) -> bool:
    """Whether ``number`` is a valid E.164 number exactly as written."""
    if not _E164.fullmatch(number):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed) and (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    )


class Lifecycle:
    """The status words of notifications and messages, and how they move.

    Built from our vocabulary (``STATUS_ORDER``, ``FAILURE_STATUSES``): the
    sandbox keeps our words, and its dialect renders them on the wire
    (:meth:`django_mmc.dialect.Dialect.platform_status`).
    """

    def __init__(self) -> None:
        order = tuple(contract.STATUS_ORDER)
        self.order = order
        self.failures = tuple(contract.FAILURE_STATUSES)
        self.rank = {status: rank for rank, status in enumerate(order)}
        for failure in self.failures:
            self.rank[failure] = len(order)
        #: Statuses after which nothing changes any more.
        self.terminal = frozenset({order[-1], *self.failures})
        self.accepted = order[0]
        #: Where an inbound message starts: it has already reached the agent.
        self.delivered = order[2]
        self.read = order[-1]

    def can_move(self, current: str, new: str) -> bool:
        """Whether a status may go from ``current`` to ``new`` (forward only)."""
        if current in self.terminal or new not in self.rank:
            return False
        return new in self.failures or self.rank[new] > self.rank[current]

    def plan(self, auto_read: bool) -> list[str]:
        """The steps an ordinary send takes after it is accepted."""
        steps = list(self.order[1:])
        if not auto_read:
            steps.remove(self.read)
        return steps

    @staticmethod
    def default_failure(status: str) -> dict[str, str]:
        return {"code": status, "detail": f"Set to {status} in the MMC sandbox."}


@dataclass
class Agent:
    id: str
    secret: str
    endpoint: str | None = None


@dataclass
class Channel:
    id: str
    channel_type: str
    name: str
    group_id: str


@dataclass
class ChannelGroup:
    id: str
    name: str
    designated_agent: str | None
    channels: list[Channel]

    @property
    def channel_types(self) -> set[str]:
        return {channel.channel_type for channel in self.channels}


@dataclass
class Template:
    id: str
    name: str
    description: str
    channel_types: list[str]
    parameters: list[dict[str, Any]]
    preview: str
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass
class Script:
    number: str
    channel_types: list[str] | None
    steps: list[str]
    failure: dict[str, str] | None


@dataclass
class Delivered:
    """Shared by notifications and messages: a status that moves forward."""

    id: str
    status: str
    created_at: str
    updated_at: str
    channel_type: str
    plan: list[str]
    plan_failure: dict[str, str] | None
    failure: dict[str, str] | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    idempotency_key: str | None = None


@dataclass
class Notification(Delivered):
    recipient: str = ""
    #: Set when the request named the recipient by the platform's customer id.
    customer_id: str | None = None
    template_id: str = ""
    channel_group_id: str = ""
    context: dict[str, str] = field(default_factory=dict)


@dataclass
class Message(Delivered):
    dialogue_id: str = ""
    agent_id: str = ""
    direction: str = ""
    text: str | None = None
    template_id: str | None = None
    context: dict[str, str] | None = None
    file_ids: list[str] = field(default_factory=list)


@dataclass
class Dialogue:
    id: str
    agent_id: str
    recipient: str
    channel_group_id: str
    channel_type: str
    initiated_by: str
    opened_at: str
    status: str
    closed_at: str | None = None
    closed_by: str | None = None
    idempotency_key: str | None = None
    message_ids: list[str] = field(default_factory=list)
    #: Set when the dialogue's recipient was named by the platform's customer id.
    customer_id: str | None = None


@dataclass
class StoredFile:
    id: str
    name: str
    content_type: str
    content: bytes
    created_at: str
    idempotency_key: str | None = None

    def metadata(self) -> dict[str, Any]:
        """Name, media type and size, as snapshots and events show a file."""
        return {
            "id": self.id,
            "name": self.name,
            "contentType": self.content_type,
            "size": len(self.content),
        }


@dataclass
class Token:
    client_id: str
    expires_at: float


@dataclass
class StoredResponse:
    fingerprint: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stored_at: float


@dataclass(frozen=True)
class Page:
    """A requested page of a list; ``link(number)`` gives a page's URL.
    ``offset`` is where it starts when the grammar says so, not the number."""

    number: int
    size: int
    link: Callable[[int], str]
    offset: int | None = None
