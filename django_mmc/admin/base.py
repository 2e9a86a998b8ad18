"""Building blocks shared by django_mmc's model admins.

Status badges, the read-only base for platform-owned rows, the guard that
turns a forged action POST into a 403, list filters that never scan the big
tables, and the helpers that turn a ``ValidationError`` from the public API
into form errors and a batch outcome into one message-bar line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from functools import wraps
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import dateformat, timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from ..conf import mmc_settings
from ..models import Channel, Template
from ..status import Status

#: The CSS that styles badges, the transcript and the send form.
ADMIN_CSS = "django_mmc/admin.css"


def status_badge(code: str | None, label: Any = None) -> SafeString:
    """A coloured, readable badge for any django_mmc status or state.

    ``code`` (e.g. ``DELIVERED``) picks the colour through the class
    ``mmc-status-<code lowercase>`` and stays available as the tooltip;
    ``label`` is the translated text people read."""
    if not code:
        return format_html('<span class="mmc-status mmc-status-none">{}</span>', "-")
    return format_html(
        '<span class="mmc-status mmc-status-{}" title="{}">{}</span>',
        str(code).lower(), code, label if label is not None else code,
    )


#: Times to the second with the zone, so statuses reached within the same
#: minute are visibly ordered: ``2026-11-26 19:00:04 UTC``.
EXACT_TIME_FORMAT = "Y-m-d H:i:s T"


def exact_time(value: datetime | None) -> SafeString | str:
    """``value`` in the current time zone, to the second, as a ``<time>``."""
    if value is None:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html('<time datetime="{}">{}</time>', value.isoformat(),
                       dateformat.format(local, EXACT_TIME_FORMAT))


def list_time(value: datetime | None) -> SafeString | str:
    """A list column's time: to the minute, in the current time zone (the
    page has the seconds)."""
    if value is None:
        return "-"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html('<time datetime="{}" class="mmc-list-time">{}</time>', value.isoformat(),
                       dateformat.format(local, "Y-m-d H:i"))


def recipient_cell(recipient: Any) -> SafeString:
    """A recipient in a narrow column: the name, with the number (or the
    platform customer id) under it."""
    if recipient.name:
        return format_html('<span class="mmc-name">{}</span>'
                           '<span class="mmc-cell-detail mmc-muted">{}</span>',
                           recipient.name, recipient.address)
    return format_html('<span class="mmc-name mmc-number">{}</span>', recipient.address)


def status_cell(code: str | None, label: Any, at: datetime | None,
                detail: SafeString | str = "") -> SafeString:
    """A list cell: the status badge, the time it was reached and, on a line
    of its own, why it failed. One column instead of three keeps lists narrow."""
    time_html = format_html('<span class="mmc-cell-time">{}</span>', exact_time(at)) if at else ""
    detail_html = format_html('<div class="mmc-cell-detail">{}</div>', detail) if detail else ""
    return format_html('<div class="mmc-cell">{} {}{}</div>', status_badge(code, label),
                       time_html, detail_html)


#: The time fields of a status history and the status each one stamps;
#: ``failed_at`` stamps whichever end was reached (failed, expired, refused,
#: cancelled), named from the row's status.
HISTORY_FIELDS = (("accepted_at", Status.ACCEPTED), ("sent_at", Status.SENT),
                  ("delivered_at", Status.DELIVERED), ("read_at", Status.READ),
                  ("failed_at", Status.FAILED))


def status_history(obj: Any) -> SafeString | str:
    """Every status ``obj`` (a notification or message) reached, in the order
    it reached them, each with its time to the second."""
    steps = [(obj.created_at, _("Created"), "created")]
    for field, status in HISTORY_FIELDS:
        at = getattr(obj, field, None)
        if at is None:
            continue
        if field == "failed_at" and obj.status in Status.values and obj.status != status:
            status = Status(obj.status)
        steps.append((at, status.label, str(status).lower()))
    steps.sort(key=lambda step: step[0])
    return format_html('<ol class="mmc-history">{}</ol>', format_html_join(
        "", '<li><span class="mmc-history-label">{}</span> {}</li>',
        ((label, exact_time(at)) for at, label, _code in steps)))


_PLACEHOLDER = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")


def rendered_text(template: Template | None, context: Mapping[str, Any] | None) -> str:
    """The template's text as the recipient saw it: parameters filled in,
    optional ones that were not given left out (never ``{{name}}``)."""
    if template is None or not template.preview:
        return ""
    values = {str(k): str(v) for k, v in (context or {}).items()}
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), template.preview)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def failure_html(code: str, detail: str, *, truncate: int | None = None) -> SafeString | str:
    """The platform's failure code (bold) and its detail, or ``""``."""
    if not code and not detail:
        return ""
    if truncate:
        detail = Truncator(detail).chars(truncate)
    if code and detail:
        return format_html('<span class="mmc-failure"><strong>{}</strong> {}</span>', code, detail)
    return format_html('<span class="mmc-failure"><strong>{}</strong></span>', code or detail)


