"""Settings: defaults, parsing, and refusing to start without what production needs."""

from __future__ import annotations

import sys

import pytest

from config import ConfigError, Settings, normalize_database_url, redact_url
from devtools import drand_chain
from utils.drand import QUICKNET

PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgres://user:pw@db:5432/telegive",
    "TELEGIVE_GIVEAWAY_URL": "http://giveaway",
    "TELEGIVE_CHANNEL_URL": "http://channel",
    "TELEGIVE_AUTH_URL": "http://auth",
    "SERVICE_TO_SERVICE_SECRET": "secret",
    "SERVICE_TOKENS": "bot=0123456789abcdef0123",
}


def test_defaults_are_the_documented_ones():
    settings = Settings.from_env({"APP_ENV": "development", "REQUIRE_SERVICE_AUTH": "false"})
    assert settings.database_url.startswith("sqlite:///") and settings.database_is_default
    assert settings.redis_url is None
    assert settings.telegram_api_base == "https://api.telegram.org"
    assert (settings.captcha_timeout_minutes, settings.captcha_max_attempts) == (10, 3)
    assert settings.log_level == "INFO"


def test_production_starts_with_everything_set():
    settings = Settings.from_env({**PRODUCTION, "SECRET_KEY": "from-the-old-readme"})  # unused
    assert settings.database_url == "postgresql+psycopg2://user:pw@db:5432/telegive"
    assert settings.service_tokens == {"bot": "0123456789abcdef0123"}


@pytest.mark.parametrize(
    "missing",
    [
        "DATABASE_URL",
        "TELEGIVE_GIVEAWAY_URL",
        "TELEGIVE_CHANNEL_URL",
        "TELEGIVE_AUTH_URL",
        "SERVICE_TO_SERVICE_SECRET",
    ],
)
def test_production_refuses_to_start_without_a_required_setting_and_names_it(missing):
    env = {key: value for key, value in PRODUCTION.items() if key != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


def test_auth_on_without_tokens_is_refused():
    env = {key: value for key, value in PRODUCTION.items() if key != "SERVICE_TOKENS"}
    with pytest.raises(ConfigError, match="SERVICE_TOKENS"):
        Settings.from_env(env)
    assert not Settings.from_env({**env, "REQUIRE_SERVICE_AUTH": "false"}).require_service_auth


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CAPTCHA_MAX_ATTEMPTS", "0"),
        ("CAPTCHA_MAX_ATTEMPTS", "three"),
        ("REQUIRE_SERVICE_AUTH", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("TELEGIVE_GIVEAWAY_URL", "giveaway:8000"),
        ("SERVICE_TOKENS", "robot=0123456789abcdef0123"),
        ("SERVICE_TOKENS", "bot=short"),
        ("SERVICE_TOKENS", "bot"),
        ("UPSTREAM_TIMEOUT_SECONDS", "0"),
        ("UPSTREAM_CIRCUIT_COOLDOWN_SECONDS", "61"),
    ],
)
def test_malformed_values_are_refused_in_one_sentence_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env({**PRODUCTION, name: value})
    sentence = str(refused.value)
    assert sentence.startswith(name) and sentence.endswith(".") and "\n" not in sentence


def test_a_refused_token_is_never_shown():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {**PRODUCTION, "SERVICE_TOKENS": "bot=0123456789abcdef0123,robot=hunter2"}
        )
    assert "hunter2" not in str(refused.value)
    assert "0123456789abcdef0123" not in str(refused.value)


def test_values_read_as_operators_write_them():
    settings = Settings.from_env(
        {
            **PRODUCTION,
            "TELEGIVE_GIVEAWAY_URL": "https://giveaway.example/ ",
            "REQUIRE_SERVICE_AUTH": "Yes",
            "METRICS_REQUIRE_AUTH": "off",
            "LOG_LEVEL": "debug",
            "CORS_ORIGINS": "https://a.example, https://b.example,",
            "CAPTCHA_MAX_ATTEMPTS": "  ",
            "SERVICE_TOKENS": " bot = 0123456789abcdef0123 , Admin=fedcba9876543210fedc",
        }
    )
    assert settings.giveaway_url == "https://giveaway.example"
    assert settings.require_service_auth and not settings.metrics_require_auth
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.captcha_max_attempts == 3  # blank: the default
    assert settings.service_tokens == {
        "bot": "0123456789abcdef0123",
        "admin": "fedcba9876543210fedc",
    }


