"""The Bot's delivery reports."""

from __future__ import annotations

from apiflask import APIBlueprint

from routes.security import auth
from schemas.common import error_responses
from schemas.lists import DeliveryIn, DeliveryOut
from services import delivery

bp = APIBlueprint("delivery", __name__, url_prefix="/api/participants", tag="Delivery")


@bp.put("/update-delivery-status")
@bp.doc(
    summary="Record whether messages reached participants",
    description="Known ids are updated (attempts counted); unknown ids are listed in "
    "failed_updates. delivery_timestamp without an offset is read as UTC.",
    responses=error_responses(400, 401, 403, 413, 503),
)
@bp.auth_required(auth, roles=["deliver"])
@bp.input(DeliveryIn, arg_name="body")
@bp.output(DeliveryOut)
def update_delivery_status(body: DeliveryIn):
    result = delivery.update_delivery_status(
        participant_ids=body.participant_ids,
        delivered=body.delivered,
        delivered_at=body.delivery_timestamp,
    )
    error = None
    if result.failed:
        error = f"{len(result.failed)} participant id(s) were not found; the others were updated."
    return DeliveryOut(
        updated_count=len(result.updated),
        updated_ids=result.updated,
        failed_updates=result.failed,
        error=error,
    )
