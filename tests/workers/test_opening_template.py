"""A dialogue's opening template: with the create call where the dialect
says the platform takes it there, as the first message otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

import django_mmc
from django_mmc.client import get_client
from django_mmc.dialect import DialectError, load_dialect
from django_mmc.erasure import forget_recipient
from django_mmc.exceptions import MMCError
from django_mmc.models import Dialogue, Message
from django_mmc.policy import Outcome
from django_mmc.status import DialogueStatus, Status
from django_mmc.workers.dialogues import deliver_message, open_on_platform
from tests.helpers import SUPPORT_AGENT_ID

pytestmark = pytest.mark.django_db

NUMBER = "+353861234567"
CONTEXT = {"first_name": "Ann", "order_number": "A-1"}


def platform_dialogue(sandbox: Any, dialogue: Dialogue) -> Any:
    with sandbox.platform.lock:
        return sandbox.platform.dialogues[dialogue.platform_id]


def platform_messages(sandbox: Any, dialogue: Dialogue) -> list[Any]:
    with sandbox.platform.lock:
        record = sandbox.platform.dialogues[dialogue.platform_id]
        return [sandbox.platform.messages[m] for m in record.message_ids]


def test_by_default_the_opening_template_is_the_first_message(synced):
    dialogue = django_mmc.open_dialogue(NUMBER, template="order_confirmed", context=CONTEXT)
    later = dialogue.send_message(template="welcome")
    opening = Message.objects.filter(dialogue=dialogue).order_by("pk").first()

    assert dialogue.opening_template is None and dialogue.opening_context == {}
    assert opening.pk != later.pk and opening.template.name == "order_confirmed"
    assert opening.context == CONTEXT and opening.status == Status.QUEUED
    assert open_on_platform(dialogue.pk, task_id="t").outcome is Outcome.DONE
    assert deliver_message(later.pk, task_id="t2").outcome is Outcome.SKIPPED  # not next
    assert deliver_message(opening.pk, task_id="t3").outcome is Outcome.DONE
    dialogue.refresh_from_db()
    sent = platform_messages(synced, dialogue)
    assert [m.template_id for m in sent] == [opening.template.platform_id]
    assert sent[0].context == CONTEXT


def test_where_the_dialect_says_so_the_create_call_carries_it(synced, settings):
    settings.MMC = {**settings.MMC, "CONTRACT": {"opening_template": "create"}}
    synced.platform.wire = load_dialect(settings.MMC["CONTRACT"])
    try:
        dialogue = django_mmc.open_dialogue(NUMBER, template="order_confirmed", context=CONTEXT)
        assert not Message.objects.filter(dialogue=dialogue).exists()
        assert dialogue.opening_template.name == "order_confirmed"
        assert open_on_platform(dialogue.pk, task_id="t").outcome is Outcome.DONE
    finally:
        synced.platform.wire = load_dialect(None)
    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.OPEN
    sent = platform_messages(synced, dialogue)
    assert [(m.template_id, m.context) for m in sent] == [
        (dialogue.opening_template.platform_id, CONTEXT)]


def test_a_platform_that_takes_no_template_in_the_create_call_refuses_one(synced):
    with pytest.raises(MMCError) as caught:
        get_client().create_dialogue(SUPPORT_AGENT_ID, recipient=NUMBER, channel_group_id="7",
                                     channel_type="WHATSAPP", idempotency_key="k-1",
                                     template_id="101", context={"first_name": "Ann"})
    assert caught.value.status_code == 422


def test_the_opening_template_is_validated_like_any_template(directory):
    with pytest.raises(ValidationError) as caught:
        django_mmc.open_dialogue(NUMBER, template="order_confirmed", context={"x": "1"})
    assert set(caught.value.message_dict) == {"context"}
    with pytest.raises(ValidationError) as caught:
        django_mmc.open_dialogue(NUMBER, context={"first_name": "Ann"})
    assert set(caught.value.message_dict) == {"context"}
    with pytest.raises(ValidationError) as caught:
        django_mmc.open_dialogue(NUMBER, template="no such template")
    assert set(caught.value.message_dict) == {"template"}
    assert not Dialogue.objects.exists()


def test_forgetting_the_recipient_drops_the_opening_context(directory, settings):
    settings.MMC = {**settings.MMC, "CONTRACT": {"opening_template": "create"}}
    dialogue = django_mmc.open_dialogue(NUMBER, template="order_confirmed", context=CONTEXT)
    Dialogue.objects.filter(pk=dialogue.pk).update(status=DialogueStatus.CLOSED)
    forget_recipient(NUMBER)
    dialogue.refresh_from_db()
    assert dialogue.opening_context == {}


def test_the_dialect_item_takes_two_words():
    assert load_dialect("filter-operators").opening_template == "create"
    with pytest.raises(DialectError) as caught:
        load_dialect({"opening_template": "first"})
    assert caught.value.key == "opening_template"
