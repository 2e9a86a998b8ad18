"""The ``MMC`` setting: defaults, normalisation and the one object that reads it.

This module is the only place that knows the setting's key names. Everything
else reads ``mmc_settings.<KEY>``. The object is rebuilt when Django's
``setting_changed`` signal reports a new ``MMC`` (so ``override_settings``
works in tests), and reading it never raises on a bad configuration: problems
are reported by the system checks in :mod:`django_mmc.checks`, and by
:class:`~django_mmc.exceptions.MMCConfigurationError` only when a value that
is missing is actually needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.dateparse import parse_datetime

from . import contract
from .dialect import Dialect, DialectError, load_dialect

SETTING_NAME = "MMC"

#: Every key of the ``MMC`` setting, with its default. The configuration
#: reference in the docs is checked against this table by the test suite.
DEFAULTS: dict[str, Any] = {
    # Where the platform is.
    "BASE_URL": contract.DEFAULT_BASE_URL,
    "OAUTH_BASE_URL": contract.DEFAULT_OAUTH_BASE_URL,
    "OAUTH_FLOW": contract.DEFAULT_OAUTH_FLOW,
    "SCOPE": contract.DEFAULT_SCOPE,
    # The platform's dialect (django_mmc.dialect): overrides of the contract's
    # assumed paths, query grammar, names and signature scheme.
    "CONTRACT": None,
    # Channel groups and templates the platform does not list, declared here:
    # {"channel_groups": [{"id", "name", "channel_types"}], "templates": [...]}.
    "DIRECTORY": None,
    # Credentials of the organisation's service account.
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    "ORGANISATION_ID": None,
    # Dialogue agents this site plays: key -> {"ID": ..., "WEBHOOK_SECRETS": [...]}.
    "AGENTS": {},
    "DEFAULT_AGENT": None,
    "DEFAULT_CHANNEL_GROUP": None,
    "DEFAULT_CHANNEL_TYPE": "WHATSAPP",
    # HTTP.
    "TIMEOUT": (5.0, 30.0),
    "RATE_LIMIT": 40,
    "TOKEN_REFRESH_MARGIN": 60,
    "CACHE_ALIAS": "default",
    # Retries of sends (Celery's exponential backoff with full jitter).
    "MAX_RETRIES": 8,
    "RETRY_BACKOFF": 2,
    "RETRY_BACKOFF_MAX": 600,
    "RETRY_AFTER_MAX": 900,
    # The outbox sweeper and status polling.
    "OUTBOX_DELAY": 60,
    "SEND_LEASE": 120,
    "POLL_AFTER": 300,
    "POLL_BATCH_SIZE": contract.MAX_FILTER_IDS,
    "POLL_MAX_AGE": 7 * 24 * 3600,
    # Celery.
    "QUEUE": None,
    # Webhooks.
    "WEBHOOK_MAX_BODY_SIZE": 256 * 1024,
    "WEBHOOK_EVENT_RETENTION_DAYS": 30,
    "EVENT_WAIT_MAX_AGE": 3600,
    # Until when a refused delivery's shape is logged (headers, signature
    # shape, schemes tried): an ISO 8601 timestamp with a timezone, or None.
    "WEBHOOK_DIAGNOSIS_UNTIL": None,
    # Bulk sends.
    "BULK_CHUNK_SIZE": 500,
    "SEND_BATCH_SIZE": 25,
    # Priorities: priority -> Celery queue name; priorities not listed use QUEUE.
    "PRIORITY_QUEUES": {},
    # Channel fallback: the order to try channel types in, and the platform
    # failure codes another channel can fix.
    "FALLBACK_CHANNEL_TYPES": [],
    "FALLBACK_FAILURE_CODES": ["NOT_ON_CHANNEL", "RECIPIENT_UNREACHABLE"],
    # The customer-care window: free text only within this many hours of the
    # recipient's last message, on these channel types.
    "CARE_WINDOW_HOURS": 24,
    "CARE_WINDOW_CHANNEL_TYPES": ["WHATSAPP"],
    "ENFORCE_CARE_WINDOW": True,
    # Consent.
    "OPT_OUT_KEYWORDS": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"],
    "OPT_IN_KEYWORDS": ["START", "UNSTOP", "SUBSCRIBE"],
    "ALLOW_TRANSACTIONAL_TO_OPTED_OUT": True,
}


@dataclass(frozen=True)
class Rule:
    """What the system checks (:mod:`django_mmc.checks`) require of one key:
    a ``kind`` of value (the checks have one validator per kind), the check
    id a wrong value is reported under, and for numbers their range."""

    kind: str
    check_id: str
    minimum: float = 0
    strict: bool = True  # numbers: above ``minimum``, else at least it
    whole: bool = False
    maximum: float | None = None


def _number(check_id: str, **range_: Any) -> Rule:
    return Rule("number", check_id, **range_)


#: The rule of every key of :data:`DEFAULTS`, in one table (a test fails on
#: a key without one).
RULES: dict[str, Rule] = {
    "BASE_URL": Rule("url", "django_mmc.E007"),
    "OAUTH_BASE_URL": Rule("url", "django_mmc.E007"),
    "OAUTH_FLOW": Rule("text", "django_mmc.E013"),
    "SCOPE": Rule("text", "django_mmc.E013"),
    "CONTRACT": Rule("dialect", "django_mmc.E019"),
    "DIRECTORY": Rule("directory", "django_mmc.E023"),
    "CLIENT_ID": Rule("credential", "django_mmc.E002"),
    "CLIENT_SECRET": Rule("credential", "django_mmc.E002"),
    "ORGANISATION_ID": Rule("credential", "django_mmc.E003"),
    "AGENTS": Rule("agents", "django_mmc.E004"),
    "DEFAULT_AGENT": Rule("agent_key", "django_mmc.E006"),
    "DEFAULT_CHANNEL_GROUP": Rule("optional_id", "django_mmc.E017"),
    "DEFAULT_CHANNEL_TYPE": Rule("text", "django_mmc.E013"),
    "TIMEOUT": Rule("timeout", "django_mmc.E008"),
    "RATE_LIMIT": Rule("rate", "django_mmc.E009"),
    "TOKEN_REFRESH_MARGIN": _number("django_mmc.E011", strict=False),
    "CACHE_ALIAS": Rule("cache", "django_mmc.E012"),
    "MAX_RETRIES": _number("django_mmc.E010", strict=False, whole=True),
    "RETRY_BACKOFF": _number("django_mmc.E010"),
    "RETRY_BACKOFF_MAX": _number("django_mmc.E010"),
    "RETRY_AFTER_MAX": _number("django_mmc.E010"),
    "OUTBOX_DELAY": _number("django_mmc.E011"),
    "SEND_LEASE": _number("django_mmc.E011"),
    "POLL_AFTER": _number("django_mmc.E011"),
    "POLL_BATCH_SIZE": _number("django_mmc.E011", minimum=1, strict=False, whole=True,
                               maximum=contract.MAX_FILTER_IDS),
    "POLL_MAX_AGE": _number("django_mmc.E011"),
    "QUEUE": Rule("optional_text", "django_mmc.E017"),
    "WEBHOOK_MAX_BODY_SIZE": _number("django_mmc.E011"),
    "WEBHOOK_EVENT_RETENTION_DAYS": _number("django_mmc.E011"),
    "EVENT_WAIT_MAX_AGE": _number("django_mmc.E011"),
    "WEBHOOK_DIAGNOSIS_UNTIL": Rule("until", "django_mmc.E022"),
    "BULK_CHUNK_SIZE": _number("django_mmc.E011"),
    "SEND_BATCH_SIZE": _number("django_mmc.E011", minimum=1, strict=False, whole=True),
    "PRIORITY_QUEUES": Rule("queues", "django_mmc.E016"),
    "FALLBACK_CHANNEL_TYPES": Rule("channel_types", "django_mmc.E015"),
    "FALLBACK_FAILURE_CODES": Rule("words", "django_mmc.E014"),
    "CARE_WINDOW_HOURS": _number("django_mmc.E011"),
    "CARE_WINDOW_CHANNEL_TYPES": Rule("channel_types", "django_mmc.E015"),
    "ENFORCE_CARE_WINDOW": Rule("flag", "django_mmc.E018"),
    "OPT_OUT_KEYWORDS": Rule("words", "django_mmc.E014"),
    "OPT_IN_KEYWORDS": Rule("words", "django_mmc.E014"),
    "ALLOW_TRANSACTIONAL_TO_OPTED_OUT": Rule("flag", "django_mmc.E018"),
}


def parse_until(value: Any) -> datetime | None:
    """An aware datetime from a timestamp setting (``"2026-12-04T12:00Z"``, or
    an aware ``datetime``); ``None`` for anything else, a naive time included."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime) and value.tzinfo is not None \
            and value.utcoffset() is not None:
        return value
    return None


