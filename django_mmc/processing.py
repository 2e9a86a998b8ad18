"""Processing stored webhook events (the heavy half of the webhook).

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
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import dispatch, transitions
from .client import jsonapi
from .client.resources import EventFields, EventResource
from .conf import mmc_settings
from .contract import EventType
from .dispatch import Work
from .models import ChannelGroup, Dialogue, Message, Notification, Recipient, WebhookEvent
from .status import (
    ACTIVE_DIALOGUE_STATUSES,
    ClosedBy,
    FailureCode,
    is_platform_status,
)
from .webhooks.storage import in_utc

logger = logging.getLogger("django_mmc.webhooks")

Handler = Callable[[EventResource, EventFields, str], str]

PROCESSED = WebhookEvent.State.PROCESSED
WAITING = WebhookEvent.State.WAITING
IGNORED = WebhookEvent.State.IGNORED
STALE = WebhookEvent.State.STALE
PENDING = WebhookEvent.State.PENDING
#: States nothing moves an event out of but "process again".
FINISHED = (PROCESSED, IGNORED)


class EventError(ValueError):
    """The event's content cannot be applied (a value missing or malformed)."""


def check_agent(fields: EventFields, agent_key: str) -> None:
    """The platform sends an agent's events to that agent's endpoint only: an
    event naming another agent is refused, so a secret leaked for one agent
    cannot be used to forge events about another agent's dialogues."""
    claimed = fields.dialogue_agent_id
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


#: How often a handler that lost a race to create a row (two events about a
#: new dialogue at once) re-reads and applies again.
RACE_RETRIES = 3


def process_event(pk: int) -> str:
    """Apply stored event ``pk``; returns its new state. Safe to call twice,
    and from two workers at once (the row is locked while it is applied).

    It runs in one transaction on the database the event is stored on
    (``router.db_for_write``). A handler that loses a race to create a row
    (two events about a dialogue new to this site, processed at once) goes
    back to its savepoint and applies again, seeing the winner's row. An
    event still ``WAITING`` for its subject after ``MMC['EVENT_WAIT_MAX_AGE']``
    seconds is given up: ``STALE``, left for the retention command."""
    alias = router.db_for_write(WebhookEvent)
    for attempt in range(len(LOCKED_DELAYS) + 1):
        try:
            return _apply_stored(pk, alias)
        except OperationalError as error:
            if not is_locked(error):
                return _failed(pk, alias, error)
            if attempt == len(LOCKED_DELAYS):
                # Still locked: the event stays PENDING for the next try (its
                # task's retry, the batch's hand-over or the outbox sweeper).
                logger.info("django_mmc: webhook event %s waits: the database is locked "
                            "(%s)", pk, error)
                return PENDING
            time.sleep(LOCKED_DELAYS[attempt])
        except Exception as error:  # noqa: BLE001 - recorded outside the rolled-back transaction
            return _failed(pk, alias, error)
    raise AssertionError("unreachable")


#: Pauses (seconds) before processing an event again in place when the
#: database was locked (SQLite in development, with a worker writing too).
LOCKED_DELAYS = (0.1, 0.3, 0.9)


def is_locked(error: BaseException) -> bool:
    """A database that was busy, not an event that cannot be applied: SQLite's
    "database is locked" / "database table is locked"."""
    return isinstance(error, OperationalError) and "locked" in str(error).lower()


def _failed(pk: int, alias: str, error: BaseException) -> str:
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    logger.warning("django_mmc: webhook event %s failed: %s", pk, detail)
    try:
        WebhookEvent.objects.using(alias).filter(pk=pk).update(
            state=WebhookEvent.State.FAILED, error=detail[:4000], attempts=F("attempts") + 1,
        )
    except OperationalError as locked:
        if not is_locked(locked):
            raise
        return PENDING  # not even recorded: it is tried again as it is
    return WebhookEvent.State.FAILED


def _apply_stored(pk: int, alias: str) -> str:
    """One try at :func:`process_event`, in one transaction."""
    with transaction.atomic(using=alias):
        stored = (WebhookEvent.objects.using(alias).select_for_update()
                  .filter(pk=pk).first())
        if stored is None or stored.state in FINISHED:
            return stored.state if stored else "missing"
        event = jsonapi.parse_event(json.loads(stored.body))
        event = replace(event, occurred_at=in_utc(event.occurred_at))
        handler = HANDLERS.get(event.event_type)
        try:
            fields = jsonapi.event_fields(event)
        except jsonapi.DocumentError as error:
            raise EventError(str(error)) from None
        check_agent(fields, stored.agent_key)
        state = IGNORED if handler is None else apply(handler, event, fields,
                                                      stored.agent_key, alias)
        stored.error = ""
        if state == WAITING and stored.received_at < timezone.now() - timedelta(
                seconds=mmc_settings.EVENT_WAIT_MAX_AGE):
            state = STALE
            stored.error = (f"Gave up after {mmc_settings.EVENT_WAIT_MAX_AGE} seconds: "
                            "what it is about never became known here.")
            logger.warning("django_mmc: webhook event %s is stale: %s", pk, stored.error)
        stored.state = state
        stored.attempts += 1
        stored.processed_at = timezone.now() if state == PROCESSED else None
        stored.save(update_fields=["state", "attempts", "error", "processed_at"])
        return state


