"""HTTP for the sandbox: parsing, media types, routing and responses.

One :class:`Handler` instance serves one keep-alive connection. It checks
what the platform's gateway would (faults, latency, the bearer token, the
rate limit, the organisation, ``Accept`` and ``Content-Type``) before any
state is touched, then hands the request to :class:`~.state.Platform`.
Every answer is written in one ``send`` so keep-alive clients never wait on
Nagle's algorithm.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import json
import logging
import random
import re
import socket
import time
from collections.abc import Callable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

from .. import contract
from .defaults import CONTROL_PREFIX, DEFAULT_PAGE_SIZE, IDLE_CONNECTION_TIMEOUT, OAUTH_PATH
from .faults import HttpFault
from .state import ApiError, OAuthError, Page, fingerprint

if TYPE_CHECKING:
    from .server import Sandbox

logger = logging.getLogger("django_mmc.sandbox")

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
# Bodies a request may send: the biggest file plus room for multipart framing.
_MAX_BODY = contract.MAX_FILE_SIZE + 1024 * 1024

Response = tuple[int, list[tuple[str, str]], bytes]


def _route(template: str, suffix: str = "") -> re.Pattern[str]:
    # "/dialogue-agents/{agent_id}/dialogues" -> a regex with named groups,
    # built from the contract so a corrected path changes the sandbox too.
    pattern = re.escape(template + suffix)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(pattern + r"\Z")


_ORGANISATION = re.compile(r"/organisations/(?P<organisation_id>[^/]+)(?P<rest>/.*)?\Z")
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (_route(contract.CHANNEL_GROUPS_PATH), "channel_groups"),
    (_route(contract.TEMPLATES_PATH), "templates"),
    (_route(contract.NOTIFICATIONS_PATH), "notifications"),
    (_route(contract.NOTIFICATION_PATH), "notification"),
    (_route(contract.DIALOGUES_PATH), "dialogues"),
    (_route(contract.DIALOGUE_PATH), "dialogue"),
    (_route(contract.MESSAGES_PATH), "messages"),
    (_route(contract.MESSAGES_PATH, "/{message_id}"), "message"),
    (_route(contract.FILES_PATH), "files"),
    (_route(contract.FILES_PATH, "/{file_id}"), "file"),
]
_ALLOWED = {
    "channel_groups": ("GET",),
    "templates": ("GET",),
    "notifications": ("GET", "POST"),
    "notification": ("GET",),
    "dialogues": ("GET", "POST"),
    "dialogue": ("GET", "PATCH"),
    "messages": ("GET", "POST"),
    "message": ("GET",),
    "files": ("POST",),
    "file": ("GET",),
}

_HELLO = """MMC sandbox: a local stand-in for the Message My Customer platform.

OAuth token:      POST {url}{oauth}/token?p={flow}
API:              {url}/organisations/{organisation}/...
Control (JSON):   POST {url}/_sandbox/reply | /_sandbox/agents/<id>/endpoint | /_sandbox/faults
                  POST {url}/_sandbox/status | /_sandbox/dialogues/<id>/close
                  POST {url}/_sandbox/expire-tokens | /_sandbox/reset | /_sandbox/wait
                  GET  {url}/_sandbox/state | /_sandbox/requests | /_sandbox/files/<id>
