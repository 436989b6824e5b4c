"""Draws: select winners (idempotent), reroll, the commitment and the published record, winners."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import request

from routes.security import auth
from routes.streaming import stream_text
from schemas.common import error_responses
from schemas.draws import (
    DrawDocumentOut,
    InclusionProofOut,
    RerollIn,
    RerollOut,
    SelectWinnersIn,
    SelectWinnersOut,
    WinnerOut,
    WinnersOut,
    WinnerStatusOut,
    header_idempotency_key,
)
from services import draws
from services.errors import ValidationFailed

bp = APIBlueprint("draws", __name__, url_prefix="/api/participants", tag="Draws")


def _winner(winner: draws.Winner) -> WinnerOut:
    return WinnerOut.model_validate(winner, from_attributes=True)


@bp.post("/<id64:giveaway_id>/select-winners")
@bp.post("/select-winners/<id64:giveaway_id>")
@bp.doc(
    summary="Draw the winners (once; later calls return the same draw)",
    description="The first call draws with the seed committed before the draw and reveals it in "
    "the record; every later call answers the same draw with already_drawn: true (409 if "
    "winner_count differs). Zero entrants is a success with no winners; fewer eligible entrants "
    "than prizes: all win and unclaimed_count says how many prizes are left.",
    responses=error_responses(400, 401, 403, 409, 413, 503),
)
@bp.auth_required(auth, roles=["draw"])
@bp.input(SelectWinnersIn, arg_name="body")
@bp.output(SelectWinnersOut)
def select_winners(giveaway_id: int, body: SelectWinnersIn):
    outcome = draws.draw_winners(giveaway_id=giveaway_id, winner_count=body.winner_count)
    return SelectWinnersOut(
        giveaway_id=giveaway_id,
        already_drawn=outcome.already_done,
        winners=[_winner(winner) for winner in outcome.current_winners],
        total_participants=outcome.total_participants,
        winner_count=outcome.record["requested_count"],
        unclaimed_count=max(0, outcome.record["requested_count"] - len(outcome.current_winners)),
        skipped=outcome.record["skipped"],
        draw=outcome.record,
        verification_url=draws.verification_url(giveaway_id),
    )


@bp.post("/<id64:giveaway_id>/reroll")
@bp.doc(
    summary="Replace a winner or add winners (never a past winner)",
    description="Its own chained record, with the seed the previous record committed to. "
    "Idempotent under idempotency_key (or the Idempotency-Key header).",
    responses=error_responses(400, 401, 403, 409, 413, 503),
)
@bp.auth_required(auth, roles=["draw"])
@bp.input(RerollIn, arg_name="body")
@bp.output(RerollOut)
def reroll(giveaway_id: int, body: RerollIn):
    key = body.idempotency_key or header_idempotency_key(request.headers.get("Idempotency-Key"))
    if not key:
        raise ValidationFailed(
            "Invalid input: check idempotency_key.",
            details={"idempotency_key": "required (body field or Idempotency-Key header)"},
        )
    outcome = draws.reroll(
        giveaway_id=giveaway_id,
        replace_user_id=body.replace_user_id,
        add_count=body.add_count,
        reason=body.reason,
        idempotency_key=key,
    )
    return RerollOut(
        giveaway_id=giveaway_id,
        already_done=outcome.already_done,
        replaced_user_id=outcome.record["replaced_user_id"],
        new_winners=[_winner(winner) for winner in outcome.new_winners],
        winners=[_winner(winner) for winner in outcome.current_winners],
        unclaimed_count=outcome.record["unclaimed_count"],
        draw=outcome.record,
    )


@bp.post("/<id64:giveaway_id>/commitment")
@bp.doc(
    summary="Commit to the draw's seed now (idempotent)",
    description="Publishes the SHA-256 of the seed the draw will use. Created anyway with the "
    "giveaway's first entry; call this when the giveaway is published to fix it earlier.",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["draw"])
@bp.output(DrawDocumentOut)
def commit(giveaway_id: int):
    return draws.commit_to_seed(giveaway_id)


@bp.get("/<id64:giveaway_id>/draw")
@bp.doc(
    summary="The commitment before the draw; every record after it",
    responses=error_responses(400, 401, 403, 404, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.output(DrawDocumentOut)
def draw_document(giveaway_id: int):
    return draws.draw_document(giveaway_id)


@bp.get("/<id64:giveaway_id>/draw/entrants")
@bp.doc(
    summary="The canonical entrant list the draw uses (text, one user id per line, ascending)",
    responses={
        200: {"description": "The list", "content": {"text/plain": {"schema": {"type": "string"}}}},
        **error_responses(400, 401, 403, 503),
    },
)
@bp.auth_required(auth, roles=["read"])
def entrants(giveaway_id: int):
    return stream_text(
        draws.stream_entrants(giveaway_id),
        mimetype="text/plain",
        filename=f"entrants-{giveaway_id}.txt",
        inline=True,
    )


@bp.get("/<id64:giveaway_id>/draw/proof/<id64:user_id>")
@bp.doc(
    summary="One entrant's proof of inclusion in the committed entrant list",
    description="The user's leaf, salt and Merkle path to the entrant root fixed when entries "
    "closed: it proves this user was counted and shows no one else's id. 409 before entries "
    "close; 404 for a user who is not an entrant.",
    responses=error_responses(400, 401, 403, 404, 409, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.output(InclusionProofOut)
def inclusion_proof(giveaway_id: int, user_id: int):
    return draws.inclusion_proof(giveaway_id=giveaway_id, user_id=user_id)


@bp.get("/<id64:giveaway_id>/winners")
@bp.doc(
    summary="The giveaway's winners now",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.output(WinnersOut)
def winners(giveaway_id: int):
    current = draws.current_winners(giveaway_id)
    document_drawn = bool(current) or draws.has_draw(giveaway_id)
    return WinnersOut(
        giveaway_id=giveaway_id,
        drawn=document_drawn,
        winners=[_winner(winner) for winner in current],
        total_winners=len(current),
    )


@bp.get("/winner-status/<id64:user_id>/<id64:giveaway_id>")
@bp.doc(
    summary="Did this user take part in the giveaway, and win? (user first)",
    responses=error_responses(400, 401, 403, 503),
)
@bp.auth_required(auth, roles=["read"])
@bp.output(WinnerStatusOut)
def winner_status(user_id: int, giveaway_id: int):
    status = draws.winner_status(user_id=user_id, giveaway_id=giveaway_id)
    return WinnerStatusOut(
        user_id=user_id,
        giveaway_id=giveaway_id,
        participated=status.participated,
        is_winner=status.is_winner,
        winner_selected_at=status.winner_selected_at,
        position=status.position,
        total_winners=status.total_winners,
    )
