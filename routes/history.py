"""A user's participation history."""

from __future__ import annotations

from apiflask import APIBlueprint

from routes.security import auth
from schemas.common import error_responses
from schemas.lists import HistoryOut, HistoryQuery
from services import history
from services.errors import UserNotFound

bp = APIBlueprint("history", __name__, url_prefix="/api/participants", tag="History")


@bp.get("/history/<id64:user_id>")
@bp.doc(
    summary="A user's totals and entries, newest first (cursor-paginated)",
    responses=error_responses(400, 401, 403, 404, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.input(HistoryQuery, location="query", arg_name="query")
@bp.output(HistoryOut)
def user_history(user_id: int, query: HistoryQuery):
    stats = history.user_stats(user_id)
    if not stats.known:
        raise UserNotFound(details={"user_id": user_id})
    page = history.participations(user_id=user_id, limit=query.limit, cursor=query.cursor)
    return HistoryOut(
        user_stats={
            "user_id": user_id,
            "captcha_completed": stats.captcha_completed,
            "captcha_completed_at": stats.captcha_completed_at,
            "total_participations": stats.total_participations,
            "total_wins": stats.total_wins,
            "first_participation_at": stats.first_participation_at,
            "last_participation_at": stats.last_participation_at,
        },
        participations=[vars(item) for item in page.participations],
        next_cursor=page.next_cursor,
    )
