"""The :class:`Sandbox`: a local MMC platform for tests, the demo and users.

It serves the contract's HTTP API from a thread (standard library
``ThreadingHTTPServer``, one thread per keep-alive connection), moves
notification and message statuses forward on a timer, and pushes signed
webhook events to the agents' endpoints from a small pool of threads::

    with Sandbox() as sandbox:
        sandbox.set_agent_endpoint("17", "http://127.0.0.1:8000/mmc/webhooks/17/")
        settings.MMC = sandbox.mmc_settings()
        ...
        assert sandbox.wait_for_webhooks()

Nothing here imports Django.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import contract
from ..dialect import DIALECTS, Dialect, load_dialect
from .defaults import (
    DEFAULT_AGENT_KEYS,
    DEFAULT_AGENTS,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_FIXTURES,
    DEFAULT_HOST,
    DEFAULT_NOTIFICATION_AGENT,
    DEFAULT_ORGANISATION_ID,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_TOKEN_LIFETIME,
    DEFAULT_WEBHOOK_RETRY_DELAYS,
    DEFAULT_WEBHOOK_WORKERS,
    OAUTH_PATH,
)
from .delivery import Activity, Scheduler, WebhookDispatcher
from .faults import Faults, api_scope
from .handler import Handler
from .listener import ConnectionServer, server_for
from .oauth import TokenEndpoint
from .routes import build_routes
from .state import Agent, Platform, load_fixtures

logger = logging.getLogger("django_mmc.sandbox")

Latency = float | tuple[float, float]


class Sandbox:
    """A stand-in for the MMC platform that follows the contract exactly.

    Construct it, :meth:`start` it (or use it as a context manager), point
    django_mmc at :meth:`mmc_settings`, and drive the recipient's side with
    :meth:`reply`, :meth:`close_dialogue` and :meth:`set_status`.

    Guarantees: every API answer follows ``CONTRACT.md`` (media types, error
    documents, idempotency, dialogue exclusivity); statuses only move
    forward; every webhook is signed with the agent's secret and retried on
    failure; :meth:`stop` joins every thread it started. All methods are
    thread-safe.

    Arguments: ``port=0`` picks a free port. ``agents`` maps agent ids to
    ``{"secret": ..., "endpoint": url-or-None}`` (default: agents 17 and 18).
    ``token_lifetime`` is in seconds and tokens really expire. ``latency``
    (seconds, or a ``(min, max)`` range) is added to every API answer.
    ``progress_interval`` is the time between automatic status steps
    (``None``: statuses move only through :meth:`set_status`);
    ``auto_read=False`` stops automatic steps at ``DELIVERED``.
    ``rate_limit`` is requests per second per client before ``429`` (the
    contract's 50 by default; ``None`` for no limit).
    ``webhook_retry_delays`` are the waits before each redelivery.
    ``fixtures`` is a seed file like the packaged ``fixtures.json``.
    ``notification_agent`` receives ``notification.status`` events.
    ``dialect`` is the platform's dialect it plays: a
    :class:`~django_mmc.dialect.Dialect`, a shipped dialect's name
    (``"filter-operators"``) or a dict of overrides, as ``MMC['CONTRACT']``
    takes them; :meth:`mmc_settings` then carries the matching ``CONTRACT``.
    State and the inspection methods keep our words whatever the dialect.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        organisation_id: str = DEFAULT_ORGANISATION_ID,
        agents: Mapping[str, Mapping[str, str | None]] | None = None,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        latency: Latency = 0.0,
        progress_interval: float | None = DEFAULT_PROGRESS_INTERVAL,
        auto_read: bool = True,
        rate_limit: float | None = contract.SANDBOX_RATE_LIMIT,
        webhook_retry_delays: Sequence[float] = DEFAULT_WEBHOOK_RETRY_DELAYS,
        fixtures: str | Path | None = None,
        *,
        notification_agent: str = DEFAULT_NOTIFICATION_AGENT,
        oauth_flow: str = contract.DEFAULT_OAUTH_FLOW,
        webhook_workers: int = DEFAULT_WEBHOOK_WORKERS,
        verbose: bool = False,
        dialect: Dialect | str | Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(latency, (list, tuple)):
            low, high = (float(v) for v in latency)
            if not 0 <= low <= high:
                raise ValueError("latency range must be (min, max) with 0 <= min <= max")
            self.latency: Latency = (low, high)
        else:
            self.latency = float(latency)
        if progress_interval is not None and progress_interval < 0:
            raise ValueError("progress_interval must be positive or None")
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.organisation_id = str(organisation_id)
        self.oauth_flow = oauth_flow
        self.progress_interval = progress_interval
        self.verbose = verbose
        agent_config = DEFAULT_AGENTS if agents is None else agents
        if not agent_config:
            raise ValueError("the sandbox needs at least one dialogue agent")
        self._agent_defaults = {
            str(agent_id): config.get("endpoint") for agent_id, config in agent_config.items()
        }
        configured = {
            str(agent_id): Agent(str(agent_id), str(config["secret"]), config.get("endpoint"))
            for agent_id, config in agent_config.items()
        }
        if notification_agent not in configured:
            notification_agent = next(iter(configured))
        self.fixtures_path = Path(fixtures) if fixtures is not None else DEFAULT_FIXTURES

        #: The dialect every part reads (paths, query grammar, type and event
        #: names, status words, the signature scheme).
        self.wire = load_dialect(dialect)
        self.routes = build_routes(self.wire)
        self.token_endpoint = TokenEndpoint.from_wire(OAUTH_PATH, oauth_flow, self.wire)
        self.faults = Faults(scope=api_scope(self.routes.organisation_prefix))
        self._activity = Activity()
        self._scheduler = Scheduler()
        self.platform = Platform(
            fixtures=load_fixtures(self.fixtures_path),
            client_id=client_id,
            client_secret=client_secret,
            organisation_id=self.organisation_id,
            agents=configured,
            notification_agent=notification_agent,
            token_lifetime=token_lifetime,
            auto_read=auto_read,
            rate_limit=rate_limit,
            on_event=self._emit,
            on_progress=self._schedule_progress,
            wire=self.wire,
        )
        self._dispatcher = WebhookDispatcher(
            scheduler=self._scheduler,
            activity=self._activity,
            faults=self.faults,
            retry_delays=tuple(webhook_retry_delays),
            workers=webhook_workers,
            agent_target=self._agent_target,
            on_log=self._log_webhook,
            wire=self.wire,
        )
        self._server: ConnectionServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind, then serve and deliver from background threads. Returns self."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("this Sandbox is already started")
            handler = type("SandboxHandler", (Handler,), {"sandbox": self})
            server = server_for(self.host)((self.host, self.port), handler)
            self._server = server
            self.port = server.server_address[1]
            self.platform.base_url = self.url
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="mmc-sandbox-server",
                daemon=True,
            )
            self._thread.start()
            self._scheduler.start()
            self._dispatcher.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering, and join every thread. Idempotent.

        Pending status steps and webhook deliveries are abandoned; a delivery
        already in flight is allowed to finish (at most its 10 s timeout).
        """
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None:
                return
            server.shutdown()
            server.close_connections(timeout=5.0)
            server.server_close()
            if thread is not None:
                thread.join(5.0)
            self._scheduler.stop()
            self._dispatcher.stop()
            self._server = None
            self._thread = None

    def __enter__(self) -> Sandbox:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- addresses and settings ----------------------------------------------

    @property
    def host_port(self) -> str:
        host = self.host
        # Bound to every interface: clients reach it on loopback.
        if host in ("", "0.0.0.0"):  # noqa: S104
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The ``BASE_URL``, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host_port}"

    @property
    def oauth_base_url(self) -> str:
        """The ``OAUTH_BASE_URL``; the token endpoint is ``…/token?p=<flow>``."""
        return f"{self.url}{OAUTH_PATH}"

    @property
    def token_url(self) -> str:
        return self.url + self.token_endpoint.target

    @property
    def organisation_url(self) -> str:
        """The root of every organisation-scoped path."""
        return self.routes.organisation_url(self.url, self.organisation_id)

    def mmc_settings(self, **overrides: Any) -> dict[str, Any]:
        """A ready value for Django's ``MMC`` setting pointing at this sandbox.

        Agents 17 and 18 are ``"support"`` and ``"sales"``; other agent ids
        get the key ``"agent-<id>"``. ``overrides`` replace keys of the result.
        """
        agents = {}
        for agent_id, agent in self.platform.agents.items():
            key = DEFAULT_AGENT_KEYS.get(agent_id, f"agent-{agent_id}")
            agents[key] = {"ID": agent_id, "WEBHOOK_SECRETS": [agent.secret]}
        first_group = next(iter(self.platform.channel_groups.values()))
        channel_types = sorted(first_group.channel_types)
        value = {
            "BASE_URL": self.url,
            "OAUTH_BASE_URL": self.oauth_base_url,
            "OAUTH_FLOW": self.oauth_flow,
            "SCOPE": contract.DEFAULT_SCOPE,
            "CLIENT_ID": self.client_id,
            "CLIENT_SECRET": self.client_secret,
            "ORGANISATION_ID": self.organisation_id,
            "AGENTS": agents,
            "DEFAULT_AGENT": next(iter(agents)),
            "DEFAULT_CHANNEL_GROUP": first_group.id,
            "DEFAULT_CHANNEL_TYPE": "WHATSAPP" if "WHATSAPP" in channel_types else channel_types[0],
        }
        if self.wire is not DIALECTS["default"]:
            shipped = DIALECTS.get(self.wire.name) is self.wire
            value["CONTRACT"] = self.wire.name if shipped else self.wire
        value.update(overrides)
        return value

    # -- agents --------------------------------------------------------------

    def set_agent_endpoint(self, agent_id: str, url: str | None) -> None:
        """Where webhook events for ``agent_id`` are POSTed (None: nowhere)."""
        with self.platform.lock:
            agent = self.platform.agents.get(str(agent_id))
            if agent is None:
                raise KeyError(f"Unknown dialogue agent {agent_id!r}")
            agent.endpoint = url

    def _agent_target(self, agent_id: str) -> tuple[str | None, str] | None:
        with self.platform.lock:
            agent = self.platform.agents.get(agent_id)
            return None if agent is None else (agent.endpoint, agent.secret)

    def restore_agent_endpoints(self) -> None:
        """Point every agent back at the endpoint it was constructed with."""
        for agent_id, endpoint in self._agent_defaults.items():
            self.set_agent_endpoint(agent_id, endpoint)

    # -- the recipient's and the platform's side -------------------------------

    def reply(
        self,
        number: str,
        text: str,
        *,
        channel_group: str = "7",
        channel_type: str = "WHATSAPP",
        files: Sequence[Any] = (),
        by_customer_id: bool = False,
    ) -> dict[str, Any]:
        """The recipient ``number`` writes ``text`` on a channel of a group.

        An open dialogue for ``(number, channel_group)`` gets the message and
        its owner a ``message.received``. Otherwise the platform opens one
        with the group's designated agent (``initiatedBy: RECIPIENT``) and
        sends ``dialogue.opened`` then ``message.received`` (in either order
        when webhook shuffling is on). ``files`` items are uploaded file ids,
        ``(name, content, content_type)`` tuples or
        ``{"name", "content", "contentType"}`` dicts.

        ``by_customer_id=True``: a dialogue the platform opens for it names
        the customer by its customer id (:meth:`customer_id_for`), with the
        number beside it in the linkage's ``meta``, as do the events about it.

        Returns ``{"dialogue_id", "message_id", "agent_id", "opened"}``.
        Raises ``ValueError`` for a bad number, group or channel type.
        """
        return self.platform.reply(
            number, text, channel_group=str(channel_group), channel_type=channel_type, files=files,
            by_customer_id=by_customer_id,
        )

    def customer_id_for(self, number: str) -> str:
        """The platform's customer id of ``number`` (every number gets one
        when first seen): a request may name the recipient by it, in the
        dialect's ``customer_id_type``."""
        return self.platform.customer_id_for(number)

    def close_dialogue(self, dialogue_id: str, closed_by: str = "RECIPIENT") -> dict[str, Any]:
        """Close a dialogue from the platform's side; sends ``dialogue.closed``.

        Closing a closed dialogue changes nothing and sends nothing. Returns
        the dialogue's snapshot; ``KeyError`` for an unknown id.
        """
        return self.platform.close_dialogue(str(dialogue_id), closed_by)

    def set_status(
        self,
        kind: str,
        id: str,
        status: str,
        failure: dict[str, str] | None = None,  # noqa: A002
    ) -> dict[str, Any]:
        """Move a ``"notification"`` or ``"message"`` to ``status`` and report it.

        Statuses move forward only (``ValueError`` otherwise); ``FAILED`` and
        ``EXPIRED`` carry ``failure`` (a default one if not given). Sends
        the ``notification.status``/``message.status`` webhook and returns
        the object's snapshot.
        """
        return self.platform.set_status(kind, str(id), status, failure)

    def expire_tokens(self) -> None:
        """Every token issued so far becomes expired (401 ``TOKEN_EXPIRED``)."""
        self.platform.expire_tokens()

    # -- progress and webhooks -------------------------------------------------

    def _schedule_progress(self, kind: str, object_id: str) -> None:
        interval = self.progress_interval
        if interval is None:
            return
        generation = self._activity.generation
        if not self._activity.add(generation):
            return

        def step() -> None:
            try:
                if generation == self._activity.generation:
                    self.platform.progress(kind, object_id)
            finally:
                self._activity.done(generation)

        self._scheduler.call_later(interval, step)

    def _emit(self, agent_id: str, event: dict[str, Any]) -> None:
        # Built in our words; sent (and kept) in the dialect's.
        event = self.wire.wire_event(event)
        with self.platform.lock:
            self.platform.events.append(event)
        self._dispatcher.submit(agent_id, event)

    def _log_webhook(self, entry: dict[str, Any], generation: int) -> None:
        if generation != self._activity.generation:
            return
        with self.platform.lock:
            self.platform.webhook_log.append(entry)
        if self.verbose:
            logger.info("MMC sandbox webhook: %s", entry)

    def wait_for_webhooks(self, timeout: float = 10) -> bool:
        """Block until no delivery is pending and no status step is scheduled.

        Returns False if that did not happen within ``timeout`` seconds (for
        example a receiver that keeps failing while retries remain).
        """
        return self._activity.wait_idle(timeout)

    # -- inspection ----------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """Successful token grants since start or the last reset."""
        with self.platform.lock:
            return self.platform.token_requests

    @property
    def token_failures(self) -> int:
        """Refused token requests since start or the last reset."""
        with self.platform.lock:
            return self.platform.token_failures

    @property
    def requests_log(self) -> list[dict[str, Any]]:
        """Every API and token request: ``{method, path, status, idempotency_key, time}``."""
        with self.platform.lock:
            return [dict(entry) for entry in self.platform.requests_log]

    @property
    def webhook_log(self) -> list[dict[str, Any]]:
        """One entry per delivery attempt, drop or give-up.

        Keys: ``agent_id, event_id, event_type, attempt, status_code, error,
        delivered, gave_up, dropped, duplicate, url, time``.
        """
        with self.platform.lock:
            return [dict(entry) for entry in self.platform.webhook_log]

    def events(self) -> list[dict[str, Any]]:
        """Every event document the platform produced, delivered or not."""
        with self.platform.lock:
            events = list(self.platform.events)
        return copy.deepcopy(events)

    def notifications(self) -> list[dict[str, Any]]:
        """Snapshots of every notification, oldest first."""
        return self.platform.snapshot()["notifications"]

    def dialogues(self) -> list[dict[str, Any]]:
        """Snapshots of every dialogue, oldest first."""
        return self.platform.snapshot()["dialogues"]

    def messages(self) -> list[dict[str, Any]]:
        """Snapshots of every dialogue message (both directions), oldest first."""
        return self.platform.snapshot()["messages"]

    def files(self) -> list[dict[str, Any]]:
        """Metadata of every uploaded file."""
        return self.platform.snapshot()["files"]

    def state(self) -> dict[str, Any]:
        """Everything at once, as ``GET /_sandbox/state`` returns it."""
        snapshot = self.platform.snapshot()
        snapshot["counts"] = {
            "notifications": len(snapshot["notifications"]),
            "dialogues": len(snapshot["dialogues"]),
            "messages": len(snapshot["messages"]),
            "files": len(snapshot["files"]),
            "requests": len(self.requests_log),
            "webhooks": len(self.webhook_log),
            "pending": self._activity.pending,
        }
        return snapshot

    def reset(self) -> None:
        """Forget all state, counters and faults; keep serving.

        Tokens, objects, stored idempotent responses, logs and pending
        webhooks and status steps are dropped; agents keep their endpoints.
        New ids keep counting up, so no id is ever handed out twice.
        """
        # Clear before the new generation starts, so work scheduled for the
        # new generation is never thrown away (it would count as pending forever).
        self._scheduler.clear()
        self._activity.new_generation()
        self.platform.reset()
        self.faults.clear()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {self.url} {state}>"
