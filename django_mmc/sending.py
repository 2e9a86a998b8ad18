"""The worker side of sending: plain functions that the Celery tasks (and
management commands) call.

Exactly once, in three parts:

* A worker *claims* a row with one conditional ``UPDATE`` (``QUEUED`` ->
  ``SENDING``), so two workers, or a task delivered twice, never both send it.
  A row stuck in ``SENDING`` (its worker died) can be claimed again by the
  redelivered task itself, or by anyone once its lease has run out.
* Every attempt sends the row's own ``Idempotency-Key``: when an attempt's
  outcome is unknown (timeout, crash after the platform answered), the next
  attempt gets the platform's first answer back instead of a second message.
* The result is written with another conditional ``UPDATE``.

A send costs three queries: claim, load, record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.utils.time import get_exponential_backoff_interval
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from . import contract, dispatch, signals
from .client import get_client
from .conf import mmc_settings
from .exceptions import (
    MMCAPIError,
    MMCConfigurationError,
    MMCConflictError,
    MMCError,
    MMCNotFoundError,
    MMCPermanentError,
)
from .models import Dialogue, Message, Notification, WebhookEvent
from .status import (
    STATUS_VALUES,
    TIMESTAMP_FIELDS,
    DialogueStatus,
    Direction,
    Status,
)

logger = logging.getLogger("django_mmc.sending")


class RetryLater(Exception):
    """Raised to the task: run again in ``countdown`` seconds."""

    def __init__(self, countdown: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {countdown}s")
        self.countdown = countdown


@dataclass(frozen=True)
class Outcome:
    """What one attempt did, for logs, tests and the task's return value."""

    status: str
    detail: str = ""


