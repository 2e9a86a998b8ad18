"""``dispatch.on_commit``: after the commit inside a transaction, at once
outside one, and a failing callback never breaks its caller."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

import pytest
from django.db import transaction

from django_mmc import dispatch

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


