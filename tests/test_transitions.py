"""Status changes (:mod:`django_mmc.transitions`): conditional, stamped,
announced once after commit."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_mmc import transitions
from django_mmc.models import Notification
from django_mmc.status import Status
from tests.helpers import SUPPORT_GROUP_ID


def test_update_in_status_reuses_the_orms_statement_and_binds_new_values(directory,
                                                                           monkeypatch):
    """The statement run once per notification sent: compiled once per shape
    of change, and the same rows change as with ``QuerySet.update``."""
    from django_mmc.models import ChannelGroup, Recipient, Template

    def row(status):
        return Notification.objects.create(
            recipient=Recipient.objects.for_number("+353861234567"),
            template=Template.objects.get(name="otp"),
            channel_group=ChannelGroup.objects.get(platform_id=SUPPORT_GROUP_ID),
            channel_type="SMS",
            context={"code": "1"}, status=status)

    first, second, other = row(Status.SENDING), row(Status.SENDING), row(Status.QUEUED)
    compiled: dict = {}
    monkeypatch.setattr(transitions, "UPDATE_SQL", compiled)
    now = timezone.now()
    changes = transitions.status_changes(Status.SENDING, Status.ACCEPTED, now)
    with CaptureQueriesContext(connection) as queries:
        assert transitions.update_in_status(Notification, first.pk, Status.SENDING,
                                        {**changes, "platform_id": "p-1"}) == 1
        assert transitions.update_in_status(Notification, second.pk, Status.SENDING,
                                        {**changes, "platform_id": "p-2"}) == 1
        assert transitions.update_in_status(Notification, other.pk, Status.SENDING,
                                        {**changes, "platform_id": "p-3"}) == 0
        assert len(compiled) == 1 and all(compiled.values())
        # Another shape (a NULL written) is a statement of its own.
        assert transitions.update_in_status(Notification, first.pk, Status.ACCEPTED,
                                        {"platform_id": None, "last_error": "x"}) == 1
    assert len(queries) == 4 and len(compiled) == 2
    assert '"platform_id" = NULL' in queries[3]["sql"]
    values = {n.pk: n for n in Notification.objects.all()}
    assert (values[first.pk].platform_id, values[first.pk].last_error) == (None, "x")
    assert values[second.pk].platform_id == "p-2"
    assert values[second.pk].status == Status.ACCEPTED
    assert values[second.pk].accepted_at == now
    assert values[other.pk].status == Status.QUEUED and values[other.pk].platform_id is None
