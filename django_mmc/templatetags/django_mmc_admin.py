"""Template tags of django_mmc's admin pages.

``{% load django_mmc_admin %}{% mmc_inbox as inbox %}`` puts the support
inbox's summary in the context of any admin template (the index that
django_mmc installs uses it; a site with its own index template can too).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def mmc_inbox(context: dict[str, Any]) -> dict[str, Any] | None:
    """How many dialogues are waiting for us and the list that shows them,
    or ``None`` for a user who may not see dialogues. One query."""
    from ..admin.inbox import waiting_dialogues

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("django_mmc.view_dialogue"):
        return None
    return {
        "count": waiting_dialogues().count(),
        "url": reverse("admin:django_mmc_dialogue_changelist") + "?waiting=1",
    }
