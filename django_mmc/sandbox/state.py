"""The sandbox platform's state and rules, independent of HTTP.

:class:`Platform` holds every object the platform knows (tokens, channel
groups, templates, notifications, dialogues, messages, files, stored
idempotent responses) behind one lock, applies the contract's rules to them
and renders them as JSON:API resource objects. Rule violations raise
:class:`ApiError`, which the HTTP layer turns into an error document.

Events and status steps produced by an operation are handed to the
``on_event``/``on_progress`` callbacks *after* the lock is released, so
slow webhook work never holds up a request.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from .. import contract
from ..testing import build_event, format_timestamp

# -- Errors ------------------------------------------------------------------

TITLES = {
    contract.ERROR_BAD_REQUEST: "Bad request",
    contract.ERROR_UNAUTHORIZED: "Unauthorized",
    contract.ERROR_TOKEN_EXPIRED: "Token expired",
    contract.ERROR_FORBIDDEN: "Forbidden",
    contract.ERROR_NOT_DIALOGUE_OWNER: "Not the dialogue's owner",
    contract.ERROR_NOT_FOUND: "Not found",
    contract.ERROR_DIALOGUE_ACTIVE: "Dialogue active",
    contract.ERROR_DIALOGUE_CLOSED: "Dialogue closed",
    contract.ERROR_PAYLOAD_TOO_LARGE: "Payload too large",
    contract.ERROR_UNSUPPORTED_MEDIA_TYPE: "Unsupported media type",
    contract.ERROR_NOT_ACCEPTABLE: "Not acceptable",
    contract.ERROR_INVALID_RECIPIENT: "Invalid recipient",
    contract.ERROR_TEMPLATE_PARAMETER_MISSING: "Template parameter missing",
    contract.ERROR_TEMPLATE_PARAMETER_UNKNOWN: "Template parameter unknown",
    contract.ERROR_TEMPLATE_NOT_FOR_CHANNEL: "Template not available on channel",
    contract.ERROR_CHANNEL_NOT_IN_GROUP: "Channel not in channel group",
    contract.ERROR_IDEMPOTENCY_KEY_REUSED: "Idempotency key reused",
    contract.ERROR_VALIDATION: "Validation error",
    contract.ERROR_RATE_LIMITED: "Too many requests",
    contract.ERROR_INTERNAL: "Internal error",
    contract.ERROR_UNAVAILABLE: "Service unavailable",
}


def error_object(
    status: int,
    code: str,
    detail: str,
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    meta: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """One JSON:API error object as the platform writes it."""
    obj: dict[str, Any] = {
        "status": str(status),
        "code": code,
        "title": title or TITLES.get(code, code),
        "detail": detail,
    }
    if pointer is not None:
        obj["source"] = {"pointer": pointer}
    elif parameter is not None:
        obj["source"] = {"parameter": parameter}
    if meta:
        obj["meta"] = dict(meta)
    return obj


class ApiError(Exception):
    """A refused API request: HTTP ``status`` and one or more error objects."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        meta: Mapping[str, Any] | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.headers = dict(headers or {})
        self.errors = errors or [
            error_object(
                status, code, detail, pointer=pointer, parameter=parameter, meta=meta, title=title
            )
        ]

    def document(self) -> dict[str, Any]:
        return {"errors": self.errors}


class OAuthError(Exception):
    """A refused token request (RFC 6749 section 5.2 error response)."""

    def __init__(self, status: int, error: str, description: str, basic: bool = False) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.basic = basic


def _bad(detail: str, pointer: str | None = None) -> ApiError:
    return ApiError(400, contract.ERROR_BAD_REQUEST, detail, pointer=pointer)


def _invalid(detail: str, pointer: str | None = None) -> ApiError:
    return ApiError(422, contract.ERROR_VALIDATION, detail, pointer=pointer)


def _not_found(detail: str, pointer: str | None = None) -> ApiError:
    return ApiError(404, contract.ERROR_NOT_FOUND, detail, pointer=pointer)


# -- Values ------------------------------------------------------------------

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

STATUS_RANK = {status: rank for rank, status in enumerate(contract.STATUS_ORDER)}
for _failure in contract.FAILURE_STATUSES:
    STATUS_RANK[_failure] = len(contract.STATUS_ORDER)
#: Statuses after which nothing changes any more.
TERMINAL_STATUSES = frozenset({contract.STATUS_ORDER[-1], *contract.FAILURE_STATUSES})
ACCEPTED = contract.STATUS_ORDER[0]
READ = contract.STATUS_ORDER[-1]

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


def can_move(current: str, new: str) -> bool:
    """Whether a status may go from ``current`` to ``new`` (forward only)."""
    if current in TERMINAL_STATUSES or new not in STATUS_RANK:
        return False
    return new in contract.FAILURE_STATUSES or STATUS_RANK[new] > STATUS_RANK[current]


def default_failure(status: str) -> dict[str, str]:
    return {"code": status, "detail": f"Set to {status} in the MMC sandbox."}


# -- Records -----------------------------------------------------------------


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
    template_id: str = ""
    channel_group_id: str = ""
    context: dict[str, str] = field(default_factory=dict)


@dataclass
class Message(Delivered):
    dialogue_id: str = ""
    agent_id: str = ""
    direction: str = contract.DIRECTION_OUTBOUND
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
    status: str = contract.DIALOGUE_OPEN
    closed_at: str | None = None
    closed_by: str | None = None
    idempotency_key: str | None = None
    message_ids: list[str] = field(default_factory=list)


@dataclass
class StoredFile:
    id: str
    name: str
    content_type: str
    content: bytes
    created_at: str
    idempotency_key: str | None = None


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
    """A requested page of a list; ``link(number)`` gives a page's URL."""

    number: int
    size: int
    link: Callable[[int], str]


# -- Fixtures ----------------------------------------------------------------


