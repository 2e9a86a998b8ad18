"""Campaign sends: one template to many recipients in constant memory.

The template, channel group and channel type are validated once. Recipients
and contexts are consumed lazily, one chunk at a time: numbers are validated,
recipients upserted and notifications created with ``bulk_create`` per chunk,
and each chunk is enqueued after the transaction commits. The whole campaign
is one transaction: a bad number anywhere stores nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice, repeat, zip_longest
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import dispatch
from .conf import mmc_settings
from .consent import may_send
from .dispatch import database
from .models import Notification, Recipient
from .models.recipients import normalize_phone_number
from .status import Status
from .validation import Errors, acting_user, resolve_send_options

if TYPE_CHECKING:  # pragma: no cover
    from django.contrib.auth.models import AbstractBaseUser

    from .models import ChannelGroup, Template


_MISSING = object()


def _pairs(recipients: Iterable[Any], contexts_or_context: Any) -> Iterator[tuple[Any, Any]]:
    """(recipient, context) pairs; a list of contexts must be as long as the
    list of recipients."""
    if contexts_or_context is None or isinstance(contexts_or_context, Mapping):
        yield from zip(recipients, repeat(contexts_or_context))
        return
    for to, context in zip_longest(recipients, contexts_or_context, fillvalue=_MISSING):
        if to is _MISSING or context is _MISSING:
            raise ValidationError(
                {"contexts_or_context": _("There must be one context per recipient.")},
                code="length_mismatch",
            )
        yield to, context


def send_bulk(
    recipients: Iterable[Recipient | str],
    template: Template | str | int,
    contexts_or_context: Any = None,
    *,
    channel_type: str | None = None,
    channel_group: ChannelGroup | str | int | None = None,
    priority: str = "low",
    send_at: Any = None,
    expires_at: Any = None,
    fallback: Any = None,
    transactional: bool = False,
    user: AbstractBaseUser | None = None,
) -> int:
    """The campaign send behind :func:`django_mmc.api.send_notifications`;
    returns how many notifications were stored."""
    errors = Errors()
    options = resolve_send_options(
        errors, template, channel_group, channel_type, priority, send_at, expires_at, fallback)
    errors.raise_if_any()
    scheduled = send_at is not None and send_at > timezone.now()
    fields = {
        "priority": priority, "send_at": send_at, "expires_at": expires_at,
        "fallback_channel_types": options.fallback, "transactional": bool(transactional),
        "status": Status.SCHEDULED if scheduled else Status.QUEUED,
    }

    chunk_size = int(mmc_settings.BULK_CHUNK_SIZE)
    created_by = acting_user(user)
    pairs = _pairs(recipients, contexts_or_context)
    total = offset = 0
    with transaction.atomic(using=database()):
        while True:
            chunk = list(islice(pairs, chunk_size))
            if not chunk:
                break
            rows = _build_chunk(chunk, options.template, options.channel_group,
                                options.channel_type, created_by, offset=offset,
                                options=fields, transactional=bool(transactional))
            offset += len(chunk)
            Notification.objects.bulk_create(rows, batch_size=chunk_size)
            # PostgreSQL (and SQLite 3.35+) return the new primary keys.
            if not scheduled:
                dispatch.enqueue_batches_on_commit([n.pk for n in rows], priority=priority)
            total += len(rows)
    return total


def _build_chunk(chunk: list[tuple[Any, Any]], template: Template, group: ChannelGroup,
                 kind: str, created_by: Any, offset: int, options: dict[str, Any],
                 transactional: bool) -> list[Notification]:
    numbers: list[Any] = []  # a number, or a Recipient's pk (it may have none)
    contexts: list[dict[str, str]] = []
    known: dict[Any, Recipient] = {}
    for index, (to, context) in enumerate(chunk, start=offset):
        try:
            if isinstance(to, Recipient):
                key = ("pk", to.pk)
                known[key] = to
                numbers.append(key)
            else:
                numbers.append(normalize_phone_number(to))
            contexts.append(template.validate_context(
                dict(context) if isinstance(context, Mapping) else context))
        except ValidationError as err:
            raise ValidationError(
                _("Recipient #%(index)d: %(error)s"), code="invalid_recipient",
                params={"index": index, "error": "; ".join(err.messages)},
            ) from None
    missing = set(numbers) - set(known)
    if missing:
        known.update(Recipient.objects.in_bulk(missing, field_name="phone_number"))
        new = [Recipient(phone_number=n) for n in missing if n not in known]
        if new:
            Recipient.objects.bulk_create(new, ignore_conflicts=True)
            known.update(Recipient.objects.in_bulk([r.phone_number for r in new],
                                                   field_name="phone_number"))
    now = timezone.now()
    next_attempt_at = options["send_at"] if options["status"] == Status.SCHEDULED else now
    return [
        Notification(recipient=known[number], template=template, channel_group=group,
                     channel_type=kind, context=context, created_by=created_by,
                     next_attempt_at=next_attempt_at, **options)
        for number, context in zip(numbers, contexts, strict=True)
        if may_send(known[number], kind, transactional=transactional)
    ]
