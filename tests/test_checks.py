"""System checks of the ``MMC`` setting: every id in CHECK_IDS is triggered
here, says which key is wrong, and a valid configuration is silent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_mmc.checks import CHECK_IDS, check_mmc_settings
from django_mmc.conf import DEFAULTS, MMCSettings
from tests.helpers import SUPPORT_AGENT_ID, SUPPORT_GROUP_ID

SECRETS = ("client-secret-value", "webhook-secret-17", "webhook-secret-18")

VALID: dict[str, Any] = {
    "CLIENT_ID": "client-id-value",
    "CLIENT_SECRET": SECRETS[0],
    "ORGANISATION_ID": "1001",
    "BASE_URL": "https://api.example.com",
    "OAUTH_BASE_URL": "https://login.example.com/oauth2/v2.0",
    "AGENTS": {
        "support": {"ID": SUPPORT_AGENT_ID, "WEBHOOK_SECRETS": [SECRETS[1]]},
        "sales": {"ID": 18, "WEBHOOK_SECRETS": SECRETS[2]},
    },
    "DEFAULT_AGENT": "support",
    "DEFAULT_CHANNEL_GROUP": SUPPORT_GROUP_ID,
}

LOCMEM = "django.core.cache.backends.locmem.LocMemCache"

# The SQLite check (W006) reads DATABASES; Django warns that changing it in a
# test can surprise code that holds a connection, which these tests do not use.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")


class CeleryConf:
    """Celery's current app configuration, changed for one test. Each change
    is made under the setting's ``CELERY_`` name too: Celery 5.4 reads the
    namespaced name (here from the Django settings) before a change made to
    the plain one."""

    def __init__(self, conf: Any) -> None:
        object.__setattr__(self, "_conf", conf)
        object.__setattr__(self, "_saved", {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conf, name)

    def __setattr__(self, name: str, value: Any) -> None:
        for key in (name, f"CELERY_{name.upper()}"):
            self._saved.setdefault(key, self._conf.get(key))
            self._conf[key] = value

    def restore(self) -> None:
        for key, value in self._saved.items():
            self._conf[key] = value


@pytest.fixture
def celery_conf() -> Iterator[Any]:
    """Celery's current app configuration, restored afterwards."""
    from celery import current_app

    conf = CeleryConf(current_app.conf)
    yield conf
    conf.restore()


def mmc_messages() -> list[Error | Warning]:
    """django_mmc's messages from a run of every registered check, the static
    ones only: ``databases=[]`` keeps the model checks off the database (from
    Django 6.1 ``run_checks()`` hands them every connection by default, and a
    JSONField asks the database whether it supports JSON)."""
    return [m for m in run_checks(databases=[]) if str(m.id).startswith("django_mmc.")]


def with_(**changes: Any) -> dict[str, Any]:
    """VALID with keys changed; a value of ``...`` removes the key."""
    mmc = {**VALID, **changes}
    return {k: v for k, v in mmc.items() if v is not ...}


@dataclass(frozen=True)
class Case:
    """A configuration that triggers one check id, and the key it must name."""

    mmc: Any
    key: str
    setup: Callable[[Any, Any], None] | None = None


def _short_visibility_timeout(settings: Any, celery_conf: Any) -> None:
    celery_conf.broker_url = "redis://127.0.0.1:6379/14"
    celery_conf.broker_transport_options = {"visibility_timeout": 300}


def _no_celery_app(settings: Any, celery_conf: Any) -> None:
    celery_conf.broker_url = None


def _shared_sqlite_on_defaults(settings: Any, celery_conf: Any) -> None:
    celery_conf.broker_url = "redis://127.0.0.1:6379/14"
    settings.DATABASES = {**settings.DATABASES, "default": {
        "ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/site/db.sqlite3"}}


def _local_cache(settings: Any, celery_conf: Any) -> None:
    settings.CACHES = {**settings.CACHES, "local": {"BACKEND": LOCMEM}}


