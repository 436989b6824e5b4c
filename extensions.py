"""Extensions, unbound: the application factory binds them; models and services import them."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from models.base import Base

db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()

# Alembic's default version table would collide with the other services' in the shared database.
VERSION_TABLE = "participant_alembic_version"


class RedisConnection:
    """The Redis client when REDIS_URL is set, or None: callers must handle both."""

    def __init__(self) -> None:
        self.client: redis.Redis | None = None

    def init_app(self, app: Flask, url: str | None) -> None:
        self.client = None
        if url:
            self.client = redis.Redis.from_url(
                url,
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                health_check_interval=30,
                retry_on_timeout=False,
                decode_responses=True,
            )
        app.extensions["telegive.redis"] = self.client


redis_connection = RedisConnection()


def get_redis() -> redis.Redis | None:
    """The configured Redis client, or None when the service runs without Redis."""
    return current_app.extensions.get("telegive.redis")
