"""Hypothesis strategies and helpers shared by the fuzz tests: bodies of
every shape a sender (or an attacker) can POST, event documents that are
almost right, and the one rule every answer of the webhook view obeys."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from django_mmc import contract
from django_mmc.conf import mmc_settings
from django_mmc.signing import sign
from tests.helpers import SUPPORT_AGENT_ID, SUPPORT_GROUP_ID

#: The agents and secrets tests/settings.py configures.
SECRETS = {"support": "agent-17-secret", "sales": "agent-18-secret"}

#: Function-scoped fixtures (the database) are shared by the examples of one
#: test on purpose: every test checks what each example adds.
FUZZ = {"deadline": None, "database": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture,
                                  HealthCheck.too_slow, HealthCheck.data_too_large]}


def fuzz_settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, **FUZZ)


def url(agent_key: str) -> str:
    return reverse("django_mmc:webhook", kwargs={"agent_key": agent_key})


def post(client: Client, body: bytes, *, signature: str | None,
         content_type: str = contract.JSONAPI_MEDIA_TYPE, agent_key: str = "support",
         ) -> HttpResponse:
    headers = {} if signature is None else {contract.SIGNATURE_HEADER: signature}
    return client.generic("POST", url(agent_key), body, content_type=content_type,
                          headers=headers)


def error_document(response: HttpResponse) -> dict[str, Any]:
    """The answer is a JSON:API error document for its own status."""
    assert response["Content-Type"].startswith(contract.JSONAPI_MEDIA_TYPE), response
    document = json.loads(response.content)
    errors = document["errors"]
    assert isinstance(errors, list) and errors, document
    assert errors[0]["status"] == str(response.status_code), document
    assert isinstance(errors[0]["detail"], str) and errors[0]["detail"], document
    return errors[0]


def check_answer(response: HttpResponse) -> None:
    """Never a server error; a 4xx is a JSON:API error document; a 2xx is
    202 (stored) or 200 (a repeat)."""
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        error_document(response)
    else:
        assert response.status_code in (200, 202), response.status_code
        assert response["Content-Type"].startswith(contract.JSONAPI_MEDIA_TYPE)


def body_limit() -> int:
    return int(mmc_settings.WEBHOOK_MAX_BODY_SIZE)


# -- bodies ----------------------------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers() | st.text()
                | st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


@st.composite
def deep_nesting(draw: Any) -> bytes:
    """Arrays or objects nested far deeper than the json module recurses."""
    depth = draw(st.integers(min_value=500, max_value=60_000))
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def huge_strings(draw: Any) -> bytes:
    """A JSON string around the body size limit (below, at, above it)."""
    size = body_limit() + draw(st.integers(min_value=-2_000, max_value=2_000))
    char = draw(st.sampled_from(["a", "\u00e9", "\u2713", "\\u0000"]))
    text = char * max(1, size // len(char.encode()))
    return json.dumps({"data": {"type": "events", "id": "evt_huge",
                                "attributes": {"eventType": "x", "text": text}}},
                      ensure_ascii=False).encode("utf-8")


def encoded_json(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")


any_body = st.one_of(
    st.binary(max_size=600),  # anything, invalid UTF-8 included
    st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.builds(encoded_json, json_values, st.booleans()),
    deep_nesting(),
    huge_strings(),
    st.just(b""),
)

content_types = st.one_of(
    st.sampled_from([
        contract.JSONAPI_MEDIA_TYPE, contract.JSONAPI_MEDIA_TYPE,
        f"{contract.JSONAPI_MEDIA_TYPE}; charset=utf-8", "application/json", "text/plain",
        "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/octet-stream", "", "*/*", "application/*", "*/vnd.api+json",
        "application/vnd.api+json; ext=bulk",
    ]),
    st.from_regex(r"\A[a-z]{1,10}/[a-z0-9.+-]{1,20}\Z"),
)

wrong_signatures = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.from_regex(r"\A[0-9a-f]{0,63}\Z") | st.from_regex(r"\A[0-9a-f]{65,70}\Z"),
    st.from_regex(r"\A[0-9a-f]{64}\Z"),
    st.sampled_from(["sha256=", " ", "\u00e9" * 64, "0" * 64]),
)

# -- almost-right event documents ---------------------------------------------

STATUS_VALUES = ["ACCEPTED", "SENT", "DELIVERED", "READ", "FAILED", "EXPIRED", "QUEUED",
                 "SENDING", "REFUSED", "RECEIVED", "CANCELLED", "ERROR", "read", ""]
odd_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "\u202e", "x" * 70, "x" * 200,
                     "+353861234567", SUPPORT_GROUP_ID, "n-fuzz-1", "d-fuzz-1", "m-fuzz-1"]),
)
odd_scalar = st.one_of(odd_text, st.integers(), st.none(), st.booleans(),
                       st.floats(allow_nan=False, allow_infinity=False))
odd_value = st.one_of(odd_scalar, st.lists(odd_scalar, max_size=3),
                      st.dictionaries(st.text(max_size=5), odd_scalar, max_size=3))

#: Platform ids the fuzzed events may point at (fixtures create rows for them).
KNOWN_IDS = ["n-fuzz-1", "n-fuzz-2", "m-fuzz-1", "d-fuzz-1", "d-fuzz-2", SUPPORT_GROUP_ID,
             SUPPORT_AGENT_ID, "+353861234567", "+353861234999"]
ids = st.one_of(st.sampled_from(KNOWN_IDS), odd_text, st.integers(), st.none(),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
linkage = st.one_of(
    st.builds(lambda t, i: {"data": {"type": t, "id": i}},
              st.sampled_from(["notifications", "messages", "dialogues", "customers",
                               "channel-groups", "dialogue-agents", "x"]), ids),
    st.just({"data": None}), st.just({"data": []}), st.just({}), odd_value,
)
RELATIONSHIP_NAMES = ["notification", "message", "dialogue", "recipient", "channelGroup",
                      "dialogueAgent"]
relationships = st.one_of(
    st.dictionaries(st.sampled_from(RELATIONSHIP_NAMES), linkage, max_size=6),
    odd_value,
)
timestamps = st.one_of(
    st.sampled_from(["2026-11-26T19:00:04.120Z", "2026-11-26T19:00:04+01:00",
                     "2026-13-45T25:61:00Z", "2026-02-30T00:00:00Z", "yesterday", "",
                     "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z"]),
    odd_scalar,
)
files = st.one_of(
    st.lists(st.one_of(
        st.fixed_dictionaries({"id": ids}, optional={
            "name": odd_value, "contentType": odd_value, "size": odd_value,
            "url": st.sampled_from(["https://files.example/1", "javascript:alert(1)"])
            | odd_value}),
        odd_value), max_size=3),
    odd_value,
)
attributes = st.one_of(
    st.fixed_dictionaries(
        {"eventType": st.one_of(st.sampled_from(contract.EVENT_TYPES), odd_scalar)},
        optional={
            "occurredAt": timestamps,
            "status": st.one_of(st.sampled_from(STATUS_VALUES), odd_scalar),
            "failure": st.one_of(
                st.fixed_dictionaries({"code": odd_scalar}, optional={"detail": odd_value}),
                odd_value),
            "text": st.one_of(st.sampled_from(["STOP", "start", "Hello", "x" * 5000]),
                              odd_value),
            "channelType": st.one_of(st.sampled_from(["WHATSAPP", "SMS", "FAX"]), odd_scalar),
            "files": files,
            "initiatedBy": st.one_of(st.sampled_from(["AGENT", "RECIPIENT"]), odd_scalar),
            "closedBy": st.one_of(st.sampled_from(["AGENT", "RECIPIENT", "TIMEOUT"]),
                                  odd_scalar),
            "extra": odd_value,
        }),
    odd_value,
)
ATTRIBUTE_VALUES = {
    "status": st.one_of(st.sampled_from(STATUS_VALUES), st.sampled_from(STATUS_VALUES),
                        odd_scalar),
    "failure": st.one_of(
        st.none(),
        st.fixed_dictionaries({"code": st.sampled_from(["BLOCKED", "NOT_ON_CHANNEL"])
                               | odd_scalar}, optional={"detail": odd_value}),
        odd_value),
    "text": st.one_of(st.sampled_from(["STOP", "start", "Hello", "x" * 5000]),
                      st.text(max_size=40), odd_value),
    "channelType": st.one_of(st.sampled_from(["WHATSAPP", "SMS", "FAX"]), odd_scalar),
    "files": files,
    "initiatedBy": st.one_of(st.sampled_from(["AGENT", "RECIPIENT"]), odd_scalar),
    "closedBy": st.one_of(st.sampled_from(["AGENT", "RECIPIENT", "TIMEOUT"]), odd_scalar),
}


@st.composite
def plausible_events(draw: Any) -> dict[str, Any]:
    """Documents that pass the view's checks, with odd values where the
    worker has to look: the paths behind the signature."""
    attributes = {
        "eventType": draw(st.sampled_from(contract.EVENT_TYPES + ("x.unknown",))),
        "occurredAt": draw(st.sampled_from(["2026-11-26T19:00:04.120Z",
                                            "2030-01-01T00:00:00+02:00"])
                           | st.none() | st.integers()),
    }
    for name, values in ATTRIBUTE_VALUES.items():
        if draw(st.integers(min_value=0, max_value=3)):
            attributes[name] = draw(values)
    related = {}
    for name in RELATIONSHIP_NAMES:
        roll = draw(st.integers(min_value=0, max_value=9))
        if roll < 7:
            related[name] = {"data": {"type": "x", "id": draw(
                st.sampled_from(KNOWN_IDS) | st.from_regex(r"\A[a-z0-9+-]{1,70}\Z"))}}
        elif roll < 9:
            related[name] = draw(linkage)
    # The id follows from the content: a repeat of a document is a repeated
    # delivery (200), any other document a new event.
    content = json.dumps([attributes, related], sort_keys=True, default=str)
    event_id = "evt_" + hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return {"data": {"type": "events", "id": event_id,
                     "attributes": attributes, "relationships": related}}


#: Documents that are wrong in every way a sender can be wrong.
wild_event_documents = st.one_of(
    st.fixed_dictionaries({"data": st.fixed_dictionaries(
        {"type": st.one_of(st.just("events"), st.just("events"), odd_scalar),
         "id": st.one_of(st.from_regex(r"\Aevt_[0-9a-f]{1,16}\Z"), ids),
         "attributes": attributes},
        optional={"relationships": relationships, "meta": odd_value})},
        optional={"included": odd_value, "jsonapi": odd_value}),
    st.fixed_dictionaries({"data": odd_value}),
    json_values,
)


def serialise(document: Any, pretty: bool) -> bytes:
    """As a sender might write it; lone surrogates become escapes, as the
    json module writes them."""
    if pretty:
        return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def signed(body: bytes, agent_key: str = "support") -> str:
    return sign(body, SECRETS[agent_key])
