"""The webhook endpoint in another dialect: the signature scheme, the
header names, and the event and status words all come from
``MMC['CONTRACT']``, and what is stored is in our words."""

from __future__ import annotations

from typing import Any

import pytest

from django_mmc.dialect import FILTER_OPERATORS
from django_mmc.models import WebhookEvent
from django_mmc.signing import sign
from django_mmc.testing import build_event, signed_delivery

from .cases import WebhookCase


class TestDialectWebhooks(WebhookCase):
    @pytest.fixture(autouse=True)
    def _dialect(self, _webhook_case: None) -> None:
        self.set_mmc(CONTRACT="filter-operators")

    def send(self, event: dict[str, Any], headers: dict[str, str] | None = None,
             body: bytes | None = None) -> Any:
        signed_body, signed = signed_delivery(event, self.secret, FILTER_OPERATORS)
        headers = signed if headers is None else headers
        return self.client.generic(
            "POST", self.url(), signed_body if body is None else body,
            content_type=signed.pop("Content-Type"), headers=headers)

    def test_a_delivery_in_the_dialect_is_stored_in_our_words(self) -> None:
        event = build_event("message.status", message="m-1", dialogue="9", status="SENT",
                            agent_id="17")
        response = self.send(event)
        assert response.status_code == 202, response.content
        stored = WebhookEvent.objects.get(event_id=event["data"]["id"])
        assert stored.event_type == "message.status"

    def test_the_default_signature_is_refused(self) -> None:
        event = build_event("dialogue.closed", dialogue="9", closed_by="AGENT", agent_id="17")
        body, signed = signed_delivery(event, self.secret, FILTER_OPERATORS)
        wrong = {"X-MMC-Signature-256": sign(body, self.secret),
                 "X-MMC-Timestamp": signed["X-MMC-Timestamp"]}
        error = self.assert_error(self.send(event, wrong), 401)
        assert "X-MMC-Signature-256" in error["detail"]
        self.assert_nothing_stored()

    def test_a_delivery_without_its_signed_timestamp_is_refused(self) -> None:
        event = build_event("dialogue.closed", dialogue="9", closed_by="AGENT", agent_id="17")
        _, signed = signed_delivery(event, self.secret, FILTER_OPERATORS)
        del signed["X-MMC-Timestamp"]
        self.assert_error(self.send(event, signed), 401)
        self.assert_nothing_stored()
