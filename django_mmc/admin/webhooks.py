"""The webhook events admin: every signed delivery as received, its
processing state, and "Process again"."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import events
from ..models import WebhookEvent
from .base import AgentFilter, PlatformOwnedAdmin, report, status_badge


class EventTypeFilter(admin.SimpleListFilter):
    """The event types django_mmc handles, and the rest: no DISTINCT over
    the (large) events table to build the choices."""

    title = gettext_lazy("event type")
    parameter_name = "event_type"
    OTHER = "_other"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t, t) for t in sorted(events.HANDLERS)] + [
            (self.OTHER, _("Other (stored, not processed)"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.OTHER:
            return queryset.exclude(event_type__in=list(events.HANDLERS))
        if value:
            return queryset.filter(event_type=value)
        return queryset


class WebhookEventAdmin(PlatformOwnedAdmin):
    list_display = ("event_id", "event_type", "agent_key", "subject_id", "state_display",
                    "occurred_at", "received_at", "processed_at", "attempts", "error_display")
    list_filter = ("state", EventTypeFilter, AgentFilter, "received_at")
    # Exact and case-sensitive, as platform ids are: the indexes serve it.
    search_fields = ("event_id__exact", "subject_id__exact")
    search_help_text = gettext_lazy("Exact event id, or the platform id it is about.")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    actions = ("process_again",)
    fieldsets = (
        (None, {"fields": ("event_id", "event_type", "agent_key", "subject_id",
                           "state_display", "error", "attempts")}),
        (gettext_lazy("Times"), {"fields": ("occurred_at", "received_at", "processed_at")}),
        (gettext_lazy("As received"), {"fields": ("body_display", "signature")}),
    )
    readonly_fields = ("state_display", "body_display", "error_display")

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_display(self, obj: WebhookEvent) -> str:
        return status_badge(obj.state, obj.get_state_display())

    @admin.display(description=gettext_lazy("error"))
    def error_display(self, obj: WebhookEvent) -> str:
        return Truncator(obj.error).chars(120) if obj.error else ""

    @admin.display(description=gettext_lazy("raw body"))
    def body_display(self, obj: WebhookEvent) -> str:
        # Untrusted text: shown escaped, indented when it is JSON.
        try:
            text = json.dumps(json.loads(obj.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = obj.body
        return format_html('<pre class="mmc-json">{}</pre>', text)

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_mmc.reprocess_webhookevent")

    @admin.action(description=gettext_lazy("Process again"), permissions=["reprocess"])
    def process_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Queue the selected events to be applied again (processed ones too:
        applying an event twice changes nothing the second time)."""
        count = events.reprocess(queryset, include_processed=True)
        report(request, ngettext("%(count)d webhook event queued to be processed again",
                                 "%(count)d webhook events queued to be processed again",
                                 count) % {"count": count}, Counter(), done_count=count)

