"""Channel fallback: a notification that failed in a way another channel can
fix is sent again, once, on the next channel type of its chain.

:func:`start_fallback` runs after the commit of every move of a notification
to ``FAILED`` (the app's ``ready()`` registers it with
:func:`django_mmc.transitions.on_entering`)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import consent, dispatch
from ..conf import mmc_settings
from ..dispatch import Work, database
from ..models import Notification
from ..status import Status

logger = logging.getLogger("django_mmc.sending")


def start_fallback(pk: int) -> Notification | None:
    """After notification ``pk`` failed in a way another channel can fix
    (``MMC['FALLBACK_FAILURE_CODES']``), send one follow-up on the next
    channel type of its chain that its group has, its template allows and
    the recipient's consent permits (exactly the rules of a direct send on
    that channel, ``MMC['ALLOW_TRANSACTIONAL_TO_OPTED_OUT']`` included).

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
    while chain and (chain[0] not in available or not consent.may_send(
            row.recipient, chain[0], transactional=row.transactional)):
        chain.pop(0)
    if not chain:
        return None
    try:
        with transaction.atomic(using=database()):
            follow_up = Notification.objects.create(
                recipient=row.recipient, template=row.template, channel_group=row.channel_group,
                channel_type=chain[0], context=row.context, created_by=row.created_by,
                priority=row.priority, expires_at=row.expires_at,
                transactional=row.transactional, fallback_channel_types=chain[1:],
                fallback_of=row, next_attempt_at=timezone.now(),
            )
            dispatch.enqueue_on_commit(Work.DELIVER_NOTIFICATION, follow_up.pk,
                                       priority=row.priority)
    except IntegrityError:
        return None  # another process started this fallback already
    logger.info("django_mmc: notification %s failed on %s (%s); falling back to %s as %s",
                row.pk, row.channel_type, row.failure_code, chain[0], follow_up.pk)
    return follow_up
