"""The notifications admin: a read-only log, the "Send notification" view,
and the Retry and Refresh actions."""

from __future__ import annotations

import json
from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from .. import api
from ..exceptions import MMCError
from ..models import Notification
from ..status import FAILURE_STATUSES, POLLABLE_STATUSES, Priority
from .base import (
    ChannelTypeFilter,
    PlatformOwnedAdmin,
    active_template,
    apply_api_errors,
    error_messages,
    failure_html,
    list_time,
    recipient_cell,
    rendered_text,
    report,
    scrub,
    status_badge,
    status_cell,
    status_history,
)
from .forms import SendNotificationForm

#: Most notifications one "Refresh status now" asks about: a request that
#: stays well inside a web request's time.
MAX_REFRESH = 500

#: Request keys that are not form fields.
_NOT_INITIAL = frozenset({"csrfmiddlewaretoken", "_choose", "_send", "template"})


class NotificationAdmin(PlatformOwnedAdmin):
    """Notifications as support sees them: who, what, on which channel, how
    far it got and why it failed. Only the explicit view and actions change
    anything, each behind its own permission."""

    # Few, dense columns (the status cell holds its time and the failure), so
    # the list fits a laptop screen; everything else is on the detail page.
    list_display = ("recipient_display", "message_display", "status_cell", "created_display")
    list_display_links = ("recipient_display",)
    list_filter = ("status", ChannelTypeFilter, "channel_group", "template", "priority",
                   "created_at")
    list_select_related = ("recipient", "template", "channel_group", "created_by")
    search_fields = ("recipient__phone_number", "recipient__name", "platform_id",
                     "template__name", "=idempotency_key")
    search_help_text = gettext_lazy(
        "Phone number, recipient name, template, platform id or idempotency key.")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ("retry_notifications", "cancel_notifications", "refresh_status")
    change_form_template = "admin/django_mmc/notification/change_form.html"
    fieldsets = (
        (None, {"fields": ("recipient", "template", "channel_group", "channel_type",
                           "context_display", "preview_display", "created_by")}),
        (gettext_lazy("Status"), {"fields": (
            "status_display", "failure_display", "history_display", "checked_at")}),
        (gettext_lazy("Sending"), {"fields": (
            "priority", "send_at", "expires_at", "transactional", "fallback_channel_types",
            "fallback_chain_display", "retry_of", "retries_display")}),
        (gettext_lazy("Platform"), {"fields": (
            "platform_id", "idempotency_key", "attempts", "last_error", "next_attempt_at",
            "send_started_at", "created_at", "updated_at")}),
    )
    readonly_fields = ("status_display", "failure_display", "context_display",
                       "preview_display", "fallback_chain_display", "history_display",
                       "retries_display")

    # -- columns -------------------------------------------------------------

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj: Notification) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=gettext_lazy("recipient"), ordering="recipient__phone_number")
    def recipient_display(self, obj: Notification) -> str:
        return recipient_cell(obj.recipient)

    @admin.display(description=gettext_lazy("template"), ordering="template__name")
    def message_display(self, obj: Notification) -> str:
        return format_html('{}<span class="mmc-cell-detail mmc-muted">{} · {}</span>',
                           obj.template, obj.channel_type, obj.channel_group)

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created_display(self, obj: Notification) -> str:
        return list_time(obj.created_at)

    @admin.display(description=gettext_lazy("status"), ordering="status_changed_at")
    def status_cell(self, obj: Notification) -> str:
        if obj.failure_code or obj.failure_detail:
            detail = failure_html(obj.failure_code, obj.failure_detail, truncate=70)
        elif obj.last_error and obj.is_failure:
            detail = failure_html("", obj.last_error, truncate=70)
        else:
            detail = ""
        return status_cell(obj.status, obj.get_status_display(), obj.status_changed_at, detail)

    @admin.display(description=gettext_lazy("status history"))
    def history_display(self, obj: Notification) -> str:
        return status_history(obj)

    @admin.display(description=gettext_lazy("retried as"))
    def retries_display(self, obj: Notification) -> str:
        retries = list(obj.retries.order_by("pk")[:10])
        if not retries:
            return "-"
        return format_html_join(", ", '<a href="{}">{}</a> {}', (
            (self._change_url(n), _("notification %(id)s") % {"id": n.pk},
             status_badge(n.status, n.get_status_display())) for n in retries))

    @admin.display(description=gettext_lazy("channel"), ordering="channel_type")
    def channel_display(self, obj: Notification) -> str:
        return format_html("{} <span class=\"mmc-muted\">{}</span>",
                           obj.channel_type, obj.channel_group)

    @admin.display(description=gettext_lazy("failure"))
    def failure_display(self, obj: Notification) -> str:
        if obj.failure_code or obj.failure_detail:
            return failure_html(obj.failure_code, obj.failure_detail, truncate=120)
        if obj.last_error and obj.is_failure:
            return failure_html("", obj.last_error, truncate=120)
        return ""

    @admin.display(description=gettext_lazy("fallback chain"))
    def fallback_chain_display(self, obj: Notification) -> str:
        """Every notification of this one's fallback chain, in order, with its
        channel and status: WhatsApp failed -> SMS delivered."""
        first = obj
        seen = {first.pk}
        while first.fallback_of_id and first.fallback_of_id not in seen:
            first = Notification.objects.get(pk=first.fallback_of_id)
            seen.add(first.pk)
        chain, node = [], first
        while node is not None and len(chain) < 10:
            chain.append(node)
            node = Notification.objects.filter(fallback_of=node).first()
        if len(chain) == 1:
            return "-"
        links = [
            format_html(
                '<a href="{}">{}</a> {}{}',
                reverse("admin:django_mmc_notification_change", args=[n.pk]), n.channel_type,
                status_badge(n.status, n.get_status_display()),
                format_html(" <strong>{}</strong>", _("(this one)")) if n.pk == obj.pk
                else "",
            )
            for n in chain
        ]
        return format_html_join(" \u2192 ", "{}", ((link,) for link in links))

    @admin.display(description=gettext_lazy("parameters"))
    def context_display(self, obj: Notification) -> str:
        if not obj.context:
            return "-"
        return format_html('<pre class="mmc-json">{}</pre>',
                           json.dumps(obj.context, indent=2, ensure_ascii=False))

    @admin.display(description=gettext_lazy("text"))
    def preview_display(self, obj: Notification) -> str:
        # As the recipient saw it: an optional parameter that was not given
        # is left out, not shown as {{name}}.
        return format_html('<div class="mmc-preview">{}</div>',
                           rendered_text(obj.template, obj.context) or "-")

    # -- permissions ----------------------------------------------------------

    def has_send_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_mmc.send_notification")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # A retry is a new send: the same permission as sending.
        return self.has_send_permission(request)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_mmc.cancel_notification")

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        # Asking the platform is an action on it, not reading: the people who
        # may send may ask, view-only staff may not.
        return self.has_send_permission(request)

    # -- views -----------------------------------------------------------------

    def get_urls(self) -> list:
        custom = [
            path("send/", self.wrap_custom(self.send_view),
                 name="django_mmc_notification_send"),
            path("<path:object_id>/retry/", self.wrap_custom(require_POST(self.retry_view)),
                 name="django_mmc_notification_retry"),
        ]
        return custom + super().get_urls()

    def _change_url(self, notification: Notification) -> str:
        return reverse("admin:django_mmc_notification_change", args=[notification.pk],
                       current_app=self.admin_site.name)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        notification = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if notification is not None and self.has_retry_permission(request):
            extra["can_retry"] = notification.status in FAILURE_STATUSES
        return super().change_view(request, object_id, form_url, extra)

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: retry this notification (:func:`django_mmc.api.retry_notification`).

        Guarantees: 403 without ``django_mmc.send_notification``; the message
        bar links to the new notification; back to this one's page."""
        if not self.has_retry_permission(request):
            raise PermissionDenied
        notification = self.get_object(request, unquote(object_id))
        if notification is None:
            raise Http404(_("No such notification."))
        try:
            new = api.retry_notification(notification, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error_messages(error)))
        else:
            if new.pk == notification.pk:
                messages.success(request, _(
                    "The notification is queued again with its own idempotency key."))
            else:
                messages.success(request, format_html(
                    _("Retried as {link}: its status will change there as the platform "
                      "reports it."),
                    link=format_html('<a href="{}" id="mmc-retried-as">{}</a>',
                                     self._change_url(new),
                                     _("notification %(id)s") % {"id": new.pk})))
        return HttpResponseRedirect(self._change_url(notification))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None
                        ) -> HttpResponse:
        extra_context = {**(extra_context or {}),
                         "has_send_permission": self.has_send_permission(request)}
        return super().changelist_view(request, extra_context)

    def send_view(self, request: HttpRequest) -> HttpResponse:
        """Send one notification by hand.

        Guarantees: only users with ``django_mmc.send_notification`` get here
        (others get 403, anonymous users the login page); the input is
        validated by :func:`django_mmc.api.send_notification` itself, its
        errors shown on the fields they name and nothing stored; on success
        the notification is stored with ``created_by`` the user, queued, and
        the user is sent to its page. GET ``?template=<pk>`` (and any other
        field) pre-fills the form, which is how the template's parameter
        fields appear without JavaScript."""
        if not self.has_send_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        template = active_template(data.get("template"))
        if request.method == "POST" and "_choose" not in request.POST:
            form = SendNotificationForm(request.POST, template=template,
                                        admin_site=self.admin_site)
            if form.is_valid():
                notification = self._send(request, form)
                if notification is not None:
                    messages.success(request, _(
                        "The notification to %(recipient)s is queued: its status will "
                        "change here as the platform reports it.")
                        % {"recipient": notification.recipient})
                    return HttpResponseRedirect(reverse(
                        "admin:django_mmc_notification_change", args=[notification.pk],
                        current_app=self.admin_site.name))
        else:
            # The GET step (?template=<pk>) or the "Show its parameters"
            # button: what was typed so far comes back as initial values.
            initial = {k: v for k, v in data.items() if k not in _NOT_INITIAL}
            if template is not None:
                initial["template"] = template.pk
            form = SendNotificationForm(initial=initial, template=template,
                                        admin_site=self.admin_site)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send notification"),
            "opts": self.model._meta,
            "form": form,
            "template_obj": template,
            "preview": form.preview(),
            "media": self.media + form.media,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/django_mmc/notification/send.html", context)

    def _send(self, request: HttpRequest, form: SendNotificationForm) -> Notification | None:
        data = form.cleaned_data
        try:
            return api.send_notification(
                form.target, data["template"], form.context,
                channel_type=data.get("channel_type") or None,
                channel_group=data.get("channel_group"),
                priority=data.get("priority") or Priority.NORMAL,
                send_at=data.get("send_at"), expires_at=data.get("expires_at"),
                user=request.user,
            )
        except ValidationError as error:
            apply_api_errors(form, error, {
                "to": form.target_field, "template": "template",
                "channel_group": "channel_group", "channel_type": "channel_type",
                "priority": "priority", "send_at": "send_at", "expires_at": "expires_at",
            }, context_fields=form.parameter_fields)
            return None

    # -- actions -----------------------------------------------------------------

    @admin.action(description=gettext_lazy("Retry"), permissions=["retry"])
    def retry_notifications(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Retry each selected notification with :func:`api.retry_notification`:
        refused, failed and expired ones become new sends, ERROR ones are
        queued again with their own idempotency key."""
        done, skipped, new_ones = 0, Counter(), []
        for notification in queryset.select_related("recipient", "template", "channel_group"):
            try:
                new = api.retry_notification(notification, user=request.user)
            except ValidationError as error:
                skipped[_retry_reason(error)] += 1
            else:
                done += 1
                new_ones.append(new)
        text = ngettext("%(count)d notification retried",
                        "%(count)d notifications retried", done) % {"count": done}
        if new_ones:
            # Links to what was retried: the new notifications (or the same
            # one, queued again), so nobody has to search for them.
            links = format_html_join(", ", '<a href="{}">{}</a>', (
                (self._change_url(n), _("notification %(id)s") % {"id": n.pk})
                for n in new_ones[:10]))
            text = format_html("{} ({})", text, links)
        report(request, text, skipped, done_count=done)

    @admin.action(description=gettext_lazy("Cancel (scheduled or waiting only)"),
                  permissions=["cancel"])
    def cancel_notifications(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Cancel each selected notification the platform does not have yet
        (:func:`api.cancel_notification`); the others are left alone."""
        done, skipped = 0, Counter()
        for notification in queryset:
            if api.cancel_notification(notification):
                done += 1
            else:
                skipped[_("Only scheduled or waiting notifications can be cancelled")] += 1
        report(request, ngettext("%(count)d notification cancelled",
                                 "%(count)d notifications cancelled", done) % {"count": done},
               skipped, done_count=done)

    @admin.action(description=gettext_lazy("Refresh status now"), permissions=["refresh"])
    def refresh_status(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Ask the platform about the selected notifications in one batch
        call (``filter[id]``) and apply what changed, like the poller does."""
        from ..client import get_client
        from ..polling import apply_batch

        rows: list[tuple[int, str, str]] = []
        skipped: Counter[str] = Counter()
        for pk, platform_id, status in queryset.order_by("pk").values_list(
                "pk", "platform_id", "status"):
            if not platform_id:
                skipped[_("not on the platform yet")] += 1
            elif status not in POLLABLE_STATUSES:
                skipped[_("their status is final")] += 1
            elif len(rows) >= MAX_REFRESH:
                skipped[_("more than %(max)d selected") % {"max": MAX_REFRESH}] += 1
            else:
                rows.append((pk, platform_id, status))
        changed = 0
        if rows:
            try:
                remote = {r.id: r for r in get_client().get_notifications([r[1] for r in rows])}
            except MMCError as error:
                messages.error(request, _("Could not ask the platform: %(error)s")
                               % {"error": scrub(error)})
                return
            missing = sum(1 for r in rows if r[1] not in remote)
            if missing:
                skipped[_("unknown to the platform")] += missing
            changed = apply_batch(rows, remote)
        asked = len(rows)
        done = ngettext(
            "Asked the platform about %(count)d notification: %(changed)d changed",
            "Asked the platform about %(count)d notifications: %(changed)d changed",
            asked,
        ) % {"count": asked, "changed": changed}
        # A final status is the answer, not a failure: information.
        report(request, done, skipped, done_count=asked,
               expected={_("their status is final"), _("not on the platform yet")})


def _retry_reason(error: ValidationError) -> str:
    # One reason for every notification not in a retryable status, so the
    # message bar groups them instead of listing each status.
    if getattr(error, "code", None) == "not_retryable":
        return _("Only failed, refused or unsent notifications can be retried")
    return "; ".join(str(m) for m in error.messages)
