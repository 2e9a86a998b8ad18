"""Helpers of the sandbox tests: a JSON:API caller, request documents and a
webhook receiver. Plain ``requests`` and ``http.server``: no Django."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from django_mmc import contract
from django_mmc.sandbox import Sandbox
from tests.helpers import ORDER_SHIPPED_TEMPLATE_ID, SUPPORT_GROUP_ID

JSONAPI = contract.JSONAPI_MEDIA_TYPE


def get_token(sandbox: Sandbox) -> str:
    response = requests.post(
        sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "scope": contract.DEFAULT_SCOPE,
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


class Api:
    """A JSON:API caller for one sandbox, with a token of its own."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = get_token(sandbox)
        self.session.headers.update({"Authorization": f"Bearer {self.token}", "Accept": JSONAPI})

    def url(self, path: str) -> str:
        return self.sandbox.organisation_url + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=10, **kwargs)

    def post(
        self, path: str, document: Any, key: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Content-Type": JSONAPI, **kwargs.pop("headers", {})}
        if key is not None:
            headers[contract.IDEMPOTENCY_HEADER] = key
        body = document if isinstance(document, (bytes, str)) else json.dumps(document)
        return self.session.post(self.url(path), data=body, headers=headers, timeout=10, **kwargs)

    def patch(self, path: str, document: Any) -> requests.Response:
        return self.session.patch(
            self.url(path), data=json.dumps(document), headers={"Content-Type": JSONAPI}, timeout=10
        )

    def close(self) -> None:
        self.session.close()


def notification_document(
    recipient: str = "+353861234567",
    template: str = ORDER_SHIPPED_TEMPLATE_ID,
    group: str = SUPPORT_GROUP_ID,
    channel_type: str | None = "WHATSAPP",
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {"context": {"first_name": "Ann"} if context is None else context}
    if channel_type is not None:
        attributes["channelType"] = channel_type
    return {
        "data": {
            "type": "notifications",
            "attributes": attributes,
            "relationships": {
                "recipient": {"data": {"type": "customers", "id": recipient}},
                "template": {"data": {"type": "templates", "id": template}},
                "channelGroup": {"data": {"type": "channel-groups", "id": group}},
            },
        }
    }


def dialogue_document(
    recipient: str = "+353861234567", group: str = SUPPORT_GROUP_ID,
    channel_type: str = "WHATSAPP",
) -> dict[str, Any]:
    return {
        "data": {
            "type": "dialogues",
            "attributes": {"channelType": channel_type},
            "relationships": {
                "recipient": {"data": {"type": "customers", "id": recipient}},
                "channelGroup": {"data": {"type": "channel-groups", "id": group}},
            },
        }
    }


def text_message(text: str = "Hello", files: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "messages", "attributes": {"text": text}}
    if files is not None:
        data["relationships"] = {"files": {"data": [{"type": "files", "id": f} for f in files]}}
    return {"data": data}


# -- a webhook receiver ------------------------------------------------------------


class Receiver:
    """Records every POST; answers with queued status codes, then 200."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.deliveries.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                            "status": status,
                        }
                    )
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, agent_id: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{agent_id}"

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.deliveries) >= count, timeout)

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(d["body"]) for d in self.deliveries]

    def event_types(self) -> list[str]:
        return [e["data"]["attributes"]["eventType"] for e in self.events()]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
