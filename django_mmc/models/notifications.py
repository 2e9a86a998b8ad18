from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..status import POLLABLE_STATUSES, UNSENT_STATUSES
from .base import OutboundFields
from .directory import ChannelGroup, Template
from .recipients import Recipient


class Notification(OutboundFields):
    """A one-way, template-based message, sent whatever dialogues are open.

    Create it with :func:`django_mmc.send_notification`, which validates,
    stores and enqueues the send once the surrounding transaction commits.
    ``idempotency_key`` is the ``Idempotency-Key`` of every attempt."""

    recipient = models.ForeignKey(
        Recipient, on_delete=models.PROTECT, related_name="notifications",
        verbose_name=_("recipient"),
    )
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="notifications",
        verbose_name=_("template"),
    )
    channel_group = models.ForeignKey(
        ChannelGroup, on_delete=models.PROTECT, related_name="notifications",
        verbose_name=_("channel group"),
    )
    channel_type = models.CharField(_("channel type"), max_length=32)
    context = models.JSONField(_("context"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("sent by"),
    )
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries",
        verbose_name=_("retry of"),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        permissions = [
            ("send_notification", _("Can send notifications")),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="mmc_notif_status_idx"),
            models.Index(
                fields=["status_changed_at"], name="mmc_notif_poll_idx",
                condition=Q(status__in=POLLABLE_STATUSES),
            ),
            models.Index(
                fields=["next_attempt_at"], name="mmc_notif_outbox_idx",
                condition=Q(status__in=UNSENT_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.recipient} ({self.get_status_display()})"
