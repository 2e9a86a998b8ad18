"""Playing the customer's side against the MMC sandbox (demo only).

The sandbox has control endpoints next to its API; ``POST /_sandbox/reply``
makes a recipient write to a channel group, exactly as if they had typed on
their phone: the platform routes the message to the dialogue's agent (or
opens a dialogue with the group's designated agent) and pushes signed
webhooks to this site.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from django_mmc.conf import mmc_settings


def reply_url() -> str:
    return f"{mmc_settings.BASE_URL.rstrip('/')}/_sandbox/reply"


def sandbox_reply(number: str, text: str, *, channel_group: str | None = None,
                  channel_type: str = "WHATSAPP") -> dict[str, Any]:
    """Make ``number`` write ``text`` on a channel group of the sandbox.

    Returns the sandbox's answer (``dialogue_id``, ``message_id``,
    ``agent_id``, ``opened``); raises ``RuntimeError`` when the sandbox
    controls are off or the sandbox refused."""
    if not getattr(settings, "SHOP_SANDBOX_CONTROLS", False):
        raise RuntimeError("The sandbox controls are off (SHOP_SANDBOX_CONTROLS): "
                           "MMC_BASE_URL is not a local sandbox.")
    payload = {
        "number": number,
        "text": text,
        "channelGroup": str(channel_group or mmc_settings.DEFAULT_CHANNEL_GROUP or "7"),
        "channelType": channel_type,
    }
    try:
        response = requests.post(reply_url(), json=payload, timeout=10)
    except requests.RequestException as error:
        raise RuntimeError(f"The sandbox at {reply_url()} cannot be reached: {error}") from None
    if response.status_code >= 300:
        raise RuntimeError(f"The sandbox refused ({response.status_code}): {response.text}")
    return response.json()