#: One case per check id. A new id in CHECK_IDS without a case here fails
#: ``test_every_check_id_has_a_case`` and its own parametrized test.
CASES: dict[str, Case] = {
    "django_mmc.E001": Case(["CLIENT_ID", "x"], "MMC"),
    "django_mmc.E002": Case(with_(CLIENT_SECRET=...), "CLIENT_SECRET"),
    "django_mmc.E003": Case(with_(ORGANISATION_ID=...), "ORGANISATION_ID"),
    "django_mmc.E004": Case(
        with_(AGENTS={**VALID["AGENTS"], "ops": {"WEBHOOK_SECRETS": ["s"]}}), "AGENTS"
    ),
    "django_mmc.E005": Case(
        with_(AGENTS={**VALID["AGENTS"], "ops": {"ID": "19"}}), "WEBHOOK_SECRETS"
    ),
    "django_mmc.E006": Case(with_(DEFAULT_AGENT="nobody"), "DEFAULT_AGENT"),
    "django_mmc.E007": Case(with_(BASE_URL="prod-api.example.com"), "BASE_URL"),
    "django_mmc.E008": Case(with_(TIMEOUT=0), "TIMEOUT"),
    "django_mmc.E009": Case(with_(RATE_LIMIT="fast"), "RATE_LIMIT"),
    "django_mmc.E010": Case(with_(MAX_RETRIES=-1), "MAX_RETRIES"),
    "django_mmc.E011": Case(with_(POLL_AFTER=0), "POLL_AFTER"),
    "django_mmc.E012": Case(with_(CACHE_ALIAS="nowhere"), "CACHE_ALIAS"),
    "django_mmc.E013": Case(with_(OAUTH_FLOW=""), "OAUTH_FLOW"),
    "django_mmc.E014": Case(with_(OPT_OUT_KEYWORDS="STOP"), "OPT_OUT_KEYWORDS"),
    "django_mmc.E015": Case(with_(FALLBACK_CHANNEL_TYPES="SMS"), "FALLBACK_CHANNEL_TYPES"),
    "django_mmc.E016": Case(with_(PRIORITY_QUEUES=["mmc-now"]), "PRIORITY_QUEUES"),
    "django_mmc.E017": Case(with_(QUEUE=7), "QUEUE"),
    "django_mmc.E018": Case(with_(ENFORCE_CARE_WINDOW="no"), "ENFORCE_CARE_WINDOW"),
    "django_mmc.E019": Case(with_(CONTRACT="no-such-dialect"), "CONTRACT"),
    "django_mmc.E020": Case(with_(CONTRACT={"filter_styel": "operators"}), "CONTRACT"),
    "django_mmc.E021": Case(with_(CONTRACT={"pagination": "cursor"}), "CONTRACT"),
    "django_mmc.E022": Case(with_(WEBHOOK_DIAGNOSIS_UNTIL="2026-12-04 12:00"),
                            "WEBHOOK_DIAGNOSIS_UNTIL"),
    "django_mmc.E023": Case(with_(DIRECTORY={"templates": [{"id": "101"}]}), "DIRECTORY"),
    "django_mmc.W007": Case(with_(FALLBACK_CHANNEL_TYPES=["WHATSAP", "SMS"]),
                            "FALLBACK_CHANNEL_TYPES"),
    "django_mmc.W001": Case(with_(CLIENT_SECRT="typo"), "CLIENT_SECRT"),
    "django_mmc.W002": Case(
        with_(RETRY_BACKOFF_MAX=600, RETRY_AFTER_MAX=120), "RETRY_BACKOFF_MAX",
        _short_visibility_timeout,
    ),
    "django_mmc.W003": Case(with_(CACHE_ALIAS="local"), "CACHE_ALIAS", _local_cache),
    "django_mmc.W004": Case(with_(BASE_URL="http://api.example.com"), "BASE_URL"),
    "django_mmc.W005": Case(VALID, "QUEUE", _no_celery_app),
    "django_mmc.W006": Case(VALID, "transaction_mode", _shared_sqlite_on_defaults),
}


