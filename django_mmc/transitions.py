"""Every status change of a notification, a dialogue message or a dialogue.

This module is the only one that writes ``status``. Each change is one
conditional ``UPDATE`` from the status the caller expects to the new one, so
two workers, a webhook and a poll racing for one row cannot both move it, and
a late report never moves a row backwards. A change stamps the time of the
status it reaches (``accepted_at``, ``delivered_at``, ``closed_at``...), and
the signal that announces it is sent after the transaction commits, the one
way :func:`django_mmc.signals.send_after_commit` sends every signal.

Moves into ``QUEUED`` and ``SENDING`` are the outbox's own bookkeeping and
send no signal; every other status a row reaches sends one exactly once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from . import consent, dispatch, signals
from .conf import mmc_settings
from .models import Dialogue, Message, Notification
from .policy import describe
from .status import (
    ACTIVE_DIALOGUE_STATUSES,
    STATUS_VALUES,
    TIMESTAMP_FIELDS,
    UNSENT_STATUSES,
    ClosedBy,
    DialogueStatus,
    Direction,
    FailureCode,
    InitiatedBy,
    Status,
    can_advance,
    is_platform_status,
)

logger = logging.getLogger("django_mmc.transitions")

Model = type[Notification] | type[Message]


# -- the one move ----------------------------------------------------------------


def status_changes(old: str, new: str, now: datetime, failure: Any = None) -> dict[str, Any]:
    """The field updates for moving a row from ``old`` to ``new``: the status,
    when it changed, and the timestamp of ``new`` (plus the platform's
    failure code and detail, when it sent one)."""
    changes: dict[str, Any] = {"status": new, "status_changed_at": now, "updated_at": now}
    stamp = TIMESTAMP_FIELDS.get(Status(new)) if new in STATUS_VALUES else None
    if stamp:
        changes[stamp] = now
    if failure is not None:
        changes["failure_code"] = failure.code
        changes["failure_detail"] = failure.detail
    return changes


#: Functions called after commit with the pk of each row that reached a
#: status (see :func:`on_entering`).
_ENTRY_HOOKS: dict[tuple[type, str], list[Callable[[int], Any]]] = {}


def on_entering(model: type, status: str) -> Callable[[Callable[[int], Any]], Callable[[int], Any]]:
    """Register a function to run after commit, with the primary key, for
    each row of ``model`` that reaches ``status`` (the channel fallback
    listens for failed notifications this way)."""
    def register(func: Callable[[int], Any]) -> Callable[[int], Any]:
        hooks = _ENTRY_HOOKS.setdefault((model, str(status)), [])
        if func not in hooks:
            hooks.append(func)
        return func

    return register


def hooks_for(model: type, status: str) -> list[Callable[[int], Any]]:
    """The functions registered to run when a row of ``model`` reaches
    ``status``."""
    return list(_ENTRY_HOOKS.get((model, str(status)), ()))


def announce(model: Model, pks: Iterable[int], old: str, new: str) -> None:
    """After commit: the status signal for rows of ``model`` that moved from
    ``old`` to ``new``, and the hooks registered for ``new``."""
    pks = list(pks)
    if not pks or new in UNSENT_STATUSES:
        return
    signal, name = ((signals.notification_status_changed, "notification")
                    if model is Notification else (signals.message_status_changed, "message"))
    signals.send_after_commit(signal, model, pks, lambda row: {
        name: row, "old_status": old, "new_status": new})
    for hook in hooks_for(model, new):
        for pk in pks:
            dispatch.on_commit(hook, pk)


def move(model: Model, pk: int, old: str, new: str, *, failure: Any = None,
         now: datetime | None = None, where: Q | None = None,
         fence: uuid.UUID | None = None, **fields: Any) -> bool:
    """Move row ``pk`` from ``old`` to ``new`` (and set ``fields``) if it is
    still in ``old`` (and matches ``where``, and is still held by the claim
    whose token is ``fence`` when one is given); returns whether it moved.
    Announces the move."""
    changes = status_changes(old, new, now or timezone.now(), failure)
    changes.update(fields)
    if where is not None:
        query = model.objects.filter(where, pk=pk, status=old)
        if fence is not None:
            query = query.filter(claim_token=fence)
        updated = query.update(**changes)
    else:
        updated = update_in_status(model, pk, old, changes, fence=fence)
    if not updated:
        return False
    announce(model, [pk], old, new)
    return True


def move_many(model: Model, pks: list[int], old: str, new: str, *, failure: Any = None,
              now: datetime | None = None, **fields: Any) -> list[int]:
    """:func:`move` for many rows making the same move, in one ``UPDATE``;
    returns the pks of the rows that moved (those another writer moved first
    are left out)."""
    if not pks:
        return []
    now = now or timezone.now()
    changes = status_changes(old, new, now, failure)
    changes.update(fields)
    updated = model.objects.filter(pk__in=pks, status=old).update(**changes)
    if updated == len(pks):
        moved = list(pks)
    elif not updated:
        moved = []
    else:  # someone moved some meanwhile: find out which we moved
        moved = list(model.objects.filter(pk__in=pks, status=new, status_changed_at=now)
                     .values_list("pk", flat=True))
    announce(model, moved, old, new)
    return moved


#: The SQL of :func:`update_in_status` by model, database and shape of the
#: change; ``""`` where the ORM's statement could not be reused.
UPDATE_SQL: dict[tuple[Any, ...], str] = {}


def update_in_status(model: Model, pk: int, status: str, changes: dict[str, Any], *,
                     fence: uuid.UUID | None = None) -> int:
    """``model.objects.filter(pk=pk, status=status).update(**changes)`` (also
    filtered on ``claim_token=fence`` when one is given), for
    the statements run once per notification sent: Django compiles the SQL
    of each shape of change once, and later calls only bind new values
    (building and compiling the query cost more than running it). Plain
    values only; the row count is returned as ``update()`` returns it."""
    where: dict[str, Any] = {"pk": pk, "status": status}
    if fence is not None:
        where["claim_token"] = fence
    if any(hasattr(value, "resolve_expression") for value in changes.values()):
        return model.objects.filter(**where).update(**changes)
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    key = (model, alias, tuple(where),
           tuple((name, value is None) for name, value in changes.items()))
    params = [meta.get_field(name).get_db_prep_save(value, connection)
              for name, value in changes.items() if value is not None]
    params += [meta.pk.get_db_prep_value(pk, connection), status]
    if fence is not None:
        params.append(meta.get_field("claim_token").get_db_prep_value(fence, connection))
    sql = UPDATE_SQL.get(key)
    if sql is None:
        query = model.objects.using(alias).filter(**where).query.chain(UpdateQuery)
        query.add_update_values(changes)
        sql, compiled = query.get_compiler(alias).as_sql()
        # Reused only if binding the values ourselves gives what Django bound.
        UPDATE_SQL[key] = sql = sql if list(compiled) == params else ""
    if not sql:
        return model.objects.using(alias).filter(**where).update(**changes)
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# -- the outbox: claiming, recording an attempt -------------------------------------


@dataclass(frozen=True)
class Claim:
    """A worker's hold on rows it is sending: the rows' ``claim_token`` is
    ``token`` until the result is recorded; ``started`` is the worker's clock
    when it claimed them, for :meth:`safe`."""

    token: uuid.UUID
    count: int
    started: float

    def __bool__(self) -> bool:
        return self.count > 0

    def safe(self) -> bool:
        """Whether the claim is surely still ours without asking the
        database: nobody can take a row over before its lease
        (``MMC['SEND_LEASE']``) runs out, and half of it leaves room for
        clocks that disagree."""
        return time.monotonic() - self.started < mmc_settings.SEND_LEASE / 2

    def holds(self, model: Model, pk: int) -> bool:
        """Whether row ``pk`` is still ``SENDING`` under this claim: asked of
        the database only once :meth:`safe` no longer says so."""
        return self.safe() or model.objects.filter(
            pk=pk, status=Status.SENDING, claim_token=self.token).exists()


def claim(model: Model, pk: int | list[int], task_id: str | None, *,
          extra: Q | None = None) -> Claim:
    """Atomically move row ``pk`` (or the rows of a list of pks) to
    ``SENDING`` where nobody else is sending it, under a new claim token. A
    row stuck in ``SENDING`` can be claimed again by the task that claimed it
    (redelivered after its worker died), or by anyone once its lease
    (``MMC['SEND_LEASE']``) has run out; either way the new claim fences the
    old one off (see :func:`record_sent`)."""
    now = timezone.now()
    started = time.monotonic()
    lease_expired = now - timedelta(seconds=mmc_settings.SEND_LEASE)
    mine_or_abandoned = Q(send_started_at__lt=lease_expired)
    if task_id:
        mine_or_abandoned |= Q(send_task_id=task_id)
    condition = Q(status=Status.QUEUED) | (Q(status=Status.SENDING) & mine_or_abandoned)
    rows = Q(pk__in=pk) if isinstance(pk, list) else Q(pk=pk)
    query = model.objects.filter(condition, rows, platform_id__isnull=True)
    if extra is not None:
        query = query.filter(extra)
    token = uuid.uuid4()
    # A row taken over from a worker whose lease ran out may be on the
    # platform already: its attempt began and never ended.
    count = query.update(
        status=Status.SENDING, attempts=F("attempts") + 1, send_started_at=now,
        send_task_id=task_id or "", claim_token=token, next_attempt_at=None, updated_at=now,
        maybe_sent=Case(When(status=Status.SENDING, then=Value(True)),
                        default=F("maybe_sent")),
    )
    return Claim(token, count, started)


def release(model: Model, pk: int, claim_token: uuid.UUID) -> None:
    """Give a claimed row back without counting the attempt (it could not be
    sent yet for a reason of ours, not the platform's)."""
    model.objects.filter(pk=pk, status=Status.SENDING, claim_token=claim_token).update(
        status=Status.QUEUED, attempts=F("attempts") - 1, send_started_at=None,
        claim_token=None, next_attempt_at=timezone.now(),
    )


def record_sent(model: Model, pk: int, resource: Any, claim_token: uuid.UUID) -> str:
    """The platform took the row: store its id and the status it answered
    with; returns that status. Recorded only under the claim that sent it: a
    worker whose lease ran out meanwhile changes nothing (the claim that took
    the row over sends with the same idempotency key and gets the same
    answer), and never leaves a waiting row with a platform id."""
    new = resource.status if is_platform_status(resource.status) else Status.ACCEPTED
    try:
        moved = move(model, pk, Status.SENDING, new, failure=resource.failure,
                     fence=claim_token, platform_id=resource.id, last_error="",
                     send_task_id="", maybe_sent=False)
    except IntegrityError:
        # Another row already holds this platform id: only possible if the
        # same idempotency key was used twice, which claim() prevents.
        logger.error("django_mmc: platform id %s already stored for another %s",
                     resource.id, model._meta.verbose_name)
        raise
    if not moved:  # moved meanwhile, out of the outbox (expired, say): keep the id
        model.objects.filter(pk=pk, platform_id__isnull=True).exclude(
            status__in=(Status.SCHEDULED, *UNSENT_STATUSES)).update(platform_id=resource.id)
    return new


def record_refused(model: Model, pk: int, *, code: str, detail: str, text: str = "",
                   old: str = Status.SENDING, claim_token: uuid.UUID | None = None) -> bool:
    """The platform refused the row for good (or it can never be sent)."""
    fields: dict[str, Any] = {"failure_code": code, "failure_detail": detail}
    if text:
        fields["last_error"] = text
    return move(model, pk, old, Status.REFUSED, fence=claim_token, **fields)


def record_retry(model: Model, pk: int, *, text: str, delay: float, claim_token: uuid.UUID,
                 maybe_sent: bool) -> bool:
    """The attempt failed in a way the next one may not: back to ``QUEUED``
    until ``delay`` seconds from now. ``maybe_sent`` when the attempt ended
    without an answer (the platform may have the row)."""
    now = timezone.now()
    fields: dict[str, Any] = {"maybe_sent": True} if maybe_sent else {}
    return move(model, pk, Status.SENDING, Status.QUEUED, now=now, fence=claim_token,
                last_error=text, send_started_at=None, next_attempt_at=now + timedelta(
                    seconds=delay), **fields)


def record_gave_up(model: Model, pk: int, *, text: str, claim_token: uuid.UUID,
                   maybe_sent: bool) -> bool:
    """The retries are used up: ``ERROR``, with the last error."""
    fields: dict[str, Any] = {"maybe_sent": True} if maybe_sent else {}
    return move(model, pk, Status.SENDING, Status.ERROR, fence=claim_token,
                last_error=text, **fields)


def requeue(notification: Notification) -> bool:
    """Queue an ``ERROR`` notification again as it is (its own idempotency
    key: its last attempt may have reached the platform)."""
    return move(Notification, notification.pk, Status.ERROR, Status.QUEUED, attempts=0,
                next_attempt_at=timezone.now())


def release_scheduled(pks: list[int], now: datetime) -> int:
    """Scheduled notifications whose time has come wait for a worker."""
    return len(move_many(Notification, pks, Status.SCHEDULED, Status.QUEUED, now=now,
                         next_attempt_at=now))


def expired_unsent(queryset: QuerySet[Notification], *, maybe_sent: bool
                   ) -> QuerySet[Notification]:
    """Rows of ``queryset`` whose ``expires_at`` has passed before the
    platform had them, as far as this site knows: waiting (``SCHEDULED``,
    ``QUEUED``), or ``SENDING`` under a claim whose lease ran out (its worker
    died mid-send). ``maybe_sent`` picks those whose last attempt may have
    reached the platform (every abandoned ``SENDING`` row is one) or those
    whose attempts surely did not."""
    now = timezone.now()
    lease_expired = now - timedelta(seconds=mmc_settings.SEND_LEASE)
    waiting = Q(status__in=(Status.SCHEDULED, Status.QUEUED), maybe_sent=maybe_sent)
    if maybe_sent:
        waiting |= Q(status=Status.SENDING, send_started_at__lt=lease_expired)
    return queryset.filter(waiting, platform_id__isnull=True, expires_at__lte=now)


def expire(notification_pk: int, old: str) -> bool:
    """``EXPIRED`` (``EXPIRED_UNSENT``): not sent before its expiry time."""
    return move(Notification, notification_pk, old, Status.EXPIRED,
                where=Q(platform_id__isnull=True), failure_code=FailureCode.EXPIRED_UNSENT,
                failure_detail="Not sent before its expiry time.", next_attempt_at=None)


def expire_unsent(queryset: QuerySet[Notification]) -> int:
    """Mark rows of ``queryset`` that were surely never sent and whose
    ``expires_at`` has passed as ``EXPIRED``: a late one-time code is worse
    than none. Returns how many. Those that may be on the platform are the
    outbox sweeper's to settle (it asks the platform first)."""
    rows = list(expired_unsent(queryset, maybe_sent=False).values_list("pk", "status"))
    return sum(expire(pk, old) for pk, old in rows)


def record_found(notification_pk: int, old: str, resource: Any) -> bool:
    """The platform has the notification although its answer never reached
    this site: store its id and status, whatever the row was waiting for."""
    new = resource.status if is_platform_status(resource.status) else Status.ACCEPTED
    return move(Notification, notification_pk, old, new, failure=resource.failure,
                where=Q(platform_id__isnull=True), platform_id=resource.id, maybe_sent=False,
                next_attempt_at=None, last_error="")


def cancel_notification(notification: Notification) -> bool:
    """Cancel a notification that has not been handed to the platform yet
    (scheduled, or waiting, and surely not sent). Returns whether it was
    cancelled."""
    return any(move(Notification, notification.pk, old, Status.CANCELLED,
                    where=Q(platform_id__isnull=True, maybe_sent=False), next_attempt_at=None)
               for old in (Status.SCHEDULED, Status.QUEUED))


# -- reports from the platform ---------------------------------------------------------


class Applied(str, Enum):
    """What a status report did to the row it is about."""

    #: No row has that platform id (yet).
    UNKNOWN = "unknown"
    #: The row moved forward.
    MOVED = "moved"
    #: A late or repeated report: nothing changed.
    UNCHANGED = "unchanged"


class WrongAgent(ValueError):
    """A report about a dialogue message arrived for another agent."""


def advance(model: Model, platform_id: str, new: str, failure: Any = None, *,
            agent_key: str | None = None) -> Applied:
    """Move the row with ``platform_id`` forward to ``new`` if that is forward
    (:func:`django_mmc.status.can_advance`). For a dialogue message,
    ``agent_key`` must be its dialogue's agent (else :class:`WrongAgent`)."""
    fields = ["pk", "status"] + (["dialogue__agent_key"] if agent_key else [])
    for _ in range(5):  # re-read if a concurrent update moved the row meanwhile
        row = model.objects.filter(platform_id=platform_id).values(*fields).first()
        if row is None:
            return Applied.UNKNOWN
        if agent_key and row["dialogue__agent_key"] != agent_key:
            raise WrongAgent(f"Message {platform_id[:64]} belongs to agent "
                             f"{row['dialogue__agent_key']!r}, not to {agent_key!r}.")
        if not can_advance(row["status"], new):
            return Applied.UNCHANGED
        if move(model, row["pk"], row["status"], new, failure=failure):
            return Applied.MOVED
    raise RuntimeError("The row kept changing while the status was applied.")


@dataclass(frozen=True)
class Report:
    """One row's status as the platform reported it in a poll."""

    pk: int
    old: str
    new: str
    failure: Any = None


def advance_polled(model: Model, reports: Iterable[Report], now: datetime) -> int:
    """Apply a poll's reports: one ``UPDATE`` per (old, new, failure) group,
    all stamped ``checked_at``; returns how many rows moved."""
    groups: dict[tuple[str, str, Any], list[int]] = {}
    for report in reports:
        if can_advance(report.old, report.new):
            groups.setdefault((report.old, report.new, report.failure), []).append(report.pk)
    return sum(len(move_many(model, pks, old, new, failure=failure, now=now, checked_at=now))
               for (old, new, failure), pks in groups.items())


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
    consent.apply_keyword(dialogue.recipient, message.channel_type, text, received_at)
    signals.send_after_commit(
        signals.message_received, Message, [message.pk],
        lambda row: {"message": row, "dialogue": row.dialogue},
        related=("dialogue", "dialogue__recipient"))
    return message


# -- dialogue messages -------------------------------------------------------------


def refuse_queued_messages(dialogue: Dialogue, code: str, detail: str) -> list[int]:
    """The dialogue will never open (or is gone): its waiting messages are
    refused; returns their pks."""
    pending = list(Message.objects.filter(
        dialogue=dialogue, direction=Direction.OUTBOUND, status=Status.QUEUED
    ).values_list("pk", flat=True))
    return move_many(Message, pending, Status.QUEUED, Status.REFUSED,
                     failure_code=code, failure_detail=detail)


def hand_messages_over(dialogue: Dialogue, holder: Dialogue) -> None:
    """Move ``dialogue``'s messages to ``holder``, the row that is the same
    platform dialogue, and close ``dialogue`` as merged into it."""
    now = timezone.now()
    Message.objects.filter(dialogue=dialogue).update(dialogue=holder)
    Dialogue.objects.filter(pk=dialogue.pk).update(
        status=DialogueStatus.CLOSED, closed_at=now, closed_by=ClosedBy.PLATFORM,
        last_error=f"Merged into dialogue {holder.pk}.", updated_at=now,
    )


# -- dialogues -------------------------------------------------------------------------


def _announce_opened(pk: int) -> None:
    signals.send_after_commit(signals.dialogue_opened, Dialogue, [pk],
                              lambda row: {"dialogue": row}, related=("recipient",))


def start_closing(dialogue: Dialogue, *, user: Any = None) -> bool:
    """Staff or business code asked to close: ``CLOSING`` until the platform
    has closed it (the close waits for queued messages)."""
    now = timezone.now()
    return bool(Dialogue.objects.filter(
        pk=dialogue.pk, status__in=(DialogueStatus.OPENING, DialogueStatus.OPEN)
    ).update(status=DialogueStatus.CLOSING, closed_by_user=user, next_attempt_at=now,
             updated_at=now))


def mark_dialogue_open(dialogue: Dialogue, platform_id: str, opened_at: datetime | None = None
                       ) -> str:
    """The platform opened ``dialogue`` (ours, being opened) as
    ``platform_id``. It is ``OPEN``, or stays ``CLOSING`` when a close was
    asked for meanwhile; fires ``dialogue_opened``. Returns the new status."""
    now = timezone.now()
    new_status = (DialogueStatus.CLOSING if dialogue.status == DialogueStatus.CLOSING
                  else DialogueStatus.OPEN)
    Dialogue.objects.filter(pk=dialogue.pk, status=dialogue.status).update(
        platform_id=platform_id, status=new_status, opened_at=opened_at or now,
        last_error="", attempts=0, updated_at=now,
    )
    dialogue.platform_id = platform_id
    dialogue.status = new_status
    _announce_opened(dialogue.pk)
    return new_status


def open_from_platform(*, agent_key: str, recipient: Any, channel_group: Any,
                       channel_type: str, platform_id: str, initiated_by: str | None,
                       opened_at: datetime) -> Dialogue:
    """A dialogue the platform opened that this site did not ask for (the
    recipient wrote first): stored ``OPEN``; fires ``dialogue_opened``."""
    dialogue = Dialogue.objects.create(
        agent_key=agent_key, recipient=recipient, channel_group=channel_group,
        channel_type=channel_type, platform_id=platform_id, status=DialogueStatus.OPEN,
        initiated_by=(initiated_by if initiated_by in InitiatedBy.values
                      else InitiatedBy.RECIPIENT),
        opened_at=opened_at,
    )
    _announce_opened(dialogue.pk)
    return dialogue


def mark_dialogue_failed(dialogue: Dialogue, status: str, *, code: str, detail: str,
                         text: str, messages_code: str, messages_detail: str) -> bool:
    """The dialogue will not open: ``status`` (``ERROR``, ``REFUSED`` or
    ``CONFLICT``) with why, and its queued messages refused."""
    updated = Dialogue.objects.filter(pk=dialogue.pk, status__in=ACTIVE_DIALOGUE_STATUSES).update(
        status=status, failure_code=code, failure_detail=detail, last_error=text,
        next_attempt_at=None, updated_at=timezone.now())
    if updated:
        refuse_queued_messages(dialogue, messages_code, messages_detail)
    return bool(updated)


def mark_dialogue_conflict(dialogue: Dialogue, *, holder_dialogue_id: str, holder_agent_id: str,
                           code: str, detail: str, text: str = "") -> bool:
    """Another agent holds the recipient: ``CONFLICT``, naming that agent and
    its dialogue; queued messages refused."""
    Dialogue.objects.filter(pk=dialogue.pk).update(
        conflict_dialogue_id=holder_dialogue_id, conflict_agent_id=holder_agent_id)
    return mark_dialogue_failed(
        dialogue, DialogueStatus.CONFLICT, code=code, detail=detail, text=text,
        messages_code=code or FailureCode.DIALOGUE_ACTIVE,
        messages_detail="Another agent holds this recipient.")


def mark_dialogue_closed(dialogue: Dialogue, *, closed_by: str, closed_at: datetime | None = None,
                         error: BaseException | str | None = None,
                         failure_code: str = "", failure_detail: str = "",
                         only_if: tuple[str, ...] = ACTIVE_DIALOGUE_STATUSES) -> bool:
    """The dialogue is closed (on the platform, or as far as this site can
    act on it): its queued messages are refused and ``dialogue_closed`` is
    sent after commit. Returns whether it was still active (in one of
    ``only_if``)."""
    now = timezone.now()
    last_error = describe(error) if isinstance(error, BaseException) else (error or "")
    changes: dict[str, Any] = {
        "status": DialogueStatus.CLOSED, "closed_at": closed_at or now,
        "closed_by": closed_by, "next_attempt_at": None, "updated_at": now,
        "last_error": last_error, "assigned_to": None,  # a closed dialogue waits for nobody
    }
    if failure_code:
        changes.update(failure_code=failure_code, failure_detail=failure_detail)
    updated = Dialogue.objects.filter(pk=dialogue.pk, status__in=only_if).update(**changes)
    if updated:
        refuse_queued_messages(dialogue, FailureCode.DIALOGUE_CLOSED, "The dialogue closed.")
        signals.send_after_commit(signals.dialogue_closed, Dialogue, [dialogue.pk],
                                  lambda row: {"dialogue": row, "closed_by": closed_by},
                                  related=("recipient",))
    return bool(updated)


def end_closing(dialogue: Dialogue) -> bool:
    """A new dialogue with the recipient was asked for while this one's close
    is still pending on the platform: it ends here (``CLOSED``, closed by
    us), so a close that keeps failing never keeps the customer from a new
    dialogue. Returns whether it was still ``CLOSING``."""
    return mark_dialogue_closed(
        dialogue, closed_by=ClosedBy.AGENT, only_if=(DialogueStatus.CLOSING,),
        error="Ended here: a new dialogue with the recipient was asked for while the "
              "platform's close was still pending.")


def take_over_platform_id(holder: Dialogue, dialogue: Dialogue) -> None:
    """The platform says ``holder``'s platform dialogue is open and
    ``dialogue`` (ours, being opened) is it, but ``holder`` is closed here: a
    closed row is never reopened, so ``dialogue`` takes the platform id over
    and ``holder`` stays closed, its history kept."""
    Dialogue.objects.filter(pk=holder.pk).exclude(status__in=ACTIVE_DIALOGUE_STATUSES).update(
        platform_id=None, last_error=f"Its platform dialogue went on as dialogue {dialogue.pk}.",
        updated_at=timezone.now())


def store_historical_dialogue(*, agent_key: str, recipient: Any, channel_group: Any,
                              channel_type: str, platform_id: str, initiated_by: str | None,
                              occurred_at: datetime) -> Dialogue:
    """A late event about a platform dialogue this site never knew, older
    than a dialogue it does know with the recipient: kept as a ``CLOSED``
    row of its own (so what the recipient wrote in it is not lost), and
    nothing live changes. No ``dialogue_opened`` or ``dialogue_closed``."""
    return Dialogue.objects.create(
        agent_key=agent_key, recipient=recipient, channel_group=channel_group,
        channel_type=channel_type, platform_id=platform_id, status=DialogueStatus.CLOSED,
        initiated_by=(initiated_by if initiated_by in InitiatedBy.values
                      else InitiatedBy.RECIPIENT),
        opened_at=occurred_at, closed_at=occurred_at, closed_by=ClosedBy.PLATFORM,
        last_error="Stored from a late event, older than a dialogue already known here.",
    )
