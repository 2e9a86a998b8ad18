"""django_mmc: WhatsApp and SMS for Django through the Message My Customer platform.

The public API is importable from here::

    import django_mmc

    django_mmc.send_notification("+353861234567", "order_shipped", {"first_name": "Ann"})
    dialogue = django_mmc.open_dialogue("+353861234567")
    dialogue.send_message("Hello!")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "forget_recipient",
    "open_dialogue",
    "send_notification",
    "send_notifications",
]

if TYPE_CHECKING:  # pragma: no cover
    from .api import forget_recipient, open_dialogue, send_notification, send_notifications


def __getattr__(name: str) -> Any:
    # Lazy, so that importing django_mmc (for its version, say) never needs
    # Django's app registry to be ready.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'django_mmc' has no attribute {name!r}")