def test_every_check_id_has_a_case() -> None:
    assert set(CASES) == set(CHECK_IDS)


def test_the_valid_configuration_is_silent(settings: Any) -> None:
    settings.MMC = VALID
    assert mmc_messages() == []


def test_the_test_suite_configuration_is_silent() -> None:
    assert mmc_messages() == []


@pytest.mark.parametrize("check_id", sorted(CHECK_IDS))
def test_each_check_id(check_id: str, settings: Any, celery_conf: Any) -> None:
    case = CASES.get(check_id)
    assert case is not None, f"no test triggers {check_id}: add it to CASES"
    if case.setup:
        case.setup(settings, celery_conf)
    settings.MMC = case.mmc

    messages = mmc_messages()

    # Exactly this problem is reported, nothing else.
    assert [m.id for m in messages] == [check_id], [m.msg for m in messages]
    [message] = messages
    assert case.key in message.msg
    assert message.hint
    assert message.obj == "MMC"
    level = Error if check_id.split(".")[1].startswith("E") else Warning
    assert type(message) is level
    for secret in SECRETS:
        assert secret not in message.msg and secret not in message.hint


def test_missing_setting_is_e001(settings: Any) -> None:
    del settings.MMC
    assert [m.id for m in mmc_messages()] == ["django_mmc.E001"]


def test_missing_credentials_are_named_together(settings: Any) -> None:
    settings.MMC = with_(CLIENT_ID=..., CLIENT_SECRET="", ORGANISATION_ID=None)

    messages = {m.id: m.msg for m in mmc_messages()}

    assert set(messages) == {"django_mmc.E002", "django_mmc.E003"}
    assert "CLIENT_ID" in messages["django_mmc.E002"]
    assert "CLIENT_SECRET" in messages["django_mmc.E002"]


def test_agents_that_are_not_a_dict(settings: Any) -> None:
    settings.MMC = with_(AGENTS=[{"ID": SUPPORT_AGENT_ID}], DEFAULT_AGENT=...)
    assert [m.id for m in mmc_messages()] == ["django_mmc.E004"]