def scrub(text: Any) -> str:
    """``text`` with every configured secret masked.

    Error texts shown in the message bar come from the HTTP client; none is
    expected to carry a secret, but a page must never be the place where one
    leaks if that ever changes."""
    result = str(text)
    for secret in mmc_settings.secret_values():
        result = result.replace(secret, "********")
    return result


_HTTP_URL = URLValidator(schemes=["http", "https"])


def safe_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL, else ``None``: file URLs come from
    webhook bodies (untrusted) and must never become ``javascript:`` links."""
    if not isinstance(value, str) or not value:
        return None
    try:
        _HTTP_URL(value)
    except ValidationError:
        return None
    return value


def active_template(value: Any) -> Template | None:
    """The active template with primary key ``value``, if any (``?template=``)."""
    if not value:
        return None
    try:
        pk = int(value)
    except (TypeError, ValueError):
        return None
    return Template.objects.filter(pk=pk, is_active=True).first()


def error_messages(error: ValidationError) -> list[str]:
    """Every message of ``error`` (flat or per field) as text."""
    return [str(m) for m in error.messages]


def apply_api_errors(
    form: Form,
    error: ValidationError,
    field_map: Mapping[str, str | None],
    *,
    context_fields: Mapping[str, str] | None = None,
) -> None:
    """Put a ``ValidationError`` raised by the public API on the form.

    ``field_map`` maps the API's argument names (``to``, ``template``...) to
    form field names (``None``: a non-field error). Errors about the
    ``context`` go to the field of the parameter they name when
    ``context_fields`` (parameter name -> form field) knows it."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        if key == "context" and context_fields is not None:
            for item in errors:
                _apply_context_error(form, item, context_fields)
            continue
        target = field_map.get(key)
        if target is not None and target not in form.fields:
            target = None
        form.add_error(target, errors)


def _apply_context_error(form: Form, item: ValidationError, fields: Mapping[str, str]) -> None:
    params = item.params or {}
    if item.code == "missing_parameter":
        names = [n.strip() for n in str(params.get("names", "")).split(",") if n.strip()]
        targets = [fields[n] for n in names if n in fields and fields[n] in form.fields]
        if targets and len(targets) == len(names):
            for target in targets:
                form.add_error(target, _("The template requires this parameter."))
            return
    if item.code == "invalid_parameter" and params.get("name") in fields:
        form.add_error(fields[params["name"]], item)
        return
    form.add_error(None, item)


def report(
    request: HttpRequest,
    done: str,
    skipped: Counter[str],
    *,
    done_count: int,
    expected: Collection[str] = (),
) -> None:
    """One message-bar line: what was done and, for the rest, why not.

    E.g. "2 notifications retried; 1 skipped: Only failed, refused or unsent
    notifications can be retried." Success when nothing was skipped, a
    warning when some were, an error when nothing could be done. Reasons in
    ``expected`` are information, not problems ("their status is final"):
    when only those were skipped the line is a success or information."""
    total_skipped = sum(skipped.values())
    if not total_skipped:
        messages.success(request, done)
        return
    if len(skipped) == 1:
        reasons = next(iter(skipped))
    else:
        reasons = "; ".join(f"{reason} ({count})" for reason, count in skipped.most_common())
    # ``done`` may carry links (format_html): escape the rest, keep those.
    text = mark_safe(ngettext(  # noqa: S308 - the translated format is trusted, values escaped
        "%(done)s; %(count)d skipped: %(reasons)s",
        "%(done)s; %(count)d skipped: %(reasons)s",
        total_skipped,
    ) % {"done": conditional_escape(done), "count": total_skipped,
         "reasons": conditional_escape(reasons)})
    problems = any(reason not in expected for reason in skipped)
    if problems:
        level = messages.WARNING if done_count else messages.ERROR
    else:
        level = messages.SUCCESS if done_count else messages.INFO
    messages.add_message(request, level, text)


