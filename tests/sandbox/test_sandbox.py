"""The MMC sandbox against the contract, over real HTTP with plain requests."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests

from django_mmc import contract
from django_mmc.sandbox import Sandbox
from django_mmc.signing import verify

from .helpers import (
    JSONAPI,
    Api,
    Receiver,
    dialogue_document,
    get_token,
    notification_document,
    text_message,
)

SECRETS = {"17": "agent-17-secret", "18": "agent-18-secret"}


def assert_error(
    response: requests.Response, status: int, code: str, pointer: str | None = None
) -> dict[str, Any]:
    """The answer is a JSON:API error document with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == JSONAPI
    errors = response.json()["errors"]
    error = errors[0]
    assert error["status"] == str(status)
    assert error["code"] == code
    assert error["title"] and error["detail"]
    if pointer is not None:
        assert error["source"] == {"pointer": pointer}
    return error


def token_form(sandbox: Sandbox, **changes: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "scope": contract.DEFAULT_SCOPE,
    }
    form.update(changes)
    return form


# -- OAuth ---------------------------------------------------------------------------


def test_token_grant_with_form_and_with_basic_auth(sb: Sandbox) -> None:
    assert sb.token_url == f"{sb.url}/oauth2/v2.0/token?p={contract.DEFAULT_OAUTH_FLOW}"
    response = requests.post(sb.token_url, data=token_form(sb), timeout=5)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    grant = response.json()
    assert grant["token_type"] == "Bearer"
    assert grant["expires_in"] == 3600
    assert len(grant["access_token"]) >= 32
    assert "refresh_token" not in grant

    form = token_form(sb)
    del form["client_id"], form["client_secret"]
    basic = requests.post(sb.token_url, data=form, auth=(sb.client_id, sb.client_secret), timeout=5)
    assert basic.status_code == 200
    assert basic.json()["access_token"] != grant["access_token"]
    assert sb.token_requests == 2


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "https://example.com/.default"}, 400, "invalid_scope"),
    ],
)
def test_token_refusals(sb: Sandbox, changes: dict[str, str], status: int, error: str) -> None:
    response = requests.post(sb.token_url, data=token_form(sb, **changes), timeout=5)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert sb.token_requests == 0
    assert sb.token_failures == 1


def test_token_refusals_for_wrong_basic_auth_and_flow(sb: Sandbox) -> None:
    form = token_form(sb)
    del form["client_id"], form["client_secret"]
    basic = requests.post(sb.token_url, data=form, auth=(sb.client_id, "wrong"), timeout=5)
    assert basic.status_code == 401
    assert basic.json()["error"] == "invalid_client"
    assert basic.headers["WWW-Authenticate"].startswith("Basic")
    wrong_flow = requests.post(
        contract.token_url(sb.oauth_base_url, "b2c_1_other"), data=token_form(sb), timeout=5
    )
    assert wrong_flow.status_code == 400
    as_json = requests.post(sb.token_url, json=token_form(sb), timeout=5)
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


def test_tokens_really_expire() -> None:
    with Sandbox(token_lifetime=1, progress_interval=None) as sandbox:
        grant = requests.post(sandbox.token_url, data=token_form(sandbox), timeout=5).json()
        assert grant["expires_in"] == 1
        headers = {"Authorization": f"Bearer {grant['access_token']}", "Accept": JSONAPI}
        url = sandbox.organisation_url + contract.TEMPLATES_PATH
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        time.sleep(1.1)
        response = requests.get(url, headers=headers, timeout=5)
        assert_error(response, 401, contract.ERROR_TOKEN_EXPIRED)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_missing_and_unknown_tokens_are_unauthorized(sb: Sandbox) -> None:
    url = sb.organisation_url + contract.TEMPLATES_PATH
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        response = requests.get(url, headers={"Accept": JSONAPI, **headers}, timeout=5)
        assert_error(response, 401, contract.ERROR_UNAUTHORIZED)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_expire_tokens(api: Api, sb: Sandbox) -> None:
    assert api.get(contract.TEMPLATES_PATH).status_code == 200
    sb.expire_tokens()
    assert_error(api.get(contract.TEMPLATES_PATH), 401, contract.ERROR_TOKEN_EXPIRED)
    fresh = Api(sb)
    assert fresh.get(contract.TEMPLATES_PATH).status_code == 200


# -- media types and routing --------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/json", f"{JSONAPI}; charset=utf-8", f'{JSONAPI}; ext="bulk"', None],
)
def test_wrong_content_type_is_415(api: Api, sb: Sandbox, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.session.post(
        api.url(contract.NOTIFICATIONS_PATH),
        data=json.dumps(notification_document()),
        headers=headers,
        timeout=5,
    )
    if content_type is None:
        # requests sends no Content-Type for a str body.
        assert "Content-Type" not in response.request.headers
    assert_error(response, 415, contract.ERROR_UNSUPPORTED_MEDIA_TYPE)
    assert sb.notifications() == []


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/json", 406),
        (f"{JSONAPI}; ext=bulk", 406),
        (f"{JSONAPI}; ext=bulk, */*", 406),
        ("text/html, application/xml", 406),
        ("*/*", 200),
        ("application/*", 200),
        (f"{JSONAPI}; ext=bulk, {JSONAPI}", 200),
        (f"text/html;q=0.9, {JSONAPI};q=0.8", 200),
    ],
)
def test_accept_header(api: Api, accept: str, status: int) -> None:
    response = api.get(contract.TEMPLATES_PATH, headers={"Accept": accept})
    if status == 406:
        assert_error(response, 406, contract.ERROR_NOT_ACCEPTABLE)
    else:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == JSONAPI


