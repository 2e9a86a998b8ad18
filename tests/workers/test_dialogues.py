"""Dialogue work (:mod:`django_mmc.workers.dialogues`) against the sandbox:
opening, adopting, closing."""

from __future__ import annotations

import pytest

import django_mmc
from django_mmc import transitions
from django_mmc.exceptions import MMCConflictError, MMCValidationError
from django_mmc.models import Dialogue, Message
from django_mmc.policy import Outcome, RetryLater
from django_mmc.status import DialogueStatus, Status
from django_mmc.workers.dialogues import close_on_platform, deliver_message, open_on_platform

pytestmark = pytest.mark.django_db

NUMBER = "+353861234567"


def opened_dialogue() -> Dialogue:
    dialogue = django_mmc.open_dialogue(NUMBER)
    assert open_on_platform(dialogue.pk, task_id="t").outcome is Outcome.DONE
    dialogue.refresh_from_db()
    return dialogue


def test_item_06_adopting_an_open_platform_dialogue_never_lands_on_a_closed_row(synced):
    first = opened_dialogue()
    # Closed here, but the platform never heard: its dialogue is still open.
    transitions.mark_dialogue_closed(first, closed_by="AGENT", failure_code="CLOSE_GAVE_UP")
    again = django_mmc.open_dialogue(NUMBER)
    message = again.send_message(template="welcome")

    assert open_on_platform(again.pk, task_id="t2").outcome is Outcome.DONE

    again.refresh_from_db()
    first.refresh_from_db()
    assert again.status == DialogueStatus.OPEN
    assert again.platform_id and first.platform_id is None  # taken over
    assert first.status == DialogueStatus.CLOSED  # never reopened
    assert deliver_message(message.pk, task_id="t3").outcome is Outcome.DONE
    assert Message.objects.get(pk=message.pk).status != Status.REFUSED


@pytest.mark.parametrize("error", [
    MMCConflictError("already closed", status_code=409, code="DIALOGUE_CLOSED"),
    MMCValidationError("not yours", status_code=422, code="VALIDATION_ERROR"),
])
def test_item_08_a_refused_close_ends_the_dialogue_here_with_the_reason(synced, monkeypatch,
                                                                        error):
    from django_mmc.client import MMCClient

    dialogue = opened_dialogue()
    dialogue.close()

    def refuse(self, agent_id, dialogue_id):  # what the sandbox never answers
        raise error

    monkeypatch.setattr(MMCClient, "close_dialogue", refuse)
    assert close_on_platform(dialogue.pk, task_id="t").outcome is Outcome.REFUSED
    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.CLOSED
    assert dialogue.failure_code == error.code and dialogue.closed_by == "PLATFORM"


def test_item_08_close_retries_follow_the_policy_and_end(synced, settings):
    settings.MMC = {**settings.MMC, "MAX_RETRIES": 1}
    dialogue = opened_dialogue()
    dialogue.close()
    synced.faults.inject("503", count=5, path=f"/dialogues/{dialogue.platform_id}",
                         method="PATCH")
    with pytest.raises(RetryLater):
        close_on_platform(dialogue.pk, task_id="t")
    assert close_on_platform(dialogue.pk, task_id="t").outcome is Outcome.GAVE_UP
    dialogue.refresh_from_db()
    assert (dialogue.status, dialogue.failure_code) == (DialogueStatus.CLOSED, "CLOSE_GAVE_UP")
    assert dialogue.attempts == 2  # the close's own, counted from zero once it opened


def test_item_08_a_dialogue_stuck_closing_never_blocks_a_new_one(synced, settings):
    dialogue = opened_dialogue()
    dialogue.close()
    assert Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.CLOSING

    again = django_mmc.open_dialogue(NUMBER)

    assert again.pk != dialogue.pk and again.status == DialogueStatus.OPENING
    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.CLOSED
    # Nor is another of the site's agents.
    again.close()
    other = django_mmc.open_dialogue(NUMBER, agent="sales")
    assert other.agent_key == "sales"
    assert Dialogue.objects.get(pk=again.pk).status == DialogueStatus.CLOSED
