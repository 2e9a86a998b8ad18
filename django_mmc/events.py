"""Processing of stored webhook events (the heavy half of the webhook).

The view verifies, stores and acknowledges; :func:`process_event` then applies
one stored event inside one transaction, idempotently: processing an event
twice changes nothing the second time. An event about a notification or
message whose platform id is not stored yet (the webhook beat the worker that
records the create response) is kept ``WAITING`` and applied later.

A webhook body is untrusted input even with a valid signature: every value is
checked before use, and a bad one fails the event with an error, never a
half-written change.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import contract, dispatch, signals
from .client import jsonapi
from .client.resources import EventResource
from .conf import mmc_settings
from .models import ChannelGroup, Dialogue, Message, Notification, Recipient, WebhookEvent
from .sending import _mark_closed, fire_status_changed, status_changes
from .status import (
    ACTIVE_DIALOGUE_STATUSES,
    STATUS_VALUES,
    ClosedBy,
    DialogueStatus,
    Direction,
    InitiatedBy,
    Status,
    can_advance,
)

logger = logging.getLogger("django_mmc.webhooks")

PROCESSED = WebhookEvent.State.PROCESSED
WAITING = WebhookEvent.State.WAITING
IGNORED = WebhookEvent.State.IGNORED


class EventError(ValueError):
    """The event's content cannot be applied (a value missing or malformed)."""


def in_utc(moment: datetime | None) -> datetime | None:
    """An event's ``occurredAt`` as it is stored and used: in UTC. RFC 3339
    allows offsets PostgreSQL refuses (past 15:59), and a time without an
    offset is UTC, as every timestamp of the contract is. Raises
    ``OverflowError`` when UTC falls outside the years 1 to 9999."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt_timezone.utc)
    return moment.astimezone(dt_timezone.utc)


def check_agent(event: EventResource, agent_key: str) -> None:
    """The platform sends an agent's events to that agent's endpoint only: an
    event naming another agent is refused, so a secret leaked for one agent
    cannot be used to forge events about another agent's dialogues."""
    claimed = event.related.get("dialogueAgent")
    agent = mmc_settings.agents.get(agent_key)
    if claimed and agent is not None and claimed != agent.id:
        raise EventError(
            f"The event is for dialogue agent {claimed[:64]} but arrived at the endpoint of "
            f"agent {agent_key!r} (id {agent.id}).")


def _same_agent(dialogue: Dialogue, agent_key: str) -> Dialogue:
    if dialogue.agent_key != agent_key:
        raise EventError(f"Dialogue {dialogue.pk} belongs to agent {dialogue.agent_key!r}, "
                         f"not to {agent_key!r} whose endpoint received the event.")
    return dialogue


def subject_id(event: EventResource) -> str:
    """The platform id the event is mainly about (staff search events by it)."""
    for name in ("notification", "message", "dialogue"):
        value = event.related.get(name)
        if value:
            return value[:64]
    return ""


def process_event(pk: int) -> str:
    """Apply stored event ``pk``; returns its new state. Safe to call twice,
    and from two workers at once (the row is locked while it is applied)."""
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.select_for_update().filter(pk=pk).first()
            if stored is None or stored.state in (PROCESSED, IGNORED):
                return stored.state if stored else "missing"
            event = jsonapi.parse_event(json.loads(stored.body))
            event = replace(event, occurred_at=in_utc(event.occurred_at))
            check_agent(event, stored.agent_key)
            handler = HANDLERS.get(event.event_type)
            if handler is None:
                state = IGNORED
            else:
                state = handler(event, stored.agent_key)
            stored.state = state
            stored.attempts += 1
            stored.error = ""
            stored.processed_at = timezone.now() if state == PROCESSED else None
            stored.save(update_fields=["state", "attempts", "error", "processed_at"])
            return state
    except Exception as error:  # noqa: BLE001 - recorded outside the rolled-back transaction
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        WebhookEvent.objects.filter(pk=pk).update(
            state=WebhookEvent.State.FAILED, error=detail[:4000],
            attempts=F("attempts") + 1,
        )
        logger.warning("django_mmc: webhook event %s failed: %s", pk, detail)
        return WebhookEvent.State.FAILED


