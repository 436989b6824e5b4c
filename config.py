"""Typed settings read from the environment, checked once at start.

Every variable an operator can set is read here and nowhere else; README.md and .env.example list
them with their defaults. A value that is required in production and missing stops the service at
start with a sentence naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SQLITE_PATH = BASE_DIR / "instance" / "participant.db"

ENVIRONMENTS = ("production", "development", "test")

# The callers contract §5 names, and what each may do. A caller's token grants exactly these scopes.
SCOPES_BY_CALLER: dict[str, frozenset[str]] = {
    "bot": frozenset({"participate", "read", "deliver"}),
    "giveaway": frozenset({"draw", "read"}),
    "dashboard": frozenset({"read", "audit"}),
    "admin": frozenset({"participate", "read", "deliver", "draw", "audit", "metrics"}),
}

# The name each caller is known by when it identifies itself with X-Service-Name only.
SERVICE_NAMES = {
    "telegive-bot": "bot",
    "telegive-giveaway": "giveaway",
    "telegive-dashboard": "dashboard",
}


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    env: str = "production"
    port: int = 8004
    database_url: str = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    database_is_default: bool = True
    redis_url: str | None = None
    giveaway_url: str = ""
    channel_url: str = ""
    auth_url: str = ""
    telegram_api_base: str = "https://api.telegram.org"
    service_to_service_secret: str = field(default="", repr=False)
    service_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    require_service_auth: bool = True
    cors_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    captcha_timeout_minutes: int = 10
    captcha_max_attempts: int = 3
    captcha_max_questions: int = 3
    captcha_lockout_minutes: int = 60
    upstream_connect_timeout: float = 1.0
    upstream_timeout: float = 2.0
    telegram_timeout: float = 3.0
    giveaway_cache_seconds: int = 30
    channel_cache_seconds: int = 300
    bot_token_cache_seconds: int = 300
    subscription_cache_seconds: int = 300
    draw_recheck_subscription: bool = True
    max_request_bytes: int = 64 * 1024
    db_pool_size: int = 20
    db_statement_timeout_ms: int = 30_000
    metrics_require_auth: bool = True
    circuit_failures: int = 5
    circuit_cooldown: float = 10.0

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check the settings; raise ConfigError naming the first bad variable."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        app_env = reader.choice("APP_ENV", ENVIRONMENTS, "production")
        database_url = reader.text("DATABASE_URL", "")
        settings = cls(
            env=app_env,
            port=reader.integer("PORT", 8004, minimum=1, maximum=65535),
            database_url=normalize_database_url(database_url) or cls.database_url,
            database_is_default=not database_url,
            redis_url=reader.text("REDIS_URL", "") or None,
            giveaway_url=reader.url("TELEGIVE_GIVEAWAY_URL"),
            channel_url=reader.url("TELEGIVE_CHANNEL_URL"),
            auth_url=reader.url("TELEGIVE_AUTH_URL"),
            telegram_api_base=reader.url("TELEGRAM_API_BASE") or "https://api.telegram.org",
            service_to_service_secret=reader.text("SERVICE_TO_SERVICE_SECRET", ""),
            service_tokens=reader.service_tokens("SERVICE_TOKENS"),
            require_service_auth=reader.boolean("REQUIRE_SERVICE_AUTH", True),
            cors_origins=reader.csv("CORS_ORIGINS"),
            log_level=reader.choice(
                "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True
            ),
            captcha_timeout_minutes=reader.integer("CAPTCHA_TIMEOUT_MINUTES", 10, minimum=1),
            captcha_max_attempts=reader.integer("CAPTCHA_MAX_ATTEMPTS", 3, minimum=1, maximum=100),
            captcha_max_questions=reader.integer(
                "CAPTCHA_MAX_QUESTIONS", 3, minimum=1, maximum=100
            ),
            captcha_lockout_minutes=reader.integer("CAPTCHA_LOCKOUT_MINUTES", 60, minimum=1),
            upstream_connect_timeout=reader.number("UPSTREAM_CONNECT_TIMEOUT_SECONDS", 1.0),
            upstream_timeout=reader.number("UPSTREAM_TIMEOUT_SECONDS", 2.0),
            telegram_timeout=reader.number("TELEGRAM_TIMEOUT_SECONDS", 3.0),
            giveaway_cache_seconds=reader.integer("GIVEAWAY_CACHE_SECONDS", 30, minimum=0),
            channel_cache_seconds=reader.integer("CHANNEL_CACHE_SECONDS", 300, minimum=0),
            bot_token_cache_seconds=reader.integer("BOT_TOKEN_CACHE_SECONDS", 300, minimum=0),
            subscription_cache_seconds=reader.integer("SUBSCRIPTION_CACHE_SECONDS", 300, minimum=0),
            draw_recheck_subscription=reader.boolean("DRAW_RECHECK_SUBSCRIPTION", True),
            max_request_bytes=reader.integer("MAX_REQUEST_BYTES", 64 * 1024, minimum=1024),
            db_pool_size=reader.integer("DB_POOL_SIZE", 20, minimum=1),
            db_statement_timeout_ms=reader.integer("DB_STATEMENT_TIMEOUT_MS", 30_000, minimum=100),
            metrics_require_auth=reader.boolean("METRICS_REQUIRE_AUTH", True),
            circuit_failures=reader.integer("UPSTREAM_CIRCUIT_FAILURES", 5, minimum=1),
            circuit_cooldown=reader.number("UPSTREAM_CIRCUIT_COOLDOWN_SECONDS", 10.0),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations that cannot run safely; production needs its peers and secrets."""
        if self.require_service_auth and not self.service_tokens:
            raise ConfigError(
                "SERVICE_TOKENS is empty while REQUIRE_SERVICE_AUTH is true: set SERVICE_TOKENS "
                "(caller=token pairs) or set REQUIRE_SERVICE_AUTH=false explicitly."
            )
        if not self.is_production:
            return
        secrets = [*self.service_tokens.values(), self.service_to_service_secret]
        if any("change-me" in secret for secret in secrets):
            raise ConfigError(
                "SERVICE_TOKENS or SERVICE_TO_SERVICE_SECRET still holds a placeholder from "
                ".env.example (change-me...): set real secrets."
            )
        if self.database_is_default:
            raise ConfigError(
                "DATABASE_URL is not set: production needs PostgreSQL (postgresql://...)."
            )
        for name, value in (
            ("TELEGIVE_GIVEAWAY_URL", self.giveaway_url),
            ("TELEGIVE_CHANNEL_URL", self.channel_url),
            ("TELEGIVE_AUTH_URL", self.auth_url),
            ("SERVICE_TO_SERVICE_SECRET", self.service_to_service_secret),
        ):
            if not value:
                raise ConfigError(f"{name} is not set: production cannot run without it.")

    def peers(self) -> dict[str, str]:
        """The base URLs this service calls, for the start-up log line (never any secret)."""
        return {
            "giveaway": self.giveaway_url or "(not configured)",
            "channel": self.channel_url or "(not configured)",
            "auth": self.auth_url or "(not configured)",
            "telegram": self.telegram_api_base,
            "database": redact_url(self.database_url),
            "redis": redact_url(self.redis_url) if self.redis_url else "(none)",
        }