def test_unknown_organisation_and_path_are_404(api: Api, sb: Sandbox) -> None:
    other = contract.organisation_url(sb.url, "9999") + contract.TEMPLATES_PATH
    assert_error(api.session.get(other, timeout=5), 404, contract.ERROR_NOT_FOUND)
    assert_error(api.get("/nothing-here"), 404, contract.ERROR_NOT_FOUND)
    assert_error(
        api.get(contract.NOTIFICATION_PATH.format(notification_id="1")),
        404,
        contract.ERROR_NOT_FOUND,
    )
    response = api.session.delete(api.url(contract.TEMPLATES_PATH), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"


# -- directory -------------------------------------------------------------------------


def test_channel_groups_with_included_channels(api: Api) -> None:
    document = api.get(contract.CHANNEL_GROUPS_PATH, params={"include": "channels"}).json()
    groups = {g["id"]: g for g in document["data"]}
    assert set(groups) == {"7", "8"}
    assert groups["7"]["type"] == contract.TYPE_CHANNEL_GROUPS
    assert groups["7"]["attributes"] == {"name": "Support"}
    assert groups["7"]["relationships"]["channels"]["data"] == [
        {"type": "channels", "id": "48"},
        {"type": "channels", "id": "49"},
    ]
    channels = {c["id"]: c["attributes"] for c in document["included"]}
    assert channels == {
        "48": {"channelType": "WHATSAPP", "name": "WhatsApp +35316000000"},
        "49": {"channelType": "SMS", "name": "SMS 50050"},
        "50": {"channelType": "WHATSAPP", "name": "WhatsApp +35316000001"},
    }
    plain = api.get(contract.CHANNEL_GROUPS_PATH).json()
    assert "included" not in plain
    assert_error(
        api.get(contract.CHANNEL_GROUPS_PATH, params={"include": "owners"}),
        400,
        contract.ERROR_BAD_REQUEST,
    )


def test_templates_paginate_by_page_size(api: Api) -> None:
    ids: list[str] = []
    url: str | None = api.url(contract.TEMPLATES_PATH) + "?page[number]=1&page[size]=2"
    pages = 0
    while url:
        document = api.session.get(url, timeout=5).json()
        pages += 1
        assert document["meta"]["pagination"] == {"page": pages, "pages": 3, "count": 5}
        ids += [t["id"] for t in document["data"]]
        url = document["links"]["next"]
    assert pages == 3
    assert ids == ["101", "102", "103", "104", "105"]

    everything = api.get(contract.TEMPLATES_PATH).json()
    assert len(everything["data"]) == 5
    assert everything["links"]["next"] is None
    shipped = everything["data"][0]
    assert shipped == {
        "type": "templates",
        "id": "101",
        "attributes": {
            "name": "order_shipped",
            "description": "Order shipped",
            "channelTypes": ["WHATSAPP", "SMS"],
            "parameters": [
                {"name": "first_name", "required": True},
                {"name": "tracking_url", "required": False},
            ],
            "preview": "Hi {{first_name}}, your order is on its way: {{tracking_url}}",
        },
    }
    assert everything["data"][2]["attributes"]["channelTypes"] == ["WHATSAPP"]
    beyond = api.get(contract.TEMPLATES_PATH, params={"page[number]": 4, "page[size]": 2}).json()
    assert beyond["data"] == [] and beyond["links"]["next"] is None


@pytest.mark.parametrize(
    "params",
    [{"page[size]": "101"}, {"page[size]": "0"}, {"page[number]": "0"}, {"page[number]": "x"}],
)
def test_bad_page_parameters(api: Api, params: dict[str, str]) -> None:
    response = api.get(contract.TEMPLATES_PATH, params=params)
    error = assert_error(response, 400, contract.ERROR_BAD_REQUEST)
    assert error["source"] == {"parameter": next(iter(params))}


# -- notifications -----------------------------------------------------------------------


def test_create_and_get_notification(api: Api, sb: Sandbox) -> None:
    document = notification_document(context={"first_name": "Ann", "tracking_url": "https://t/1"})
    response = api.post(contract.NOTIFICATIONS_PATH, document)
    assert response.status_code == 201
    created = response.json()["data"]
    assert created["type"] == "notifications"
    assert isinstance(created["id"], str)
    attributes = created["attributes"]
    assert attributes["status"] == "ACCEPTED"
    assert attributes["channelType"] == "WHATSAPP"
    assert attributes["failure"] is None
    assert attributes["createdAt"].endswith("Z") and len(attributes["createdAt"]) == 24
    assert created["relationships"] == document["data"]["relationships"]
    path = contract.NOTIFICATION_PATH.format(notification_id=created["id"])
    assert response.headers["Location"] == api.url(path)
    assert api.session.get(response.headers["Location"], timeout=5).json()["data"] == created
    [stored] = sb.notifications()
    assert stored["context"] == {"first_name": "Ann", "tracking_url": "https://t/1"}
    assert stored["template"] == "101" and stored["recipient"] == "+353861234567"


def test_template_without_parameters_needs_no_context(api: Api) -> None:
    document = notification_document(template="104", context={})
    del document["data"]["attributes"]["context"]
    assert api.post(contract.NOTIFICATIONS_PATH, document).status_code == 201


def _without(path: tuple[str, ...]) -> Any:
    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _set(path: tuple[str, ...], value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


RECIPIENT = ("data", "relationships", "recipient", "data", "id")


@pytest.mark.parametrize(
    ("change", "status", "code", "pointer"),
    [
        (
            _set(RECIPIENT, "+1234"),
            422,
            contract.ERROR_INVALID_RECIPIENT,
            "/data/relationships/recipient",
        ),
        (
            _set(RECIPIENT, "0861234567"),
            422,
            contract.ERROR_INVALID_RECIPIENT,
            "/data/relationships/recipient",
        ),
        (
            _set(RECIPIENT, "+353 86 123 4567"),
            422,
            contract.ERROR_INVALID_RECIPIENT,
            "/data/relationships/recipient",
        ),
        (_set(("data", "attributes", "channelType"), "SMS"), None, None, None),
        (
            _set(("data", "relationships", "template", "data", "id"), "103"),
            422,
            contract.ERROR_TEMPLATE_PARAMETER_MISSING,
            "/data/attributes/context/date",
        ),
        (
            _set(("data", "attributes", "context"), {}),
            422,
            contract.ERROR_TEMPLATE_PARAMETER_MISSING,
            "/data/attributes/context/first_name",
        ),
        (
            _set(("data", "attributes", "context"), {"first_name": ""}),
            422,
            contract.ERROR_TEMPLATE_PARAMETER_MISSING,
            "/data/attributes/context/first_name",
        ),
        (
            _set(("data", "attributes", "context"), {"first_name": "A", "coupon": "X"}),
            422,
            contract.ERROR_TEMPLATE_PARAMETER_UNKNOWN,
            "/data/attributes/context/coupon",
        ),
        (
            _set(("data", "attributes", "context"), {"first_name": 5}),
            422,
            contract.ERROR_VALIDATION,
            "/data/attributes/context/first_name",
        ),
        (
            _without(("data", "attributes", "channelType")),
            422,
            contract.ERROR_VALIDATION,
            "/data/attributes/channelType",
        ),
        (
            _without(("data", "relationships", "recipient")),
            422,
            contract.ERROR_VALIDATION,
            "/data/relationships/recipient",
        ),
        (
            _set(("data", "attributes", "colour"), "red"),
            422,
            contract.ERROR_VALIDATION,
            "/data/attributes/colour",
        ),
        (
            _set(("data", "relationships", "template", "data", "id"), "999"),
            404,
            contract.ERROR_NOT_FOUND,
            "/data/relationships/template",
        ),
        (
            _set(("data", "relationships", "channelGroup", "data", "id"), "99"),
            404,
            contract.ERROR_NOT_FOUND,
            "/data/relationships/channelGroup",
        ),
        (
            _set(("data", "relationships", "template", "data", "id"), 101),
            400,
            contract.ERROR_BAD_REQUEST,
            "/data/relationships/template/data/id",
        ),
        (
            _set(("data", "relationships", "template", "data", "type"), "forms"),
            400,
            contract.ERROR_BAD_REQUEST,
            "/data/relationships/template",
        ),
        (_set(("data", "type"), "messages"), 409, contract.ERROR_BAD_REQUEST, "/data/type"),
        (_without(("data", "type")), 400, contract.ERROR_BAD_REQUEST, "/data/type"),
        (_set(("data", "id"), "1"), 403, contract.ERROR_FORBIDDEN, "/data/id"),
        (_set(("data",), [1]), 400, contract.ERROR_BAD_REQUEST, "/data"),
        (_set(("data", "attributes"), "x"), 400, contract.ERROR_BAD_REQUEST, "/data/attributes"),
    ],
)
def test_notification_validation(
    api: Api,
    sb: Sandbox,
    change: Any,
    status: int | None,
    code: str | None,
    pointer: str | None,
) -> None:
    document = notification_document()
    change(document)
    response = api.post(contract.NOTIFICATIONS_PATH, document)
    if status is None:
        assert response.status_code == 201  # the change alone is valid
        return
    assert_error(response, status, code or "", pointer)
    assert sb.notifications() == []


def test_template_not_for_channel_and_channel_not_in_group(api: Api, sb: Sandbox) -> None:
    sms_only_whatsapp = notification_document(
        template="103", channel_type="SMS", context={"first_name": "A", "date": "Monday"}
    )
    assert_error(
        api.post(contract.NOTIFICATIONS_PATH, sms_only_whatsapp),
        422,
        contract.ERROR_TEMPLATE_NOT_FOR_CHANNEL,
        "/data/attributes/channelType",
    )
    sms_in_sales = notification_document(group="8", channel_type="SMS")
    assert_error(
        api.post(contract.NOTIFICATIONS_PATH, sms_in_sales),
        422,
        contract.ERROR_CHANNEL_NOT_IN_GROUP,
        "/data/attributes/channelType",
    )
    assert sb.notifications() == []


def test_every_missing_parameter_is_reported(api: Api) -> None:
    document = notification_document(template="105", context={"surname": "B"})
    response = api.post(contract.NOTIFICATIONS_PATH, document)
    assert response.status_code == 422
    found = {(e["code"], e["source"]["pointer"]) for e in response.json()["errors"]}
    assert found == {
        (contract.ERROR_TEMPLATE_PARAMETER_UNKNOWN, "/data/attributes/context/surname"),
        (contract.ERROR_TEMPLATE_PARAMETER_MISSING, "/data/attributes/context/first_name"),
        (contract.ERROR_TEMPLATE_PARAMETER_MISSING, "/data/attributes/context/order_number"),
    }


def test_body_that_is_not_json_is_400(api: Api) -> None:
    assert_error(
        api.post(contract.NOTIFICATIONS_PATH, b"{not json"), 400, contract.ERROR_BAD_REQUEST
    )


def test_filter_by_ids(api: Api) -> None:
    ids = [
        api.post(contract.NOTIFICATIONS_PATH, notification_document()).json()["data"]["id"]
        for _ in range(3)
    ]
    wanted = [ids[0], "424242", ids[2]]
    document = api.get(contract.NOTIFICATIONS_PATH, params={"filter[id]": ",".join(wanted)}).json()
    assert [n["id"] for n in document["data"]] == [ids[0], ids[2]]
    too_many = ",".join(str(i) for i in range(contract.MAX_FILTER_IDS + 1))
    error = assert_error(
        api.get(contract.NOTIFICATIONS_PATH, params={"filter[id]": too_many}),
        400,
        contract.ERROR_BAD_REQUEST,
    )
    assert error["source"] == {"parameter": "filter[id]"}
    at_most = ",".join([*ids, *(str(i) for i in range(contract.MAX_FILTER_IDS - 3))])
    full = api.get(contract.NOTIFICATIONS_PATH, params={"filter[id]": at_most}).json()
    assert len(full["data"]) == 3


# -- idempotency -----------------------------------------------------------------------


def test_idempotent_replay(api: Api, sb: Sandbox) -> None:
    first = api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="order-1")
    second = api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="order-1")
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert first.headers["Location"] == second.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(sb.notifications()) == 1
    assert sb.notifications()[0]["idempotency_key"] == "order-1"
    keys = [e["idempotency_key"] for e in sb.requests_log if "/notifications" in e["path"]]
    assert keys == ["order-1", "order-1"]
    # Another key is another notification; errors are replayed as well.
    assert (
        api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="order-2").json()
        != first.json()
    )
    bad = notification_document(context={})
    refused = [api.post(contract.NOTIFICATIONS_PATH, bad, key="bad-1") for _ in range(2)]
    assert [r.status_code for r in refused] == [422, 422]
    assert refused[0].content == refused[1].content