# -- status events ---------------------------------------------------------------


def apply_status(model: type, platform_id: str, new: str, failure: Any,
                 agent_key: str | None = None) -> str:
    """Move the row with ``platform_id`` forward to ``new`` if that is forward.
    Returns ``WAITING`` when the row is not known yet. For a dialogue message,
    ``agent_key`` must be its dialogue's agent."""
    if new not in STATUS_VALUES:
        raise EventError(f"Unknown status {new!r}.")
    fields = ["pk", "status"] + (["dialogue__agent_key"] if agent_key else [])
    for _ in range(5):  # re-read if a concurrent update moved the row meanwhile
        row = model.objects.filter(platform_id=platform_id).values(*fields).first()
        if row is None:
            return WAITING
        if agent_key and row["dialogue__agent_key"] != agent_key:
            raise EventError(f"Message {platform_id[:64]} belongs to agent "
                             f"{row['dialogue__agent_key']!r}, not to {agent_key!r}.")
        if not can_advance(row["status"], new):
            return PROCESSED  # late or duplicate report: nothing changes
        changes = status_changes(row["status"], new, timezone.now(),
                                 jsonapi.parse_failure(failure))
        if model.objects.filter(pk=row["pk"], status=row["status"]).update(**changes):
            fire_status_changed(model, row["pk"], row["status"], new)
            return PROCESSED
    raise EventError("The row kept changing while the status was applied.")


def _required(event: EventResource, name: str) -> str:
    value = event.related.get(name)
    if not value:
        raise EventError(f"The event has no {name!r} relationship.")
    return value


def on_notification_status(event: EventResource, agent_key: str) -> str:
    return apply_status(Notification, _required(event, "notification"),
                        str(event.attributes.get("status") or ""), event.attributes.get("failure"))


def on_message_status(event: EventResource, agent_key: str) -> str:
    return apply_status(Message, _required(event, "message"),
                        str(event.attributes.get("status") or ""), event.attributes.get("failure"),
                        agent_key=agent_key)


# -- dialogue events ---------------------------------------------------------------


def _group(platform_id: str) -> ChannelGroup:
    group, _ = ChannelGroup.objects.get_or_create(platform_id=platform_id)
    return group


def find_or_create_dialogue(event: EventResource, agent_key: str) -> tuple[Dialogue, bool]:
    """The local dialogue the event belongs to, created if the platform opened
    one we do not know yet (a recipient wrote first). Returns it and whether
    it just became open here."""
    platform_id = _required(event, "dialogue")
    dialogue = Dialogue.objects.select_for_update().filter(platform_id=platform_id).first()
    if dialogue is not None:
        return _same_agent(dialogue, agent_key), False
    recipient = Recipient.objects.for_number(_required(event, "recipient"))
    group = _group(_required(event, "channelGroup"))
    now = timezone.now()
    active = list(Dialogue.objects.select_for_update().filter(
        recipient=recipient, channel_group=group, status__in=ACTIVE_DIALOGUE_STATUSES))
    for local in active:
        if local.platform_id == platform_id:
            # The worker opening it held the lock and stored this id meanwhile
            # (it also sends dialogue_opened).
            return _same_agent(local, agent_key), False
    for local in active:
        if local.platform_id is None and local.agent_key == agent_key:
            # Ours, being opened: the webhook beat the create response.
            Dialogue.objects.filter(pk=local.pk).update(
                platform_id=platform_id, opened_at=event.occurred_at or now,
                status=(DialogueStatus.OPEN if local.status == DialogueStatus.OPENING
                        else local.status),
            )
            local.refresh_from_db()
            return local, local.status == DialogueStatus.OPEN
    for local in active:
        # The platform opened a new dialogue for this recipient and group, so
        # whatever we thought was open is not any more.
        if local.platform_id is None:
            Dialogue.objects.filter(pk=local.pk).update(
                status=DialogueStatus.CONFLICT, conflict_dialogue_id=platform_id,
                conflict_agent_id=event.related.get("dialogueAgent") or "",
                failure_code=contract.ERROR_DIALOGUE_ACTIVE,
                failure_detail="The platform opened a dialogue with another agent meanwhile.",
                updated_at=now)
        else:
            _mark_closed(local, closed_by=ClosedBy.PLATFORM)
    initiated_by = event.attributes.get("initiatedBy")
    dialogue = Dialogue.objects.create(
        agent_key=agent_key, recipient=recipient, channel_group=group,
        channel_type=str(event.attributes.get("channelType") or ""),
        platform_id=platform_id, status=DialogueStatus.OPEN,
        initiated_by=(initiated_by if initiated_by in InitiatedBy.values
                      else InitiatedBy.RECIPIENT),
        opened_at=event.occurred_at or now,
    )
    return dialogue, True


