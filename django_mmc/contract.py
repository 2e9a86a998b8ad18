"""The MMC wire contract in one place.

Every path, media type, header, resource type, status value and event type that
django_mmc exchanges with the Message My Customer platform is defined here, and
only here. The client, the webhook view and the sandbox all import from this
module, so a deployment that finds the platform differs from our reading can
correct it in one place without touching models, tasks or views.

Names marked ``ASSUMED`` are this project's reading of the platform's published
introduction (the Postman collection documents concepts, not per-request
shapes). See ``docs/contract.rst`` for the full contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

# -- Published facts -------------------------------------------------------

#: The published ``messaging_base_url``.
DEFAULT_BASE_URL = "https://prod-api.messagemycustomer.com"
#: The published ``oauth_base_url``.
DEFAULT_OAUTH_BASE_URL = "https://login.payemoji.com/login.payemoji.com/oauth2/v2.0"
#: The published ``oauth_flow``.
DEFAULT_OAUTH_FLOW = "b2c_1_login"
#: The published ``oauth_sa_scopes``.
DEFAULT_SCOPE = "https://login.payemoji.com/auth/.default"

#: JSON:API media type, required on request bodies and in ``Accept``.
JSONAPI_MEDIA_TYPE = "application/vnd.api+json"

#: Header carrying the webhook signature (published: ``last_X-MMC-signature``).
SIGNATURE_HEADER = "X-MMC-Signature"
#: The same header as Django exposes it in ``request.META``.
SIGNATURE_META_KEY = "HTTP_X_MMC_SIGNATURE"

#: Header sent with every create so a retried request is never a second message.
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255

#: Recipients are ``customers`` identified by their E.164 number (published).
RECIPIENT_TYPE = "customers"

# -- Assumed: how the published variables combine ---------------------------

#: ASSUMED: the token URL, built from ``OAUTH_BASE_URL`` and ``OAUTH_FLOW``.
TOKEN_URL_TEMPLATE = "{oauth_base_url}/token?p={oauth_flow}"

#: ASSUMED: every organisation-scoped path is below this prefix.
ORGANISATION_PREFIX = "/organisations/{organisation_id}"

# ASSUMED: resource paths, relative to ORGANISATION_PREFIX.
CHANNEL_GROUPS_PATH = "/channel-groups"
TEMPLATES_PATH = "/templates"
NOTIFICATIONS_PATH = "/notifications"
NOTIFICATION_PATH = "/notifications/{notification_id}"
DIALOGUES_PATH = "/dialogue-agents/{agent_id}/dialogues"
DIALOGUE_PATH = "/dialogue-agents/{agent_id}/dialogues/{dialogue_id}"
MESSAGES_PATH = "/dialogue-agents/{agent_id}/dialogues/{dialogue_id}/messages"
FILES_PATH = "/files"

#: ASSUMED: notifications can be listed by the ``Idempotency-Key`` they were
#: created with (``filter[idempotencyKey]=...``), so a send whose answer was
#: lost can be looked up without sending it again.
IDEMPOTENCY_KEY_FILTER = "idempotencyKey"

#: ASSUMED: the most ids one ``filter[id]`` poll may carry, and the page size cap.
MAX_FILTER_IDS = 100
MAX_PAGE_SIZE = 100

#: ASSUMED: file uploads over this size get 413.
MAX_FILE_SIZE = 16 * 1024 * 1024

# ASSUMED: resource type names (plural kebab-case).
TYPE_CHANNEL_GROUPS = "channel-groups"
TYPE_CHANNELS = "channels"
TYPE_TEMPLATES = "templates"
TYPE_NOTIFICATIONS = "notifications"
TYPE_DIALOGUE_AGENTS = "dialogue-agents"
TYPE_DIALOGUES = "dialogues"
TYPE_MESSAGES = "messages"
TYPE_FILES = "files"
TYPE_EVENTS = "events"

# ASSUMED: webhook signature algorithm and encoding: lowercase hex HMAC-SHA256
# of the raw body keyed with the agent's secret.
SIGNATURE_ALGORITHM = "sha256"

# -- Values ------------------------------------------------------------------
#
# The wire vocabulary as ``str`` enums: a member compares equal to the word on
# the wire, and :mod:`django_mmc.status` builds the model choices from them.

#: Channel types the platform documents; unknown ones are stored, not rejected.
CHANNEL_TYPES = ("WHATSAPP", "SMS")


class PlatformStatus(str, Enum):
    """ASSUMED: the statuses the platform reports for notifications and
    dialogue messages. ``ACCEPTED`` < ``SENT`` < ``DELIVERED`` < ``READ``;
    ``FAILED`` and ``EXPIRED`` are terminal and carry ``failure``."""

    ACCEPTED = "ACCEPTED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class DialogueState(str, Enum):
    """A dialogue's ``status`` on the platform."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"


