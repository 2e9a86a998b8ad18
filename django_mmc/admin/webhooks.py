"""The webhook events admin: every signed delivery as received, its
processing state, and "Process again"."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from .. import processing
from ..models import Dialogue, Message, Notification, WebhookEvent
from ..status import Status
from .base import (
    AgentFilter,
    PlatformOwnedAdmin,
    exact_time,
    list_time,
    report,
    status_badge,
    status_cell,
)

#: The model an event is about, by the first word of its type
#: (``notification.status`` is about a notification).
SUBJECT_MODELS: dict[str, type[Model]] = {
    "notification": Notification, "message": Message, "dialogue": Dialogue,
}


def subject_model(event: WebhookEvent) -> type[Model] | None:
    return SUBJECT_MODELS.get(event.event_type.split(".", 1)[0])


def carried_status(event: WebhookEvent) -> str:
    """The status the event reported (``DELIVERED``...), or ``""``. The body
    is untrusted: anything but a known status word is ignored."""
    cached = getattr(event, "_mmc_carried", None)
    if cached is not None:
        return cached
    try:
        attributes = json.loads(event.body)["data"]["attributes"]
        status = attributes.get("status") if isinstance(attributes, dict) else None
    except (ValueError, KeyError, TypeError):
        status = None
    value = status if isinstance(status, str) and status in Status.values else ""
    event._mmc_carried = value  # type: ignore[attr-defined]
    return value


def attach_subjects(events_: list[WebhookEvent]) -> None:
    """Set ``_mmc_subject`` on each event: the notification, message or
    dialogue it is about, or ``None``. One query per kind, whatever the
    number of events (a page of the list)."""
    wanted: dict[type[Model], set[str]] = {}
    for event in events_:
        model = subject_model(event)
        if model is not None and event.subject_id:
            wanted.setdefault(model, set()).add(event.subject_id)
    found: dict[tuple[type[Model], str], Model] = {}
    for model, ids in wanted.items():
        for obj in model._default_manager.filter(platform_id__in=ids).only("pk", "platform_id"):
            found[(model, obj.platform_id)] = obj
    for event in events_:
        model = subject_model(event)
        event._mmc_subject = (  # type: ignore[attr-defined]
            found.get((model, event.subject_id)) if model is not None else None)


class EventChangeList(ChangeList):
    """The events list, with what each event is about found for the whole
    page at once."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        attach_subjects(list(self.result_list))


