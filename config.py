"""Typed settings read from the environment, checked once at start.

Every setting of the application is read here and nowhere else; the server's own (PORT,
WEB_CONCURRENCY, GUNICORN_*, METRICS_*, PROMETHEUS_MULTIPROC_DIR) are read by gunicorn.conf.py.
README.md and .env.example list them all with their defaults.
A bad value, or a value that production needs and lacks, stops the service at start with one
sentence naming the variable. Only the process environment is read: ``.env`` is loaded by
python-dotenv for the ``flask`` command in local work, never here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from flask import current_app
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from utils.drand import QUICKNET, Chain, bls_available

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SQLITE_PATH = BASE_DIR / "instance" / "participant.db"

# The callers of docs/contract.md §5, and what each may do. A token grants exactly these scopes.
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


def _http_url(value: str) -> str:
    value = value.rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


def _hex(length: int):
    """A validator: ``length`` bytes written in hex (lower case kept)."""

    def check(value: str) -> str:
        value = value.lower()
        if len(value) != 2 * length or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"must be {length} bytes in hex ({2 * length} hex digits)")
        return value

    return AfterValidator(check)


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


AppEnv = Annotated[Literal["production", "development", "test"], BeforeValidator(str.lower)]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(str.upper)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]
HttpUrls = Annotated[tuple[HttpUrl, ...], NoDecode, BeforeValidator(_comma_separated)]
Seconds = Annotated[float, Field(gt=0, le=60)]


class Settings(BaseSettings):
    """Everything the service reads from its environment, by the variable's upper-case name."""

    model_config = SettingsConfigDict(
        alias_generator=str.upper, case_sensitive=True, frozen=True, extra="ignore"
    )

    env: AppEnv = Field("production", validation_alias="APP_ENV")
    database_url: str = Field(f"sqlite:///{DEFAULT_SQLITE_PATH}", repr=False)
    redis_url: str | None = Field(None, repr=False)
    giveaway_url: HttpUrl = Field("", validation_alias="TELEGIVE_GIVEAWAY_URL")
    channel_url: HttpUrl = Field("", validation_alias="TELEGIVE_CHANNEL_URL")
    auth_url: HttpUrl = Field("", validation_alias="TELEGIVE_AUTH_URL")
    telegram_api_base: HttpUrl = "https://api.telegram.org"
    # Where participants reach this service (the draw page's links); unset: no link is given.
    public_base_url: HttpUrl = ""
    service_to_service_secret: SecretStr = SecretStr("")
    tokens_by_caller: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict, validation_alias="SERVICE_TOKENS"
    )
    require_service_auth: bool = True
    cors_origins: CommaSeparated = ()
    log_level: LogLevel = "INFO"
    captcha_timeout_minutes: int = Field(10, ge=1)
    captcha_max_attempts: int = Field(3, ge=1, le=100)
    captcha_max_questions: int = Field(3, ge=1, le=100)
    captcha_lockout_minutes: int = Field(60, ge=1)
    upstream_connect_timeout: Seconds = Field(
        1.0, validation_alias="UPSTREAM_CONNECT_TIMEOUT_SECONDS"
    )
    upstream_timeout: Seconds = Field(2.0, validation_alias="UPSTREAM_TIMEOUT_SECONDS")
    telegram_timeout: Seconds = Field(3.0, validation_alias="TELEGRAM_TIMEOUT_SECONDS")
    giveaway_cache_seconds: int = Field(30, ge=0)
    channel_cache_seconds: int = Field(300, ge=0)
    bot_token_cache_seconds: int = Field(300, ge=0)
    subscription_cache_seconds: int = Field(300, ge=0)
    draw_recheck_subscription: bool = True
    max_request_bytes: int = Field(64 * 1024, ge=1024)
    db_pool_size: int = Field(20, ge=1)
    db_statement_timeout_ms: int = Field(30_000, ge=100)
    metrics_require_auth: bool = True
    circuit_failures: int = Field(5, ge=1, validation_alias="UPSTREAM_CIRCUIT_FAILURES")
    circuit_cooldown: Seconds = Field(10.0, validation_alias="UPSTREAM_CIRCUIT_COOLDOWN_SECONDS")
    telegram_calls_per_second: float = Field(20.0, gt=0, le=100_000)
    # Well under the Bot's 10 s timeout for a registration.
    telegram_budget_wait: float = Field(
        2.0, ge=0, le=8, validation_alias="TELEGRAM_BUDGET_WAIT_SECONDS"
    )
    # Over the budget, a first-time registration is entered pending verification (defer) or
    # answered 503 (refuse): services/registration.py.
    subscription_overflow: Literal["defer", "refuse"] = "defer"
    # The public randomness a draw's seed mixes in (utils/drand.py); defaults: quicknet.
    draw_beacon: Annotated[Literal["drand", "off"], BeforeValidator(str.lower)] = "drand"
    drand_urls: HttpUrls = ("https://api.drand.sh", "https://drand.cloudflare.com")
    drand_chain_hash: Annotated[str, _hex(32)] = QUICKNET.hash
    drand_public_key: Annotated[str, _hex(96)] = QUICKNET.public_key
    drand_genesis_time: int = Field(QUICKNET.genesis_time, ge=1)
    drand_period: int = Field(
        QUICKNET.period, ge=1, le=3600, validation_alias="DRAND_PERIOD_SECONDS"
    )
    drand_timeout: Seconds = Field(2.0, validation_alias="DRAND_TIMEOUT_SECONDS")
    # The public draw page's "Was I counted?" lookups, per client (services/public_draws.py).
    public_proof_lookups_per_minute: int = Field(30, ge=1, le=6000)
    public_proof_lookup_burst: int = Field(10, ge=1, le=1000)
    trusted_proxy_hops: int = Field(0, ge=0, le=5)

    @field_validator("database_url")
    @classmethod
    def _pin_driver(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("subscription_overflow", mode="before")
    @classmethod
    def _overflow_mode(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    # Hand-written: `caller=token,...` is the format operators already use, not JSON.
    @field_validator("tokens_by_caller", mode="before")
    @classmethod
    def _parse_token_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        tokens: dict[str, str] = {}
        for pair in _comma_separated(value):
            caller, sep, token = pair.partition("=")
            caller, token = caller.strip().lower(), token.strip()
            if not sep or not token:
                raise ValueError("must hold caller=token pairs; one entry has no token")
            if caller not in SCOPES_BY_CALLER:
                known = ", ".join(SCOPES_BY_CALLER)
                raise ValueError(f"names an unknown caller {caller!r} (known: {known})")
            if len(token) < 16:
                raise ValueError(f"gives {caller!r} a token shorter than 16 characters")
            tokens[caller] = token
        return tokens

    @property
    def is_production(self) -> bool:
        """APP_ENV is production: the start-up checks of check() apply."""
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        """The database is a SQLite file (local work and tests)."""
        return self.database_url.startswith("sqlite")

    @property
    def database_is_default(self) -> bool:
        """DATABASE_URL was not set: the SQLite file of local work."""
        return "database_url" not in self.model_fields_set

    @property
    def drand_chain(self) -> Chain:
        """The drand chain DRAND_* names (quicknet unless set otherwise)."""
        return Chain(
            hash=self.drand_chain_hash,
            public_key=self.drand_public_key,
            genesis_time=self.drand_genesis_time,
            period=self.drand_period,
        )

    @property
    def service_tokens(self) -> dict[str, str]:
        """Each caller's incoming token in clear, for comparing a presented token; never logged."""
        return {caller: token.get_secret_value() for caller, token in self.tokens_by_caller.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``environ`` (os.environ when None, never both) and check it; raise ConfigError
        naming the first bad variable."""
        source = _Environment(cls, os.environ if environ is None else environ)
        try:
            # The one source: no init values, no .env file, no secrets directory.
            settings = cls(_build_sources=((source,), {}))
        except ValidationError as error:
            raise ConfigError(_sentence(error)) from None
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations that cannot run safely; production needs its peers and secrets."""
        if self.require_service_auth and not self.tokens_by_caller:
            raise ConfigError(
                "SERVICE_TOKENS is empty while REQUIRE_SERVICE_AUTH is true: set SERVICE_TOKENS "
                "(caller=token pairs) or set REQUIRE_SERVICE_AUTH=false explicitly."
            )
        if self.draw_beacon == "drand" and not self.drand_urls:
            raise ConfigError("DRAND_URLS is empty while DRAW_BEACON is drand: name a relay.")
        if not self.is_production:
            return
        if self.draw_beacon == "drand" and self.drand_chain != QUICKNET:
            raise ConfigError(
                "DRAND_CHAIN_HASH, DRAND_PUBLIC_KEY, DRAND_GENESIS_TIME and DRAND_PERIOD_SECONDS "
                "must name League of Entropy's quicknet in production (leave them unset): a chain "
                "the operator runs would let the operator steer the draws."
            )
        if self.draw_beacon == "drand" and not bls_available():
            raise ConfigError(
                "DRAW_BEACON is drand but py-arkworks-bls12381 is not installed: production "
                "cannot check drand signatures without it (pip install -r requirements.txt)."
            )
        service_secret = self.service_to_service_secret.get_secret_value()
        if any("change-me" in secret for secret in [*self.service_tokens.values(), service_secret]):
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
            ("SERVICE_TO_SERVICE_SECRET", service_secret),
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
            "drand": ", ".join(self.drand_urls) if self.draw_beacon == "drand" else "(off)",
        }


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (it reads only os.environ)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str]:  # the hook DotEnvSettingsSource overrides too
        # Surrounding spaces never matter, and a blank value means the default (`VAR=` in a file).
        return {name: value.strip() for name, value in self.environ.items() if value.strip()}


def _sentence(error: ValidationError) -> str:
    """The first error of a validation as one sentence naming the variable."""
    first = error.errors()[0]
    name = first["loc"][0]  # the variable: fields are validated by their upper-case alias
    if first["type"] == "value_error":  # our own validators say what is wrong, secrets unshown
        return f"{name} {first['ctx']['error']}."
    problem = first["msg"].partition(", unable to")[0].replace("Input should be", "must be")
    return f"{name} {problem}, got {first['input']!r}."


def normalize_database_url(url: str) -> str:
    """Accept Heroku/Railway-style ``postgres://`` URLs and pin the psycopg2 driver."""
    if url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


# Connection URLs: "scheme://user:password@" (the password runs to the last "@", so an unencoded
# "@" in it is hidden too), and query parameters that carry a secret, by a part of their name
# (libpq's password, sslpassword and passfile, redis-py's password, drivers' token/secret/key).
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@?#]*)(?P<password>:.*)?@", re.S
)
_SECRET_PARAMETERS = ("pass", "pwd", "secret", "token", "key")


def redact_url(url: str) -> str:
    """The URL with every password hidden: in its userinfo and in its query parameters."""
    userinfo = _USERINFO.match(url)
    if userinfo:
        hidden = ":***" if userinfo["password"] is not None else ""
        head, rest = f"{userinfo['scheme']}{userinfo['user']}{hidden}@", url[userinfo.end() :]
    else:
        head, rest = "", url
    path, question, query = rest.partition("?")
    parameters = []
    for parameter in query.split("&") if question else ():
        name, equals, _value = parameter.partition("=")
        secret = equals and any(part in name.lower() for part in _SECRET_PARAMETERS)
        parameters.append(f"{name}=***" if secret else parameter)
    return f"{head}{path}{question}{'&'.join(parameters)}"


def current_settings() -> Settings:
    """The settings of the running application."""
    return current_app.extensions["telegive.settings"]