class InitiatedBy(str, Enum):
    """Who opened a dialogue (``initiatedBy``)."""

    AGENT = "AGENT"
    RECIPIENT = "RECIPIENT"


class ClosedBy(str, Enum):
    """ASSUMED: who can close a dialogue (``closedBy``)."""

    AGENT = "AGENT"
    RECIPIENT = "RECIPIENT"
    PLATFORM = "PLATFORM"
    TIMEOUT = "TIMEOUT"


class Direction(str, Enum):
    """A dialogue message's ``direction``."""

    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class EventType(str, Enum):
    """ASSUMED: the webhook event types (``eventType``)."""

    NOTIFICATION_STATUS = "notification.status"
    MESSAGE_STATUS = "message.status"
    MESSAGE_RECEIVED = "message.received"
    DIALOGUE_OPENED = "dialogue.opened"
    DIALOGUE_CLOSED = "dialogue.closed"


#: ASSUMED: platform statuses of notifications and messages, in order.
STATUS_ORDER = tuple(s.value for s in PlatformStatus if s not in (
    PlatformStatus.FAILED, PlatformStatus.EXPIRED))
#: ASSUMED: terminal failure statuses, which carry ``failure``.
FAILURE_STATUSES = (PlatformStatus.FAILED.value, PlatformStatus.EXPIRED.value)

DIALOGUE_OPEN = DialogueState.OPEN.value
DIALOGUE_CLOSED = DialogueState.CLOSED.value
INITIATED_BY = tuple(m.value for m in InitiatedBy)
CLOSED_BY = tuple(m.value for m in ClosedBy)
DIRECTION_INBOUND = Direction.INBOUND.value
DIRECTION_OUTBOUND = Direction.OUTBOUND.value

EVENT_NOTIFICATION_STATUS = EventType.NOTIFICATION_STATUS.value
EVENT_MESSAGE_STATUS = EventType.MESSAGE_STATUS.value
EVENT_MESSAGE_RECEIVED = EventType.MESSAGE_RECEIVED.value
EVENT_DIALOGUE_OPENED = EventType.DIALOGUE_OPENED.value
EVENT_DIALOGUE_CLOSED = EventType.DIALOGUE_CLOSED.value
EVENT_TYPES = tuple(m.value for m in EventType)

# -- The event schema (section 8 of the contract) -------------------------------
#
# What each event type carries, in one table that the JSON:API layer reads
# events with (:func:`django_mmc.client.jsonapi.parse_event`) and that
# :func:`django_mmc.testing.build_event` and the sandbox build them with, so
# the three can never disagree. Names on the left are the wire's camelCase,
# on the right the snake_case field of
# :class:`django_mmc.client.resources.EventResource`.


