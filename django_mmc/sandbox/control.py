"""The sandbox's own control endpoints below ``/_sandbox`` (plain JSON, no auth).

Tests in other processes and the demo drive the recipient's and the
platform's side through these. Like the organisation API they are a table
(:data:`CONTROL_ROUTES`): method, path template, handler. A handler takes
the sandbox, the JSON payload and the path parameters, and returns
``(status, answer)``; bytes are sent as a file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .defaults import CONTROL_PREFIX
from .routes import compile_path

if TYPE_CHECKING:
    from .server import Sandbox

Handler = Callable[..., tuple[int, Any]]

HELLO = """MMC sandbox: a local stand-in for the Message My Customer platform.

OAuth token:      POST {token_url}
API:              {organisation_url}/...
Control (JSON):   POST {url}{control}/reply | {control}/agents/<id>/endpoint | {control}/faults
                  POST {url}{control}/status | {control}/dialogues/<id>/close
                  POST {url}{control}/expire-tokens | {control}/reset | {control}/wait
                  GET  {url}{control}/state | {control}/requests | {control}/files/<id>
"""


def hello(sandbox: Sandbox) -> str:
    """What ``GET /`` says: where everything is."""
    return HELLO.format(
        url=sandbox.url,
        token_url=sandbox.token_url,
        organisation_url=sandbox.organisation_url,
        control=CONTROL_PREFIX,
    )


def _file(sandbox: Sandbox, payload: dict[str, Any], file_id: str) -> tuple[int, Any]:
    stored = sandbox.platform.file_content(file_id)
    if stored is None:
        return 404, {"error": f"no file {file_id}"}
    return 200, stored.content


def _reply(sandbox: Sandbox, payload: dict[str, Any]) -> tuple[int, Any]:
    result = sandbox.reply(
        payload["number"],
        payload.get("text", ""),
        channel_group=str(payload.get("channelGroup", "7")),
        channel_type=payload.get("channelType", "WHATSAPP"),
        files=payload.get("files", ()),
    )
    return 201, result


def _endpoint(sandbox: Sandbox, payload: dict[str, Any], agent_id: str) -> tuple[int, Any]:
    sandbox.set_agent_endpoint(agent_id, payload.get("url"))
    return 200, {"agent_id": agent_id, "url": payload.get("url")}


def _faults(sandbox: Sandbox, payload: dict[str, Any]) -> tuple[int, Any]:
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


def _expire_tokens(sandbox: Sandbox, payload: dict[str, Any]) -> tuple[int, Any]:
    sandbox.expire_tokens()
    return 200, {"expired": True}


def _reset(sandbox: Sandbox, payload: dict[str, Any]) -> tuple[int, Any]:
    sandbox.reset()
    return 200, {"reset": True}


def _status(sandbox: Sandbox, payload: dict[str, Any]) -> tuple[int, Any]:
    snapshot = sandbox.set_status(
        payload["kind"], str(payload["id"]), payload["status"], payload.get("failure")
    )
    return 200, snapshot


def _close(sandbox: Sandbox, payload: dict[str, Any], dialogue_id: str) -> tuple[int, Any]:
    return 200, sandbox.close_dialogue(dialogue_id, payload.get("closedBy", "RECIPIENT"))


def _wait(sandbox: Sandbox, payload: dict[str, Any]) -> tuple[int, Any]:
    return 200, {"idle": sandbox.wait_for_webhooks(float(payload.get("timeout", 10)))}


CONTROL_ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/state", lambda sandbox, payload: (200, sandbox.state())),
    ("GET", "/requests", lambda sandbox, payload: (200, sandbox.requests_log)),
    ("GET", "/webhooks", lambda sandbox, payload: (200, sandbox.webhook_log)),
    ("GET", "/files/{file_id}", _file),
    ("POST", "/reply", _reply),
    ("POST", "/agents/{agent_id}/endpoint", _endpoint),
    ("POST", "/faults", _faults),
    ("POST", "/expire-tokens", _expire_tokens),
    ("POST", "/reset", _reset),
    ("POST", "/status", _status),
    ("POST", "/dialogues/{dialogue_id}/close", _close),
    ("POST", "/wait", _wait),
]
_COMPILED = [(method, compile_path(path), handler) for method, path, handler in CONTROL_ROUTES]


def dispatch(sandbox: Sandbox, method: str, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
    """Run the control endpoint for ``path`` (below the prefix), or 404/405."""
    if method not in ("GET", "POST"):
        return 405, {"error": "use GET or POST"}
    normalised = "/" + path.strip("/")
    for route_method, pattern, handler in _COMPILED:
        found = pattern.match(normalised)
        if found is not None and route_method == method:
            params = {name: unquote(value) for name, value in found.groupdict().items()}
            return handler(sandbox, payload, **params)
    return 404, {"error": f"no control endpoint {method} {path}"}
