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

from . import contract
from .conf import DEFAULTS, RULES, SETTING_NAME, MMCSettings, Rule

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
    "django_mmc.E011": "A polling, outbox, webhook or care-window setting is not a valid number.",
    "django_mmc.E012": "CACHE_ALIAS names no cache in CACHES.",
    "django_mmc.E013": "OAUTH_FLOW, SCOPE or DEFAULT_CHANNEL_TYPE is not a non-empty string.",
    "django_mmc.E014": "A list of words (keywords, codes) is a string or holds non-strings.",
    "django_mmc.E015": "A list of channel types is a string or holds non-strings.",
    "django_mmc.E016": "PRIORITY_QUEUES is not a dict of priority -> queue name.",
    "django_mmc.E017": "QUEUE or DEFAULT_CHANNEL_GROUP is not a name (or None).",
    "django_mmc.E018": "A yes/no setting is not True or False.",
    "django_mmc.E019": "CONTRACT selects no dialect (not a dict, a shipped name or an importable "
                       "Dialect).",
    "django_mmc.E020": "CONTRACT names an item a dialect does not have.",
    "django_mmc.E021": "A CONTRACT item has a value the dialect cannot use.",
    "django_mmc.E022": "WEBHOOK_DIAGNOSIS_UNTIL is not a timestamp with a timezone (or None).",
    "django_mmc.E023": "DIRECTORY does not declare channel groups and templates as "
                       "django_mmc reads them.",
    "django_mmc.W001": "MMC has a key django_mmc does not know (a typo?).",
    "django_mmc.W002": "The longest retry delay exceeds the Redis broker's visibility timeout.",
    "django_mmc.W003": "The cache is local to one process: no shared token or rate limit.",
    "django_mmc.W004": "A platform URL uses plain http to a host that is not local.",
    "django_mmc.W005": "No Celery broker is configured in this process.",
    "django_mmc.W006": "A worker shares a SQLite database that is not set up for it.",
    "django_mmc.W007": "A list of channel types names one the platform does not document.",
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
    messages += _check_rules(conf, raw)
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
    return errors


# -- the rules: one validator per kind of value (conf.RULES) ---------------------

Messages = list[Error | Warning]


def _check_rules(conf: MMCSettings, raw: dict[str, Any]) -> Messages:
    """Every key by the rule :data:`django_mmc.conf.RULES` gives it."""
    messages: Messages = []
    for key, rule in RULES.items():
        messages += VALIDATORS[rule.kind](key, getattr(conf, key), rule, conf, raw)
    return messages


def _default_hint(key: str) -> str:
    return f"Remove MMC['{key}'] to use the default ({DEFAULTS[key]!r})."