def test_idempotency_key_reused_with_another_body(api: Api, sb: Sandbox) -> None:
    assert (
        api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="k").status_code == 201
    )
    other = notification_document(context={"first_name": "Bob"})
    assert_error(
        api.post(contract.NOTIFICATIONS_PATH, other, key="k"),
        422,
        contract.ERROR_IDEMPOTENCY_KEY_REUSED,
    )
    # Same key on another path is another request too.
    assert_error(
        api.post(contract.DIALOGUES_PATH.format(agent_id="17"), dialogue_document(), key="k"),
        422,
        contract.ERROR_IDEMPOTENCY_KEY_REUSED,
    )
    assert len(sb.notifications()) == 1
    assert sb.dialogues() == []


def test_idempotency_key_length(api: Api, sb: Sandbox) -> None:
    longest = "k" * contract.IDEMPOTENCY_KEY_MAX_LENGTH
    assert (
        api.post(contract.NOTIFICATIONS_PATH, notification_document(), key=longest).status_code
        == 201
    )
    assert_error(
        api.post(contract.NOTIFICATIONS_PATH, notification_document(), key=longest + "k"),
        400,
        contract.ERROR_BAD_REQUEST,
    )
    assert len(sb.notifications()) == 1


def test_concurrent_requests_with_one_key_create_one_notification(sb: Sandbox) -> None:
    callers = [Api(sb) for _ in range(12)]
    # One token for all: keys are per client, and these are one client.
    for caller in callers[1:]:
        caller.session.headers["Authorization"] = callers[0].session.headers["Authorization"]
    barrier = threading.Barrier(len(callers))
    results: list[requests.Response] = []
    lock = threading.Lock()

    def send(caller: Api) -> None:
        barrier.wait()
        response = caller.post(contract.NOTIFICATIONS_PATH, notification_document(), key="race")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=send, args=(c,)) for c in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == len(callers)
    assert {r.status_code for r in results} == {201}
    assert len({r.content for r in results}) == 1
    assert len(sb.notifications()) == 1
    for caller in callers:
        caller.close()


