"""The Telegram client reads an answer only from a 200 (issue 14: a 404 saying "member")."""

from __future__ import annotations

import pytest

from services.clients import telegram
from services.errors import UpstreamUnavailable
from tests.conftest import BOT, BOT_TOKEN, TELEGRAM_URL

MEMBER = {"ok": True, "result": {"status": "member"}}


@pytest.mark.parametrize("status", [201, 202, 301, 400, 403, 404, 409, 418])
def test_a_member_answer_under_another_status_than_200_is_never_read_as_one(app, peers, status):
    peers.mock.get(f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember", status=status, json=MEMBER)
    with app.app_context(), pytest.raises(UpstreamUnavailable) as error:
        telegram.get_chat_member(token=BOT_TOKEN, chat_id=-100, user_id=1)
    assert error.value.reason == f"http_{status}"


def test_a_user_behind_a_404_member_answer_is_not_entered(client, peers):
    peers.standard()
    peers.telegram_answer = lambda _user: (404, MEMBER)
    response = client.post(
        "/api/participants/verify-subscription", json={"user_id": 5, "account_id": 42}, headers=BOT
    )
    assert response.status_code == 503
    assert response.get_json()["error_code"] == "SUBSCRIPTION_CHECK_UNAVAILABLE"
