"""The recipients admin: the one editable django_mmc model (name and
metadata; the number on creation, validated into E.164 form), with the
recipient's consent per channel type and its audit log."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from .. import api
from ..erasure import forget_recipient
from ..models import Channel, ConsentChange, Recipient
from .base import (
    ADMIN_CSS,
    GuardedActionsMixin,
    PlatformOwnedAdmin,
    ReadOnlyMixin,
    Styled403Mixin,
    error_messages,
    report,
)
from .forms import RecipientAdminForm


class ConsentChangeInline(ReadOnlyMixin, admin.TabularInline):
    """The recipient's consent history, newest first; an audit log, read-only."""

    model = ConsentChange
    fk_name = "recipient"
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("created_at", "channel_type", "opted_out", "source", "detail", "changed_by")
    readonly_fields = fields
    ordering = ("-created_at",)
    verbose_name_plural = gettext_lazy("consent history")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("changed_by")


class RecipientAdmin(Styled403Mixin, GuardedActionsMixin, admin.ModelAdmin):
    form = RecipientAdminForm
    list_display = ("phone_number", "customer_id", "name", "opted_out_display", "created_at",
                    "links")
    search_fields = ("phone_number", "name", "customer_id")
    search_help_text = gettext_lazy("Phone number, name or platform customer id.")
    date_hierarchy = "created_at"
    ordering = ("phone_number",)
    show_full_result_count = False
    change_form_template = "admin/django_mmc/recipient/change_form.html"
    fields = ("phone_number", "customer_id", "name", "metadata", "opted_out_display",
              "created_at", "updated_at")
    inlines = (ConsentChangeInline,)
    actions = ("forget_selected",)

    class Media:
        css = {"all": (ADMIN_CSS,)}

    def get_readonly_fields(self, request: HttpRequest, obj: Recipient | None = None
                            ) -> tuple[str, ...]:
        # The number and the customer id identify the recipient on the
        # platform and in every notification already sent: each is set once,
        # never rewritten. Consent changes only through the buttons, which
        # log who and when.
        fixed = ("opted_out_display", "created_at", "updated_at")
        if obj is not None:
            fixed += tuple(name for name in ("phone_number", "customer_id")
                           if getattr(obj, name))
        return fixed

    def get_inlines(self, request: HttpRequest, obj: Recipient | None) -> tuple:
        return self.inlines if obj is not None else ()  # a new recipient has no history

    @admin.display(description=gettext_lazy("opted out of"))
    def opted_out_display(self, obj: Recipient) -> str:
        return ", ".join(obj.opted_out_channel_types or []) or "-"

    @admin.display(description=gettext_lazy("history"))
    def links(self, obj: Recipient) -> str:
        # Plain links with the filter in the URL: no per-row count queries.
        notifications = reverse("admin:django_mmc_notification_changelist",
                                current_app=self.admin_site.name)
        dialogues = reverse("admin:django_mmc_dialogue_changelist",
                            current_app=self.admin_site.name)
        return format_html(
            '<a href="{}?recipient__id__exact={}">{}</a> · '
            '<a href="{}?recipient__id__exact={}">{}</a>',
            notifications, obj.pk, _("notifications"), dialogues, obj.pk, _("dialogues"))

    # -- consent ------------------------------------------------------------------------

    def has_consent_permission(self, request: HttpRequest, obj: Recipient | None = None
                               ) -> bool:
        return self.has_change_permission(request, obj)

    def has_forget_permission(self, request: HttpRequest, obj: Recipient | None = None
                              ) -> bool:
        # Erasing is the deletion a person asks for: the delete permission.
        return super().has_delete_permission(request, obj)

    def get_urls(self) -> list:
        opts = self.model._meta
        custom = [
            path("<path:object_id>/consent/",
                 self.wrap_custom(require_POST(self.consent_view)),
                 name=f"{opts.app_label}_{opts.model_name}_consent"),
            path("<path:object_id>/forget/", self.wrap_custom(self.forget_view),
                 name=f"{opts.app_label}_{opts.model_name}_forget"),
        ]
        return custom + super().get_urls()

    # -- erasure --------------------------------------------------------------------------

    def _forget(self, request: HttpRequest, recipients: list[Recipient]) -> int:
        """Forget each recipient; the reasons for those that could not be go
        to the message bar. Returns how many were forgotten."""
        done, skipped = 0, Counter()
        for recipient in recipients:
            try:
                forget_recipient(recipient)
            except ValidationError as error:
                skipped[" ".join(error_messages(error))] += 1
            else:
                done += 1
        report(request, ngettext("%(count)d person forgotten", "%(count)d people forgotten",
                                 done) % {"count": done}, skipped, done_count=done)
        return done

    def _forget_page(self, request: HttpRequest, recipients: list[Recipient],
                     action: str | None) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Forget these people?") if len(recipients) > 1
            else _("Forget this person?"),
            "opts": self.model._meta,
            "recipients": recipients,
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/django_mmc/recipient/forget.html", context)

    def forget_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what forgetting removes and keeps; POST: forget the person
        (:func:`django_mmc.erasure.forget_recipient`). 403 without the
        recipient's delete permission."""
        if not self.has_forget_permission(request):
            raise PermissionDenied
        recipient = self.get_object(request, unquote(object_id))
        if recipient is None:
            raise Http404(_("No such recipient."))
        if request.method != "POST":
            return self._forget_page(request, [recipient], None)
        self._forget(request, [recipient])
        return HttpResponseRedirect(reverse("admin:django_mmc_recipient_change",
                                            args=[recipient.pk],
                                            current_app=self.admin_site.name))

    @admin.action(description=gettext_lazy("Forget the selected people (erase personal data)"),
                  permissions=["forget"])
    def forget_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Ask first (like Django's "delete selected"), then forget each one."""
        recipients = list(queryset.order_by("pk")[:1000])
        if request.POST.get("post") == "yes":
            self._forget(request, recipients)
            return None
        return self._forget_page(request, recipients, "forget_selected")

    def consent_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST ``channel_type`` and ``opted_out`` (1/0): record the recipient's
        opt-out (or opt-in) with :func:`django_mmc.api.set_consent`, logged
        as done by this user in the admin. 403 without the change permission."""
        if not self.has_consent_permission(request):
            raise PermissionDenied
        recipient = self.get_object(request, unquote(object_id))
        if recipient is None:
            raise Http404(_("No such recipient."))
        channel_type = (request.POST.get("channel_type") or "").strip().upper()
        opted_out = request.POST.get("opted_out") == "1"
        if not channel_type:
            messages.error(request, _("Choose a channel type."))
        else:
            try:
                changed = api.set_consent(recipient, channel_type, opted_out,
                                          source=ConsentChange.Source.ADMIN, user=request.user)
            except ValidationError as error:
                messages.error(request, " ".join(error_messages(error)))
            else:
                values = {"recipient": recipient, "type": channel_type}
                if not changed:
                    messages.info(request, _("Nothing changed: that was already recorded."))
                elif opted_out:
                    messages.success(request, _(
                        "%(recipient)s opted out of %(type)s: nothing but transactional "
                        "notifications is sent there any more.") % values)
                else:
                    messages.success(request, _("%(recipient)s opted back in to %(type)s.")
                                     % values)
        return HttpResponseRedirect(reverse("admin:django_mmc_recipient_change",
                                            args=[recipient.pk],
                                            current_app=self.admin_site.name))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        extra: dict[str, Any] = dict(extra_context or {})
        if obj is not None:
            # A recipient known only by its customer id is picked, not typed.
            query = urlencode({"to": obj.phone_number} if obj.phone_number
                              else {"recipient": obj.pk})
            if request.user.has_perm("django_mmc.send_notification"):
                extra["send_url"] = reverse("admin:django_mmc_notification_send",
                                            current_app=self.admin_site.name) + "?" + query
            if request.user.has_perm("django_mmc.reply_dialogue"):
                extra["open_dialogue_url"] = reverse("admin:django_mmc_dialogue_open",
                                                     current_app=self.admin_site.name) + "?" + query
            if self.has_forget_permission(request, obj):
                extra["forget_url"] = reverse("admin:django_mmc_recipient_forget",
                                              args=[obj.pk], current_app=self.admin_site.name)
            if self.has_consent_permission(request, obj):
                opted_out = set(obj.opted_out_channel_types or [])
                types = set(Channel.objects.order_by().values_list("channel_type", flat=True)
                            .distinct()) | opted_out
                extra["consent_url"] = reverse("admin:django_mmc_recipient_consent",
                                               args=[obj.pk], current_app=self.admin_site.name)
                extra["consent_choices"] = [(t, t in opted_out) for t in sorted(types)]
        return super().change_view(request, object_id, form_url, extra)


class ConsentChangeAdmin(PlatformOwnedAdmin):
    """Every consent change: who opted out of (or back in to) what, when,
    and how we learnt it. An audit log: read-only."""

    list_display = ("created_at", "recipient", "channel_type", "opted_out", "source",
                    "detail", "changed_by")
    list_filter = ("opted_out", "source", "channel_type", "created_at")
    list_select_related = ("recipient", "changed_by")
    search_fields = ("recipient__phone_number", "recipient__name")
    search_help_text = gettext_lazy("Phone number or name.")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