"""


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


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    """``(type, params)`` of a header value, the type lowercased."""
    kind, _, rest = value.partition(";")
    params = {}
    for item in rest.split(";"):
        name, sep, param = item.partition("=")
        if sep:
            params[name.strip().lower()] = param.strip().strip('"')
    return kind.strip().lower(), params


def _accepts_jsonapi(accept: str | None) -> bool:
    """JSON:API 1.0 rule: 406 if every JSON:API range has parameters."""
    if not accept:
        return True
    jsonapi_seen = jsonapi_plain = wildcard = False
    for item in accept.split(","):
        kind, params = _media_type(item)
        params.pop("q", None)  # q is an accept-param, not a media type parameter
        if kind == contract.JSONAPI_MEDIA_TYPE:
            jsonapi_seen = True
            jsonapi_plain = jsonapi_plain or not params
        elif kind in ("*/*", "application/*"):
            wildcard = True
    if jsonapi_seen:
        return jsonapi_plain
    return wildcard


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, str, bytes]]:
    """``(name, filename, content type, data)`` of each part of a form.

    Raises ``ValueError`` on a malformed body.
    """
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise ValueError("no parts")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        part = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part[name.strip()] = value.strip()
        if part.get_content_disposition() != "form-data":
            raise ValueError("part is not form-data")
        field_name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        parts.append(
            (
                str(field_name or ""),
                None if filename is None else str(filename),
                part.get("content-type", "application/octet-stream"),
                data,
            )
        )
    return parts


def _resolve(rest: str, path: str) -> tuple[str, dict[str, str]]:
    """The route name and path parameters of an organisation path, or 404."""
    for pattern, name in _ROUTES:
        found = pattern.match(rest)
        if found is not None:
            return name, {k: unquote(v) for k, v in found.groupdict().items()}
    raise ApiError(404, contract.ERROR_NOT_FOUND, f"No such path: {path}.")


def _page(query: Mapping[str, list[str]], default_size: int) -> tuple[int, int]:
    def number(name: str, default: int, maximum: int | None) -> int:
        raw = query.get(name, [None])[0]
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1 or (maximum is not None and value > maximum):
            limit = f" and at most {maximum}" if maximum else ""
            raise ApiError(
                400,
                contract.ERROR_BAD_REQUEST,
                f"{name} must be a whole number from 1{limit}.",
                parameter=name,
            )
        return value

    return number("page[number]", 1, None), number(
        "page[size]", default_size, contract.MAX_PAGE_SIZE
    )


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

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._handle()

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
            self._write(400, b"Bad request body\n", "text/plain; charset=utf-8", [])
            return
        if path == "/" or path.startswith(CONTROL_PREFIX + "/"):
            self._control(method, path, split.query, body)
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
        if path == OAUTH_PATH + "/token":
            self._token(method, split.query, body)
        else:
            self._api(method, path, split.query, body, key)

    def _send_error(self, error: ApiError) -> int:
        body = json.dumps(error.document(), separators=(",", ":")).encode()
        self._write(error.status, body, contract.JSONAPI_MEDIA_TYPE, list(error.headers.items()))
        return error.status

    def _send_document(
        self, status: int, document: Any, headers: list[tuple[str, str]] | None = None
    ) -> int:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._write(status, body, contract.JSONAPI_MEDIA_TYPE, headers or [])
        return status

    def _delay(self) -> None:
        latency = self.sandbox.latency
        if isinstance(latency, tuple):
            time.sleep(random.uniform(*latency))
        elif latency:
            time.sleep(latency)

    def _fault(self, fault: HttpFault) -> None:
        """Apply an injected fault; raises the error to answer with, if any."""
        if fault.kind == "slow":
            time.sleep(fault.slow_seconds)
            return
        if fault.kind == "expire_token":
            authorization = self.headers.get("Authorization") or ""
            self.sandbox.platform.expire_token(authorization.partition(" ")[2].strip() or None)
            raise ApiError(
                401,
                contract.ERROR_TOKEN_EXPIRED,
                "The access token has expired.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        status = int(fault.kind)
        headers = {}
        if status in (429, 503):
            headers["Retry-After"] = str(fault.retry_after)
        code = {
            429: contract.ERROR_RATE_LIMITED,
            500: contract.ERROR_INTERNAL,
        }.get(status, contract.ERROR_UNAVAILABLE)
        raise ApiError(status, code, "Injected by the MMC sandbox.", headers=headers)

    # -- OAuth -----------------------------------------------------------------

    def _token(self, method: str, query: str, body: bytes) -> int:
        sandbox = self.sandbox
        try:
            self._delay()
            fault = sandbox.faults.for_request(method, self.path)
            if fault is not None:
                self._fault(fault)
        except ApiError as error:
            busy = error.status in (429, 503)
            return self._oauth_answer(
                error.status,
                {
                    "error": "temporarily_unavailable" if busy else "server_error",
                    "error_description": error.errors[0]["detail"],
                },
                list(error.headers.items()),
            )
        if method != "POST":
            return self._oauth_answer(
                405,
                {"error": "invalid_request", "error_description": "Use POST."},
                [("Allow", "POST")],
            )
        flow = parse_qs(query).get("p", [None])[0]
        if flow != sandbox.oauth_flow:
            return self._oauth_answer(
                400,
                {"error": "invalid_request", "error_description": f"Unknown policy {flow!r}."},
            )
        kind, _ = _media_type(self.headers.get("Content-Type", ""))
        if kind != _FORM:
            return self._oauth_answer(
                400,
                {"error": "invalid_request", "error_description": f"The body must be {_FORM}."},
            )
        form = {
            k: v[0]
            for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()
        }
        client_id = form.get("client_id")
        client_secret = form.get("client_secret")
        basic = False
        authorization = self.headers.get("Authorization") or ""
        if authorization[:6].lower() == "basic ":
            basic = True
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
            user, password = unquote_plus(user), unquote_plus(password)
            # RFC 6749 2.3 allows one authentication method; the same
            # credentials repeated in the body are tolerated, others are not.
            if (client_secret is not None and client_secret != password) or (
                client_id is not None and client_id != user
            ):
                return self._oauth_answer(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "Use one client authentication method.",
                    },
                )
            client_id, client_secret = user, password
        try:
            grant = sandbox.platform.grant_token(
                grant_type=form.get("grant_type"),
                client_id=client_id,
                client_secret=client_secret,
                scope=form.get("scope"),
                basic=basic,
            )
        except OAuthError as error:
            headers = [("WWW-Authenticate", 'Basic realm="mmc-sandbox"')] if error.basic else []
            return self._oauth_answer(
                error.status,
                {"error": error.error, "error_description": error.description},
                headers,
            )
        return self._oauth_answer(200, grant)

    def _oauth_answer(
        self, status: int, payload: Mapping[str, Any], headers: list[tuple[str, str]] | None = None
    ) -> int:
        body = json.dumps(payload).encode()
        extra = [("Cache-Control", "no-store"), ("Pragma", "no-cache"), *(headers or [])]
        self._write(status, body, _JSON, extra)
        return status

    # -- the organisation API --------------------------------------------------

    def _api(self, method: str, path: str, query: str, body: bytes, key: str | None) -> int:
        try:
            return self._api_inner(method, path, query, body, key)
        except ApiError as error:
            return self._send_error(error)
        except Exception:
            logger.exception("MMC sandbox: %s %s failed", method, self.path)
            return self._send_error(
                ApiError(500, contract.ERROR_INTERNAL, "The sandbox failed; see its log.")
            )

    def _api_inner(self, method: str, path: str, query: str, body: bytes, key: str | None) -> int:
        sandbox = self.sandbox
        platform = sandbox.platform
        self._delay()
        fault = sandbox.faults.for_request(method, self.path)
        if fault is not None:
            self._fault(fault)
        client_id, _ = platform.authenticate(self.headers.get("Authorization"))
        platform.check_rate(client_id)
        match = _ORGANISATION.match(path)
        if match is None or unquote(match["organisation_id"]) != platform.organisation_id:
            raise ApiError(404, contract.ERROR_NOT_FOUND, f"No such organisation or path: {path}.")
        name, params = _resolve(match["rest"] or "/", path)
        if method not in _ALLOWED[name]:
            raise ApiError(
                405,
                contract.ERROR_BAD_REQUEST,
                f"{method} is not allowed here.",
                title="Method not allowed",
                headers={"Allow": ", ".join(_ALLOWED[name])},
            )
        if not _accepts_jsonapi(self.headers.get("Accept")):
            raise ApiError(
                406,
                contract.ERROR_NOT_ACCEPTABLE,
                f"Accept must allow {contract.JSONAPI_MEDIA_TYPE} without parameters.",
            )
        queries = parse_qs(query, keep_blank_values=True)
        base = f"http://{self.headers.get('Host') or sandbox.host_port}"

        def page_of(default_size: int = DEFAULT_PAGE_SIZE) -> Page:
            number, size = _page(queries, default_size)
            kept = [(k, v[0]) for k, v in queries.items() if not k.startswith("page[")]

            def link(page_number: int) -> str:
                pairs = [*kept, ("page[number]", str(page_number)), ("page[size]", str(size))]
                encoded = "&".join(f"{quote(k, safe='[]')}={quote(v, safe=',')}" for k, v in pairs)
                return f"{base}{path}?{encoded}"

            return Page(number, size, link)

        if method == "GET":
            return self._send_document(200, self._read(name, params, queries, page_of))
        if name == "files":
            return self._upload(body, client_id, key)
        document = self._json_body(body)
        if method == "PATCH":
            resource = platform.update_dialogue(params["agent_id"], params["dialogue_id"], document)
            return self._send_document(200, {"data": resource})

        def create() -> Response:
            try:
                if name == "notifications":
                    resource = platform.create_notification(document, key)
                    location = contract.NOTIFICATION_PATH.format(notification_id=resource["id"])
                elif name == "dialogues":
                    resource = platform.create_dialogue(params["agent_id"], document, key)
                    location = contract.DIALOGUE_PATH.format(
                        agent_id=params["agent_id"], dialogue_id=resource["id"]
                    )
                else:
                    resource = platform.create_message(
                        params["agent_id"], params["dialogue_id"], document, key
                    )
                    location = contract.MESSAGES_PATH.format(**params) + f"/{resource['id']}"
            except ApiError as error:
                return (
                    error.status,
                    list(error.headers.items()),
                    json.dumps(error.document()).encode(),
                )
            prefix = contract.organisation_url(base, platform.organisation_id)
            payload = json.dumps({"data": resource}, separators=(",", ":"), ensure_ascii=False)
            return 201, [("Location", prefix + location)], payload.encode("utf-8")

        return self._create(client_id, key, fingerprint(method, path, document), create)

    def _create(
        self, client_id: str, key: str | None, print_: str, create: Callable[[], Response]
    ) -> int:
        if key is None:
            status, headers, body = create()
        else:
            status, headers, body, replayed = self.sandbox.platform.idempotent(
                client_id, key, print_, create
            )
            if replayed:
                headers = [*headers, ("Idempotent-Replayed", "true")]
        self._write(status, body, contract.JSONAPI_MEDIA_TYPE, headers)
        return status

    def _json_body(self, body: bytes) -> Any:
        """The request's JSON:API document; 415 or 400 if it is not one."""
        kind, params = _media_type(self.headers.get("Content-Type", ""))
        if kind != contract.JSONAPI_MEDIA_TYPE or params:
            raise ApiError(
                415,
                contract.ERROR_UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type must be {contract.JSONAPI_MEDIA_TYPE} without parameters.",
            )
        self._check_key()
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, contract.ERROR_BAD_REQUEST, "The body is not valid JSON.") from None

    def _check_key(self) -> None:
        key = self.headers.get(contract.IDEMPOTENCY_HEADER)
        if key is not None and not 0 < len(key) <= contract.IDEMPOTENCY_KEY_MAX_LENGTH:
            raise ApiError(
                400,
                contract.ERROR_BAD_REQUEST,
                f"{contract.IDEMPOTENCY_HEADER} must be 1 to "
                f"{contract.IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
            )

    def _read(
        self,
        name: str,
        params: Mapping[str, str],
        queries: Mapping[str, list[str]],
        page_of: Callable[..., Page],
    ) -> dict[str, Any]:
        platform = self.sandbox.platform
        if name == "channel_groups":
            include = queries.get("include", [None])[0]
            if include not in (None, "", contract.TYPE_CHANNELS):
                raise ApiError(
                    400,
                    contract.ERROR_BAD_REQUEST,
                    f"Only include={contract.TYPE_CHANNELS} is supported.",
                    parameter="include",
                )
            return platform.channel_groups_document(include == contract.TYPE_CHANNELS, page_of())
        if name == "templates":
            return platform.templates_document(page_of())
        if name == "notifications":
            raw = queries.get("filter[id]", [None])[0]
            if raw is None:
                return platform.notifications_document(None, page_of())
            ids = [item.strip() for item in raw.split(",") if item.strip()]
            if len(ids) > contract.MAX_FILTER_IDS:
                raise ApiError(
                    400,
                    contract.ERROR_BAD_REQUEST,
                    f"filter[id] takes at most {contract.MAX_FILTER_IDS} ids.",
                    parameter="filter[id]",
                )
            return platform.notifications_document(ids, page_of(contract.MAX_FILTER_IDS))
        if name == "notification":
            return {"data": platform.notification_resource(params["notification_id"])}
        if name == "dialogues":
            status = queries.get("filter[status]", [None])[0]
            if status not in (None, contract.DIALOGUE_OPEN, contract.DIALOGUE_CLOSED):
                raise ApiError(
                    400,
                    contract.ERROR_BAD_REQUEST,
                    f"filter[status] is {contract.DIALOGUE_OPEN} or {contract.DIALOGUE_CLOSED}.",
                    parameter="filter[status]",
                )
            return platform.dialogues_document(params["agent_id"], status, page_of())
        if name == "dialogue":
            return {"data": platform.dialogue_resource(params["agent_id"], params["dialogue_id"])}
        if name == "messages":
            return platform.messages_document(params["agent_id"], params["dialogue_id"], page_of())
        if name == "message":
            return {
                "data": platform.message_resource(
                    params["agent_id"], params["dialogue_id"], params["message_id"]
                )
            }
        return {"data": platform.file_resource(params["file_id"])}

    def _upload(self, body: bytes, client_id: str, key: str | None) -> int:
        content_type = self.headers.get("Content-Type", "")
        kind, _ = _media_type(content_type)
        if kind != "multipart/form-data":
            raise ApiError(
                415, contract.ERROR_UNSUPPORTED_MEDIA_TYPE, "Files are sent as multipart/form-data."
            )
        self._check_key()
        try:
            parts = parse_multipart(body, content_type)
        except ValueError as error:
            raise ApiError(
                400, contract.ERROR_BAD_REQUEST, f"Malformed multipart body: {error}."
            ) from None
        files = [part for part in parts if part[0] == "file"]
        if len(files) != 1:
            raise ApiError(400, contract.ERROR_BAD_REQUEST, "Send exactly one part named 'file'.")
        _, filename, part_type, data = files[0]
        if len(data) > contract.MAX_FILE_SIZE:
            raise ApiError(
                413,
                contract.ERROR_PAYLOAD_TOO_LARGE,
                f"Files are limited to {contract.MAX_FILE_SIZE} bytes; this one has {len(data)}.",
            )
        name = filename or "file"
        platform = self.sandbox.platform
        base = f"http://{self.headers.get('Host') or self.sandbox.host_port}"

        def create() -> Response:
            resource = platform.create_file(name, part_type, data, key)
            location = contract.organisation_url(base, platform.organisation_id)
            location += f"{contract.FILES_PATH}/{resource['id']}"
            payload = json.dumps({"data": resource}, ensure_ascii=False).encode("utf-8")
            return 201, [("Location", location)], payload

        # The multipart boundary differs on every retry: fingerprint the file.
        print_ = fingerprint("POST", contract.FILES_PATH, f"{name}\0{part_type}\0".encode() + data)
        return self._create(client_id, key, print_, create)

    # -- control endpoints -----------------------------------------------------

    def _control(self, method: str, path: str, query: str, body: bytes | None) -> None:
        sandbox = self.sandbox
        if path == "/":
            text = _HELLO.format(
                url=sandbox.url,
                oauth=OAUTH_PATH,
                flow=sandbox.oauth_flow,
                organisation=sandbox.organisation_id,
            )
            self._write(200, text.encode(), "text/plain; charset=utf-8", [])
            return
        if body is None:
            self.close_connection = True
            self._control_answer(413, {"error": "body too large"})
            return
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            status, answer = self._control_route(method, path[len(CONTROL_PREFIX) :], payload)
        except (ValueError, KeyError, TypeError) as error:
            status, answer = 400, {"error": str(error)}
        except Exception as error:  # a bug: say so instead of dropping the connection
            logger.exception("MMC sandbox control %s %s failed", method, path)
            status, answer = 500, {"error": repr(error)}
        if isinstance(answer, bytes):
            self._write(status, answer, "application/octet-stream", [])
        else:
            self._control_answer(status, answer)

    def _control_answer(self, status: int, answer: Any) -> None:
        self._write(status, json.dumps(answer).encode(), _JSON, [])

    def _control_route(self, method: str, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
        sandbox = self.sandbox
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "GET":
            if parts == ["state"]:
                return 200, sandbox.state()
            if parts == ["requests"]:
                return 200, sandbox.requests_log
            if parts == ["webhooks"]:
                return 200, sandbox.webhook_log
            if len(parts) == 2 and parts[0] == "files":
                stored = sandbox.platform.file_content(parts[1])
                if stored is None:
                    return 404, {"error": f"no file {parts[1]}"}
                return 200, stored.content
            return 404, {"error": f"no control endpoint GET {path}"}
        if method != "POST":
            return 405, {"error": "use GET or POST"}
        if parts == ["reply"]:
            result = sandbox.reply(
                payload["number"],
                payload.get("text", ""),
                channel_group=str(payload.get("channelGroup", "7")),
                channel_type=payload.get("channelType", "WHATSAPP"),
                files=payload.get("files", ()),
            )
            return 201, result
        if len(parts) == 3 and parts[0] == "agents" and parts[2] == "endpoint":
            sandbox.set_agent_endpoint(parts[1], payload.get("url"))
            return 200, {"agent_id": parts[1], "url": payload.get("url")}
        if parts == ["faults"]:
            if payload.get("clear"):
                sandbox.faults.clear()
            elif "configure" in payload:
                sandbox.faults.configure(**payload["configure"])
            else:
                sandbox.faults.inject(
                    payload["kind"],
                    count=payload.get("count", 1),
                    path=payload.get("path"),
                    method=payload.get("method"),
                    retry_after=payload.get("retry_after", 1),
                )
            return 200, {"injected": sandbox.faults.injected}
        if parts == ["expire-tokens"]:
            sandbox.expire_tokens()
            return 200, {"expired": True}
        if parts == ["reset"]:
            sandbox.reset()
            return 200, {"reset": True}
        if parts == ["status"]:
            snapshot = sandbox.set_status(
                payload["kind"], str(payload["id"]), payload["status"], payload.get("failure")
            )
            return 200, snapshot
        if len(parts) == 3 and parts[0] == "dialogues" and parts[2] == "close":
            snapshot = sandbox.close_dialogue(parts[1], payload.get("closedBy", "RECIPIENT"))
            return 200, snapshot
        if parts == ["wait"]:
            idle = sandbox.wait_for_webhooks(float(payload.get("timeout", 10)))
            return 200, {"idle": idle}
        return 404, {"error": f"no control endpoint POST {path}"}