def apply(handler: Handler, event: EventResource, fields: EventFields, agent_key: str,
          alias: str) -> str:
    """Run ``handler`` in a savepoint; when it loses a race to create a row
    (an ``IntegrityError``), roll back to the savepoint and run it again: it
    reads the row the winner created."""
    for attempt in range(RACE_RETRIES):
        try:
            with transaction.atomic(using=alias):
                return handler(event, fields, agent_key)
        except IntegrityError:
            if attempt == RACE_RETRIES - 1:
                raise
            logger.info("django_mmc: event %s lost a race to create a row; applying again",
                        event.id)
    raise AssertionError("unreachable")


# -- status events ---------------------------------------------------------------


def _required(value: str | None, name: str) -> str:
    if not value:
        raise EventError(f"The event has no {name!r} relationship.")
    return value


def apply_status(model: type, platform_id: str, fields: EventFields,
                 agent_key: str | None = None) -> str:
    """Move the row with ``platform_id`` forward to the reported status;
    ``WAITING`` when the row is not known yet."""
    if not is_platform_status(fields.status):
        raise EventError(f"Unknown status {fields.status!r}.")
    try:
        applied = transitions.advance(model, platform_id, fields.status, fields.failure,
                                      agent_key=agent_key)
    except transitions.WrongAgent as error:
        raise EventError(str(error)) from None
    return WAITING if applied is transitions.Applied.UNKNOWN else PROCESSED


def on_notification_status(event: EventResource, fields: EventFields, agent_key: str) -> str:
    return apply_status(Notification, _required(fields.notification_id, "notification"), fields)


def on_message_status(event: EventResource, fields: EventFields, agent_key: str) -> str:
    return apply_status(Message, _required(fields.message_id, "message"), fields,
                        agent_key=agent_key)


# -- dialogue events ---------------------------------------------------------------


def _group(platform_id: str) -> ChannelGroup:
    group, _ = ChannelGroup.objects.get_or_create(platform_id=platform_id)
    return group


#: How far the platform's clock may be behind ours when an event is compared
#: with a dialogue this site started.
CLOCK_SKEW = timedelta(seconds=5)


def find_or_create_dialogue(event: EventResource, fields: EventFields, agent_key: str
                            ) -> Dialogue:
    """The local dialogue the event belongs to, created if the platform opened
    one we do not know yet (a recipient wrote first).

    Webhooks arrive late, twice and out of order, and "process again" replays
    old ones, so an event about a platform dialogue this site does not know
    changes what is live here only if it is newer than every dialogue known
    with the recipient on that channel group. An older one is kept on a
    closed row of its own (:func:`~django_mmc.transitions.store_historical_dialogue`)."""
    platform_id = _required(fields.dialogue_id, "dialogue")
    dialogue = Dialogue.objects.select_for_update().filter(platform_id=platform_id).first()
    if dialogue is not None:
        if fields.customer_id:
            link_customer(dialogue.recipient, fields.customer_id)
        return _same_agent(dialogue, agent_key)
    recipient = event_recipient(fields)
    group = _group(_required(fields.channel_group_id, "channelGroup"))
    occurred = event.occurred_at or timezone.now()
    active = list(Dialogue.objects.select_for_update().filter(
        recipient=recipient, channel_group=group, status__in=ACTIVE_DIALOGUE_STATUSES))
    for local in active:
        if local.platform_id is None and local.agent_key == agent_key and (
                occurred >= local.created_at - CLOCK_SKEW):
            # Ours, being opened: the webhook beat the create response.
            transitions.mark_dialogue_open(local, platform_id, occurred)
            return local
    if _older_than_known(occurred, recipient, group):
        logger.info("django_mmc: event %s is about dialogue %s, older than one known here; "
                    "kept apart, nothing live changed", event.id, platform_id[:64])
        return transitions.store_historical_dialogue(
            agent_key=agent_key, recipient=recipient, channel_group=group,
            channel_type=fields.channel_type, platform_id=platform_id,
            initiated_by=fields.initiated_by, occurred_at=occurred)
    for local in active:
        # The platform opened a newer dialogue for this recipient and group,
        # so whatever we thought was open is not any more.
        if local.platform_id is None:
            transitions.mark_dialogue_conflict(
                local, holder_dialogue_id=platform_id,
                holder_agent_id=fields.dialogue_agent_id or "",
                code=FailureCode.DIALOGUE_ACTIVE,
                detail="The platform opened a dialogue with another agent meanwhile.")
        else:
            transitions.mark_dialogue_closed(local, closed_by=ClosedBy.PLATFORM)
    return transitions.open_from_platform(
        agent_key=agent_key, recipient=recipient, channel_group=group,
        channel_type=fields.channel_type, platform_id=platform_id,
        initiated_by=fields.initiated_by, opened_at=occurred)


