"""django_mmc's models, one module per part of the platform."""

from .dialogues import Dialogue, Message
from .directory import Channel, ChannelGroup, Template
from .notifications import Notification
from .recipients import ConsentChange, Recipient, normalize_phone_number
from .webhooks import WebhookEvent

__all__ = [
    "Channel",
    "ChannelGroup",
    "ConsentChange",
    "Dialogue",
    "Message",
    "Notification",
    "Recipient",
    "Template",
    "WebhookEvent",
    "normalize_phone_number",
]