# -- dialogues ---------------------------------------------------------------------------


def dialogues_path(agent_id: str) -> str:
    return contract.DIALOGUES_PATH.format(agent_id=agent_id)


def dialogue_path(agent_id: str, dialogue_id: str) -> str:
    return contract.DIALOGUE_PATH.format(agent_id=agent_id, dialogue_id=dialogue_id)


def messages_path(agent_id: str, dialogue_id: str) -> str:
    return contract.MESSAGES_PATH.format(agent_id=agent_id, dialogue_id=dialogue_id)


def close_document(dialogue_id: str) -> dict[str, Any]:
    return {"data": {"type": "dialogues", "id": dialogue_id, "attributes": {"status": "CLOSED"}}}


def test_dialogue_lifecycle_and_exclusivity(api: Api, sb: Sandbox) -> None:
    response = api.post(dialogues_path("17"), dialogue_document())
    assert response.status_code == 201
    dialogue = response.json()["data"]
    assert dialogue["type"] == "dialogues"
    assert dialogue["attributes"]["status"] == "OPEN"
    assert dialogue["attributes"]["initiatedBy"] == "AGENT"
    assert dialogue["attributes"]["closedAt"] is None
    assert dialogue["relationships"]["dialogueAgent"]["data"] == {
        "type": "dialogue-agents",
        "id": "17",
    }
    dialogue_id = dialogue["id"]
    assert response.headers["Location"] == api.url(dialogue_path("17", dialogue_id))

    for agent_id in ("18", "17"):
        conflict = api.post(dialogues_path(agent_id), dialogue_document(channel_type="SMS"))
        error = assert_error(conflict, 409, contract.ERROR_DIALOGUE_ACTIVE)
        assert error["meta"] == {"dialogueId": dialogue_id, "dialogueAgentId": "17"}
    # Another channel group is another dialogue.
    assert api.post(dialogues_path("18"), dialogue_document(group="8")).status_code == 201

    assert api.get(dialogue_path("17", dialogue_id)).json()["data"] == dialogue
    listed = api.get(dialogues_path("17"), params={"filter[status]": "OPEN"}).json()
    assert [d["id"] for d in listed["data"]] == [dialogue_id]

    assert_error(
        api.patch(dialogue_path("18", dialogue_id), close_document(dialogue_id)),
        403,
        contract.ERROR_NOT_DIALOGUE_OWNER,
    )
    assert_error(
        api.post(messages_path("18", dialogue_id), text_message()),
        403,
        contract.ERROR_NOT_DIALOGUE_OWNER,
    )
    closed = api.patch(dialogue_path("17", dialogue_id), close_document(dialogue_id))
    assert closed.status_code == 200
    attributes = closed.json()["data"]["attributes"]
    assert attributes["status"] == "CLOSED" and attributes["closedAt"]
    again = api.patch(dialogue_path("17", dialogue_id), close_document(dialogue_id))
    assert again.status_code == 200
    assert again.json()["data"]["attributes"]["closedAt"] == attributes["closedAt"]
    assert_error(
        api.post(messages_path("17", dialogue_id), text_message()),
        409,
        contract.ERROR_DIALOGUE_CLOSED,
    )
    assert api.get(dialogues_path("17"), params={"filter[status]": "OPEN"}).json()["data"] == []
    # Closed, the recipient is free for another agent.
    assert api.post(dialogues_path("18"), dialogue_document()).status_code == 201


def test_dialogue_patch_rules(api: Api) -> None:
    dialogue_id = api.post(dialogues_path("17"), dialogue_document()).json()["data"]["id"]
    reopen = {"data": {"type": "dialogues", "id": dialogue_id, "attributes": {"status": "OPEN"}}}
    assert_error(
        api.patch(dialogue_path("17", dialogue_id), reopen),
        422,
        contract.ERROR_VALIDATION,
        "/data/attributes/status",
    )
    assert_error(
        api.patch(dialogue_path("17", dialogue_id), close_document("1")),
        409,
        contract.ERROR_BAD_REQUEST,
        "/data/id",
    )
    assert_error(api.get(dialogue_path("17", "424242")), 404, contract.ERROR_NOT_FOUND)
    assert_error(api.post(dialogues_path("99"), dialogue_document()), 404, contract.ERROR_NOT_FOUND)
    assert_error(
        api.post(dialogues_path("17"), dialogue_document(recipient="+1")),
        422,
        contract.ERROR_INVALID_RECIPIENT,
        "/data/relationships/recipient",
    )
    assert_error(
        api.post(dialogues_path("17"), dialogue_document(group="8", channel_type="SMS")),
        422,
        contract.ERROR_CHANNEL_NOT_IN_GROUP,
    )