class Required:
    """Marks an event attribute that must be present."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = Required()


@dataclass(frozen=True)
class EventAttribute:
    wire: str
    field: str
    default: Any = REQUIRED


@dataclass(frozen=True)
class EventRelationship:
    wire: str
    field: str
    resource_type: str


@dataclass(frozen=True)
class EventSchema:
    attributes: tuple[EventAttribute, ...]
    relationships: tuple[EventRelationship, ...]


#: Every event also names its ``dialogueAgent``.
EVENT_AGENT_RELATIONSHIP = EventRelationship("dialogueAgent", "dialogue_agent_id",
                                             TYPE_DIALOGUE_AGENTS)

_STATUS_ATTRIBUTES = (EventAttribute("status", "status"),
                      EventAttribute("failure", "failure", None))

EVENT_SCHEMAS: dict[str, EventSchema] = {
    EventType.NOTIFICATION_STATUS.value: EventSchema(
        _STATUS_ATTRIBUTES,
        (EventRelationship("notification", "notification_id", TYPE_NOTIFICATIONS),),
    ),
    EventType.MESSAGE_STATUS.value: EventSchema(
        _STATUS_ATTRIBUTES,
        (EventRelationship("message", "message_id", TYPE_MESSAGES),
         EventRelationship("dialogue", "dialogue_id", TYPE_DIALOGUES)),
    ),
    EventType.MESSAGE_RECEIVED.value: EventSchema(
        (EventAttribute("text", "text", ""),
         EventAttribute("channelType", "channel_type"),
         EventAttribute("files", "files", ())),
        (EventRelationship("message", "message_id", TYPE_MESSAGES),
         EventRelationship("dialogue", "dialogue_id", TYPE_DIALOGUES),
         EventRelationship("recipient", "recipient", RECIPIENT_TYPE),
         EventRelationship("channelGroup", "channel_group_id", TYPE_CHANNEL_GROUPS)),
    ),
    EventType.DIALOGUE_OPENED.value: EventSchema(
        (EventAttribute("initiatedBy", "initiated_by"),
         EventAttribute("channelType", "channel_type")),
        (EventRelationship("dialogue", "dialogue_id", TYPE_DIALOGUES),
         EventRelationship("recipient", "recipient", RECIPIENT_TYPE),
         EventRelationship("channelGroup", "channel_group_id", TYPE_CHANNEL_GROUPS)),
    ),
    EventType.DIALOGUE_CLOSED.value: EventSchema(
        (EventAttribute("closedBy", "closed_by"),),
        (EventRelationship("dialogue", "dialogue_id", TYPE_DIALOGUES),),
    ),
}

#: The relationships an event may be "about", in the order the webhook
#: storage picks its subject (what staff search events by).
EVENT_SUBJECTS = ("notification_id", "message_id", "dialogue_id")

# -- Error codes (section 3 of the contract) --------------------------------

ERROR_BAD_REQUEST = "BAD_REQUEST"
ERROR_UNAUTHORIZED = "UNAUTHORIZED"
ERROR_TOKEN_EXPIRED = "TOKEN_EXPIRED"
ERROR_FORBIDDEN = "FORBIDDEN"
ERROR_NOT_DIALOGUE_OWNER = "NOT_DIALOGUE_OWNER"
ERROR_NOT_FOUND = "NOT_FOUND"
ERROR_DIALOGUE_ACTIVE = "DIALOGUE_ACTIVE"
ERROR_DIALOGUE_CLOSED = "DIALOGUE_CLOSED"
ERROR_PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
ERROR_UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
ERROR_NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
ERROR_INVALID_RECIPIENT = "INVALID_RECIPIENT"
ERROR_TEMPLATE_PARAMETER_MISSING = "TEMPLATE_PARAMETER_MISSING"
ERROR_TEMPLATE_PARAMETER_UNKNOWN = "TEMPLATE_PARAMETER_UNKNOWN"
ERROR_TEMPLATE_NOT_FOR_CHANNEL = "TEMPLATE_NOT_FOR_CHANNEL"
ERROR_CHANNEL_NOT_IN_GROUP = "CHANNEL_NOT_IN_GROUP"
ERROR_IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
ERROR_VALIDATION = "VALIDATION_ERROR"
ERROR_RATE_LIMITED = "RATE_LIMITED"
ERROR_INTERNAL = "INTERNAL_ERROR"
ERROR_UNAVAILABLE = "UNAVAILABLE"

#: ASSUMED: the sandbox's default rate limit, requests per second per client.
SANDBOX_RATE_LIMIT = 50


def organisation_url(base_url: str, organisation_id: str) -> str:
    """The root every organisation-scoped path is joined to."""
    return base_url.rstrip("/") + ORGANISATION_PREFIX.format(
        organisation_id=organisation_id
    )


def token_url(oauth_base_url: str, oauth_flow: str) -> str:
    """The OAuth 2.0 token endpoint for the client-credentials grant."""
    return TOKEN_URL_TEMPLATE.format(
        oauth_base_url=oauth_base_url.rstrip("/"), oauth_flow=oauth_flow
    )
