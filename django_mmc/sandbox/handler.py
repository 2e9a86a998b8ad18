"""HTTP for the sandbox: reading requests, the gateway's checks, writing answers.

One :class:`Handler` instance serves one keep-alive connection. It checks
what the platform's gateway would (faults, latency, the bearer token, the
rate limit, the route, ``Accept``) before any state is touched, then calls
the view the route table names (:mod:`.routes`, :mod:`.api`). The token
endpoint is :mod:`.oauth`, the control endpoints :mod:`.control`.
Every answer is written in one ``send`` so keep-alive clients never wait on
Nagle's algorithm.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
from collections.abc import Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import contract
from . import control, oauth
from .api import ApiCall, Creation
from .defaults import CONTROL_PREFIX, IDLE_CONNECTION_TIMEOUT
from .faults import HttpFault
from .media import JSON, TEXT, accepts_jsonapi, encode
from .query import ListQuery
from .state import ApiError, Response
from .state.errors import token_expired

if TYPE_CHECKING:
    from .server import Sandbox

logger = logging.getLogger("django_mmc.sandbox")

_REASONS = {status.value: status.phrase for status in HTTPStatus}
# Bodies a request may send: the biggest file plus room for multipart framing.
_MAX_BODY = contract.MAX_FILE_SIZE + 1024 * 1024


class _Date:
    """The ``Date`` header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._value = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = formatdate(now, usegmt=True)
            self._second = now
        return self._value


_date = _Date()