def test_messages_text_template_files_and_transcript(api: Api, sb: Sandbox) -> None:
    dialogue_id = api.post(dialogues_path("17"), dialogue_document()).json()["data"]["id"]
    upload = api.session.post(
        api.url(contract.FILES_PATH),
        files={"file": ("invoice.pdf", b"%PDF-1.4 fake", "application/pdf")},
        timeout=5,
    )
    assert upload.status_code == 201
    file_resource = upload.json()["data"]
    assert file_resource["type"] == "files"
    assert file_resource["attributes"] == {
        "name": "invoice.pdf",
        "contentType": "application/pdf",
        "size": 13,
    }

    text = api.post(messages_path("17", dialogue_id), text_message("Refund", [file_resource["id"]]))
    assert text.status_code == 201
    message = text.json()["data"]
    assert message["type"] == "messages"
    assert message["attributes"]["direction"] == "OUTBOUND"
    assert message["attributes"]["status"] == "ACCEPTED"
    assert message["attributes"]["text"] == "Refund"
    assert message["relationships"]["files"]["data"] == [
        {"type": "files", "id": file_resource["id"]}
    ]
    assert api.session.get(text.headers["Location"], timeout=5).json()["data"] == message

    template = {
        "data": {
            "type": "messages",
            "attributes": {"context": {"code": "123456"}, "channelType": "SMS"},
            "relationships": {"template": {"data": {"type": "templates", "id": "102"}}},
        }
    }
    assert api.post(messages_path("17", dialogue_id), template).status_code == 201
    template["data"]["attributes"]["context"] = {}
    assert_error(
        api.post(messages_path("17", dialogue_id), template),
        422,
        contract.ERROR_TEMPLATE_PARAMETER_MISSING,
        "/data/attributes/context/code",
    )
    assert_error(
        api.post(messages_path("17", dialogue_id), text_message("")),
        422,
        contract.ERROR_VALIDATION,
        "/data/attributes/text",
    )
    assert_error(
        api.post(messages_path("17", dialogue_id), text_message("x", ["404"])),
        404,
        contract.ERROR_NOT_FOUND,
        "/data/relationships/files/data/0",
    )
    reply = sb.reply("+353861234567", "Thanks!")
    assert reply["opened"] is False and reply["dialogue_id"] == dialogue_id

    first = api.get(messages_path("17", dialogue_id), params={"page[size]": 2}).json()
    assert first["meta"]["pagination"] == {"page": 1, "pages": 2, "count": 3}
    second = api.session.get(first["links"]["next"], timeout=5).json()
    transcript = first["data"] + second["data"]
    assert [m["attributes"]["direction"] for m in transcript] == ["OUTBOUND", "OUTBOUND", "INBOUND"]
    assert transcript[2]["attributes"]["text"] == "Thanks!"


def test_file_limits_and_media_type(api: Api, sb: Sandbox) -> None:
    too_big = b"x" * (contract.MAX_FILE_SIZE + 1)
    response = api.session.post(
        api.url(contract.FILES_PATH), files={"file": ("big.bin", too_big)}, timeout=30
    )
    assert_error(response, 413, contract.ERROR_PAYLOAD_TOO_LARGE)
    assert_error(
        api.post(contract.FILES_PATH, {"data": {}}), 415, contract.ERROR_UNSUPPORTED_MEDIA_TYPE
    )
    wrong_part = api.session.post(
        api.url(contract.FILES_PATH), files={"upload": ("a.txt", b"a")}, timeout=5
    )
    assert_error(wrong_part, 400, contract.ERROR_BAD_REQUEST)
    assert sb.files() == []
    # Retries of one upload (new multipart boundary each time) are one file.
    first = api.session.post(
        api.url(contract.FILES_PATH),
        files={"file": ("a.txt", b"a")},
        headers={contract.IDEMPOTENCY_HEADER: "upload-1"},
        timeout=5,
    )
    again = api.session.post(
        api.url(contract.FILES_PATH),
        files={"file": ("a.txt", b"a")},
        headers={contract.IDEMPOTENCY_HEADER: "upload-1"},
        timeout=5,
    )
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert len(sb.files()) == 1


# -- webhooks -----------------------------------------------------------------------


def point_agents_at(sb: Sandbox, receiver: Receiver) -> None:
    for agent_id in SECRETS:
        sb.set_agent_endpoint(agent_id, receiver.url(agent_id))


def assert_signed(receiver: Receiver) -> None:
    """Every delivery verifies with its agent's secret, and only with it."""
    assert receiver.deliveries
    for delivery in receiver.deliveries:
        agent_id = delivery["path"].rsplit("/", 1)[1]
        event = json.loads(delivery["body"])
        assert event["data"]["relationships"]["dialogueAgent"]["data"]["id"] == agent_id
        assert delivery["headers"]["Content-Type"] == JSONAPI
        signature = delivery["headers"][contract.SIGNATURE_HEADER]
        assert verify(delivery["body"], signature, [SECRETS[agent_id]])
        others = [secret for key, secret in SECRETS.items() if key != agent_id]
        assert not verify(delivery["body"], signature, others)


