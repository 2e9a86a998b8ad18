"""The OAuth 2.0 token endpoint (client credentials, RFC 6749 section 4.4).

It lives apart from the organisation API: another host on the real
platform, form bodies instead of JSON:API, and RFC 6749 error documents.
:meth:`TokenEndpoint.answer` returns ``(status, payload, headers)``; the
handler writes it with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from ..dialect import DEFAULT_DIALECT, Dialect
from .media import FORM, media_type
from .state import ApiError, OAuthError, Platform

Answer = tuple[int, dict[str, Any], list[tuple[str, str]]]


def _error(status: int, error: str, description: str, headers: Any = ()) -> Answer:
    return status, {"error": error, "error_description": description}, list(headers)


@dataclass(frozen=True)
class TokenEndpoint:
    """Where tokens are granted: ``path``, and the query parameter naming the flow.

    ``target`` is the path with its query, as a client writes it.
    """

    path: str
    flow_parameter: str | None
    flow: str
    target: str

    @classmethod
    def from_wire(cls, oauth_path: str, flow: str,
                  wire: Dialect = DEFAULT_DIALECT) -> TokenEndpoint:
        """Read from the dialect's ``token_url``, below ``oauth_path``."""
        target = wire.token_url.format(oauth_base_url=oauth_path, oauth_flow=flow)
        url = urlsplit(target)
        # The flow may travel in the query (``?p=<flow>``) or in the path itself.
        names = [name for name, values in parse_qs(url.query).items() if flow in values]
        return cls(url.path, names[0] if names else None, flow, target)

    def answer(
        self, platform: Platform, method: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """The answer to one token request."""
        if method != "POST":
            return _error(405, "invalid_request", "Use POST.", [("Allow", "POST")])
        if self.flow_parameter is not None:
            flow = parse_qs(query).get(self.flow_parameter, [None])[0]
            if flow != self.flow:
                return _error(400, "invalid_request", f"Unknown policy {flow!r}.")
        kind, _ = media_type(headers.get("Content-Type", ""))
        if kind != FORM:
            return _error(400, "invalid_request", f"The body must be {FORM}.")
        form = {
            k: v[0]
            for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        basic = False
        authorization = headers.get("Authorization") or ""
        if authorization[:6].lower() == "basic ":
            basic = True
            user, password = _basic_credentials(authorization[6:])
            # RFC 6749 2.3 allows one authentication method; the same
            # credentials repeated in the body are tolerated, others are not.
            if (client_secret is not None and client_secret != password) or (
                client_id is not None and client_id != user
            ):
                return _error(400, "invalid_request", "Use one client authentication method.")
            client_id, client_secret = user, password
        try:
            grant = platform.grant_token(
                grant_type=form.get("grant_type"),
                client_id=client_id,
                client_secret=client_secret,
                scope=form.get("scope"),
                basic=basic,
            )
        except OAuthError as error:
            challenge = [("WWW-Authenticate", 'Basic realm="mmc-sandbox"')] if error.basic else []
            return _error(error.status, error.error, error.description, challenge)
        return 200, grant, []


def _basic_credentials(encoded: str) -> tuple[str, str]:
    """``(user, password)`` of HTTP Basic credentials, form-decoded (RFC 6749 2.3.1)."""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    user, _, password = decoded.partition(":")
    return unquote_plus(user), unquote_plus(password)


def fault_answer(error: ApiError) -> Answer:
    """An injected fault, as the token endpoint reports it."""
    busy = error.status in (429, 503)
    return _error(
        error.status,
        "temporarily_unavailable" if busy else "server_error",
        error.errors[0]["detail"],
        error.headers.items(),
    )
