"""Dialogue work: opening on the platform, delivering messages in order,
closing.

A dialogue is opened by one worker at a time (its row is locked for the call,
``SELECT ... FOR UPDATE SKIP LOCKED``); its messages are delivered one after
another, each only once every earlier message of the dialogue has left; the
close waits for them.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from .. import dispatch, transitions
from ..client import get_client
from ..conf import mmc_settings
from ..dispatch import Work, database
from ..exceptions import MMCConflictError
from ..models import Dialogue, Message
from ..policy import Action, Outcome, Result, RetryLater, decide, describe
from ..status import ClosedBy, DialogueStatus, Direction, FailureCode, Status
from .attempts import record_failure

logger = logging.getLogger("django_mmc.sending")


# -- messages ------------------------------------------------------------------------


def no_earlier_unsent() -> Q:
    earlier = Message.objects.filter(
        dialogue=OuterRef("dialogue"), pk__lt=OuterRef("pk"),
        direction=Direction.OUTBOUND, status__in=(Status.QUEUED, Status.SENDING),
    )
    return ~Q(Exists(earlier))


def deliver_message(pk: int, task_id: str | None = None) -> Result:
    """Send dialogue message ``pk``: once its dialogue is open on the
    platform, and after every earlier message of the dialogue."""
    claim = transitions.claim(Message, pk, task_id, extra=no_earlier_unsent())
    if not claim:
        return Result(Outcome.SKIPPED, "not next in its dialogue, or already being sent")
    row = Message.objects.select_related("dialogue", "template").get(pk=pk)
    dialogue = row.dialogue
    if dialogue.status == DialogueStatus.OPENING or (
        dialogue.platform_id is None and dialogue.status == DialogueStatus.CLOSING
    ):
        transitions.release(Message, pk, claim.token)  # enqueued again once it is open
        return Result(Outcome.WAITING, "the dialogue is not open on the platform yet")
    if dialogue.platform_id is None or dialogue.status not in (
        DialogueStatus.OPEN, DialogueStatus.CLOSING
    ):
        transitions.record_refused(
            Message, pk, code=FailureCode.DIALOGUE_CLOSED,
            detail=f"The dialogue is {dialogue.get_status_display()}.", claim_token=claim.token)
        return Result(Outcome.REFUSED, "the dialogue is not open")
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
        result = record_failure(Message, row, error, claim)
        if error.code == FailureCode.DIALOGUE_CLOSED:
            transitions.mark_dialogue_closed(dialogue, closed_by=ClosedBy.PLATFORM)
        return result
    except Exception as error:  # noqa: BLE001 - every outcome is recorded on the row
        result = record_failure(Message, row, error, claim)
        enqueue_next_message(dialogue.pk)
        return result
    status = transitions.record_sent(Message, pk, resource, claim.token)
    enqueue_next_message(dialogue.pk)
    return Result(Outcome.DONE, f"{status} {resource.id}")


def enqueue_next_message(dialogue_pk: int) -> None:
    """Hand the dialogue's next waiting message to a worker."""
    next_pk = (
        Message.objects.filter(dialogue_id=dialogue_pk, direction=Direction.OUTBOUND,
                               status=Status.QUEUED)
        .order_by("pk").values_list("pk", flat=True).first()
    )
    if next_pk is not None:
        dispatch.enqueue(Work.DELIVER_MESSAGE, next_pk)


# -- opening ---------------------------------------------------------------------------


