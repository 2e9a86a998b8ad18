"""The diagnosis of refused deliveries (``MMC['WEBHOOK_DIAGNOSIS_UNTIL']``):
a delivery that does not verify is still refused and never stored; while the
setting lies ahead, its shape is logged, and which scheme would have
verified it; never its body, a header's value or a secret."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from django_mmc.dialect import FILTER_OPERATORS
from django_mmc.testing import build_event, signed_delivery
from django_mmc.webhooks.diagnosis import signature_shape

from .cases import WebhookCase

LOGGER = "django_mmc.webhooks.diagnosis"


def _in(hours: float) -> str:
    return (timezone.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%MZ")


class TestWebhookDiagnosis(WebhookCase):
    def deliver_in_filter_operators(self) -> tuple[bytes, dict[str, str], Any]:
        """A delivery the platform made in the 'filter-operators' scheme, to
        a site still configured for the default one."""
        event = build_event("dialogue.closed", dialogue="9", closed_by="AGENT", agent_id="17")
        body, headers = signed_delivery(event, self.secret, FILTER_OPERATORS)
        content_type = headers.pop("Content-Type")
        response = self.client.generic("POST", self.url(), body, content_type=content_type,
                                       headers=headers)
        return body, headers, response

    def diagnosis_lines(self, caplog: pytest.LogCaptureFixture) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == LOGGER]

    def test_off_by_default_the_refusal_logs_no_diagnosis(
            self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.INFO):
            *_, response = self.deliver_in_filter_operators()
        self.assert_error(response, 401)
        self.assert_nothing_stored()
        assert self.diagnosis_lines(caplog) == []

    def test_a_past_time_is_off(self, caplog: pytest.LogCaptureFixture) -> None:
        self.set_mmc(WEBHOOK_DIAGNOSIS_UNTIL=_in(-1))
        with caplog.at_level(logging.INFO):
            *_, response = self.deliver_in_filter_operators()
        self.assert_error(response, 401)
        assert self.diagnosis_lines(caplog) == []

    def test_while_on_the_refusal_names_the_scheme_that_verifies(
            self, caplog: pytest.LogCaptureFixture) -> None:
        self.set_mmc(WEBHOOK_DIAGNOSIS_UNTIL=_in(1))
        with caplog.at_level(logging.INFO):
            body, headers, response = self.deliver_in_filter_operators()
        self.assert_error(response, 401)
        self.assert_nothing_stored()
        [line] = self.diagnosis_lines(caplog)
        assert "X-Mmc-Signature-256" in line and "X-Mmc-Timestamp" in line
        assert "X-MMC-Signature: absent" in line
        assert "51 characters, base64, prefix 'sha256='" in line
        assert "tried X-MMC-Signature, HMAC-SHA256, hex, no prefix" in line
        assert ("{'signature_header': 'X-MMC-Signature-256', 'signature_encoding': 'base64', "
                "'signature_prefix': 'sha256=', 'signature_timestamp_header': "
                "'X-MMC-Timestamp'}") in line
        everything = caplog.text
        for secret in self.settings.MMC["AGENTS"]["support"]["WEBHOOK_SECRETS"]:
            assert secret not in everything
        for value in headers.values():
            assert value not in everything
        assert body.decode() not in everything and '"eventType"' not in everything

    def test_a_wrong_secret_verifies_under_no_scheme(
            self, caplog: pytest.LogCaptureFixture) -> None:
        self.set_mmc(WEBHOOK_DIAGNOSIS_UNTIL=_in(1))
        body = b'{"data": {"type": "events"}}'
        with caplog.at_level(logging.INFO):
            response = self.post(body, secret="not-the-agents-secret")
        self.assert_error(response, 401)
        [line] = self.diagnosis_lines(caplog)
        assert "X-MMC-Signature: 64 characters, hex, no prefix" in line
        assert "no scheme django_mmc knows verifies it" in line
        assert "not-the-agents-secret" not in caplog.text


@pytest.mark.parametrize(("value", "shape"), [
    ("ab" * 32, "64 characters, hex, no prefix"),
    ("sha256=" + "ab" * 32, "71 characters, hex, prefix 'sha256='"),
    ("q83vEjRWeJ+rze8SNFZ4mqvN7xI0VniQq83vEjRWeJA=", "44 characters, base64, no prefix"),
    ("v1,not base64!", "14 characters, unknown, prefix 'v1,'"),
])
def test_signature_shapes(value: str, shape: str) -> None:
    assert str(signature_shape(value)) == shape
