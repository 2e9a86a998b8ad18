"""The webhook endpoint, in the order it works: the body size (413), the
signature over the raw body with secret rotation (401), the JSON:API document
(415, 400), then the store and the hand-over after commit (202, and 200 for a
repeat), as docs/webhooks.rst describes them; also the host settings it must
survive (ATOMIC_REQUESTS, login-required middleware, CSRF) and the event
fixtures. How the row is written is in test_storage.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.handlers.base import BaseHandler
from django.db import connection
from django.urls import resolve

from django_mmc import contract, dispatch
from django_mmc.models import WebhookEvent
from django_mmc.processing import process_event
from django_mmc.signing import sign, verify
from django_mmc.testing import build_event
from tests.markers import needs_postgresql

from .cases import SECRETS, WebhookCase, encode, load_event

EVENT_TYPES = contract.EVENT_TYPES


class TestAccepting(WebhookCase):
    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_a_signed_event_is_stored_byte_for_byte_and_accepted(self, event_type: str) -> None:
        # Pretty-printed, non-ASCII, key order of the fixture: kept exactly.
        document = load_event(event_type)
        document["data"]["attributes"]["note"] = "caf\u00e9 \u2713"
        body = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")

        response = self.post(body)

        assert response.status_code == 202, response.content
        stored = WebhookEvent.objects.get()
        assert stored.body.encode("utf-8") == body
        assert stored.event_id == document["data"]["id"]
        assert stored.event_type == event_type
        assert stored.agent_key == "support"
        assert stored.signature == sign(body, self.secret)
        assert stored.state == WebhookEvent.State.PENDING
        assert stored.occurred_at is not None

    @pytest.mark.parametrize(("event_type", "subject"), [
        ("notification.status", "79746"), ("message.status", "55012"),
        ("message.received", "55101"), ("dialogue.opened", "9002"),
        ("dialogue.closed", "9002"),
    ])
    def test_the_subject_is_kept_for_waiting_lookups(self, event_type: str, subject: str) -> None:
        self.store(load_event(event_type))
        assert WebhookEvent.objects.get().subject_id == subject

    def test_processing_is_enqueued_once_on_commit(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = self.deliver(load_event("notification.status"))
            # Stored, but the worker is not told before the commit.
            assert WebhookEvent.objects.count() == 1

        assert response.status_code == 202
        assert len(callbacks) == 1
        stored = WebhookEvent.objects.get()
        assert callbacks[0].func is dispatch.hand_over_event
        assert callbacks[0].args == (stored.pk,)

    def test_a_duplicate_delivery_is_200_and_changes_nothing(
        self, django_capture_on_commit_callbacks: Any
    ) -> None:
        event = load_event("notification.status")
        assert self.deliver(event).status_code == 202
        first = WebhookEvent.objects.get()

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            again = self.deliver(event)
            # A retry that differs (the platform re-serialised it) is still the same event.
            event["data"]["attributes"]["status"] = "READ"
            changed = self.deliver(event)

        assert (again.status_code, changed.status_code) == (200, 200)
        assert callbacks == []
        assert WebhookEvent.objects.count() == 1
        assert WebhookEvent.objects.get().body == first.body

    def test_the_same_event_id_on_another_agent_is_a_duplicate(self) -> None:
        event = load_event("notification.status")
        self.store(event)
        response = self.deliver(event, secret=SECRETS["sales"])
        assert response.status_code == 401  # the sales secret is not support's
        response = self.post(encode(event), secret=SECRETS["sales"], agent_key="sales")
        assert response.status_code == 200
        assert WebhookEvent.objects.get().agent_key == "support"

    def test_an_unknown_event_type_is_accepted_kept_and_ignored(self) -> None:
        event = build_event("dialogue.transferred", event_id="evt_new_kind", toAgent="18")
        stored = self.store(event)

        assert stored.event_type == "dialogue.transferred"
        assert json.loads(stored.body) == event
        assert process_event(stored.pk) == WebhookEvent.State.IGNORED
        stored.refresh_from_db()
        assert stored.state == WebhookEvent.State.IGNORED
        assert stored.error == ""

    def test_extra_attributes_and_relationships_are_accepted(self) -> None:
        event = load_event("notification.status")
        event["data"]["attributes"]["newThing"] = {"nested": [1, 2]}
        event["data"]["relationships"]["campaign"] = {"data": {"type": "campaigns", "id": "5"}}
        event["data"]["meta"] = {"attempt": 3}
        event["jsonapi"] = {"version": "1.1"}
        assert self.deliver(event).status_code == 202

    def test_media_type_parameters_and_any_accept_header_are_fine(self) -> None:
        body = encode(load_event("notification.status"))
        response = self.post(body, content_type=f"{contract.JSONAPI_MEDIA_TYPE}; charset=utf-8",
                             HTTP_ACCEPT="application/json")
        assert response.status_code == 202, response.content
        other = encode(load_event("notification.status", event_id="evt_other"))
        assert self.post(other, HTTP_ACCEPT="text/html").status_code == 202

    def test_uppercase_and_padded_signatures_are_accepted(self) -> None:
        first = encode(load_event("notification.status", event_id="evt_upper"))
        second = encode(load_event("notification.status", event_id="evt_padded"))
        assert self.post(first, signature=sign(first, self.secret).upper()).status_code == 202
        assert self.post(second, signature=f" {sign(second, self.secret)} ").status_code == 202


class TestSignature(WebhookCase):
    """Scenario 20: 401 and nothing written for any bad signature."""

    def assert_rejected(self, response: Any, callbacks: Any = ()) -> None:
        error = self.assert_error(response, 401)
        assert error["code"] == "INVALID_SIGNATURE"
        assert contract.SIGNATURE_HEADER in response["WWW-Authenticate"]
        assert list(callbacks) == []
        self.assert_nothing_stored()

    @pytest.mark.parametrize("signature", [
        None, "", "   ", "not-hex", "0" * 64, "0" * 63, "ab" * 40, "sha256=",
        "sha1=0123", "\u00e9" * 64, "\u0661" * 64, "\x00", "a,b",
    ], ids=repr)
    def test_missing_or_malformed(self, signature: Any,
                                  django_capture_on_commit_callbacks: Any) -> None:
        body = encode(load_event("notification.status"))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = self.post(body, signature=signature)
        self.assert_rejected(response, callbacks)

    def test_signed_with_a_wrong_secret(self) -> None:
        body = encode(load_event("notification.status"))
        self.assert_rejected(self.post(body, secret="agent-17-secreT"))
        self.assert_rejected(self.post(body, secret=SECRETS["sales"]))
        self.assert_rejected(self.post(body, secret=""))

    def test_signed_with_the_prefixed_form_of_other_senders(self) -> None:
        body = encode(load_event("notification.status"))
        self.assert_rejected(self.post(body, signature=f"sha256={sign(body, self.secret)}"))

    def test_every_single_changed_byte_is_rejected(self) -> None:
        body = encode(load_event("notification.status"))
        signature = sign(body, self.secret)
        answers = set()
        for position in range(len(body)):
            tampered = bytearray(body)
            tampered[position] ^= 0x01
            answers.add(self.post(bytes(tampered), signature=signature).status_code)
        assert answers == {401}
        self.assert_nothing_stored()

    def test_appended_or_truncated_body_is_rejected(self) -> None:
        body = encode(load_event("notification.status"))
        signature = sign(body, self.secret)
        self.assert_rejected(self.post(body + b"\n", signature=signature))
        self.assert_rejected(self.post(body[:-1], signature=signature))
        self.assert_rejected(self.post(b"", signature=signature))

    def test_signature_for_another_body_is_rejected(self) -> None:
        body = encode(load_event("notification.status"))
        replayed = encode(load_event("notification.status", event_id="evt_replayed"))
        self.assert_rejected(self.post(replayed, signature=sign(body, self.secret)))


class TestSecretRotation(WebhookCase):
    """Scenario 21 and 35."""

    def test_the_old_secret_works_until_it_is_removed(self) -> None:
        self.set_secrets(["agent-17-new", "agent-17-secret"])
        new = encode(load_event("notification.status", event_id="evt_new"))
        old = encode(load_event("notification.status", event_id="evt_old"))
        assert self.post(new, secret="agent-17-new").status_code == 202
        assert self.post(old, secret="agent-17-secret").status_code == 202

        self.set_secrets(["agent-17-new"])
        later = encode(load_event("notification.status", event_id="evt_later"))
        self.assert_error(self.post(later, secret="agent-17-secret"), 401)
        assert self.post(later, secret="agent-17-new").status_code == 202
        assert set(WebhookEvent.objects.values_list("event_id", flat=True)) == {
            "evt_new", "evt_old", "evt_later"}

    def test_a_single_secret_given_as_a_string_works(self) -> None:
        self.set_secrets("agent-17-only")
        body = encode(load_event("notification.status"))
        assert self.post(body, secret="agent-17-only").status_code == 202

    @pytest.mark.parametrize("secrets", [[], [""], None, "", [None]], ids=repr)
    def test_an_agent_without_a_secret_rejects_every_delivery(self, secrets: Any) -> None:
        self.set_secrets(secrets)
        body = encode(load_event("notification.status"))
        for signature in (sign(body, ""), sign(body, "agent-17-secret"), None, "",
                          sign(b"", "")):
            error = self.assert_error(self.post(body, signature=signature), 401)
            assert error["code"] == "INVALID_SIGNATURE"
        self.assert_nothing_stored()

    def test_the_other_agent_is_unaffected_by_one_agent_without_secret(self) -> None:
        self.set_secrets([], agent_key="support")
        body = encode(load_event("notification.status"))
        assert self.post(body, secret=SECRETS["sales"], agent_key="sales").status_code == 202


class TestEndpoint(WebhookCase):
    @pytest.mark.parametrize("agent_key", ["nobody", "17", "Support", "support2"])
    def test_an_unknown_agent_key_is_404(self, agent_key: str) -> None:
        body = encode(load_event("notification.status"))
        response = self.post(body, agent_key=agent_key)
        error = self.assert_error(response, 404)
        assert error["code"] == "not_found"
        self.assert_nothing_stored()

    def test_an_agent_removed_from_the_settings_is_404(self) -> None:
        mmc = dict(self.settings.MMC)
        mmc["AGENTS"] = {"sales": mmc["AGENTS"]["sales"]}
        self.settings.MMC = mmc
        self.assert_error(self.post(encode(load_event("notification.status"))), 404)

    @pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
    def test_only_post_is_allowed(self, method: str) -> None:
        body = encode(load_event("notification.status"))
        response = self.client.generic(method, self.url(), body,
                                       content_type=contract.JSONAPI_MEDIA_TYPE,
                                       HTTP_X_MMC_SIGNATURE=sign(body, self.secret))
        self.assert_error(response, 405)
        self.assert_nothing_stored()


class TestBodySize(WebhookCase):
    """Scenario 25: 413 before the HMAC is even computed."""

    LIMIT = 1024

    @pytest.fixture(autouse=True)
    def _small_limit(self, _webhook_case: None) -> None:
        self.set_mmc(WEBHOOK_MAX_BODY_SIZE=self.LIMIT)

    def padded(self, size: int, event_id: str = "evt_padded") -> bytes:
        event = load_event("notification.status", event_id=event_id)
        event["data"]["attributes"]["padding"] = ""
        room = size - len(encode(event))
        event["data"]["attributes"]["padding"] = "x" * room
        body = encode(event)
        assert len(body) == size
        return body

    def test_too_big_with_a_wrong_signature_is_413_not_401(self) -> None:
        body = self.padded(self.LIMIT + 1)
        error = self.assert_error(self.post(body, signature="0" * 64), 413)
        assert error["code"] == contract.ERROR_PAYLOAD_TOO_LARGE
        self.assert_error(self.post(body, signature=None), 413)
        self.assert_nothing_stored()

    def test_too_big_with_a_valid_signature_is_413(self) -> None:
        self.assert_error(self.post(self.padded(self.LIMIT * 10)), 413)
        self.assert_nothing_stored()

    def test_too_big_for_an_unknown_agent_is_still_404(self) -> None:
        self.assert_error(self.post(self.padded(self.LIMIT + 1), agent_key="nobody"), 404)

    def test_exactly_the_limit_is_accepted(self) -> None:
        body = self.padded(self.LIMIT)
        assert self.post(body).status_code == 202
        assert WebhookEvent.objects.get().body.encode() == body

    def test_a_declared_length_over_the_limit_is_413(self) -> None:
        body = self.padded(400)
        response = self.post(body, CONTENT_LENGTH=str(self.LIMIT + 1))
        self.assert_error(response, 413)

    def test_the_default_limit_is_256_kib(self) -> None:
        self.settings.MMC = {k: v for k, v in self.settings.MMC.items()
                             if k != "WEBHOOK_MAX_BODY_SIZE"}
        self.assert_error(self.post(self.padded(256 * 1024 + 1), signature="0" * 64), 413)
        assert self.post(self.padded(256 * 1024)).status_code == 202


def _event_document(**data_changes: Any) -> dict[str, Any]:
    document = load_event("notification.status")
    for key, value in data_changes.items():
        if value is _DROP:
            del document["data"][key]
        else:
            document["data"][key] = value
    return document


def _with_attributes(**changes: Any) -> dict[str, Any]:
    document = load_event("notification.status")
    for key, value in changes.items():
        if value is _DROP:
            del document["data"]["attributes"][key]
        else:
            document["data"]["attributes"][key] = value
    return document


_DROP = object()

#: Correctly signed bodies that are not an event document: 4xx, never 5xx.
MALFORMED = {
    "empty body": b"",
    "invalid JSON": b'{"data": {"type": "events",',
    "not JSON": b"eventType=notification.status",
    "invalid UTF-8": b'{"data": {"type": "events", "id": "evt_\xff\xfe"}}',
    "latin-1 text": '{"data": {"type": "events", "id": "caf\u00e9"}}'.encode("latin-1"),
    "UTF-8 BOM": b"\xef\xbb\xbf" + encode(load_event("notification.status")),
    "UTF-16": json.dumps(load_event("notification.status")).encode("utf-16"),
    "NaN": b'{"data": {"type": "events", "id": "evt_1", "attributes": '
           b'{"eventType": "x", "n": NaN}}}',
    "JSON array": encode([load_event("notification.status")]),
    "JSON string": b'"evt_7f3a2c"',
    "JSON number": b"17",
    "JSON null": b"null",
    "empty object": b"{}",
    "missing data": encode({"meta": {"eventType": "notification.status"}}),
    "data null": encode({"data": None}),
    "data a list": encode({"data": [load_event("notification.status")["data"]]}),
    "data a string": encode({"data": "evt_7f3a2c"}),
    "errors document": encode({"errors": [{"status": "500"}]}),
    "wrong type": encode(_event_document(type="notifications")),
    "missing type": encode(_event_document(type=_DROP)),
    "missing id": encode(_event_document(id=_DROP)),
    "null id": encode(_event_document(id=None)),
    "empty id": encode(_event_document(id="")),
    "numeric id": encode(_event_document(id=17)),
    "object id": encode(_event_document(id={"id": "evt_1"})),
    "huge id": encode(_event_document(id="evt_" + "9" * 200)),
    "huge integer id": b'{"data": {"type": "events", "id": ' + b"9" * 5000
                       + b', "attributes": {"eventType": "x"}}}',
    "id with NUL": encode(_event_document(id="evt_\u0000")),
    "id with a lone surrogate": b'{"data": {"type": "events", "id": "evt_\\ud800", '
                                b'"attributes": {"eventType": "x"}}}',
    "id with a newline": encode(_event_document(id="evt_1\nevt_2")),
    "missing eventType": encode(_with_attributes(eventType=_DROP)),
    "empty eventType": encode(_with_attributes(eventType="")),
    "eventType not a string": encode(_with_attributes(eventType=["notification.status"])),
    "eventType with NUL": encode(_with_attributes(eventType="notification.status\u0000")),
    "attributes a list": encode(_event_document(attributes=[1, 2])),
    "attributes a string": encode(_event_document(attributes="eventType")),
    "invalid occurredAt": encode(_with_attributes(occurredAt="2026-13-45T25:61:00Z")),
    "relationship id with NUL": encode(_event_document(relationships={
        "notification": {"data": {"type": "notifications", "id": "797\u000046"}}})),
    "nested too deeply": b'{"data": {"type": "events", "id": "evt_1", "attributes": '
                         b'{"eventType": "x", "v": ' + b"[" * 100_000 + b"]" * 100_000
                         + b"}}}",
}


class TestDocument(WebhookCase):
    """Scenario 24: a valid signature over a body that is not an event."""

    @pytest.fixture(autouse=True)
    def _big_enough(self, _webhook_case: None) -> None:
        self.set_mmc(WEBHOOK_MAX_BODY_SIZE=512 * 1024)

    @pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
    def test_a_malformed_document_is_a_4xx_error_and_not_stored(
        self, body: bytes, django_capture_on_commit_callbacks: Any
    ) -> None:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = self.post(body)
        assert 400 <= response.status_code < 500, response.content
        self.assert_error(response, response.status_code)
        assert callbacks == []
        self.assert_nothing_stored()

    @pytest.mark.parametrize("content_type", [
        "application/json", "text/plain", "application/x-www-form-urlencoded",
        "application/vnd.api+jsonx", "",
    ])
    def test_another_content_type_is_415(self, content_type: str) -> None:
        body = encode(load_event("notification.status"))
        response = self.post(body, content_type=content_type)
        self.assert_error(response, 415)
        self.assert_nothing_stored()

    def test_the_signature_is_checked_before_the_content_type(self) -> None:
        body = encode(load_event("notification.status"))
        self.assert_error(self.post(body, content_type="text/plain", signature="0" * 64), 401)

    def test_a_document_with_extra_members_but_unusable_relationships_is_kept(self) -> None:
        # Relationships are the processing's business: the event is stored
        # and fails there with its error, so nothing the platform sent is lost.
        event = load_event("notification.status")
        event["data"]["relationships"] = [{"notification": "79746"}]
        stored = self.store(event)
        assert process_event(stored.pk) == WebhookEvent.State.FAILED
        stored.refresh_from_db()
        assert "notification" in stored.error


class TestHostSettings(WebhookCase):
    """Scenario 28: the endpoint works whatever the host project turns on."""

    def test_it_is_exempt_from_atomic_requests(
        self, transactional_db: Any, private_queue: Any, monkeypatch: Any
    ) -> None:
        # No test transaction around the request: as in production.
        monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
        view = resolve(self.url()).func
        login = resolve("/admin/login/").func
        handler = BaseHandler()
        # Django wraps every other view in a transaction; not this one.
        assert handler.make_view_atomic(login) is not login
        assert handler.make_view_atomic(view) is view

        assert self.deliver(load_event("notification.status")).status_code == 202
        self.assert_error(self.post(b"[]"), 400)
        assert self.deliver(load_event("notification.status")).status_code == 200
        assert WebhookEvent.objects.count() == 1
        # Committed, then handed to the broker exactly once.
        assert len(private_queue.tasks()) == 1

    def test_a_burst_of_events_is_one_batch_task(
        self, transactional_db: Any, private_queue: Any
    ) -> None:
        from django_mmc.processing import process_pending

        for index in range(20):
            event = load_event("notification.status")
            event["data"]["id"] = f"evt_burst_{index}"
            assert self.deliver(event).status_code == 202
        tasks = private_queue.tasks()
        assert len(tasks) == 1 and b"process_pending_events" in tasks[0]
        # The batch task takes all twenty, oldest first; the next event
        # starts another batch.
        assert process_pending(linger=0) == {WebhookEvent.State.WAITING: 20}
        assert not WebhookEvent.objects.filter(state=WebhookEvent.State.PENDING).exists()
        # A real batch task lingers longer than this process trusts its memory
        # of a pending batch; this one did not linger, so the process forgets.
        dispatch.forget_pending_batch()
        event = load_event("notification.status")
        event["data"]["id"] = "evt_after"
        self.deliver(event)
        names = [b"process_pending_events" in t for t in private_queue.tasks()]
        assert names.count(True) == 2  # plus a retrying task per WAITING event

    @needs_postgresql
    def test_a_batch_task_lingers_for_late_events(
        self, transactional_db: Any, private_queue: Any
    ) -> None:
        """An event that arrives while the batch task lingers is processed by
        it, though its process did not ask for a new batch (it remembered one
        was pending)."""
        import threading

        from django_mmc.processing import process_pending

        first = load_event("notification.status")
        first["data"]["id"] = "evt_first"
        self.deliver(first)
        results: dict[str, Any] = {}

        def batch() -> None:
            results["counts"] = process_pending(linger=1.0)
            connection.close()

        worker = threading.Thread(target=batch)
        worker.start()
        late = load_event("notification.status")
        late["data"]["id"] = "evt_late"
        self.deliver(late)  # within EVENTS_MEMO: no new task
        worker.join(10)
        assert results["counts"] == {WebhookEvent.State.WAITING: 2}
        assert len(private_queue.tasks()) == 1 + 2  # the batch, and a retry per WAITING

    def test_without_a_cache_each_event_has_its_own_task(
        self, transactional_db: Any, private_queue: Any
    ) -> None:
        self.settings.CACHES = {**self.settings.CACHES, "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0"}}
        self.settings.MMC = {**self.settings.MMC, "CACHE_ALIAS": "down"}
        for index in range(3):
            event = load_event("notification.status")
            event["data"]["id"] = f"evt_nocache_{index}"
            assert self.deliver(event).status_code == 202
        tasks = private_queue.tasks()
        assert len(tasks) == 3 and all(b"django_mmc.process_event" in t for t in tasks)

    def test_it_works_with_login_required_middleware(self) -> None:
        from django.contrib.auth import middleware

        if not hasattr(middleware, "LoginRequiredMiddleware"):
            pytest.skip("LoginRequiredMiddleware needs Django 5.1+")
        self.settings.ROOT_URLCONF = "tests.webhooks.urls"
        self.settings.MIDDLEWARE = [
            *self.settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]

        assert self.deliver(load_event("notification.status")).status_code == 202
        self.assert_error(self.post(b"{}", signature="0" * 64), 401)
        # The middleware is on: a view that is not exempt redirects to LOGIN_URL.
        response = self.client.get("/ordinary/")
        assert response.status_code == 302
        assert response["Location"].startswith(self.settings.LOGIN_URL)

    def test_csrf_is_enforced_everywhere_else(self) -> None:
        assert self.deliver(load_event("notification.status")).status_code == 202
        response = self.client.post("/admin/login/", {"username": "a", "password": "b"})
        assert response.status_code == 403
        # Only the webhook view is exempt.
        self.settings.ROOT_URLCONF = "tests.webhooks.urls"
        assert self.client.post("/ordinary/").status_code == 403


class TestVerify(WebhookCase):
    """:func:`django_mmc.signing.verify` on its own."""

    body = b'{"data":{"type":"events","id":"evt_1"}}'

    def test_sign_matches_githubs_published_hmac_sha256_vector(self) -> None:
        # github/docs validating-webhook-deliveries: the same HMAC-SHA256, hex.
        assert sign(b"Hello, World!", "It's a Secret to Everybody") == (
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")

    def test_any_of_several_secrets_verifies(self) -> None:
        secrets = ["one", "two", "three"]
        for secret in secrets:
            assert verify(self.body, sign(self.body, secret), secrets)
        assert not verify(self.body, sign(self.body, "four"), secrets)

    def test_every_secret_is_tried_even_after_a_match(self) -> None:
        tried = []

        def secrets() -> Any:
            for secret in ("one", "two", "three"):
                tried.append(secret)
                yield secret

        assert verify(self.body, sign(self.body, "one"), secrets())
        assert tried == ["one", "two", "three"]

    def test_case_and_surrounding_whitespace_do_not_matter(self) -> None:
        signature = sign(self.body, "one")
        assert verify(self.body, signature.upper(), ["one"])
        assert verify(self.body, f"\t{signature}\n", ["one"])

    @pytest.mark.parametrize("signature", [
        None, "", "\u00e9", "\u00e9" * 64, "\U0001f600", b"bytes", 17, ["a"],
    ], ids=repr)
    def test_odd_headers_are_rejected_without_error(self, signature: Any) -> None:
        assert verify(self.body, signature, ["one"]) is False

    def test_no_secret_verifies_nothing(self) -> None:
        assert verify(self.body, sign(self.body, ""), []) is False
        assert verify(b"", sign(b"", ""), ()) is False

    def test_a_non_ascii_header_is_401_not_500(self) -> None:
        body = encode(load_event("notification.status"))
        self.assert_error(self.post(body, signature="\u00e9" * 64), 401)
        self.assert_nothing_stored()


class TestFixtures(WebhookCase):
    """The payload fixtures are the contract's documents, which is what
    :func:`django_mmc.testing.build_event` builds."""

    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_each_fixture_is_what_build_event_builds(self, event_type: str) -> None:
        fixture = load_event(event_type)
        data = fixture["data"]
        attributes = dict(data["attributes"])
        attributes.pop("eventType")
        occurred_at = attributes.pop("occurredAt")
        keywords = {
            "initiatedBy": "initiated_by", "channelType": "channel_type",
            "closedBy": "closed_by",
        }
        fields = {keywords.get(name, name): value for name, value in attributes.items()}
        relationships = {
            ("channel_group" if name == "channelGroup" else name): rel["data"]["id"]
            for name, rel in data["relationships"].items() if name != "dialogueAgent"
        }
        built = build_event(event_type, event_id=data["id"], occurred_at=occurred_at,
                            agent_id=data["relationships"]["dialogueAgent"]["data"]["id"],
                            **fields, **relationships)
        assert built == fixture
