from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WebhookEvent(models.Model):
    """One correctly signed webhook delivery, stored before anything else is
    done with it.

    The body is untrusted input even though its signature verified: it is
    kept exactly as received so a processing bug loses nothing and the event
    can be processed again (admin action, ``mmc_process_events``)."""

    class State(models.TextChoices):
        PENDING = "PENDING", _("Waiting to be processed")
        WAITING = "WAITING", _("Waiting for the object it is about")
        PROCESSED = "PROCESSED", _("Processed")
        IGNORED = "IGNORED", _("Stored, not processed (unknown type)")
        FAILED = "FAILED", _("Processing failed")
        STALE = "STALE", _("Gave up waiting for the object it is about")

    #: Unique (the constraint below): a repeated delivery is stored once.
    event_id = models.CharField(_("event id"), max_length=128)
    agent_key = models.CharField(_("agent"), max_length=64)
    event_type = models.CharField(_("event type"), max_length=64)
    body = models.TextField(_("raw body"))
    signature = models.CharField(_("signature"), max_length=128, blank=True)
    occurred_at = models.DateTimeField(_("occurred"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    #: The platform id of the notification, message or dialogue it is about
    #: (the admin's search).
    subject_id = models.CharField(_("about"), max_length=64, blank=True)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.PENDING
    )
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    #: When it was last handed to a worker: the outbox sweeper waits
    #: ``OUTBOX_DELAY`` after that before handing it over again.
    enqueued_at = models.DateTimeField(_("handed to a worker"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at"]
        permissions = [
            ("reprocess_webhookevent", _("Can process webhook events again")),
        ]
        # Every delivery writes each index, so there are only those a query
        # uses: the id (deduplication, exact search), the subject (exact
        # search), the state (batches, sweeper, clean-up) and the arrival
        # time (the admin's order). Declared here rather than with
        # ``unique``/``db_index``, which on PostgreSQL add a second,
        # ``LIKE``-only index to each text column.
        constraints = [
            models.UniqueConstraint(fields=["event_id"], name="mmc_event_id_unique"),
        ]
        indexes = [
            models.Index(fields=["subject_id"], name="mmc_event_subject_idx"),
            models.Index(fields=["state", "received_at"], name="mmc_event_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.get_state_display()})"
