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
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import dispatch
from .conf import Agent, mmc_settings
from .exceptions import MMCConfigurationError
from .models import ChannelGroup, Dialogue, Message, Notification, Recipient, Template
from .models.recipients import normalize_phone_number
from .status import (
    ACTIVE_DIALOGUE_STATUSES,
    DialogueStatus,
    Direction,
    InitiatedBy,
    Priority,
    Status,
)

if TYPE_CHECKING:  # pragma: no cover
    from django.contrib.auth.models import AbstractBaseUser

__all__ = [
    "cancel_notification",
    "close_dialogue",
    "retry_notification",
    "set_consent",
    "open_dialogue",
    "send_message",
    "send_notification",
    "send_notifications",
]

MAX_TEXT_LENGTH = 4096


class _Errors:
    """Collects errors per argument so one call reports all of them."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, error: ValidationError | str) -> None:
        if isinstance(error, str):
            error = ValidationError(error)
        if hasattr(error, "error_dict"):
            for key, errors in error.error_dict.items():
                self.by_field.setdefault(key, []).extend(errors)
        else:
            self.by_field.setdefault(field, []).extend(error.error_list)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


# -- resolving arguments -------------------------------------------------------


def resolve_phone_number(to: Recipient | str) -> str:
    """The E.164 number of ``to`` (a Recipient or a number)."""
    if isinstance(to, Recipient):
        return to.phone_number
    return normalize_phone_number(to)


def _lookup_key(value: Any, what: str) -> str:
    """``value`` as a key to look a row up by, or a ``ValidationError``: text
    the database cannot hold (NUL, lone surrogates) never reaches a query."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(
            _("Give the %(what)s as an object, its platform id or its name."),
            code="invalid", params={"what": what})
    key = str(value).strip()
    if not key or "\x00" in key or any(0xD800 <= ord(c) <= 0xDFFF for c in key):
        raise ValidationError(_("That is not a valid %(what)s name or id."),
                              code="invalid", params={"what": what})
    return key


def resolve_template(template: Template | str | int) -> Template:
    """A Template, its platform id or its name; active only."""
    if isinstance(template, Template):
        found = template
    else:
        key = _lookup_key(template, "template")
        matches = list(
            Template.objects.filter(Q(platform_id=key) | Q(name=key)).order_by("-is_active")[:3]
        )
        by_id = [t for t in matches if t.platform_id == key]
        active_by_name = [t for t in matches if t.name == key and t.is_active]
        if by_id:
            found = by_id[0]
        elif len(active_by_name) > 1:
            raise ValidationError(
                _("More than one template is named %(name)s; pass its platform id."),
                code="ambiguous_template", params={"name": key},
            )
        elif matches:
            found = matches[0]
        else:
            raise ValidationError(
                _("Unknown template %(name)s. Sync the templates from the platform "
                  "(manage.py mmc_sync_directory) or check the name."),
                code="unknown_template", params={"name": key[:100]},
            )
    if not found.is_active:
        raise ValidationError(
            _("Template %(name)s is no longer active on the platform."),
            code="inactive_template", params={"name": found},
        )
    return found


def resolve_channel_group(channel_group: ChannelGroup | str | int | None) -> ChannelGroup:
    """A ChannelGroup, its platform id or name, or ``MMC['DEFAULT_CHANNEL_GROUP']``."""
    if isinstance(channel_group, ChannelGroup):
        group = channel_group
    else:
        key = channel_group if channel_group is not None else mmc_settings.DEFAULT_CHANNEL_GROUP
        if key is None:
            groups = list(ChannelGroup.objects.filter(is_active=True)[:2])
            if len(groups) == 1:
                return groups[0]
            raise ValidationError(
                _("No channel group given and MMC['DEFAULT_CHANNEL_GROUP'] is not set."),
                code="channel_group_required",
            )
        key = _lookup_key(key, "channel group")
        group = (
            ChannelGroup.objects.filter(platform_id=key).first()
            or ChannelGroup.objects.filter(name=key).first()
        )
        if group is None:
            raise ValidationError(
                _("Unknown channel group %(name)s. Sync the directory from the platform "
                  "(manage.py mmc_sync_directory)."),
                code="unknown_channel_group", params={"name": key[:100]},
            )
    if not group.is_active:
        raise ValidationError(
            _("Channel group %(name)s is no longer active."),
            code="inactive_channel_group", params={"name": group},
        )
    return group


