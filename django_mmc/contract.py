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

#: Channel types the platform documents; unknown ones are stored, not rejected.
CHANNEL_TYPES = ("WHATSAPP", "SMS")

#: ASSUMED: platform statuses of notifications and messages, in order.
STATUS_ORDER = ("ACCEPTED", "SENT", "DELIVERED", "READ")
#: ASSUMED: terminal failure statuses, which carry ``failure``.
FAILURE_STATUSES = ("FAILED", "EXPIRED")

DIALOGUE_OPEN = "OPEN"
DIALOGUE_CLOSED = "CLOSED"
INITIATED_BY = ("AGENT", "RECIPIENT")
#: ASSUMED: who can close a dialogue.
CLOSED_BY = ("AGENT", "RECIPIENT", "PLATFORM", "TIMEOUT")

DIRECTION_INBOUND = "INBOUND"
DIRECTION_OUTBOUND = "OUTBOUND"

# ASSUMED: webhook event types.
EVENT_NOTIFICATION_STATUS = "notification.status"
EVENT_MESSAGE_STATUS = "message.status"
EVENT_MESSAGE_RECEIVED = "message.received"
EVENT_DIALOGUE_OPENED = "dialogue.opened"
EVENT_DIALOGUE_CLOSED = "dialogue.closed"
EVENT_TYPES = (
    EVENT_NOTIFICATION_STATUS,
    EVENT_MESSAGE_STATUS,
    EVENT_MESSAGE_RECEIVED,
    EVENT_DIALOGUE_OPENED,
    EVENT_DIALOGUE_CLOSED,
)

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
