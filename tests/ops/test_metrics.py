"""The metrics added for the dashboard and the alerts: error answers by code, the database pools,
and the series of rare events that exist before their first occurrence."""

from __future__ import annotations

from sqlalchemy import text

from extensions import db
from tests.conftest import ADMIN, BOT, is_postgres
from tests.test_operations import metric

SELECT_WINNERS = "/api/participants/<id64:giveaway_id>/select-winners"


def scrape(client) -> str:
    return client.get("/metrics", headers=ADMIN).get_data(as_text=True)


def test_error_answers_are_counted_by_their_code(make_app):
    client = make_app().test_client()
    before = scrape(client)
    client.post("/api/participants/register", json={"giveaway_id": 1}, headers=BOT)  # no user_id
    client.get("/api/participants/count/1")  # no token
    after = scrape(client)

    def grew(code):
        name = "telegive_participant_error_responses_total"
        return metric(after, name, code=code) - metric(before, name, code=code)

    assert grew("VALIDATION_ERROR") == 1
    assert grew("AUTHENTICATION_REQUIRED") == 1
    assert grew("DATABASE_UNAVAILABLE") == 0


def test_the_pool_gauge_counts_connections_lent_out_and_back(make_app):
    app = make_app(DB_POOL_SIZE="7")
    client = app.test_client()
    name = "telegive_participant_db_pool_connections_in_use"
    idle = metric(scrape(client), name, pool="transactions")
    with app.app_context():
        connection = db.engine.connect()
        connection.execute(text("SELECT 1"))
        assert metric(scrape(client), name, pool="transactions") == idle + 1
        connection.close()
    assert metric(scrape(client), name, pool="transactions") == idle
    size = metric(scrape(client), "telegive_participant_db_pool_size", pool="transactions")
    if is_postgres(app.config["SQLALCHEMY_DATABASE_URI"]):
        assert size == 7  # DB_POOL_SIZE (SQLite keeps SQLAlchemy's default pool)
    assert size > 0


def test_every_routes_latency_and_the_draw_outcomes_exist_before_they_happen(make_app):
    # A series that first appears at 1 shows Prometheus no increase: the first draw of a worker
    # would be missing from the dashboard if its series were not there, at zero, from the start.
    # (The counters are the process's: earlier tests may have moved them, so only their presence
    # is asserted, for every route, including those no test of this session has called.)
    app = make_app()
    exposition = scrape(app.test_client())
    count = "telegive_participant_http_request_duration_seconds_count"
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert f'{count}{{method="{method}",route="{rule.rule}"}}' in exposition
    assert f'{count}{{method="POST",route="{SELECT_WINNERS}"}}' in exposition
    assert 'telegive_participant_draws_total{kind="draw",outcome="recorded"}' in exposition
