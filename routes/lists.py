"""What the Giveaway service and the Dashboard read: lists, counts, stats, the CSV export."""

from __future__ import annotations

from apiflask import APIBlueprint

from routes.security import auth
from routes.streaming import stream_json, stream_text
from schemas.common import documented, error_responses
from schemas.lists import (
    CountOut,
    DashboardListOut,
    DashboardListQuery,
    GiveawayListOut,
    GiveawayListQuery,
    StatsOut,
)
from services import listing

bp = APIBlueprint("lists", __name__, url_prefix="/api/participants", tag="Lists and stats")


def _page_head(giveaway_id: int, page: listing.Page) -> dict:
    return {
        "success": True,
        "giveaway_id": giveaway_id,
        "total": page.total,
        "page": page.page,
        "limit": page.limit,
        "totalPages": page.total_pages,
        "next_cursor": page.next_cursor,
    }


@bp.get("/<digits:giveaway_id>")
@bp.doc(
    summary="A giveaway's entries, page by page (streamed; limit may be the whole giveaway)",
    description="Page N is entries (N-1)·limit+1 .. N·limit in the order they were accepted; "
    "deep pages cost the same as the first. Pass next_cursor as cursor to continue.",
    responses={
        200: {
            "description": "A page",
            "content": {"application/json": {"schema": documented(GiveawayListOut)}},
        },
        **error_responses(400, 401, 403, 503),
    },
)
@bp.auth_required(auth, roles=["read"])
@bp.input(GiveawayListQuery, location="query", arg_name="query")
def giveaway_list(giveaway_id: int, query: GiveawayListQuery):
    page = listing.list_page(
        giveaway_id=giveaway_id, page=query.page, limit=query.limit, cursor=query.cursor
    )
    return stream_json(_page_head(giveaway_id, page), "participants", page.chunks)


@bp.get("/list/<id64:giveaway_id>")
@bp.doc(
    summary="The Dashboard's list: entries with the giveaway's stats and pagination",
    responses={
        200: {
            "description": "A page",
            "content": {"application/json": {"schema": documented(DashboardListOut)}},
        },
        **error_responses(400, 401, 403, 503),
    },
)
@bp.auth_required(auth, roles=["read"])
@bp.input(DashboardListQuery, location="query", arg_name="query")
def dashboard_list(giveaway_id: int, query: DashboardListQuery):
    stats = listing.giveaway_stats(giveaway_id)
    page = listing.list_page(
        giveaway_id=giveaway_id, page=query.page, limit=query.limit, cursor=query.cursor
    )
    head = _page_head(giveaway_id, page)
    head["stats"] = {
        "total": stats.total,
        "captcha_completed": stats.captcha_completed,
        "captcha_pending": stats.captcha_pending,
        "winners": stats.winners,
        "subscription_pending": stats.subscription_pending,
        "excluded": stats.excluded,
    }
    return stream_json(head, "participants", page.chunks)


@bp.get("/<id64:giveaway_id>/count")
@bp.get("/count/<id64:giveaway_id>")
@bp.doc(
    summary="How many entries a giveaway has (pending and excluded ones among them)",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.output(CountOut)
def count(giveaway_id: int):
    counts = listing.count_entries(giveaway_id)
    return CountOut(
        giveaway_id=giveaway_id,
        count=counts.total,
        total_participants=counts.total,
        subscription_pending=counts.subscription_pending,
        excluded=counts.excluded,
    )


@bp.get("/<id64:giveaway_id>/stats")
@bp.get("/stats/<id64:giveaway_id>")
@bp.doc(
    summary="A giveaway's figures (cheap enough to poll every five minutes)",
    description="Every entry has passed the captcha, so captcha_completed equals the total; "
    "active excludes entrants found unsubscribed at the draw and entries excluded when their "
    "subscription was verified; subscription_pending counts entries still to be verified (they "
    "count as active); captcha_pending counts users with a live question for this giveaway.",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.output(StatsOut)
def stats(giveaway_id: int):
    figures = listing.giveaway_stats(giveaway_id)
    return StatsOut(
        giveaway_id=giveaway_id,
        stats={
            "total_participants": figures.total,
            "captcha_completed_participants": figures.captcha_completed,
            "active_participants": figures.active,
            "total": figures.total,
            "captcha_completed": figures.captcha_completed,
            "captcha_pending": figures.captcha_pending,
            "winners": figures.winners,
            "unsubscribed": figures.unsubscribed,
            "delivered": figures.delivered,
            "drawn": figures.drawn,
            "subscription_pending": figures.subscription_pending,
            "excluded": figures.excluded,
        },
    )


@bp.get("/export/<id64:giveaway_id>")
@bp.get("/<id64:giveaway_id>/export")
@bp.doc(
    summary="Every entry as CSV (streamed; spreadsheet-safe)",
    responses={
        200: {
            "description": "CSV with a header row",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **error_responses(400, 401, 403, 503),
    },
)
@bp.auth_required(auth, roles=["read"])
def export(giveaway_id: int):
    return stream_text(
        listing.export_csv(giveaway_id),
        mimetype="text/csv",
        filename=f"giveaway-{giveaway_id}-participants.csv",
    )
