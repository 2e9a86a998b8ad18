"""How the sandbox platform refuses a request.

:class:`ApiError` is a JSON:API error document with its HTTP status;
:class:`OAuthError` is the token endpoint's RFC 6749 error. The state raises
them and the HTTP layer writes them; neither knows about the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import contract

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

#: The challenge sent with every 401 of the organisation API.
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


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


def bad_request(detail: str, pointer: str | None = None, parameter: str | None = None) -> ApiError:
    """``400 BAD_REQUEST``, pointing at a member of the body or a query parameter."""
    return ApiError(400, contract.ERROR_BAD_REQUEST, detail, pointer=pointer, parameter=parameter)


def invalid(detail: str, pointer: str | None = None) -> ApiError:
    """``422 VALIDATION_ERROR`` for a member of the request body."""
    return ApiError(422, contract.ERROR_VALIDATION, detail, pointer=pointer)


def not_found(detail: str, pointer: str | None = None) -> ApiError:
    """``404 NOT_FOUND``."""
    return ApiError(404, contract.ERROR_NOT_FOUND, detail, pointer=pointer)


def token_expired() -> ApiError:
    """``401 TOKEN_EXPIRED`` for an expired bearer token (also injected as a fault)."""
    return ApiError(
        401, contract.ERROR_TOKEN_EXPIRED, "The access token has expired.", headers=BEARER_CHALLENGE
    )
