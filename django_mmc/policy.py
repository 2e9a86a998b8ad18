"""One retry and outcome policy for every call a worker makes to the platform.

Sending a notification, opening a dialogue, sending a dialogue message and
closing a dialogue all fail in the same ways, so one function,
:func:`decide`, says what an error means, from the error and the number of
attempts made so far:

* **retry** after a delay: the error is transient (a timeout, a connection
  failure, 5xx, 429) or not the platform's at all (an unexpected exception:
  the attempt may succeed next time), and ``MMC['MAX_RETRIES']`` is not used
  up. The delay is the platform's ``Retry-After`` when it sent one (capped at
  ``MMC['RETRY_AFTER_MAX']``), otherwise Celery's exponential backoff with
  full jitter (``MMC['RETRY_BACKOFF']``, ``MMC['RETRY_BACKOFF_MAX']``).
* **refuse**: the platform answered 4xx (other than 401) and trying again
  cannot help; the row keeps the platform's code and detail.
* **give up**: the retries are used up, or the error cannot be fixed by
  retrying and is ours (the configuration, credentials the platform refuses).

What each operation does with the decision (a notification goes back to
``QUEUED`` or ends ``REFUSED``/``ERROR``, a close ends the dialogue here with
the reason...) is in the worker functions; what the worker reports back is an
:class:`Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from celery.utils.time import get_exponential_backoff_interval

from .conf import mmc_settings
from .exceptions import MMCAPIError, MMCConfigurationError, MMCError, MMCRateLimitedError
from .status import FailureCode


class Outcome(str, Enum):
    """What one run of a worker function did (the task's return value)."""

    #: The platform took it: a notification or message sent, a dialogue
    #: opened or closed.
    DONE = "done"
    #: The platform refused it for good.
    REFUSED = "refused"
    #: Retries used up, or an error retrying cannot fix: the row says why.
    GAVE_UP = "gave_up"
    #: Will be tried again later.
    RETRYING = "retrying"
    #: Nothing to do: not waiting, done already, or another worker has it.
    SKIPPED = "skipped"
    #: Waits for something else first (its dialogue to open, earlier messages).
    WAITING = "waiting"
    #: Its time ran out before it could be sent.
    EXPIRED = "expired"
    #: The consent of the recipient forbids it now.
    OPTED_OUT = "opted_out"
    #: Another agent holds the recipient.
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Result:
    """An :class:`Outcome` with a detail for logs and tests."""

    outcome: Outcome
    detail: str = ""


class Action(str, Enum):
    RETRY = "retry"
    REFUSE = "refuse"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt. ``delay`` (seconds) is set for a
    retry; ``code`` and ``detail`` say why for a refusal or giving up;
    ``text`` describes the error for the row's ``last_error``."""

    action: Action
    text: str
    delay: float = 0.0
    code: str = ""
    detail: str = ""


class RetryLater(Exception):
    """Raised to the task: run again in ``countdown`` seconds."""

    def __init__(self, countdown: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {countdown}s")
        self.countdown = countdown


def describe(error: BaseException) -> str:
    """The error as a row's ``last_error`` keeps it: its type and message,
    never locals or request headers (no django_mmc error carries a secret)."""
    return f"{type(error).__name__}: {error}"[:2000]


def retry_delay(attempt: int, error: BaseException | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: the platform's ``Retry-After``
    when it sent one (capped), otherwise Celery's exponential backoff with
    full jitter."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return float(min(retry_after, mmc_settings.RETRY_AFTER_MAX))
    return float(get_exponential_backoff_interval(
        factor=mmc_settings.RETRY_BACKOFF, retries=max(0, attempt - 1),
        maximum=mmc_settings.RETRY_BACKOFF_MAX, full_jitter=True,
    )) or 0.1


def is_refusal(error: BaseException) -> bool:
    """A 4xx answer (but 401) that the same request can never get past."""
    return (isinstance(error, MMCAPIError) and not error.retryable
            and not isinstance(error, MMCConfigurationError)
            and bool(error.status_code) and 400 <= error.status_code < 500
            and error.status_code != 401)


def is_retryable(error: BaseException) -> bool:
    """Transient platform errors, and anything that is not a django_mmc
    error at all (the next attempt may not meet it)."""
    return bool(getattr(error, "retryable", False)) or not isinstance(error, MMCError)


def maybe_reached(error: BaseException) -> bool:
    """Whether the platform may have acted on a request that ended in
    ``error``: no answer came (a timeout, a lost connection, an unexpected
    exception) or a 5xx did. A refusal, a 401 and a 429 mean it did not."""
    if isinstance(error, MMCRateLimitedError):
        return False
    if isinstance(error, MMCAPIError):
        return error.retryable and (error.status_code is None or error.status_code >= 500)
    return not isinstance(error, MMCError)


def decide(error: BaseException, attempts: int) -> Decision:
    """The one rule: refuse a refusal, retry what may pass while
    ``attempts <= MMC['MAX_RETRIES']``, give up on the rest."""
    text = describe(error)
    code = getattr(error, "code", None) or ""
    detail = getattr(error, "detail", None) or getattr(error, "title", None) or ""
    if is_refusal(error):
        return Decision(Action.REFUSE, text, code=code or FailureCode.http(error.status_code),
                        detail=detail or text)
    if is_retryable(error) and attempts <= mmc_settings.MAX_RETRIES:
        return Decision(Action.RETRY, text, delay=retry_delay(attempts, error))
    return Decision(Action.GIVE_UP, text, code=code, detail=detail)
