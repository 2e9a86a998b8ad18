"""Reading JSON:API request documents, with JSON:API's refusals.

Every function takes the resource type names it expects as arguments, so
the vocabulary stays with the caller (see ``Platform.wire``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ... import contract
from .errors import ApiError, bad_request, invalid
from .records import is_e164


def primary(
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
        raise bad_request("The document must have a 'data' object.", "/data")
    data = document["data"]
    kind = data.get("type")
    if not isinstance(kind, str):
        raise bad_request("The resource object needs a 'type'.", "/data/type")
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
        raise bad_request("'attributes' must be an object.", "/data/attributes")
    if not isinstance(rels, dict):
        raise bad_request("'relationships' must be an object.", "/data/relationships")
    for name in attrs:
        if name not in attributes:
            raise invalid(f"Unknown attribute {name!r}.", f"/data/attributes/{name}")
    for name in rels:
        if name not in relationships:
            raise invalid(f"Unknown relationship {name!r}.", f"/data/relationships/{name}")
    return attrs, rels


def _linked_id(linkage: Mapping[str, Any], pointer: str) -> str:
    linked_id = linkage.get("id")
    if not isinstance(linked_id, str) or not linked_id:
        raise bad_request("Resource ids are non-empty strings.", pointer)
    return linked_id


def to_one(
    relationships: Mapping[str, Any], name: str, resource_type: str, *, required: bool = True
) -> str | None:
    """The id in a to-one relationship's resource linkage."""
    pointer = f"/data/relationships/{name}"
    if name not in relationships or relationships[name] is None:
        if required:
            raise invalid(f"The relationship {name!r} is required.", pointer)
        return None
    member = relationships[name]
    if not isinstance(member, dict) or "data" not in member:
        raise bad_request(f"The relationship {name!r} needs a 'data' member.", pointer)
    linkage = member["data"]
    if linkage is None and not required:
        return None
    if not isinstance(linkage, dict):
        raise bad_request(
            f"The relationship {name!r} needs a resource identifier.", pointer + "/data"
        )
    if linkage.get("type") != resource_type:
        raise bad_request(f"The relationship {name!r} must be of type {resource_type!r}.", pointer)
    return _linked_id(linkage, pointer + "/data/id")


def to_many(relationships: Mapping[str, Any], name: str, resource_type: str) -> list[str]:
    """The ids in a to-many relationship's resource linkage (none if absent)."""
    pointer = f"/data/relationships/{name}"
    if name not in relationships:
        return []
    member = relationships[name]
    if not isinstance(member, dict) or not isinstance(member.get("data"), list):
        raise bad_request(f"The relationship {name!r} needs a 'data' list.", pointer)
    ids = []
    for index, linkage in enumerate(member["data"]):
        item = f"{pointer}/data/{index}"
        if not isinstance(linkage, dict) or linkage.get("type") != resource_type:
            raise bad_request(f"Every item must be of type {resource_type!r}.", item)
        ids.append(_linked_id(linkage, item + "/id"))
    return ids


def channel_type(attributes: Mapping[str, Any], default: str | None = None) -> str:
    """The ``channelType`` attribute, or ``default``; 422 if neither is there."""
    value = attributes.get("channelType", default)
    if not isinstance(value, str) or not value:
        raise invalid("'channelType' is required.", "/data/attributes/channelType")
    return value


def recipient(relationships: Mapping[str, Any], resource_type: str) -> str:
    """The E.164 number in the ``recipient`` relationship; 422 if not valid."""
    number = to_one(relationships, "recipient", resource_type)
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