class Handler(BaseHTTPRequestHandler):
    """Serves one connection of the sandbox (HTTP/1.1, keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "MMCSandbox/1.0"
    timeout = IDLE_CONNECTION_TIMEOUT
    sandbox: Sandbox

    def setup(self) -> None:
        super().setup()
        # Small request/answer pairs on a kept-alive connection: no Nagle.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        if self.sandbox.verbose:
            super().log_message(format, *args)

    # BaseHTTPRequestHandler dispatches on do_<METHOD>; every method goes
    # through one path so unsupported ones get a proper 405 document.
    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    # -- plumbing --------------------------------------------------------------

    # Set while serving an API or token request: logged just before the answer
    # is sent, so a client that has its answer also finds it in the log.
    _log_entry: tuple[str, str, str | None] | None = None

    def _write(
        self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]]
    ) -> None:
        if self._log_entry is not None:
            method, path, key = self._log_entry
            self._log_entry = None
            self.sandbox.platform.log_request(method, path, status, key)
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
            f"Server: {self.server_version}",
            f"Date: {_date()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        head.extend(f"{name}: {value}" for name, value in headers)
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            payload += body
        self.wfile.write(payload)
        if self.sandbox.verbose:
            self.log_request(status, len(body))

    def _read_body(self) -> bytes | None:
        """The request body, or None if it is too big to be read at all."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _handle(self) -> None:
        method = self.command
        split = urlsplit(self.path)
        path = split.path
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._write(400, b"Bad request body\n", TEXT, [])
            return
        if path == "/" or path.startswith(CONTROL_PREFIX + "/"):
            self._control(method, path, body)
            return
        if body is None:
            # Too big to read: answer and drop the connection instead.
            self.close_connection = True
            error = ApiError(
                413,
                contract.ERROR_PAYLOAD_TOO_LARGE,
                f"Request bodies are limited to {contract.MAX_FILE_SIZE} bytes of file.",
            )
            self._log_entry = (method, self.path, None)
            self._send_error(error)
            return
        key = self.headers.get(contract.IDEMPOTENCY_HEADER)
        self._log_entry = (method, self.path, key)
        if path == self.sandbox.token_endpoint.path:
            self._token(method, split.query, body)
        else:
            self._api(method, path, split.query, body, key)

    def _send_error(self, error: ApiError) -> int:
        body = json.dumps(error.document(), separators=(",", ":")).encode()
        self._write(error.status, body, contract.JSONAPI_MEDIA_TYPE, list(error.headers.items()))
        return error.status

    def _send_document(self, status: int, document: Any) -> int:
        self._write(status, encode(document), contract.JSONAPI_MEDIA_TYPE, [])
        return status

    # -- the gateway -----------------------------------------------------------

    def _gateway(self, method: str) -> None:
        """Latency and injected faults, as every platform request meets them."""
        latency = self.sandbox.latency
        if isinstance(latency, tuple):
            time.sleep(random.uniform(*latency))
        elif latency:
            time.sleep(latency)
        fault = self.sandbox.faults.for_request(method, self.path)
        if fault is not None:
            self._fault(fault)

    def _fault(self, fault: HttpFault) -> None:
        """Apply an injected fault; raises the error to answer with, if any."""
        if fault.kind == "slow":
            time.sleep(fault.slow_seconds)
            return
        if fault.kind == "expire_token":
            authorization = self.headers.get("Authorization") or ""
            self.sandbox.platform.expire_token(authorization.partition(" ")[2].strip() or None)
            raise token_expired()
        status = int(fault.kind)
        headers = {}
        if status in (429, 503):
            headers["Retry-After"] = str(fault.retry_after)
        code = {
            429: contract.ERROR_RATE_LIMITED,
            500: contract.ERROR_INTERNAL,
        }.get(status, contract.ERROR_UNAVAILABLE)
        raise ApiError(status, code, "Injected by the MMC sandbox.", headers=headers)

    # -- the token endpoint ----------------------------------------------------

    def _token(self, method: str, query: str, body: bytes) -> int:
        sandbox = self.sandbox
        try:
            self._gateway(method)
        except ApiError as error:
            status, payload, headers = oauth.fault_answer(error)
        else:
            status, payload, headers = sandbox.token_endpoint.answer(
                sandbox.platform, method, query, self.headers, body
            )
        extra = [("Cache-Control", "no-store"), ("Pragma", "no-cache"), *headers]
        self._write(status, json.dumps(payload).encode(), JSON, extra)
        return status

    # -- the organisation API --------------------------------------------------

    def _api(self, method: str, path: str, query: str, body: bytes, key: str | None) -> int:
        try:
            return self._api_call(method, path, query, body, key)
        except ApiError as error:
            return self._send_error(error)
        except Exception:
            logger.exception("MMC sandbox: %s %s failed", method, self.path)
            return self._send_error(
                ApiError(500, contract.ERROR_INTERNAL, "The sandbox failed; see its log.")
            )

    def _api_call(self, method: str, path: str, query: str, body: bytes, key: str | None) -> int:
        sandbox = self.sandbox
        platform = sandbox.platform
        self._gateway(method)
        client_id, _ = platform.authenticate(self.headers.get("Authorization"))
        platform.check_rate(client_id)
        route, params = sandbox.routes.resolve(path, platform.organisation_id)
        view = route.views.get(method)
        if view is None:
            raise ApiError(
                405,
                contract.ERROR_BAD_REQUEST,
                f"{method} is not allowed here.",
                title="Method not allowed",
                headers={"Allow": route.allowed},
            )
        if not accepts_jsonapi(self.headers.get("Accept")):
            raise ApiError(
                406,
                contract.ERROR_NOT_ACCEPTABLE,
                f"Accept must allow {contract.JSONAPI_MEDIA_TYPE} without parameters.",
            )
        base = f"http://{self.headers.get('Host') or sandbox.host_port}"
        call = ApiCall(
            platform=platform,
            routes=sandbox.routes,
            route=route,
            method=method,
            path=path,
            params=params,
            query=ListQuery(query, (sandbox.faults.link_origin or base) + path, sandbox.wire),
            headers=self.headers,
            body=body,
            key=key,
        )
        answer = view(call)
        if isinstance(answer, Creation):
            return self._create(client_id, key, answer, base)
        return self._send_document(200, answer)

    def _create(self, client_id: str, key: str | None, creation: Creation, base: str) -> int:
        """Run a create, at most once per idempotency key, and answer ``201``."""
        platform = self.sandbox.platform

        def produce() -> Response:
            try:
                resource = creation.make()
            except ApiError as error:
                return error.status, list(error.headers.items()), encode(error.document())
            url = self.sandbox.routes.organisation_url(base, platform.organisation_id)
            location = url + creation.location(resource)
            return 201, [("Location", location)], encode({"data": resource})

        if key is None:
            status, headers, body = produce()
        else:
            status, headers, body, replayed = platform.idempotent(
                client_id, key, creation.fingerprint, produce
            )
            if replayed:
                headers = [*headers, ("Idempotent-Replayed", "true")]
        self._write(status, body, contract.JSONAPI_MEDIA_TYPE, headers)
        return status

    # -- control endpoints -----------------------------------------------------

    def _control(self, method: str, path: str, body: bytes | None) -> None:
        if path == "/":
            self._write(200, control.hello(self.sandbox).encode(), TEXT, [])
            return
        if body is None:
            self.close_connection = True
            self._control_answer(413, {"error": "body too large"})
            return
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            status, answer = control.dispatch(
                self.sandbox, method, path[len(CONTROL_PREFIX) :], payload
            )
        except (ValueError, KeyError, TypeError) as error:
            status, answer = 400, {"error": str(error)}
        except Exception as error:  # a bug: say so instead of dropping the connection
            logger.exception("MMC sandbox control %s %s failed", method, path)
            status, answer = 500, {"error": repr(error)}
        if isinstance(answer, bytes):
            self._write(status, answer, "application/octet-stream", [])
        else:
            self._control_answer(status, answer)

    def _control_answer(self, status: int, answer: Mapping[str, Any] | list[Any]) -> None:
        self._write(status, json.dumps(answer).encode(), JSON, [])
