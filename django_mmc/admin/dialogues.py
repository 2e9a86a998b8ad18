"""The dialogues admin: the conversation as a transcript with a reply box,
"Open dialogue", "Close", and the messages log."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.timesince import timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from .. import api
from ..conf import mmc_settings
from ..models import Dialogue, Message, Template
from ..status import DialogueStatus, Direction
from . import inbox
from .base import (
    AgentFilter,
    ChannelTypeFilter,
    DialogueAgentFilter,
    PlatformOwnedAdmin,
    active_template,
    agent_label,
    agent_label_by_platform_id,
    apply_api_errors,
    error_messages,
    exact_time,
    failure_html,
    list_time,
    recipient_cell,
    rendered_text,
    report,
    safe_url,
    status_badge,
    status_cell,
    status_history,
)
from .forms import OpenDialogueForm, ReplyForm, TemplateReplyForm

#: Session key of the replies that were refused, per dialogue: they come back
#: in the reply box with the reason instead of being lost.
DRAFTS_SESSION_KEY = "django_mmc_reply_drafts"

#: Messages shown on a dialogue's page; older ones are in the messages list.
TRANSCRIPT_LIMIT = 200

#: Dialogues a reply can be sent in (one being opened queues it).
REPLYABLE = (DialogueStatus.OPENING, DialogueStatus.OPEN)


def conflict_text(dialogue: Dialogue) -> str:
    """Who holds the recipient when ``dialogue`` is in CONFLICT."""
    return _(
        "Another agent holds this recipient on %(group)s: %(agent)s, in platform dialogue "
        "%(dialogue)s. That dialogue must be closed before this agent can reach the "
        "recipient."
    ) % {
        "group": dialogue.channel_group,
        "agent": agent_label_by_platform_id(dialogue.conflict_agent_id) or _("unknown agent"),
        "dialogue": dialogue.conflict_dialogue_id or "?",
    }


def transcript(dialogue: Dialogue, limit: int = TRANSCRIPT_LIMIT) -> tuple[list[dict], bool]:
    """The latest ``limit`` messages in time order (inbound ones at the time
    the recipient wrote, outbound ones when they were sent here), each with
    what the transcript shows; and whether older ones were left out."""
    rows = list(
        dialogue.messages.select_related("template", "created_by")
        .annotate(at=Coalesce("received_at", "created_at"))
        .order_by("-at", "-pk")[: limit + 1]
    )
    truncated = len(rows) > limit
    entries = []
    for message in reversed(rows[:limit]):
        inbound = message.direction == Direction.INBOUND
        entries.append({
            "message": message,
            "inbound": inbound,
            "at": message.at,
            "at_display": exact_time(message.at),
            "text": message.text,
            "template_text": (rendered_text(message.template, message.context)
                              if message.template_id and not message.text else ""),
            "badge": status_badge(message.status, message.get_status_display()),
            "failure": failure_html(message.failure_code, message.failure_detail),
            "sent_by": message.created_by,
            "files": [_file_entry(f) for f in message.files or [] if isinstance(f, dict)],
        })
    return entries, truncated


def _file_entry(value: dict[str, Any]) -> dict[str, Any]:
    size = value.get("size")
    return {
        "name": str(value.get("name") or value.get("id") or _("file")),
        "content_type": str(value.get("contentType") or ""),
        "size": size if isinstance(size, int) else None,
        "url": safe_url(value.get("url")),
    }


class DialogueAdmin(PlatformOwnedAdmin):
    """Dialogues: read-only rows; the transcript, reply, open and close are
    explicit views that call the public API, each behind its permission."""

    change_form_template = "admin/django_mmc/dialogue/change_form.html"
    change_list_template = "admin/django_mmc/dialogue/change_list.html"
    # Few, dense columns: who, with whom, the status with its time and
    # details, how long the customer has waited, who is answering.
    list_display = ("recipient_display", "conversation_display", "status_cell",
                    "waiting_display", "assigned_display")
    list_display_links = ("recipient_display",)
    list_filter = (inbox.WaitingFilter, inbox.ClaimFilter, "status", AgentFilter,
                   ChannelTypeFilter, "channel_group", "initiated_by", "created_at")
    list_select_related = ("recipient", "channel_group", "assigned_to")
    search_fields = ("recipient__phone_number", "recipient__name", "platform_id",
                     "conflict_dialogue_id")
    search_help_text = gettext_lazy("Phone number, recipient name or platform id.")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ("claim_selected", "close_selected")
    fieldsets = (
        (None, {"fields": ("recipient", "agent_display", "channel_group", "channel_type",
                           "status_display", "detail_display", "assigned_to", "initiated_by",
                           "opened_by_user", "closed_by", "closed_by_user",
                           "opening_template", "opening_context")}),
        (gettext_lazy("Times"), {"fields": ("opened_at", "last_inbound_at", "closed_at",
                                             "created_at", "updated_at")}),
        (gettext_lazy("Platform"), {"fields": (
            "platform_id", "idempotency_key", "conflict_agent_id", "conflict_dialogue_id",
            "attempts", "last_error", "next_attempt_at")}),
    )
    readonly_fields = ("status_display", "agent_display", "detail_display")

    class Media:
        # The template picker of the reply box and the close confirmation.
        js = ("django_mmc/forms.js",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Whether each dialogue is waiting for us: a subquery of the same
        # statement, so the list's query count does not grow with its rows.
        return inbox.with_answered(super().get_queryset(request))

    def get_ordering(self, request: HttpRequest) -> Any:
        if request.GET.get(inbox.WaitingFilter.parameter_name) == "1":
            return ("last_inbound_at", "pk")  # the longest wait first
        return super().get_ordering(request)

    # -- columns ----------------------------------------------------------------

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj: Dialogue) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_cell(self, obj: Dialogue) -> str:
        at = {DialogueStatus.OPEN: obj.opened_at, DialogueStatus.CLOSED: obj.closed_at
              }.get(obj.status) or obj.updated_at
        return status_cell(obj.status, obj.get_status_display(), at, self.detail_display(obj))

    @admin.display(description=gettext_lazy("recipient"), ordering="recipient__phone_number")
    def recipient_display(self, obj: Dialogue) -> str:
        return recipient_cell(obj.recipient)

    @admin.display(description=gettext_lazy("conversation"), ordering="agent_key")
    def conversation_display(self, obj: Dialogue) -> str:
        return format_html('{}<div class="mmc-muted mmc-cell-detail">{} · {}</div>',
                           agent_label(obj.agent_key), obj.channel_group,
                           obj.channel_type or "-")

    @admin.display(description=gettext_lazy("waiting"), ordering="last_inbound_at")
    def waiting_display(self, obj: Dialogue) -> str:
        if not inbox.is_waiting(obj):
            return "-"
        now = timezone.now()
        waited = format_html('<span class="mmc-waiting">{}</span>', _(
            "for %(time)s") % {"time": inbox.waited(obj, now)})
        left = inbox.care_window_left(obj, now)
        if left is None:
            window = ""
        elif left:
            window = format_html('<div class="mmc-cell-detail mmc-muted">{}</div>', _(
                "%(time)s left for free text") % {"time": timeuntil(now + left, now, depth=2)})
        else:
            window = format_html('<div class="mmc-cell-detail mmc-care-closed">{}</div>',
                                 _("only a template now"))
        return format_html("{}{}", waited, window)

    @admin.display(description=gettext_lazy("assigned to"), ordering="assigned_to")
    def assigned_display(self, obj: Dialogue) -> str:
        user = inbox.claimed_by(obj)
        return str(user) if user is not None else "-"

    @admin.display(description=gettext_lazy("agent"), ordering="agent_key")
    def agent_display(self, obj: Dialogue) -> str:
        return agent_label(obj.agent_key)

    @admin.display(description=gettext_lazy("details"))
    def detail_display(self, obj: Dialogue) -> str:
        if obj.status == DialogueStatus.CONFLICT:
            return format_html('<span class="mmc-conflict">{}</span>', _(
                "Held by %(agent)s (platform dialogue %(dialogue)s)") % {
                "agent": agent_label_by_platform_id(obj.conflict_agent_id) or "?",
                "dialogue": obj.conflict_dialogue_id or "?"})
        if obj.failure_code or obj.failure_detail:
            return failure_html(obj.failure_code, obj.failure_detail, truncate=120)
        if obj.last_error and obj.status == DialogueStatus.ERROR:
            return failure_html("", obj.last_error, truncate=120)
        return ""

    # -- permissions --------------------------------------------------------------

    def has_reply_permission(self, request: HttpRequest, obj: Dialogue | None = None) -> bool:
        return request.user.has_perm("django_mmc.reply_dialogue")

    def has_open_permission(self, request: HttpRequest) -> bool:
        # The platform permission reads "Can open dialogues and reply in them".
        return self.has_reply_permission(request)

    def has_close_permission(self, request: HttpRequest, obj: Dialogue | None = None) -> bool:
        return request.user.has_perm("django_mmc.close_dialogue")

    def has_claim_permission(self, request: HttpRequest, obj: Dialogue | None = None) -> bool:
        # Claiming is saying "I am answering this one": for those who answer.
        return self.has_reply_permission(request, obj)

    # -- views ---------------------------------------------------------------------

    def get_urls(self) -> list:
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}"
        wrap = self.wrap_custom
        custom = [
            path("open/", wrap(self.open_view), name=f"{prefix}_open"),
            path("<path:object_id>/reply/", wrap(require_POST(self.reply_view)),
                 name=f"{prefix}_reply"),
            path("<path:object_id>/close/", wrap(require_POST(self.close_view)),
                 name=f"{prefix}_close"),
            path("<path:object_id>/claim/", wrap(require_POST(self.claim_view)),
                 name=f"{prefix}_claim"),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None
                        ) -> HttpResponse:
        extra_context = {**(extra_context or {}),
                         "has_open_permission": self.has_open_permission(request),
                         "waiting_count": inbox.waiting_dialogues().count(),
                         "inbox_active": request.GET.get("waiting") == "1"}
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        dialogue = self.get_object(request, unquote(object_id))
        extra: dict[str, Any] = dict(extra_context or {})
        if dialogue is not None and self.has_view_permission(request, dialogue):
            entries, truncated = transcript(dialogue)
            can_reply = (self.has_reply_permission(request, dialogue)
                         and dialogue.status in REPLYABLE)
            draft = self._pop_draft(request, dialogue)
            claimant = inbox.claimed_by(dialogue)
            extra.update({
                "transcript": entries,
                "transcript_truncated": truncated,
                "messages_url": reverse("admin:django_mmc_message_changelist",
                                        current_app=self.admin_site.name)
                + f"?dialogue__id__exact={dialogue.pk}",
                "can_reply": can_reply,
                "reply_form": self._reply_form(draft) if can_reply else None,
                **(self._template_reply_context(request, dialogue, draft) if can_reply else {}),
                "can_close": (self.has_close_permission(request, dialogue)
                              and dialogue.status in REPLYABLE),
                "claimed_by": claimant,
                "claimed_by_me": claimant is not None and claimant.pk == request.user.pk,
                "can_claim": (self.has_claim_permission(request, dialogue)
                              and dialogue.status in REPLYABLE),
                "waiting_for": (inbox.waited(dialogue) if inbox.is_waiting(dialogue) else ""),
                "conflict": conflict_text(dialogue)
                if dialogue.status == DialogueStatus.CONFLICT else "",
                "status_badge": status_badge(dialogue.status, dialogue.get_status_display()),
            })
        return super().change_view(request, object_id, form_url, extra)

    # -- drafts: a refused reply comes back in the box ---------------------------------

    def _save_draft(self, request: HttpRequest, dialogue: Dialogue, kind: str,
                    errors: list[str]) -> None:
        data = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        drafts = dict(request.session.get(DRAFTS_SESSION_KEY) or {})
        drafts[str(dialogue.pk)] = {"kind": kind, "data": data, "errors": errors}
        request.session[DRAFTS_SESSION_KEY] = drafts

    def _pop_draft(self, request: HttpRequest, dialogue: Dialogue) -> dict[str, Any] | None:
        drafts = request.session.get(DRAFTS_SESSION_KEY)
        if not drafts or str(dialogue.pk) not in drafts:
            return None
        drafts = dict(drafts)
        draft = drafts.pop(str(dialogue.pk))
        request.session[DRAFTS_SESSION_KEY] = drafts
        return draft

    def _reply_form(self, draft: dict[str, Any] | None) -> ReplyForm:
        if not draft or draft.get("kind") != "text":
            return ReplyForm()
        form = ReplyForm({"text": draft["data"].get("text", "")})
        form.is_valid()
        for error in draft.get("errors") or ():
            if error not in form.errors.get("text", ()):
                form.add_error("text", error)
        return form

    def _template_reply_context(self, request: HttpRequest, dialogue: Dialogue,
                                draft: dict[str, Any] | None = None) -> dict[str, Any]:
        """The care-window notice and the "send a template" part of the reply box."""
        kind = dialogue.channel_type or None
        templates = [t for t in Template.objects.filter(is_active=True).order_by("name")
                     if not kind or kind in (t.channel_types or [])]
        chosen = active_template(request.GET.get("reply_template"))
        if draft and draft.get("kind") == "template":
            chosen = active_template(draft["data"].get("template")) or chosen
        form = None
        if chosen is not None and draft and draft.get("kind") == "template":
            form = TemplateReplyForm(draft["data"], template=chosen)
            form.is_valid()
            for error in draft.get("errors") or ():
                form.add_error(None, error)
        elif chosen is not None:
            form = TemplateReplyForm(template=chosen)
        return {
            # WhatsApp allows free text only within 24 hours of the
            # recipient's last message; say so before a reply is refused.
            "care_window_closed": (mmc_settings.ENFORCE_CARE_WINDOW
                                   and not dialogue.can_send_text()),
            "care_window_hours": mmc_settings.CARE_WINDOW_HOURS,
            "reply_templates": templates,
            "reply_template": chosen,
            "template_reply_form": form,
            "template_reply_preview": form.preview() if form is not None else "",
        }

    def _dialogue_or_404(self, request: HttpRequest, object_id: str) -> Dialogue:
        dialogue = self.get_object(request, unquote(object_id))
        if dialogue is None:
            raise Http404(_("No such dialogue."))
        return dialogue

    def _change_url(self, dialogue: Dialogue, anchor: str = "") -> str:
        url = reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk],
                      current_app=self.admin_site.name)
        return url + (f"#{anchor}" if anchor else "")

    def reply_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST ``text``: send it in the dialogue as the user.

        Guarantees: 403 without ``django_mmc.reply_dialogue`` (before the
        dialogue is even looked up); the text is validated by
        :func:`django_mmc.api.send_message` and queued after commit, or the
        reason it was not is shown; always back to the dialogue's page."""
        if not self.has_reply_permission(request):
            raise PermissionDenied
        dialogue = self._dialogue_or_404(request, object_id)
        if "template" in request.POST:
            return self._reply_with_template(request, dialogue)
        form = ReplyForm(request.POST)
        if not form.is_valid():
            errors = [str(e) for errors in form.errors.values() for e in errors]
        else:
            try:
                dialogue.send_message(form.cleaned_data["text"], user=request.user)
            except ValidationError as error:
                errors = error_messages(error)
            else:
                inbox.claim(dialogue, request.user)  # whoever answers has it, if nobody did
                messages.success(request, _(
                    "Your reply is queued; its status shows in the transcript."))
                return HttpResponseRedirect(self._change_url(dialogue, "mmc-transcript"))
        # Refused: the text comes back in the reply box, with the reason.
        messages.error(request, " ".join(errors))
        self._save_draft(request, dialogue, "text", errors)
        return HttpResponseRedirect(self._change_url(dialogue, "mmc-reply-form"))

    def _reply_with_template(self, request: HttpRequest, dialogue: Dialogue) -> HttpResponse:
        template = active_template(request.POST.get("template"))
        if template is None:
            messages.error(request, _("Choose an active template."))
            return HttpResponseRedirect(self._change_url(dialogue, "mmc-template-reply"))
        form = TemplateReplyForm(request.POST, template=template)
        form.is_valid()  # text fields: only lengths can fail; the API checks the rest
        try:
            dialogue.send_message(template=template, context=form.context, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error_messages(error)))
            # Back with the template chosen and what was typed in its fields.
            self._save_draft(request, dialogue, "template", error_messages(error))
            url = reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk],
                          current_app=self.admin_site.name)
            return HttpResponseRedirect(
                f"{url}?reply_template={template.pk}#mmc-template-reply")
        inbox.claim(dialogue, request.user)
        messages.success(request, _(
            "Your template message is queued; its status shows in the transcript."))
        return HttpResponseRedirect(self._change_url(dialogue, "mmc-transcript"))

    def close_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: close the dialogue as the user.

        Guarantees: 403 without ``django_mmc.close_dialogue``; calls
        :func:`django_mmc.api.close_dialogue`, which sends the queued
        messages first and does nothing for a dialogue that is not open."""
        if not self.has_close_permission(request):
            raise PermissionDenied
        dialogue = self._dialogue_or_404(request, object_id)
        if dialogue.status not in REPLYABLE:
            messages.warning(request, _("This dialogue is not open; there is nothing to close."))
        else:
            api.close_dialogue(dialogue, user=request.user)
            inbox.release(dialogue)
            messages.success(request, _(
                "The dialogue is being closed; messages still queued are sent first."))
        return HttpResponseRedirect(self._change_url(dialogue))

    def claim_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST ``claim`` (1: "I am answering this", 0: "no longer"). 403
        without ``django_mmc.reply_dialogue``; someone else's claim is not
        taken over; back to the dialogue's page."""
        if not self.has_claim_permission(request):
            raise PermissionDenied
        dialogue = self._dialogue_or_404(request, object_id)
        if request.POST.get("claim") == "0":
            if inbox.release(dialogue, request.user):
                messages.success(request, _("You are no longer answering this dialogue."))
            else:
                messages.info(request, _("This dialogue was not assigned to you."))
        elif inbox.claim(dialogue, request.user):
            messages.success(request, _("This dialogue is assigned to you."))
        elif dialogue.status not in REPLYABLE:
            messages.warning(request, _("Only open dialogues can be assigned."))
        else:
            messages.warning(request, _("%(user)s is already answering this dialogue.")
                             % {"user": dialogue.assigned_to})
        return HttpResponseRedirect(self._change_url(dialogue))

    def open_view(self, request: HttpRequest) -> HttpResponse:
        """Open a dialogue with a recipient for one of the site's agents.

        Guarantees: 403 without ``django_mmc.reply_dialogue``; validated by
        :func:`django_mmc.api.open_dialogue` (errors on the fields they name,
        nothing stored); an agent's existing open dialogue with the recipient
        is reused; the user lands on the dialogue's page."""
        if not self.has_open_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        template = active_template(data.get("template"))
        if request.method == "POST" and "_choose" not in request.POST:
            form = OpenDialogueForm(request.POST, template=template, admin_site=self.admin_site)
            if form.is_valid():
                started = timezone.now()
                data = form.cleaned_data
                try:
                    dialogue = api.open_dialogue(
                        form.target, agent=data["agent"],
                        channel_group=data.get("channel_group"),
                        channel_type=data.get("channel_type") or None,
                        template=data.get("template"),
                        context=form.context if data.get("template") else None,
                        user=request.user,
                    )
                except ValidationError as error:
                    apply_api_errors(form, error, {
                        "to": form.target_field, "agent": "agent",
                        "channel_group": "channel_group", "channel_type": "channel_type",
                        "template": "template",
                    }, context_fields=form.parameter_fields)
                else:
                    if dialogue.created_at < started:
                        messages.info(request, _(
                            "This agent already has an open dialogue with %(recipient)s.")
                            % {"recipient": dialogue.recipient})
                    else:
                        messages.success(request, _(
                            "The dialogue with %(recipient)s is being opened.")
                            % {"recipient": dialogue.recipient})
                    return HttpResponseRedirect(self._change_url(dialogue))
        else:
            # The GET step (?template=<pk>) or the "Show its parameters" button.
            initial = {k: v for k, v in data.items()
                       if k not in ("csrfmiddlewaretoken", "_choose", "template")}
            if template is not None:
                initial["template"] = template.pk
            form = OpenDialogueForm(initial=initial, template=template,
                                    admin_site=self.admin_site)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Open dialogue"),
            "opts": self.model._meta,
            "form": form,
            "template_obj": template,
            "preview": form.preview(),
            "media": self.media + form.media,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/django_mmc/dialogue/open.html", context)

    # -- actions --------------------------------------------------------------------

    @admin.action(description=gettext_lazy("Close selected dialogues"), permissions=["close"])
    def close_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Close every selected open dialogue (api.close_dialogue)."""
        done, skipped = 0, Counter()
        for dialogue in queryset:
            if dialogue.status not in REPLYABLE:
                skipped[_("Only open dialogues can be closed")] += 1
                continue
            api.close_dialogue(dialogue, user=request.user)
            inbox.release(dialogue)
            done += 1
        report(request, ngettext("%(count)d dialogue closing", "%(count)d dialogues closing",
                                 done) % {"count": done}, skipped, done_count=done)

    @admin.action(description=gettext_lazy("Assign selected dialogues to me"),
                  permissions=["claim"])
    def claim_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Claim every selected open dialogue nobody else is answering."""
        done, skipped = 0, Counter()
        for dialogue in queryset.select_related("assigned_to"):
            if dialogue.status not in REPLYABLE:
                skipped[_("Only open dialogues can be assigned")] += 1
            elif inbox.claim(dialogue, request.user):
                done += 1
            else:
                skipped[_("Someone else is answering them")] += 1
        report(request, ngettext("%(count)d dialogue assigned to you",
                                 "%(count)d dialogues assigned to you", done) % {"count": done},
               skipped, done_count=done)


