"""The directory admin: channel groups (with their channels) and templates,
as synced from the platform (read-only, with "Sync from the platform"), or
entered here by hand where the platform lists none (editable by staff with
the model's add and change permissions)."""

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
from ..models.directory import Origin
from .base import ADMIN_CSS, GuardedActionsMixin, Styled403Mixin, scrub
from .forms import ChannelGroupEntryForm, TemplateEntryForm

_UNAVAILABLE_KINDS = {"channel_groups": gettext_lazy("channel groups"),
                      "templates": gettext_lazy("templates")}


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
    for kind, answer in counts.get("unavailable", {}).items():
        messages.warning(request, _(
            "The platform does not list %(kind)s (it answered %(answer)s): enter them by "
            "hand here, or declare them in MMC['DIRECTORY'].") % {
            "kind": _UNAVAILABLE_KINDS[kind], "answer": answer})
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


class DirectoryAdmin(Styled403Mixin, SyncMixin, admin.ModelAdmin):
    """Rows synced from the platform or declared in the settings are only
    viewed here; rows entered by hand (origin ``ADMIN``) can be added and
    changed with the model's permissions. Nothing is ever deleted: a row
    that is no longer wanted is marked inactive."""

    #: The form of a row entered by hand, and its fields.
    entry_form: type
    entry_fields: tuple[str, ...]

    class Media:
        css = {"all": (ADMIN_CSS,)}

    @staticmethod
    def entered_here(obj: Any) -> bool:
        return obj is None or obj.origin == Origin.ADMIN

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not self.entered_here(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def editing(self, request: HttpRequest, obj: Any) -> bool:
        """Whether the page edits a row entered by hand (or adds one)."""
        return self.entered_here(obj) and (
            self.has_add_permission(request) if obj is None
            else self.has_change_permission(request, obj))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if self.editing(request, obj):
            return (*self.entry_fields, "origin")
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if self.editing(request, obj):
            return ("origin",)
        return self.readonly_fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        if self.editing(request, obj):
            kwargs["form"] = self.entry_form
            kwargs["fields"] = [f for f in self.entry_fields if f != "origin"]
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.origin = Origin.ADMIN
        super().save_model(request, obj, form, change)


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


class ChannelGroupAdmin(DirectoryAdmin):
    list_display = ("name", "platform_id", "channel_types_display", "is_active", "origin",
                    "synced_at")
    list_filter = ("is_active", "origin", "channels__channel_type")
    search_fields = ("name", "platform_id", "channels__name", "channels__platform_id")
    fields = ("name", "platform_id", "is_active", "origin", "synced_at")
    readonly_fields = fields
    inlines = (ChannelInline,)
    entry_form = ChannelGroupEntryForm
    entry_fields = ("platform_id", "name", "channel_types_text", "is_active")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from ..directory import set_group_channel_types

        super().save_model(request, obj, form, change)
        set_group_channel_types(obj, form.cleaned_data["channel_types_text"])

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # One query for all rows' channels, not one per row.
        return super().get_queryset(request).prefetch_related("channels")

    @admin.display(description=gettext_lazy("channel types"))
    def channel_types_display(self, obj: ChannelGroup) -> str:
        return ", ".join(obj.channel_types()) or "-"


class TemplateAdmin(DirectoryAdmin):
    list_display = ("name", "platform_id", "description", "channel_types_display",
                    "parameters_display", "is_active", "origin", "synced_at")
    list_filter = ("is_active", "origin")
    search_fields = ("name", "platform_id", "description")
    fields = ("name", "platform_id", "description", "channel_types_display",
              "parameters_display", "preview_display", "is_active", "origin", "synced_at")
    readonly_fields = fields
    entry_form = TemplateEntryForm
    entry_fields = ("platform_id", "name", "description", "channel_types_text",
                    "required_parameters", "optional_parameters", "preview", "is_active")
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
