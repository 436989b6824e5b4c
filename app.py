"""The application factory. Nothing runs at import time: ``create_app()`` builds the service."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from alembic.script import ScriptDirectory
from apiflask import APIFlask
from flask import Response, g, request
from flask_cors import CORS
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

import commands
from config import BASE_DIR, ConfigError, Settings
from extensions import VERSION_TABLE, db, migrate, redis_connection
from routes import audit, delivery, draws, health, history, lists, metrics, pages, registration
from routes.converters import (
    DigitsIdConverter,
    TelegramIdConverter,
    document_id_parameters,
    reject_invalid_ids,
)
from routes.errors import register_error_handlers
from routes.json_request import JsonRequest
from schemas.common import ERROR_SCHEMA, add_documented_schemas, error_responses
from services import cache, captcha, public_draws, store, telegram_budget
from services.clients import http
from services.store.pools import FairQueuePool
from utils.logs import configure_logging
from utils.metrics import HTTP_LATENCY, HTTP_REQUESTS, declare_series, method_label
from utils.request_context import accept_request_id, current_caller, set_request_context
from version import __version__

MIGRATIONS_DIR = BASE_DIR / "migrations"
log = logging.getLogger("telegive.app")
access_log = logging.getLogger("telegive.access")


def create_app(test_config: Mapping[str, str] | None = None) -> APIFlask:
    """Build the service from the environment (or from ``test_config`` instead of it)."""
    settings = Settings.from_env(os.environ if test_config is None else test_config)
    configure_logging(settings.log_level)
    app = APIFlask(
        "telegive-participant",
        title="Telegive Participant service",
        version=__version__,
        spec_path="/openapi.json",
        docs_path="/docs",
    )
    configure(app, settings)
    register_extensions(app, settings)
    register_blueprints(app)
    register_error_handlers(app)
    register_request_hooks(app)
    commands.register_commands(app)
    migrate_development_database(app, settings)
    announce(settings)
    return app


def configure(app: APIFlask, settings: Settings) -> None:
    """Flask and APIFlask settings derived from ours."""
    app.extensions["telegive.settings"] = settings
    app.request_class = JsonRequest
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(settings),
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
        VALIDATION_ERROR_STATUS_CODE=400,
        VALIDATION_ERROR_DESCRIPTION="Invalid input (VALIDATION_ERROR)",
        VALIDATION_ERROR_SCHEMA=ERROR_SCHEMA,
        HTTP_ERROR_SCHEMA=ERROR_SCHEMA,
        INFO={
            "description": "Who takes part in a Telegive giveaway, and who wins. "
            "Errors use the envelope {success: false, error, error_code, details}."
        },
        TESTING=settings.env == "test",
    )
    app.url_map.converters["id64"] = TelegramIdConverter
    app.url_map.converters["digits"] = DigitsIdConverter
    app.url_value_preprocessor(reject_invalid_ids)
    app.spec_processor(complete_spec)
    if settings.trusted_proxy_hops:  # behind reverse proxies: the client as X-Forwarded-For says
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)


def complete_spec(spec: dict) -> dict:
    """OpenAPI spec processor: integer path ids, the schemas of streamed responses, and request
    bodies marked required (every operation that takes one refuses to go without it) and JSON
    only (415 for any other Content-Type: routes/json_request.py)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
                operation["responses"].setdefault("415", error_responses(415)[415])
    return add_documented_schemas(document_id_parameters(spec))


