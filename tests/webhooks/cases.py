"""The abstract webhook test case every webhook test class subclasses (in
the spirit of anymail's ``tests/webhook_cases.py``), and the JSON payload
fixtures of ``tests/fixtures/events/`` (one per event type of the contract,
as dj-stripe keeps them).

The client enforces CSRF checks, as a browser-less sender would meet them,
and posts raw bytes exactly as the platform does.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from django_mmc import contract
from django_mmc.models import WebhookEvent
from django_mmc.signing import sign
from django_mmc.testing import signed_delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"

#: The secrets tests/settings.py configures, by agent key.
SECRETS = {"support": "agent-17-secret", "sales": "agent-18-secret"}

_UNSIGNED = object()


@cache
def _fixture_text(event_type: str) -> str:
    return (FIXTURES / f"{event_type}.json").read_text(encoding="utf-8")


def load_event(event_type: str, event_id: str | None = None) -> dict[str, Any]:
    """A fresh copy of the fixture document for ``event_type``, optionally
    with another event id."""
    document = copy.deepcopy(json.loads(_fixture_text(event_type)))
    if event_id is not None:
        document["data"]["id"] = event_id
    return document


def encode(document: Any) -> bytes:
    """``document`` as the platform serialises it (compact UTF-8 JSON)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class WebhookCase:
    """Abstract: one agent's webhook endpoint, a CSRF-enforcing client and
    helpers to deliver signed (or badly signed) events to it."""

    agent_key = "support"

    @pytest.fixture(autouse=True)
    def _webhook_case(self, db: Any, settings: Any) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.settings = settings

    @property
    def secret(self) -> str:
        return SECRETS[self.agent_key]

    def url(self, agent_key: str | None = None) -> str:
        return reverse("django_mmc:webhook", kwargs={"agent_key": agent_key or self.agent_key})

    def set_secrets(self, secrets: Any, agent_key: str | None = None) -> None:
        """Replace one agent's ``WEBHOOK_SECRETS`` (the setting is reloaded)."""
        mmc = copy.deepcopy(self.settings.MMC)
        mmc["AGENTS"][agent_key or self.agent_key]["WEBHOOK_SECRETS"] = secrets
        self.settings.MMC = mmc

    def set_mmc(self, **changes: Any) -> None:
        self.settings.MMC = {**copy.deepcopy(self.settings.MMC), **changes}

    def post(
        self,
        body: bytes,
        *,
        signature: Any = _UNSIGNED,
        secret: str | None = None,
        content_type: str = contract.JSONAPI_MEDIA_TYPE,
        agent_key: str | None = None,
        **extra: Any,
    ) -> HttpResponse:
        """POST raw ``body``, signed with ``secret`` (default: the agent's)
        unless ``signature`` is given (``None``: no header at all)."""
        if signature is _UNSIGNED:
            signature = sign(body, self.secret if secret is None else secret)
        if signature is not None:
            extra[contract.SIGNATURE_META_KEY] = signature
        return self.client.generic("POST", self.url(agent_key), body,
                                   content_type=content_type, **extra)

    def deliver(self, event: dict[str, Any], *, secret: str | None = None,
                agent_key: str | None = None) -> HttpResponse:
        """One delivery of ``event`` to an agent's endpoint, exactly as the
        platform makes it (signed with that agent's secret by default)."""
        if secret is None:
            secret = SECRETS[agent_key or self.agent_key]
        body, headers = signed_delivery(event, secret)
        return self.client.generic(
            "POST", self.url(agent_key), body, content_type=headers["Content-Type"],
            headers={contract.SIGNATURE_HEADER: headers[contract.SIGNATURE_HEADER]},
        )

    def store(self, event: dict[str, Any], *, agent_key: str | None = None) -> WebhookEvent:
        """Deliver ``event`` and return the row the view stored for it."""
        response = self.deliver(event, agent_key=agent_key)
        assert response.status_code == 202, response.content
        return WebhookEvent.objects.get(event_id=event["data"]["id"])

    @staticmethod
    def assert_error(response: HttpResponse, status: int) -> dict[str, Any]:
        """The answer is a JSON:API error document with this status."""
        assert response.status_code == status, response.content
        assert response["Content-Type"].startswith(contract.JSONAPI_MEDIA_TYPE)
        errors = json.loads(response.content)["errors"]
        assert errors and errors[0]["status"] == str(status)
        assert errors[0]["detail"]
        return errors[0]

    @staticmethod
    def assert_nothing_stored() -> None:
        assert list(WebhookEvent.objects.values_list("event_id", flat=True)) == []
