"""Prometheus metrics. Protected by the ``metrics`` scope (admin) unless METRICS_REQUIRE_AUTH is
false; operators may instead serve them on an internal port (METRICS_PORT, gunicorn.conf.py)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from config import current_settings
from routes.security import authorize
from utils.metrics import render

bp = APIBlueprint("metrics", __name__, tag="Operations")


@bp.get("/metrics")
@bp.doc(hide=True)
def metrics():
    authorize("metrics", required=current_settings().metrics_require_auth)
    body, content_type = render()
    return Response(body, content_type=content_type)
