"""Webhook signatures: ``X-MMC-Signature`` is the lowercase hex HMAC of the
raw request body, keyed with the dialogue agent's secret (see
:mod:`django_mmc.contract` for the algorithm)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from . import contract


def sign(body: bytes, secret: str) -> str:
    """The signature the platform sends for ``body`` under ``secret``."""
    digest = getattr(hashlib, contract.SIGNATURE_ALGORITHM)
    return hmac.new(secret.encode("utf-8"), body, digest).hexdigest()


def verify(body: bytes, signature: str | None, secrets: Iterable[str]) -> bool:
    """Whether ``signature`` matches ``body`` under any of ``secrets``.

    Every secret is tried (rotation: the current and the previous one) and
    each comparison takes constant time. No secret means nothing verifies.
    """
    if not signature or not isinstance(signature, str):
        return False
    try:
        given = signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    matched = False
    for secret in secrets:
        expected = sign(body, secret).encode("ascii")
        # No early exit: the time taken does not say which secret matched.
        matched |= hmac.compare_digest(expected, given)
    return matched
