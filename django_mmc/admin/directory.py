"""The directory admin: channel groups (with their channels) and templates,
as synced from the platform; read-only, with "Sync from the platform"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from ..exceptions import MMCError
from ..models import Channel, ChannelGroup, Template
from .base import ADMIN_CSS, GuardedActionsMixin, ReadOnlyMixin, Styled403Mixin, scrub


def sync_now(request: HttpRequest) -> bool:
    """Run :func:`django_mmc.directory.sync_directory` and say what happened
    in the message bar. Returns whether it worked."""
    from ..directory import sync_directory

    try:
        counts = sync_directory()
    except MMCError as error:
        messages.error(request, _("Could not sync from the platform: %(error)s")
                       % {"error": scrub(error)})
        return False
    messages.success(request, _(
        "Synced from the platform: %(channel_groups)d channel groups, %(channels)d channels "
        "and %(templates)d templates are active.") % counts)
    return True


class SyncMixin(GuardedActionsMixin):
    """The "Sync from the platform" action and button, behind
    ``django_mmc.sync_directory``. The button works on an empty list (the
    first sync), which an action cannot."""

    actions = ("sync_from_platform",)
    change_list_template = "admin/django_mmc/directory/sync_change_list.html"

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_mmc.sync_directory")

    @admin.action(description=gettext_lazy("Sync from the platform"), permissions=["sync"])
    def sync_from_platform(self, request: HttpRequest, queryset: QuerySet) -> None:
        sync_now(request)

    def get_urls(self) -> list:
        opts = self.model._meta  # type: ignore[attr-defined]
        custom = [
            path("sync/", self.wrap_custom(require_POST(self.sync_view)),  # type: ignore[attr-defined]
                 name=f"{opts.app_label}_{opts.model_name}_sync"),
        ]
        return custom + super().get_urls()  # type: ignore[misc]

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """POST: sync the directory now. 403 without the sync permission;
        back to the list with the outcome in the message bar."""
        if not self.has_sync_permission(request):
            raise PermissionDenied
        sync_now(request)
        opts = self.model._meta  # type: ignore[attr-defined]
        return HttpResponseRedirect(reverse(
            f"admin:{opts.app_label}_{opts.model_name}_changelist",
            current_app=self.admin_site.name))  # type: ignore[attr-defined]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None
                        ) -> HttpResponse:
        opts = self.model._meta  # type: ignore[attr-defined]
        extra_context = {
            **(extra_context or {}),
            "has_sync_permission": self.has_sync_permission(request),
            "sync_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_sync",
                                current_app=self.admin_site.name),  # type: ignore[attr-defined]
        }
        return super().changelist_view(request, extra_context)


class ReadOnlyDirectoryAdmin(Styled403Mixin, ReadOnlyMixin, SyncMixin, admin.ModelAdmin):
    """The platform owns the directory: it is synced, never edited here."""

    class Media:
        css = {"all": (ADMIN_CSS,)}


class ChannelInline(admin.TabularInline):
    model = Channel
    extra = 0
    fields = ("platform_id", "channel_type", "name", "is_active")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChannelGroupAdmin(ReadOnlyDirectoryAdmin):
    list_display = ("name", "platform_id", "channel_types_display", "is_active", "synced_at")
    list_filter = ("is_active", "channels__channel_type")
    search_fields = ("name", "platform_id", "channels__name", "channels__platform_id")
    fields = ("name", "platform_id", "is_active", "synced_at")
    readonly_fields = fields
    inlines = (ChannelInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # One query for all rows' channels, not one per row.
        return super().get_queryset(request).prefetch_related("channels")

    @admin.display(description=gettext_lazy("channel types"))
    def channel_types_display(self, obj: ChannelGroup) -> str:
        return ", ".join(obj.channel_types()) or "-"


class TemplateAdmin(ReadOnlyDirectoryAdmin):
    list_display = ("name", "platform_id", "description", "channel_types_display",
                    "parameters_display", "is_active", "synced_at")
    list_filter = ("is_active",)
    search_fields = ("name", "platform_id", "description")
    fields = ("name", "platform_id", "description", "channel_types_display",
              "parameters_display", "preview_display", "is_active", "synced_at")
    readonly_fields = fields
    change_form_template = "admin/django_mmc/template/change_form.html"

    @admin.display(description=gettext_lazy("channel types"))
    def channel_types_display(self, obj: Template) -> str:
        return ", ".join(str(t) for t in obj.channel_types or []) or "-"

    @admin.display(description=gettext_lazy("parameters"))
    def parameters_display(self, obj: Template) -> str:
        required = set(obj.required_parameters)
        if not obj.parameter_names:
            return _("none")
        return format_html_join(", ", "{}{}", (
            (name, _(" (required)") if name in required else "")
            for name in obj.parameter_names))

    @admin.display(description=gettext_lazy("preview"))
    def preview_display(self, obj: Template) -> str:
        return format_html('<div class="mmc-preview">{}</div>', obj.preview or "-")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        can_send = request.user.has_perm("django_mmc.send_notification")
        extra_context = {**(extra_context or {}), "has_send_permission": can_send}
        if can_send:
            extra_context["send_url"] = reverse(
                "admin:django_mmc_notification_send", current_app=self.admin_site.name)
        return super().change_view(request, object_id, form_url, extra_context)
