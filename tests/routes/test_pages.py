"""The public draw page over HTTP: open without a token, every fact stated without JavaScript,
a plain 404 page, a strict Content-Security-Policy, the public draw document and the proof
lookup (one id, nothing else, rate-limited per client), and the whole page under 60 KB."""

from __future__ import annotations

import re

import pytest
import redis

from devtools import drand_chain
from extensions import get_redis
from services.public_draws import client_key
from services.telegram_budget import LocalPacer
from tests.conftest import DRAND_CHAIN, GIVEAWAY
from tests.factories import add_entries
from tests.routes.test_draws import USERS, reroll, select_winners, winner_ids
from utils import draw as algorithm

WEB_FILES = ("web/static/draw.css", "web/static/telegive-draw.js", "web/static/draw-page.js")


class Clock:
    """A clock for the in-process limit that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drawn(app, client, peers, *, rerolls: bool = True) -> list[dict]:
    """A giveaway of USERS drawn (three winners), then a replacement and an added winner."""
    peers.standard()
    add_entries(app, 1, USERS)
    first = select_winners(client, count=3).get_json()
    if rerolls:
        reason = 'unreachable <script>alert("x")</script> — не ответил'
        replaced = winner_ids(first)[0]
        assert reroll(client, key="r1", replace_user_id=replaced, reason=reason).status_code == 200
        assert reroll(client, key="r2", add_count=1).status_code == 200
    api = client.get("/api/participants/1/draw", headers=GIVEAWAY).get_json()
    return api["records"]


def published_ids(records: list[dict]) -> set[int]:
    """Every user id the records themselves publish."""
    ids = set()
    for record in records:
        ids |= {w["user_id"] for w in record["winners"]} | {s["user_id"] for s in record["skipped"]}
        ids |= set(record["exclusions"])
        if record["replaced_user_id"] is not None:
            ids.add(record["replaced_user_id"])
    return ids


def test_before_the_draw_the_page_shows_the_commitment_and_not_drawn_yet(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    commitment = client.get("/api/participants/1/draw", headers=GIVEAWAY).get_json()["commitment"]
    page = client.get("/draws/1")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Not drawn yet" in html
    assert commitment in html
    assert f'<span data-field="0.entrant_count">{len(USERS)}</span> so far' in html
    assert not any(str(user) in html for user in USERS)


def test_the_page_states_every_fact_of_the_draw_and_its_rerolls_without_javascript(
    app, client, peers
):
    records = drawn(app, client, peers)
    page = client.get("/draws/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    first = records[0]
    for fact in (first["entrant_root"], first["commitment"], first["seed"], str(USERS.__len__())):
        assert fact in html
    for record in records:
        assert record["record_hash"] in html
        assert record["seed"] in html
        beacon = record["beacon"]
        for relay in ("https://api.drand.sh", "https://drand.cloudflare.com"):
            assert f"{relay}/{DRAND_CHAIN.hash}/public/{beacon['round']}" in html
        for winner in record["winners"]:
            assert f"#{winner['position']} {winner['user_id']}" in html
    assert f"replaced winner {records[1]['replaced_user_id']}" in html
    assert "added 1 winner(s)" in html
    # The reroll's reason is text, never markup.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; — не ответил" in html
    now = sorted((p, u) for u, p in algorithm.winners_after(records).items())
    listed = "".join(f"<li>#{position} {user_id}</li>" for position, user_id in now)
    assert f'<ol class="ids" data-winners="now">{listed}</ol>' in html
    # No entrant id beyond those the records publish.
    shown = {int(n) for n in re.findall(r"\b\d{10}\b", html)} & set(USERS)
    assert shown and shown <= published_ids(records)


@pytest.mark.parametrize("path", ["/draws/999", "/draws/abc", "/draws/0", "/draws/1/nothing"])
def test_an_unknown_giveaway_is_a_plain_404_page(client, path):
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert "Not found" in answer.get_data(as_text=True)
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_page_and_its_files_carry_a_strict_policy_and_no_inline_code(app, client, peers):
    drawn(app, client, peers, rerolls=False)
    html = client.get("/draws/1").get_data(as_text=True)
    for path in ["/draws/1", *(f"/draws/static/{name.split('/')[-1]}" for name in WEB_FILES)]:
        with client.get(path) as answer:
            assert answer.status_code == 200, path
            policy = answer.headers["Content-Security-Policy"]
            assert "script-src 'self';" in policy and "default-src 'none'" in policy
            assert "unsafe-inline" not in policy
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert re.findall(r"<script[^>]*>", html) == [
        '<script src="/draws/static/telegive-draw.js" defer>',
        '<script src="/draws/static/draw-page.js" defer>',
    ]
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    with client.get("/draws/static/draw-page.js") as script:
        assert script.mimetype in ("text/javascript", "application/javascript")


def test_the_page_with_its_styles_and_scripts_stays_under_60_kb(app, client, peers):
    drawn(app, client, peers)
    sizes = {"/draws/1": len(client.get("/draws/1").data)}
    for name in WEB_FILES:
        path = f"/draws/static/{name.split('/')[-1]}"
        with client.get(path) as answer:
            sizes[path] = len(answer.data)
    assert sum(sizes.values()) < 60_000, sizes


def test_the_record_is_the_api_document_for_anyone(app, client, peers):
    records = drawn(app, client, peers)
    public = client.get("/draws/1/record.json")
    assert public.status_code == 200
    api = client.get("/api/participants/1/draw", headers=GIVEAWAY)
    assert public.get_json() == api.get_json()
    assert public.get_json()["records"] == records
    assert client.get("/api/participants/1/draw").status_code == 401  # the API still needs one
    unknown = client.get("/draws/999/record.json")
    assert unknown.status_code == 404
    assert unknown.get_json()["error_code"] == "DRAW_NOT_FOUND"
    assert unknown.get_json()["success"] is False


def test_a_proof_lookup_answers_for_one_id_and_shows_no_one_else(app, client, peers):
    peers.standard()
    add_entries(app, 1, USERS)
    early = client.get(f"/draws/1/proof/{USERS[0]}.json")
    assert early.status_code == 409
    assert early.get_json()["error_code"] == "ENTRIES_NOT_COMMITTED"
    record = select_winners(client, count=3).get_json()["draw"]
    user = USERS[7]
    answer = client.get(f"/draws/1/proof/{user}.json")
    assert answer.status_code == 200
    body = answer.get_json()
    api = client.get(f"/api/participants/1/draw/proof/{user}", headers=GIVEAWAY).get_json()
    assert body == api
    assert algorithm.check_proof(body, [record]) == []
    text = answer.get_data(as_text=True)
    assert not any(str(other) in text for other in USERS if other != user)
    assert set(body) == {
        "success",
        "giveaway_id",
        "user_id",
        "algorithm",
        "algorithm_version",
        "entrant_root",
        "entrant_count",
        "entrants_committed_at",
        "leaf_index",
        "salt",
        "leaf",
        "proof",
    }
    stranger = client.get(f"/draws/1/proof/{USERS[-1] + 1}.json")
    assert stranger.status_code == 404
    assert stranger.get_json() == {
        "success": False,
        "error": "That user is not in this giveaway's committed entrant list.",
        "error_code": "NOT_AN_ENTRANT",
        "details": {"giveaway_id": 1, "user_id": USERS[-1] + 1},
    }
    malformed = client.get("/draws/1/proof/abc.json")
    assert malformed.status_code == 400
    assert malformed.get_json()["error_code"] == "VALIDATION_ERROR"


def limited_app(make_app, **overrides):
    return make_app(PUBLIC_PROOF_LOOKUPS_PER_MINUTE="6", PUBLIC_PROOF_LOOKUP_BURST="3", **overrides)


def lookup(client, user_id: int, address: str = "203.0.113.5", **headers: str):
    return client.get(
        f"/draws/1/proof/{user_id}.json",
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def test_proof_lookups_are_limited_per_client_and_every_lookup_counts(make_app, peers):
    app = limited_app(make_app)
    clock = Clock()
    app.extensions["telegive.proof_lookups"].local = LocalPacer(clock=clock)
    client = app.test_client()
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client, count=2)
    # Three at once (entrants or not: guessing ids costs the same), then one every 10 s.
    assert [lookup(client, user).status_code for user in (USERS[0], 1, USERS[1])] == [200, 404, 200]
    refused = lookup(client, USERS[2])
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"
    body = refused.get_json()
    assert body["success"] is False
    assert body["error_code"] == "RATE_LIMITED"
    assert body["retry_after"] == 10
    assert lookup(client, USERS[2], address="198.51.100.9").status_code == 200  # another client
    clock.now += 9
    assert lookup(client, USERS[2]).status_code == 429
    clock.now += 1
    assert lookup(client, USERS[2]).status_code == 200
    assert lookup(client, USERS[3]).status_code == 429
    # The page itself and the record are not counted.
    assert client.get("/draws/1", environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 200
    assert client.get("/draws/1/record.json").status_code == 200


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(make_app, peers):
    direct = limited_app(make_app)
    behind = limited_app(make_app, TRUSTED_PROXY_HOPS="1")
    peers.standard()
    add_entries(direct, 1, USERS)
    select_winners(direct.test_client(), count=2)
    # Without a trusted proxy, a made-up X-Forwarded-For changes nothing.
    client = direct.test_client()
    codes = [
        lookup(client, USERS[0], **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code
        for n in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    # Behind one proxy, each client the proxy names has its own lookups.
    client = behind.test_client()
    codes = [
        lookup(client, USERS[0], address="10.0.0.1", **{"X-Forwarded-For": f"192.0.2.{n}"})
        for n in range(4)
    ]
    assert [answer.status_code for answer in codes] == [200, 200, 200, 200]


def test_proof_lookups_are_shared_by_every_instance_on_one_redis(make_app, peers):
    first = limited_app(make_app, redis=True)
    with first.app_context():
        try:
            get_redis().eval("return 1", 0)
        except redis.ResponseError:
            pytest.skip("this Redis runs no Lua scripts: set TEST_REDIS_URL")
    second = limited_app(make_app, redis=True)
    second.extensions["telegive.redis"] = first.extensions["telegive.redis"]
    peers.standard()
    add_entries(first, 1, USERS)
    select_winners(first.test_client(), count=2)
    codes = [lookup(first.test_client(), USERS[0]).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    refused = lookup(second.test_client(), USERS[0])
    assert refused.status_code == 429
    assert 9 <= int(refused.headers["Retry-After"]) <= 10
    with first.app_context():
        keys = list(get_redis().scan_iter("telegive:participant:proof_lookups:*"))
    assert len(keys) == 1 and keys[0].endswith("203.0.113.5")


def test_an_ipv6_client_is_counted_by_its_network():
    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2:ffff::1")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:203.0.113.5") == client_key("203.0.113.5") == "203.0.113.5"
    assert client_key(None) == "unknown"


def test_the_page_of_a_draw_without_a_beacon_says_so(make_app, peers):
    app = make_app(DRAW_BEACON="off")
    client = app.test_client()
    peers.standard()
    add_entries(app, 1, USERS)
    select_winners(client, count=2)
    html = client.get("/draws/1").get_data(as_text=True)
    assert "none (no public randomness was used)" in html
    assert drand_chain.DEV_CHAIN.hash not in html
