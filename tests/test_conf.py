"""The settings object: defaults, reloading, agents, errors and secrets."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_mmc import contract
from django_mmc.conf import DEFAULTS, Agent, MMCSettings, mmc_settings
from django_mmc.exceptions import MMCConfigurationError

CONFIG: dict[str, Any] = {
    "CLIENT_ID": "client-id-1",
    "CLIENT_SECRET": "client-secret-1",
    "ORGANISATION_ID": "org-1001",
    "BASE_URL": "https://api.example.com",
    "AGENTS": {
        "support": {"ID": "17", "WEBHOOK_SECRETS": ["hook-secret-new", "hook-secret-old"]},
        "sales": {"ID": 18, "WEBHOOK_SECRETS": "hook-secret-18"},
    },
    "DEFAULT_AGENT": "support",
    "RATE_LIMIT": 12,
}


def test_every_default_is_filled_in() -> None:
    conf = MMCSettings({})
    for key, default in DEFAULTS.items():
        assert getattr(conf, key) == default, key
    assert conf.BASE_URL == contract.DEFAULT_BASE_URL
    assert conf.OAUTH_FLOW == contract.DEFAULT_OAUTH_FLOW
    assert conf.CLIENT_SECRET is None
    assert conf.agents == {}


def test_given_keys_win_and_the_rest_are_defaults() -> None:
    conf = MMCSettings(CONFIG)
    assert conf.RATE_LIMIT == 12
    assert conf.CLIENT_ID == "client-id-1"
    assert conf.TIMEOUT == DEFAULTS["TIMEOUT"]
    assert conf.MAX_RETRIES == DEFAULTS["MAX_RETRIES"]


def test_a_value_of_none_is_kept_not_replaced_by_the_default() -> None:
    assert MMCSettings({"RATE_LIMIT": None}).RATE_LIMIT is None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="CLIENT_SECRT"):
        MMCSettings({}).CLIENT_SECRT  # noqa: B018


def test_unknown_keys_are_listed() -> None:
    conf = MMCSettings({**CONFIG, "ZZZ": 1, "CLIENT_SECRT": "x"})
    assert conf.unknown_keys == ["CLIENT_SECRT", "ZZZ"]
    assert MMCSettings(CONFIG).unknown_keys == []


def test_reading_a_setting_that_is_not_a_dict_never_raises(settings: Any) -> None:
    settings.MMC = "not a dict"
    assert mmc_settings.user_settings == {}
    assert mmc_settings.BASE_URL == contract.DEFAULT_BASE_URL
    assert mmc_settings.agents == {}
    del settings.MMC
    assert mmc_settings.user_settings == {}
    assert mmc_settings.RATE_LIMIT == DEFAULTS["RATE_LIMIT"]


def test_override_settings_reloads_the_shared_object() -> None:
    before = mmc_settings.CLIENT_ID
    with override_settings(MMC={**CONFIG, "CLIENT_ID": "outer"}):
        assert mmc_settings.CLIENT_ID == "outer"
        assert mmc_settings.RATE_LIMIT == 12
        with override_settings(MMC={"CLIENT_ID": "inner"}):
            assert mmc_settings.CLIENT_ID == "inner"
            assert mmc_settings.RATE_LIMIT == DEFAULTS["RATE_LIMIT"]
            assert mmc_settings.agents == {}
        assert mmc_settings.CLIENT_ID == "outer"
        assert set(mmc_settings.agents) == {"support", "sales"}
    assert mmc_settings.CLIENT_ID == before


def test_the_settings_fixture_reloads_too(settings: Any) -> None:
    import django_mmc.conf as conf_module

    settings.MMC = {**CONFIG, "TIMEOUT": 9}
    assert mmc_settings.timeout == (9.0, 9.0)
    assert conf_module.mmc_settings is mmc_settings  # rebuilt in place, imports stay valid
    settings.MMC = {**CONFIG, "TIMEOUT": (1, 2)}
    assert mmc_settings.timeout == (1.0, 2.0)


def test_a_new_mmc_setting_gives_a_new_client(settings: Any) -> None:
    from django_mmc.client import get_client

    settings.MMC = {**CONFIG, "BASE_URL": "https://one.example.com"}
    first = get_client()
    assert get_client() is first
    assert first.base_url == "https://one.example.com/organisations/org-1001"

    settings.MMC = {**CONFIG, "BASE_URL": "https://two.example.com"}
    second = get_client()
    assert second is not first
    assert second.base_url == "https://two.example.com/organisations/org-1001"


def test_other_settings_keep_the_client(settings: Any) -> None:
    from django_mmc.client import get_client

    settings.MMC = CONFIG
    client = get_client()
    settings.TIME_ZONE = "Europe/Dublin"
    assert get_client() is client


# -- agents --------------------------------------------------------------------------


def test_agents_are_normalised() -> None:
    conf = MMCSettings({
        **CONFIG,
        "AGENTS": {
            **CONFIG["AGENTS"],
            "no-id": {"WEBHOOK_SECRETS": ["x"]},
            "empty-id": {"ID": "", "WEBHOOK_SECRETS": ["x"]},
            "not-a-dict": "17",
            "blank-secrets": {"ID": "20", "WEBHOOK_SECRETS": ["", None, "kept"]},
        },
    })

    assert set(conf.agents) == {"support", "sales", "blank-secrets"}
    assert conf.agents["support"] == Agent("support", "17", ("hook-secret-new", "hook-secret-old"))
    assert conf.agents["sales"].id == "18"  # ids are strings
    assert conf.agents["sales"].webhook_secrets == ("hook-secret-18",)
    assert conf.agents["blank-secrets"].webhook_secrets == ("kept",)
    assert conf.agent_by_platform_id("18") is conf.agents["sales"]
    assert conf.agent_by_platform_id(17) is conf.agents["support"]
    assert conf.agent_by_platform_id("99") is None


def test_agents_that_are_not_a_dict_are_none() -> None:
    assert MMCSettings({"AGENTS": ["support"]}).agents == {}


def test_get_agent_returns_the_default_or_the_named_one() -> None:
    conf = MMCSettings(CONFIG)
    assert conf.get_agent().key == "support"
    assert conf.get_agent("sales").id == "18"


def test_get_agent_without_a_default_names_the_key() -> None:
    conf = MMCSettings({**CONFIG, "DEFAULT_AGENT": None})
    with pytest.raises(MMCConfigurationError) as caught:
        conf.get_agent()
    assert "MMC['DEFAULT_AGENT']" in str(caught.value)
    assert caught.value.retryable is False


def test_get_agent_for_an_unknown_key_names_it_and_agents() -> None:
    conf = MMCSettings(CONFIG)
    with pytest.raises(MMCConfigurationError) as caught:
        conf.get_agent("billing")
    message = str(caught.value)
    assert "'billing'" in message
    assert "MMC['AGENTS']" in message
    for secret in MMCSettings(CONFIG).secret_values():
        assert secret not in message


def test_agent_repr_hides_its_secrets() -> None:
    agent = MMCSettings(CONFIG).agents["support"]
    assert "hook-secret" not in repr(agent)
    assert "hook-secret" not in str(agent)
    assert str(agent) == "support (agent 17)"


# -- derived values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, (5.0, 5.0)), (2.5, (2.5, 2.5)), ((3, 30), (3.0, 30.0)), ([1, 2], (1.0, 2.0))],
)
def test_timeout_is_a_pair_of_floats(value: Any, expected: tuple[float, float]) -> None:
    assert MMCSettings({"TIMEOUT": value}).timeout == expected


def test_token_url_joins_base_and_flow() -> None:
    conf = MMCSettings({"OAUTH_BASE_URL": "https://login.example.com/oauth2/", "OAUTH_FLOW": "f1"})
    assert conf.token_url == "https://login.example.com/oauth2/token?p=f1"
    assert MMCSettings({}).token_url == (
        f"{contract.DEFAULT_OAUTH_BASE_URL}/token?p={contract.DEFAULT_OAUTH_FLOW}"
    )


def test_require_names_every_missing_key() -> None:
    conf = MMCSettings({"CLIENT_ID": "id", "CLIENT_SECRET": ""})
    with pytest.raises(MMCConfigurationError) as caught:
        conf.require("CLIENT_ID", "CLIENT_SECRET", "ORGANISATION_ID")
    message = str(caught.value)
    assert "MMC['CLIENT_SECRET']" in message
    assert "MMC['ORGANISATION_ID']" in message
    assert "CLIENT_ID'" not in message
    MMCSettings(CONFIG).require("CLIENT_ID", "CLIENT_SECRET", "ORGANISATION_ID")


def test_client_refuses_to_start_without_credentials(settings: Any) -> None:
    from django_mmc.client import get_client

    settings.MMC = {**CONFIG, "ORGANISATION_ID": None}
    with pytest.raises(MMCConfigurationError, match="ORGANISATION_ID"):
        get_client()


# -- secrets --------------------------------------------------------------------------


def test_secret_values_are_the_client_secret_and_every_webhook_secret() -> None:
    values = MMCSettings(CONFIG).secret_values()
    assert sorted(values) == sorted(
        ["client-secret-1", "hook-secret-new", "hook-secret-old", "hook-secret-18"]
    )
    assert "client-id-1" not in values


def test_secret_values_without_secrets() -> None:
    assert MMCSettings({}).secret_values() == []
    assert MMCSettings({"CLIENT_SECRET": ""}).secret_values() == []


def test_repr_shows_keys_not_values(settings: Any) -> None:
    conf = MMCSettings(CONFIG)
    text = repr(conf)
    assert "CLIENT_SECRET" in text and "AGENTS" in text
    for value in ("client-secret-1", "hook-secret", "client-id-1", "org-1001", "api.example.com"):
        assert value not in text
    settings.MMC = CONFIG
    assert "client-secret-1" not in repr(mmc_settings)
    assert "client-secret-1" not in str(mmc_settings)
