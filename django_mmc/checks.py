"""System checks for the ``MMC`` setting (``manage.py check``).

Every problem has a stable id, says what is wrong and how to fix it. The
configuration reference in the docs lists them all.
"""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import DEFAULTS, SETTING_NAME, MMCSettings

#: Every check id with a one-line summary; the docs' reference is tested
#: against this table.
CHECK_IDS = {
    "django_mmc.E001": "The MMC setting is not a dict.",
    "django_mmc.E002": "CLIENT_ID or CLIENT_SECRET is missing.",
    "django_mmc.E003": "ORGANISATION_ID is missing.",
    "django_mmc.E004": "AGENTS is malformed, or an agent has no platform ID.",
    "django_mmc.E005": "An agent has no webhook secret.",
    "django_mmc.E006": "DEFAULT_AGENT is not one of AGENTS.",
    "django_mmc.E007": "BASE_URL or OAUTH_BASE_URL is not an absolute http(s) URL.",
    "django_mmc.E008": "TIMEOUT is not a positive number or a (connect, read) pair.",
    "django_mmc.E009": "RATE_LIMIT is not a number of at least 1 (per second) or None.",
    "django_mmc.E010": "A retry setting is not a valid number.",
    "django_mmc.E011": "A polling, outbox or webhook setting is not a valid number.",
    "django_mmc.E012": "CACHE_ALIAS names no cache in CACHES.",
    "django_mmc.E013": "OAUTH_FLOW, SCOPE or DEFAULT_CHANNEL_TYPE is not a non-empty string.",
    "django_mmc.W001": "MMC has a key django_mmc does not know (a typo?).",
    "django_mmc.W002": "The longest retry delay exceeds the Redis broker's visibility timeout.",
    "django_mmc.W003": "The cache is local to one process: no shared token or rate limit.",
    "django_mmc.W004": "A platform URL uses plain http to a host that is not local.",
    "django_mmc.W005": "No Celery broker is configured in this process.",
    "django_mmc.W006": "A worker shares a SQLite database that is not set up for it.",
}

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "testserver"}


def _error(id_: str, msg: str, hint: str) -> Error:
    return Error(msg, hint=hint, id=id_, obj=SETTING_NAME)


def _warning(id_: str, msg: str, hint: str) -> Warning:
    return Warning(msg, hint=hint, id=id_, obj=SETTING_NAME)


def _is_number(value: Any, *, minimum: float = 0, strict: bool = True) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value > minimum if strict else value >= minimum


@register(Tags.compatibility)
def check_mmc_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    raw = getattr(settings, SETTING_NAME, None)
    if not isinstance(raw, dict):
        return [_error(
            "django_mmc.E001",
            f"settings.MMC must be a dict, not {type(raw).__name__}.",
            "Add MMC = {'CLIENT_ID': ..., 'CLIENT_SECRET': ..., 'ORGANISATION_ID': ..., "
            "'AGENTS': {...}} to your settings.",
        )]
    conf = MMCSettings(raw)
    messages: list[Error | Warning] = []
    messages += _check_credentials(conf)
    messages += _check_agents(conf, raw)
    messages += _check_urls(conf)
    messages += _check_numbers(conf)
    messages += _check_cache(conf)
    messages += _check_unknown_keys(conf)
    messages += _check_visibility_timeout(conf)
    messages += _check_celery_app()
    messages += _check_sqlite_for_workers()
    return messages


def _check_credentials(conf: MMCSettings) -> list[Error]:
    errors = []
    missing = [k for k in ("CLIENT_ID", "CLIENT_SECRET") if not conf.user_settings.get(k)]
    if missing:
        errors.append(_error(
            "django_mmc.E002",
            f"MMC is missing {' and '.join(missing)}.",
            "Set the service account's oauth_sa_client_id and oauth_sa_client_secret, "
            "e.g. from environment variables; never commit them.",
        ))
    if not conf.user_settings.get("ORGANISATION_ID"):
        errors.append(_error(
            "django_mmc.E003",
            "MMC is missing ORGANISATION_ID.",
            "Set MMC['ORGANISATION_ID'] to your organisation's id on the platform.",
        ))
    for key in ("OAUTH_FLOW", "SCOPE", "DEFAULT_CHANNEL_TYPE"):
        value = getattr(conf, key)
        if not isinstance(value, str) or not value.strip():
            errors.append(_error(
                "django_mmc.E013",
                f"MMC['{key}'] must be a non-empty string, not {value!r}.",
                f"Remove MMC['{key}'] to use the default ({DEFAULTS[key]!r}).",
            ))
    return errors


