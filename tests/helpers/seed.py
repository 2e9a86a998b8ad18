"""The sandbox's seed with names: the channel groups, channels, templates
and agents the sandbox starts with, read from its own fixture file the way
the sandbox reads it, so a test says ``SUPPORT_GROUP_ID`` rather than
``"7"``."""

from __future__ import annotations

from typing import Any

from django_mmc.sandbox import DEFAULT_AGENT_KEYS, DEFAULT_FIXTURES
from django_mmc.sandbox.state import load_fixtures

#: ``django_mmc/sandbox/fixtures.json``, as loaded by the sandbox.
SEED: dict[str, Any] = load_fixtures(DEFAULT_FIXTURES)


def _group(name: str) -> dict[str, Any]:
    return next(group for group in SEED["channelGroups"] if group["name"] == name)


def _channel(group: str, channel_type: str) -> str:
    return next(str(channel["id"]) for channel in _group(group)["channels"]
                if channel["channelType"] == channel_type)


def _template(name: str) -> str:
    return next(str(template["id"]) for template in SEED["templates"]
                if template["name"] == name)


SUPPORT_GROUP_ID = str(_group("Support")["id"])
SALES_GROUP_ID = str(_group("Sales")["id"])

SUPPORT_WHATSAPP_CHANNEL_ID = _channel("Support", "WHATSAPP")
SUPPORT_SMS_CHANNEL_ID = _channel("Support", "SMS")
SALES_WHATSAPP_CHANNEL_ID = _channel("Sales", "WHATSAPP")

ORDER_SHIPPED_TEMPLATE_ID = _template("order_shipped")
OTP_TEMPLATE_ID = _template("otp")
APPOINTMENT_REMINDER_TEMPLATE_ID = _template("appointment_reminder")
WELCOME_TEMPLATE_ID = _template("welcome")
ORDER_CONFIRMED_TEMPLATE_ID = _template("order_confirmed")

#: The sandbox's dialogue agents, by the key ``Sandbox.mmc_settings()`` (and
#: tests/settings.py) gives them in ``MMC["AGENTS"]``.
AGENT_IDS = {key: agent_id for agent_id, key in DEFAULT_AGENT_KEYS.items()}
SUPPORT_AGENT_ID = AGENT_IDS["support"]
SALES_AGENT_ID = AGENT_IDS["sales"]
