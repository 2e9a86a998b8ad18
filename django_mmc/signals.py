"""Signals django_mmc sends.

Each is sent once per real change, after the transaction that made the change
has committed (``transaction.on_commit``): a receiver never sees a change that
is later rolled back, and may safely enqueue work or call other services.
Receivers get ``sender`` (the model class) and the keyword arguments below.
Every instance a receiver gets is read from the database after the commit, so
it shows the row as the change left it, whichever path made the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.dispatch import Signal

from . import dispatch

#: A notification's status changed.
#: Arguments: ``notification``, ``old_status``, ``new_status``.
notification_status_changed = Signal()

#: An outbound dialogue message's status changed.
#: Arguments: ``message``, ``old_status``, ``new_status``.
message_status_changed = Signal()

#: The recipient wrote in a dialogue (sent once per platform message).
#: Arguments: ``message``, ``dialogue``.
message_received = Signal()

#: A dialogue is open on the platform (opened by us or by the recipient).
#: Arguments: ``dialogue``.
dialogue_opened = Signal()

#: A dialogue was closed (by us, the recipient, the platform or a timeout).
#: Arguments: ``dialogue``, ``closed_by``.
dialogue_closed = Signal()

#: A recipient opted out of, or back in to, a channel type (a keyword they
#: sent, staff in the admin, or business code).
#: Arguments: ``recipient``, ``channel_type``, ``opted_out``, ``source``.
consent_changed = Signal()


def send_after_commit(
    signal: Signal,
    model: type,
    pks: Iterable[int],
    arguments: Callable[[Any], dict[str, Any]],
    *,
    related: tuple[str, ...] = (),
) -> None:
    """Send ``signal`` for each row ``pks`` of ``model`` once the current
    transaction commits, the one way django_mmc sends every signal: nothing
    at all when nobody listens, otherwise one query after the commit that
    reads the rows as they are then, and ``arguments(row)`` as the keyword
    arguments of each send."""
    pks = list(pks)
    if not pks or not signal.has_listeners(model):
        return

    def send() -> None:
        # select_related() with no field is deprecated from Django 6.1.
        rows = (model.objects.select_related(*related) if related
                else model.objects.all()).in_bulk(pks)
        for pk in pks:
            row = rows.get(pk)
            if row is not None:
                signal.send(sender=model, **arguments(row))

    dispatch.on_commit(send)