class EventTypeFilter(admin.SimpleListFilter):
    """The event types django_mmc handles, and the rest: no DISTINCT over
    the (large) events table to build the choices."""

    title = gettext_lazy("event type")
    parameter_name = "event_type"
    OTHER = "_other"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(t, t) for t in sorted(processing.HANDLERS)] + [
            (self.OTHER, _("Other (stored, not processed)"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == self.OTHER:
            return queryset.exclude(event_type__in=list(processing.HANDLERS))
        if value:
            return queryset.filter(event_type=value)
        return queryset


class WebhookEventAdmin(PlatformOwnedAdmin):
    # Few, dense columns: the state cell holds the processing time and error.
    list_display = ("event_display", "about_display", "carried_display", "state_cell",
                    "received_display_short")
    list_display_links = ("event_display",)
    list_filter = ("state", EventTypeFilter, AgentFilter, "received_at")
    # Exact and case-sensitive, as platform ids are: the indexes serve it.
    search_fields = ("event_id__exact", "subject_id__exact")
    search_help_text = gettext_lazy("Exact event id, or the platform id it is about.")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    actions = ("process_again",)
    change_form_template = "admin/django_mmc/webhookevent/change_form.html"
    fieldsets = (
        (None, {"fields": ("event_id", "event_type", "agent_key", "about_display",
                           "carried_display", "state_display", "error", "attempts")}),
        (gettext_lazy("Times"), {"fields": ("occurred_display", "received_display",
                                            "processed_display")}),
        (gettext_lazy("As received"), {"fields": ("body_display", "signature")}),
    )
    readonly_fields = ("state_display", "body_display", "error_display", "about_display",
                       "carried_display", "occurred_display", "received_display",
                       "processed_display")

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EventChangeList

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_display(self, obj: WebhookEvent) -> str:
        return status_badge(obj.state, obj.get_state_display())

    @admin.display(description=gettext_lazy("event"), ordering="event_type")
    def event_display(self, obj: WebhookEvent) -> str:
        return format_html('{}<span class="mmc-cell-detail mmc-muted mmc-id">{}</span>',
                           obj.event_type, obj.event_id)

    @admin.display(description=gettext_lazy("received"), ordering="received_at")
    def received_display_short(self, obj: WebhookEvent) -> str:
        return list_time(obj.received_at)

    @admin.display(description=gettext_lazy("state"), ordering="state")
    def state_cell(self, obj: WebhookEvent) -> str:
        detail = (format_html('<span class="mmc-failure">{}</span>',
                              Truncator(obj.error).chars(70)) if obj.error else "")
        return status_cell(obj.state, obj.get_state_display(), obj.processed_at, detail)

    @admin.display(description=gettext_lazy("about"), ordering="subject_id")
    def about_display(self, obj: WebhookEvent) -> str:
        """A link to the notification, message or dialogue the event is about;
        the platform id alone while that is not known here."""
        if not hasattr(obj, "_mmc_subject"):
            attach_subjects([obj])
        subject = obj._mmc_subject  # type: ignore[attr-defined]
        if subject is None:
            return obj.subject_id or "-"
        meta = subject._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[subject.pk],
                      current_app=self.admin_site.name)
        return format_html('<a href="{}" class="mmc-about">{} {}</a>', url,
                           meta.verbose_name, obj.subject_id)

    @admin.display(description=gettext_lazy("reported"))
    def carried_display(self, obj: WebhookEvent) -> str:
        status = carried_status(obj)
        return status_badge(status, Status(status).label) if status else "-"

    @admin.display(description=gettext_lazy("occurred"), ordering="occurred_at")
    def occurred_display(self, obj: WebhookEvent) -> str:
        return exact_time(obj.occurred_at) or "-"

    @admin.display(description=gettext_lazy("received"), ordering="received_at")
    def received_display(self, obj: WebhookEvent) -> str:
        return exact_time(obj.received_at) or "-"

    @admin.display(description=gettext_lazy("processed"), ordering="processed_at")
    def processed_display(self, obj: WebhookEvent) -> str:
        return exact_time(obj.processed_at) or "-"

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

    def get_urls(self) -> list:
        custom = [
            path("<path:object_id>/process-again/",
                 self.wrap_custom(require_POST(self.process_again_view)),
                 name="django_mmc_webhookevent_process_again"),
        ]
        return custom + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        event = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if event is not None and self.has_reprocess_permission(request):
            extra["can_process_again"] = event.state in (WebhookEvent.State.FAILED,
                                                         WebhookEvent.State.WAITING)
        return super().change_view(request, object_id, form_url, extra)

    def process_again_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: queue this event to be processed again. 403 without
        ``django_mmc.reprocess_webhookevent``; back to the event's page."""
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        event = self.get_object(request, unquote(object_id))
        if event is None:
            raise Http404(_("No such webhook event."))
        processing.reprocess(WebhookEvent.objects.filter(pk=event.pk), include_processed=True)
        messages.success(request, _(
            "The event is queued to be processed again; its state shows here."))
        return HttpResponseRedirect(reverse("admin:django_mmc_webhookevent_change",
                                            args=[event.pk], current_app=self.admin_site.name))

    @admin.action(description=gettext_lazy("Process again"), permissions=["reprocess"])
    def process_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Queue the selected events to be applied again (processed ones too:
        applying an event twice changes nothing the second time)."""
        count = processing.reprocess(queryset, include_processed=True)
        report(request, ngettext("%(count)d webhook event queued to be processed again",
                                 "%(count)d webhook events queued to be processed again",
                                 count) % {"count": count}, Counter(), done_count=count)

