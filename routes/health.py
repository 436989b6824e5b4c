"""Health: ``/health`` and ``/health/live`` answer from memory; ``/health/ready`` checks the
database and Redis. All three stay open (no token), and none makes an outgoing call."""

from __future__ import annotations

from apiflask import APIBlueprint

from schemas.health import HealthOut, ReadyOut
from services.health import readiness
from version import __version__

bp = APIBlueprint("health", __name__, tag="Health")


@bp.get("/health")
@bp.doc(summary="Healthy when the process serves requests (no dependency is called)")
@bp.output(HealthOut)
def health():
    return HealthOut(status="healthy", version=__version__)


@bp.get("/health/live")
@bp.doc(summary="Liveness: the process answers")
@bp.output(HealthOut)
def live():
    return HealthOut(status="alive", version=__version__)


@bp.get("/health/ready")
@bp.doc(
    summary="Readiness: the database (at the expected schema) and Redis, when configured",
    responses={
        503: {
            "description": "Not ready",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ReadyOut"}}},
        }
    },
)
@bp.output(ReadyOut)
def ready():
    checks = readiness()
    ok = all(check.ok for check in checks)
    failing = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    body = ReadyOut(
        success=ok,
        status="ready" if ok else "not_ready",
        checks={
            c.name: {"ok": c.ok, "detail": c.detail, "duration_ms": c.duration_ms} for c in checks
        },
        error=None if ok else "Not ready: " + "; ".join(failing),
        error_code=None if ok else "NOT_READY",
    )
    return body, 200 if ok else 503