def load_fixtures(path: str | Path) -> dict[str, Any]:
    """The seed document at ``path`` (see the packaged ``fixtures.json``)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    for key in ("channelGroups", "templates"):
        if key not in data:
            raise ValueError(f"Sandbox fixtures {path} have no {key!r}")
    return data


def _render_template(template: Template) -> dict[str, Any]:
    return {
        "type": contract.TYPE_TEMPLATES,
        "id": template.id,
        "attributes": {
            "name": template.name,
            "description": template.description,
            "channelTypes": list(template.channel_types),
            "parameters": [dict(p) for p in template.parameters],
            "preview": template.preview,
        },
    }


# -- Document reading --------------------------------------------------------


def _primary(
    document: Any,
    resource_type: str,
    *,
    attributes: Iterable[str],
    relationships: Iterable[str],
    resource_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(attributes, relationships)`` of a request's primary data.

    Applies JSON:API's rules: a ``data`` object of the collection's type
    (another type is ``409``), no client-generated id on create (``403``),
    the URL's id on update (``409`` if different). Members the platform
    does not know are refused (``422``) so a client drifting from the
    contract finds out in its tests, not in production.
    """
    if not isinstance(document, dict) or not isinstance(document.get("data"), dict):
        raise _bad("The document must have a 'data' object.", "/data")
    data = document["data"]
    kind = data.get("type")
    if not isinstance(kind, str):
        raise _bad("The resource object needs a 'type'.", "/data/type")
    if kind != resource_type:
        raise ApiError(
            409,
            contract.ERROR_BAD_REQUEST,
            f"Expected type {resource_type!r}, got {kind!r}.",
            pointer="/data/type",
            title="Resource type conflict",
        )
    if resource_id is None:
        if "id" in data:
            raise ApiError(
                403,
                contract.ERROR_FORBIDDEN,
                "Client-generated ids are not supported.",
                pointer="/data/id",
            )
    elif data.get("id") != resource_id:
        raise ApiError(
            409,
            contract.ERROR_BAD_REQUEST,
            f"The resource id must be {resource_id!r}, as in the URL.",
            pointer="/data/id",
            title="Resource id conflict",
        )
    attrs = data.get("attributes", {})
    rels = data.get("relationships", {})
    if not isinstance(attrs, dict):
        raise _bad("'attributes' must be an object.", "/data/attributes")
    if not isinstance(rels, dict):
        raise _bad("'relationships' must be an object.", "/data/relationships")
    for name in attrs:
        if name not in attributes:
            raise _invalid(f"Unknown attribute {name!r}.", f"/data/attributes/{name}")
    for name in rels:
        if name not in relationships:
            raise _invalid(f"Unknown relationship {name!r}.", f"/data/relationships/{name}")
    return attrs, rels


def _to_one(
    relationships: Mapping[str, Any], name: str, resource_type: str, *, required: bool = True
) -> str | None:
    """The id in a to-one relationship's resource linkage."""
    pointer = f"/data/relationships/{name}"
    if name not in relationships or relationships[name] is None:
        if required:
            raise _invalid(f"The relationship {name!r} is required.", pointer)
        return None
    member = relationships[name]
    if not isinstance(member, dict) or "data" not in member:
        raise _bad(f"The relationship {name!r} needs a 'data' member.", pointer)
    linkage = member["data"]
    if linkage is None and not required:
        return None
    if not isinstance(linkage, dict):
        raise _bad(f"The relationship {name!r} needs a resource identifier.", pointer + "/data")
    if linkage.get("type") != resource_type:
        raise _bad(f"The relationship {name!r} must be of type {resource_type!r}.", pointer)
    linked_id = linkage.get("id")
    if not isinstance(linked_id, str) or not linked_id:
        raise _bad("Resource ids are non-empty strings.", pointer + "/data/id")
    return linked_id


def _to_many(relationships: Mapping[str, Any], name: str, resource_type: str) -> list[str]:
    pointer = f"/data/relationships/{name}"
    if name not in relationships:
        return []
    member = relationships[name]
    if not isinstance(member, dict) or not isinstance(member.get("data"), list):
        raise _bad(f"The relationship {name!r} needs a 'data' list.", pointer)
    ids = []
    for index, linkage in enumerate(member["data"]):
        item = f"{pointer}/data/{index}"
        if not isinstance(linkage, dict) or linkage.get("type") != resource_type:
            raise _bad(f"Every item must be of type {resource_type!r}.", item)
        linked_id = linkage.get("id")
        if not isinstance(linked_id, str) or not linked_id:
            raise _bad("Resource ids are non-empty strings.", item + "/id")
        ids.append(linked_id)
    return ids


def _channel_type(attributes: Mapping[str, Any], default: str | None = None) -> str:
    value = attributes.get("channelType", default)
    if not isinstance(value, str) or not value:
        raise _invalid("'channelType' is required.", "/data/attributes/channelType")
    return value


def _recipient(relationships: Mapping[str, Any]) -> str:
    number = _to_one(relationships, "recipient", contract.RECIPIENT_TYPE)
    assert number is not None
    if not is_e164(number):
        raise ApiError(
            422,
            contract.ERROR_INVALID_RECIPIENT,
            f"{number!r} is not a valid E.164 number.",
            pointer="/data/relationships/recipient",
        )
    return number


def fingerprint(method: str, path: str, payload: Any) -> str:
    """What makes two requests with one idempotency key "the same"."""
    if isinstance(payload, (bytes, bytearray)):
        raw = bytes(payload)
    else:
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + raw).hexdigest()


# -- The platform ------------------------------------------------------------

EventSink = Callable[[str, dict[str, Any]], None]
ProgressSink = Callable[[str, str], None]


