"""Webhook signatures, by the dialect's scheme.

By default ``X-MMC-Signature`` is the lowercase hex HMAC-SHA256 of the raw
request body, keyed with the dialogue agent's secret (UTF-8 bytes). A
:class:`~django_mmc.dialect.Dialect` may change the header, the hash, the
encoding (hex or base64), add a prefix such as ``sha256=``, and sign a
timestamp header before the body."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from .dialect import DEFAULT_DIALECT, Dialect


def sign(body: bytes, secret: str, dialect: Dialect = DEFAULT_DIALECT,
         timestamp: str | None = None) -> str:
    """The signature the platform sends for ``body`` under ``secret``."""
    return dialect.sign(body, secret, timestamp)


def verify(body: bytes, signature: str | None, secrets: Iterable[str],
           dialect: Dialect = DEFAULT_DIALECT, timestamp: str | None = None) -> bool:
    """Whether ``signature`` matches ``body`` under any of ``secrets``.

    Every secret is tried (rotation: the current and the previous one) and
    each comparison takes constant time. No secret means nothing verifies;
    nor does a missing timestamp when the dialect signs one.
    """
    if not signature or not isinstance(signature, str):
        return False
    if dialect.signature_timestamp_header and not timestamp:
        return False
    given_text = signature.strip()
    if dialect.signature_encoding == "hex":
        given_text = given_text.lower()
    try:
        given = given_text.encode("ascii")
    except UnicodeEncodeError:
        return False
    matched = False
    for secret in secrets:
        expected = dialect.sign(body, secret, timestamp).encode("ascii")
        if dialect.signature_encoding == "hex":
            expected = expected.lower()
        # No early exit: the time taken does not say which secret matched.
        matched |= hmac.compare_digest(expected, given)
    return matched