@pytest.mark.parametrize("secrets", [None, [], [""], [None], "", ["ok", ""]])
def test_unusable_webhook_secrets(settings: Any, secrets: Any) -> None:
    settings.MMC = with_(AGENTS={"support": {"ID": SUPPORT_AGENT_ID, "WEBHOOK_SECRETS": secrets}})
    messages = mmc_messages()
    assert [m.id for m in messages] == ["django_mmc.E005"]
    assert "'support'" in messages[0].msg


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("BASE_URL", "ftp://api.example.com", "django_mmc.E007"),
        ("BASE_URL", "https://", "django_mmc.E007"),
        ("BASE_URL", None, "django_mmc.E007"),
        ("OAUTH_BASE_URL", "/oauth2/v2.0", "django_mmc.E007"),
        ("OAUTH_BASE_URL", "http://login.example.com", "django_mmc.W004"),
        ("TIMEOUT", -1, "django_mmc.E008"),
        ("TIMEOUT", "5", "django_mmc.E008"),
        ("TIMEOUT", None, "django_mmc.E008"),
        ("TIMEOUT", True, "django_mmc.E008"),
        ("TIMEOUT", (0, 5), "django_mmc.E008"),
        ("TIMEOUT", (5,), "django_mmc.E008"),
        ("TIMEOUT", (1, 2, 3), "django_mmc.E008"),
        ("TIMEOUT", (), "django_mmc.E008"),
        ("RATE_LIMIT", 0, "django_mmc.E009"),
        ("RATE_LIMIT", -5, "django_mmc.E009"),
        ("RATE_LIMIT", True, "django_mmc.E009"),
        ("RATE_LIMIT", 0.5, "django_mmc.E009"),
        ("MAX_RETRIES", 2.5, "django_mmc.E010"),
        ("MAX_RETRIES", "8", "django_mmc.E010"),
        ("RETRY_BACKOFF", 0, "django_mmc.E010"),
        ("RETRY_BACKOFF_MAX", -1, "django_mmc.E010"),
        ("RETRY_AFTER_MAX", None, "django_mmc.E010"),
        ("OUTBOX_DELAY", 0, "django_mmc.E011"),
        ("SEND_LEASE", "120", "django_mmc.E011"),
        ("POLL_MAX_AGE", -1, "django_mmc.E011"),
        ("WEBHOOK_MAX_BODY_SIZE", 0, "django_mmc.E011"),
        ("WEBHOOK_EVENT_RETENTION_DAYS", None, "django_mmc.E011"),
        ("BULK_CHUNK_SIZE", 0, "django_mmc.E011"),
        ("SEND_BATCH_SIZE", 0, "django_mmc.E011"),
        ("SEND_BATCH_SIZE", 2.5, "django_mmc.E011"),
        ("TOKEN_REFRESH_MARGIN", -1, "django_mmc.E011"),
        ("POLL_BATCH_SIZE", 0, "django_mmc.E011"),
        ("POLL_BATCH_SIZE", 101, "django_mmc.E011"),
        ("POLL_BATCH_SIZE", 50.0, "django_mmc.E011"),
        ("POLL_BATCH_SIZE", True, "django_mmc.E011"),
        ("CACHE_ALIAS", None, "django_mmc.E012"),
        ("CACHE_ALIAS", ["default"], "django_mmc.E012"),
        ("SCOPE", None, "django_mmc.E013"),
        ("DEFAULT_CHANNEL_TYPE", "  ", "django_mmc.E013"),
        # Issue 13, item 15: wrong types that used to pass the checks and fail later.
        ("OPT_OUT_KEYWORDS", "STOP", "django_mmc.E014"),
        ("OPT_IN_KEYWORDS", ["START", 1], "django_mmc.E014"),
        ("OPT_IN_KEYWORDS", None, "django_mmc.E014"),
        ("FALLBACK_FAILURE_CODES", "NOT_ON_CHANNEL", "django_mmc.E014"),
        ("CARE_WINDOW_HOURS", "24", "django_mmc.E011"),
        ("CARE_WINDOW_HOURS", None, "django_mmc.E011"),
        ("EVENT_WAIT_MAX_AGE", 0, "django_mmc.E011"),
        ("PRIORITY_QUEUES", {"now": 1}, "django_mmc.E016"),
        ("PRIORITY_QUEUES", {"asap": "mmc-now"}, "django_mmc.E016"),
        ("PRIORITY_QUEUES", "mmc-now", "django_mmc.E016"),
        ("FALLBACK_CHANNEL_TYPES", "WHATSAPP,SMS", "django_mmc.E015"),
        ("FALLBACK_CHANNEL_TYPES", ["SMS", None], "django_mmc.E015"),
        ("CARE_WINDOW_CHANNEL_TYPES", ["WHATSAPP", "CARRIER_PIGEON"], "django_mmc.W007"),
        ("DEFAULT_AGENT", 17, "django_mmc.E006"),
        ("DEFAULT_AGENT", ["support"], "django_mmc.E006"),
        ("DEFAULT_CHANNEL_GROUP", ["7"], "django_mmc.E017"),
        ("ENFORCE_CARE_WINDOW", 1, "django_mmc.E018"),
        ("ALLOW_TRANSACTIONAL_TO_OPTED_OUT", "yes", "django_mmc.E018"),
    ],
)
def test_bad_values(settings: Any, key: str, value: Any, check_id: str) -> None:
    settings.MMC = with_(**{key: value})

    messages = mmc_messages()

    assert [m.id for m in messages] == [check_id], [m.msg for m in messages]
    assert key in messages[0].msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TIMEOUT", 10),
        ("TIMEOUT", 2.5),
        ("TIMEOUT", (3, 30)),
        ("TIMEOUT", [3, 30.5]),
        ("RATE_LIMIT", None),
        ("RATE_LIMIT", 1),
        ("RATE_LIMIT", 12.5),
        ("MAX_RETRIES", 0),
        ("TOKEN_REFRESH_MARGIN", 0),
        ("POLL_BATCH_SIZE", 1),
        ("POLL_BATCH_SIZE", 100),
        ("BASE_URL", "http://localhost:8000"),
        ("BASE_URL", "http://127.0.0.1:9"),
        ("DEFAULT_AGENT", None),
        ("QUEUE", "mmc"),
    ],
)
def test_good_values_are_silent(settings: Any, key: str, value: Any) -> None:
    settings.MMC = with_(**{key: value})
    assert mmc_messages() == []


