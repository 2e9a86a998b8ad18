from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ..status import (
    ACTIVE_DIALOGUE_STATUSES,
    UNSENT_STATUSES,
    ClosedBy,
    DialogueStatus,
    Direction,
    InitiatedBy,
    Status,
)
from .base import OutboundFields
from .directory import ChannelGroup, Template
from .recipients import Recipient

if TYPE_CHECKING:  # pragma: no cover
    from django.contrib.auth.models import AbstractBaseUser


class Dialogue(models.Model):
    """An exclusive two-way conversation between one of this site's agents and
    a recipient on a channel group.

    While it is open only its agent may message the recipient, and everything
    the recipient writes on the group arrives here. The database allows at
    most one open dialogue per recipient and channel group, as the platform
    does."""

    agent_key = models.CharField(_("agent"), max_length=64, db_index=True)
    recipient = models.ForeignKey(
        Recipient, on_delete=models.PROTECT, related_name="dialogues",
        verbose_name=_("recipient"),
    )
    channel_group = models.ForeignKey(
        ChannelGroup, on_delete=models.PROTECT, related_name="dialogues",
        verbose_name=_("channel group"),
    )
    channel_type = models.CharField(_("channel type"), max_length=32, blank=True)
    platform_id = models.CharField(
        _("platform id"), max_length=64, unique=True, null=True, blank=True, editable=False
    )
    idempotency_key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, unique=True,
                                       editable=False)
    status = models.CharField(
        _("status"), max_length=16, choices=DialogueStatus.choices,
        default=DialogueStatus.OPENING,
    )
    initiated_by = models.CharField(
        _("initiated by"), max_length=16, choices=InitiatedBy.choices, default=InitiatedBy.AGENT
    )
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.CharField(
        _("closed by"), max_length=16, choices=ClosedBy.choices, blank=True
    )
    opened_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("opened by user"),
    )
    closed_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("closed by user"),
    )
    #: For a conflict: the platform dialogue and agent that hold the recipient.
    conflict_dialogue_id = models.CharField(_("held by dialogue"), max_length=64, blank=True)
    conflict_agent_id = models.CharField(_("held by agent"), max_length=64, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_detail = models.TextField(_("failure detail"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_inbound_at = models.DateTimeField(_("last message from recipient"), null=True,
                                           blank=True)
    #: The staff user answering the dialogue (the support inbox's claim), so
    #: two people do not answer the same customer; cleared when it closes.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("assigned to"),
    )
    checked_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    #: The template the create call carried, where the dialect says the
    #: platform takes one there (otherwise it is the dialogue's first message).
    opening_template = models.ForeignKey(
        Template, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("opening template"),
    )
    opening_context = models.JSONField(_("opening template context"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("dialogue")
        verbose_name_plural = _("dialogues")
        ordering = ["-created_at"]
        permissions = [
            ("reply_dialogue", _("Can open dialogues and reply in them")),
            ("close_dialogue", _("Can close dialogues")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "channel_group"],
                condition=Q(status__in=ACTIVE_DIALOGUE_STATUSES),
                name="mmc_one_open_dialogue_per_recipient_group",
                violation_error_message=_(
                    "This recipient already has an open dialogue on this channel group."
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="mmc_dialogue_status_idx"),
            # Closed dialogues not polled since they closed: the last look of
            # django_mmc.polling.poll_dialogues finds them without a scan.
            models.Index(
                fields=["closed_at"], name="mmc_dialogue_last_look_idx",
                condition=Q(status=DialogueStatus.CLOSED) & (
                    Q(checked_at__isnull=True) | Q(checked_at__lte=models.F("closed_at"))),
            ),
        ]

    def __str__(self) -> str:
        return _("%(recipient)s with %(agent)s (%(status)s)") % {
            "recipient": self.recipient, "agent": self.agent_key,
            "status": self.get_status_display()}

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_DIALOGUE_STATUSES

    def last_inbound_message_at(self) -> Any:
        """When the recipient last wrote on this channel group, in any
        dialogue (the start of WhatsApp's customer-care window)."""
        from django.db.models import Max

        return Message.objects.filter(
            dialogue__recipient_id=self.recipient_id,
            dialogue__channel_group_id=self.channel_group_id,
            direction=Direction.INBOUND,
        ).aggregate(last=Max("received_at"))["last"]

    def can_send_text(self, channel_type: str | None = None) -> bool:
        """Whether free text may be sent now on ``channel_type`` (default the
        dialogue's). On the channel types of ``MMC['CARE_WINDOW_CHANNEL_TYPES']``
        (WhatsApp) free text is allowed only within ``MMC['CARE_WINDOW_HOURS']``
        of the recipient's last message; outside it only templates. SMS has no
        such window."""
        from datetime import timedelta

        from django.utils import timezone

        from ..conf import mmc_settings

        kind = channel_type or self.channel_type
        if kind not in mmc_settings.CARE_WINDOW_CHANNEL_TYPES:
            return True
        last = self.last_inbound_message_at()
        if last is None:
            return False
        return timezone.now() - last < timedelta(hours=mmc_settings.CARE_WINDOW_HOURS)

    def send_message(
        self,
        text: str | None = None,
        *,
        template: Any = None,
        context: dict[str, Any] | None = None,
        files: Any = (),
        channel_type: str | None = None,
        user: AbstractBaseUser | None = None,
    ) -> Message:
        """Send a message in this dialogue: free ``text``, or a ``template``
        with its ``context``. Validated now, stored, and sent by a worker after
        the current transaction commits. See :func:`django_mmc.api.send_message`."""
        # The only sanctioned upward edge of the package: a model method
        # calling the public API (the import is deferred; the API imports the
        # models). Nothing else below the API imports it.
        from ..api import send_message

        return send_message(
            self, text, template=template, context=context, files=files,
            channel_type=channel_type, user=user,
        )

    def close(self, *, user: AbstractBaseUser | None = None) -> Dialogue:
        """Close the dialogue on the platform (after its queued messages are
        sent), so other agents can reach the recipient again."""
        from ..api import close_dialogue  # the sanctioned upward edge, as above

        return close_dialogue(self, user=user)


class Message(OutboundFields):
    """One message of a dialogue, in either direction."""

    dialogue = models.ForeignKey(
        Dialogue, on_delete=models.CASCADE, related_name="messages", verbose_name=_("dialogue")
    )
    direction = models.CharField(_("direction"), max_length=16, choices=Direction.choices)
    text = models.TextField(_("text"), blank=True)
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, null=True, blank=True, related_name="messages",
        verbose_name=_("template"),
    )
    context = models.JSONField(_("context"), default=dict, blank=True)
    #: ``[{"id": ..., "name": ..., "contentType": ..., "size": ..., "url": ...}]``
    files = models.JSONField(_("files"), default=list, blank=True)
    channel_type = models.CharField(_("channel type"), max_length=32, blank=True)
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", verbose_name=_("sent by"),
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["dialogue", "created_at"], name="mmc_message_dialogue_idx"),
            models.Index(
                fields=["status_changed_at"], name="mmc_message_poll_idx",
                condition=Q(status__in=[Status.ACCEPTED, Status.SENT, Status.DELIVERED]),
            ),
            models.Index(
                fields=["next_attempt_at"], name="mmc_message_outbox_idx",
                condition=Q(status__in=UNSENT_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        arrow = "\u2190" if self.direction == Direction.INBOUND else "\u2192"
        body = self.text or (str(self.template) if self.template_id else "")
        return f"{arrow} {body[:60]}"