def test_a_given_environment_replaces_the_process_environment(monkeypatch):
    development = {"APP_ENV": "development", "REQUIRE_SERVICE_AUTH": "false"}
    for name, value in {**development, "CAPTCHA_MAX_ATTEMPTS": "7"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    settings = Settings.from_env(development)
    assert settings.captcha_max_attempts == 3 and settings.database_is_default
    assert Settings.from_env().captcha_max_attempts == 7


def test_production_refuses_the_placeholders_of_env_example():
    with pytest.raises(ConfigError, match="placeholder"):
        Settings.from_env({**PRODUCTION, "SERVICE_TOKENS": "bot=change-me-bot-token-0000"})
    with pytest.raises(ConfigError, match="placeholder"):
        Settings.from_env({**PRODUCTION, "SERVICE_TO_SERVICE_SECRET": "change-me-sent-to-auth"})


def test_urls_are_normalised_and_passwords_never_shown():
    assert normalize_database_url("postgres://a:b@h/d") == "postgresql+psycopg2://a:b@h/d"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert redact_url("postgresql://user:hunter2@db/x") == "postgresql://user:***@db/x"
    settings = Settings.from_env(
        {
            **PRODUCTION,
            "DATABASE_URL": "postgresql://user:hunter2@db/telegive",
            "SERVICE_TO_SERVICE_SECRET": "hunter2",
            "SERVICE_TOKENS": "bot=hunter2-bot-token-0000",
        }
    )
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert settings.service_to_service_secret.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql://user@db/x?password=hunter2", "postgresql://user@db/x?password=***"),
        (
            "postgresql://user@db/x?sslmode=require&sslpassword=hunter2&application_name=p",
            "postgresql://user@db/x?sslmode=require&sslpassword=***&application_name=p",
        ),
        (
            "rediss://cache:6380/1?PASS=hunter2&pwd=hunter2",
            "rediss://cache:6380/1?PASS=***&pwd=***",
        ),
        (
            "postgresql:///x?host=/run/pg&passfile=/p&token=hunter2",
            "postgresql:///x?host=/run/pg&passfile=***&token=***",
        ),
        ("postgresql://u:p%40ss@db/x?password=hunter2", "postgresql://u:***@db/x?password=***"),
        ("postgresql://u:hunter2@@db/x", "postgresql://u:***@db/x"),
    ],
)
def test_a_password_is_hidden_wherever_the_url_carries_it(url, shown):
    assert redact_url(url) == shown
    assert "hunter2" not in redact_url(url)


def test_the_start_up_log_shows_no_password_of_a_query_string():
    settings = Settings.from_env(
        {
            **PRODUCTION,
            "DATABASE_URL": "postgresql://user@db/telegive?password=hunter2",
            "REDIS_URL": "redis://cache:6379/0?password=hunter2",
        }
    )
    assert "hunter2" not in str(settings.peers())
    assert settings.peers()["database"].endswith("/telegive?password=***")


# --- the drand beacon -----------------------------------------------------------------------------


def test_the_beacon_defaults_to_quicknet_through_two_public_relays():
    settings = Settings.from_env(PRODUCTION)
    assert settings.draw_beacon == "drand" and settings.drand_chain == QUICKNET
    assert settings.drand_urls == ("https://api.drand.sh", "https://drand.cloudflare.com")
    assert settings.drand_timeout == 2.0


def test_production_refuses_any_chain_but_quicknet_in_one_sentence():
    other_chain = drand_chain.env("https://relay.example")
    with pytest.raises(ConfigError, match="quicknet in production") as refused:
        Settings.from_env({**PRODUCTION, **other_chain})
    assert "\n" not in str(refused.value) and "steer" in str(refused.value)
    with pytest.raises(ConfigError, match="quicknet in production"):  # one fact changed is enough
        Settings.from_env({**PRODUCTION, "DRAND_GENESIS_TIME": "1692803368"})
    development = {**PRODUCTION, **other_chain, "APP_ENV": "development"}
    assert Settings.from_env(development).drand_chain == drand_chain.DEV_CHAIN
    assert Settings.from_env({**PRODUCTION, **other_chain, "DRAW_BEACON": "off"})  # not used


def test_production_refuses_to_start_without_the_bls_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "py_arkworks_bls12381", None)
    with pytest.raises(ConfigError, match="py-arkworks-bls12381 is not installed"):
        Settings.from_env(PRODUCTION)
    assert Settings.from_env({**PRODUCTION, "DRAW_BEACON": "off"}).draw_beacon == "off"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRAW_BEACON", "maybe"),
        ("DRAND_URLS", "api.drand.sh"),
        ("DRAND_URLS", ","),
        ("DRAND_CHAIN_HASH", "52db9ba7"),
        ("DRAND_PUBLIC_KEY", "zz" * 96),
        ("DRAND_PERIOD_SECONDS", "0"),
        ("DRAND_TIMEOUT_SECONDS", "61"),
    ],
)
def test_malformed_beacon_settings_are_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env({**PRODUCTION, name: value})
    assert str(refused.value).endswith(".") and "\n" not in str(refused.value)