def resolve_channel_type(
    channel_type: str | None, group: ChannelGroup, template: Template | None = None
) -> str:
    """The channel type to use: the one asked for, which must be a channel of
    ``group`` (and allowed by ``template``); or the default one, or the first
    type both allow."""
    available = group.channel_types()
    allowed = [t for t in available if template is None or t in template.channel_types]
    if channel_type:
        channel_type = str(channel_type).upper()
        if channel_type not in available:
            raise ValidationError(
                _("Channel group %(group)s has no %(type)s channel (it has: %(types)s)."),
                code="channel_not_in_group",
                params={"group": group, "type": channel_type,
                        "types": ", ".join(available) or "-"},
            )
        if template is not None and channel_type not in template.channel_types:
            raise ValidationError(
                _("Template %(template)s cannot be sent on %(type)s (only on %(types)s)."),
                code="template_not_for_channel",
                params={"template": template, "type": channel_type,
                        "types": ", ".join(template.channel_types) or "-"},
            )
        return channel_type
    default = mmc_settings.DEFAULT_CHANNEL_TYPE
    if default in allowed:
        return default
    if allowed:
        if template is not None:  # the template's own order of preference
            return next(t for t in template.channel_types if t in allowed)
        return allowed[0]
    raise ValidationError(
        _("No channel of group %(group)s can carry this message."),
        code="no_channel", params={"group": group},
    )


def resolve_agent(agent: str | None) -> Agent:
    try:
        return mmc_settings.get_agent(agent)
    except MMCConfigurationError as err:
        raise ValidationError(str(err), code="unknown_agent") from None


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

    ``to`` is an E.164 number or a :class:`Recipient`; ``template`` a
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
    errors = _Errors()
    phone_number = cleaned = None
    try:
        phone_number = resolve_phone_number(to)
    except ValidationError as err:
        errors.add("to", err)
    tpl, group, kind, chain = resolve_send_options(
        errors, template, channel_group, channel_type, priority, send_at, expires_at, fallback)
    if tpl is not None:
        try:
            cleaned = tpl.validate_context(dict(context) if isinstance(context, Mapping)
                                           else context)
        except ValidationError as err:
            errors.add("context", err)
    if kind is not None and phone_number and not transactional_allowed(transactional):
        recipient = to if isinstance(to, Recipient) else (
            Recipient.objects.filter(phone_number=phone_number).first())
        if recipient is not None and recipient.has_opted_out(kind):
            errors.add("to", ValidationError(
                _("%(recipient)s opted out of %(type)s messages."),
                code="opted_out", params={"recipient": phone_number, "type": kind}))
    errors.raise_if_any()

    scheduled = send_at is not None and send_at > timezone.now()
    with transaction.atomic():
        recipient = to if isinstance(to, Recipient) else Recipient.objects.for_number(phone_number)
        notification = Notification.objects.create(
            recipient=recipient, template=tpl, channel_group=group, channel_type=kind,
            context=cleaned, created_by=user if _is_user(user) else None,
            status=Status.SCHEDULED if scheduled else Status.QUEUED,
            next_attempt_at=send_at if scheduled else timezone.now(),
            priority=priority, send_at=send_at, expires_at=expires_at,
            fallback_channel_types=chain, transactional=bool(transactional),
        )
        if not scheduled:
            dispatch.enqueue_on_commit("send_notification", notification.pk, priority=priority)
    return notification


