"""The one place errors become responses, all in the contract's envelope.

Domain errors, validation errors, werkzeug's HTTP errors, database and Redis outages, and the
unexpected (logged with a traceback, rendered without internals) — nothing a caller sends gets a
500, and no exception or SQL text ever reaches a response.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response, jsonify
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from services.errors import (
    Conflict,
    DatabaseUnavailable,
    RedisUnavailable,
    ServiceError,
    ValidationFailed,
)
from utils.metrics import ERROR_RESPONSES

log = logging.getLogger("telegive.errors")
DEFAULT_RETRY_AFTER = 5

_HTTP_CODES = {
    400: ("VALIDATION_ERROR", "The request could not be read."),
    401: ("AUTHENTICATION_REQUIRED", "Authentication is required."),
    403: ("FORBIDDEN", "This is not allowed."),
    404: ("NOT_FOUND", "There is nothing at this address."),
    405: ("METHOD_NOT_ALLOWED", "This method is not allowed here."),
    406: ("NOT_ACCEPTABLE", "This service only answers in JSON (or CSV for exports)."),
    413: ("PAYLOAD_TOO_LARGE", "The request body is too large."),
    415: (
        "UNSUPPORTED_MEDIA_TYPE",
        "Send the request body as JSON, with the header Content-Type: application/json.",
    ),
    429: ("RATE_LIMITED", "Too many requests; slow down."),
}


def error_response(error: ServiceError, headers: dict[str, str] | None = None) -> Response:
    """Render a ServiceError in the envelope with its status code."""
    body: dict[str, Any] = {"success": False, "error": error.message, "error_code": error.code}
    if error.details:
        body["details"] = error.details
    retry_after = error.retry_after
    if retry_after is None and error.status == 503:
        retry_after = DEFAULT_RETRY_AFTER
    headers = dict(headers or {})
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers["Retry-After"] = str(retry_after)
    for key, value in error.extra.items():
        body.setdefault(key, value)
    ERROR_RESPONSES.labels(error.code).inc()
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(headers)
    return response


def _from_validation(detail: dict[str, Any]) -> ValidationFailed:
    """APIFlask's {location: {field: [messages]}} as one sentence per bad field."""
    fields: dict[str, str] = {}
    for location, problems in (detail or {}).items():
        if not isinstance(problems, dict):
            fields[location] = str(problems)
            continue
        for name, messages in problems.items():
            key = "body" if name == "_schema" else name
            text = (
                "; ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            )
            fields[key] = text
    names = ", ".join(sorted(fields)) or "the request"
    return ValidationFailed(f"Invalid input: check {names}.", details=fields)


def register_error_handlers(app: APIFlask) -> None:
    """Install the renderers; called once by the application factory."""

    @app.errorhandler(ServiceError)
    def handle_service_error(error: ServiceError) -> Response:
        if error.status >= 500:
            log.warning(
                "request failed", extra={"error_code": error.code, "details": error.details}
            )
        return error_response(error)

    @app.error_processor
    def handle_apiflask_error(error: HTTPError) -> Response:
        if error.status_code == 400 and isinstance(error.detail, dict) and error.detail:
            return error_response(_from_validation(error.detail))
        if error.status_code >= 500:
            return handle_unexpected(error)
        code, message = _HTTP_CODES.get(error.status_code, ("HTTP_ERROR", "The request failed."))
        return _status_response(error.status_code, code, message, error.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 400:
            return error_response(
                ValidationFailed(
                    "The request body is not valid JSON.", details={"body": "not valid JSON"}
                )
            )
        code, message = _HTTP_CODES.get(status, ("HTTP_ERROR", error.name))
        headers = {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
        if status >= 500:
            return handle_unexpected(error)
        return _status_response(status, code, message, headers)

    @app.errorhandler(sa_exc.DataError)
    def handle_data_error(error: sa_exc.DataError) -> Response:
        log.warning("data error", extra={"error": type(error.orig).__name__})
        return error_response(
            ValidationFailed("A value is out of the range the service can store.")
        )

    @app.errorhandler(sa_exc.IntegrityError)
    def handle_integrity_error(error: sa_exc.IntegrityError) -> Response:
        log.warning("integrity error", extra={"error": type(error.orig).__name__})
        return error_response(Conflict())

    @app.errorhandler(sa_exc.SQLAlchemyError)
    def handle_database_error(error: sa_exc.SQLAlchemyError) -> Response:
        if isinstance(
            error,
            (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                sa_exc.DisconnectionError,
                sa_exc.TimeoutError,
            ),
        ) or getattr(error, "connection_invalidated", False):
            log.error("database unavailable", extra={"error": type(error).__name__})
            return error_response(DatabaseUnavailable())
        return handle_unexpected(error)

    @app.errorhandler(redis.RedisError)
    def handle_redis_error(error: redis.RedisError) -> Response:
        log.error("redis unavailable", extra={"error": type(error).__name__})
        return error_response(RedisUnavailable())

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        log.error("unexpected error", exc_info=error)
        return error_response(ServiceError())


def _status_response(status: int, code: str, message: str, headers: Any = None) -> Response:
    error = ServiceError(message, code=code)
    error.status = status
    return error_response(error, headers=dict(headers or {}))
