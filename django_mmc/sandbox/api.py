"""The organisation API's views: one function per route and method.

A view takes an :class:`ApiCall` (the request, already authenticated,
rate-limited and routed) and returns either a document, answered with
``200``, or a :class:`Creation`, which the handler runs at most once per
idempotency key and answers with ``201`` and a ``Location``. The table
that maps paths to these views is :func:`.routes.build_routes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Any

from .. import contract
from .media import MULTIPART, media_type, parse_multipart
from .query import INCLUDE, ListQuery
from .state import ApiError, Platform, fingerprint

if TYPE_CHECKING:
    from .routes import Route, Routes


@dataclass(frozen=True)
class Creation:
    """A create to run once per idempotency key.

    ``make`` creates the object and returns its resource object (or raises
    :class:`ApiError`, whose answer is stored and replayed like a success);
    ``location`` is the new resource's path below the organisation.
    """

    fingerprint: str
    make: Callable[[], dict[str, Any]]
    location: Callable[[dict[str, Any]], str]


Answer = dict[str, Any] | Creation


@dataclass(frozen=True)
class ApiCall:
    """One routed request of the organisation API."""

    platform: Platform
    routes: Routes
    route: Route
    method: str
    path: str
    params: Mapping[str, str]
    query: ListQuery
    headers: Message
    body: bytes
    key: str | None

    def document(self) -> Any:
        """The request's JSON:API document; 415 or 400 if it is not one."""
        kind, params = media_type(self.headers.get("Content-Type", ""))
        if kind != contract.JSONAPI_MEDIA_TYPE or params:
            raise ApiError(
                415,
                contract.ERROR_UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type must be {contract.JSONAPI_MEDIA_TYPE} without parameters.",
            )
        self.check_key()
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, contract.ERROR_BAD_REQUEST, "The body is not valid JSON.") from None

    def check_key(self) -> None:
        """400 for an ``Idempotency-Key`` of the wrong length."""
        key = self.key
        if key is not None and not 0 < len(key) <= contract.IDEMPOTENCY_KEY_MAX_LENGTH:
            raise ApiError(
                400,
                contract.ERROR_BAD_REQUEST,
                f"{contract.IDEMPOTENCY_HEADER} must be 1 to "
                f"{contract.IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
            )

    def create(self, make: Callable[[Any], dict[str, Any]], member: str, id_name: str) -> Creation:
        """A JSON:API create: ``make(document)``; the new object's path is route
        ``member`` with this call's path parameters and its id as ``id_name``."""
        document = self.document()
        params = self.params

        def location(resource: dict[str, Any]) -> str:
            return self.routes[member].path(**params, **{id_name: resource["id"]})

        return Creation(
            fingerprint(self.method, self.path, document), lambda: make(document), location
        )


# -- the directory --------------------------------------------------------------


def list_channel_groups(call: ApiCall) -> Answer:
    wire = call.platform.wire
    include = call.query.include()
    if include not in (None, "", wire.type_channels):
        raise ApiError(
            400,
            contract.ERROR_BAD_REQUEST,
            f"Only include={wire.type_channels} is supported.",
            parameter=INCLUDE,
        )
    return call.platform.channel_groups_document(include == wire.type_channels, call.query.page())


def list_templates(call: ApiCall) -> Answer:
    return call.platform.templates_document(call.query.page())


# -- notifications ----------------------------------------------------------------


def list_notifications(call: ApiCall) -> Answer:
    key = call.query.filter(call.platform.wire.idempotency_key_filter)
    if key is not None:
        return call.platform.notifications_by_key(key, call.query.page())
    ids = call.query.filter_ids()
    if ids is None:
        return call.platform.notifications_document(None, call.query.page())
    # A poll by id gets all its ids on one page unless it asks otherwise.
    return call.platform.notifications_document(ids, call.query.page(contract.MAX_FILTER_IDS))


def create_notification(call: ApiCall) -> Answer:
    return call.create(
        lambda document: call.platform.create_notification(document, call.key),
        "notification",
        "notification_id",
    )


def get_notification(call: ApiCall) -> Answer:
    return {"data": call.platform.notification_resource(call.params["notification_id"])}


# -- dialogues ----------------------------------------------------------------------


def list_dialogues(call: ApiCall) -> Answer:
    status = call.query.filter("status", (contract.DIALOGUE_OPEN, contract.DIALOGUE_CLOSED))
    return call.platform.dialogues_document(call.params["agent_id"], status, call.query.page())


def create_dialogue(call: ApiCall) -> Answer:
    agent_id = call.params["agent_id"]
    return call.create(
        lambda document: call.platform.create_dialogue(agent_id, document, call.key),
        "dialogue",
        "dialogue_id",
    )


def get_dialogue(call: ApiCall) -> Answer:
    return {
        "data": call.platform.dialogue_resource(call.params["agent_id"], call.params["dialogue_id"])
    }


def update_dialogue(call: ApiCall) -> Answer:
    document = call.document()
    resource = call.platform.update_dialogue(
        call.params["agent_id"], call.params["dialogue_id"], document
    )
    return {"data": resource}


# -- messages -----------------------------------------------------------------------


def list_messages(call: ApiCall) -> Answer:
    return call.platform.messages_document(
        call.params["agent_id"], call.params["dialogue_id"], call.query.page()
    )


def create_message(call: ApiCall) -> Answer:
    agent_id, dialogue_id = call.params["agent_id"], call.params["dialogue_id"]
    return call.create(
        lambda document: call.platform.create_message(agent_id, dialogue_id, document, call.key),
        "message",
        "message_id",
    )


def get_message(call: ApiCall) -> Answer:
    params = call.params
    return {
        "data": call.platform.message_resource(
            params["agent_id"], params["dialogue_id"], params["message_id"]
        )
    }


# -- files ----------------------------------------------------------------------------


def upload_file(call: ApiCall) -> Answer:
    """A multipart upload with exactly one part named ``file``."""
    content_type = call.headers.get("Content-Type", "")
    kind, _ = media_type(content_type)
    if kind != MULTIPART:
        raise ApiError(
            415, contract.ERROR_UNSUPPORTED_MEDIA_TYPE, f"Files are sent as {MULTIPART}."
        )
    call.check_key()
    try:
        parts = parse_multipart(call.body, content_type)
    except ValueError as error:
        raise ApiError(
            400, contract.ERROR_BAD_REQUEST, f"Malformed multipart body: {error}."
        ) from None
    files = [part for part in parts if part[0] == "file"]
    if len(files) != 1:
        raise ApiError(400, contract.ERROR_BAD_REQUEST, "Send exactly one part named 'file'.")
    _, filename, part_type, data = files[0]
    if len(data) > contract.MAX_FILE_SIZE:
        raise ApiError(
            413,
            contract.ERROR_PAYLOAD_TOO_LARGE,
            f"Files are limited to {contract.MAX_FILE_SIZE} bytes; this one has {len(data)}.",
        )
    name = filename or "file"
    # The multipart boundary differs on every retry: fingerprint the file.
    print_ = fingerprint("POST", call.route.template, f"{name}\0{part_type}\0".encode() + data)
    return Creation(
        print_,
        lambda: call.platform.create_file(name, part_type, data, call.key),
        lambda resource: call.routes["file"].path(file_id=resource["id"]),
    )


def get_file(call: ApiCall) -> Answer:
    return {"data": call.platform.file_resource(call.params["file_id"])}