def _check_agents(conf: MMCSettings, raw: dict[str, Any]) -> list[Error]:
    errors = []
    agents = raw.get("AGENTS", {})
    if not isinstance(agents, dict):
        return [_error(
            "django_mmc.E004",
            "MMC['AGENTS'] must be a dict of agent key -> {'ID': ..., 'WEBHOOK_SECRETS': [...]}.",
            "For example: 'AGENTS': {'support': {'ID': '17', 'WEBHOOK_SECRETS': [env('SECRET')]}}",
        )]
    for key, agent in agents.items():
        if not isinstance(agent, dict) or agent.get("ID") in (None, ""):
            errors.append(_error(
                "django_mmc.E004",
                f"MMC['AGENTS'][{key!r}] has no platform 'ID'.",
                "Give each agent the dialogue agent id the platform assigned to it.",
            ))
            continue
        secrets = agent.get("WEBHOOK_SECRETS")
        if isinstance(secrets, str):
            secrets = [secrets]
        if not secrets or not all(isinstance(s, str) and s for s in secrets):
            errors.append(_error(
                "django_mmc.E005",
                f"MMC['AGENTS'][{key!r}] has no usable WEBHOOK_SECRETS: its webhook endpoint "
                "rejects every delivery.",
                "Set WEBHOOK_SECRETS to a list holding the agent's dial_agent_client_secret "
                "(during a rotation: the new secret first, then the old one).",
            ))
    default = raw.get("DEFAULT_AGENT")
    if default is not None and default not in agents:
        errors.append(_error(
            "django_mmc.E006",
            f"MMC['DEFAULT_AGENT'] is {default!r}, which is not a key of MMC['AGENTS'].",
            f"Use one of: {', '.join(map(repr, agents)) or 'add an agent first'}.",
        ))
    return errors


def _check_urls(conf: MMCSettings) -> list[Error | Warning]:
    messages: list[Error | Warning] = []
    for key in ("BASE_URL", "OAUTH_BASE_URL"):
        value = getattr(conf, key)
        parts = urlsplit(value) if isinstance(value, str) else None
        if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
            messages.append(_error(
                "django_mmc.E007",
                f"MMC['{key}'] is not an absolute http(s) URL: {value!r}.",
                f"Use a URL such as {DEFAULTS[key]!r}, or remove the key for the default.",
            ))
        elif parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            messages.append(_warning(
                "django_mmc.W004",
                f"MMC['{key}'] sends credentials over plain http to {parts.hostname}.",
                "Use https for anything but a local sandbox.",
            ))
    return messages