def resolve_send_options(
    errors: _Errors,
    template: Template | str | int,
    channel_group: ChannelGroup | str | int | None,
    channel_type: str | None,
    priority: str,
    send_at: datetime | None,
    expires_at: datetime | None,
    fallback: Iterable[str] | bool | None,
) -> tuple[Template | None, ChannelGroup | None, str | None, list[str]]:
    """Validate what a single send and a campaign share: template, channel
    group and type, priority, times and fallback. Problems go to ``errors``;
    returns ``(template, group, channel type, fallback chain)``."""
    tpl = group = kind = None
    chain: list[str] = []
    try:
        tpl = resolve_template(template)
    except ValidationError as err:
        errors.add("template", err)
    try:
        group = resolve_channel_group(channel_group)
    except ValidationError as err:
        errors.add("channel_group", err)
    if group is not None and tpl is not None:
        try:
            kind = resolve_channel_type(channel_type, group, tpl)
        except ValidationError as err:
            errors.add("channel_type", err)
    if priority not in Priority.values:
        errors.add("priority", ValidationError(
            _("Unknown priority %(value)s; use one of %(choices)s."), code="invalid_priority",
            params={"value": priority, "choices": ", ".join(Priority.values)}))
    _check_times(errors, send_at, expires_at)
    if kind is not None:
        try:
            chain = fallback_chain(fallback, kind)
        except ValidationError as err:
            errors.add("fallback", err)
    return tpl, group, kind, chain


def _check_times(errors: _Errors, send_at: datetime | None, expires_at: datetime | None
                 ) -> None:
    for name, value in (("send_at", send_at), ("expires_at", expires_at)):
        if value is not None and (not isinstance(value, datetime)
                                  or timezone.is_naive(value)):
            errors.add(name, ValidationError(
                _("%(name)s must be a timezone-aware datetime."), code="invalid_datetime",
                params={"name": name}))
            return
    if expires_at is not None and expires_at <= max(send_at or timezone.now(), timezone.now()):
        errors.add("expires_at", ValidationError(
            _("expires_at must be later than now and than send_at."), code="expires_too_soon"))


def fallback_chain(fallback: Iterable[str] | bool | None, first: str) -> list[str]:
    """The channel types to fall back to after ``first``, in order."""
    if fallback is False or fallback == []:
        return []
    order = list(mmc_settings.FALLBACK_CHANNEL_TYPES if fallback in (None, True) else fallback)
    if not all(isinstance(t, str) and t for t in order):
        raise ValidationError(_("The fallback must be a list of channel types."),
                              code="invalid_fallback")
    order = [t.upper() for t in order]
    if first in order:
        return order[order.index(first) + 1:]
    return [t for t in order if t != first]


def transactional_allowed(transactional: bool) -> bool:
    return bool(transactional) and bool(mmc_settings.ALLOW_TRANSACTIONAL_TO_OPTED_OUT)


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
    from .bulk import send_bulk

    return send_bulk(recipients, template, contexts_or_context, channel_type=channel_type,
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
    user: AbstractBaseUser | None = None,
) -> Dialogue:
    """Open an exclusive dialogue with ``to`` for ``agent`` (a key of
    ``MMC['AGENTS']``, default ``MMC['DEFAULT_AGENT']``).

    If this agent already has an open dialogue with the recipient on that
    channel group, that dialogue is returned. If another of the site's agents
    has one, ``ValidationError`` says which. Otherwise a dialogue is stored
    (status ``OPENING``) and opened on the platform after commit; messages
    sent meanwhile wait for it. If the platform says another agent holds the
    recipient, the dialogue ends in ``CONFLICT`` naming that agent.
    """
    errors = _Errors()
    phone_number = group = kind = resolved_agent = None
    try:
        resolved_agent = resolve_agent(agent)
    except ValidationError as err:
        errors.add("agent", err)
    try:
        phone_number = resolve_phone_number(to)
    except ValidationError as err:
        errors.add("to", err)
    try:
        group = resolve_channel_group(channel_group)
    except ValidationError as err:
        errors.add("channel_group", err)
    if group is not None:
        try:
            kind = resolve_channel_type(channel_type, group)
        except ValidationError as err:
            errors.add("channel_type", err)
    errors.raise_if_any()

    for _attempt in range(3):
        existing = _active_dialogue(phone_number, group)
        if existing is not None:
            if existing.agent_key == resolved_agent.key:
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
            with transaction.atomic():
                recipient = (to if isinstance(to, Recipient)
                             else Recipient.objects.for_number(phone_number))
                dialogue = Dialogue.objects.create(
                    agent_key=resolved_agent.key, recipient=recipient, channel_group=group,
                    channel_type=kind, initiated_by=InitiatedBy.AGENT,
                    opened_by_user=user if _is_user(user) else None,
                    next_attempt_at=timezone.now(),
                )
                dispatch.enqueue_on_commit("open_dialogue", dialogue.pk)
            return dialogue
        except IntegrityError:
            continue  # another request opened one meanwhile: look again
    raise ValidationError({"to": _("Could not open a dialogue; try again.")})