def normalize_database_url(url: str) -> str:
    """Accept Heroku/Railway-style ``postgres://`` URLs and pin the psycopg2 driver."""
    if url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def redact_url(url: str) -> str:
    """Hide the password of a connection URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else f"{scheme}://{user}@{host}"


def current_settings() -> Settings:
    """The settings of the running application."""
    return current_app.extensions["telegive.settings"]


class _Reader:
    """Parses raw environment strings, naming the variable in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default).strip()

    def url(self, name: str) -> str:
        value = self.text(name, "").rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{name} must be an http(s) URL, got {value!r}.")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
        value = self.text(name, default) or default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
        return value

    def integer(
        self, name: str, default: int, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}.") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(f"{name} is out of range: {value}.")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.text(name, "")
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds, got {raw!r}.") from None
        if not 0 < value <= 60:
            raise ConfigError(f"{name} must be between 0 and 60 seconds, got {value}.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}.")

    def csv(self, name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.text(name, "").split(",") if part.strip())

    def service_tokens(self, name: str) -> dict[str, str]:
        tokens: dict[str, str] = {}
        for pair in self.csv(name):
            caller, sep, token = pair.partition("=")
            caller, token = caller.strip().lower(), token.strip()
            if not sep or not token:
                raise ConfigError(f"{name} must hold caller=token pairs; one entry has no token.")
            if caller not in SCOPES_BY_CALLER:
                known = ", ".join(SCOPES_BY_CALLER)
                raise ConfigError(f"{name} names an unknown caller {caller!r} (known: {known}).")
            if len(token) < 16:
                raise ConfigError(f"{name}: the token of {caller!r} is shorter than 16 characters.")
            tokens[caller] = token
        return tokens
