"""Signals django_mmc sends.

Each is sent once per real change, after the transaction that made the change
has committed (``transaction.on_commit``): a receiver never sees a change that
is later rolled back, and may safely enqueue work or call other services.
Receivers get ``sender`` (the model class) and the keyword arguments below.
"""

from django.dispatch import Signal

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
