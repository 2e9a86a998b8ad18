"""The support inbox: open dialogues whose customer is waiting for an answer,
and the claim that keeps two people from answering the same customer.

A dialogue is *waiting for us* while it is open, the customer has written,
and nothing of ours that did not fail was written after the customer's last
message. The claim (``Dialogue.assigned_to``) is only a marker between
colleagues: it does not stop anyone with the permission from replying.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy

from ..conf import mmc_settings
from ..models import Dialogue, Message
from ..status import FAILURE_STATUSES, DialogueStatus, Direction

#: The annotation :func:`with_answered` adds.
ANSWERED = "mmc_answered"


def with_answered(queryset: QuerySet) -> QuerySet:
    """``queryset`` of dialogues with ``mmc_answered``: whether a message of
    ours that did not fail was written after the customer's last one. One
    subquery in the same statement, whatever the number of rows."""
    ours_since = Message.objects.filter(
        dialogue=OuterRef("pk"), direction=Direction.OUTBOUND,
        created_at__gte=OuterRef("last_inbound_at"),
    ).exclude(status__in=FAILURE_STATUSES)
    return queryset.annotate(**{ANSWERED: Exists(ours_since)})


#: Waiting for us, on a queryset annotated by :func:`with_answered`.
WAITING = Q(status=DialogueStatus.OPEN, last_inbound_at__isnull=False, **{ANSWERED: False})


def waiting_dialogues() -> QuerySet:
    """Every dialogue waiting for us, the one waiting longest first."""
    return with_answered(Dialogue.objects.all()).filter(WAITING).order_by("last_inbound_at", "pk")


def is_waiting(dialogue: Dialogue) -> bool:
    answered = getattr(dialogue, ANSWERED, None)
    if answered is None:
        answered = with_answered(Dialogue.objects.filter(pk=dialogue.pk)).values_list(
            ANSWERED, flat=True).first()
    return (dialogue.status == DialogueStatus.OPEN and dialogue.last_inbound_at is not None
            and not answered)


def waited(dialogue: Dialogue, now: datetime | None = None) -> str:
    """How long the customer has been waiting, e.g. "2 hours, 5 minutes"."""
    if dialogue.last_inbound_at is None:
        return ""
    return timesince(dialogue.last_inbound_at, now or timezone.now(), depth=2)


def care_window_left(dialogue: Dialogue, now: datetime | None = None) -> timedelta | None:
    """Time left to answer with free text on a channel with a care window
    (WhatsApp), ``timedelta(0)`` when it has closed; ``None`` where there is
    no such window (SMS). The customer's last message in this dialogue starts
    the window, which is what a waiting dialogue needs."""
    if dialogue.channel_type not in mmc_settings.CARE_WINDOW_CHANNEL_TYPES:
        return None
    if dialogue.last_inbound_at is None:
        return timedelta(0)
    end = dialogue.last_inbound_at + timedelta(hours=mmc_settings.CARE_WINDOW_HOURS)
    return max(end - (now or timezone.now()), timedelta(0))


def claimed_by(dialogue: Dialogue) -> Any:
    """Who is answering ``dialogue`` (a user), or ``None``; a claim means
    nothing once a dialogue is no longer active."""
    if dialogue.status not in (DialogueStatus.OPENING, DialogueStatus.OPEN):
        return None
    return dialogue.assigned_to if dialogue.assigned_to_id else None


def claim(dialogue: Dialogue, user: Any) -> bool:
    """Assign ``dialogue`` to ``user`` if nobody has it (or ``user`` already
    does). A conditional update: of two people claiming at once, one wins.
    Returns whether ``user`` holds it now."""
    updated = Dialogue.objects.filter(
        Q(assigned_to__isnull=True) | Q(assigned_to=user), pk=dialogue.pk,
        status__in=(DialogueStatus.OPENING, DialogueStatus.OPEN),
    ).update(assigned_to=user)
    dialogue.refresh_from_db(fields=["assigned_to"])
    return bool(updated)


def release(dialogue: Dialogue, user: Any = None) -> bool:
    """Drop the claim on ``dialogue`` (only ``user``'s, when given)."""
    rows = Dialogue.objects.filter(pk=dialogue.pk, assigned_to__isnull=False)
    if user is not None:
        rows = rows.filter(assigned_to=user)
    released = bool(rows.update(assigned_to=None))
    dialogue.refresh_from_db(fields=["assigned_to"])
    return released


class WaitingFilter(admin.SimpleListFilter):
    """"Waiting for us": open dialogues whose customer wrote last, oldest
    first (the admin orders them; see ``DialogueAdmin.get_ordering``)."""

    title = gettext_lazy("inbox")
    parameter_name = "waiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", gettext_lazy("Waiting for us"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "1":
            if ANSWERED not in queryset.query.annotations:
                queryset = with_answered(queryset)
            return queryset.filter(WAITING)
        return queryset


class ClaimFilter(admin.SimpleListFilter):
    """Dialogues claimed by the user, by nobody, or by anyone."""

    title = gettext_lazy("assigned to")
    parameter_name = "assigned"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("me", gettext_lazy("Me")), ("nobody", gettext_lazy("Nobody")),
                ("anyone", gettext_lazy("Anyone"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "me":
            return queryset.filter(assigned_to=request.user)
        if value == "nobody":
            return queryset.filter(assigned_to__isnull=True)
        if value == "anyone":
            return queryset.filter(assigned_to__isnull=False)
        return queryset
