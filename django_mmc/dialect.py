"""The platform's dialect: every ``ASSUMED`` item of the wire contract, in one object.

:mod:`django_mmc.contract` is this project's reading of the platform. Where that
reading is an assumption (paths, query grammar, type and event names, status
words, the signature scheme), a :class:`Dialect` carries it, and the client,
the webhook view and the sandbox read the dialect instead of the module
constants. The defaults are the contract's constants, so nothing changes
until ``MMC["CONTRACT"]`` says otherwise::

    MMC = {..., "CONTRACT": {"filter_style": "operators", "pagination": "offset"}}
    MMC = {..., "CONTRACT": "filter-operators"}        # a dialect shipped here
    MMC = {..., "CONTRACT": "mysite.mmc.PlatformDialect"}  # a Dialect or subclass

Names inside django_mmc are always ours (``PlatformStatus``, ``EventType``);
a dialect translates at the edge, in both directions. This module does not
import Django.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from . import contract

__all__ = ["DIALECTS", "DEFAULT_DIALECT", "Dialect", "DialectError", "load_dialect"]

#: ``filter[id]=a,b`` (``plain``) or ``filter[id][in]=a,b`` (``operators``).
FILTER_STYLES = ("plain", "operators")
#: ``page[number]/page[size]``, ``page[limit]/page[offset]``, or ``links.next`` only.
PAGINATIONS = ("number", "offset", "links")
#: How the signature's digest is written.
SIGNATURE_ENCODINGS = ("hex", "base64")
#: Where a dialogue's opening template goes: in its first message, or in the
#: create call itself.
OPENING_TEMPLATES = ("message", "create")

#: The placeholders each path must carry (and no others).
_PLACEHOLDERS = {
    "organisation_prefix": {"organisation_id"},
    "channel_groups_path": set(),
    "templates_path": set(),
    "notifications_path": set(),
    "notification_path": {"notification_id"},
    "dialogues_path": {"agent_id"},
    "dialogue_path": {"agent_id", "dialogue_id"},
    "messages_path": {"agent_id", "dialogue_id"},
    "files_path": set(),
}

_OUR_STATUSES = tuple(s.value for s in contract.PlatformStatus)
_OUR_EVENTS = tuple(e.value for e in contract.EventType)


class DialectError(ValueError):
    """A dialect, or an override of one, is not valid. ``key`` names the item;
    ``kind`` is ``selection`` (the setting names no dialect), ``key`` (an
    item a dialect does not have) or ``value`` (an item's value)."""

    def __init__(self, key: str, message: str, kind: str = "value") -> None:
        super().__init__(message)
        self.key = key
        self.kind = kind


def _identity(words: tuple[str, ...]) -> Any:
    return lambda: {word: word for word in words}


@dataclass(frozen=True, eq=False)
class Dialect:
    """One reading of the platform's wire. Immutable; build variants with
    :func:`dataclasses.replace` or :meth:`with_overrides`.

    ``statuses`` maps the platform's status words to ours
    (:class:`~django_mmc.contract.PlatformStatus`); ``event_names`` maps our
    event types (:class:`~django_mmc.contract.EventType`) to the platform's.
    """

    name: str = "default"
    #: Placeholders ``{oauth_base_url}`` and ``{oauth_flow}``, or a URL in full.
    token_url: str = contract.TOKEN_URL_TEMPLATE
    organisation_prefix: str = contract.ORGANISATION_PREFIX
    channel_groups_path: str = contract.CHANNEL_GROUPS_PATH
    templates_path: str = contract.TEMPLATES_PATH
    notifications_path: str = contract.NOTIFICATIONS_PATH
    notification_path: str = contract.NOTIFICATION_PATH
    dialogues_path: str = contract.DIALOGUES_PATH
    dialogue_path: str = contract.DIALOGUE_PATH
    messages_path: str = contract.MESSAGES_PATH
    files_path: str = contract.FILES_PATH
    filter_style: str = "plain"
    pagination: str = "number"
    idempotency_key_filter: str = contract.IDEMPOTENCY_KEY_FILTER
    type_channel_groups: str = contract.TYPE_CHANNEL_GROUPS
    type_channels: str = contract.TYPE_CHANNELS
    type_templates: str = contract.TYPE_TEMPLATES
    type_notifications: str = contract.TYPE_NOTIFICATIONS
    type_dialogue_agents: str = contract.TYPE_DIALOGUE_AGENTS
    type_dialogues: str = contract.TYPE_DIALOGUES
    type_messages: str = contract.TYPE_MESSAGES
    type_files: str = contract.TYPE_FILES
    type_events: str = contract.TYPE_EVENTS
    event_names: Mapping[str, str] = field(default_factory=_identity(_OUR_EVENTS))
    statuses: Mapping[str, str] = field(default_factory=_identity(_OUR_STATUSES))
    signature_header: str = contract.SIGNATURE_HEADER
    signature_algorithm: str = contract.SIGNATURE_ALGORITHM
    signature_encoding: str = "hex"
    signature_prefix: str = ""
    #: A header whose value is signed before the body (``<timestamp>.<body>``); "" for none.
    signature_timestamp_header: str = ""
    #: ``message``: a dialogue's opening template is its first message;
    #: ``create``: the create call carries it (``context`` and a ``template``).
    opening_template: str = "message"
    #: The resource type of a recipient given by the platform's customer id
    #: (a phone number is always the published ``customers`` type). Where the
    #: two are one type, a phone number is told apart by its leading ``+``.
    customer_id_type: str = "customer-ids"
    #: The key of a recipient linkage's ``meta`` that gives the customer's
    #: number beside its customer id, so the two are linked.
    recipient_number_meta: str = "phoneNumber"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in ("event_names", "statuses"):
                if not isinstance(value, Mapping) or not all(
                        isinstance(k, str) and k and isinstance(v, str) and v
                        for k, v in value.items()):
                    raise DialectError(item.name, f"{item.name} must map words to words.")
                object.__setattr__(self, item.name, MappingProxyType(dict(value)))
            elif not isinstance(value, str):
                raise DialectError(item.name, f"{item.name} must be a string, not {value!r}.")
        self._validate()

    def _validate(self) -> None:
        for name, allowed in (("filter_style", FILTER_STYLES), ("pagination", PAGINATIONS),
                              ("signature_encoding", SIGNATURE_ENCODINGS),
                              ("opening_template", OPENING_TEMPLATES)):
            if getattr(self, name) not in allowed:
                raise DialectError(name, f"{name} is one of {', '.join(allowed)}, "
                                         f"not {getattr(self, name)!r}.")
        if self.signature_algorithm not in hashlib.algorithms_guaranteed or \
                self.signature_algorithm.startswith("shake"):
            raise DialectError("signature_algorithm",
                               f"signature_algorithm {self.signature_algorithm!r} is not a "
                               "hash HMAC can use (sha256, sha1, sha512, ...).")
        for name, needed in _PLACEHOLDERS.items():
            path = getattr(self, name)
            if not path.startswith("/") or _placeholders(name, path) != needed:
                shown = ", ".join("{" + p + "}" for p in sorted(needed)) or "no placeholder"
                raise DialectError(name, f"{name} must start with '/' and carry {shown}, "
                                         f"not {path!r}.")
        _placeholders("token_url", self.token_url, {"oauth_base_url", "oauth_flow"})
        if not self.signature_header or not self.type_events or not self.name:
            raise DialectError("signature_header", "signature_header, the type names and the "
                                                   "name must not be empty.")
        for name in ("customer_id_type", "recipient_number_meta"):
            if not getattr(self, name):
                raise DialectError(name, f"{name} must not be empty.")
        unknown = sorted(set(self.event_names) - set(_OUR_EVENTS))
        if unknown:
            raise DialectError("event_names", f"event_names maps our event types "
                                              f"({', '.join(_OUR_EVENTS)}), not {unknown}.")
        unknown = sorted(set(self.statuses.values()) - set(_OUR_STATUSES))
        if unknown:
            raise DialectError("statuses", f"statuses maps platform words to ours "
                                           f"({', '.join(_OUR_STATUSES)}), not to {unknown}.")

    # -- building variants ----------------------------------------------------

    def with_overrides(self, overrides: Mapping[str, Any]) -> Dialect:
        """This dialect with some items changed. ``event_names`` and
        ``statuses`` are merged into this dialect's (an override's words come
        first); every other key replaces. Raises :class:`DialectError`."""
        names = {item.name for item in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in names:
                raise DialectError(str(key), f"A dialect has no item {key!r}.", "key")
            if key in ("event_names", "statuses"):
                if not isinstance(value, Mapping):
                    raise DialectError(key, f"{key} must be a dict.")
                value = {**value, **{k: v for k, v in getattr(self, key).items()
                                     if k not in value and v not in value.values()}}
            changes[key] = value
        return replace(self, **changes)

    # -- URLs and queries ---------------------------------------------------------

    def token_url_for(self, oauth_base_url: str, oauth_flow: str) -> str:
        """The OAuth 2.0 token endpoint."""
        return self.token_url.format(oauth_base_url=oauth_base_url.rstrip("/"),
                                     oauth_flow=oauth_flow)

    def organisation_url(self, base_url: str, organisation_id: str) -> str:
        """The root every organisation-scoped path is joined to."""
        return base_url.rstrip("/") + self.organisation_prefix.format(
            organisation_id=organisation_id)

    def filter_parameter(self, field_name: str, operator: str = "eq") -> str:
        """The query parameter filtering a list by ``field_name``: ``operator``
        is ``eq`` for one value, ``in`` for a comma-separated list."""
        if self.filter_style == "operators":
            return f"filter[{field_name}][{operator}]"
        return f"filter[{field_name}]"

    def first_page(self, size: int) -> dict[str, Any]:
        """The query parameters of a list's first page (later ones follow ``links.next``)."""
        if self.pagination == "number":
            return {"page[number]": 1, "page[size]": size}
        if self.pagination == "offset":
            return {"page[limit]": size, "page[offset]": 0}
        return {}

    # -- recipients -------------------------------------------------------------

    def recipient_linkage(self, phone_number: str | None,
                          customer_id: str | None) -> tuple[str, str]:
        """``(type, id)`` of the recipient a request names: the E.164 number
        where it is known (the published form), else the customer id."""
        if phone_number:
            return contract.RECIPIENT_TYPE, phone_number
        if customer_id:
            return self.customer_id_type, customer_id
        raise DialectError("recipient", "A recipient needs a phone number or a customer id.")

    def read_recipient(self, linkage: Any) -> tuple[str | None, str | None]:
        """``(phone_number, customer_id)`` named by a recipient linkage, each
        ``None`` when it does not give it."""
        if not isinstance(linkage, Mapping) or linkage.get("id") in (None, ""):
            return None, None
        ident = str(linkage["id"])
        if not self.names_customer_id(linkage.get("type"), ident):
            return ident, None
        meta = linkage.get("meta")
        number = meta.get(self.recipient_number_meta) if isinstance(meta, Mapping) else None
        return (number if isinstance(number, str) and number else None), ident

    def names_customer_id(self, resource_type: Any, ident: str) -> bool:
        """Whether a recipient linkage of this type and id is a customer id
        (otherwise it is a phone number)."""
        return resource_type == self.customer_id_type and (
            resource_type != contract.RECIPIENT_TYPE or not ident.startswith("+"))

    # -- words ----------------------------------------------------------------

    def our_status(self, word: str) -> str | None:
        """Our :class:`~django_mmc.contract.PlatformStatus` word for the
        platform's ``word``; ``None`` when the dialect does not know it."""
        return self.statuses.get(word)

    def platform_status(self, ours: str) -> str:
        """The platform's word for our status (the first that maps to it)."""
        for word, status in self.statuses.items():
            if status == ours:
                return word
        return ours

    def event_name(self, ours: str) -> str:
        """The platform's ``eventType`` for our event type."""
        return self.event_names.get(ours, ours)

    def our_event(self, word: str) -> str:
        """Our event type for the platform's ``eventType``; an unknown one as it came."""
        for ours, name in self.event_names.items():
            if name == word:
                return ours
        return word

    def type_name(self, ours: str) -> str:
        """The dialect's resource type for one of the contract's type names."""
        for item in fields(self):
            if item.name.startswith("type_") and getattr(contract, item.name.upper()) == ours:
                return str(getattr(self, item.name))
        return ours

    def wire_event(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """An event document built in our words (:func:`django_mmc.testing.build_event`)
        as this dialect sends it: type names, ``eventType`` and ``status``."""
        data = dict(document["data"])
        attributes = dict(data.get("attributes") or {})
        attributes["eventType"] = self.event_name(attributes.get("eventType", ""))
        if isinstance(attributes.get("status"), str):
            attributes["status"] = self.platform_status(attributes["status"])
        relationships = {}
        for name, rel in (data.get("relationships") or {}).items():
            linkage = rel.get("data") if isinstance(rel, Mapping) else None
            if isinstance(linkage, Mapping):
                linkage = {**linkage, "type": self.type_name(linkage["type"])}
                if name == "recipient":
                    linkage = self._wire_recipient(linkage)
                rel = {**rel, "data": linkage}
            relationships[name] = rel
        data.update(type=self.type_name(data["type"]), attributes=attributes,
                    relationships=relationships)
        return {**document, "data": data}

    def _wire_recipient(self, linkage: dict[str, Any]) -> dict[str, Any]:
        # A customer id goes out as this dialect's type, and the number
        # beside it under this dialect's meta key.
        if linkage.get("type") == DEFAULT_DIALECT.customer_id_type:
            linkage["type"] = self.customer_id_type
        meta = linkage.get("meta")
        if isinstance(meta, Mapping) and DEFAULT_DIALECT.recipient_number_meta in meta:
            linkage["meta"] = {self.recipient_number_meta:
                               meta[DEFAULT_DIALECT.recipient_number_meta]}
        return linkage

    # -- signatures ---------------------------------------------------------------

    @property
    def signature_meta_key(self) -> str:
        """The signature header as Django names it in ``request.META``."""
        return _meta_key(self.signature_header)

    @property
    def timestamp_meta_key(self) -> str:
        return _meta_key(self.signature_timestamp_header) if self.signature_timestamp_header \
            else ""

    def signed_content(self, body: bytes, timestamp: str | None = None) -> bytes:
        """What the HMAC covers: the body, after the timestamp when one is signed."""
        if self.signature_timestamp_header:
            return (timestamp or "").encode("utf-8") + b"." + body
        return body

    def sign(self, body: bytes, secret: str, timestamp: str | None = None) -> str:
        """The signature header's value for ``body`` under ``secret``."""
        digest = hmac.new(secret.encode("utf-8"), self.signed_content(body, timestamp),
                          getattr(hashlib, self.signature_algorithm)).digest()
        if self.signature_encoding == "base64":
            text = base64.b64encode(digest).decode("ascii")
        else:
            text = digest.hex()
        return self.signature_prefix + text


def _meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def _placeholders(name: str, template: str, allowed: set[str] | None = None) -> set[str]:
    """The ``{placeholder}`` names of ``template``; :class:`DialectError` if
    it does not format, or names one outside ``allowed``."""
    import string

    try:
        found = {part[1] for part in string.Formatter().parse(template) if part[1] is not None}
    except ValueError:
        raise DialectError(name, f"{name} is not a valid template: {template!r}.") from None
    if allowed is not None and not found <= allowed:
        raise DialectError(name, f"{name} may only use {sorted(allowed)}, not "
                                 f"{sorted(found - allowed)}.")
    return found


#: Today's reading of the contract.
DEFAULT_DIALECT = Dialect()

#: A platform that speaks the query grammar of its own backend libraries
#: (FINDINGS.md), and differs from the default in every other item too: the
#: sandbox plays it so the suite proves that a dialect is a setting.
FILTER_OPERATORS = Dialect(
    name="filter-operators",
    token_url="{oauth_base_url}/{oauth_flow}/token",
    organisation_prefix="/v2/orgs/{organisation_id}",
    channel_groups_path="/channelgroups",
    templates_path="/message-templates",
    notifications_path="/outbound/notifications",
    notification_path="/outbound/notifications/{notification_id}",
    dialogues_path="/agents/{agent_id}/conversations",
    dialogue_path="/agents/{agent_id}/conversations/{dialogue_id}",
    messages_path="/agents/{agent_id}/conversations/{dialogue_id}/messages",
    files_path="/media",
    filter_style="operators",
    pagination="offset",
    idempotency_key_filter="idempotency_key",
    type_channel_groups="channel_group",
    type_channels="channel",
    type_templates="template",
    type_notifications="notification",
    type_dialogue_agents="dialogue_agent",
    type_dialogues="conversation",
    type_messages="message",
    type_files="file",
    type_events="event",
    event_names={
        "notification.status": "NOTIFICATION_STATUS_CHANGED",
        "message.status": "MESSAGE_STATUS_CHANGED",
        "message.received": "MESSAGE_RECEIVED",
        "dialogue.opened": "CONVERSATION_STARTED",
        "dialogue.closed": "CONVERSATION_ENDED",
    },
    statuses={
        "queued": "ACCEPTED",
        "sent": "SENT",
        "delivered": "DELIVERED",
        "read": "READ",
        "failed": "FAILED",
        "expired": "EXPIRED",
    },
    signature_header="X-MMC-Signature-256",
    signature_algorithm="sha256",
    signature_encoding="base64",
    signature_prefix="sha256=",
    signature_timestamp_header="X-MMC-Timestamp",
    opening_template="create",
    customer_id_type="customer",
    recipient_number_meta="msisdn",
)

#: The dialects shipped with django_mmc, by name.
DIALECTS: dict[str, Dialect] = {d.name: d for d in (DEFAULT_DIALECT, FILTER_OPERATORS)}


def load_dialect(value: Any) -> Dialect:
    """The dialect a ``CONTRACT`` value selects.

    ``None`` or ``{}``: the default. A dict: overrides of the default, or of
    the shipped dialect its ``"base"`` key names. A name of :data:`DIALECTS`.
    A dotted path to a :class:`Dialect` instance, a subclass (instantiated
    with no arguments) or a dict. A :class:`Dialect`. Raises
    :class:`DialectError` naming what is wrong.
    """
    if value is None:
        return DEFAULT_DIALECT
    if isinstance(value, Dialect):
        return value
    if isinstance(value, str):
        if value in DIALECTS:
            return DIALECTS[value]
        if "." not in value:
            raise DialectError("CONTRACT", f"No dialect is named {value!r}; the shipped ones "
                                           f"are {', '.join(DIALECTS)}.", "selection")
        module_name, _, attribute = value.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as err:
            raise DialectError("CONTRACT", f"{value!r} cannot be imported: {err}.",
                               "selection") from None
        if isinstance(found, type) and issubclass(found, Dialect):
            return found()
        if isinstance(found, (Dialect, Mapping)):
            return load_dialect(found)
        raise DialectError("CONTRACT", f"{value!r} is not a Dialect, a subclass or a dict.",
                           "selection")
    if isinstance(value, Mapping):
        overrides = dict(value)
        base = overrides.pop("base", DEFAULT_DIALECT.name)
        if base not in DIALECTS:
            raise DialectError("base", f"No dialect is named {base!r}; the shipped ones are "
                                       f"{', '.join(DIALECTS)}.", "selection")
        dialect = DIALECTS[base]
        if overrides and "name" not in overrides:
            overrides["name"] = f"{base}+custom"
        return dialect.with_overrides(overrides)
    raise DialectError("CONTRACT", f"CONTRACT must be a dict, a dialect name or a dotted path, "
                                   f"not {type(value).__name__}.", "selection")
