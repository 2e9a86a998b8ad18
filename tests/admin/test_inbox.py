"""The support inbox: dialogues waiting for us, the count on the admin's
index, and claims."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from django_mmc.models import Dialogue, Message
from django_mmc.status import DialogueStatus, Direction, Status
from tests.admin.helpers import (
    changelist_queries,
    follow_messages,
    fresh,
    make_dialogue,
    make_user,
    run_action,
)

pytestmark = pytest.mark.django_db

INBOX = reverse("admin:django_mmc_dialogue_changelist") + "?waiting=1"


def wrote(dialogue: Dialogue, minutes_ago: float, text: str = "Hello?") -> Message:
    """The customer wrote ``minutes_ago``."""
    at = timezone.now() - timedelta(minutes=minutes_ago)
    message = Message.objects.create(dialogue=dialogue, direction=Direction.INBOUND, text=text,
                                      status=Status.RECEIVED, received_at=at)
    Dialogue.objects.filter(pk=dialogue.pk).update(last_inbound_at=at)
    return message


def answered(dialogue: Dialogue, minutes_ago: float, status: str = Status.SENT) -> Message:
    """We answered ``minutes_ago``."""
    message = Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                                     text="On it.", status=status)
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return message


@pytest.fixture
def inbox(directory: dict) -> dict[str, Dialogue]:
    """Waiting (long, short, our reply failed), answered, never written, closed."""
    long_wait = make_dialogue(directory, "+353861000001", platform_id="d1")
    wrote(long_wait, 125)
    short_wait = make_dialogue(directory, "+353861000002", platform_id="d2",
                               channel_type="SMS")
    wrote(short_wait, 20)
    answered(short_wait, 15)
    wrote(short_wait, 3)  # wrote again after our answer
    failed_reply = make_dialogue(directory, "+353861000003", platform_id="d3")
    wrote(failed_reply, 60 * 25)  # past WhatsApp's care window
    answered(failed_reply, 60 * 24, Status.FAILED)
    done = make_dialogue(directory, "+353861000004", platform_id="d4")
    wrote(done, 30)
    answered(done, 20)
    silent = make_dialogue(directory, "+353861000005", platform_id="d5")
    closed = make_dialogue(directory, "+353861000006", platform_id="d6",
                           status=DialogueStatus.CLOSED)
    wrote(closed, 10)
    return {"long": long_wait, "short": short_wait, "failed_reply": failed_reply, "done": done,
            "silent": silent, "closed": closed}


def test_waiting_for_us_lists_the_longest_wait_first(admin_client: Any, inbox: dict) -> None:
    response = admin_client.get(INBOX)
    found = [d.pk for d in response.context["cl"].result_list]
    assert found == [inbox["failed_reply"].pk, inbox["long"].pk, inbox["short"].pk]
    html = response.content.decode()
    assert "for 2\xa0hours, 5\xa0minutes" in html
    assert "only a template now" in html  # failed_reply: the care window has closed
    assert "left for free text" in html  # long: WhatsApp, within the window
    listing = admin_client.get(reverse("admin:django_mmc_dialogue_changelist")).content.decode()
    assert 'id="mmc-inbox"' in listing and "Waiting for us: 3" in listing


def test_the_admin_index_shows_how_many_are_waiting(admin_client: Any, client: Any,
                                                    django_user_model: Any, inbox: dict
                                                    ) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="mmc-inbox-count"' in html and "3 dialogues waiting for us" in html
    assert f'href="{INBOX}"' in html.replace("&amp;", "&")
    # Someone who may not see dialogues is not told about them.
    clerk = make_user(django_user_model, "clerk", "django_mmc.view_notification")
    client.force_login(clerk)
    assert 'id="mmc-inbox-count"' not in client.get(reverse("admin:index")).content.decode()


def test_claim_release_and_nobody_takes_over(client: Any, django_user_model: Any,
                                             inbox: dict) -> None:
    ann = make_user(django_user_model, "ann", "django_mmc.view_dialogue",
                    "django_mmc.reply_dialogue")
    bob = make_user(django_user_model, "bob", "django_mmc.view_dialogue",
                    "django_mmc.reply_dialogue")
    dialogue = inbox["long"]
    claim = reverse("admin:django_mmc_dialogue_claim", args=[dialogue.pk])
    page = reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk])
    client.force_login(ann)
    assert 'id="mmc-claim-dialogue"' in client.get(page).content.decode()
    response = client.post(claim, {"claim": "1"}, follow=True)
    assert any("assigned to you" in m for m in follow_messages(response))
    assert fresh(dialogue).assigned_to == ann
    assert "You are answering this dialogue." in response.content.decode()
    listing = client.get(INBOX).content.decode()
    assert ">ann<" in listing
    client.force_login(bob)
    html = client.get(page).content.decode()
    assert "ann is answering this dialogue." in html and 'id="mmc-claim-dialogue"' not in html
    taken = client.post(claim, {"claim": "1"}, follow=True)
    assert any("already answering" in m for m in follow_messages(taken))
    client.post(claim, {"claim": "0"})  # bob cannot release ann's claim
    assert fresh(dialogue).assigned_to == ann
    client.force_login(ann)
    client.post(claim, {"claim": "0"})
    assert fresh(dialogue).assigned_to is None


def test_replying_claims_and_closing_releases(admin_client: Any, admin_user: Any,
                                              inbox: dict) -> None:
    dialogue = inbox["short"]
    admin_client.post(reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk]),
                      {"text": "Looking into it."})
    assert fresh(dialogue).assigned_to == admin_user
    assert dialogue.pk not in [d.pk for d in admin_client.get(INBOX).context["cl"].result_list]
    admin_client.post(reverse("admin:django_mmc_dialogue_close", args=[dialogue.pk]))
    assert fresh(dialogue).assigned_to is None
    # A claim on a dialogue that closed elsewhere is not shown.
    other = inbox["long"]
    Dialogue.objects.filter(pk=other.pk).update(assigned_to=admin_user,
                                                status=DialogueStatus.CLOSED)
    html = admin_client.get(reverse("admin:django_mmc_dialogue_change", args=[other.pk])
                            ).content.decode()
    assert 'id="mmc-claimed-by"' not in html


def test_assign_selected_to_me(admin_client: Any, admin_user: Any, django_user_model: Any,
                               inbox: dict) -> None:
    someone = django_user_model.objects.create_user("someone")
    Dialogue.objects.filter(pk=inbox["short"].pk).update(assigned_to=someone)
    response = run_action(admin_client, "dialogue", "claim_selected",
                          [inbox["long"], inbox["short"], inbox["closed"]])
    text = follow_messages(response)[0]
    assert text.startswith("1 dialogue assigned to you; 2 skipped:")
    assert fresh(inbox["long"]).assigned_to == admin_user
    assert fresh(inbox["short"]).assigned_to == someone


def test_the_inbox_queries_do_not_grow_with_the_page(admin_client: Any, directory: dict,
                                                     django_user_model: Any) -> None:
    agent = django_user_model.objects.create_user("agent")
    counter = iter(range(1000))

    def add(count: int) -> None:
        for _ in range(count):
            i = next(counter)
            dialogue = make_dialogue(directory, f"+35386{5000000 + i:07d}", platform_id=f"w{i}",
                                     channel_type=["WHATSAPP", "SMS"][i % 2])
            wrote(dialogue, 5 + i)
            if i % 3 == 0:
                Dialogue.objects.filter(pk=dialogue.pk).update(assigned_to=agent)

    add(3)
    admin_client.get(INBOX)
    few = changelist_queries(admin_client, INBOX)
    add(20)
    assert changelist_queries(admin_client, INBOX) == few
    assert len(admin_client.get(INBOX).context["cl"].result_list) == 23
    index = reverse("admin:index")
    admin_client.get(index)
    assert changelist_queries(admin_client, index) == changelist_queries(admin_client, index)