def _fire_opened(dialogue: Dialogue) -> None:
    dispatch.on_commit(lambda: signals.dialogue_opened.send(sender=Dialogue, dialogue=dialogue))


def on_dialogue_opened(event: EventResource, agent_key: str) -> str:
    dialogue, opened = find_or_create_dialogue(event, agent_key)
    if opened:
        _fire_opened(dialogue)
    return PROCESSED


def on_message_received(event: EventResource, agent_key: str) -> str:
    message_id = _required(event, "message")
    if Message.objects.filter(platform_id=message_id).exists():
        return PROCESSED  # a duplicate delivery
    dialogue, opened = find_or_create_dialogue(event, agent_key)
    if opened:
        _fire_opened(dialogue)
    files = event.attributes.get("files") or []
    if not isinstance(files, list):
        raise EventError("'files' must be a list.")
    text = event.attributes.get("text")
    if text is not None and not isinstance(text, str):
        raise EventError("'text' must be a string.")
    store_inbound_message(
        dialogue, message_id, text=text or "", files=[_file_entry(f) for f in files],
        channel_type=str(event.attributes.get("channelType") or dialogue.channel_type),
        received_at=event.occurred_at or timezone.now())
    return PROCESSED


def store_inbound_message(dialogue: Dialogue, platform_id: str, *, text: str,
                          files: list[dict[str, Any]], channel_type: str,
                          received_at: datetime) -> Message:
    """Store what the recipient wrote (from a webhook or a transcript poll):
    moves the care window, applies consent keywords, and fires
    ``message_received`` after commit. The caller makes sure it is new."""
    message = Message.objects.create(
        dialogue=dialogue, direction=Direction.INBOUND, text=text, files=files,
        channel_type=channel_type, platform_id=platform_id, status=Status.RECEIVED,
        received_at=received_at,
    )
    if dialogue.last_inbound_at is None or dialogue.last_inbound_at < received_at:
        Dialogue.objects.filter(pk=dialogue.pk).update(last_inbound_at=received_at)
    apply_consent_keyword(dialogue.recipient, message.channel_type, text)
    dispatch.on_commit(lambda: signals.message_received.send(
        sender=Message, message=message, dialogue=dialogue))
    return message


def consent_keyword(text: str) -> bool | None:
    """``True`` for an opt-out keyword (STOP...), ``False`` for an opt-in one
    (START...), ``None`` otherwise. The whole message must be the keyword;
    case, spaces and punctuation do not matter."""
    word = re.sub(r"[\W_]+", "", text).upper()
    if not word or len(word) > 32:
        return None
    if word in {k.upper() for k in mmc_settings.OPT_OUT_KEYWORDS}:
        return True
    if word in {k.upper() for k in mmc_settings.OPT_IN_KEYWORDS}:
        return False
    return None