def open_on_platform(pk: int, task_id: str | None = None) -> Result:
    """Open dialogue ``pk`` on the platform.

    The row is locked for the call (``SELECT ... FOR UPDATE SKIP LOCKED``): a
    second worker skips it, and a worker that dies releases the lock with its
    connection so the redelivered task can go on, with the same key."""
    with transaction.atomic(using=database()):
        dialogue = (
            Dialogue.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient", "channel_group", "opening_template")
            .filter(pk=pk, platform_id__isnull=True,
                    status__in=(DialogueStatus.OPENING, DialogueStatus.CLOSING))
            .first()
        )
        if dialogue is None:
            return Result(Outcome.SKIPPED, "not waiting to be opened, or being opened")
        Dialogue.objects.filter(pk=pk).update(attempts=F("attempts") + 1, next_attempt_at=None)
        dialogue.attempts += 1
        agent = mmc_settings.get_agent(dialogue.agent_key)
        try:
            resource = get_client().create_dialogue(
                agent.id,
                recipient=dialogue.recipient.phone_number,
                customer_id=dialogue.recipient.customer_id,
                channel_group_id=dialogue.channel_group.platform_id,
                channel_type=dialogue.channel_type,
                idempotency_key=str(dialogue.idempotency_key),
                template_id=(dialogue.opening_template.platform_id
                             if dialogue.opening_template_id else None),
                context=dialogue.opening_context if dialogue.opening_template_id else None,
            )
        except MMCConflictError as error:
            if (error.code == FailureCode.DIALOGUE_ACTIVE and error.dialogue_id
                    and error.dialogue_agent_id == agent.id):
                logger.info("django_mmc: adopting open dialogue %s for dialogue %s",
                            error.dialogue_id, dialogue.pk)
                return opened(dialogue, error.dialogue_id)
            return conflict(dialogue, error)
        except Exception as error:  # noqa: BLE001 - every outcome is recorded on the row
            try:
                return open_failed(dialogue, error)
            except RetryLater as retry_later:
                retry = retry_later  # raised after the commit, which keeps the bookkeeping
        else:
            return opened(dialogue, resource.id, resource.opened_at)
    raise retry


def opened(dialogue: Dialogue, platform_id: str, opened_at: object = None) -> Result:
    """The platform opened ``dialogue`` as ``platform_id`` (or says this
    agent holds it already)."""
    holder = Dialogue.objects.filter(platform_id=platform_id).exclude(pk=dialogue.pk).first()
    if holder is not None and (holder.recipient_id, holder.channel_group_id) != (
            dialogue.recipient_id, dialogue.channel_group_id):
        # The platform gave an id we already hold for someone else: never mix
        # two conversations up; stop here, loudly.
        logger.error("django_mmc: platform dialogue id %s is already stored for dialogue %s "
                     "(another recipient); dialogue %s not opened", platform_id, holder.pk,
                     dialogue.pk)
        transitions.mark_dialogue_failed(
            dialogue, DialogueStatus.ERROR, code=FailureCode.DIALOGUE_ID_CONFLICT, detail="",
            text=(f"The platform answered with dialogue id {platform_id}, which is already "
                  f"stored for dialogue {holder.pk} of another recipient."),
            messages_code=FailureCode.DIALOGUE_ID_CONFLICT,
            messages_detail="The dialogue could not be opened.")
        return Result(Outcome.GAVE_UP, platform_id)
    if holder is not None and holder.is_active:
        # A webhook (the platform's dialogue.opened) created the row first:
        # that row is the dialogue; this one hands its messages over.
        transitions.hand_messages_over(dialogue, holder)
        enqueue_next_message(holder.pk)
        return Result(Outcome.DONE, platform_id)
    if holder is not None:
        # The platform says it is open; here it was closed: this row goes on
        # with it, and the closed one is never reopened.
        transitions.take_over_platform_id(holder, dialogue)
    new_status = transitions.mark_dialogue_open(dialogue, platform_id, opened_at)
    dispatch.on_commit(enqueue_next_message, dialogue.pk)
    if new_status == DialogueStatus.CLOSING:
        dispatch.enqueue_on_commit(Work.CLOSE_DIALOGUE, dialogue.pk)
    return Result(Outcome.DONE, platform_id)


