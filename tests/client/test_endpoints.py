"""Every endpoint of the contract, through MMCClient, against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_mmc import contract
from django_mmc.client import MMCClient, get_client
from django_mmc.sandbox import DEFAULT_FIXTURES, Sandbox
from tests.helpers import (
    APPOINTMENT_REMINDER_TEMPLATE_ID,
    ORDER_CONFIRMED_TEMPLATE_ID,
    ORDER_SHIPPED_TEMPLATE_ID,
    OTP_TEMPLATE_ID,
    SALES_AGENT_ID,
    SALES_GROUP_ID,
    SALES_WHATSAPP_CHANNEL_ID,
    SUPPORT_AGENT_ID,
    SUPPORT_GROUP_ID,
    SUPPORT_SMS_CHANNEL_ID,
    SUPPORT_WHATSAPP_CHANNEL_ID,
    WELCOME_TEMPLATE_ID,
)

from . import NUMBER, api_requests, notify, open_dialogue

# -- directory -----------------------------------------------------------------


def test_list_channel_groups_includes_their_channels(sandbox: Any, client: MMCClient) -> None:
    groups = {group.id: group for group in client.list_channel_groups()}

    assert set(groups) == {SUPPORT_GROUP_ID, SALES_GROUP_ID}
    assert groups[SUPPORT_GROUP_ID].name == "Support"
    assert {(c.id, c.channel_type, c.name) for c in groups[SUPPORT_GROUP_ID].channels} == {
        (SUPPORT_WHATSAPP_CHANNEL_ID, "WHATSAPP", "WhatsApp +35316000000"),
        (SUPPORT_SMS_CHANNEL_ID, "SMS", "SMS 50050"),
    }
    assert [(c.id, c.channel_type) for c in groups[SALES_GROUP_ID].channels] == [
        (SALES_WHATSAPP_CHANNEL_ID, "WHATSAPP")]
    [request] = api_requests(sandbox, "GET", "/channel-groups")
    assert "include=channels" in request["path"]


@pytest.fixture(scope="module")
def many_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox seeded with 250 templates: three pages of 100."""
    seed = json.loads(Path(DEFAULT_FIXTURES).read_text(encoding="utf-8"))
    seed["templates"] = [
        {
            "id": str(1000 + n),
            "name": f"template_{n}",
            "description": f"Template {n}",
            "channelTypes": ["WHATSAPP"],
            "parameters": [{"name": "first_name", "required": n % 2 == 0}],
            "preview": "Hi {{first_name}}",
        }
        for n in range(250)
    ]
    path = tmp_path_factory.mktemp("fixtures") / "fixtures.json"
    path.write_text(json.dumps(seed), encoding="utf-8")
    server = Sandbox(fixtures=path, progress_interval=None).start()
    yield server
    server.stop()


def test_list_templates_follows_every_page(many_templates: Sandbox, settings: Any) -> None:
    settings.MMC = many_templates.mmc_settings(RATE_LIMIT=None, TIMEOUT=(2, 3))
    many_templates.reset()

    templates = get_client().list_templates()

    assert [t.id for t in templates] == [str(1000 + n) for n in range(250)]
    assert templates[0].parameters[0].name == "first_name"
    assert templates[0].parameters[0].required is True
    assert templates[1].parameters[0].required is False
    assert templates[0].channel_types == ("WHATSAPP",)
    gets = api_requests(many_templates, "GET", "/templates")
    assert len(gets) == 3  # one GET per page, no more
    for number, request in enumerate(gets, start=1):
        assert f"page%5Bnumber%5D={number}&" in request["path"]
        assert request["status"] == 200


def test_list_templates_of_the_default_seed(sandbox: Any, client: MMCClient) -> None:
    templates = {t.id: t for t in client.list_templates()}

    assert set(templates) == {ORDER_SHIPPED_TEMPLATE_ID, OTP_TEMPLATE_ID,
                              APPOINTMENT_REMINDER_TEMPLATE_ID, WELCOME_TEMPLATE_ID,
                              ORDER_CONFIRMED_TEMPLATE_ID}
    shipped = templates[ORDER_SHIPPED_TEMPLATE_ID]
    assert shipped.name == "order_shipped"
    assert shipped.channel_types == ("WHATSAPP", "SMS")
    assert [(p.name, p.required) for p in shipped.parameters] == [
        ("first_name", True), ("tracking_url", False),
    ]
    assert "{{first_name}}" in shipped.preview
    assert len(api_requests(sandbox, "GET", "/templates")) == 1


# -- notifications ---------------------------------------------------------------


def test_create_and_get_notification(sandbox: Any, client: MMCClient) -> None:
    created = notify(client, "notif-1")

    assert created.status == "ACCEPTED"
    assert created.recipient == NUMBER
    assert created.template_id == ORDER_SHIPPED_TEMPLATE_ID
    assert created.channel_group_id == SUPPORT_GROUP_ID
    assert created.channel_type == "WHATSAPP"
    assert created.created_at is not None
    [stored] = sandbox.notifications()
    assert stored["id"] == created.id
    assert stored["context"] == {"first_name": "Ann", "tracking_url": "https://t.example/1"}
    assert stored["idempotency_key"] == "notif-1"

    fetched = client.get_notification(created.id)
    assert fetched.id == created.id
    assert fetched.recipient == NUMBER


def test_same_idempotency_key_replays_the_first_notification(
    sandbox: Any, client: MMCClient
) -> None:
    first = notify(client, "same-key")
    second = notify(client, "same-key")

    assert second.id == first.id
    assert len(sandbox.notifications()) == 1
    assert len(api_requests(sandbox, "POST", "/notifications")) == 2