def _check_numbers(conf: MMCSettings) -> list[Error]:
    errors = []
    timeout = conf.TIMEOUT
    if isinstance(timeout, (tuple, list)):
        # A pair exactly: MMCSettings.timeout unpacks (connect, read).
        valid_timeout = len(timeout) == 2 and all(_is_number(v) for v in timeout)
    else:
        valid_timeout = _is_number(timeout)
    if not valid_timeout:
        errors.append(_error(
            "django_mmc.E008",
            f"MMC['TIMEOUT'] must be seconds or a (connect, read) pair, not {timeout!r}.",
            "For example (5, 30). A request without a timeout can hang a worker forever.",
        ))
    rate = conf.RATE_LIMIT
    # At least 1: the limiter counts whole requests per one-second window, so
    # a smaller limit could never admit a single request.
    if rate is not None and not _is_number(rate, minimum=1, strict=False):
        errors.append(_error(
            "django_mmc.E009",
            f"MMC['RATE_LIMIT'] must be a number of requests per second of at least 1, "
            f"or None, not {rate!r}.",
            "Stay under the platform's limit for your organisation, e.g. 40.",
        ))
    retry_rules = {
        "MAX_RETRIES": (0, False),
        "RETRY_BACKOFF": (0, True),
        "RETRY_BACKOFF_MAX": (0, True),
        "RETRY_AFTER_MAX": (0, True),
    }
    for key, (minimum, strict) in retry_rules.items():
        value = getattr(conf, key)
        if not _is_number(value, minimum=minimum, strict=strict) or (
            key == "MAX_RETRIES" and not isinstance(value, int)
        ):
            errors.append(_error(
                "django_mmc.E010",
                f"MMC['{key}'] must be a {'positive' if strict else 'non-negative'} number, "
                f"not {value!r}.",
                f"Remove it to use the default ({DEFAULTS[key]!r}).",
            ))
    for key in ("OUTBOX_DELAY", "SEND_LEASE", "POLL_AFTER", "POLL_MAX_AGE",
                "WEBHOOK_MAX_BODY_SIZE", "WEBHOOK_EVENT_RETENTION_DAYS", "EVENT_WAIT_MAX_AGE",
                "BULK_CHUNK_SIZE", "TOKEN_REFRESH_MARGIN"):
        value = getattr(conf, key)
        strict = key != "TOKEN_REFRESH_MARGIN"
        if not _is_number(value, strict=strict):
            errors.append(_error(
                "django_mmc.E011",
                f"MMC['{key}'] must be a {'positive' if strict else 'non-negative'} number, "
                f"not {value!r}.",
                f"Remove it to use the default ({DEFAULTS[key]!r}).",
            ))
    send_batch = conf.SEND_BATCH_SIZE
    if not (isinstance(send_batch, int) and not isinstance(send_batch, bool) and send_batch >= 1):
        errors.append(_error(
            "django_mmc.E011",
            f"MMC['SEND_BATCH_SIZE'] must be a whole number of at least 1, not {send_batch!r}.",
            f"Remove it to use the default ({DEFAULTS['SEND_BATCH_SIZE']!r}).",
        ))
    batch = conf.POLL_BATCH_SIZE
    if not (
        isinstance(batch, int)
        and not isinstance(batch, bool)
        and 1 <= batch <= DEFAULTS["POLL_BATCH_SIZE"]
    ):
        errors.append(_error(
            "django_mmc.E011",
            f"MMC['POLL_BATCH_SIZE'] must be a whole number from 1 to "
            f"{DEFAULTS['POLL_BATCH_SIZE']}, not {batch!r}.",
            "The platform answers at most that many ids per status poll.",
        ))
    return errors


def _check_cache(conf: MMCSettings) -> list[Error | Warning]:
    alias = conf.CACHE_ALIAS
    caches = getattr(settings, "CACHES", {"default": {}})
    if not isinstance(alias, str) or alias not in caches:
        return [_error(
            "django_mmc.E012",
            f"MMC['CACHE_ALIAS'] is {alias!r}, but CACHES has no such cache.",
            f"Use one of: {', '.join(map(repr, caches))}.",
        )]
    backend = caches[alias].get("BACKEND", "django.core.cache.backends.locmem.LocMemCache")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [_warning(
            "django_mmc.W003",
            f"MMC['CACHE_ALIAS'] names the cache {alias!r} ({backend.rsplit('.', 1)[-1]}), "
            "which is local to one process: "
            "each worker fetches its own token and the rate limit is per process.",
            "Point MMC['CACHE_ALIAS'] at a shared cache such as Redis or Memcached.",
        )]
    return []


def _check_unknown_keys(conf: MMCSettings) -> list[Warning]:
    warnings = []
    for key in conf.unknown_keys:
        close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else "See the configuration reference."
        warnings.append(_warning(
            "django_mmc.W001", f"MMC has an unknown key {key!r}; it is ignored.", hint
        ))
    return warnings


