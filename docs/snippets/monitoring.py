# shop/monitoring.py: numbers worth an alert when they grow.
from datetime import timedelta

from django.utils import timezone

from django_mmc.models import Dialogue, Notification, WebhookEvent
from django_mmc.status import DialogueStatus, Status


def mmc_health():
    now = timezone.now()
    last_day = now - timedelta(days=1)
    overdue = now - timedelta(minutes=10)
    return {
        # Never reached the platform: retries used up, or refused by it.
        "notifications_error": Notification.objects.filter(
            status=Status.ERROR, status_changed_at__gte=last_day).count(),
        "notifications_refused": Notification.objects.filter(
            status=Status.REFUSED, status_changed_at__gte=last_day).count(),
        # Waiting for a worker for too long: are workers and beat running?
        "notifications_overdue": Notification.objects.filter(
            status__in=[Status.QUEUED, Status.SENDING], created_at__lt=overdue).count(),
        "dialogues_not_opened": Dialogue.objects.filter(
            status__in=[DialogueStatus.CONFLICT, DialogueStatus.REFUSED, DialogueStatus.ERROR],
            updated_at__gte=last_day).count(),
        # Stored webhook deliveries that could not be applied.
        "events_failed": WebhookEvent.objects.filter(
            state=WebhookEvent.State.FAILED).count(),
        "events_waiting": WebhookEvent.objects.filter(
            state=WebhookEvent.State.WAITING, received_at__lt=overdue).count(),
    }