def test_good_values_can_be_read(settings: Any) -> None:
    """Every value the checks accept can be used by the settings object."""
    for value in (10, 2.5, (3, 30), [3, 30.5]):
        timeout = MMCSettings(with_(TIMEOUT=value)).timeout
        assert len(timeout) == 2 and all(isinstance(v, float) for v in timeout)


def test_unknown_key_suggests_the_known_one(settings: Any) -> None:
    settings.MMC = with_(RETRY_BACKOF=3, SOMETHING_ELSE=1)

    messages = mmc_messages()

    assert [m.id for m in messages] == ["django_mmc.W001", "django_mmc.W001"]
    hints = {m.msg: m.hint for m in messages}
    assert "'RETRY_BACKOFF'" in hints["MMC has an unknown key 'RETRY_BACKOF'; it is ignored."]
    assert "SOMETHING_ELSE" in " ".join(hints)


def test_visibility_timeout_only_matters_for_redis_like_brokers(
    settings: Any, celery_conf: Any
) -> None:
    settings.MMC = with_(RETRY_BACKOFF_MAX=600, RETRY_AFTER_MAX=120)
    celery_conf.broker_transport_options = {"visibility_timeout": 300}

    celery_conf.broker_url = "amqp://guest@127.0.0.1//"
    assert mmc_messages() == []

    celery_conf.broker_url = "redis://127.0.0.1:6379/14"
    [message] = mmc_messages()
    assert message.id == "django_mmc.W002"
    assert "600" in message.msg and "300" in message.msg

    celery_conf.broker_transport_options = {"visibility_timeout": 601}
    assert mmc_messages() == []

    # RETRY_AFTER_MAX counts too, and equal is already too long.
    settings.MMC = with_(RETRY_BACKOFF_MAX=60, RETRY_AFTER_MAX=601)
    assert [m.id for m in mmc_messages()] == ["django_mmc.W002"]


def test_visibility_timeout_default_is_an_hour(settings: Any, celery_conf: Any) -> None:
    celery_conf.broker_url = "redis://127.0.0.1:6379/14"
    celery_conf.broker_transport_options = {}

    settings.MMC = with_(RETRY_BACKOFF_MAX=600, RETRY_AFTER_MAX=900)
    assert mmc_messages() == []
    settings.MMC = with_(RETRY_AFTER_MAX=3600)
    assert [m.id for m in mmc_messages()] == ["django_mmc.W002"]


SQLITE_FOR_WORKERS = {
    "timeout": 30,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
}


@pytest.mark.parametrize(("options", "named"), [
    ({}, ("journal_mode=WAL", "timeout", "IMMEDIATE")),
    ({**SQLITE_FOR_WORKERS, "timeout": 5}, ("timeout",)),
    ({**SQLITE_FOR_WORKERS, "init_command": "PRAGMA synchronous=NORMAL;"}, ("WAL",)),
    ({**SQLITE_FOR_WORKERS, "transaction_mode": "DEFERRED"}, ("IMMEDIATE",)),
])
def test_sqlite_shared_with_a_worker_needs_wal_a_timeout_and_immediate(
    settings: Any, celery_conf: Any, options: dict[str, Any], named: tuple[str, ...]
) -> None:
    celery_conf.broker_url = "redis://127.0.0.1:6379/14"
    settings.MMC = VALID
    settings.DATABASES = {**settings.DATABASES, "default": {
        "ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/site/db.sqlite3",
        "OPTIONS": options}}
    [message] = mmc_messages()
    assert message.id == "django_mmc.W006"
    assert all(word in message.msg for word in named), message.msg


