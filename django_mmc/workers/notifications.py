"""Delivering notifications, one at a time or a campaign's batch.

Exactly once, in three parts:

* A worker *claims* a row with one conditional ``UPDATE`` (``QUEUED`` ->
  ``SENDING``) under a new claim token, so two workers, or a task delivered
  twice, never both send it. A row stuck in ``SENDING`` (its worker died)
  can be claimed again by the redelivered task itself, or by anyone once its
  lease has run out.
* In the same transaction the rows are loaded with their recipients locked,
  and the recipient's consent is checked: an opt-out that committed before
  the claim stops the send (``REFUSED``, ``OPTED_OUT``), one that commits
  after it waits for the claim and comes after it.
* Every attempt sends the row's own ``Idempotency-Key``: when an attempt's
  outcome is unknown (timeout, crash after the platform answered), the next
  attempt gets the platform's first answer back instead of a second message.
  The result is written under the claim that sent it.

A send costs three queries: claim, load, record.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import consent, transitions
from ..client import get_client
from ..dispatch import database
from ..models import Notification
from ..policy import Outcome, Result, RetryLater
from ..status import FailureCode, Status
from .attempts import record_failure
from .outbox import settle_expired

logger = logging.getLogger("django_mmc.sending")


def not_expired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def claim_and_load(pks: list[int], task_id: str | None
                   ) -> tuple[transitions.Claim, list[Notification]]:
    """Claim the rows and load the claimed ones with their recipients
    locked (in recipient order, so two batches never deadlock), in one
    transaction: consent read here cannot change before the claim commits."""
    with transaction.atomic(using=database()):
        claim = transitions.claim(Notification, pks, task_id, extra=not_expired())
        if not claim:
            return claim, []
        rows = list(
            Notification.objects.select_related("recipient", "template", "channel_group")
            .select_for_update(of=("recipient",), no_key=True)
            .filter(pk__in=pks, status=Status.SENDING, claim_token=claim.token)
            .order_by("recipient_id", "pk"))
    return claim, sorted(rows, key=lambda row: row.pk)


def deliver_notification(pk: int, task_id: str | None = None) -> Result:
    """Send notification ``pk`` if it still needs sending, has not expired,
    and its recipient's consent allows it."""
    claim, rows = claim_and_load([pk], task_id)
    if not rows:
        if settle_expired(Notification.objects.filter(pk=pk)):
            return Result(Outcome.EXPIRED, "expired before it could be sent")
        return Result(Outcome.SKIPPED, "not waiting to be sent, or someone else is sending it")
    return deliver_claimed(rows[0], claim)


def deliver_notification_batch(pks: list[int], task_id: str
                               ) -> tuple[dict[str, int], list[tuple[int, float]]]:
    """Send a few notifications of a campaign: one claim and one load for all
    of them, then one request and one record each. A row whose claim may
    have run out while earlier ones were slow is checked again before its
    request, and skipped if another claim has it now. Returns the outcomes
    counted, and ``(pk, countdown)`` for each that must retry."""
    outcomes: dict[str, int] = {}
    retries: list[tuple[int, float]] = []
    claim, rows = claim_and_load(list(pks), task_id)
    if claim.count < len(pks):
        expired = settle_expired(Notification.objects.filter(pk__in=pks))
        if expired:
            outcomes[Outcome.EXPIRED.value] = expired
    for row in rows:
        if not claim.holds(Notification, row.pk):
            outcome = Outcome.SKIPPED
        else:
            try:
                outcome = deliver_claimed(row, claim).outcome
            except RetryLater as later:
                retries.append((row.pk, later.countdown))
                outcome = Outcome.RETRYING
        outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
    return outcomes, retries


def deliver_claimed(row: Notification, claim: transitions.Claim) -> Result:
    """One attempt at a notification this worker has claimed (its recipient
    loaded under the claim's lock)."""
    if not consent.may_send(row.recipient, row.channel_type, transactional=row.transactional):
        if row.maybe_sent:
            # An earlier attempt, made before the opt-out, may have reached
            # the platform: never declare it unsent without asking.
            try:
                resource = get_client().find_notification(str(row.idempotency_key))
            except Exception as error:  # noqa: BLE001 - recorded on the row
                return record_failure(Notification, row, error, claim)
            if resource is not None:
                status = transitions.record_sent(Notification, row.pk, resource, claim.token)
                return Result(Outcome.DONE, f"{status} {resource.id} (sent before the opt-out)")
        transitions.record_refused(
            Notification, row.pk, code=FailureCode.OPTED_OUT,
            detail=f"The recipient opted out of {row.channel_type} messages.",
            claim_token=claim.token)
        logger.info("django_mmc: notification %s not sent: the recipient opted out of %s",
                    row.pk, row.channel_type)
        return Result(Outcome.OPTED_OUT, row.channel_type)
    try:
        resource = get_client().create_notification(
            recipient=row.recipient.phone_number,
            customer_id=row.recipient.customer_id,
            template_id=row.template.platform_id,
            channel_group_id=row.channel_group.platform_id,
            channel_type=row.channel_type,
            context=row.context,
            idempotency_key=str(row.idempotency_key),
        )
    except Exception as error:  # noqa: BLE001 - every outcome is recorded on the row
        return record_failure(Notification, row, error, claim)
    status = transitions.record_sent(Notification, row.pk, resource, claim.token)
    return Result(Outcome.DONE, f"{status} {resource.id}")