class Platform:
    """Everything the sandboxed platform knows, behind one lock.

    Operations are atomic: each holds :attr:`lock` while it reads and writes
    state, and nothing slow (I/O, sleeping, webhook work) happens under it.
    """

    def __init__(
        self,
        *,
        fixtures: Mapping[str, Any],
        client_id: str,
        client_secret: str,
        organisation_id: str,
        agents: Mapping[str, Agent],
        notification_agent: str,
        token_lifetime: float,
        auto_read: bool,
        rate_limit: float | None,
        on_event: EventSink,
        on_progress: ProgressSink,
    ) -> None:
        self.lock = threading.Lock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.organisation_id = organisation_id
        self.agents = dict(agents)
        self.notification_agent = notification_agent
        self.token_lifetime = token_lifetime
        #: Every token ever granted, kept across resets: tests scan logs for them.
        self.issued_tokens: list[str] = []
        self.auto_read = auto_read
        self.rate_limit = rate_limit
        self.base_url = ""
        self._on_event = on_event
        self._on_progress = on_progress
        self._load(fixtures)
        # Id sequences survive reset(), so an id is never reused by one sandbox
        # (a test's database may still hold the previous test's ids).
        self._notification_ids = itertools.count(79746)
        self._dialogue_ids = itertools.count(5501)
        self._message_ids = itertools.count(88121)
        self._file_ids = itertools.count(9)
        self._key_locks = [threading.Lock() for _ in range(64)]
        self.reset()

    # -- setup ---------------------------------------------------------------

    def _load(self, fixtures: Mapping[str, Any]) -> None:
        self.channel_groups: dict[str, ChannelGroup] = {}
        for group in fixtures["channelGroups"]:
            gid = str(group["id"])
            channels = [
                Channel(str(c["id"]), c["channelType"], c.get("name", ""), gid)
                for c in group.get("channels", [])
            ]
            agent = group.get("designatedAgent")
            self.channel_groups[gid] = ChannelGroup(
                gid, group.get("name", ""), None if agent is None else str(agent), channels
            )
        self.templates: dict[str, Template] = {}
        for item in fixtures["templates"]:
            template = Template(
                id=str(item["id"]),
                name=item["name"],
                description=item.get("description", ""),
                channel_types=list(item.get("channelTypes", contract.CHANNEL_TYPES)),
                parameters=[
                    {"name": p["name"], "required": bool(p.get("required", False))}
                    for p in item.get("parameters", [])
                ],
                preview=item.get("preview", ""),
            )
            # Templates never change: render once.
            template.resource = _render_template(template)
            self.templates[template.id] = template
        self.scripts: dict[str, Script] = {}
        for item in fixtures.get("scriptedRecipients", []):
            self.scripts[item["number"]] = Script(
                number=item["number"],
                channel_types=item.get("channelTypes"),
                steps=list(item["steps"]),
                failure=item.get("failure"),
            )
        channel_types = sorted(
            {c.channel_type for g in self.channel_groups.values() for c in g.channels}
        )
        self._channel_groups_resources = [
            self._render_group(g) for g in self.channel_groups.values()
        ]
        self._channel_resources = [
            {
                "type": contract.TYPE_CHANNELS,
                "id": c.id,
                "attributes": {"channelType": c.channel_type, "name": c.name},
                "relationships": {
                    "channelGroup": {
                        "data": {"type": contract.TYPE_CHANNEL_GROUPS, "id": c.group_id}
                    }
                },
            }
            for g in self.channel_groups.values()
            for c in g.channels
        ]
        self.known_channel_types = channel_types

    @staticmethod
    def _render_group(group: ChannelGroup) -> dict[str, Any]:
        return {
            "type": contract.TYPE_CHANNEL_GROUPS,
            "id": group.id,
            "attributes": {"name": group.name},
            "relationships": {
                "channels": {
                    "data": [{"type": contract.TYPE_CHANNELS, "id": c.id} for c in group.channels]
                }
            },
        }

    def reset(self) -> None:
        """Forget every token, object, stored response and counter."""
        with self.lock:
            self.tokens: dict[str, Token] = {}
            self.token_requests = 0
            self.token_failures = 0
            self.notifications: dict[str, Notification] = {}
            self.dialogues: dict[str, Dialogue] = {}
            self.messages: dict[str, Message] = {}
            self.files: dict[str, StoredFile] = {}
            self.open_dialogues: dict[tuple[str, str], str] = {}
            self.stored_responses: dict[tuple[str, str], StoredResponse] = {}
            self.buckets: dict[str, list[float]] = {}
            self.requests_log: list[dict[str, Any]] = []
            self.webhook_log: list[dict[str, Any]] = []
            self.events: list[dict[str, Any]] = []

    # -- after the lock ------------------------------------------------------

    def _flush(
        self, events: Sequence[tuple[str, dict[str, Any]]], progress: Sequence[tuple[str, str]]
    ) -> None:
        for agent_id, event in events:
            self._on_event(agent_id, event)
        for kind, object_id in progress:
            self._on_progress(kind, object_id)

    # -- OAuth -----------------------------------------------------------------

    def grant_token(
        self,
        *,
        grant_type: str | None,
        client_id: str | None,
        client_secret: str | None,
        scope: str | None,
        basic: bool,
    ) -> dict[str, Any]:
        """A fresh access token for valid client credentials (RFC 6749 4.4)."""
        try:
            if not grant_type:
                raise OAuthError(400, "invalid_request", "grant_type is required.")
            if grant_type != "client_credentials":
                raise OAuthError(
                    400, "unsupported_grant_type", f"Grant type {grant_type!r} is not supported."
                )
            if not client_id or not client_secret:
                raise OAuthError(401, "invalid_client", "Client credentials are required.", basic)
            if not (
                secrets.compare_digest(client_id.encode(), self.client_id.encode())
                and secrets.compare_digest(client_secret.encode(), self.client_secret.encode())
            ):
                raise OAuthError(401, "invalid_client", "Client authentication failed.", basic)
            if scope != contract.DEFAULT_SCOPE:
                raise OAuthError(
                    400, "invalid_scope", f"The scope must be {contract.DEFAULT_SCOPE!r}."
                )
        except OAuthError:
            with self.lock:
                self.token_failures += 1
            raise
        token = secrets.token_urlsafe(32)
        self.issued_tokens.append(token)
        lifetime = self.token_lifetime
        with self.lock:
            self.tokens[token] = Token(client_id, time.monotonic() + lifetime)
            self.token_requests += 1
        expires_in: float = int(lifetime) if float(lifetime).is_integer() else lifetime
        return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}

    def authenticate(self, authorization: str | None) -> tuple[str, str]:
        """``(client_id, token)`` of a request's bearer token, or 401."""
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        token = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None:
            raise ApiError(
                401, contract.ERROR_UNAUTHORIZED, "A bearer token is required.", headers=challenge
            )
        with self.lock:
            record = self.tokens.get(token)
        if record is None:
            raise ApiError(
                401,
                contract.ERROR_UNAUTHORIZED,
                "The access token is not valid.",
                headers=challenge,
            )
        if record.expires_at <= time.monotonic():
            raise ApiError(
                401,
                contract.ERROR_TOKEN_EXPIRED,
                "The access token has expired.",
                headers=challenge,
            )
        return record.client_id, token

    def expire_token(self, token: str | None) -> None:
        with self.lock:
            if token in self.tokens:
                self.tokens[token].expires_at = 0.0

    def expire_tokens(self) -> None:
        with self.lock:
            for record in self.tokens.values():
                record.expires_at = 0.0

    def check_rate(self, client_id: str) -> None:
        """429 once ``client_id`` goes over ``rate_limit`` requests per second.

        A token bucket holding one second's worth of requests: bursts up to the
        limit pass, a steady rate above it is refused.
        """
        limit = self.rate_limit
        if not limit:
            return
        now = time.monotonic()
        with self.lock:
            bucket = self.buckets.get(client_id)
            if bucket is None:
                bucket = self.buckets[client_id] = [float(limit), now]
            tokens = min(float(limit), bucket[0] + (now - bucket[1]) * limit)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return
            bucket[0] = tokens
        retry_after = max(1, math.ceil((1.0 - tokens) / limit))
        raise ApiError(
            429,
            contract.ERROR_RATE_LIMITED,
            f"More than {limit:g} requests per second.",
            headers={"Retry-After": str(retry_after)},
        )

    # -- idempotency ---------------------------------------------------------

    def idempotent(
        self,
        client_id: str,
        key: str,
        print_: str,
        produce: Callable[[], tuple[int, list[tuple[str, str]], bytes]],
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        """Run ``produce`` once per ``(client_id, key)``; replay it afterwards.

        Returns ``(status, headers, body, replayed)``. A per-key lock makes
        concurrent requests with one key wait for the first, so they can
        never create two objects. A repeat whose fingerprint differs gets
        ``422 IDEMPOTENCY_KEY_REUSED``.
        """
        slot = (client_id, key)
        # Striped locks: one key always maps to the same lock, and memory stays
        # bounded however many keys a benchmark uses.
        key_lock = self._key_locks[hash(slot) % len(self._key_locks)]
        with key_lock:
            with self.lock:
                stored = self.stored_responses.get(slot)
            if stored is not None and time.time() - stored.stored_at < IDEMPOTENCY_TTL:
                if stored.fingerprint != print_:
                    raise ApiError(
                        422,
                        contract.ERROR_IDEMPOTENCY_KEY_REUSED,
                        "This Idempotency-Key was used with a different request.",
                    )
                return stored.status, list(stored.headers), stored.body, True
            status, headers, body = produce()
            with self.lock:
                self.stored_responses[slot] = StoredResponse(
                    print_, status, list(headers), body, time.time()
                )
            return status, headers, body, False

    # -- logs ----------------------------------------------------------------

    def log_request(self, method: str, path: str, status: int, key: str | None) -> None:
        entry = {
            "method": method,
            "path": path,
            "status": status,
            "idempotency_key": key,
            "time": time.time(),
        }
        with self.lock:
            self.requests_log.append(entry)

    # -- directory -----------------------------------------------------------

    def channel_groups_document(self, include: bool, page: Page) -> dict[str, Any]:
        document = self._paginate(self._channel_groups_resources, page)
        if include:
            wanted = {
                r["id"] for g in document["data"] for r in g["relationships"]["channels"]["data"]
            }
            document["included"] = [c for c in self._channel_resources if c["id"] in wanted]
        return document

    def templates_document(self, page: Page) -> dict[str, Any]:
        return self._paginate([t.resource for t in self.templates.values()], page)

    @staticmethod
    def _paginate(resources: Sequence[dict[str, Any]], page: Page) -> dict[str, Any]:
        count = len(resources)
        pages = max(1, math.ceil(count / page.size))
        start = (page.number - 1) * page.size
        data = list(resources[start : start + page.size])
        links = {
            "self": page.link(page.number),
            "first": page.link(1),
            "last": page.link(pages),
            "prev": page.link(page.number - 1) if 1 < page.number <= pages + 1 else None,
            "next": page.link(page.number + 1) if page.number < pages else None,
        }
        return {
            "data": data,
            "links": links,
            "meta": {"pagination": {"page": page.number, "pages": pages, "count": count}},
        }

    # -- shared validation -----------------------------------------------------

    def _group(self, group_id: str) -> ChannelGroup:
        group = self.channel_groups.get(group_id)
        if group is None:
            raise _not_found(
                f"Channel group {group_id!r} does not exist.", "/data/relationships/channelGroup"
            )
        return group

    def _check_template(self, template_id: str, channel_type: str, context: Any) -> dict[str, str]:
        template = self.templates.get(template_id)
        if template is None:
            raise _not_found(
                f"Template {template_id!r} does not exist.", "/data/relationships/template"
            )
        if context is None:
            context = {}
        if not isinstance(context, dict):
            raise _invalid("'context' must be an object of strings.", "/data/attributes/context")
        errors = []
        if channel_type not in template.channel_types:
            errors.append(
                error_object(
                    422,
                    contract.ERROR_TEMPLATE_NOT_FOR_CHANNEL,
                    f"Template {template_id} is not available on {channel_type}.",
                    pointer="/data/attributes/channelType",
                )
            )
        known = {p["name"] for p in template.parameters}
        for name, value in context.items():
            pointer = f"/data/attributes/context/{name}"
            if name not in known:
                errors.append(
                    error_object(
                        422,
                        contract.ERROR_TEMPLATE_PARAMETER_UNKNOWN,
                        f"Template {template_id} has no parameter {name!r}.",
                        pointer=pointer,
                    )
                )
            elif not isinstance(value, str):
                errors.append(
                    error_object(
                        422,
                        contract.ERROR_VALIDATION,
                        f"Parameter {name!r} must be a string.",
                        pointer=pointer,
                    )
                )
        for parameter in template.parameters:
            name = parameter["name"]
            value = context.get(name)
            if parameter["required"] and (
                value is None or (isinstance(value, str) and not value.strip())
            ):
                errors.append(
                    error_object(
                        422,
                        contract.ERROR_TEMPLATE_PARAMETER_MISSING,
                        f"Template {template_id} requires parameter {name!r}.",
                        pointer=f"/data/attributes/context/{name}",
                    )
                )
        if errors:
            first = errors[0]
            raise ApiError(422, first["code"], first["detail"], errors=errors)
        return dict(context)

    def _check_channel(self, group: ChannelGroup, channel_type: str) -> None:
        if channel_type not in group.channel_types:
            raise ApiError(
                422,
                contract.ERROR_CHANNEL_NOT_IN_GROUP,
                f"Channel group {group.id} has no {channel_type} channel.",
                pointer="/data/attributes/channelType",
            )

    def _plan(self, recipient: str, channel_type: str) -> tuple[list[str], dict[str, str] | None]:
        script = self.scripts.get(recipient)
        if script is not None and (
            script.channel_types is None or channel_type in script.channel_types
        ):
            return list(script.steps), script.failure
        steps = list(contract.STATUS_ORDER[1:])
        if not self.auto_read:
            steps.remove(READ)
        return steps, None

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise _not_found(f"Dialogue agent {agent_id!r} does not exist.")
        return agent

    # -- notifications ---------------------------------------------------------

    def create_notification(self, document: Any, key: str | None) -> dict[str, Any]:
        """Validate and accept one notification; returns its resource object."""
        attrs, rels = _primary(
            document,
            contract.TYPE_NOTIFICATIONS,
            attributes=("channelType", "context"),
            relationships=("recipient", "template", "channelGroup"),
        )
        recipient = _recipient(rels)
        template_id = _to_one(rels, "template", contract.TYPE_TEMPLATES)
        group_id = _to_one(rels, "channelGroup", contract.TYPE_CHANNEL_GROUPS)
        assert template_id is not None and group_id is not None
        channel_type = _channel_type(attrs)
        group = self._group(group_id)
        self._check_channel(group, channel_type)
        context = self._check_template(template_id, channel_type, attrs.get("context"))
        plan, plan_failure = self._plan(recipient, channel_type)
        now = format_timestamp()
        with self.lock:
            notification = Notification(
                id=str(next(self._notification_ids)),
                status=ACCEPTED,
                created_at=now,
                updated_at=now,
                channel_type=channel_type,
                plan=plan,
                plan_failure=plan_failure,
                history=[{"status": ACCEPTED, "at": now}],
                idempotency_key=key,
                recipient=recipient,
                template_id=template_id,
                channel_group_id=group_id,
                context=context,
            )
            self.notifications[notification.id] = notification
            resource = self._render_notification(notification)
        self._flush((), [("notification", notification.id)])
        return resource

    @staticmethod
    def _render_notification(n: Notification) -> dict[str, Any]:
        return {
            "type": contract.TYPE_NOTIFICATIONS,
            "id": n.id,
            "attributes": {
                "status": n.status,
                "channelType": n.channel_type,
                "createdAt": n.created_at,
                "updatedAt": n.updated_at,
                "failure": dict(n.failure) if n.failure else None,
            },
            "relationships": {
                "recipient": {"data": {"type": contract.RECIPIENT_TYPE, "id": n.recipient}},
                "template": {"data": {"type": contract.TYPE_TEMPLATES, "id": n.template_id}},
                "channelGroup": {
                    "data": {"type": contract.TYPE_CHANNEL_GROUPS, "id": n.channel_group_id}
                },
            },
        }

    def notification_resource(self, notification_id: str) -> dict[str, Any]:
        with self.lock:
            notification = self.notifications.get(notification_id)
            if notification is None:
                raise _not_found(f"Notification {notification_id!r} does not exist.")
            return self._render_notification(notification)

    def notifications_document(self, ids: list[str] | None, page: Page) -> dict[str, Any]:
        with self.lock:
            if ids is None:
                chosen = list(self.notifications.values())
            else:
                seen = set()
                chosen = []
                for notification_id in ids:
                    notification = self.notifications.get(notification_id)
                    if notification is not None and notification_id not in seen:
                        seen.add(notification_id)
                        chosen.append(notification)
            resources = [self._render_notification(n) for n in chosen]
        return self._paginate(resources, page)

    # -- dialogues -----------------------------------------------------------

    @staticmethod
    def _render_dialogue(d: Dialogue) -> dict[str, Any]:
        return {
            "type": contract.TYPE_DIALOGUES,
            "id": d.id,
            "attributes": {
                "status": d.status,
                "initiatedBy": d.initiated_by,
                "channelType": d.channel_type,
                "openedAt": d.opened_at,
                "closedAt": d.closed_at,
                "closedBy": d.closed_by,
            },
            "relationships": {
                "recipient": {"data": {"type": contract.RECIPIENT_TYPE, "id": d.recipient}},
                "channelGroup": {
                    "data": {"type": contract.TYPE_CHANNEL_GROUPS, "id": d.channel_group_id}
                },
                "dialogueAgent": {
                    "data": {"type": contract.TYPE_DIALOGUE_AGENTS, "id": d.agent_id}
                },
            },
        }

    def _open_dialogue(
        self,
        *,
        agent_id: str,
        recipient: str,
        group_id: str,
        channel_type: str,
        initiated_by: str,
        key: str | None,
        events: list[tuple[str, dict[str, Any]]],
    ) -> Dialogue:
        # Called with the lock held and exclusivity already checked.
        now = format_timestamp()
        dialogue = Dialogue(
            id=str(next(self._dialogue_ids)),
            agent_id=agent_id,
            recipient=recipient,
            channel_group_id=group_id,
            channel_type=channel_type,
            initiated_by=initiated_by,
            opened_at=now,
            idempotency_key=key,
        )
        self.dialogues[dialogue.id] = dialogue
        self.open_dialogues[(recipient, group_id)] = dialogue.id
        events.append(
            (
                agent_id,
                build_event(
                    contract.EVENT_DIALOGUE_OPENED,
                    agent_id=agent_id,
                    occurred_at=now,
                    initiated_by=initiated_by,
                    channel_type=channel_type,
                    dialogue=dialogue.id,
                    recipient=recipient,
                    channel_group=group_id,
                ),
            )
        )
        return dialogue

    def create_dialogue(self, agent_id: str, document: Any, key: str | None) -> dict[str, Any]:
        """Open a dialogue for ``agent_id``; 409 DIALOGUE_ACTIVE if one is open."""
        self._agent(agent_id)
        attrs, rels = _primary(
            document,
            contract.TYPE_DIALOGUES,
            attributes=("channelType",),
            relationships=("recipient", "channelGroup"),
        )
        recipient = _recipient(rels)
        group_id = _to_one(rels, "channelGroup", contract.TYPE_CHANNEL_GROUPS)
        assert group_id is not None
        channel_type = _channel_type(attrs)
        group = self._group(group_id)
        self._check_channel(group, channel_type)
        events: list[tuple[str, dict[str, Any]]] = []
        with self.lock:
            active_id = self.open_dialogues.get((recipient, group_id))
            if active_id is not None:
                active = self.dialogues[active_id]
                raise ApiError(
                    409,
                    contract.ERROR_DIALOGUE_ACTIVE,
                    f"Dialogue {active.id} with {recipient} on channel group {group_id} "
                    f"is open, owned by agent {active.agent_id}.",
                    meta={"dialogueId": active.id, "dialogueAgentId": active.agent_id},
                )
            dialogue = self._open_dialogue(
                agent_id=agent_id,
                recipient=recipient,
                group_id=group_id,
                channel_type=channel_type,
                initiated_by=contract.INITIATED_BY[0],
                key=key,
                events=events,
            )
            resource = self._render_dialogue(dialogue)
        self._flush(events, ())
        return resource

    def _owned_dialogue(self, agent_id: str, dialogue_id: str) -> Dialogue:
        # Called with the lock held.
        if agent_id not in self.agents:
            raise _not_found(f"Dialogue agent {agent_id!r} does not exist.")
        dialogue = self.dialogues.get(dialogue_id)
        if dialogue is None:
            raise _not_found(f"Dialogue {dialogue_id!r} does not exist.")
        if dialogue.agent_id != agent_id:
            raise ApiError(
                403,
                contract.ERROR_NOT_DIALOGUE_OWNER,
                f"Dialogue {dialogue_id} belongs to agent {dialogue.agent_id}.",
                meta={"dialogueId": dialogue.id, "dialogueAgentId": dialogue.agent_id},
            )
        return dialogue

    def dialogue_resource(self, agent_id: str, dialogue_id: str) -> dict[str, Any]:
        with self.lock:
            return self._render_dialogue(self._owned_dialogue(agent_id, dialogue_id))

    def dialogues_document(self, agent_id: str, status: str | None, page: Page) -> dict[str, Any]:
        self._agent(agent_id)
        with self.lock:
            resources = [
                self._render_dialogue(d)
                for d in self.dialogues.values()
                if d.agent_id == agent_id and (status is None or d.status == status)
            ]
        return self._paginate(resources, page)

    def update_dialogue(self, agent_id: str, dialogue_id: str, document: Any) -> dict[str, Any]:
        """PATCH: the only change allowed is closing; closing again is a no-op."""
        attrs, _ = _primary(
            document,
            contract.TYPE_DIALOGUES,
            attributes=("status",),
            relationships=(),
            resource_id=dialogue_id,
        )
        status = attrs.get("status")
        events: list[tuple[str, dict[str, Any]]] = []
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            if status != contract.DIALOGUE_CLOSED:
                raise _invalid(
                    f"A dialogue can only be set to {contract.DIALOGUE_CLOSED}.",
                    "/data/attributes/status",
                )
            self._close(dialogue, contract.CLOSED_BY[0], events)
            resource = self._render_dialogue(dialogue)
        self._flush(events, ())
        return resource

    def _close(
        self, dialogue: Dialogue, closed_by: str, events: list[tuple[str, dict[str, Any]]]
    ) -> None:
        # Called with the lock held.
        if dialogue.status == contract.DIALOGUE_CLOSED:
            return
        now = format_timestamp()
        dialogue.status = contract.DIALOGUE_CLOSED
        dialogue.closed_at = now
        dialogue.closed_by = closed_by
        self.open_dialogues.pop((dialogue.recipient, dialogue.channel_group_id), None)
        events.append(
            (
                dialogue.agent_id,
                build_event(
                    contract.EVENT_DIALOGUE_CLOSED,
                    agent_id=dialogue.agent_id,
                    occurred_at=now,
                    closed_by=closed_by,
                    dialogue=dialogue.id,
                ),
            )
        )

    # -- messages --------------------------------------------------------------

    def _render_message(self, m: Message) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "direction": m.direction,
            "status": m.status,
            "text": m.text,
            "channelType": m.channel_type,
            "createdAt": m.created_at,
            "updatedAt": m.updated_at,
            "failure": dict(m.failure) if m.failure else None,
        }
        if m.context is not None:
            attributes["context"] = dict(m.context)
        return {
            "type": contract.TYPE_MESSAGES,
            "id": m.id,
            "attributes": attributes,
            "relationships": {
                "dialogue": {"data": {"type": contract.TYPE_DIALOGUES, "id": m.dialogue_id}},
                "template": {
                    "data": None
                    if m.template_id is None
                    else {"type": contract.TYPE_TEMPLATES, "id": m.template_id}
                },
                "files": {"data": [{"type": contract.TYPE_FILES, "id": f} for f in m.file_ids]},
            },
        }

    def create_message(
        self, agent_id: str, dialogue_id: str, document: Any, key: str | None
    ) -> dict[str, Any]:
        """Send a free-text or template message in an open dialogue."""
        attrs, rels = _primary(
            document,
            contract.TYPE_MESSAGES,
            attributes=("text", "context", "channelType"),
            relationships=("files", "template"),
        )
        template_id = _to_one(rels, "template", contract.TYPE_TEMPLATES, required=False)
        file_ids = _to_many(rels, "files", contract.TYPE_FILES)
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            if dialogue.status != contract.DIALOGUE_OPEN:
                raise ApiError(
                    409,
                    contract.ERROR_DIALOGUE_CLOSED,
                    f"Dialogue {dialogue_id} is closed.",
                    meta={"dialogueId": dialogue.id, "dialogueAgentId": dialogue.agent_id},
                )
            recipient = dialogue.recipient
            group = self.channel_groups[dialogue.channel_group_id]
            default_channel = dialogue.channel_type
            missing_files = [
                (index, file_id)
                for index, file_id in enumerate(file_ids)
                if file_id not in self.files
            ]
        if missing_files:
            index, file_id = missing_files[0]
            raise _not_found(
                f"File {file_id!r} does not exist.", f"/data/relationships/files/data/{index}"
            )
        channel_type = _channel_type(attrs, default_channel)
        self._check_channel(group, channel_type)
        text = attrs.get("text")
        context: dict[str, str] | None = None
        if template_id is not None:
            if text is not None:
                raise _invalid(
                    "A message has either 'text' or a template, not both.", "/data/attributes/text"
                )
            context = self._check_template(template_id, channel_type, attrs.get("context"))
        else:
            if "context" in attrs:
                raise _invalid(
                    "'context' needs a template relationship.", "/data/attributes/context"
                )
            if not isinstance(text, str) or not text.strip():
                raise _invalid(
                    "A message needs a non-empty 'text' or a template.", "/data/attributes/text"
                )
        plan, plan_failure = self._plan(recipient, channel_type)
        now = format_timestamp()
        with self.lock:
            # Re-checked: the dialogue may have closed while we validated.
            if dialogue.status != contract.DIALOGUE_OPEN:
                raise ApiError(
                    409, contract.ERROR_DIALOGUE_CLOSED, f"Dialogue {dialogue_id} is closed."
                )
            message = Message(
                id=f"m-{next(self._message_ids)}",
                status=ACCEPTED,
                created_at=now,
                updated_at=now,
                channel_type=channel_type,
                plan=plan,
                plan_failure=plan_failure,
                history=[{"status": ACCEPTED, "at": now}],
                idempotency_key=key,
                dialogue_id=dialogue.id,
                agent_id=dialogue.agent_id,
                direction=contract.DIRECTION_OUTBOUND,
                text=text,
                template_id=template_id,
                context=context,
                file_ids=file_ids,
            )
            self.messages[message.id] = message
            dialogue.message_ids.append(message.id)
            resource = self._render_message(message)
        self._flush((), [("message", message.id)])
        return resource

    def message_resource(self, agent_id: str, dialogue_id: str, message_id: str) -> dict[str, Any]:
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            message = self.messages.get(message_id)
            if message is None or message.dialogue_id != dialogue.id:
                raise _not_found(f"Message {message_id!r} does not exist in this dialogue.")
            return self._render_message(message)

    def messages_document(self, agent_id: str, dialogue_id: str, page: Page) -> dict[str, Any]:
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            resources = [self._render_message(self.messages[m]) for m in dialogue.message_ids]
        return self._paginate(resources, page)

    # -- files -----------------------------------------------------------------

    @staticmethod
    def _render_file(f: StoredFile) -> dict[str, Any]:
        return {
            "type": contract.TYPE_FILES,
            "id": f.id,
            "attributes": {"name": f.name, "contentType": f.content_type, "size": len(f.content)},
        }

    def create_file(
        self, name: str, content_type: str, content: bytes, key: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            stored = StoredFile(
                str(next(self._file_ids)), name, content_type, content, format_timestamp(), key
            )
            self.files[stored.id] = stored
            return self._render_file(stored)

    def file_resource(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            stored = self.files.get(file_id)
            if stored is None:
                raise _not_found(f"File {file_id!r} does not exist.")
            return self._render_file(stored)

    def file_content(self, file_id: str) -> StoredFile | None:
        with self.lock:
            return self.files.get(file_id)

    # -- the recipient's side ------------------------------------------------

    def reply(
        self,
        number: str,
        text: str,
        *,
        channel_group: str,
        channel_type: str,
        files: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """The recipient writes; routes to the open dialogue or opens one."""
        if not is_e164(number):
            raise ValueError(f"{number!r} is not a valid E.164 number")
        group = self.channel_groups.get(str(channel_group))
        if group is None:
            raise ValueError(f"Unknown channel group {channel_group!r}")
        if channel_type not in group.channel_types:
            raise ValueError(f"Channel group {group.id} has no {channel_type} channel")
        file_ids = [self._inbound_file(item) for item in files]
        events: list[tuple[str, dict[str, Any]]] = []
        now = format_timestamp()
        with self.lock:
            opened = False
            dialogue_id = self.open_dialogues.get((number, group.id))
            if dialogue_id is None:
                agent_id = group.designated_agent
                if agent_id is None or agent_id not in self.agents:
                    raise ValueError(f"Channel group {group.id} has no designated agent")
                dialogue = self._open_dialogue(
                    agent_id=agent_id,
                    recipient=number,
                    group_id=group.id,
                    channel_type=channel_type,
                    initiated_by=contract.INITIATED_BY[1],
                    key=None,
                    events=events,
                )
                opened = True
            else:
                dialogue = self.dialogues[dialogue_id]
            # Inbound messages have reached the agent: they are DELIVERED.
            delivered = contract.STATUS_ORDER[2]
            message = Message(
                id=f"m-{next(self._message_ids)}",
                status=delivered,
                created_at=now,
                updated_at=now,
                channel_type=channel_type,
                plan=[],
                plan_failure=None,
                history=[{"status": delivered, "at": now}],
                dialogue_id=dialogue.id,
                agent_id=dialogue.agent_id,
                direction=contract.DIRECTION_INBOUND,
                text=text,
                file_ids=file_ids,
            )
            self.messages[message.id] = message
            dialogue.message_ids.append(message.id)
            file_list = [
                {
                    "id": f.id,
                    "name": f.name,
                    "contentType": f.content_type,
                    "size": len(f.content),
                    "url": f"{self.base_url}/_sandbox/files/{f.id}",
                }
                for f in (self.files[i] for i in file_ids)
            ]
            events.append(
                (
                    dialogue.agent_id,
                    build_event(
                        contract.EVENT_MESSAGE_RECEIVED,
                        agent_id=dialogue.agent_id,
                        occurred_at=now,
                        text=text,
                        channel_type=channel_type,
                        files=file_list,
                        message=message.id,
                        dialogue=dialogue.id,
                        recipient=number,
                        channel_group=group.id,
                    ),
                )
            )
            result = {
                "dialogue_id": dialogue.id,
                "message_id": message.id,
                "agent_id": dialogue.agent_id,
                "opened": opened,
            }
        self._flush(events, ())
        return result

    def _inbound_file(self, item: Any) -> str:
        """A file the recipient sends: an uploaded file id, a dict or a tuple."""
        if isinstance(item, str):
            if self.file_content(item) is None:
                raise ValueError(f"Unknown file {item!r}")
            return item
        if isinstance(item, Mapping):
            name = item.get("name", "file")
            content = item.get("content", b"")
            content_type = item.get("contentType", "application/octet-stream")
        else:
            name, content, *rest = item
            content_type = rest[0] if rest else "application/octet-stream"
        if isinstance(content, str):
            content = content.encode("utf-8")
        return self.create_file(str(name), str(content_type), bytes(content))["id"]

    def close_dialogue(self, dialogue_id: str, closed_by: str) -> dict[str, Any]:
        if closed_by not in contract.CLOSED_BY:
            raise ValueError(f"closed_by must be one of {contract.CLOSED_BY}")
        events: list[tuple[str, dict[str, Any]]] = []
        with self.lock:
            dialogue = self.dialogues.get(dialogue_id)
            if dialogue is None:
                raise KeyError(f"Unknown dialogue {dialogue_id!r}")
            self._close(dialogue, closed_by, events)
            snapshot = self._dialogue_snapshot(dialogue)
        self._flush(events, ())
        return snapshot

    # -- status ----------------------------------------------------------------

    def _apply_status(
        self, kind: str, record: Delivered, status: str, failure: dict[str, str] | None
    ) -> tuple[str, dict[str, Any]]:
        # Called with the lock held; returns the status event to send.
        now = format_timestamp()
        record.status = status
        record.updated_at = now
        if status in contract.FAILURE_STATUSES:
            record.failure = dict(failure or record.plan_failure or default_failure(status))
        record.history.append({"status": status, "at": now})
        if kind == "notification":
            assert isinstance(record, Notification)
            agent_id = self.notification_agent
            event = build_event(
                contract.EVENT_NOTIFICATION_STATUS,
                agent_id=agent_id,
                occurred_at=now,
                status=status,
                failure=record.failure,
                notification=record.id,
            )
        else:
            assert isinstance(record, Message)
            agent_id = record.agent_id
            event = build_event(
                contract.EVENT_MESSAGE_STATUS,
                agent_id=agent_id,
                occurred_at=now,
                status=status,
                failure=record.failure,
                message=record.id,
                dialogue=record.dialogue_id,
            )
        return agent_id, event

    def _record(self, kind: str, object_id: str) -> Delivered | None:
        if kind == "notification":
            return self.notifications.get(object_id)
        if kind == "message":
            return self.messages.get(object_id)
        raise ValueError(f"kind must be 'notification' or 'message', not {kind!r}")

    def progress(self, kind: str, object_id: str) -> None:
        """Take the next planned status step of one object, if any is left."""
        events = []
        more = False
        with self.lock:
            record = self._record(kind, object_id)
            if record is None or record.status in TERMINAL_STATUSES:
                return
            # A manual set_status may have overtaken planned steps: skip them.
            while record.plan and not can_move(record.status, record.plan[0]):
                record.plan.pop(0)
            if not record.plan:
                return
            status = record.plan.pop(0)
            events.append(self._apply_status(kind, record, status, None))
            more = bool(record.plan) and record.status not in TERMINAL_STATUSES
        self._flush(events, [(kind, object_id)] if more else ())

    def set_status(
        self, kind: str, object_id: str, status: str, failure: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Move one object's status forward by hand; sends the status event."""
        with self.lock:
            record = self._record(kind, object_id)
            if record is None:
                raise KeyError(f"Unknown {kind} {object_id!r}")
            if not can_move(record.status, status):
                raise ValueError(f"{kind} {object_id} cannot go from {record.status} to {status}")
            event = self._apply_status(kind, record, status, failure)
            snapshot = self._snapshot(kind, record)
        self._flush([event], ())
        return snapshot

    # -- snapshots -----------------------------------------------------------

    def _snapshot(self, kind: str, record: Delivered) -> dict[str, Any]:
        if kind == "notification":
            assert isinstance(record, Notification)
            return self._notification_snapshot(record)
        assert isinstance(record, Message)
        return self._message_snapshot(record)

    @staticmethod
    def _notification_snapshot(n: Notification) -> dict[str, Any]:
        return {
            "id": n.id,
            "status": n.status,
            "recipient": n.recipient,
            "template": n.template_id,
            "channelGroup": n.channel_group_id,
            "channelType": n.channel_type,
            "context": dict(n.context),
            "idempotency_key": n.idempotency_key,
            "failure": dict(n.failure) if n.failure else None,
            "createdAt": n.created_at,
            "updatedAt": n.updated_at,
            "history": [dict(h) for h in n.history],
        }

    def _message_snapshot(self, m: Message) -> dict[str, Any]:
        dialogue = self.dialogues.get(m.dialogue_id)
        return {
            "id": m.id,
            "status": m.status,
            "direction": m.direction,
            "dialogue": m.dialogue_id,
            "agent": m.agent_id,
            "recipient": dialogue.recipient if dialogue else None,
            "channelGroup": dialogue.channel_group_id if dialogue else None,
            "channelType": m.channel_type,
            "text": m.text,
            "template": m.template_id,
            "context": dict(m.context) if m.context is not None else None,
            "files": list(m.file_ids),
            "idempotency_key": m.idempotency_key,
            "failure": dict(m.failure) if m.failure else None,
            "createdAt": m.created_at,
            "updatedAt": m.updated_at,
            "history": [dict(h) for h in m.history],
        }

    @staticmethod
    def _dialogue_snapshot(d: Dialogue) -> dict[str, Any]:
        return {
            "id": d.id,
            "status": d.status,
            "agent": d.agent_id,
            "recipient": d.recipient,
            "channelGroup": d.channel_group_id,
            "channelType": d.channel_type,
            "initiatedBy": d.initiated_by,
            "openedAt": d.opened_at,
            "closedAt": d.closed_at,
            "closedBy": d.closed_by,
            "idempotency_key": d.idempotency_key,
            "messages": list(d.message_ids),
        }

    def snapshot(self) -> dict[str, Any]:
        """Plain-dict copies of everything, for tests and ``/_sandbox/state``."""
        with self.lock:
            return {
                "notifications": [
                    self._notification_snapshot(n) for n in self.notifications.values()
                ],
                "dialogues": [self._dialogue_snapshot(d) for d in self.dialogues.values()],
                "messages": [self._message_snapshot(m) for m in self.messages.values()],
                "files": [
                    {
                        "id": f.id,
                        "name": f.name,
                        "contentType": f.content_type,
                        "size": len(f.content),
                    }
                    for f in self.files.values()
                ],
                "token_requests": self.token_requests,
                "token_failures": self.token_failures,
            }
