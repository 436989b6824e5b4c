"""Prometheus metrics. Protected by the ``metrics`` scope (admin) unless METRICS_REQUIRE_AUTH is
false; operators may instead serve them on an internal port (METRICS_PORT, gunicorn.conf.py)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from routes.security import METRICS_SCOPE, auth
from services import pending
from utils.metrics import render

bp = APIBlueprint("metrics", __name__, tag="Operations")


@bp.get("/metrics")
@bp.doc(hide=True)
@bp.auth_required(auth, roles=[METRICS_SCOPE])
def metrics():
    pending.refresh_gauges()  # the queue of pending verifications, read from the database
    body, content_type = render()
    return Response(body, content_type=content_type)
