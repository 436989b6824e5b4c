"""The public draw page, open to anyone without a token: ``/draws/{giveaway_id}``.

The page states the draw's facts in HTML (readable without JavaScript) and its scripts
(``web/static/telegive-draw.js``, ``web/static/draw-page.js``) check them in the browser from the
public draw document (``/draws/{id}/record.json``, the same document as
``GET /api/participants/{id}/draw``) and one inclusion proof per lookup
(``/draws/{id}/proof/{user_id}.json``, rate-limited per client: ``services/public_draws.py``).
Every answer carries a strict Content-Security-Policy: scripts, styles and requests from this
origin only, nothing inline. These routes are not operations of the API, so they are left out of
the OpenAPI document.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, render_template, request

from config import BASE_DIR
from schemas.draws import DrawDocumentOut, InclusionProofOut
from services import public_draws

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
WEB_DIR = BASE_DIR / "web"

bp = APIBlueprint(
    "pages",
    __name__,
    template_folder=str(WEB_DIR / "templates"),
    static_folder=str(WEB_DIR / "static"),
    static_url_path="/draws/static",
    enable_openapi=False,
)


@bp.after_request
def protect(response: Response) -> Response:
    """The page's policy on every answer of this blueprint (static files included)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-cache")
    return response


def _page(giveaway_id: int | None) -> Response | tuple[str, int]:
    page = public_draws.draw_page(giveaway_id) if giveaway_id is not None else None
    if page is None:
        return render_template("not_found.html"), 404
    return render_template("draw.html", page=page, round_links=public_draws.round_links)


@bp.get("/draws/<raw_id>")
def draw_page(raw_id: str):
    """The page; a plain 404 page for anything that is not a giveaway we know."""
    giveaway_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else None
    if giveaway_id is not None and not 1 <= giveaway_id < 2**63:
        giveaway_id = None
    return _page(giveaway_id)


@bp.get("/draws/<path:anything>")
def not_found(anything: str):
    """Anything else under /draws/ that a person might type: the plain 404 page."""
    return render_template("not_found.html"), 404


@bp.get("/draws/<id64:giveaway_id>/record.json")
@bp.output(DrawDocumentOut)
def record(giveaway_id: int):
    """The public draw document: the same as GET /api/participants/{id}/draw."""
    return public_draws.public_document(giveaway_id)


@bp.get("/draws/<id64:giveaway_id>/proof/<id64:user_id>.json")
@bp.output(InclusionProofOut)
def proof(giveaway_id: int, user_id: int):
    """One user's inclusion proof; 429 with Retry-After past the client's lookups."""
    return public_draws.public_proof(
        giveaway_id=giveaway_id, user_id=user_id, client=request.remote_addr
    )
