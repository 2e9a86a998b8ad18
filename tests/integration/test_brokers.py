"""Priority queues on the real broker, Redis or RabbitMQ (the suite runs this
file on both): each priority of ``MMC['PRIORITY_QUEUES']`` is a queue of its
own on the broker, so work waiting in one never delays another."""

from __future__ import annotations

import pytest
from django.db import transaction

import django_mmc
from django_mmc.models import Notification
from django_mmc.status import Status
from tests import broker
from tests.conftest import WORKER_QUEUE

pytestmark = pytest.mark.integration

LOW_QUEUE = f"{WORKER_QUEUE}-low"


@pytest.fixture
def low_queue():
    broker.purge(LOW_QUEUE)
    yield LOW_QUEUE
    broker.purge(LOW_QUEUE)


def test_a_waiting_low_queue_does_not_hold_up_the_now_queue(mmc_stack, settings, low_queue):
    # The test's worker serves only WORKER_QUEUE: "low" work waits, as it would
    # behind a campaign, while "now" work is sent.
    settings.MMC = {**settings.MMC,
                    "PRIORITY_QUEUES": {"now": WORKER_QUEUE, "low": low_queue}}
    with transaction.atomic():
        campaign = [django_mmc.send_notification("+353861234567", "otp", {"code": str(i)},
                                                 priority="low") for i in range(3)]
        otp = django_mmc.send_notification("+353861234568", "otp", {"code": "9"},
                                           priority="now")

    mmc_stack.wait_for(
        lambda: Notification.objects.get(pk=otp.pk).status in (Status.ACCEPTED, Status.SENT,
                                                               Status.DELIVERED, Status.READ),
        message="the 'now' notification to be sent")
    assert broker.queue_length(low_queue) == 3, f"{broker.broker_kind()} lost a queue's tasks"
    assert set(Notification.objects.filter(pk__in=[n.pk for n in campaign])
               .values_list("status", flat=True)) == {Status.QUEUED}