def test_get_notifications_splits_more_than_100_ids(sandbox: Any, client: MMCClient) -> None:
    first = notify(client, "poll-1")
    second = notify(client, "poll-2")
    unknown = [str(900000 + n) for n in range(148)]
    # 150 ids: the first chunk of 100 holds ``first``, the second ``second``.
    ids = [first.id, *unknown[:99], second.id, *unknown[99:]]
    assert len(ids) == 150

    found = client.get_notifications(ids)

    assert sorted(n.id for n in found) == sorted([first.id, second.id])
    polls = [r for r in api_requests(sandbox, "GET", "/notifications") if "filter" in r["path"]]
    assert len(polls) == 2
    assert all(r["status"] == 200 for r in polls)


def test_get_notifications_of_exactly_100_ids_is_one_request(
    sandbox: Any, client: MMCClient
) -> None:
    created = notify(client, "poll-100")
    ids = [created.id, *(str(900000 + n) for n in range(99))]

    assert [n.id for n in client.get_notifications(ids)] == [created.id]
    assert len(api_requests(sandbox, "GET", "/notifications")) == 1


# -- dialogues -------------------------------------------------------------------


def test_create_get_list_and_close_dialogue(sandbox: Any, client: MMCClient) -> None:
    opened = open_dialogue(client)
    other = open_dialogue(client, number="+353861234568", key="d-2")

    assert opened.status == contract.DIALOGUE_OPEN
    assert opened.initiated_by == "AGENT"
    assert opened.recipient == NUMBER
    assert opened.channel_group_id == SUPPORT_GROUP_ID
    assert opened.agent_id == SUPPORT_AGENT_ID
    assert client.get_dialogue(SUPPORT_AGENT_ID, opened.id).id == opened.id

    closed = client.close_dialogue(SUPPORT_AGENT_ID, opened.id)
    assert closed.status == contract.DIALOGUE_CLOSED
    assert closed.closed_by == "AGENT"
    assert closed.closed_at is not None
    # Closing again is idempotent.
    assert client.close_dialogue(SUPPORT_AGENT_ID, opened.id).status == contract.DIALOGUE_CLOSED

    assert {d.id for d in client.list_dialogues(SUPPORT_AGENT_ID)} == {opened.id, other.id}
    assert [d.id for d in client.list_dialogues(SUPPORT_AGENT_ID, status="OPEN")] == [other.id]
    assert [d.id for d in client.list_dialogues(SUPPORT_AGENT_ID, status="CLOSED")] == [opened.id]
    assert client.list_dialogues(SALES_AGENT_ID) == []
    [patch, _] = api_requests(sandbox, "PATCH")
    assert patch["status"] == 200


def test_send_text_template_and_file_messages_then_list_them(
    sandbox: Any, client: MMCClient
) -> None:
    dialogue = open_dialogue(client)
    upload = client.upload_file(
        "invoice.pdf", b"%PDF-1.4 fake", "application/pdf", idempotency_key="file-1"
    )
    assert upload.name == "invoice.pdf"
    assert upload.content_type == "application/pdf"
    assert upload.size == len(b"%PDF-1.4 fake")
    assert sandbox.platform.file_content(upload.id).content == b"%PDF-1.4 fake"

    text = client.send_message(SUPPORT_AGENT_ID, dialogue.id, text="Your refund is on its way.",
                               idempotency_key="m-1")
    templated = client.send_message(SUPPORT_AGENT_ID, dialogue.id,
                                    template_id=ORDER_SHIPPED_TEMPLATE_ID,
                                    context={"first_name": "Ann"}, idempotency_key="m-2")
    with_file = client.send_message(SUPPORT_AGENT_ID, dialogue.id, text="Your invoice",
                                    file_ids=[upload.id], idempotency_key="m-3")

    assert text.direction == "OUTBOUND"
    assert text.status == "ACCEPTED"
    assert text.text == "Your refund is on its way."
    assert text.dialogue_id == dialogue.id
    assert [f.id for f in with_file.files] == [upload.id]
    by_id = {m["id"]: m for m in sandbox.messages()}
    assert by_id[templated.id]["template"] == ORDER_SHIPPED_TEMPLATE_ID
    assert by_id[templated.id]["context"] == {"first_name": "Ann"}
    assert by_id[templated.id]["text"] is None
    assert by_id[with_file.id]["files"] == [upload.id]

    listed = client.list_messages(SUPPORT_AGENT_ID, dialogue.id)
    assert [m.id for m in listed] == [text.id, templated.id, with_file.id]
    assert [f.id for f in listed[2].files] == [upload.id]


def test_send_message_on_another_channel_type(sandbox: Any, client: MMCClient) -> None:
    dialogue = open_dialogue(client)

    message = client.send_message(SUPPORT_AGENT_ID, dialogue.id, text="By SMS", channel_type="SMS",
                                  idempotency_key="m-sms")

    assert {m["id"]: m for m in sandbox.messages()}[message.id]["channelType"] == "SMS"


def test_every_request_speaks_jsonapi(sandbox: Any, client: MMCClient) -> None:
    """No 406/415 anywhere: the sandbox enforces the media types strictly."""
    dialogue = open_dialogue(client)
    client.send_message(SUPPORT_AGENT_ID, dialogue.id, text="hi", idempotency_key="m-1")
    client.upload_file("a.txt", b"a", "text/plain", idempotency_key="f-1")
    client.close_dialogue(SUPPORT_AGENT_ID, dialogue.id)

    statuses = {r["status"] for r in api_requests(sandbox)}
    assert statuses <= {200, 201}