def _check_visibility_timeout(conf: MMCSettings) -> list[Warning]:
    try:
        from celery import current_app
    except ImportError:  # pragma: no cover - celery is a dependency
        return []
    broker = str(current_app.conf.broker_url or "")
    if not broker.startswith(("redis://", "rediss://", "redis+socket://", "sqs://")):
        return []
    options = current_app.conf.broker_transport_options or {}
    visibility = options.get("visibility_timeout", 3600)
    longest = max(
        v for v in (conf.RETRY_BACKOFF_MAX, conf.RETRY_AFTER_MAX) if _is_number(v)
    ) if any(_is_number(v) for v in (conf.RETRY_BACKOFF_MAX, conf.RETRY_AFTER_MAX)) else 0
    if longest >= visibility:
        return [_warning(
            "django_mmc.W002",
            f"The longest retry delay ({longest}s, RETRY_BACKOFF_MAX/RETRY_AFTER_MAX) is not "
            f"shorter than the broker's visibility timeout ({visibility}s): Celery would run "
            "the delayed task twice.",
            "Lower MMC['RETRY_BACKOFF_MAX'] and MMC['RETRY_AFTER_MAX'], or raise "
            "broker_transport_options['visibility_timeout'].",
        )]
    return []


def _check_celery_app() -> list[Warning]:
    """A web process that never imports the project's Celery app hands
    django_mmc's tasks to Celery's built-in default app, whose broker is a
    RabbitMQ on localhost: sends would silently go nowhere useful."""
    try:
        from celery import current_app
    except ImportError:  # pragma: no cover - celery is a dependency
        return []
    if current_app.conf.broker_url:
        return []
    return [_warning(
        "django_mmc.W005",
        f"No Celery broker is configured in this process (the current Celery app is "
        f"{current_app.main!r}): django_mmc's tasks, sent to MMC['QUEUE'] or Celery's "
        "default queue, would go to Celery's built-in default broker.",
        "Load your Celery app when Django starts, as Celery's Django guide shows: "
        "'from .celery import app as celery_app' in your project package's __init__.py, "
        "with CELERY_BROKER_URL in the settings.",
    )]


#: What a SQLite file needs before a web process and a worker can both write to
#: it: WAL (readers do not block the writer), a busy timeout (a writer waits
#: for the other instead of failing) and IMMEDIATE transactions (the write lock
#: is taken at BEGIN, so no transaction fails upgrading a read lock).
SQLITE_MIN_TIMEOUT = 10


def _check_sqlite_for_workers() -> list[Warning]:
    """A development site on Django's default SQLite settings fails its first
    webhook with "database is locked" once a worker writes at the same time."""
    try:
        from celery import current_app
    except ImportError:  # pragma: no cover - celery is a dependency
        return []
    database = getattr(settings, "DATABASES", {}).get("default", {})
    if not str(database.get("ENGINE", "")).endswith("sqlite3"):
        return []
    if not current_app.conf.broker_url:
        return []  # no worker to share the file with (W005 says why)
    name = str(database.get("NAME", ""))
    if not name or name == ":memory:" or "mode=memory" in name:
        return []  # a database in memory is never shared with a worker process
    options = database.get("OPTIONS") or {}
    missing = []
    if "journal_mode=wal" not in str(options.get("init_command", "")).lower().replace(" ", ""):
        missing.append('"init_command": "PRAGMA journal_mode=WAL;"')
    timeout = options.get("timeout")
    if not _is_number(timeout, minimum=SQLITE_MIN_TIMEOUT, strict=False):
        missing.append(f'"timeout": {SQLITE_MIN_TIMEOUT * 3}')
    if str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        missing.append('"transaction_mode": "IMMEDIATE"')
    if not missing:
        return []
    return [_warning(
        "django_mmc.W006",
        "DATABASES['default'] is SQLite without the options a Celery worker needs to share "
        f"it: {', '.join(missing)} in its OPTIONS. Webhook events and sends will fail with "
        "'database is locked' while the web process and a worker write at the same time.",
        "Add those OPTIONS for development (see the quickstart), or use PostgreSQL, as "
        "production should.",
    )]