def _active_dialogue(phone_number: str, group: ChannelGroup) -> Dialogue | None:
    return (
        Dialogue.objects.filter(
            recipient__phone_number=phone_number, channel_group=group,
            status__in=ACTIVE_DIALOGUE_STATUSES,
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
    errors = _Errors()
    tpl = kind = None
    cleaned: dict[str, str] = {}
    if dialogue.status not in (DialogueStatus.OPENING, DialogueStatus.OPEN):
        errors.add("dialogue", ValidationError(
            _("The dialogue is %(status)s; messages can only be sent in an open dialogue."),
            code="dialogue_not_open", params={"status": dialogue.get_status_display()},
        ))
    if (text is None or text == "") == (template is None):
        errors.add("text", ValidationError(
            _("Give either a text or a template, not both and not neither."),
            code="text_or_template",
        ))
    elif text is not None:
        if not isinstance(text, str) or not text.strip():
            errors.add("text", _("The text is empty."))
        elif len(text) > MAX_TEXT_LENGTH:
            errors.add("text", ValidationError(
                _("The text is %(length)d characters long; the most is %(max)d."),
                code="text_too_long", params={"length": len(text), "max": MAX_TEXT_LENGTH},
            ))
    if template is not None:
        try:
            tpl = resolve_template(template)
            cleaned = tpl.validate_context(dict(context) if isinstance(context, Mapping)
                                           else context)
        except ValidationError as err:
            errors.add("template" if tpl is None else "context", err)
    try:
        kind = resolve_channel_type(channel_type or dialogue.channel_type or None,
                                    dialogue.channel_group, tpl)
    except ValidationError as err:
        errors.add("channel_type", err)
    if (text and kind and mmc_settings.ENFORCE_CARE_WINDOW
            and not dialogue.can_send_text(kind)):
        errors.add("text", ValidationError(
            _("The recipient has not written in the last %(hours)s hours, so %(type)s allows "
              "only a template now, not free text. Send a template instead."),
            code="outside_care_window",
            params={"hours": mmc_settings.CARE_WINDOW_HOURS, "type": kind}))
    file_list = []
    for item in files or ():
        file_id = item.get("id") if isinstance(item, Mapping) else item
        if file_id in (None, "") or not isinstance(file_id, (str, int)):
            errors.add("files", _("Each file must be a platform file id or a dict with an 'id'."))
            break
        file_list.append(dict(item) if isinstance(item, Mapping) else {"id": str(file_id)})
    errors.raise_if_any()

    with transaction.atomic():
        message = Message.objects.create(
            dialogue=dialogue, direction=Direction.OUTBOUND, text=text or "", template=tpl,
            context=cleaned, files=file_list, channel_type=kind,
            created_by=user if _is_user(user) else None, next_attempt_at=timezone.now(),
        )
        dispatch.enqueue_on_commit("send_message", message.pk)
    return message


def close_dialogue(dialogue: Dialogue, *, user: AbstractBaseUser | None = None) -> Dialogue:
    """Close ``dialogue`` on the platform once its queued messages are sent.
    Closing a closed dialogue does nothing. Fires ``dialogue_closed``."""
    with transaction.atomic():
        updated = Dialogue.objects.filter(
            pk=dialogue.pk, status__in=(DialogueStatus.OPENING, DialogueStatus.OPEN)
        ).update(
            status=DialogueStatus.CLOSING,
            closed_by_user=user if _is_user(user) else None,
            next_attempt_at=timezone.now(), updated_at=timezone.now(),
        )
        if updated:
            dispatch.enqueue_on_commit("close_dialogue", dialogue.pk)
    dialogue.refresh_from_db()
    return dialogue


def _is_user(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False) and user.pk is not None


def retry_notification(notification: Notification, *, user: AbstractBaseUser | None = None
                       ) -> Notification:
    """Try a notification that did not make it again.

    A refused, failed or expired notification is sent again as a new
    notification (a new idempotency key: the platform saw the old one),
    linked to the old one, which is kept. A notification whose retries were
    used up (``ERROR``) is queued again as it is, with its own idempotency
    key: its last attempt may have reached the platform, and the key makes
    sure it is not sent twice."""
    if notification.status == Status.ERROR:
        with transaction.atomic():
            Notification.objects.filter(pk=notification.pk, status=Status.ERROR).update(
                status=Status.QUEUED, attempts=0, next_attempt_at=timezone.now(),
                status_changed_at=timezone.now(),
            )
            dispatch.enqueue_on_commit("send_notification", notification.pk)
        notification.refresh_from_db()
        return notification
    if notification.status not in (Status.FAILED, Status.REFUSED, Status.EXPIRED):
        raise ValidationError(
            _("Only failed, refused or unsent notifications can be retried; this one is "
              "%(status)s."), code="not_retryable",
            params={"status": notification.get_status_display()},
        )
    with transaction.atomic():
        new = send_notification(
            notification.recipient, notification.template, notification.context,
            channel_type=notification.channel_type, channel_group=notification.channel_group,
            user=user,
        )
        Notification.objects.filter(pk=new.pk).update(retry_of=notification)
    new.retry_of = notification
    return new


def cancel_notification(notification: Notification) -> bool:
    """Cancel a notification the platform has not been sent yet (scheduled or
    waiting); returns whether it was cancelled. Fires
    ``notification_status_changed``."""
    from .sending import cancel_notification as cancel

    with transaction.atomic():
        return cancel(notification)


def set_consent(
    recipient: Recipient | str,
    channel_type: str,
    opted_out: bool,
    *,
    source: str = "API",
    detail: str = "",
    user: AbstractBaseUser | None = None,
) -> bool:
    """Record that ``recipient`` opted out of (or back in to) messages on
    ``channel_type``. Logged as a :class:`~django_mmc.models.ConsentChange`;
    fires ``consent_changed`` after commit. Returns whether anything changed."""
    from .models import ConsentChange
    from .signals import consent_changed

    channel_type = str(channel_type).upper()
    with transaction.atomic():
        if not isinstance(recipient, Recipient):
            recipient = Recipient.objects.for_number(recipient)
        locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
        current = set(locked.opted_out_channel_types or [])
        if (channel_type in current) == bool(opted_out):
            return False
        current = current | {channel_type} if opted_out else current - {channel_type}
        locked.opted_out_channel_types = sorted(current)
        locked.save(update_fields=["opted_out_channel_types", "updated_at"])
        ConsentChange.objects.create(
            recipient=locked, channel_type=channel_type, opted_out=bool(opted_out),
            source=source, detail=detail[:200], changed_by=user if _is_user(user) else None)
        recipient.opted_out_channel_types = locked.opted_out_channel_types
        dispatch.on_commit(lambda: consent_changed.send(
            sender=Recipient, recipient=locked, channel_type=channel_type,
            opted_out=bool(opted_out), source=source))
    return True
