"""Schemathesis against the endpoint's OpenAPI description
(``django_mmc/webhooks/openapi.yaml``), in process through Django's WSGI
handler with the project's whole middleware stack (CSRF included).

Cases the schema generates, valid ones and deliberately invalid ones, must
get an answer the schema documents (status code, content type, body and
headers) and never a server error. Unsigned cases are 401 (or 404 for an
agent that does not exist) and store nothing; cases signed with the right
secret reach the parser and are stored only when answered 202."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import event, given
from hypothesis import strategies as st

from django_mmc import contract
from django_mmc.models import WebhookEvent
from django_mmc.signing import sign
from django_mmc.webhooks import views
from tests.helpers import stored_ids

from . import SECRETS, body_limit, fuzz_settings

schemathesis = pytest.importorskip("schemathesis")

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = Path(views.__file__).with_name("openapi.yaml")
SCHEMA = schemathesis.openapi.from_path(SPEC)
OPERATION = SCHEMA["/mmc/webhooks/{agent_key}/"]["POST"]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@pytest.fixture
def wsgi_app(db: Any) -> Iterator[WSGIHandler]:
    """Django's WSGI handler, on the test's transaction: like Django's test
    client, keep requests from closing the connection they share with it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def raw_body(case: Any) -> bytes:
    """The bytes to send for the case's body (signed exactly as sent)."""
    body = case.body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if body is None or type(body).__name__ == "NotSet":
        return b""
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")


def for_agent(agent_key: str, mode: GenerationMode = GenerationMode.POSITIVE) -> Any:
    return OPERATION.as_strategy(generation_mode=mode, path_parameters={"agent_key": agent_key})


@fuzz_settings(200)
@given(case=st.one_of(for_agent("support"), for_agent("sales"),
                      for_agent("support", GenerationMode.NEGATIVE),
                      OPERATION.as_strategy()))
def test_cases_without_the_right_signature_are_refused_and_store_nothing(
    wsgi_app: WSGIHandler, case: Any
) -> None:
    body = raw_body(case)
    response = case.call(app=wsgi_app, data=body)
    case.validate_response(response, checks=CHECKS)
    agent_key = case.path_parameters["agent_key"]
    if agent_key not in SECRETS:
        assert response.status_code == 404
    elif len(body) > body_limit():
        assert response.status_code == 413
    else:
        assert response.status_code == 401
    event(f"unsigned: {response.status_code}")
    assert WebhookEvent.objects.count() == 0


@fuzz_settings(150)
@given(case=for_agent("support") | for_agent("sales"))
def test_signed_cases_from_the_schema_conform(wsgi_app: WSGIHandler, case: Any) -> None:
    agent_key = case.path_parameters["agent_key"]
    body = raw_body(case)
    before = stored_ids()
    response = case.call(app=wsgi_app, data=body,
                         headers={contract.SIGNATURE_HEADER: sign(body, SECRETS[agent_key])})
    case.validate_response(response, checks=CHECKS)
    event(f"signed: {response.status_code}")
    assert response.status_code in (200, 202, 400)
    if response.status_code == 202:
        (new,) = stored_ids() - before
        assert WebhookEvent.objects.get(event_id=new).body.encode("utf-8") == body
    else:
        assert stored_ids() == before


@fuzz_settings(100)
@given(case=for_agent("support", GenerationMode.NEGATIVE))
def test_signed_invalid_cases_from_the_schema_are_never_a_server_error(
    wsgi_app: WSGIHandler, case: Any
) -> None:
    body = raw_body(case)
    before = stored_ids()
    response = case.call(app=wsgi_app, data=body,
                         headers={contract.SIGNATURE_HEADER: sign(body, SECRETS["support"])})
    case.validate_response(response, checks=CHECKS)
    event(f"signed, invalid: {response.status_code}")
    if response.status_code != 202:
        assert stored_ids() == before


def test_the_description_documents_every_event_type_of_the_contract() -> None:
    text = SPEC.read_text(encoding="utf-8")
    for event_type in contract.EVENT_TYPES:
        assert f"enum: [{event_type}]" in text
    assert set(OPERATION.definition.raw["responses"]) == {
        "200", "202", "400", "401", "404", "413", "415"}