def _credential(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    # Missing credentials are named together by _check_credentials.
    if value in (None, "") or isinstance(value, (str, int)) and not isinstance(value, bool):
        return []
    return [_error(rule.check_id, f"MMC['{key}'] must be a string, not {value!r}.",
                   "Read it from the environment, as a string.")]


def _agents(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    errors: Messages = []
    agents = raw.get("AGENTS", {})
    if not isinstance(agents, dict):
        return [_error(
            "django_mmc.E004",
            "MMC['AGENTS'] must be a dict of agent key -> {'ID': ..., 'WEBHOOK_SECRETS': [...]}.",
            "For example: 'AGENTS': {'support': {'ID': '17', 'WEBHOOK_SECRETS': [env('SECRET')]}}",
        )]
    for name, agent in agents.items():
        if not isinstance(agent, dict) or agent.get("ID") in (None, ""):
            errors.append(_error(
                "django_mmc.E004",
                f"MMC['AGENTS'][{name!r}] has no platform 'ID'.",
                "Give each agent the dialogue agent id the platform assigned to it.",
            ))
            continue
        secrets = agent.get("WEBHOOK_SECRETS")
        if isinstance(secrets, str):
            secrets = [secrets]
        if not secrets or not all(isinstance(s, str) and s for s in secrets):
            errors.append(_error(
                "django_mmc.E005",
                f"MMC['AGENTS'][{name!r}] has no usable WEBHOOK_SECRETS: its webhook endpoint "
                "rejects every delivery.",
                "Set WEBHOOK_SECRETS to a list holding the agent's dial_agent_client_secret "
                "(during a rotation: the new secret first, then the old one).",
            ))
    return errors


def _agent_key(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    agents = raw.get("AGENTS", {})
    agents = agents if isinstance(agents, dict) else {}
    if value is None:
        return []
    if not isinstance(value, str):
        return [_error(rule.check_id,
                       f"MMC['{key}'] must be the key of one of MMC['AGENTS'] (a string), "
                       f"not {value!r}.",
                       f"Use one of: {', '.join(map(repr, agents)) or 'add an agent first'}.")]
    if value not in agents:
        return [_error(rule.check_id,
                       f"MMC['{key}'] is {value!r}, which is not a key of MMC['AGENTS'].",
                       f"Use one of: {', '.join(map(repr, agents)) or 'add an agent first'}.")]
    return []


def _url(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
        return [_error(rule.check_id, f"MMC['{key}'] is not an absolute http(s) URL: {value!r}.",
                       f"Use a URL such as {DEFAULTS[key]!r}, or remove the key for the "
                       "default.")]
    if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        return [_warning("django_mmc.W004",
                         f"MMC['{key}'] sends credentials over plain http to {parts.hostname}.",
                         "Use https for anything but a local sandbox.")]
    return []


def _text(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    if isinstance(value, str) and value.strip():
        return []
    return [_error(rule.check_id, f"MMC['{key}'] must be a non-empty string, not {value!r}.",
                   _default_hint(key))]


def _optional_text(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    if value is None or isinstance(value, str) and value.strip():
        return []
    return [_error(rule.check_id, f"MMC['{key}'] must be a name (a non-empty string) or None, "
                   f"not {value!r}.", _default_hint(key))]


def _optional_id(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)
                         and str(value).strip()):
        return []
    return [_error(rule.check_id, f"MMC['{key}'] must be a platform id or name (a string) "
                   f"or None, not {value!r}.", _default_hint(key))]


def _timeout(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    if isinstance(value, (tuple, list)):
        # A pair exactly: MMCSettings.timeout unpacks (connect, read).
        valid = len(value) == 2 and all(_is_number(v) for v in value)
    else:
        valid = _is_number(value)
    if valid:
        return []
    return [_error(rule.check_id,
                   f"MMC['{key}'] must be seconds or a (connect, read) pair, not {value!r}.",
                   "For example (5, 30). A request without a timeout can hang a worker forever.")]


def _rate(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    # At least 1: the limiter counts whole requests per one-second window, so
    # a smaller limit could never admit a single request.
    if value is None or _is_number(value, minimum=1, strict=False):
        return []
    return [_error(rule.check_id,
                   f"MMC['{key}'] must be a number of requests per second of at least 1, "
                   f"or None, not {value!r}.",
                   "Stay under the platform's limit for your organisation, e.g. 40.")]


def _number(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    valid = _is_number(value, minimum=rule.minimum, strict=rule.strict) and (
        not rule.whole or isinstance(value, int)) and (
        rule.maximum is None or value <= rule.maximum)
    if valid:
        return []
    what = "whole number" if rule.whole else "number"
    if rule.maximum is not None:
        bounds = f"from {rule.minimum:g} to {rule.maximum:g}"
    elif rule.minimum:
        bounds = f"of at least {rule.minimum:g}" if not rule.strict else (
            f"above {rule.minimum:g}")
    else:
        bounds = "above 0" if rule.strict else "of 0 or more"
    return [_error(rule.check_id, f"MMC['{key}'] must be a {what} {bounds}, not {value!r}.",
                   _default_hint(key))]


def _flag(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    if isinstance(value, bool):
        return []
    return [_error(rule.check_id, f"MMC['{key}'] must be True or False, not {value!r}.",
                   _default_hint(key))]


def _string_list(key: str, value: Any, rule: Rule) -> Messages:
    if isinstance(value, str):
        return [_error(rule.check_id,
                       f"MMC['{key}'] is the string {value!r}, not a list of strings.",
                       f"Write a list: [{value!r}].")]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(item, str) and item.strip() for item in value):
        return [_error(rule.check_id,
                       f"MMC['{key}'] must be a list of non-empty strings, not {value!r}.",
                       _default_hint(key))]
    return []


def _words(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    return _string_list(key, value, rule)


def _channel_types(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    errors = _string_list(key, value, rule)
    if errors:
        return errors
    unknown = [t for t in value if t.upper() not in contract.CHANNEL_TYPES]
    if unknown:
        return [_warning(
            "django_mmc.W007",
            f"MMC['{key}'] names channel types the platform does not document: "
            f"{', '.join(map(repr, unknown))}.",
            f"The platform documents {', '.join(contract.CHANNEL_TYPES)}; check the spelling "
            "against your channel groups (the admin's channel list).")]
    return []


def _queues(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    from .status import Priority

    if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
        unknown = sorted(set(value) - set(Priority.values))
        if not unknown:
            return []
        return [_error(rule.check_id,
                       f"MMC['{key}'] has priorities that do not exist: {unknown}.",
                       f"The priorities are {', '.join(Priority.values)}.")]
    return [_error(rule.check_id,
                   f"MMC['{key}'] must be a dict of priority -> Celery queue name, not "
                   f"{value!r}.",
                   "For example {'now': 'mmc-now', 'low': 'mmc-low'}; priorities not listed "
                   "use MMC['QUEUE'].")]


def _cache(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    caches = getattr(settings, "CACHES", {"default": {}})
    if not isinstance(value, str) or value not in caches:
        return [_error(
            rule.check_id,
            f"MMC['{key}'] is {value!r}, but CACHES has no such cache.",
            f"Use one of: {', '.join(map(repr, caches))}.",
        )]
    backend = caches[value].get("BACKEND", "django.core.cache.backends.locmem.LocMemCache")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [_warning(
            "django_mmc.W003",
            f"MMC['{key}'] names the cache {value!r} ({backend.rsplit('.', 1)[-1]}), "
            "which is local to one process: "
            "each worker fetches its own token and the rate limit is per process.",
            "Point MMC['CACHE_ALIAS'] at a shared cache such as Redis or Memcached.",
        )]
    return []


def _dialect(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    from .dialect import DIALECTS, DialectError, load_dialect

    try:
        load_dialect(value)
    except DialectError as err:
        if err.kind == "selection":
            return [_error(rule.check_id, f"MMC['{key}'] selects no dialect: {err}",
                           f"Give a dict of overrides, one of {', '.join(DIALECTS)}, or a "
                           "dotted path to a Dialect; or remove it for the default.")]
        if err.kind == "key":
            return [_error("django_mmc.E020", f"MMC['{key}'] has an unknown item: {err}",
                           "The items are listed in the configuration reference "
                           "(CONTRACT); check the spelling.")]
        return [_error("django_mmc.E021", f"MMC['{key}'][{err.key!r}] is not valid: {err}",
                       "Fix that item, or remove it to use the default reading.")]
    return []


def _until(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    from .conf import parse_until

    if value is None or parse_until(value) is not None:
        return []
    return [_error(rule.check_id,
                   f"MMC['{key}'] must be a timestamp with a timezone, or None, not {value!r}.",
                   "For example \"2026-12-04T12:00Z\": a few days ahead, while you watch "
                   "the first deliveries. Remove it afterwards.")]


#: The keys of a DIRECTORY entry, and those it must have.
_DIRECTORY_KEYS = {
    "channel_groups": ({"id", "name", "channel_types"}, {"id", "channel_types"}),
    "templates": ({"id", "name", "description", "channel_types", "parameters", "preview"},
                  {"id", "name"}),
}


def _directory(key: str, value: Any, rule: Rule, conf: MMCSettings, raw: Any) -> Messages:
    problems = directory_problems(value)
    if not problems:
        return []
    return [_error(rule.check_id, f"MMC['{key}'] is not valid: {problems[0]}",
                   "Declare {\"channel_groups\": [{\"id\": \"7\", \"name\": \"Support\", "
                   "\"channel_types\": [\"WHATSAPP\"]}], \"templates\": [{\"id\": \"101\", "
                   "\"name\": \"order_shipped\", \"channel_types\": [\"WHATSAPP\"], "
                   "\"parameters\": [\"first_name\"]}]}, or remove it.")]


def directory_problems(value: Any) -> list[str]:
    """What is wrong with a ``DIRECTORY`` value, one sentence each."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"it must be a dict or None, not {type(value).__name__}."]
    problems = [f"it has no key {k!r} (only channel_groups and templates)."
                for k in value if k not in _DIRECTORY_KEYS]
    for kind, (allowed, needed) in _DIRECTORY_KEYS.items():
        entries = value.get(kind) or []
        if not isinstance(entries, (list, tuple)):
            problems.append(f"{kind} must be a list.")
            continue
        ids = []
        for index, entry in enumerate(entries):
            where = f"{kind}[{index}]"
            if not isinstance(entry, dict):
                problems.append(f"{where} must be a dict.")
                continue
            problems += [f"{where} has no key {k!r}." for k in entry if k not in allowed]
            problems += [f"{where} needs {k!r}." for k in sorted(needed) if not entry.get(k)]
            if entry.get("id") not in (None, ""):
                if not isinstance(entry["id"], (str, int)) or isinstance(entry["id"], bool):
                    problems.append(f"{where}'s id must be text or a number.")
                ids.append(str(entry["id"]))
            types = entry.get("channel_types", [])
            if not isinstance(types, (list, tuple)) or not all(
                    isinstance(t, str) and t.strip() for t in types):
                problems.append(f"{where}'s channel_types must be a list of channel types.")
            for name in ("name", "description", "preview"):
                if name in entry and not isinstance(entry[name], str):
                    problems.append(f"{where}'s {name} must be text.")
            parameters = entry.get("parameters", [])
            if not isinstance(parameters, (list, tuple)) or not all(
                    (isinstance(p, str) and p) or (isinstance(p, dict) and set(p) <= {
                        "name", "required"} and isinstance(p.get("name"), str) and p["name"])
                    for p in parameters):
                problems.append(f"{where}'s parameters must be names, or dicts with a "
                                "'name' and 'required'.")
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            problems.append(f"{kind} declares id(s) {', '.join(repeated)} more than once.")
    return problems


#: One validator per kind of rule in :data:`django_mmc.conf.RULES`.
VALIDATORS: dict[str, Any] = {
    "agent_key": _agent_key,
    "directory": _directory,
    "agents": _agents,
    "cache": _cache,
    "channel_types": _channel_types,
    "credential": _credential,
    "dialect": _dialect,
    "flag": _flag,
    "number": _number,
    "optional_id": _optional_id,
    "optional_text": _optional_text,
    "queues": _queues,
    "rate": _rate,
    "text": _text,
    "timeout": _timeout,
    "until": _until,
    "url": _url,
    "words": _words,
}


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