@dataclass(frozen=True)
class Agent:
    """A dialogue agent this site plays on the platform.

    ``webhook_secrets`` is kept out of the repr so it cannot leak into logs or
    error reports.
    """

    key: str
    id: str
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)

    def __str__(self) -> str:
        return f"{self.key} (agent {self.id})"


class MMCSettings:
    """Read-only view of the ``MMC`` setting with defaults filled in."""

    def __init__(self, user_settings: dict[str, Any] | None = None) -> None:
        self._user = user_settings
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user is None:
            value = getattr(settings, SETTING_NAME, {})
            self._user = value if isinstance(value, dict) else {}
        return self._user

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings) - set(DEFAULTS))

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid MMC setting: {name!r}")
        if name not in self._cache:
            self._cache[name] = self.user_settings.get(name, DEFAULTS[name])
        return self._cache[name]

    def __repr__(self) -> str:
        # Never show values: several of them are secrets.
        return f"<MMCSettings keys={sorted(self.user_settings)}>"

    @property
    def agents(self) -> dict[str, Agent]:
        """The configured agents, normalised. Malformed entries are skipped
        here; the system checks report them."""
        if "_agents" not in self._cache:
            agents: dict[str, Agent] = {}
            raw = self.AGENTS if isinstance(self.AGENTS, dict) else {}
            for key, conf in raw.items():
                if not isinstance(conf, dict) or conf.get("ID") in (None, ""):
                    continue
                secrets = conf.get("WEBHOOK_SECRETS") or ()
                if isinstance(secrets, str):
                    secrets = (secrets,)
                agents[str(key)] = Agent(
                    key=str(key),
                    id=str(conf["ID"]),
                    webhook_secrets=tuple(s for s in secrets if isinstance(s, str) and s),
                )
            self._cache["_agents"] = agents
        return self._cache["_agents"]

    def get_agent(self, key: str | None = None) -> Agent:
        """The agent for ``key`` (the default agent when ``None``)."""
        from .exceptions import MMCConfigurationError

        key = key or self.DEFAULT_AGENT
        if key and not isinstance(key, str):
            raise MMCConfigurationError(
                f"A dialogue agent is named by its key in MMC['AGENTS'], not by a "
                f"{type(key).__name__}.")
        if not key:
            raise MMCConfigurationError(
                "No dialogue agent given and MMC['DEFAULT_AGENT'] is not set."
            )
        try:
            return self.agents[key]
        except KeyError:
            raise MMCConfigurationError(
                f"Unknown dialogue agent {key!r}: add it to MMC['AGENTS'] "
                f"with its platform 'ID' and 'WEBHOOK_SECRETS'."
            ) from None

    def agent_by_platform_id(self, agent_id: str) -> Agent | None:
        for agent in self.agents.values():
            if agent.id == str(agent_id):
                return agent
        return None

    @property
    def timeout(self) -> tuple[float, float]:
        value = self.TIMEOUT
        if isinstance(value, (int, float)):
            return (float(value), float(value))
        connect, read = value
        return (float(connect), float(read))

    @property
    def dialect(self) -> Dialect:
        """The platform's dialect that ``CONTRACT`` selects. A value that
        selects none raises :class:`~django_mmc.exceptions.MMCConfigurationError`
        (the system checks report it first, as ``django_mmc.E019``-``E021``)."""
        if "_dialect" not in self._cache:
            from .exceptions import MMCConfigurationError

            try:
                self._cache["_dialect"] = load_dialect(self.CONTRACT)
            except DialectError as err:
                raise MMCConfigurationError(f"MMC['CONTRACT'] is not valid: {err}") from None
        return self._cache["_dialect"]

    @property
    def webhook_diagnosis_until(self) -> datetime | None:
        """When the diagnosis of refused webhook deliveries ends; ``None``
        when it is off or the value is not a timestamp with a timezone."""
        return parse_until(self.WEBHOOK_DIAGNOSIS_UNTIL)

    @property
    def token_url(self) -> str:
        return self.dialect.token_url_for(self.OAUTH_BASE_URL, self.OAUTH_FLOW)

    def require(self, *names: str) -> None:
        """Raise a configuration error naming every missing required key."""
        from .exceptions import MMCConfigurationError

        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            keys = ", ".join(f"MMC[{n!r}]" for n in missing)
            raise MMCConfigurationError(
                f"django_mmc needs {keys} to talk to the platform; "
                "set them in your Django settings."
            )

    def secret_values(self) -> list[str]:
        """Every configured secret, for log and page scrubbing."""
        values = [self.CLIENT_SECRET] if self.CLIENT_SECRET else []
        for agent in self.agents.values():
            values.extend(agent.webhook_secrets)
        return [v for v in values if isinstance(v, str) and v]


mmc_settings = MMCSettings()


def reload_settings() -> None:
    global mmc_settings
    mmc_settings.__init__()  # type: ignore[misc]


@receiver(setting_changed)
def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        reload_settings()
