"""The outbox sweeper: hands over what should have been handed over by now.

Enqueueing happens after commit and lives only in memory, so the rows are the
outbox. Run :func:`sweep_outbox` periodically (the ``django_mmc.sweep_outbox``
task; its interval is also the precision of ``send_at``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .. import dispatch, transitions
from ..client import get_client
from ..conf import mmc_settings
from ..dispatch import Work
from ..exceptions import MMCError
from ..models import Dialogue, Message, Notification, WebhookEvent
from ..status import DialogueStatus, Direction, Status

logger = logging.getLogger("django_mmc.sending")


def settle_maybe_sent(notification: Notification, old: str) -> Any:
    """Ask the platform, by the row's idempotency key, whether it has
    notification ``notification`` (its last attempt ended without an
    answer). Found: the row takes the platform's id and status and ``True``
    is returned; not found: ``False``. Raises :class:`MMCError` when the
    platform could not be asked."""
    resource = get_client().find_notification(str(notification.idempotency_key))
    if resource is None:
        return False
    transitions.record_found(notification.pk, old, resource)
    logger.info("django_mmc: notification %s was on the platform as %s after all",
                notification.pk, resource.id)
    return True


def settle_expired(queryset: Any, limit: int = 1000) -> int:
    """Expire the rows of ``queryset`` whose time ran out before they were
    sent: at once those surely never sent, after asking the platform those
    that may have reached it (a timed-out attempt, a worker that died
    mid-send), which take the platform's status instead when it has them.
    Returns how many expired."""
    expired = transitions.expire_unsent(queryset)
    for row in transitions.expired_unsent(queryset, maybe_sent=True)[:limit]:
        try:
            found = settle_maybe_sent(row, row.status)
        except MMCError as error:
            logger.warning("django_mmc: could not ask the platform about notification %s: %s",
                           row.pk, error)
            continue
        if not found:
            expired += transitions.expire(row.pk, row.status)
    return expired


def sweep_outbox(limit: int = 1000) -> dict[str, int]:
    """Enqueue rows that should have been sent by now and were not (the
    process died between commit and enqueue, the broker was down, a worker
    was killed mid-send), release scheduled notifications that are due and
    expire those whose time has passed. Returns counts per kind of work."""
    now = timezone.now()
    due = now - timedelta(seconds=mmc_settings.OUTBOX_DELAY)
    lease_expired = now - timedelta(seconds=mmc_settings.SEND_LEASE)
    counts = {"expired": settle_expired(Notification.objects.all(), limit)}

    scheduled = list(Notification.objects.filter(
        status=Status.SCHEDULED, send_at__lte=now).values_list("pk", flat=True)[:limit])
    counts["scheduled"] = transitions.release_scheduled(scheduled, now)

    for model, work in ((Notification, Work.DELIVER_NOTIFICATION),
                        (Message, Work.DELIVER_MESSAGE)):
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
        counts[work.name.lower()] = sum(dispatch.enqueue(work, pk, priority=priority)
                                        for pk, priority in rows)
    for status, work in ((DialogueStatus.OPENING, Work.OPEN_DIALOGUE),
                         (DialogueStatus.CLOSING, Work.CLOSE_DIALOGUE)):
        pks = list(Dialogue.objects.filter(status=status, next_attempt_at__lt=due)
                   .values_list("pk", flat=True)[:limit])
        Dialogue.objects.filter(pk__in=pks).update(next_attempt_at=now)
        counts[work.name.lower()] = dispatch.enqueue_many(work, pks)
    events = list(WebhookEvent.objects.filter(
        state__in=(WebhookEvent.State.PENDING, WebhookEvent.State.WAITING),
        received_at__lt=due, enqueued_at__lt=due,
    ).order_by("received_at").values_list("pk", flat=True)[:limit])
    WebhookEvent.objects.filter(pk__in=events).update(enqueued_at=now)
    counts[Work.PROCESS_EVENT.name.lower()] = dispatch.enqueue_many(Work.PROCESS_EVENT, events)
    return counts