def conflict(dialogue: Dialogue, error: MMCConflictError) -> Result:
    """Another agent holds the recipient on the platform."""
    transitions.mark_dialogue_conflict(
        dialogue, holder_dialogue_id=error.dialogue_id or "",
        holder_agent_id=error.dialogue_agent_id or "", code=error.code or "",
        detail=error.detail or "", text=describe(error))
    logger.warning("django_mmc: dialogue %s not opened: agent %s holds the recipient",
                   dialogue.pk, error.dialogue_agent_id)
    return Result(Outcome.CONFLICT, error.dialogue_agent_id or "")


def open_failed(dialogue: Dialogue, error: BaseException) -> Result:
    """An attempt to open failed: retry later (:class:`RetryLater`), or end
    ``REFUSED``/``ERROR`` by the retry policy."""
    decision = decide(error, dialogue.attempts)
    if decision.action is Action.RETRY:
        Dialogue.objects.filter(pk=dialogue.pk).update(
            last_error=decision.text,
            next_attempt_at=timezone.now() + timedelta(seconds=decision.delay))
        raise RetryLater(decision.delay, decision.text)
    refused = decision.action is Action.REFUSE
    transitions.mark_dialogue_failed(
        dialogue, DialogueStatus.REFUSED if refused else DialogueStatus.ERROR,
        code=decision.code, detail=decision.detail, text=decision.text,
        messages_code=decision.code or FailureCode.DIALOGUE_NOT_OPENED,
        messages_detail="The dialogue could not be opened.")
    return Result(Outcome.REFUSED if refused else Outcome.GAVE_UP, decision.text)


# -- closing ---------------------------------------------------------------------------


def close_on_platform(pk: int, task_id: str | None = None) -> Result:
    """Close dialogue ``pk`` on the platform, after its queued messages.

    Failures follow the retry policy. A close the platform refuses (404, 409,
    422...: gone, closed already, not ours) ends the dialogue here with the
    platform's code; so does one whose retries are used up, with
    ``CLOSE_GAVE_UP``: a dialogue never stays ``CLOSING`` for ever, so it never
    blocks a new dialogue with the recipient."""
    dialogue = Dialogue.objects.filter(pk=pk, status=DialogueStatus.CLOSING).first()
    if dialogue is None:
        return Result(Outcome.SKIPPED, "not closing")
    if dialogue.platform_id is None:
        # Still being opened: open_on_platform() enqueues the close once it is.
        return Result(Outcome.WAITING, "the dialogue is not open on the platform yet")
    unsent = Message.objects.filter(dialogue=dialogue, direction=Direction.OUTBOUND,
                                    status__in=(Status.QUEUED, Status.SENDING)).exists()
    if unsent:
        raise RetryLater(1.0, "messages are still being sent")
    agent = mmc_settings.get_agent(dialogue.agent_key)
    Dialogue.objects.filter(pk=pk).update(attempts=F("attempts") + 1)
    dialogue.attempts += 1
    try:
        resource = get_client().close_dialogue(agent.id, dialogue.platform_id)
    except Exception as error:  # noqa: BLE001 - every outcome is recorded on the row
        decision = decide(error, dialogue.attempts)
        if decision.action is Action.RETRY:
            Dialogue.objects.filter(pk=pk).update(
                last_error=decision.text,
                next_attempt_at=timezone.now() + timedelta(seconds=decision.delay))
            raise RetryLater(decision.delay, decision.text) from None
        refused = decision.action is Action.REFUSE
        transitions.mark_dialogue_closed(
            dialogue, closed_by=ClosedBy.PLATFORM if refused else ClosedBy.AGENT, error=error,
            failure_code=(decision.code or FailureCode.CLOSE_REFUSED) if refused
            else FailureCode.CLOSE_GAVE_UP,
            failure_detail=decision.detail or decision.text)
        logger.warning("django_mmc: dialogue %s closed here; the platform's close failed: %s",
                       pk, decision.text)
        return Result(Outcome.REFUSED if refused else Outcome.GAVE_UP, decision.text)
    transitions.mark_dialogue_closed(dialogue, closed_by=resource.closed_by or ClosedBy.AGENT,
                                     closed_at=resource.closed_at)
    return Result(Outcome.DONE)
