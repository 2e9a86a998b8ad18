"""Default values of the MMC sandbox.

These are fake credentials for a local stand-in of the platform: printing or
committing them is harmless. The pytest plugin, the demo and the docs all use
these names so a change here changes them everywhere.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
DEFAULT_ORGANISATION_ID = "1001"

#: Dialogue agents configured when ``agents`` is not given: id -> secret/endpoint.
DEFAULT_AGENTS: dict[str, dict[str, str | None]] = {
    "17": {"secret": "agent-17-secret", "endpoint": None},
    "18": {"secret": "agent-18-secret", "endpoint": None},
}
#: The keys :meth:`Sandbox.mmc_settings` gives these agents in ``MMC["AGENTS"]``.
DEFAULT_AGENT_KEYS: dict[str, str] = {"17": "support", "18": "sales"}
#: The agent that receives ``notification.status`` events.
DEFAULT_NOTIFICATION_AGENT = "17"

DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_PROGRESS_INTERVAL = 0.05
DEFAULT_WEBHOOK_RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1, 2, 4, 8)
#: Concurrent webhook deliveries, so one slow receiver does not stall the rest.
DEFAULT_WEBHOOK_WORKERS = 4
#: Seconds a receiver has to answer one delivery (contract section 8).
WEBHOOK_TIMEOUT = 10.0

#: Page size of lists when the request names none; ``filter[id]`` polls
#: default to the most ids one poll may carry, so they are never truncated.
DEFAULT_PAGE_SIZE = 20

#: Seconds an idle keep-alive connection is kept open.
IDLE_CONNECTION_TIMEOUT = 60.0

DEFAULT_FIXTURES = Path(__file__).with_name("fixtures.json")

#: Where the sandbox's own control endpoints live (plain JSON, no auth).
CONTROL_PREFIX = "/_sandbox"
#: The OAuth base URL is this path below the sandbox's URL.
OAUTH_PATH = "/oauth2/v2.0"
