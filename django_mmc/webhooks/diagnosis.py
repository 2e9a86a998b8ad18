"""What a refused webhook delivery looked like, for the operator's first day.

A delivery whose signature does not verify is refused (401) and never
stored, whatever happens here. While ``MMC['WEBHOOK_DIAGNOSIS_UNTIL']`` lies
in the future, the view also logs the delivery's shape, so the first real
delivery says which signature scheme the platform uses: the names of its
headers (never their values), the signature header's length and shape
(hex, base64, a prefix such as ``sha256=``), the scheme that was tried, and
which other scheme, if any, would have verified it under the agent's own
secrets. It never logs the body, a header's value or a secret.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..dialect import DIALECTS, Dialect

logger = logging.getLogger("django_mmc.webhooks.diagnosis")

_PREFIX = re.compile(r"\A([A-Za-z][A-Za-z0-9_-]{0,15}[=:,])")
_HEX = set(string.hexdigits)
_BASE64 = set(string.ascii_letters + string.digits + "+/=_-")
_ALGORITHMS = ("sha256", "sha1", "sha512")


def _meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def active(until: datetime | None, now: datetime) -> bool:
    """Whether the diagnosis is on: a time is set and not yet past."""
    return until is not None and now < until


@dataclass(frozen=True)
class SignatureShape:
    """What a signature header's value looks like, without its value."""

    length: int
    prefix: str
    encoding: str  # hex, base64 or unknown

    def __str__(self) -> str:
        prefix = f", prefix {self.prefix!r}" if self.prefix else ", no prefix"
        return f"{self.length} characters, {self.encoding}{prefix}"


def signature_shape(value: str) -> SignatureShape:
    """The length, prefix and encoding of a signature header's value."""
    value = value.strip()
    found = _PREFIX.match(value)
    prefix = found.group(1) if found else ""
    digest = value[len(prefix):]
    if digest and set(digest) <= _HEX and len(digest) % 2 == 0:
        encoding = "hex"
    elif digest and set(digest) <= _BASE64 and _decodes(digest):
        encoding = "base64"
    else:
        encoding = "unknown"
    return SignatureShape(len(value), prefix, encoding)


def _decodes(text: str) -> bool:
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_"
                         if "-" in text or "_" in text else None, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def header_names(meta: Mapping[str, Any]) -> list[str]:
    """The request's header names as sent (``X-Mmc-Signature``), sorted."""
    names = []
    for key in meta:
        if key.startswith("HTTP_"):
            names.append(key[5:].replace("_", "-").title())
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            names.append(key.replace("_", "-").title())
    return sorted(names)


def describe_scheme(dialect: Dialect) -> str:
    """A scheme in words: header, hash, encoding, prefix, timestamp."""
    parts = [dialect.signature_header, f"HMAC-{dialect.signature_algorithm.upper()}",
             dialect.signature_encoding]
    parts.append(f"prefix {dialect.signature_prefix!r}" if dialect.signature_prefix
                 else "no prefix")
    if dialect.signature_timestamp_header:
        parts.append(f"timestamp {dialect.signature_timestamp_header}")
    return ", ".join(parts)


#: The dialect items that make a signature scheme.
SCHEME_ITEMS = ("signature_header", "signature_algorithm", "signature_encoding",
                "signature_prefix", "signature_timestamp_header")


def candidate_schemes(configured: Dialect, meta: Mapping[str, Any],
                      prefix: str) -> Iterable[Dialect]:
    """The schemes worth trying on a refused delivery, the configured one first:
    every signature and timestamp header a shipped dialect or the configured
    one names that the delivery carries, each hash, both encodings, with and
    without the prefix that was seen."""
    headers = [configured.signature_header, *(d.signature_header for d in DIALECTS.values())]
    stamps = ["", configured.signature_timestamp_header,
              *(d.signature_timestamp_header for d in DIALECTS.values())]
    seen = set()
    for header in dict.fromkeys(headers):
        if _meta_key(header) not in meta:
            continue
        for stamp in dict.fromkeys(stamps):
            if stamp and _meta_key(stamp) not in meta:
                continue
            for algorithm in _ALGORITHMS:
                for encoding in ("hex", "base64"):
                    for with_prefix in dict.fromkeys(("", prefix)):
                        key = (header, stamp, algorithm, encoding, with_prefix)
                        if key in seen:
                            continue
                        seen.add(key)
                        yield replace(configured, signature_header=header,
                                      signature_timestamp_header=stamp,
                                      signature_algorithm=algorithm,
                                      signature_encoding=encoding,
                                      signature_prefix=with_prefix)


def matching_scheme(body: bytes, meta: Mapping[str, Any], secrets: Iterable[str],
                    configured: Dialect, prefix: str) -> Dialect | None:
    """The first candidate scheme under which the delivery verifies, or None."""
    from .. import signing

    secrets = list(secrets)
    for scheme in candidate_schemes(configured, meta, prefix):
        signature = meta.get(scheme.signature_meta_key)
        timestamp = meta.get(scheme.timestamp_meta_key) if scheme.timestamp_meta_key else None
        if signing.verify(body, signature, secrets, scheme, timestamp):
            return scheme
    return None


def override_for(scheme: Dialect, configured: Dialect) -> dict[str, str]:
    """The ``CONTRACT`` items that turn the configured scheme into ``scheme``."""
    return {item: getattr(scheme, item) for item in SCHEME_ITEMS
            if getattr(scheme, item) != getattr(configured, item)}


def log_refused_delivery(agent_key: str, body: bytes, meta: Mapping[str, Any],
                         secrets: Iterable[str], dialect: Dialect) -> None:
    """Log the shape of a delivery whose signature did not verify."""
    signature = meta.get(dialect.signature_meta_key)
    if isinstance(signature, str) and signature:
        shape = signature_shape(signature)
        shown = f"{dialect.signature_header}: {shape}"
    else:
        shape = None
        shown = f"{dialect.signature_header}: absent"
    others = [name for name in header_names(meta) if "signature" in name.lower()
              and name.lower() != dialect.signature_header.lower()]
    for name in others:
        value = meta.get(_meta_key(name))
        if isinstance(value, str) and value:
            shown += f"; {name}: {signature_shape(value)}"
            if shape is None:
                shape = signature_shape(value)
    match = matching_scheme(body, meta, secrets, dialect, shape.prefix if shape else "")
    if match is None:
        verdict = ("no scheme django_mmc knows verifies it under the agent's secrets "
                   "(a wrong secret, or a scheme the dialect cannot express)")
    else:
        verdict = (f"it verifies as {describe_scheme(match)}: set MMC['CONTRACT'] items "
                   f"{override_for(match, dialect)!r}")
    logger.warning(
        "django_mmc: webhook diagnosis for agent %s (refused with 401, not stored): "
        "headers %s; %s; tried %s; %s",
        agent_key, ", ".join(header_names(meta)) or "none", shown, describe_scheme(dialect),
        verdict)
