"""A recipient's consent: who may be messaged on which channel type.

Business code and staff change it with :func:`set_consent`; a recipient
changes it by writing an opt-out or opt-in keyword (``STOP``, ``START``...),
which webhook processing and transcript polling hand to :func:`apply_keyword`.
Every change is logged as a :class:`~django_mmc.models.ConsentChange` and
fires ``consent_changed`` after commit.

:func:`may_send` is the one rule a send is checked against.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from . import signals
from .conf import mmc_settings
from .dispatch import database
from .models import ConsentChange, Recipient
from .validation import acting_user

if TYPE_CHECKING:  # pragma: no cover
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger("django_mmc.consent")

__all__ = ["apply_keyword", "consent_keyword", "may_send", "set_consent",
           "transactional_allowed"]


def transactional_allowed(transactional: bool) -> bool:
    """Whether a transactional send may go to a recipient who opted out
    (``MMC['ALLOW_TRANSACTIONAL_TO_OPTED_OUT']``)."""
    return bool(transactional) and bool(mmc_settings.ALLOW_TRANSACTIONAL_TO_OPTED_OUT)


def may_send(recipient: Recipient | None, channel_type: str, *, transactional: bool = False
             ) -> bool:
    """Whether ``recipient`` may be sent a message on ``channel_type`` now."""
    if recipient is None or transactional_allowed(transactional):
        return True
    return not recipient.has_opted_out(channel_type)


def set_consent(
    recipient: Recipient | str,
    channel_type: str,
    opted_out: bool,
    *,
    source: str = ConsentChange.Source.API,
    detail: str = "",
    user: AbstractBaseUser | None = None,
    occurred_at: datetime | None = None,
    log_unchanged: bool = False,
) -> bool:
    """Record that ``recipient`` opted out of (or back in to) messages on
    ``channel_type``. Logged as a :class:`~django_mmc.models.ConsentChange`;
    fires ``consent_changed`` after commit. Returns whether anything changed.

    ``occurred_at`` is when the wish was expressed (default: now). Consent
    follows the latest wish, not the latest to arrive: a wish older than one
    already logged for the recipient and channel type changes nothing and is
    logged as ``superseded``. ``log_unchanged`` logs a wish that changes
    nothing (a second STOP) too, so its time counts."""
    channel_type = str(channel_type).upper()
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic(using=database()):
        if not isinstance(recipient, Recipient):
            recipient = Recipient.objects.for_number(recipient)
        locked = Recipient.objects.select_for_update().get(pk=recipient.pk)
        latest = (ConsentChange.objects.filter(recipient=locked, channel_type=channel_type,
                                               superseded=False)
                  .order_by("-occurred_at").values_list("occurred_at", flat=True).first())
        log = {"recipient": locked, "channel_type": channel_type, "opted_out": bool(opted_out),
               "source": source, "detail": detail[:200], "changed_by": acting_user(user),
               "occurred_at": occurred_at}
        if latest is not None and occurred_at < latest:
            ConsentChange.objects.create(superseded=True, **log)
            logger.info("django_mmc: a %s consent wish for %s from %s is older than the last "
                        "one applied; logged as superseded", channel_type, locked.pk,
                        occurred_at.isoformat())
            return False
        current = set(locked.opted_out_channel_types or [])
        if (channel_type in current) == bool(opted_out):
            if log_unchanged:
                ConsentChange.objects.create(**log)
            return False
        current = current | {channel_type} if opted_out else current - {channel_type}
        locked.opted_out_channel_types = sorted(current)
        locked.save(update_fields=["opted_out_channel_types", "updated_at"])
        ConsentChange.objects.create(**log)
        recipient.opted_out_channel_types = locked.opted_out_channel_types

        def arguments(row: Recipient) -> dict[str, Any]:
            return {"recipient": row, "channel_type": channel_type,
                    "opted_out": bool(opted_out), "source": source}

        signals.send_after_commit(signals.consent_changed, Recipient, [locked.pk], arguments)
    return True


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


def apply_keyword(recipient: Recipient, channel_type: str, text: str,
                  written_at: datetime | None = None) -> bool:
    """Apply a consent keyword the recipient wrote on ``channel_type`` at
    ``written_at``, in the order they wrote them whatever the order they
    arrive in; returns whether their consent changed."""
    opted_out = consent_keyword(text)
    if opted_out is None or not channel_type:
        return False
    # Nothing was written in the future: a platform clock ahead of ours must
    # not make a keyword outrank what staff do after it arrived.
    now = timezone.now()
    written_at = min(written_at, now) if written_at else now
    return set_consent(recipient, channel_type, opted_out,
                       source=ConsentChange.Source.KEYWORD, detail=text[:200],
                       occurred_at=written_at, log_unchanged=True)