def apply_consent_keyword(recipient: Recipient, channel_type: str, text: str) -> None:
    opted_out = consent_keyword(text)
    if opted_out is not None and channel_type:
        from .api import set_consent

        set_consent(recipient, channel_type, opted_out, source="KEYWORD", detail=text[:200])


def _file_entry(value: Any) -> dict[str, Any]:
    parsed = jsonapi.parse_file(value)
    return {"id": parsed.id, "name": parsed.name, "contentType": parsed.content_type,
            "size": parsed.size, "url": parsed.url}


def on_dialogue_closed(event: EventResource, agent_key: str) -> str:
    dialogue = Dialogue.objects.filter(platform_id=_required(event, "dialogue")).first()
    if dialogue is None:
        return WAITING  # its dialogue.opened may still be on the way
    _same_agent(dialogue, agent_key)
    closed_by = event.attributes.get("closedBy")
    _mark_closed(dialogue, closed_by=closed_by if closed_by in ClosedBy.values
                 else ClosedBy.PLATFORM, closed_at=event.occurred_at)
    return PROCESSED


HANDLERS: dict[str, Callable[[EventResource, str], str]] = {
    contract.EVENT_NOTIFICATION_STATUS: on_notification_status,
    contract.EVENT_MESSAGE_STATUS: on_message_status,
    contract.EVENT_MESSAGE_RECEIVED: on_message_received,
    contract.EVENT_DIALOGUE_OPENED: on_dialogue_opened,
    contract.EVENT_DIALOGUE_CLOSED: on_dialogue_closed,
}


def process_pending(limit: int = 10_000, batch_size: int = 100,
                    linger: float | None = None) -> dict[str, int]:
    """Process stored events that are waiting for a worker, oldest first, in
    batches (the task the webhook view hands events to), then keep looking
    for new ones until none has come for ``linger`` seconds (see
    :func:`django_mmc.dispatch.hand_over_event` for why). Events whose
    subject is not known yet get their own retrying task."""
    from django.core.cache import caches

    linger = dispatch.EVENTS_LINGER if linger is None else linger
    try:  # deliveries from now on start another batch
        caches[mmc_settings.CACHE_ALIAS].delete(dispatch.EVENTS_PENDING_KEY)
    except Exception:  # noqa: BLE001 - the flag only saves work
        logger.warning("django_mmc: cache unreachable while taking a batch of events")
    counts: dict[str, int] = {}
    done = 0
    quiet_since = time.monotonic()
    while done < limit:
        pks = list(WebhookEvent.objects.filter(state=WebhookEvent.State.PENDING)
                   .order_by("received_at", "pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            if time.monotonic() - quiet_since >= linger:
                break
            time.sleep(min(0.1, linger))
            continue
        for pk in pks:
            state = process_event(pk)
            counts[state] = counts.get(state, 0) + 1
            if state == WAITING:
                dispatch.enqueue("process_event", pk, countdown=0.5)
        done += len(pks)
        quiet_since = time.monotonic()
    return counts


def reprocess(queryset: Any, *, include_processed: bool = False) -> int:
    """Put events back to be processed (by default only failed and waiting
    ones; processing a processed event again changes nothing); returns how many."""
    if not include_processed:
        queryset = queryset.exclude(state__in=(PROCESSED, IGNORED))
    pks = list(queryset.values_list("pk", flat=True))
    WebhookEvent.objects.filter(pk__in=pks).update(state=WebhookEvent.State.PENDING, error="",
                                                   enqueued_at=timezone.now())
    for pk in pks:
        dispatch.enqueue("process_event", pk)
    return len(pks)


def delete_old_events(days: int | None = None) -> int:
    """Delete processed and ignored events older than ``days`` (default
    ``MMC['WEBHOOK_EVENT_RETENTION_DAYS']``); failed ones are kept."""
    from datetime import timedelta

    days = mmc_settings.WEBHOOK_EVENT_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = WebhookEvent.objects.filter(
        state__in=(PROCESSED, IGNORED), received_at__lt=cutoff).delete()
    return deleted
