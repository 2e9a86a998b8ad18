"""Handing work to Celery (:mod:`django_mmc.dispatch`): ``on_commit`` runs
after the commit inside a transaction, at once outside one, and a failing
callback never breaks its caller; every kind of work has its task; each
priority's work goes to its own queue."""

from __future__ import annotations

import base64
import json
import logging
from contextlib import nullcontext
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

import django_mmc
from django_mmc import dispatch
from django_mmc.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)


def test_outside_a_transaction_it_runs_at_once() -> None:
    ran: list[Any] = []
    dispatch.on_commit(ran.append, 1)
    assert ran == [1]


def test_inside_one_it_waits_for_the_commit_and_is_dropped_on_rollback() -> None:
    ran: list[Any] = []
    with transaction.atomic():
        dispatch.on_commit(ran.append, "committed")
        assert ran == []
    assert ran == ["committed"]
    with pytest.raises(RuntimeError), transaction.atomic():
        dispatch.on_commit(ran.append, "rolled back")
        raise RuntimeError
    assert ran == ["committed"]


@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_failing_callback_is_logged_and_the_next_one_runs(
        in_transaction: bool, caplog: Any) -> None:
    ran: list[Any] = []

    def fail() -> None:
        raise ValueError("broken callback")

    caplog.set_level(logging.ERROR)
    with transaction.atomic() if in_transaction else nullcontext():
        dispatch.on_commit(fail)
        dispatch.on_commit(ran.append, "after")
    assert ran == ["after"]
    assert any("broken callback" in (r.exc_text or "") + str(r.exc_info) + r.getMessage()
               for r in caplog.records)


def test_every_kind_of_work_has_its_task_registered() -> None:
    for work in dispatch.Work:
        task = dispatch.task_for(work)
        assert task.name == work.value
        assert work in dispatch.DEFAULT_PRIORITY


def test_work_with_no_task_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "_TASKS", {})
    with pytest.raises(LookupError, match="INSTALLED_APPS"):
        dispatch.enqueue(dispatch.Work.DELIVER_NOTIFICATION, 1)


# -- priorities ------------------------------------------------------------------------


@pytest.fixture
def broker():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queues = ["mmc-test-now", "mmc-test-low"]
    client.delete(*queues)
    yield client
    client.delete(*queues)
    client.close()


def queued_ids(broker, queue):
    """The first task argument of every message waiting in a Redis queue."""
    ids = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        ids.extend(args[0] if isinstance(args[0], list) else [args[0]])  # campaigns: batches
    return ids


def test_each_priority_goes_to_its_own_queue(directory, settings, broker,
                                             django_capture_on_commit_callbacks):
    settings.MMC = {**settings.MMC, "PRIORITY_QUEUES": {"now": "mmc-test-now",
                                                        "low": "mmc-test-low"}}
    with django_capture_on_commit_callbacks(execute=True):
        otp = django_mmc.send_notification("+353861234567", "otp", {"code": "1"},
                                           priority="now")
        django_mmc.send_notifications(["+353861234568", "+353861234569"], "otp",
                                      {"code": "2"})
    assert queued_ids(broker, "mmc-test-now") == [otp.pk]
    campaign = list(Notification.objects.filter(priority="low").values_list("pk", flat=True))
    assert sorted(queued_ids(broker, "mmc-test-low")) == sorted(campaign)


def test_unknown_priority_is_refused(directory):
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"}, priority="asap")
    assert "priority" in error.value.message_dict