def test_recipient_initiated_dialogue(sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    result = sb.reply("+353861234567", "Where is my order?", channel_type="SMS")
    assert result["opened"] is True and result["agent_id"] == "17"
    assert sb.wait_for_webhooks(5)
    assert receiver.wait_for(2)
    # Events about one dialogue keep their order when shuffling is off.
    assert receiver.event_types() == ["dialogue.opened", "message.received"]
    events = {e["data"]["attributes"]["eventType"]: e["data"] for e in receiver.events()}
    opened = events["dialogue.opened"]
    assert opened["type"] == "events" and opened["id"].startswith("evt_")
    assert opened["attributes"]["initiatedBy"] == "RECIPIENT"
    assert opened["attributes"]["channelType"] == "SMS"
    assert opened["relationships"]["dialogue"]["data"] == {
        "type": "dialogues",
        "id": result["dialogue_id"],
    }
    assert opened["relationships"]["recipient"]["data"] == {
        "type": "customers",
        "id": "+353861234567",
    }
    assert opened["relationships"]["channelGroup"]["data"] == {"type": "channel-groups", "id": "7"}
    received = events["message.received"]
    assert received["attributes"]["text"] == "Where is my order?"
    assert received["attributes"]["files"] == []
    assert received["relationships"]["message"]["data"]["id"] == result["message_id"]
    assert set(received["relationships"]) == {
        "message",
        "dialogue",
        "recipient",
        "channelGroup",
        "dialogueAgent",
    }

    # The dialogue is now the designated agent's: the other one is refused.
    api = Api(sb)
    error = assert_error(
        api.post(dialogues_path("18"), dialogue_document()), 409, contract.ERROR_DIALOGUE_ACTIVE
    )
    assert error["meta"]["dialogueAgentId"] == "17"
    # Group 8's designated agent is 18, whose deliveries use 18's secret.
    sales = sb.reply(
        "+353861234567",
        "And a question for sales",
        channel_group="8",
        files=[("photo.jpg", b"jpeg", "image/jpeg")],
    )
    assert sales["agent_id"] == "18" and sales["opened"] is True
    # A second message goes to the open dialogue without opening another.
    follow_up = sb.reply("+353861234567", "Hello?")
    assert follow_up == {**follow_up, "opened": False, "dialogue_id": result["dialogue_id"]}
    assert sb.wait_for_webhooks(5)
    assert receiver.wait_for(5)
    assert_signed(receiver)
    files = [
        e["data"]["attributes"]["files"]
        for e in receiver.events()
        if e["data"]["attributes"]["eventType"] == "message.received"
        and e["data"]["attributes"]["files"]
    ]
    [[photo]] = files
    assert photo["name"] == "photo.jpg" and photo["size"] == 4
    assert requests.get(photo["url"], timeout=5).content == b"jpeg"
    api.close()


def test_dialogue_events_for_agent_actions(api: Api, sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    dialogue_id = api.post(dialogues_path("18"), dialogue_document()).json()["data"]["id"]
    api.patch(dialogue_path("18", dialogue_id), close_document(dialogue_id))
    api.patch(dialogue_path("18", dialogue_id), close_document(dialogue_id))  # no new event
    other = api.post(dialogues_path("17"), dialogue_document()).json()["data"]["id"]
    sb.close_dialogue(other, closed_by="PLATFORM")
    assert sb.wait_for_webhooks(5)
    assert receiver.wait_for(4)
    time.sleep(0.05)
    attributes = [
        (
            e["data"]["attributes"]["eventType"],
            e["data"]["attributes"].get("initiatedBy") or e["data"]["attributes"].get("closedBy"),
        )
        for e in receiver.events()
    ]
    assert sorted(attributes) == sorted(
        [
            ("dialogue.opened", "AGENT"),
            ("dialogue.closed", "AGENT"),
            ("dialogue.opened", "AGENT"),
            ("dialogue.closed", "PLATFORM"),
        ]
    )
    assert_signed(receiver)
    state = {d["id"]: d for d in sb.dialogues()}
    assert state[other]["closedBy"] == "PLATFORM"


def test_manual_status_moves_forward_only(api: Api, sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    notification_id = api.post(contract.NOTIFICATIONS_PATH, notification_document()).json()["data"][
        "id"
    ]
    sb.set_status("notification", notification_id, "DELIVERED")
    with pytest.raises(ValueError):
        sb.set_status("notification", notification_id, "SENT")
    with pytest.raises(KeyError):
        sb.set_status("notification", "424242", "SENT")
    sb.set_status(
        "notification",
        notification_id,
        "FAILED",
        {"code": "BLOCKED", "detail": "Blocked by the recipient."},
    )
    with pytest.raises(ValueError):
        sb.set_status("notification", notification_id, "READ")
    path = contract.NOTIFICATION_PATH.format(notification_id=notification_id)
    attributes = api.get(path).json()["data"]["attributes"]
    assert attributes["status"] == "FAILED"
    assert attributes["failure"] == {"code": "BLOCKED", "detail": "Blocked by the recipient."}
    assert sb.wait_for_webhooks(5) and receiver.wait_for(2)
    events = [e["data"] for e in receiver.events()]
    assert [e["attributes"]["status"] for e in events] == ["DELIVERED", "FAILED"]
    assert events[1]["attributes"]["failure"]["code"] == "BLOCKED"
    assert events[0]["relationships"]["notification"]["data"] == {
        "type": "notifications",
        "id": notification_id,
    }
    assert {d["path"] for d in receiver.deliveries} == {"/hooks/17"}
    assert_signed(receiver)
    history = sb.notifications()[0]["history"]
    assert [h["status"] for h in history] == ["ACCEPTED", "DELIVERED", "FAILED"]


def test_webhook_retried_until_2xx(api: Api, sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    notification_id = api.post(contract.NOTIFICATIONS_PATH, notification_document()).json()["data"][
        "id"
    ]
    receiver.statuses = [500, 503]
    sb.set_status("notification", notification_id, "SENT")  # exactly one event
    assert sb.wait_for_webhooks(5)
    assert receiver.wait_for(3)
    assert len({d["body"] for d in receiver.deliveries}) == 1  # the same bytes every time
    assert [d["status"] for d in receiver.deliveries] == [500, 503, 200]
    log = sb.webhook_log
    assert [(e["attempt"], e["status_code"], e["delivered"]) for e in log] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert len({e["event_id"] for e in log}) == 1
    assert_signed(receiver)


def test_webhook_given_up_after_the_last_delay(sb: Sandbox, receiver: Receiver) -> None:
    sb.set_agent_endpoint("17", receiver.url("17"))
    receiver.statuses = [500] * 10
    api = Api(sb)
    dialogue_id = api.post(dialogues_path("17"), dialogue_document()).json()["data"]["id"]
    assert sb.wait_for_webhooks(5)
    log = sb.webhook_log
    assert [e["attempt"] for e in log] == [1, 2, 3]
    assert log[-1]["gave_up"] is True and not any(e["delivered"] for e in log)
    assert len(receiver.deliveries) == 3
    # Unreachable endpoints are retried the same way.
    sb.set_agent_endpoint("17", "http://127.0.0.1:9/unreachable")
    api.patch(dialogue_path("17", dialogue_id), close_document(dialogue_id))
    assert sb.wait_for_webhooks(5)
    failed = [e for e in sb.webhook_log if e["event_type"] == "dialogue.closed"]
    assert len(failed) == 3 and failed[0]["error"] and failed[-1]["gave_up"]
    api.close()


def test_status_progression_and_scripted_numbers(receiver: Receiver) -> None:
    with Sandbox(progress_interval=0.02) as sandbox:
        point_agents_at(sandbox, receiver)
        api = Api(sandbox)
        cases = {
            ("+353861234567", "WHATSAPP"): ("READ", None),
            ("+15005550001", "SMS"): ("FAILED", "RECIPIENT_UNREACHABLE"),
            ("+15005550002", "WHATSAPP"): ("FAILED", "NOT_ON_CHANNEL"),
            ("+15005550002", "SMS"): ("READ", None),
            ("+15005550003", "WHATSAPP"): ("EXPIRED", "EXPIRED"),
            ("+15005550004", "WHATSAPP"): ("SENT", None),
        }
        ids = {}
        for (number, channel), _ in cases.items():
            response = api.post(
                contract.NOTIFICATIONS_PATH,
                notification_document(recipient=number, channel_type=channel),
            )
            ids[(number, channel)] = response.json()["data"]["id"]
        assert sandbox.wait_for_webhooks(5)
        for case, (status, failure_code) in cases.items():
            path = contract.NOTIFICATION_PATH.format(notification_id=ids[case])
            attributes = api.get(path).json()["data"]["attributes"]
            assert attributes["status"] == status, case
            assert (attributes["failure"] or {}).get("code") == failure_code, case
        by_id: dict[str, list[str]] = {}
        for event in receiver.events():
            data = event["data"]
            by_id.setdefault(data["relationships"]["notification"]["data"]["id"], []).append(
                data["attributes"]["status"]
            )
        assert by_id[ids[("+353861234567", "WHATSAPP")]] == ["SENT", "DELIVERED", "READ"]
        assert by_id[ids[("+15005550003", "WHATSAPP")]] == ["SENT", "EXPIRED"]
        assert by_id[ids[("+15005550001", "SMS")]] == ["FAILED"]
        assert by_id[ids[("+15005550004", "WHATSAPP")]] == ["SENT"]
        assert_signed(receiver)

        # Dialogue messages progress too, reported to the dialogue's owner.
        dialogue_id = api.post(dialogues_path("18"), dialogue_document(group="8")).json()["data"][
            "id"
        ]
        message_id = api.post(messages_path("18", dialogue_id), text_message()).json()["data"]["id"]
        assert sandbox.wait_for_webhooks(5)
        statuses = [
            e["data"]
            for e in receiver.events()
            if e["data"]["attributes"]["eventType"] == "message.status"
        ]
        assert [s["attributes"]["status"] for s in statuses] == ["SENT", "DELIVERED", "READ"]
        assert statuses[0]["relationships"]["message"]["data"]["id"] == message_id
        assert statuses[0]["relationships"]["dialogue"]["data"]["id"] == dialogue_id
        assert statuses[0]["relationships"]["dialogueAgent"]["data"]["id"] == "18"
        api.close()


def test_progression_without_auto_read() -> None:
    with Sandbox(progress_interval=0.01, auto_read=False) as sandbox:
        api = Api(sandbox)
        api.post(contract.NOTIFICATIONS_PATH, notification_document())
        assert sandbox.wait_for_webhooks(5)
        [notification] = sandbox.notifications()
        assert notification["status"] == "DELIVERED"
        sandbox.set_status("notification", notification["id"], "READ")
        assert sandbox.notifications()[0]["status"] == "READ"
        api.close()


# -- faults ------------------------------------------------------------------------------


def test_injected_429_and_503_carry_retry_after(api: Api, sb: Sandbox) -> None:
    sb.faults.inject("429", retry_after=7)
    response = api.get(contract.TEMPLATES_PATH)
    assert_error(response, 429, contract.ERROR_RATE_LIMITED)
    assert response.headers["Retry-After"] == "7"
    assert api.get(contract.TEMPLATES_PATH).status_code == 200  # count=1 by default

    sb.faults.inject("503", method="POST", path=contract.NOTIFICATIONS_PATH, retry_after=2)
    assert api.get(contract.TEMPLATES_PATH).status_code == 200  # does not match
    refused = api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="k")
    assert_error(refused, 503, contract.ERROR_UNAVAILABLE)
    assert refused.headers["Retry-After"] == "2"
    assert sb.notifications() == []  # refused before processing
    # The key was not used up by the refused request.
    assert (
        api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="k").status_code == 201
    )
    assert len(sb.notifications()) == 1


@pytest.mark.parametrize(
    ("kind", "code"), [("500", contract.ERROR_INTERNAL), ("502", contract.ERROR_UNAVAILABLE)]
)
def test_injected_server_errors(api: Api, sb: Sandbox, kind: str, code: str) -> None:
    sb.faults.inject(kind, count=2)
    for _ in range(2):
        assert_error(
            api.post(contract.NOTIFICATIONS_PATH, notification_document()), int(kind), code
        )
    assert api.post(contract.NOTIFICATIONS_PATH, notification_document()).status_code == 201
    assert len(sb.notifications()) == 1
    statuses = [e["status"] for e in sb.requests_log if "/notifications" in e["path"]]
    assert statuses == [int(kind), int(kind), 201]


def test_slow_and_expire_token_faults(api: Api, sb: Sandbox) -> None:
    sb.faults.configure(slow_seconds=0.3)
    sb.faults.inject("slow", path="templates")
    started = time.monotonic()
    assert api.get(contract.TEMPLATES_PATH).status_code == 200
    assert time.monotonic() - started >= 0.3

    sb.faults.inject("expire_token")
    assert_error(api.get(contract.TEMPLATES_PATH), 401, contract.ERROR_TOKEN_EXPIRED)
    assert_error(api.get(contract.TEMPLATES_PATH), 401, contract.ERROR_TOKEN_EXPIRED)
    assert Api(sb).get(contract.TEMPLATES_PATH).status_code == 200


def test_faults_spare_the_token_endpoint_unless_asked(sb: Sandbox) -> None:
    sb.faults.configure(rate_503=1.0)
    token = get_token(sb)  # not affected by rates
    headers = {"Authorization": f"Bearer {token}", "Accept": JSONAPI}
    url = sb.organisation_url + contract.TEMPLATES_PATH
    assert [requests.get(url, headers=headers, timeout=5).status_code for _ in range(3)] == [
        503
    ] * 3
    sb.faults.clear()
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    sb.faults.inject("503", path=r"/token\?p=")
    response = requests.post(sb.token_url, data=token_form(sb), timeout=5)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert requests.post(sb.token_url, data=token_form(sb), timeout=5).status_code == 200


def test_rate_limit() -> None:
    with Sandbox(rate_limit=5, progress_interval=None) as sandbox:
        api = Api(sandbox)
        statuses = [api.get(contract.TEMPLATES_PATH) for _ in range(12)]
        limited = [r for r in statuses if r.status_code == 429]
        assert 5 <= len(statuses) - len(limited) <= 7
        assert limited
        assert_error(limited[0], 429, contract.ERROR_RATE_LIMITED)
        assert int(limited[0].headers["Retry-After"]) >= 1
        time.sleep(0.5)
        assert api.get(contract.TEMPLATES_PATH).status_code == 200
        api.close()


def test_drop_and_duplicate_webhooks(sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    sb.faults.inject("drop_webhook", path="dialogue.opened")
    sb.faults.inject("duplicate_webhook", path="message.received")
    sb.reply("+353861234567", "hi")
    assert sb.wait_for_webhooks(5)
    assert receiver.wait_for(2)
    time.sleep(0.05)
    events = receiver.events()
    assert [e["data"]["attributes"]["eventType"] for e in events] == ["message.received"] * 2
    assert events[0] == events[1]  # the same event id, delivered twice
    dropped = [e for e in sb.webhook_log if e["dropped"]]
    assert [e["event_type"] for e in dropped] == ["dialogue.opened"]
    assert (
        len([e for e in sb.events() if e["data"]["attributes"]["eventType"] == "dialogue.opened"])
        == 1
    )


def test_chaos_rates_and_shuffle(sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    sb.faults.configure(webhook_shuffle=True, webhook_duplicate_rate=1.0)
    for number in ("+353861234567", "+353861234568", "+353861234569"):
        sb.reply(number, "hi")
    assert sb.wait_for_webhooks(5)
    assert receiver.wait_for(12)
    assert len({e["data"]["id"] for e in receiver.events()}) == 6
    sb.faults.configure(webhook_drop_rate=1.0)
    sb.reply("+353861234567", "again")
    assert sb.wait_for_webhooks(5)
    assert len(receiver.deliveries) == 12
    with pytest.raises(ValueError):
        sb.faults.configure(rate_503=2)
    with pytest.raises(ValueError):
        sb.faults.inject("teapot")


# -- control endpoints and housekeeping ------------------------------------------------------


def test_control_endpoints(sb: Sandbox, receiver: Receiver) -> None:
    control = sb.url + "/_sandbox"
    hello = requests.get(sb.url + "/", timeout=5)
    assert hello.status_code == 200 and "/_sandbox/reply" in hello.text
    assert (
        requests.post(
            f"{control}/agents/17/endpoint", json={"url": receiver.url("17")}, timeout=5
        ).status_code
        == 200
    )
    reply = requests.post(
        f"{control}/reply",
        json={
            "number": "+353861234567",
            "text": "hi",
            "channelGroup": "7",
            "channelType": "WHATSAPP",
        },
        timeout=5,
    )
    assert reply.status_code == 201
    assert reply.json()["opened"] is True
    assert requests.post(f"{control}/wait", json={"timeout": 5}, timeout=10).json() == {
        "idle": True
    }
    assert receiver.wait_for(2)
    assert_signed(receiver)

    api = Api(sb)
    notification_id = api.post(contract.NOTIFICATIONS_PATH, notification_document()).json()["data"][
        "id"
    ]
    moved = requests.post(
        f"{control}/status",
        json={"kind": "notification", "id": notification_id, "status": "SENT"},
        timeout=5,
    )
    assert moved.status_code == 200 and moved.json()["status"] == "SENT"
    backwards = requests.post(
        f"{control}/status",
        json={"kind": "notification", "id": notification_id, "status": "ACCEPTED"},
        timeout=5,
    )
    assert backwards.status_code == 400
    closed = requests.post(
        f"{control}/dialogues/{reply.json()['dialogue_id']}/close",
        json={"closedBy": "TIMEOUT"},
        timeout=5,
    )
    assert closed.json()["closedBy"] == "TIMEOUT"

    state = requests.get(f"{control}/state", timeout=5).json()
    assert state["counts"]["notifications"] == 1
    assert state["notifications"][0]["status"] == "SENT"
    assert state["dialogues"][0]["status"] == "CLOSED"
    assert state["token_requests"] == 1

    assert requests.post(f"{control}/faults", json={"kind": "503"}, timeout=5).status_code == 200
    assert api.get(contract.TEMPLATES_PATH).status_code == 503
    requests.post(f"{control}/faults", json={"configure": {"rate_429": 1.0}}, timeout=5)
    assert api.get(contract.TEMPLATES_PATH).status_code == 429
    requests.post(f"{control}/faults", json={"clear": True}, timeout=5)
    assert api.get(contract.TEMPLATES_PATH).status_code == 200
    requests.post(f"{control}/expire-tokens", timeout=5)
    assert api.get(contract.TEMPLATES_PATH).status_code == 401

    assert requests.post(f"{control}/reset", timeout=5).status_code == 200
    assert sb.notifications() == [] and sb.token_requests == 0
    assert requests.post(f"{control}/nothing", json={}, timeout=5).status_code == 404
    assert requests.post(f"{control}/reply", data="[1]", timeout=5).status_code == 400
    api.close()


def test_reset_keeps_endpoints_and_server(api: Api, sb: Sandbox, receiver: Receiver) -> None:
    point_agents_at(sb, receiver)
    api.post(contract.NOTIFICATIONS_PATH, notification_document(), key="once")
    sb.faults.inject("503", count=None)
    sb.reset()
    assert sb.notifications() == [] and sb.requests_log == [] and sb.faults.injected == []
    assert sb.token_requests == 0
    fresh = Api(sb)
    response = fresh.post(contract.NOTIFICATIONS_PATH, notification_document(), key="once")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    sb.reply("+353861234567", "still delivered")
    assert sb.wait_for_webhooks(5) and receiver.wait_for(2)
    fresh.close()


def test_mmc_settings(sb: Sandbox) -> None:
    value = sb.mmc_settings(TIMEOUT=(1, 2))
    assert value == {
        "BASE_URL": sb.url,
        "OAUTH_BASE_URL": f"{sb.url}/oauth2/v2.0",
        "OAUTH_FLOW": contract.DEFAULT_OAUTH_FLOW,
        "SCOPE": contract.DEFAULT_SCOPE,
        "CLIENT_ID": "sandbox-client",
        "CLIENT_SECRET": "sandbox-secret",
        "ORGANISATION_ID": "1001",
        "AGENTS": {
            "support": {"ID": "17", "WEBHOOK_SECRETS": ["agent-17-secret"]},
            "sales": {"ID": "18", "WEBHOOK_SECRETS": ["agent-18-secret"]},
        },
        "DEFAULT_AGENT": "support",
        "DEFAULT_CHANNEL_GROUP": "7",
        "DEFAULT_CHANNEL_TYPE": "WHATSAPP",
        "TIMEOUT": (1, 2),
    }
    assert sb.url.startswith("http://127.0.0.1:") and sb.port > 0


def test_stop_joins_every_thread(receiver: Receiver) -> None:
    before = {t.ident for t in threading.enumerate()}
    sandbox = Sandbox(progress_interval=0.01).start()
    point_agents_at(sandbox, receiver)
    api = Api(sandbox)  # a kept-alive connection the server must close
    api.post(contract.NOTIFICATIONS_PATH, notification_document())
    assert sandbox.wait_for_webhooks(5)
    sandbox.stop()
    sandbox.stop()  # idempotent
    leftover = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith("mmc-sandbox")
    ]
    assert leftover == []
    assert not sandbox.running
    with pytest.raises(requests.ConnectionError):
        requests.get(sandbox.url + "/", timeout=2)
    api.close()