def event_recipient(fields: EventFields) -> Recipient:
    """The recipient an event names: by its number, by the platform's
    customer id, or by both (found or created, and the two linked). A value
    that is neither raises ``ValidationError``."""
    if fields.customer_id:
        return Recipient.objects.for_customer(fields.customer_id,
                                              phone_number=fields.recipient)
    return Recipient.objects.for_number(_required(fields.recipient, "recipient"))


def link_customer(recipient: Recipient, customer_id: str) -> None:
    """Give a recipient the site knows by number the customer id an event
    about its dialogue names, unless another recipient has that id."""
    if recipient.customer_id or customer_id.startswith("+"):
        return
    if Recipient.objects.filter(customer_id=customer_id).exists():
        return
    try:
        with transaction.atomic(using=router.db_for_write(Recipient)):
            Recipient.objects.filter(pk=recipient.pk, customer_id__isnull=True).update(
                customer_id=customer_id[:64])
    except IntegrityError:  # linked to another recipient meanwhile: left as it is
        pass


def _older_than_known(occurred: datetime, recipient: Recipient, group: ChannelGroup) -> bool:
    """Whether a dialogue that began at ``occurred`` is older than one this
    site knows with the recipient on the group (open or closed, opened on
    the platform or being opened here)."""
    known = Dialogue.objects.filter(recipient=recipient, channel_group=group)
    return known.filter(
        Q(opened_at__gt=occurred)
        | Q(opened_at__isnull=True, created_at__gt=occurred + CLOCK_SKEW)).exists()


def on_dialogue_opened(event: EventResource, fields: EventFields, agent_key: str) -> str:
    find_or_create_dialogue(event, fields, agent_key)
    return PROCESSED


def on_message_received(event: EventResource, fields: EventFields, agent_key: str) -> str:
    message_id = _required(fields.message_id, "message")
    if Message.objects.filter(platform_id=message_id).exists():
        return PROCESSED  # a duplicate delivery
    dialogue = find_or_create_dialogue(event, fields, agent_key)
    transitions.store_inbound_message(
        dialogue, message_id, text=fields.text, files=[file_entry(f) for f in fields.files],
        channel_type=fields.channel_type or dialogue.channel_type,
        received_at=event.occurred_at or timezone.now())
    return PROCESSED


def file_entry(parsed: Any) -> dict[str, Any]:
    """A file as a message's ``files`` keeps it."""
    return {"id": parsed.id, "name": parsed.name, "contentType": parsed.content_type,
            "size": parsed.size, "url": parsed.url}


def on_dialogue_closed(event: EventResource, fields: EventFields, agent_key: str) -> str:
    dialogue = Dialogue.objects.filter(platform_id=_required(fields.dialogue_id, "dialogue")
                                       ).first()
    if dialogue is None:
        return WAITING  # its dialogue.opened may still be on the way
    _same_agent(dialogue, agent_key)
    closed_by = fields.closed_by if fields.closed_by in ClosedBy.values else ClosedBy.PLATFORM
    transitions.mark_dialogue_closed(dialogue, closed_by=closed_by, closed_at=event.occurred_at)
    return PROCESSED


HANDLERS: dict[str, Handler] = {
    EventType.NOTIFICATION_STATUS.value: on_notification_status,
    EventType.MESSAGE_STATUS.value: on_message_status,
    EventType.MESSAGE_RECEIVED.value: on_message_received,
    EventType.DIALOGUE_OPENED.value: on_dialogue_opened,
    EventType.DIALOGUE_CLOSED.value: on_dialogue_closed,
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
    locked: set[int] = set()
    while done < limit:
        pks = list(WebhookEvent.objects.filter(state=PENDING).exclude(pk__in=locked)
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
                dispatch.enqueue(Work.PROCESS_EVENT, pk, countdown=0.5)
            elif state == PENDING:  # the database was locked: a task of its own, later
                locked.add(pk)
                dispatch.enqueue(Work.PROCESS_EVENT, pk, countdown=1)
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
    dispatch.enqueue_many(Work.PROCESS_EVENT, pks)
    return len(pks)


def delete_old_events(days: int | None = None) -> int:
    """Delete processed, ignored and stale events older than ``days``
    (default ``MMC['WEBHOOK_EVENT_RETENTION_DAYS']``); failed ones are kept."""
    from datetime import timedelta

    days = mmc_settings.WEBHOOK_EVENT_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = WebhookEvent.objects.filter(
        state__in=(PROCESSED, IGNORED, STALE), received_at__lt=cutoff).delete()
    return deleted
