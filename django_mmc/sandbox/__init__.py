"""The MMC sandbox: a local stand-in for the Message My Customer platform.

It follows the wire contract exactly (OAuth client credentials, JSON:API
bodies and errors, idempotency keys, dialogue exclusivity, status progression
and signed webhooks) so that django_mmc's tests, its demo and users' own tests
can run without the real platform, the way moto stands in for AWS::

    from django_mmc.sandbox import Sandbox

    with Sandbox() as sandbox:
        settings.MMC = sandbox.mmc_settings()

Run it as a server with ``python -m django_mmc.sandbox``; use it in pytest
with ``pytest_plugins = ["django_mmc.sandbox.pytest_plugin"]``. It needs only
the standard library, ``requests`` and ``phonenumbers`` (not Django).
"""

from __future__ import annotations

from .defaults import (
    DEFAULT_AGENT_KEYS,
    DEFAULT_AGENTS,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_FIXTURES,
    DEFAULT_HOST,
    DEFAULT_NOTIFICATION_AGENT,
    DEFAULT_ORGANISATION_ID,
    DEFAULT_PAGE_SIZE,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_TOKEN_LIFETIME,
    DEFAULT_WEBHOOK_RETRY_DELAYS,
    DEFAULT_WEBHOOK_WORKERS,
)
from .faults import Faults
from .server import Sandbox

__all__ = [
    "DEFAULT_AGENTS",
    "DEFAULT_AGENT_KEYS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_FIXTURES",
    "DEFAULT_HOST",
    "DEFAULT_NOTIFICATION_AGENT",
    "DEFAULT_ORGANISATION_ID",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_PROGRESS_INTERVAL",
    "DEFAULT_TOKEN_LIFETIME",
    "DEFAULT_WEBHOOK_RETRY_DELAYS",
    "DEFAULT_WEBHOOK_WORKERS",
    "Faults",
    "Sandbox",
]