@pytest.mark.parametrize("database", [
    {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/site/db.sqlite3",
     "OPTIONS": SQLITE_FOR_WORKERS},
    {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    {"ENGINE": "django.db.backends.postgresql", "NAME": "site"},
])
def test_sqlite_check_is_silent_when_set_up_in_memory_or_not_sqlite(
    settings: Any, celery_conf: Any, database: dict[str, Any]
) -> None:
    celery_conf.broker_url = "redis://127.0.0.1:6379/14"
    settings.MMC = VALID
    settings.DATABASES = {**settings.DATABASES, "default": database}
    assert mmc_messages() == []


def test_sqlite_check_is_silent_without_a_broker(settings: Any, celery_conf: Any) -> None:
    settings.MMC = VALID
    _shared_sqlite_on_defaults(settings, celery_conf)
    celery_conf.broker_url = None
    assert [m.id for m in mmc_messages()] == ["django_mmc.W005"]


def test_dummy_cache_is_local_too(settings: Any) -> None:
    settings.CACHES = {
        **settings.CACHES, "dummy": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    }
    settings.MMC = with_(CACHE_ALIAS="dummy")
    assert [m.id for m in mmc_messages()] == ["django_mmc.W003"]


def test_check_is_registered_and_called_directly() -> None:
    assert check_mmc_settings() == []


@pytest.mark.django_db  # `manage.py check` runs the database checks too
def test_manage_py_check_fails_on_a_bad_configuration(settings: Any) -> None:
    settings.MMC = with_(CLIENT_SECRET=..., DEFAULT_AGENT="nobody")

    with pytest.raises(SystemCheckError) as caught:
        call_command("check")

    text = str(caught.value)
    assert "django_mmc.E002" in text and "CLIENT_SECRET" in text
    assert "django_mmc.E006" in text and "DEFAULT_AGENT" in text


@pytest.mark.django_db  # `manage.py check` runs the database checks too
def test_manage_py_check_passes_a_valid_configuration(settings: Any) -> None:
    settings.MMC = VALID
    call_command("check")


@pytest.mark.django_db  # `manage.py check` runs the database checks too
def test_manage_py_check_does_not_fail_on_warnings_only(settings: Any) -> None:
    settings.MMC = with_(BASE_URL="http://api.example.com")
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)  # a SystemCheckError would fail here
    assert "django_mmc.W004" in err.getvalue() + out.getvalue()
    assert "MMC['BASE_URL'] sends credentials over plain http" in err.getvalue() + out.getvalue()


def test_summaries_name_every_id_once() -> None:
    assert all(key.startswith("django_mmc.") for key in CHECK_IDS)
    assert all(summary.endswith(".") for summary in CHECK_IDS.values())
    assert set(DEFAULTS) >= {case.key for case in CASES.values()} - {"MMC", "CLIENT_SECRT"} - {
        "WEBHOOK_SECRETS", "transaction_mode"
    }


def test_item_15_every_setting_has_a_rule_and_every_rule_a_validator() -> None:
    """One declarative table next to DEFAULTS drives the type checks: a new
    key without a rule, or a rule of a kind the checks do not know, fails."""
    from django_mmc.checks import VALIDATORS
    from django_mmc.conf import DEFAULTS, RULES

    assert set(RULES) == set(DEFAULTS)
    assert {rule.kind for rule in RULES.values()} <= set(VALIDATORS)
    assert {rule.check_id for rule in RULES.values()} <= set(CHECK_IDS)
