"""Media types on the sandbox's wire: header parsing, ``Accept``, multipart."""

from __future__ import annotations

import email.message
import json
from typing import Any

from .. import contract

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
TEXT = "text/plain; charset=utf-8"


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """``(type, params)`` of a header value, the type lowercased."""
    kind, _, rest = value.partition(";")
    params = {}
    for item in rest.split(";"):
        name, sep, param = item.partition("=")
        if sep:
            params[name.strip().lower()] = param.strip().strip('"')
    return kind.strip().lower(), params


def accepts_jsonapi(accept: str | None) -> bool:
    """JSON:API 1.0 rule: 406 if every JSON:API range has parameters."""
    if not accept:
        return True
    jsonapi_seen = jsonapi_plain = wildcard = False
    for item in accept.split(","):
        kind, params = media_type(item)
        params.pop("q", None)  # q is an accept-param, not a media type parameter
        if kind == contract.JSONAPI_MEDIA_TYPE:
            jsonapi_seen = True
            jsonapi_plain = jsonapi_plain or not params
        elif kind in ("*/*", "application/*"):
            wildcard = True
    if jsonapi_seen:
        return jsonapi_plain
    return wildcard


def encode(document: Any) -> bytes:
    """A JSON body, compact and in UTF-8."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, str, bytes]]:
    """``(name, filename, content type, data)`` of each part of a form.

    Raises ``ValueError`` on a malformed body.
    """
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise ValueError("no parts")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        part = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part[name.strip()] = value.strip()
        if part.get_content_disposition() != "form-data":
            raise ValueError("part is not form-data")
        field_name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        parts.append(
            (
                str(field_name or ""),
                None if filename is None else str(filename),
                part.get("content-type", "application/octet-stream"),
                data,
            )
        )
    return parts
