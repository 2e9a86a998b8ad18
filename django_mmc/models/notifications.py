from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..status import POLLABLE_STATUSES, UNSENT_STATUSES, Priority, Status
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
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    send_at = models.DateTimeField(
        _("send at"), null=True, blank=True,
        help_text=_("Scheduled: picked up by the outbox sweeper once this time has come."),
    )
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True,
        help_text=_("Not sent after this time: marked expired instead."),
    )
    transactional = models.BooleanField(
        _("transactional"), default=False,
        help_text=_("Sent even to a recipient who opted out, where the settings allow it."),
    )
    #: The channel types still to try, in order, if this one fails in a way
    #: another channel can fix.
    fallback_channel_types = models.JSONField(_("fallback channels"), default=list, blank=True)
    fallback_of = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="fallback",
        verbose_name=_("fallback of"),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at"]
        permissions = [
            ("send_notification", _("Can send notifications")),
            ("cancel_notification", _("Can cancel scheduled notifications")),
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
            models.Index(
                fields=["send_at"], name="mmc_notif_scheduled_idx",
                condition=Q(status=Status.SCHEDULED),
            ),
        ]

    def __str__(self) -> str:
        return _("%(template)s to %(recipient)s (%(status)s)") % {
            "template": self.template, "recipient": self.recipient,
            "status": self.get_status_display()}