class MessageAdmin(PlatformOwnedAdmin):
    """Every dialogue message, both directions; read-only."""

    list_display = ("dialogue_link", "direction", "text_display", "status_cell",
                    "created_display")
    list_display_links = ("text_display",)
    list_filter = ("status", "direction", ChannelTypeFilter, DialogueAgentFilter,
                   "dialogue__channel_group", "created_at")
    list_select_related = ("dialogue__recipient", "dialogue__channel_group", "template",
                           "created_by")
    search_fields = ("text", "dialogue__recipient__phone_number", "dialogue__recipient__name",
                     "platform_id", "dialogue__platform_id")
    search_help_text = gettext_lazy("Text, phone number, recipient name or platform id.")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fieldsets = (
        (None, {"fields": ("dialogue", "direction", "text", "template", "context", "files_display",
                           "channel_type", "created_by")}),
        (gettext_lazy("Status"), {"fields": (
            "status_display", "failure_display", "history_display", "received_display")}),
        (gettext_lazy("Platform"), {"fields": (
            "platform_id", "idempotency_key", "attempts", "last_error", "next_attempt_at",
            "send_started_at", "created_at", "updated_at")}),
    )
    readonly_fields = ("status_display", "failure_display", "files_display", "history_display",
                       "received_display")

    @admin.display(description=gettext_lazy("dialogue"), ordering="dialogue")
    def dialogue_link(self, obj: Message) -> str:
        url = reverse("admin:django_mmc_dialogue_change", args=[obj.dialogue_id],
                      current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, recipient_cell(obj.dialogue.recipient))

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created_display(self, obj: Message) -> str:
        return list_time(obj.created_at)

    @admin.display(description=gettext_lazy("text"))
    def text_display(self, obj: Message) -> str:
        if obj.text:
            return Truncator(obj.text).chars(80)
        if not obj.template_id:
            return "-"
        # A template message: the text the recipient saw, and which template.
        return format_html('{} <span class="mmc-muted">({})</span>',
                           Truncator(rendered_text(obj.template, obj.context)).chars(80),
                           obj.template)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj: Message) -> str:
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description=gettext_lazy("status"), ordering="status_changed_at")
    def status_cell(self, obj: Message) -> str:
        return status_cell(obj.status, obj.get_status_display(),
                           obj.received_at or obj.status_changed_at,
                           failure_html(obj.failure_code, obj.failure_detail, truncate=70))

    @admin.display(description=gettext_lazy("status history"))
    def history_display(self, obj: Message) -> str:
        return status_history(obj)

    @admin.display(description=gettext_lazy("received"))
    def received_display(self, obj: Message) -> str:
        return exact_time(obj.received_at) or "-"

    @admin.display(description=gettext_lazy("failure"))
    def failure_display(self, obj: Message) -> str:
        return failure_html(obj.failure_code, obj.failure_detail)

    @admin.display(description=gettext_lazy("files"))
    def files_display(self, obj: Message) -> str:
        items = [_file_entry(f) for f in obj.files or [] if isinstance(f, dict)]
        if not items:
            return "-"
        return format_html_join(", ", "{}", (
            (format_html('<a href="{}" rel="noopener noreferrer">{}</a>', i["url"], i["name"])
             if i["url"] else i["name"],) for i in items))
