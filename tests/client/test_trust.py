"""Item 17 of the hardening issue: the client trusts only the platform's own
words.

Pagination follows ``links.next`` only to the platform's origin (the scheme,
host and port of ``BASE_URL``); a link anywhere else is an error, raised
before any request, so the bearer token never goes there. A status word the
platform does not report (one of django_mmc's local statuses, say) is kept
as it came and logged once per word; nothing applies it (the processing and
polling halves are in ``tests/webhooks/test_platform_words.py`` and
``tests/test_platform_words.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from django_mmc import contract
from django_mmc.client import UNTRUSTED_LINK, MMCClient, jsonapi, url_origin
from django_mmc.exceptions import MMCPermanentError

from . import api_requests, current_token


class RecordingServer:
    """A loopback HTTP server that answers every request with an empty
    JSON:API list and records the headers it was sent."""

    def __init__(self) -> None:
        received: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                received.append(dict(self.headers))
                body = b'{"data": []}'
                self.send_response(200)
                self.send_header("Content-Type", contract.JSONAPI_MEDIA_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def elsewhere() -> Iterator[RecordingServer]:
    with RecordingServer() as server:
        yield server


def two_pages(client: MMCClient) -> list[Any]:
    """Every page of the templates, one template a page (the sandbox has
    several, so the first page links to a second)."""
    return list(client.paginate(contract.TEMPLATES_PATH, {"page[size]": 1}))


def test_item_17_pages_at_the_platforms_origin_are_followed(
    sandbox: Any, client: MMCClient
) -> None:
    pages = two_pages(client)
    assert len(pages) >= 2
    assert len(api_requests(sandbox, "GET", contract.TEMPLATES_PATH)) == len(pages)


def test_item_17_a_next_link_to_another_port_is_refused_and_gets_no_token(
    sandbox: Any, client: MMCClient, elsewhere: RecordingServer
) -> None:
    sandbox.faults.point_links_at(elsewhere.url)

    with pytest.raises(MMCPermanentError) as raised:
        two_pages(client)

    assert raised.value.code == UNTRUSTED_LINK
    assert elsewhere.url in str(raised.value)
    assert "not followed" in str(raised.value)
    assert elsewhere.received == []  # no request at all, so no Authorization header
    token = current_token(client)
    assert token not in str(raised.value) and token not in repr(raised.value)
    assert len(api_requests(sandbox, "GET", contract.TEMPLATES_PATH)) == 1


@pytest.mark.parametrize("origin", ["http://localhost:{port}", "https://127.0.0.1:{port}"],
                         ids=["another-host", "another-scheme"])
def test_item_17_a_next_link_to_another_host_or_scheme_is_refused(
    sandbox: Any, client: MMCClient, origin: str
) -> None:
    # The same server under another name or scheme: the origin is what counts.
    port = urlsplit(sandbox.url).port
    sandbox.faults.point_links_at(origin.format(port=port))

    with pytest.raises(MMCPermanentError) as raised:
        two_pages(client)

    assert raised.value.code == UNTRUSTED_LINK
    assert len(api_requests(sandbox, "GET", contract.TEMPLATES_PATH)) == 1


def test_item_17_the_origin_is_scheme_host_and_port() -> None:
    assert url_origin("https://API.example.com/organisations/1") == (
        url_origin("https://api.example.com:443/x?page[number]=2"))
    assert url_origin("http://api.example.com/") == ("http", "api.example.com", 80)
    for other in ("https://api.example.com:8443/", "http://api.example.com/",
                  "https://api.example.com.evil.example/", "https://user@api.example.com/",
                  "ftp://api.example.com/", "https://api.example.com:99999/"):
        assert url_origin(other) != url_origin("https://api.example.com/"), other


def test_item_17_an_absolute_url_elsewhere_is_never_requested(
    sandbox: Any, client: MMCClient, elsewhere: RecordingServer
) -> None:
    with pytest.raises(MMCPermanentError) as raised:
        client.request("GET", elsewhere.url + "/organisations/1001/templates")
    assert raised.value.code == UNTRUSTED_LINK
    assert elsewhere.received == []


def notification_document(status: str, notification_id: str = "79746") -> dict[str, Any]:
    return {"type": "notifications", "id": notification_id,
            "attributes": {"status": status, "channelType": "SMS"}}


@pytest.mark.parametrize("word", ["CANCELLED", "QUEUED", "SENDING", "ERROR", "RECEIVED",
                                  "SCHEDULED", "REFUSED", "BOUNCED"])
def test_item_17_a_status_word_the_platform_does_not_report_is_kept_and_logged_once(
    word: str, caplog: pytest.LogCaptureFixture
) -> None:
    jsonapi.forget_unknown_status_words()
    caplog.set_level(logging.WARNING, logger="django_mmc.client")

    first = jsonapi.parse_notification(notification_document(word))
    again = jsonapi.parse_notification(notification_document(word, "79747"))
    message = jsonapi.parse_message({"type": "messages", "id": "m-1",
                                     "attributes": {"status": word}})

    assert first.status == again.status == message.status == word
    logged = [r for r in caplog.records
              if r.name == "django_mmc.client" and word in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]


def test_item_17_the_platforms_own_words_are_not_logged(
    caplog: pytest.LogCaptureFixture
) -> None:
    jsonapi.forget_unknown_status_words()
    caplog.set_level(logging.WARNING, logger="django_mmc.client")
    for word in contract.PlatformStatus:
        assert jsonapi.parse_notification(notification_document(word.value)).status == word
    assert not [r for r in caplog.records if r.name == "django_mmc.client"]
