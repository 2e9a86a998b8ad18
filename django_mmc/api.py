"""The public Python API: what business code and signal handlers call.

Every function here validates its input locally first and raises a Django
``ValidationError`` naming the offending argument, with nothing stored. On
success it stores the row and enqueues the work with
``transaction.on_commit``: called inside a transaction that later rolls back,
it sends nothing. The stored row is also the outbox: if the process dies
between the commit and the enqueue, the periodic sweeper sends it later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import bulk, consent, dispatch, transitions
from .conf import mmc_settings
from .consent import set_consent
from .dispatch import Work, database
from .erasure import forget_recipient
from .exceptions import MMCError
from .models import ChannelGroup, Dialogue, Message, Notification, Recipient, Template
from .status import (
    ACTIVE_DIALOGUE_STATUSES,
    DialogueStatus,
    Direction,
    InitiatedBy,
    Priority,
    Status,
)
from .validation import (
    Errors,
    acting_user,
    resolve_address,
    resolve_send_options,
    validate_dialogue,
    validate_message,
)
from .workers.outbox import settle_maybe_sent

if TYPE_CHECKING:  # pragma: no cover
    from django.contrib.auth.models import AbstractBaseUser

__all__ = [
    "cancel_notification",
    "close_dialogue",
    "forget_recipient",
    "retry_notification",
    "set_consent",
    "open_dialogue",
    "send_message",
    "send_notification",
    "send_notifications",
]


# -- notifications ---------------------------------------------------------------


def send_notification(
    to: Recipient | str,
    template: Template | str | int,
    context: Mapping[str, Any] | None = None,
    *,
    channel_type: str | None = None,
    channel_group: ChannelGroup | str | int | None = None,
    priority: str = Priority.NORMAL,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    fallback: Iterable[str] | bool | None = None,
    transactional: bool = False,
    user: AbstractBaseUser | None = None,
) -> Notification:
    """Send a template-based notification to ``to``.

    ``to`` is an E.164 number or a :class:`Recipient` (one known only by the
    platform's customer id too: ``Recipient.objects.for_customer("8812")``);
    ``template`` a
    :class:`Template`, its platform id or its name; ``context`` the template's
    parameters. ``channel_group`` and ``channel_type`` default to the
    ``MMC`` settings.

    ``priority`` (``"now"``, ``"high"``, ``"normal"``, ``"low"``) picks the
    Celery queue (``MMC['PRIORITY_QUEUES']``). ``send_at`` schedules the send
    for later; ``expires_at`` gives up on it if it could not be sent by then.
    ``fallback`` is the order of channel types to try if the platform reports
    a failure another channel can fix (default ``MMC['FALLBACK_CHANNEL_TYPES']``;
    ``False`` for none). ``transactional=True`` sends even to a recipient who
    opted out of the channel, if ``MMC['ALLOW_TRANSACTIONAL_TO_OPTED_OUT']``.

    Validates everything locally first (the number, that the template is
    active, that the channel type is in the group and allowed by the
    template, that required parameters are present and no unknown ones are
    given, consent, the times) and raises ``ValidationError`` naming the
    argument, storing nothing. Otherwise stores the notification and has a
    worker send it once the current transaction commits (a scheduled one when
    it is due); its ``idempotency_key`` makes every retry safe. Fires
    ``notification_status_changed`` as the platform reports progress.
    """
    errors = Errors()
    phone_number = cleaned = None
    try:
        phone_number = resolve_address(to)
    except ValidationError as err:
        errors.add("to", err)
    options = resolve_send_options(
        errors, template, channel_group, channel_type, priority, send_at, expires_at, fallback)
    if options.template is not None:
        try:
            cleaned = options.template.validate_context(
                dict(context) if isinstance(context, Mapping) else context)
        except ValidationError as err:
            errors.add("context", err)
    if options.channel_type is not None and phone_number:
        recipient = to if isinstance(to, Recipient) else (
            Recipient.objects.filter(phone_number=phone_number).first())
        if not consent.may_send(recipient, options.channel_type, transactional=transactional):
            errors.add("to", ValidationError(
                _("%(recipient)s opted out of %(type)s messages."), code="opted_out",
                params={"recipient": phone_number, "type": options.channel_type}))
    errors.raise_if_any()

    scheduled = send_at is not None and send_at > timezone.now()
    with transaction.atomic(using=database()):
        recipient = to if isinstance(to, Recipient) else Recipient.objects.for_number(phone_number)
        notification = Notification.objects.create(
            recipient=recipient, template=options.template,
            channel_group=options.channel_group, channel_type=options.channel_type,
            context=cleaned, created_by=acting_user(user),
            status=Status.SCHEDULED if scheduled else Status.QUEUED,
            next_attempt_at=send_at if scheduled else timezone.now(),
            priority=priority, send_at=send_at, expires_at=expires_at,
            fallback_channel_types=options.fallback, transactional=bool(transactional),
        )
        if not scheduled:
            dispatch.enqueue_on_commit(Work.DELIVER_NOTIFICATION, notification.pk,
                                       priority=priority)
    return notification


def send_notifications(
    recipients: Iterable[Recipient | str],
    template: Template | str | int,
    contexts_or_context: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    *,
    channel_type: str | None = None,
    channel_group: ChannelGroup | str | int | None = None,
    priority: str = Priority.LOW,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    fallback: Iterable[str] | bool | None = None,
    transactional: bool = False,
    user: AbstractBaseUser | None = None,
) -> int:
    """Send one template to many recipients (a campaign); returns how many
    notifications were stored.

    ``contexts_or_context`` is one context for everyone, or an iterable of
    contexts walked in step with ``recipients``. The template, group and
    channel type are validated once; every number and context is validated
    before anything is stored, then rows are created with ``bulk_create`` in
    chunks of ``MMC['BULK_CHUNK_SIZE']`` and enqueued in chunks after commit,
    in constant memory. Campaigns default to the ``"low"`` priority, so
    one-time codes never wait behind them. Recipients who opted out of the
    channel are left out (and not counted) unless ``transactional``.
    The other arguments are those of :func:`send_notification`.
    """
    return bulk.send_bulk(recipients, template, contexts_or_context, channel_type=channel_type,
                     channel_group=channel_group, priority=priority, send_at=send_at,
                     expires_at=expires_at, fallback=fallback, transactional=transactional,
                     user=user)


# -- dialogues -----------------------------------------------------------------


def open_dialogue(
    to: Recipient | str,
    *,
    agent: str | None = None,
    channel_group: ChannelGroup | str | int | None = None,
    channel_type: str | None = None,
    template: Template | str | int | None = None,
    context: Mapping[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
) -> Dialogue:
    """Open an exclusive dialogue with ``to`` for ``agent`` (a key of
    ``MMC['AGENTS']``, default ``MMC['DEFAULT_AGENT']``).

    ``template`` (with its ``context``) is the opening template, which
    WhatsApp needs for a conversation the business starts: the create call
    carries it where the platform takes it there (the dialect's
    ``opening_template`` is ``"create"``), otherwise it is stored as the
    dialogue's first message, sent as soon as the dialogue is open.

    If this agent already has an open dialogue with the recipient on that
    channel group, that dialogue is returned. If another of the site's agents
    has one, ``ValidationError`` says which. Otherwise a dialogue is stored
    (status ``OPENING``) and opened on the platform after commit; messages
    sent meanwhile wait for it. If the platform says another agent holds the
    recipient, the dialogue ends in ``CONFLICT`` naming that agent.
    """
    request = validate_dialogue(to, agent, channel_group, channel_type, template, context)
    phone_number, group = request.phone_number, request.channel_group
    for _attempt in range(3):
        existing = _active_dialogue(to, phone_number, group)
        if existing is not None and existing.status == DialogueStatus.CLOSING:
            # Its close is still pending on the platform: it ends here, and
            # never keeps the customer from a new dialogue.
            transitions.end_closing(existing)
            continue
        if existing is not None:
            if existing.agent_key == request.agent.key:
                return existing
            raise ValidationError(
                {"to": ValidationError(
                    _("%(recipient)s is in an open dialogue with agent %(agent)s on %(group)s; "
                      "it must be closed first."),
                    code="dialogue_active",
                    params={"recipient": phone_number, "agent": existing.agent_key,
                            "group": group},
                )}
            )
        try:
            with transaction.atomic(using=database()):
                recipient = (to if isinstance(to, Recipient)
                             else Recipient.objects.for_number(phone_number))
                with_create = (request.template is not None
                               and mmc_settings.dialect.opening_template == "create")
                dialogue = Dialogue.objects.create(
                    agent_key=request.agent.key, recipient=recipient, channel_group=group,
                    channel_type=request.channel_type, initiated_by=InitiatedBy.AGENT,
                    opened_by_user=acting_user(user), next_attempt_at=timezone.now(),
                    opening_template=request.template if with_create else None,
                    opening_context=request.context if with_create else {},
                )
                if request.template is not None and not with_create:
                    # Waits for the dialogue to open, and goes before any other.
                    Message.objects.create(
                        dialogue=dialogue, direction=Direction.OUTBOUND,
                        template=request.template, context=request.context,
                        channel_type=request.channel_type, created_by=acting_user(user),
                        next_attempt_at=timezone.now(),
                    )
                dispatch.enqueue_on_commit(Work.OPEN_DIALOGUE, dialogue.pk)
            return dialogue
        except IntegrityError:
            continue  # another request opened one meanwhile: look again
    raise ValidationError({"to": _("Could not open a dialogue; try again.")})


def _active_dialogue(to: Recipient | str, phone_number: str, group: ChannelGroup
                     ) -> Dialogue | None:
    by_recipient = ({"recipient": to} if isinstance(to, Recipient)
                    else {"recipient__phone_number": phone_number})
    return (
        Dialogue.objects.filter(
            **by_recipient, channel_group=group, status__in=ACTIVE_DIALOGUE_STATUSES,
        ).select_related("recipient", "channel_group").first()
    )


def send_message(
    dialogue: Dialogue,
    text: str | None = None,
    *,
    template: Template | str | int | None = None,
    context: Mapping[str, Any] | None = None,
    files: Iterable[Any] = (),
    channel_type: str | None = None,
    user: AbstractBaseUser | None = None,
) -> Message:
    """Send a message in ``dialogue``: free ``text``, or a ``template`` with
    its ``context``; ``files`` are platform file ids (or dicts with an
    ``"id"``) to attach. Same guarantees as :func:`send_notification`.
    Messages of one dialogue reach the platform in the order they were sent.
    """
    request = validate_message(dialogue, text, template, context, files, channel_type)
    with transaction.atomic(using=database()):
        message = Message.objects.create(
            dialogue=dialogue, direction=Direction.OUTBOUND, text=request.text,
            template=request.template, context=request.context, files=request.files,
            channel_type=request.channel_type, created_by=acting_user(user),
            next_attempt_at=timezone.now(),
        )
        dispatch.enqueue_on_commit(Work.DELIVER_MESSAGE, message.pk)
    return message


def close_dialogue(dialogue: Dialogue, *, user: AbstractBaseUser | None = None) -> Dialogue:
    """Close ``dialogue`` on the platform once its queued messages are sent.
    Closing a closed dialogue does nothing. Fires ``dialogue_closed``."""
    with transaction.atomic(using=database()):
        if transitions.start_closing(dialogue, user=acting_user(user)):
            dispatch.enqueue_on_commit(Work.CLOSE_DIALOGUE, dialogue.pk)
    dialogue.refresh_from_db()
    return dialogue


def retry_notification(notification: Notification, *, user: AbstractBaseUser | None = None
                       ) -> Notification:
    """Try a notification that did not make it again.

    A refused, failed or expired notification is sent again as a new
    notification (a new idempotency key: the platform saw the old one),
    linked to the old one, which is kept. A notification whose retries were
    used up (``ERROR``) is queued again as it is, with its own idempotency
    key. If its last attempt ended without an answer it may have reached
    the platform, perhaps more than the 24 hours the platform remembers a
    key for: the platform is asked first (by that key), and if it has the
    notification, the row takes its id and status and nothing is sent again.

    The recipient's consent is checked as for a new send: ``ValidationError``
    when they opted out of the channel (unless transactional, as
    ``MMC['ALLOW_TRANSACTIONAL_TO_OPTED_OUT']`` allows)."""
    if notification.status == Status.ERROR:
        if not consent.may_send(notification.recipient, notification.channel_type,
                                transactional=notification.transactional):
            raise ValidationError(
                _("%(recipient)s opted out of %(type)s messages since; not retried."),
                code="opted_out", params={"recipient": notification.recipient.address,
                                          "type": notification.channel_type})
        if notification.maybe_sent and notification.platform_id is None:
            try:
                if settle_maybe_sent(notification, Status.ERROR):
                    notification.refresh_from_db()
                    return notification
            except MMCError as error:
                raise ValidationError(
                    _("Its last attempt may have reached the platform, and the platform "
                      "could not be asked (%(error)s): not retried. Try again in a moment."),
                    code="maybe_sent", params={"error": str(error)[:200]}) from None
        with transaction.atomic(using=database()):
            if transitions.requeue(notification):
                dispatch.enqueue_on_commit(Work.DELIVER_NOTIFICATION, notification.pk,
                                           priority=notification.priority)
        notification.refresh_from_db()
        return notification
    if notification.status not in (Status.FAILED, Status.REFUSED, Status.EXPIRED):
        raise ValidationError(
            _("Only failed, refused or unsent notifications can be retried; this one is "
              "%(status)s."), code="not_retryable",
            params={"status": notification.get_status_display()},
        )
    with transaction.atomic(using=database()):
        new = send_notification(
            notification.recipient, notification.template, notification.context,
            channel_type=notification.channel_type, channel_group=notification.channel_group,
            priority=notification.priority, transactional=notification.transactional,
            user=user,
        )
        Notification.objects.filter(pk=new.pk).update(retry_of=notification)
    new.retry_of = notification
    return new


def cancel_notification(notification: Notification) -> bool:
    """Cancel a notification the platform has not been sent yet (scheduled or
    waiting); returns whether it was cancelled. Fires
    ``notification_status_changed``.

    One whose last attempt ended without an answer (a timeout) may be on the
    platform already: the platform is asked first (by its idempotency key).
    If it has it, the notification is not cancelled: it takes the platform's
    id and status, and its later status reports apply. If the platform
    cannot be asked, ``ValidationError`` says so and nothing changes."""
    notification.refresh_from_db(fields=["status", "maybe_sent", "platform_id"])
    if (notification.maybe_sent and notification.platform_id is None
            and notification.status == Status.QUEUED):
        try:
            if settle_maybe_sent(notification, Status.QUEUED):
                return False
        except MMCError as error:
            raise ValidationError(
                _("Its last attempt may have reached the platform, and the platform could "
                  "not be asked (%(error)s): not cancelled. Try again in a moment."),
                code="maybe_sent", params={"error": str(error)[:200]}) from None
        Notification.objects.filter(pk=notification.pk).update(maybe_sent=False)
    with transaction.atomic(using=database()):
        return transitions.cancel_notification(notification)
