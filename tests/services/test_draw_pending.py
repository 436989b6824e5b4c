"""The draw and entries pending verification (SUBSCRIPTION_OVERFLOW=defer): a pending entrant may
win only on a fresh "subscribed" answer at the draw, whatever DRAW_RECHECK_SUBSCRIPTION says; an
excluded one never wins; both stay in the committed list, and the record says why each was
passed over."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, update

from extensions import db
from models import Participant
from services import draws
from services.errors import SubscriptionCheckUnavailable
from tests.conftest import DRAND_CHAIN
from tests.factories import add_entries
from utils import draw as algorithm

USERS = [3_000_000_000 + i for i in range(1, 41)]
PENDING_MEMBERS = USERS[0:8]
PENDING_GONE = USERS[8:14]
EXCLUDED = USERS[14:20]


def set_status(app, user_ids, status: str) -> None:
    with app.app_context():
        db.session.execute(
            update(Participant)
            .where(Participant.giveaway_id == 1, Participant.user_id.in_(user_ids))
            .values(status=status)
        )
        db.session.commit()


def statuses(app) -> dict[int, str]:
    with app.app_context():
        return dict(
            db.session.execute(
                select(Participant.user_id, Participant.status).where(Participant.giveaway_id == 1)
            ).all()
        )


@pytest.mark.parametrize("recheck", ["false", "true"])
def test_pending_entrants_win_only_on_a_fresh_answer_and_excluded_ones_never(
    make_app, peers, recheck
):
    app = make_app(DRAW_RECHECK_SUBSCRIPTION=recheck)
    peers.standard()
    add_entries(app, 1, USERS, names=False)
    set_status(app, PENDING_MEMBERS + PENDING_GONE, "pending")
    set_status(app, EXCLUDED, "excluded")
    peers.members.update(dict.fromkeys(PENDING_GONE, "left"))
    asked: Counter[int] = Counter()

    def telegram(user_id: int) -> tuple[int, dict]:
        asked[user_id] += 1
        status = peers.members.get(user_id, "member")
        return 200, {"ok": True, "result": {"status": status, "user": {"id": user_id}}}

    peers.telegram_answer = telegram
    with app.app_context():
        outcome = draws.draw_winners(giveaway_id=1, winner_count=len(USERS))
    record = outcome.record
    winners = {w["user_id"] for w in record["winners"]}
    skipped = {s["user_id"]: s for s in record["skipped"]}

    assert winners == set(USERS) - set(EXCLUDED) - set(PENDING_GONE)
    assert set(PENDING_MEMBERS) <= winners
    assert all(skipped[u]["reason"] == "excluded" for u in EXCLUDED)
    assert all(
        skipped[u]["pending"] is True and skipped[u]["status"] == "left" for u in PENDING_GONE
    )
    # Telegram was asked about every pending candidate, and with the re-check off about no one else.
    assert set(PENDING_MEMBERS + PENDING_GONE) <= set(asked)
    if recheck == "false":
        assert set(asked) == set(PENDING_MEMBERS + PENDING_GONE)
    assert not set(asked) & set(EXCLUDED)
    # The pending entries are settled by the draw: winners active, the gone excluded.
    now = statuses(app)
    assert {now[u] for u in PENDING_MEMBERS} == {"active"}
    assert {now[u] for u in PENDING_GONE + EXCLUDED} == {"excluded"}
    # The list stayed the committed one, and the record verifies.
    assert record["entrant_count"] == len(USERS)
    verdict = algorithm.check_draw([record], sorted(USERS), [DRAND_CHAIN])
    assert verdict.problems == [] and verdict.unchecked == []


def test_a_pending_entrant_telegram_cannot_answer_for_fails_the_draw(make_app, peers):
    """ "Cannot verify" never counts as subscribed: the draw fails and records nothing."""
    app = make_app(DRAW_RECHECK_SUBSCRIPTION="false", UPSTREAM_CIRCUIT_FAILURES="1000")
    peers.standard()
    add_entries(app, 1, USERS[:5], names=False)
    set_status(app, USERS[:5], "pending")
    peers.telegram_answer = lambda _user: (502, {"ok": False, "error_code": 502})
    with app.app_context(), pytest.raises(SubscriptionCheckUnavailable):
        draws.draw_winners(giveaway_id=1, winner_count=2)
    assert set(statuses(app).values()) == {"pending"}
    with app.app_context():
        assert draws.draw_document(1)["drawn"] is False
