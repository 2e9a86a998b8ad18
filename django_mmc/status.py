"""Statuses and the rule that they only move forward.

Notifications and dialogue messages share one status set: the platform's own
(``ACCEPTED`` < ``SENT`` < ``DELIVERED`` < ``READ``, and the terminal
``FAILED``/``EXPIRED``) plus local ones that say where a row is before the
platform has it. Reports of platform statuses (polls and webhooks) arrive out
of order, and may name anything; :func:`can_advance` is the single rule that
decides whether a report changes anything.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .contract import ERROR_DIALOGUE_ACTIVE, ERROR_DIALOGUE_CLOSED, PlatformStatus
from .contract import ClosedBy as WireClosedBy
from .contract import Direction as WireDirection
from .contract import InitiatedBy as WireInitiatedBy


class Status(models.TextChoices):
    """A notification's or dialogue message's status: the platform's own
    words (:class:`django_mmc.contract.PlatformStatus`) and the local ones."""

    SCHEDULED = "SCHEDULED", _("Scheduled")
    QUEUED = "QUEUED", _("Waiting to be sent")
    SENDING = "SENDING", _("Being sent")
    ERROR = "ERROR", _("Not sent: retries used up")
    REFUSED = "REFUSED", _("Refused by the platform")
    ACCEPTED = PlatformStatus.ACCEPTED.value, _("Accepted")
    SENT = PlatformStatus.SENT.value, _("Sent")
    DELIVERED = PlatformStatus.DELIVERED.value, _("Delivered")
    READ = PlatformStatus.READ.value, _("Read")
    FAILED = PlatformStatus.FAILED.value, _("Failed")
    EXPIRED = PlatformStatus.EXPIRED.value, _("Expired")
    RECEIVED = "RECEIVED", _("Received")
    CANCELLED = "CANCELLED", _("Cancelled")


_RANK = {
    Status.SCHEDULED: 0,
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.ERROR: 1,
    Status.ACCEPTED: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.READ: 5,
    Status.FAILED: 9,
    Status.EXPIRED: 9,
    Status.REFUSED: 9,
    Status.RECEIVED: 9,
    Status.CANCELLED: 9,
}

#: Nothing moves a row out of these.
FINAL_STATUSES = frozenset({Status.READ, Status.FAILED, Status.EXPIRED, Status.REFUSED,
                            Status.RECEIVED, Status.CANCELLED})
#: Statuses the platform reports.
PLATFORM_STATUSES = frozenset(Status(s.value) for s in PlatformStatus)
#: Rows the platform has and may still report on: what status polling asks about.
POLLABLE_STATUSES = (Status.ACCEPTED, Status.SENT, Status.DELIVERED)
#: Rows waiting for a worker.
UNSENT_STATUSES = (Status.QUEUED, Status.SENDING)
FAILURE_STATUSES = frozenset({Status.FAILED, Status.EXPIRED, Status.REFUSED, Status.ERROR})

#: Every status value (``Status.values`` builds a new list on each use).
STATUS_VALUES = frozenset(Status.values)

#: The timestamp field each status stamps when it is reached.
TIMESTAMP_FIELDS = {
    Status.ACCEPTED: "accepted_at",
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
    Status.EXPIRED: "failed_at",
    Status.REFUSED: "failed_at",
    Status.CANCELLED: "failed_at",
}


def rank(status: str) -> int:
    return _RANK.get(Status(status), 0) if status in STATUS_VALUES else 0


def is_platform_status(word: object) -> bool:
    """Whether ``word`` is a status the platform reports. The local statuses
    (``QUEUED``, ``SENDING``, ``ERROR``, ``CANCELLED``, ``RECEIVED``...) are
    ours alone: a report that names one is an unknown word, not an order."""
    return isinstance(word, str) and word in PLATFORM_STATUSES


def is_forward(old: str, new: str) -> bool:
    """Whether moving a row from ``old`` to ``new`` goes forward: never out
    of a final status, never backwards, never sideways. The order of every
    status, local ones included (what a row may ever go through)."""
    if old in FINAL_STATUSES or new not in STATUS_VALUES:
        return False
    return rank(new) > rank(old)


def can_advance(old: str, new: str) -> bool:
    """Whether a report from the platform (a webhook or a poll) saying
    ``new`` moves a row in ``old``: only to a status the platform reports
    (:func:`is_platform_status`), and only forward (:func:`is_forward`)."""
    return is_platform_status(new) and is_forward(old, new)


def earlier_statuses(new: str) -> list[str]:
    """Every status from which ``new`` is a step forward, for a conditional
    ``UPDATE ... WHERE status IN (...)`` that cannot regress under races."""
    return [s for s in Status.values if is_forward(s, new)]


class Priority(models.TextChoices):
    """How urgent a send is. Each priority can have its own Celery queue
    (``MMC['PRIORITY_QUEUES']``) so a worker pool serves urgent sends first."""

    NOW = "now", _("Now (one-time codes)")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low (campaigns)")


class DialogueStatus(models.TextChoices):
    OPENING = "OPENING", _("Waiting to open")
    OPEN = "OPEN", _("Open")
    CLOSING = "CLOSING", _("Closing")
    CLOSED = "CLOSED", _("Closed")
    CONFLICT = "CONFLICT", _("Held by another agent")
    REFUSED = "REFUSED", _("Refused by the platform")
    ERROR = "ERROR", _("Not opened: retries used up")


#: A dialogue in one of these holds the recipient on its channel group: the
#: database allows one such dialogue per recipient and channel group.
ACTIVE_DIALOGUE_STATUSES = (DialogueStatus.OPENING, DialogueStatus.OPEN, DialogueStatus.CLOSING)


class Direction(models.TextChoices):
    INBOUND = WireDirection.INBOUND.value, _("From the recipient")
    OUTBOUND = WireDirection.OUTBOUND.value, _("To the recipient")


class InitiatedBy(models.TextChoices):
    AGENT = WireInitiatedBy.AGENT.value, _("Us")
    RECIPIENT = WireInitiatedBy.RECIPIENT.value, _("The recipient")


class ClosedBy(models.TextChoices):
    AGENT = WireClosedBy.AGENT.value, _("Us")
    RECIPIENT = WireClosedBy.RECIPIENT.value, _("The recipient")
    PLATFORM = WireClosedBy.PLATFORM.value, _("The platform")
    TIMEOUT = WireClosedBy.TIMEOUT.value, _("Inactivity timeout")


class FailureCode:
    """The ``failure_code`` values django_mmc sets itself (the platform's own
    codes are stored as it sends them)."""

    #: Not sent before its ``expires_at``.
    EXPIRED_UNSENT = "EXPIRED_UNSENT"
    #: The recipient opted out of the channel type before it was sent.
    OPTED_OUT = "OPTED_OUT"
    #: Its dialogue closed (or was never open) before it could be sent.
    DIALOGUE_CLOSED = ERROR_DIALOGUE_CLOSED
    #: Its dialogue could not be opened.
    DIALOGUE_NOT_OPENED = "DIALOGUE_NOT_OPENED"
    #: The platform answered a create with a dialogue id another recipient's
    #: dialogue already holds.
    DIALOGUE_ID_CONFLICT = "DIALOGUE_ID_CONFLICT"
    #: Another agent holds the recipient.
    DIALOGUE_ACTIVE = ERROR_DIALOGUE_ACTIVE
    #: The platform refused a close (409/422): ended here with the reason.
    CLOSE_REFUSED = "CLOSE_REFUSED"
    #: Closing on the platform kept failing: ended here, retries used up.
    CLOSE_GAVE_UP = "CLOSE_GAVE_UP"

    @staticmethod
    def http(status_code: int | None) -> str:
        """The code of a refusal that came without one of the platform's."""
        return f"HTTP_{status_code}"
