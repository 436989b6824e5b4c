"""The audit log, for operators and the Dashboard."""

from __future__ import annotations

from apiflask import APIBlueprint

from routes.security import auth
from schemas.common import error_responses
from schemas.lists import AuditEventOut, AuditOut, AuditQuery
from services import audit

bp = APIBlueprint("audit", __name__, url_prefix="/api/participants", tag="Audit")


@bp.get("/audit")
@bp.doc(
    summary="Audit events, newest first, filtered by giveaway, user, type and time",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["audit"])
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditOut)
def list_audit_events(query: AuditQuery):
    page = audit.list_events(
        where=audit.AuditFilter(
            giveaway_id=query.giveaway_id,
            user_id=query.user_id,
            event_type=str(query.event_type) if query.event_type else None,
            since=query.since,
            until=query.until,
        ),
        limit=query.limit,
        cursor=query.cursor,
    )
    return AuditOut(
        events=[AuditEventOut.model_validate(event, from_attributes=True) for event in page.events],
        next_cursor=page.next_cursor,
    )
