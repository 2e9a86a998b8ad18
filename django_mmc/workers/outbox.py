"""The outbox sweeper: hands over what should have been handed over by now.

Enqueueing happens after commit and lives only in memory, so the rows are the
outbox. Run :func:`sweep_outbox` periodically (the ``django_mmc.sweep_outbox``
task; its interval is also the precision of ``send_at``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from .. import dispatch, transitions
from ..conf import mmc_settings
from ..dispatch import Work
from ..models import Dialogue, Message, Notification, WebhookEvent
from ..status import DialogueStatus, Direction, Status


def sweep_outbox(limit: int = 1000) -> dict[str, int]:
    """Enqueue rows that should have been sent by now and were not (the
    process died between commit and enqueue, the broker was down, a worker
    was killed mid-send), release scheduled notifications that are due and
    expire those whose time has passed. Returns counts per kind of work."""
    now = timezone.now()
    due = now - timedelta(seconds=mmc_settings.OUTBOX_DELAY)
    lease_expired = now - timedelta(seconds=mmc_settings.SEND_LEASE)
    counts = {"expired": transitions.expire_unsent(Notification.objects.all())}

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
