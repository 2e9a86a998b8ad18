"""The client in another dialect of the platform, against a sandbox that
plays it, and where the contract is silent: a list that does not paginate,
and a platform that refuses to list notifications by id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from django_mmc.client import MMCClient, get_client
from django_mmc.sandbox import DEFAULT_FIXTURES, Sandbox
from tests.helpers import SUPPORT_AGENT_ID

from . import notify, open_dialogue


@pytest.fixture(scope="module")
def operators_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox in the ``filter-operators`` dialect, with enough templates
    for three pages of the offset grammar."""
    seed = json.loads(DEFAULT_FIXTURES.read_text(encoding="utf-8"))
    seed["templates"] += [
        {"id": str(5000 + n), "name": f"extra_{n}", "description": "", "preview": "Hi",
         "channelTypes": ["SMS"], "parameters": []}
        for n in range(230)
    ]
    path = tmp_path_factory.mktemp("fixtures") / "fixtures.json"
    path.write_text(json.dumps(seed), encoding="utf-8")
    server = Sandbox(fixtures=path, progress_interval=None, rate_limit=None,
                     dialect="filter-operators").start()
    yield server
    server.stop()


@pytest.fixture
def operators(operators_sandbox: Sandbox, settings: Any) -> Sandbox:
    operators_sandbox.reset()
    settings.MMC = operators_sandbox.mmc_settings(RATE_LIMIT=None, TIMEOUT=(2, 3))
    return operators_sandbox


def paths(sandbox: Sandbox, method: str, part: str) -> list[str]:
    return [e["path"] for e in sandbox.requests_log if e["method"] == method and part in e["path"]]


def test_every_call_speaks_the_dialect(operators: Sandbox) -> None:
    assert operators.mmc_settings()["CONTRACT"] == "filter-operators"
    client = get_client()

    groups = client.list_channel_groups()
    templates = client.list_templates()
    sent = notify(client, "dialect-1")
    polled = client.get_notifications([sent.id, "999999"])
    found = client.find_notification("dialect-1")
    dialogue = open_dialogue(client)
    listed = client.list_dialogues(SUPPORT_AGENT_ID, status="OPEN")
    message = client.send_message(SUPPORT_AGENT_ID, dialogue.id, text="Hello",
                                  idempotency_key="m-1")
    closed = client.close_dialogue(SUPPORT_AGENT_ID, dialogue.id)

    assert groups and all(g.channels for g in groups)
    assert len(templates) == len({t.id for t in templates}) > 200
    assert sent.status == "ACCEPTED"  # the platform said "queued"
    assert [n.id for n in polled] == [sent.id] and found is not None and found.id == sent.id
    assert [d.id for d in listed] == [dialogue.id]
    assert message.status == "ACCEPTED" and closed.status == "CLOSED"
    assert all(e["status"] < 400 for e in operators.requests_log), operators.requests_log
    assert all(e["path"].startswith(("/v2/orgs/", "/oauth2/v2.0/"))
               for e in operators.requests_log)
    assert [p for p in paths(operators, "GET", "/message-templates")
            if "page%5Boffset%5D=0&" in p or p.endswith("page%5Boffset%5D=0")]
    assert paths(operators, "GET", "filter%5Bid%5D%5Bin%5D=")
    assert paths(operators, "GET", "filter%5Bstatus%5D%5Beq%5D=OPEN")


def test_the_wrong_grammar_is_refused_by_the_dialects_sandbox(operators: Sandbox,
                                                              settings: Any) -> None:
    settings.MMC = {**settings.MMC, "CONTRACT": {"base": "filter-operators",
                                                 "filter_style": "plain"}}
    with pytest.raises(Exception) as refused:
        get_client().find_notification("k")
    assert getattr(refused.value, "status_code", None) == 400


def test_bulk_polling_refused_falls_back_to_one_get_per_row(
        sandbox: Any, settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    # A client that speaks operators to a platform that does not: the list
    # by id is refused with 400, and each notification is asked for alone.
    settings.MMC = {**settings.MMC, "CONTRACT": {"filter_style": "operators"}}
    client = get_client()
    first, second = notify(client, "p-1"), notify(client, "p-2")
    caplog.set_level(logging.WARNING, "django_mmc.client")

    assert sorted(n.id for n in client.get_notifications([first.id, second.id, "999999"])) == \
        sorted([first.id, second.id])
    assert sorted(n.id for n in client.get_notifications([first.id])) == [first.id]

    lists = [e for e in sandbox.requests_log if "filter" in e["path"]]
    assert [e["status"] for e in lists] == [400]  # asked once, then never again
    singles = [e for e in sandbox.requests_log
               if e["method"] == "GET" and "/notifications/" in e["path"]]
    assert [e["status"] for e in singles] == [200, 200, 404, 200]
    assert sum("refused to list notifications" in r.getMessage() for r in caplog.records) == 1


def test_a_list_that_does_not_paginate_is_one_page(monkeypatch: pytest.MonkeyPatch,
                                                   sandbox: Any) -> None:
    client: MMCClient = get_client()
    calls: list[Any] = []

    def unpaginated(method: str, path: str, **kwargs: Any) -> Any:
        calls.append((method, path, kwargs.get("params")))
        return {"data": [{"type": "templates", "id": str(n), "attributes": {"name": f"t{n}"}}
                         for n in range(3)]}

    monkeypatch.setattr(client, "request", unpaginated)

    assert [t.id for t in client.list_templates()] == ["0", "1", "2"]
    assert len(calls) == 1


def test_links_only_pagination_sends_no_page_parameters(sandbox: Any, settings: Any) -> None:
    settings.MMC = {**settings.MMC, "CONTRACT": {"pagination": "links"}}
    client = get_client()
    client.list_templates()
    first = paths(sandbox, "GET", "/templates")[0]
    assert "page" not in first
    assert client.dialect.first_page(100) == {}
