"""What the suite's tests share: small functions over the real parts, and
the sandbox's seed ids by name (from :mod:`tests.helpers.seed`).

The fixtures built on them (``synced``, ``directory``, ``sandbox``...) are in
``tests/conftest.py``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .seed import (
    AGENT_IDS,
    APPOINTMENT_REMINDER_TEMPLATE_ID,
    ORDER_CONFIRMED_TEMPLATE_ID,
    ORDER_SHIPPED_TEMPLATE_ID,
    OTP_TEMPLATE_ID,
    SALES_AGENT_ID,
    SALES_GROUP_ID,
    SALES_WHATSAPP_CHANNEL_ID,
    SEED,
    SUPPORT_AGENT_ID,
    SUPPORT_GROUP_ID,
    SUPPORT_SMS_CHANNEL_ID,
    SUPPORT_WHATSAPP_CHANNEL_ID,
    WELCOME_TEMPLATE_ID,
)

__all__ = [
    "AGENT_IDS",
    "APPOINTMENT_REMINDER_TEMPLATE_ID",
    "NOTIFICATIONS",
    "ORDER_CONFIRMED_TEMPLATE_ID",
    "ORDER_SHIPPED_TEMPLATE_ID",
    "OTP_TEMPLATE_ID",
    "SALES_AGENT_ID",
    "SALES_GROUP_ID",
    "SALES_WHATSAPP_CHANNEL_ID",
    "SEED",
    "SUPPORT_AGENT_ID",
    "SUPPORT_GROUP_ID",
    "SUPPORT_SMS_CHANNEL_ID",
    "SUPPORT_WHATSAPP_CHANNEL_ID",
    "WELCOME_TEMPLATE_ID",
    "free_port",
    "notification",
    "posts",
    "race",
    "stored_ids",
    "unqueued_notification",
]

NOTIFICATIONS = "/notifications"


def posts(sandbox: Any, path: str = NOTIFICATIONS, *, without_401: bool = False
          ) -> list[dict[str, Any]]:
    """The POSTs the sandbox received to a path ending in ``path``.
    ``without_401`` leaves out the 401 answers: a worker still holding the
    token of a previous test (the sandbox forgets tokens on reset)
    authenticates again."""
    return [r for r in sandbox.requests_log
            if r["method"] == "POST" and r["path"].endswith(path)
            and not (without_401 and r["status"] == 401)]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def race(functions: Sequence[Callable[[], Any]], *, timeout: float = 10) -> list[Any]:
    """Run ``functions`` in threads that start at the same instant (a
    barrier) and wait for them all; returns their results in order. An
    exception in a thread is re-raised here. Each thread closes its own
    database connections when it ends."""
    from django.db import connections

    barrier = threading.Barrier(len(functions))
    results: list[Any] = [None] * len(functions)
    errors: list[BaseException] = []

    def run(index: int, function: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = function()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    alive = [t for t in threads if t.is_alive()]
    if alive:
        raise AssertionError(f"{len(alive)} thread(s) still running after {timeout}s")
    if errors:
        raise errors[0]
    return results


def notification(number: str = "+353861234567", code: str = "1") -> Any:
    """A one-time-code notification through the public API (enqueued after
    commit)."""
    import django_mmc

    return django_mmc.send_notification(number, "otp", {"code": code})


def unqueued_notification(code: str = "1", number: str = "+353861234567", **fields: Any) -> Any:
    """A notification stored without a task: in a committed test, a worker
    process started by another test must not take it first."""
    from django_mmc.models import ChannelGroup, Notification, Recipient, Template

    return Notification.objects.create(
        recipient=Recipient.objects.for_number(number),
        template=Template.objects.get(name="otp"),
        channel_group=ChannelGroup.objects.get(name="Support"), channel_type="SMS",
        context={"code": code}, **fields)


#: Transaction control, which Django logs with the queries since 4.2.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT",
                       "ROLLBACK TO SAVEPOINT")


def statements(queries: Any) -> list[str]:
    """The SQL statements a ``CaptureQueriesContext`` saw, without the
    transaction control around them (``BEGIN``, ``COMMIT``, savepoints)."""
    return [q["sql"] for q in queries.captured_queries
            if not q["sql"].upper().startswith(TRANSACTION_CONTROL)]


def stored_ids() -> set[str]:
    """The event ids of every stored webhook delivery."""
    from django_mmc.models import WebhookEvent

    return set(WebhookEvent.objects.values_list("event_id", flat=True))