def engine_options(settings: Settings) -> dict:
    """Connection pool and timeouts: a down database must fail fast, not hang workers."""
    if settings.is_sqlite:
        return {"connect_args": {"timeout": 15, "check_same_thread": False}}
    return {
        # Two pools like this per worker: transactions, and autocommit (services/store/postgres).
        # No overflow: an overflow connection is closed when it is returned, and under gevent a
        # burst then opens and closes connections all the time (a backend fork and a
        # re-preparation each; bench/findings.md has what it cost in bench (a)).
        "poolclass": FairQueuePool,  # first come, first served (services/store/pools.py)
        "pool_size": settings.db_pool_size,
        "max_overflow": 0,
        "pool_use_lifo": True,  # reuse the warmest connection; the rest stay idle
        "pool_timeout": 5,
        "pool_recycle": 1800,
        # No ping per checkout (a round trip per request): a connection found dead is
        # invalidated with the rest of the pool, and the request answers 503.
        "connect_args": {
            "connect_timeout": 3,
            "application_name": "telegive-participant",
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms} "
            "-c lock_timeout=10000 -c idle_in_transaction_session_timeout=60000",
        },
    }


def register_extensions(app: APIFlask, settings: Settings) -> None:
    """Bind the unbound extensions to this application."""
    if settings.is_sqlite:
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    db.init_app(app)
    if settings.is_sqlite:
        with app.app_context():
            _tune_sqlite(db.engine)
    migrate.init_app(
        app, db, directory=str(MIGRATIONS_DIR), version_table=VERSION_TABLE, render_as_batch=True
    )
    redis_connection.init_app(app, settings.redis_url)
    store.init_app(app)
    cache.init_app(app)
    captcha.init_app(app, settings)
    http.init_app(app, settings)
    telegram_budget.init_app(app, settings)
    public_draws.init_app(app, settings)
    if settings.cors_origins:
        CORS(
            app,
            resources={r"/api/*": {}, r"/health*": {}},
            origins=list(settings.cors_origins),
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-Service-Token"],
            expose_headers=["X-Request-ID", "Retry-After", "Content-Disposition"],
            max_age=600,
        )
    app.extensions["telegive.schema_head"] = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _tune_sqlite(engine) -> None:
    """SQLite (the development default): WAL, and every transaction takes the write lock up front
    (BEGIN IMMEDIATE), so concurrent writers queue instead of failing on lock upgrades."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def register_blueprints(app: APIFlask) -> None:
    """One blueprint per resource."""
    app.register_blueprint(health.bp)
    app.register_blueprint(registration.bp)
    app.register_blueprint(draws.bp)
    app.register_blueprint(lists.bp)
    app.register_blueprint(history.bp)
    app.register_blueprint(delivery.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(metrics.bp)
    declare_series(app.url_map)


def register_request_hooks(app: APIFlask) -> None:
    """Request id in and out, and one access log line per request."""

    @app.before_request
    def bind_request_id() -> None:
        g.started = time.perf_counter()
        g.request_id = accept_request_id(request.headers.get("X-Request-ID"))
        set_request_context(g.request_id)

    @app.after_request
    def finish(response: Response) -> Response:
        request_id = g.get("request_id") or accept_request_id(None)
        response.headers["X-Request-ID"] = request_id
        started = g.get("started")
        elapsed = time.perf_counter() - started if started else 0.0
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = method_label(request.method)
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(method, route).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
                "caller": current_caller(),
            },
        )
        return response

    @app.teardown_request
    def unbind_request_id(_error: BaseException | None) -> None:
        set_request_context(None)


def migrate_development_database(app: APIFlask, settings: Settings) -> None:
    """Development with the default SQLite file only: bring its schema up to date at start, so
    ``flask run`` works on a fresh clone. Production migrates in its release step, never here."""
    if settings.env != "development" or not settings.database_is_default:
        return
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))


def announce(settings: Settings) -> None:
    """Say at start which peers this instance uses, and loudly if authentication is off."""
    log.info("starting", extra={"env": settings.env, "peers": settings.peers()})
    if not settings.require_service_auth:
        log.warning(
            "SERVICE AUTHENTICATION IS OFF (REQUIRE_SERVICE_AUTH=false): requests without a token "
            "are accepted. Roll out SERVICE_TOKENS to every caller and turn it back on."
        )


__all__ = ["ConfigError", "create_app"]