def action_names(actions: Iterable[Any]) -> set[str]:
    """The names under which ``ModelAdmin.actions`` are posted."""
    return {a if isinstance(a, str) else a.__name__ for a in actions or ()}


class GuardedActionsMixin:
    """Makes a forged POST of an action the user may not run a 403.

    Django's own handling drops an action the user lacks the permission for
    from the choices and answers "No action selected", which hides a forged
    request; an explicit 403 is what the permission matrix promises."""

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None
                        ) -> HttpResponse:
        if request.method == "POST":
            posted = {a for a in request.POST.getlist("action") if a}
            declared = action_names(getattr(self, "actions", ()))
            allowed = set(self.get_actions(request))  # type: ignore[attr-defined]
            if posted & declared - allowed:
                raise PermissionDenied
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


def forbidden(request: HttpRequest, admin_site: Any) -> HttpResponse:
    """The admin's own page, with status 403, for a URL the user may not use
    (Django's plain 403 page would drop them out of the admin)."""
    context = {**admin_site.each_context(request), "title": _("Permission denied")}
    return TemplateResponse(request, "admin/django_mmc/403.html", context, status=403)


def styled_403(view: Callable[..., HttpResponse], admin_site: Any) -> Callable[..., HttpResponse]:
    """``view`` answering ``PermissionDenied`` with :func:`forbidden`."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except PermissionDenied:
            return forbidden(request, admin_site)

    return wrapper


class Styled403Mixin:
    """Every view of the model admin (Django's and django_mmc's own) answers a
    user without the permission with the admin-styled 403 page."""

    admin_site: Any

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None
                        ) -> HttpResponse:
        try:
            return super().changelist_view(request, extra_context)  # type: ignore[misc]
        except PermissionDenied:
            return forbidden(request, self.admin_site)

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]
        except PermissionDenied:
            return forbidden(request, self.admin_site)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().delete_view(request, *args, **kwargs)  # type: ignore[misc]
        except PermissionDenied:
            return forbidden(request, self.admin_site)

    def history_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().history_view(request, *args, **kwargs)  # type: ignore[misc]
        except PermissionDenied:
            return forbidden(request, self.admin_site)

    def wrap_custom(self, view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        """A custom view behind the admin's login and the styled 403 page."""
        return self.admin_site.admin_view(styled_403(view, self.admin_site))


class ReadOnlyMixin:
    """Viewable, never added, changed or deleted by hand."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PlatformOwnedAdmin(Styled403Mixin, ReadOnlyMixin, GuardedActionsMixin, admin.ModelAdmin):
    """Rows the platform (or django_mmc's workers) own: viewable, never
    added, changed or deleted by hand. Changes go through the explicit views
    and actions, which call the public API."""

    show_full_result_count = False  # a COUNT(*) of a big table on every page is not free

    class Media:
        css = {"all": (ADMIN_CSS,)}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Every model field, so non-editable ones (platform ids, keys,
        # timestamps) can be shown in fieldsets at all.
        own = [f.name for f in self.model._meta.fields]
        return list(dict.fromkeys([*own, *super().get_readonly_fields(request, obj)]))


class ChannelTypeFilter(admin.SimpleListFilter):
    """Channel types from the small channel table: no DISTINCT over a big one."""

    title = gettext_lazy("channel type")
    parameter_name = "channel_type"
    field_path = "channel_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types = Channel.objects.order_by().values_list("channel_type", flat=True).distinct()
        return [(t, t) for t in sorted(set(types))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(**{self.field_path: self.value()})
        return queryset


class AgentFilter(admin.SimpleListFilter):
    """The site's configured dialogue agents (their keys, never their secrets)."""

    title = gettext_lazy("agent")
    parameter_name = "agent"
    field_path = "agent_key"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, str(agent)) for key, agent in mmc_settings.agents.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(**{self.field_path: self.value()})
        return queryset


class DialogueAgentFilter(AgentFilter):
    field_path = "dialogue__agent_key"


def agent_label(agent_key: str) -> str:
    """``support (agent 17)`` for a configured key, the key otherwise."""
    agent = mmc_settings.agents.get(agent_key)
    return str(agent) if agent is not None else agent_key


def agent_label_by_platform_id(agent_id: str) -> str:
    """The configured agent with this platform id, or the id itself."""
    if not agent_id:
        return ""
    agent = mmc_settings.agent_by_platform_id(agent_id)
    return str(agent) if agent is not None else _("agent %(id)s") % {"id": agent_id}
