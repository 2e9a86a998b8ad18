from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..status import FAILURE_STATUSES, Status


class OutboundFields(models.Model):
    """What every row django_mmc sends carries: its status with a time for
    each status reached, the platform's failure, and the bookkeeping that
    makes sending exactly-once (the idempotency key, attempts, claim)."""

    idempotency_key = models.UUIDField(
        _("idempotency key"), default=uuid.uuid4, unique=True, editable=False,
        help_text=_("Sent with every attempt, so a retry never becomes a second message."),
    )
    platform_id = models.CharField(
        _("platform id"), max_length=64, unique=True, null=True, blank=True, editable=False
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    status_changed_at = models.DateTimeField(_("status changed"), auto_now_add=True)
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_detail = models.TextField(_("failure detail"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    send_started_at = models.DateTimeField(_("send started"), null=True, blank=True)
    send_task_id = models.CharField(max_length=64, blank=True, editable=False)
    #: The claim that owns the row while it is ``SENDING``: a result is
    #: recorded only under the claim that sent it (a fence against a worker
    #: whose lease ran out while another claim took the row over).
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    #: An attempt ended without an answer (a timeout, a lost connection, a
    #: worker that died mid-call): the platform may have the row although
    #: ``platform_id`` is empty. Cancelling or expiring it asks the platform first.
    maybe_sent = models.BooleanField(_("maybe on the platform"), default=False,
                                     editable=False)
    checked_at = models.DateTimeField(_("last polled"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True

    @property
    def is_failure(self) -> bool:
        return self.status in FAILURE_STATUSES

    @property
    def failure_text(self) -> str:
        if self.failure_code and self.failure_detail:
            return f"{self.failure_code}: {self.failure_detail}"
        return self.failure_code or self.failure_detail