def retry_delay(attempt: int, error: BaseException | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: the platform's ``Retry-After``
    when it sent one (capped), otherwise Celery's exponential backoff with
    full jitter."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, mmc_settings.RETRY_AFTER_MAX))
    return float(get_exponential_backoff_interval(
        factor=mmc_settings.RETRY_BACKOFF, retries=max(0, attempt - 1),
        maximum=mmc_settings.RETRY_BACKOFF_MAX, full_jitter=True,
    )) or 0.1


def status_changes(old: str, new: str, now: Any, failure: Any = None) -> dict[str, Any]:
    """The field updates for moving a row from ``old`` to ``new``."""
    changes: dict[str, Any] = {"status": new, "status_changed_at": now, "updated_at": now}
    stamp = TIMESTAMP_FIELDS.get(Status(new)) if new in STATUS_VALUES else None
    if stamp:
        changes[stamp] = now
    if failure is not None:
        changes["failure_code"] = failure.code
        changes["failure_detail"] = failure.detail
    return changes


def fire_status_changed(model: type, pk: int, old: str, new: str) -> None:
    """Send the status signal after commit, with the row as it is then."""
    fire_statuses_changed(model, [pk], old, new)


def fire_statuses_changed(model: type, pks: list[int], old: str, new: str) -> None:
    """The same for many rows that made the same move: one query after
    commit for all of them, and none at all when nobody listens."""
    signal, name = (
        (signals.notification_status_changed, "notification") if model is Notification
        else (signals.message_status_changed, "message")
    )
    if pks and signal.has_listeners(model):
        def send() -> None:
            for instance in model.objects.in_bulk(pks).values():
                signal.send(sender=model, **{name: instance}, old_status=old, new_status=new)

        dispatch.on_commit(send)
    if model is Notification and new == Status.FAILED:
        for pk in pks:
            dispatch.on_commit(start_fallback, pk)


# -- claiming ------------------------------------------------------------------


def claim(model: type, pk: int | list[int], task_id: str | None, *,
          extra: Q | None = None) -> int:
    """Atomically move row ``pk`` (or the rows of a list of pks) to
    ``SENDING`` where nobody else is sending it; returns how many."""
    now = timezone.now()
    lease_expired = now - timedelta(seconds=mmc_settings.SEND_LEASE)
    mine_or_abandoned = Q(send_started_at__lt=lease_expired)
    if task_id:
        mine_or_abandoned |= Q(send_task_id=task_id)
    condition = Q(status=Status.QUEUED) | (Q(status=Status.SENDING) & mine_or_abandoned)
    rows = Q(pk__in=pk) if isinstance(pk, list) else Q(pk=pk)
    query = model.objects.filter(condition, rows, platform_id__isnull=True)
    if extra is not None:
        query = query.filter(extra)
    return query.update(
        status=Status.SENDING, attempts=F("attempts") + 1, send_started_at=now,
        send_task_id=task_id or "", next_attempt_at=None, updated_at=now,
    )


def release(model: type, pk: int) -> None:
    """Give a claimed row back without counting the attempt (it could not be
    sent yet for a reason of ours, not the platform's)."""
    model.objects.filter(pk=pk, status=Status.SENDING).update(
        status=Status.QUEUED, attempts=F("attempts") - 1, send_started_at=None,
        next_attempt_at=timezone.now(),
    )


#: The SQL of :func:`update_in_status` by model, database and shape of the
#: change; ``""`` where the ORM's statement could not be reused.
_UPDATE_SQL: dict[tuple[Any, ...], str] = {}


def update_in_status(model: type, pk: int, status: str, changes: dict[str, Any]) -> int:
    """``model.objects.filter(pk=pk, status=status).update(**changes)``, for
    the statement run once per notification sent: Django compiles the SQL
    of each shape of change once, and later calls only bind new values
    (building and compiling the query cost more than running it). Plain
    values only; the row count is returned as ``update()`` returns it."""
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    key = (model, alias, tuple((name, value is None) for name, value in changes.items()))
    params = [meta.get_field(name).get_db_prep_save(value, connection)
              for name, value in changes.items() if value is not None]
    params += [meta.pk.get_db_prep_value(pk, connection), status]
    sql = _UPDATE_SQL.get(key)
    if sql is None:
        query = model.objects.using(alias).filter(pk=pk, status=status).query.chain(UpdateQuery)
        query.add_update_values(changes)
        sql, compiled = query.get_compiler(alias).as_sql()
        # Reused only if binding the values ourselves gives what Django bound.
        _UPDATE_SQL[key] = sql = sql if list(compiled) == params else ""
    if not sql:
        return model.objects.using(alias).filter(pk=pk, status=status).update(**changes)
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def record_success(model: type, row: Any, resource: Any) -> Outcome:
    """Store the platform id and status the platform answered with."""
    now = timezone.now()
    new = resource.status if resource.status in STATUS_VALUES else Status.ACCEPTED
    changes = status_changes(Status.SENDING, new, now, resource.failure)
    changes.update(platform_id=resource.id, last_error="", send_task_id="")
    try:
        updated = update_in_status(model, row.pk, Status.SENDING, changes)
    except IntegrityError:
        # Another row already holds this platform id: only possible if the
        # same idempotency key was used twice, which claim() prevents.
        logger.error("django_mmc: platform id %s already stored for another %s",
                     resource.id, model._meta.verbose_name)
        raise
    if not updated:  # moved meanwhile (admin, a webhook): keep at least the id
        model.objects.filter(pk=row.pk, platform_id__isnull=True).update(platform_id=resource.id)
    else:
        fire_status_changed(model, row.pk, Status.SENDING, new)
    return Outcome(new, resource.id)


def record_failure(model: type, row: Any, error: BaseException) -> Outcome:
    """Decide what an error means for the row: retry later, or stop here.

    Refusals (4xx) stop at ``REFUSED`` with the platform's code and detail.
    Transient errors go back to ``QUEUED`` and raise :class:`RetryLater`; when
    the retries are used up the row stops at ``ERROR``. Nothing is dropped
    without the row saying why."""
    now = timezone.now()
    text = _describe(error)
    if isinstance(error, MMCAPIError) and not error.retryable and not isinstance(
        error, MMCConfigurationError
    ) and error.status_code and 400 <= error.status_code < 500 and error.status_code != 401:
        changes = status_changes(Status.SENDING, Status.REFUSED, now)
        changes.update(failure_code=error.code or f"HTTP_{error.status_code}",
                       failure_detail=error.detail or error.title or text, last_error=text)
        if model.objects.filter(pk=row.pk, status=Status.SENDING).update(**changes):
            fire_status_changed(model, row.pk, Status.SENDING, Status.REFUSED)
        logger.warning("django_mmc: %s %s refused: %s", model._meta.model_name, row.pk, text)
        return Outcome(Status.REFUSED, text)

    retryable = getattr(error, "retryable", False) or not isinstance(error, MMCError)
    if retryable and row.attempts <= mmc_settings.MAX_RETRIES:
        delay = retry_delay(row.attempts, error)
        model.objects.filter(pk=row.pk, status=Status.SENDING).update(
            status=Status.QUEUED, last_error=text, send_started_at=None,
            next_attempt_at=now + timedelta(seconds=delay), updated_at=now,
        )
        logger.info("django_mmc: %s %s attempt %s failed (%s); retrying in %.1fs",
                    model._meta.model_name, row.pk, row.attempts, text, delay)
        raise RetryLater(delay, text)

    changes = status_changes(Status.SENDING, Status.ERROR, now)
    changes.update(last_error=text)
    if model.objects.filter(pk=row.pk, status=Status.SENDING).update(**changes):
        fire_status_changed(model, row.pk, Status.SENDING, Status.ERROR)
    logger.error("django_mmc: %s %s not sent after %s attempts: %s",
                 model._meta.model_name, row.pk, row.attempts, text)
    return Outcome(Status.ERROR, text)


def _describe(error: BaseException) -> str:
    if isinstance(error, MMCError):
        return f"{type(error).__name__}: {error}"[:2000]
    # Not ours: keep the type and message, never locals or request headers.
    return f"{type(error).__name__}: {error}"[:2000]


# -- notifications -----------------------------------------------------------


def _not_expired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def send_notification(pk: int, task_id: str | None = None) -> Outcome:
    """Send notification ``pk`` if it still needs sending and has not expired."""
    if not claim(Notification, pk, task_id, extra=_not_expired()):
        if expire_unsent(Notification.objects.filter(pk=pk)):
            return Outcome(Status.EXPIRED, "expired before it could be sent")
        return Outcome("skipped", "not waiting to be sent, or someone else is sending it")
    row = Notification.objects.select_related("recipient", "template", "channel_group").get(pk=pk)
    return _send_claimed(row)


def send_notification_batch(pks: list[int], task_id: str) -> tuple[dict[str, int],
                                                                     list[tuple[int, float]]]:
    """Send a few notifications of a campaign: one claim and one load for all
    of them, then one request and one record each. Returns the outcomes
    counted by status, and ``(pk, countdown)`` for each that must retry."""
    outcomes: dict[str, int] = {}
    retries: list[tuple[int, float]] = []
    claimed = claim(Notification, list(pks), task_id, extra=_not_expired())
    if claimed < len(pks):
        expired = expire_unsent(Notification.objects.filter(pk__in=pks))
        if expired:
            outcomes[Status.EXPIRED] = expired
    rows = list(Notification.objects.select_related("recipient", "template", "channel_group")
                .filter(pk__in=pks, status=Status.SENDING, send_task_id=task_id,
                        platform_id__isnull=True).order_by("pk")) if claimed else []
    for row in rows:
        try:
            outcome = _send_claimed(row)
        except RetryLater as later:
            retries.append((row.pk, later.countdown))
            outcome = Outcome("retrying")
        outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
    return outcomes, retries


def _send_claimed(row: Notification) -> Outcome:
    try:
        resource = get_client().create_notification(
            recipient=row.recipient.phone_number,
            template_id=row.template.platform_id,
            channel_group_id=row.channel_group.platform_id,
            channel_type=row.channel_type,
            context=row.context,
            idempotency_key=str(row.idempotency_key),
        )
    except Exception as error:  # noqa: BLE001 - every outcome is recorded on the row
        return record_failure(Notification, row, error)
    return record_success(Notification, row, resource)


# -- dialogue messages ---------------------------------------------------------


def _no_earlier_unsent() -> Q:
    earlier = Message.objects.filter(
        dialogue=OuterRef("dialogue"), pk__lt=OuterRef("pk"),
        direction=Direction.OUTBOUND, status__in=(Status.QUEUED, Status.SENDING),
    )
    return ~Q(Exists(earlier))


def send_message(pk: int, task_id: str | None = None) -> Outcome:
    """Send dialogue message ``pk``: once its dialogue is open on the
    platform, and after every earlier message of the dialogue."""
    if not claim(Message, pk, task_id, extra=_no_earlier_unsent()):
        return Outcome("skipped", "not next in its dialogue, or already being sent")
    row = Message.objects.select_related("dialogue", "template").get(pk=pk)
    dialogue = row.dialogue
    if dialogue.status in (DialogueStatus.OPENING,) or (
        dialogue.platform_id is None and dialogue.status == DialogueStatus.CLOSING
    ):
        release(Message, pk)  # open_dialogue enqueues it once the dialogue is open
        return Outcome("waiting", "the dialogue is not open on the platform yet")
    if dialogue.platform_id is None or dialogue.status not in (
        DialogueStatus.OPEN, DialogueStatus.CLOSING
    ):
        _refuse_for_dialogue(row, dialogue)
        return Outcome(Status.REFUSED, "the dialogue is not open")
    agent = mmc_settings.get_agent(dialogue.agent_key)
    try:
        resource = get_client().send_message(
            agent.id, dialogue.platform_id,
            text=row.text or None,
            template_id=row.template.platform_id if row.template_id else None,
            context=row.context if row.template_id else None,
            file_ids=[f["id"] for f in row.files],
            channel_type=row.channel_type or None,
            idempotency_key=str(row.idempotency_key),
        )
    except MMCConflictError as error:
        outcome = record_failure(Message, row, error)
        if error.code == contract.ERROR_DIALOGUE_CLOSED:
            _mark_closed(dialogue, closed_by="PLATFORM")
        return outcome
    except Exception as error:  # noqa: BLE001
        outcome = record_failure(Message, row, error)
        _enqueue_next_message(dialogue.pk)
        return outcome
    outcome = record_success(Message, row, resource)
    _enqueue_next_message(dialogue.pk)
    return outcome


def _refuse_for_dialogue(row: Message, dialogue: Dialogue) -> None:
    now = timezone.now()
    changes = status_changes(Status.SENDING, Status.REFUSED, now)
    changes.update(failure_code=contract.ERROR_DIALOGUE_CLOSED,
                   failure_detail=f"The dialogue is {dialogue.get_status_display()}.")
    if Message.objects.filter(pk=row.pk, status=Status.SENDING).update(**changes):
        fire_status_changed(Message, row.pk, Status.SENDING, Status.REFUSED)


def _enqueue_next_message(dialogue_pk: int) -> None:
    next_pk = (
        Message.objects.filter(dialogue_id=dialogue_pk, direction=Direction.OUTBOUND,
                               status=Status.QUEUED)
        .order_by("pk").values_list("pk", flat=True).first()
    )
    if next_pk is not None:
        dispatch.enqueue("send_message", next_pk)


def refuse_queued_messages(dialogue: Dialogue, code: str, detail: str) -> None:
    """The dialogue will never open (or is gone): its waiting messages are refused."""
    now = timezone.now()
    pending = list(Message.objects.filter(
        dialogue=dialogue, direction=Direction.OUTBOUND, status=Status.QUEUED
    ).values_list("pk", flat=True))
    if not pending:
        return
    changes = status_changes(Status.QUEUED, Status.REFUSED, now)
    changes.update(failure_code=code, failure_detail=detail)
    Message.objects.filter(pk__in=pending, status=Status.QUEUED).update(**changes)
    fire_statuses_changed(Message, pending, Status.QUEUED, Status.REFUSED)


# -- dialogues -----------------------------------------------------------------


def open_dialogue(pk: int, task_id: str | None = None) -> Outcome:
    """Open dialogue ``pk`` on the platform.

    The row is locked for the call (``SELECT ... FOR UPDATE SKIP LOCKED``): a
    second worker skips it, and a worker that dies releases the lock with its
    connection so the redelivered task can go on, with the same key."""
    with transaction.atomic():
        dialogue = (
            Dialogue.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient", "channel_group")
            .filter(pk=pk, platform_id__isnull=True,
                    status__in=(DialogueStatus.OPENING, DialogueStatus.CLOSING))
            .first()
        )
        if dialogue is None:
            return Outcome("skipped", "not waiting to be opened, or being opened")
        Dialogue.objects.filter(pk=pk).update(attempts=F("attempts") + 1, next_attempt_at=None)
        dialogue.attempts += 1
        agent = mmc_settings.get_agent(dialogue.agent_key)
        try:
            resource = get_client().create_dialogue(
                agent.id,
                recipient=dialogue.recipient.phone_number,
                channel_group_id=dialogue.channel_group.platform_id,
                channel_type=dialogue.channel_type,
                idempotency_key=str(dialogue.idempotency_key),
            )
        except MMCConflictError as error:
            if (error.code == contract.ERROR_DIALOGUE_ACTIVE and error.dialogue_id
                    and error.dialogue_agent_id == agent.id):
                return _adopt(dialogue, error.dialogue_id)
            return _conflict(dialogue, error)
        except Exception as error:  # noqa: BLE001
            try:
                return _dialogue_failure(dialogue, error)
            except RetryLater as retry_later:
                retry = retry_later  # raised after the commit, which keeps the bookkeeping
        else:
            return _opened(dialogue, resource.id, resource.opened_at)
    raise retry


def _opened(dialogue: Dialogue, platform_id: str, opened_at: Any = None) -> Outcome:
    now = timezone.now()
    holder = Dialogue.objects.filter(platform_id=platform_id).exclude(pk=dialogue.pk).first()
    if holder is not None and (holder.recipient_id, holder.channel_group_id) != (
            dialogue.recipient_id, dialogue.channel_group_id):
        # The platform gave an id we already hold for someone else: never mix
        # two conversations up; stop here, loudly.
        logger.error("django_mmc: platform dialogue id %s is already stored for dialogue %s "
                     "(another recipient); dialogue %s not opened", platform_id, holder.pk,
                     dialogue.pk)
        Dialogue.objects.filter(pk=dialogue.pk).update(
            status=DialogueStatus.ERROR, last_error=(
                f"The platform answered with dialogue id {platform_id}, which is already "
                f"stored for dialogue {holder.pk} of another recipient."), updated_at=now)
        refuse_queued_messages(dialogue, "DIALOGUE_ID_CONFLICT",
                               "The dialogue could not be opened.")
        return Outcome(DialogueStatus.ERROR, platform_id)
    if holder is not None:
        # A webhook (the platform's dialogue.opened) created the row first:
        # that row is the dialogue; this one hands its messages over.
        Message.objects.filter(dialogue=dialogue).update(dialogue=holder)
        Dialogue.objects.filter(pk=dialogue.pk).update(
            status=DialogueStatus.CLOSED, closed_at=now, closed_by="PLATFORM",
            last_error=f"Merged into dialogue {holder.pk}.",
        )
        _enqueue_next_message(holder.pk)
        return Outcome(DialogueStatus.OPEN, platform_id)
    new_status = (DialogueStatus.CLOSING if dialogue.status == DialogueStatus.CLOSING
                  else DialogueStatus.OPEN)
    Dialogue.objects.filter(pk=dialogue.pk).update(
        platform_id=platform_id, status=new_status, opened_at=opened_at or now,
        last_error="", updated_at=now,
    )
    dialogue.platform_id = platform_id
    dialogue.status = new_status
    dispatch.on_commit(_fire_dialogue_opened, dialogue.pk)
    dispatch.on_commit(_enqueue_next_message, dialogue.pk)
    if new_status == DialogueStatus.CLOSING:
        dispatch.enqueue_on_commit("close_dialogue", dialogue.pk)
    return Outcome(DialogueStatus.OPEN, platform_id)


def _fire_dialogue_opened(pk: int) -> None:
    dialogue = Dialogue.objects.filter(pk=pk).select_related("recipient").first()
    if dialogue is not None:
        signals.dialogue_opened.send(sender=Dialogue, dialogue=dialogue)


def _adopt(dialogue: Dialogue, platform_id: str) -> Outcome:
    """The platform says this agent already holds the recipient: use that dialogue."""
    logger.info("django_mmc: adopting open dialogue %s for dialogue %s", platform_id, dialogue.pk)
    return _opened(dialogue, platform_id)


def _conflict(dialogue: Dialogue, error: MMCConflictError) -> Outcome:
    Dialogue.objects.filter(pk=dialogue.pk).update(
        status=DialogueStatus.CONFLICT, conflict_dialogue_id=error.dialogue_id or "",
        conflict_agent_id=error.dialogue_agent_id or "", failure_code=error.code or "",
        failure_detail=error.detail or "", last_error=_describe(error),
        updated_at=timezone.now(),
    )
    refuse_queued_messages(dialogue, error.code or "DIALOGUE_ACTIVE",
                           "Another agent holds this recipient.")
    logger.warning("django_mmc: dialogue %s not opened: agent %s holds the recipient",
                   dialogue.pk, error.dialogue_agent_id)
    return Outcome(DialogueStatus.CONFLICT, error.dialogue_agent_id or "")


def _dialogue_failure(dialogue: Dialogue, error: BaseException) -> Outcome:
    now = timezone.now()
    text = _describe(error)
    retryable = getattr(error, "retryable", False) or not isinstance(error, MMCError)
    if retryable and dialogue.attempts <= mmc_settings.MAX_RETRIES:
        delay = retry_delay(dialogue.attempts, error)
        Dialogue.objects.filter(pk=dialogue.pk).update(
            last_error=text, next_attempt_at=now + timedelta(seconds=delay)
        )
        raise RetryLater(delay, text)
    status = DialogueStatus.ERROR if retryable or isinstance(
        error, MMCConfigurationError) else DialogueStatus.REFUSED
    Dialogue.objects.filter(pk=dialogue.pk).update(
        status=status, last_error=text, updated_at=now,
        failure_code=getattr(error, "code", None) or "", failure_detail=getattr(
            error, "detail", None) or "",
    )
    refuse_queued_messages(dialogue, getattr(error, "code", None) or "DIALOGUE_NOT_OPENED",
                           "The dialogue could not be opened.")
    return Outcome(status, text)


def close_dialogue(pk: int, task_id: str | None = None) -> Outcome:
    """Close dialogue ``pk`` on the platform, after its queued messages."""
    dialogue = Dialogue.objects.filter(pk=pk, status=DialogueStatus.CLOSING).first()
    if dialogue is None:
        return Outcome("skipped", "not closing")
    if dialogue.platform_id is None:
        # Still being opened: open_dialogue() enqueues the close once it is.
        return Outcome("waiting", "the dialogue is not open on the platform yet")
    unsent = Message.objects.filter(dialogue=dialogue, direction=Direction.OUTBOUND,
                                    status__in=(Status.QUEUED, Status.SENDING)).exists()
    if unsent:
        raise RetryLater(1.0, "messages are still being sent")
    agent = mmc_settings.get_agent(dialogue.agent_key)
    try:
        resource = get_client().close_dialogue(agent.id, dialogue.platform_id)
    except (MMCNotFoundError, MMCPermanentError) as error:
        # Not ours any more, or gone: it is closed as far as we can act on it.
        _mark_closed(dialogue, closed_by="PLATFORM", error=error)
        return Outcome(DialogueStatus.CLOSED, _describe(error))
    except Exception as error:  # noqa: BLE001
        dialogue.attempts += 1
        Dialogue.objects.filter(pk=pk).update(attempts=F("attempts") + 1)
        if getattr(error, "retryable", False) and dialogue.attempts <= mmc_settings.MAX_RETRIES:
            delay = retry_delay(dialogue.attempts, error)
            Dialogue.objects.filter(pk=pk).update(
                last_error=_describe(error),
                next_attempt_at=timezone.now() + timedelta(seconds=delay))
            raise RetryLater(delay, _describe(error)) from None
        Dialogue.objects.filter(pk=pk).update(last_error=_describe(error))
        return Outcome("error", _describe(error))
    _mark_closed(dialogue, closed_by=resource.closed_by or "AGENT", closed_at=resource.closed_at)
    return Outcome(DialogueStatus.CLOSED)


def _mark_closed(dialogue: Dialogue, *, closed_by: str, closed_at: Any = None,
                 error: BaseException | None = None) -> bool:
    now = timezone.now()
    updated = Dialogue.objects.filter(
        pk=dialogue.pk, status__in=(DialogueStatus.OPENING, DialogueStatus.OPEN,
                                    DialogueStatus.CLOSING)
    ).update(
        status=DialogueStatus.CLOSED, closed_at=closed_at or now, closed_by=closed_by,
        next_attempt_at=None, updated_at=now,
        last_error=_describe(error) if error else "",
    )
    if updated:
        refuse_queued_messages(dialogue, contract.ERROR_DIALOGUE_CLOSED, "The dialogue closed.")

        def fire() -> None:
            fresh = Dialogue.objects.filter(pk=dialogue.pk).select_related("recipient").first()
            if fresh is not None:
                signals.dialogue_closed.send(sender=Dialogue, dialogue=fresh,
                                             closed_by=closed_by)

        dispatch.on_commit(fire)
    return bool(updated)


# -- the outbox sweeper -----------------------------------------------------------


def expire_unsent(queryset: Any) -> int:
    """Mark rows of ``queryset`` that were never sent and whose
    ``expires_at`` has passed as ``EXPIRED``: a late one-time code is worse
    than none. Returns how many."""
    now = timezone.now()
    pks = list(queryset.filter(
        status__in=(Status.SCHEDULED, Status.QUEUED), platform_id__isnull=True,
        expires_at__lte=now,
    ).values_list("pk", "status"))
    expired = 0
    for pk, old in pks:
        changes = status_changes(old, Status.EXPIRED, now)
        changes.update(failure_code="EXPIRED_UNSENT",
                       failure_detail="Not sent before its expiry time.", next_attempt_at=None)
        if Notification.objects.filter(pk=pk, status=old).update(**changes):
            fire_status_changed(Notification, pk, old, Status.EXPIRED)
            expired += 1
    return expired


def sweep_outbox(limit: int = 1000) -> dict[str, int]:
    """Enqueue rows that should have been sent by now and were not (the
    process died between commit and enqueue, the broker was down, a worker
    was killed mid-send), release scheduled notifications that are due and
    expire those whose time has passed. Run periodically (its interval is the
    precision of ``send_at``); returns counts per kind."""
    now = timezone.now()
    due = now - timedelta(seconds=mmc_settings.OUTBOX_DELAY)
    lease_expired = now - timedelta(seconds=mmc_settings.SEND_LEASE)
    counts = {"expired": expire_unsent(Notification.objects.all())}

    scheduled = list(Notification.objects.filter(
        status=Status.SCHEDULED, send_at__lte=now).values_list("pk", flat=True)[:limit])
    released = Notification.objects.filter(pk__in=scheduled, status=Status.SCHEDULED).update(
        status=Status.QUEUED, next_attempt_at=now, status_changed_at=now)
    counts["scheduled"] = released

    for model, kind in ((Notification, "send_notification"), (Message, "send_message")):
        stuck = model.objects.filter(
            Q(status=Status.QUEUED, next_attempt_at__lt=due)
            | Q(status=Status.SENDING, send_started_at__lt=lease_expired),
            platform_id__isnull=True,
        )
        if model is Message:
            stuck = stuck.filter(direction=Direction.OUTBOUND)
            rows = [(pk, None) for pk in
                    stuck.order_by("next_attempt_at").values_list("pk", flat=True)[:limit]]
        else:
            stuck = stuck | Notification.objects.filter(pk__in=scheduled, status=Status.QUEUED)
            rows = list(stuck.order_by("next_attempt_at").values_list("pk", "priority")[:limit])
        model.objects.filter(pk__in=[pk for pk, _ in rows], status=Status.QUEUED).update(
            next_attempt_at=now)
        counts[kind] = sum(dispatch.enqueue(kind, pk, priority=priority)
                           for pk, priority in rows)
    for status, kind in ((DialogueStatus.OPENING, "open_dialogue"),
                         (DialogueStatus.CLOSING, "close_dialogue")):
        pks = list(Dialogue.objects.filter(status=status, next_attempt_at__lt=due)
                   .values_list("pk", flat=True)[:limit])
        Dialogue.objects.filter(pk__in=pks).update(next_attempt_at=now)
        counts[kind] = dispatch.enqueue_many(kind, pks)
    events = list(WebhookEvent.objects.filter(
        state__in=(WebhookEvent.State.PENDING, WebhookEvent.State.WAITING),
        received_at__lt=due, enqueued_at__lt=due,
    ).order_by("received_at").values_list("pk", flat=True)[:limit])
    WebhookEvent.objects.filter(pk__in=events).update(enqueued_at=now)
    counts["process_event"] = dispatch.enqueue_many("process_event", events)
    return counts


# -- channel fallback ----------------------------------------------------------


def start_fallback(pk: int) -> Notification | None:
    """After notification ``pk`` failed in a way another channel can fix
    (``MMC['FALLBACK_FAILURE_CODES']``), send one follow-up on the next
    channel type of its chain that its group has and its template allows.

    Never after the notification was delivered, and never twice for one
    notification (a database constraint): at most one message of a chain
    reaches the recipient."""
    row = (Notification.objects.select_related("recipient", "template", "channel_group")
           .filter(pk=pk).first())
    if (row is None or row.status != Status.FAILED or row.delivered_at or row.read_at
            or not row.fallback_channel_types
            or row.failure_code not in mmc_settings.FALLBACK_FAILURE_CODES):
        return None
    available = set(row.channel_group.channel_types()) & set(row.template.channel_types)
    chain = list(row.fallback_channel_types)
    while chain and (chain[0] not in available or (
            row.recipient.has_opted_out(chain[0]) and not row.transactional)):
        chain.pop(0)
    if not chain:
        return None
    try:
        with transaction.atomic():
            follow_up = Notification.objects.create(
                recipient=row.recipient, template=row.template, channel_group=row.channel_group,
                channel_type=chain[0], context=row.context, created_by=row.created_by,
                priority=row.priority, expires_at=row.expires_at,
                transactional=row.transactional, fallback_channel_types=chain[1:],
                fallback_of=row, next_attempt_at=timezone.now(),
            )
            dispatch.enqueue_on_commit("send_notification", follow_up.pk, priority=row.priority)
    except IntegrityError:
        return None  # another process started this fallback already
    logger.info("django_mmc: notification %s failed on %s (%s); falling back to %s as %s",
                row.pk, row.channel_type, row.failure_code, chain[0], follow_up.pk)
    return follow_up


def cancel_notification(notification: Notification) -> bool:
    """Cancel a notification that has not been handed to the platform yet
    (scheduled, or waiting). Returns whether it was cancelled."""
    now = timezone.now()
    for old in (Status.SCHEDULED, Status.QUEUED):
        changes = status_changes(old, Status.CANCELLED, now)
        changes["next_attempt_at"] = None
        if Notification.objects.filter(pk=notification.pk, status=old,
                                       platform_id__isnull=True).update(**changes):
            fire_status_changed(Notification, notification.pk, old, Status.CANCELLED)
            return True
    return False
