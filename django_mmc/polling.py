"""Status polling: the safety net for webhooks that never arrive.

Only rows the platform has, that are not final and have had no news for
``MMC['POLL_AFTER']`` seconds are asked about, ``MMC['POLL_BATCH_SIZE']`` ids per
request (the contract's ``filter[id]``), and changes are written in bulk: the
number of queries per batch does not grow with the batch.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import transitions
from .client import get_client
from .conf import mmc_settings
from .contract import DialogueState
from .dispatch import database
from .exceptions import MMCNotFoundError
from .models import Dialogue, Message, Notification
from .status import POLLABLE_STATUSES, ClosedBy, DialogueStatus, Direction, can_advance

logger = logging.getLogger("django_mmc.polling")


def due_for_poll(now=None):
    now = now or timezone.now()
    stale = now - timedelta(seconds=mmc_settings.POLL_AFTER)
    return Notification.objects.filter(
        Q(checked_at__isnull=True) | Q(checked_at__lt=stale),
        status__in=POLLABLE_STATUSES, status_changed_at__lt=stale,
        platform_id__isnull=False,
        created_at__gt=now - timedelta(seconds=mmc_settings.POLL_MAX_AGE),
    )


def poll_notifications(limit: int | None = None) -> dict[str, int]:
    """Ask the platform about notifications that are overdue for news and
    apply what changed. Returns counts: polled, changed, requests."""
    batch_size = mmc_settings.POLL_BATCH_SIZE
    client = get_client()
    totals = {"polled": 0, "changed": 0, "requests": 0}
    last_pk = 0
    while limit is None or totals["polled"] < limit:
        size = batch_size if limit is None else min(batch_size, limit - totals["polled"])
        rows = list(
            due_for_poll().filter(pk__gt=last_pk).order_by("pk")
            .values_list("pk", "platform_id", "status")[:size]
        )
        if not rows:
            break
        last_pk = rows[-1][0]
        remote = {r.id: r for r in client.get_notifications([r[1] for r in rows])}
        totals["requests"] += 1
        totals["polled"] += len(rows)
        totals["changed"] += apply_batch(rows, remote)
    return totals


def apply_batch(rows: list[tuple[int, str, str]], remote: dict) -> int:
    """Write one batch's changes: one UPDATE per (old, new, failure) group,
    and one to mark the rest as checked."""
    now = timezone.now()
    reports = [transitions.Report(pk, old, remote[platform_id].status,
                                  remote[platform_id].failure)
               for pk, platform_id, old in rows if platform_id in remote]
    with transaction.atomic(using=database()):
        changed = transitions.advance_polled(Notification, reports, now)
        Notification.objects.filter(pk__in=[r[0] for r in rows]).exclude(
            checked_at=now).update(checked_at=now)
    return changed


def _quiet_dialogues(now: Any) -> tuple[Any, Any]:
    """Dialogues the platform has that had no news for ``POLL_AFTER``, and
    the moment that makes news stale."""
    stale = now - timedelta(seconds=mmc_settings.POLL_AFTER)
    return Dialogue.objects.filter(platform_id__isnull=False, updated_at__lt=stale), stale


def dialogues_due_for_poll(now: Any = None) -> Any:
    """Open (or closing) dialogues with no news and no poll for ``POLL_AFTER``."""
    quiet, stale = _quiet_dialogues(now or timezone.now())
    return quiet.filter(
        Q(checked_at__isnull=True) | Q(checked_at__lt=stale),
        status__in=(DialogueStatus.OPEN, DialogueStatus.CLOSING),
    ).order_by("checked_at", "pk")


def dialogues_due_for_last_look(now: Any = None) -> Any:
    """Dialogues closed ``POLL_AFTER`` or more ago (and within ``POLL_MAX_AGE``)
    that nobody has polled since they closed (the index
    ``mmc_dialogue_last_look_idx`` holds just those)."""
    now = now or timezone.now()
    quiet, _ = _quiet_dialogues(now)
    return quiet.filter(
        Q(checked_at__isnull=True) | Q(checked_at__lte=F("closed_at")),
        status=DialogueStatus.CLOSED,
        closed_at__gt=now - timedelta(seconds=mmc_settings.POLL_MAX_AGE),
    ).order_by("closed_at", "pk")


def poll_dialogues(limit: int = 200) -> dict[str, int]:
    """The safety net for dialogue webhooks: for open dialogues that have had
    no news for ``MMC['POLL_AFTER']`` seconds, ask the platform for the
    dialogue and its transcript. Messages the recipient wrote whose webhook
    never came are stored (and fire ``message_received``), outbound statuses
    move forward, and a dialogue the platform closed is closed here.

    A dialogue that closed within ``MMC['POLL_MAX_AGE']`` and has not been
    looked at since gets the same look once, ``POLL_AFTER`` after its close:
    a last message (a STOP, say) whose webhook was lost just before the close
    is recovered too. Two requests per dialogue, at most ``limit`` dialogues
    per run, open ones first."""
    client = get_client()
    now = timezone.now()
    dialogues = list(dialogues_due_for_poll(now).select_related("recipient")[:limit])
    if len(dialogues) < limit:
        dialogues += dialogues_due_for_last_look(now).select_related("recipient")[
            :limit - len(dialogues)]
    totals = {"dialogues": 0, "received": 0, "changed": 0, "closed": 0, "requests": 0}
    for dialogue in dialogues:
        agent = mmc_settings.agents.get(dialogue.agent_key)
        if agent is None:
            continue
        try:
            remote = client.get_dialogue(agent.id, dialogue.platform_id)
            messages = client.list_messages(agent.id, dialogue.platform_id)
        except MMCNotFoundError:
            remote, messages = None, []
        totals["requests"] += 2
        totals["dialogues"] += 1
        with transaction.atomic(using=database()):
            known = dict(Message.objects.filter(
                platform_id__in=[m.id for m in messages]).values_list("platform_id", "status"))
            for message in messages:
                if message.direction == Direction.INBOUND and message.id not in known:
                    transitions.store_inbound_message(
                        dialogue, message.id, text=message.text or "",
                        files=[{"id": f.id} for f in message.files],
                        channel_type=message.channel_type or dialogue.channel_type,
                        received_at=message.created_at or now)
                    totals["received"] += 1
                elif (message.direction == Direction.OUTBOUND and message.id in known
                      and message.status and can_advance(known[message.id], message.status)):
                    transitions.advance(Message, message.id, message.status, message.failure)
                    totals["changed"] += 1
            if remote is None or remote.status == DialogueState.CLOSED:
                closed_by = (remote.closed_by if remote else None) or ClosedBy.PLATFORM
                if transitions.mark_dialogue_closed(
                        dialogue, closed_by=closed_by,
                        closed_at=remote.closed_at if remote else None):
                    totals["closed"] += 1
            Dialogue.objects.filter(pk=dialogue.pk).update(checked_at=now)
    return totals


__all__ = ["apply_batch", "dialogues_due_for_last_look", "dialogues_due_for_poll",
           "due_for_poll", "poll_dialogues", "poll_notifications"]
