"""Recording a failed attempt to send a notification or dialogue message."""

from __future__ import annotations

import logging
from typing import Any

from .. import transitions
from ..policy import Action, Outcome, Result, RetryLater, decide, maybe_reached

logger = logging.getLogger("django_mmc.sending")


def record_failure(model: transitions.Model, row: Any, error: BaseException,
                   claim: transitions.Claim) -> Result:
    """What the error means for the row (:func:`django_mmc.policy.decide`):
    ``REFUSED`` with the platform's code and detail; back to ``QUEUED`` and
    :class:`~django_mmc.policy.RetryLater` raised; or ``ERROR`` when the
    retries are used up. Nothing is dropped without the row saying why.
    Recorded only under ``claim``."""
    name = model._meta.model_name
    decision = decide(error, row.attempts)
    unknown = maybe_reached(error)
    if decision.action is Action.REFUSE:
        transitions.record_refused(model, row.pk, code=decision.code, detail=decision.detail,
                                   text=decision.text, claim_token=claim.token)
        logger.warning("django_mmc: %s %s refused: %s", name, row.pk, decision.text)
        return Result(Outcome.REFUSED, decision.text)
    if decision.action is Action.RETRY:
        transitions.record_retry(model, row.pk, text=decision.text, delay=decision.delay,
                                 claim_token=claim.token, maybe_sent=unknown)
        logger.info("django_mmc: %s %s attempt %s failed (%s); retrying in %.1fs",
                    name, row.pk, row.attempts, decision.text, decision.delay)
        raise RetryLater(decision.delay, decision.text)
    transitions.record_gave_up(model, row.pk, text=decision.text, claim_token=claim.token,
                               maybe_sent=unknown)
    logger.error("django_mmc: %s %s not sent after %s attempts: %s",
                 name, row.pk, row.attempts, decision.text)
    return Result(Outcome.GAVE_UP, decision.text)
