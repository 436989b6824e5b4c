"""Fixtures: the application on SQLite by default, or on the real PostgreSQL and Redis when
TEST_DATABASE_URL / TEST_REDIS_URL are set; outgoing HTTP mocked with ``responses``.

The drand beacon: every test application uses the development chain (devtools/drand_chain.py,
whose key the tests sign with) through the relay ``http://drand.test``, which ``peers`` serves:
any round already published by the beacon's clock. That clock (``beacon_clock``, in every test)
is fake: its wall time stands still, and a sleep returns at once, moving it on instead.

The schema is built once per session by the Alembic migrations (so every run tests them); each
test starts from empty tables. With TEST_REQUIRE_BACKENDS=1 (CI) a missing PostgreSQL or Redis is
an error and any skipped test fails the run: a green run that skipped the database tests is red.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import fakeredis
import pytest
import redis
import responses
from flask_migrate import upgrade
from responses import matchers
from sqlalchemy import create_engine, text

from app import MIGRATIONS_DIR, create_app
from config import current_settings, normalize_database_url
from devtools import drand_chain
from extensions import VERSION_TABLE, db
from models import Base
from services import beacon, cache, captcha

STRICT = os.environ.get("TEST_REQUIRE_BACKENDS") == "1"
TOKENS = {
    "bot": "bot-token-0123456789abcdef",
    "giveaway": "giveaway-token-0123456789ab",
    "dashboard": "dashboard-token-0123456789",
    "admin": "admin-token-0123456789abcdef",
}
GIVEAWAY_URL = "http://giveaway.test"
CHANNEL_URL = "http://channel.test"
AUTH_URL = "http://auth.test"
TELEGRAM_URL = "http://telegram.test"
SERVICE_SECRET = "s2s-secret-for-tests-0123456789"
ACCOUNT_ID = 42
CHANNEL_ID = -1001234567890
BOT_TOKEN = "4242000:AAF-fake-telegram-token-for-the-tests-0"
DRAND_URL = "http://drand.test"
DRAND_CHAIN = drand_chain.DEV_CHAIN  # tests sign its rounds: drand_chain.sign / drand_chain.beacon


def headers_for(caller: str) -> dict[str, str]:
    """The auth header a caller sends."""
    return {"X-Service-Token": TOKENS[caller]}


BOT = headers_for("bot")
GIVEAWAY = headers_for("giveaway")
DASHBOARD = headers_for("dashboard")
ADMIN = headers_for("admin")


# --- backends ---------------------------------------------------------------------------------


def _reachable_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database for the whole session."""
    url = normalize_database_url(os.environ.get("TEST_DATABASE_URL", ""))
    if not url:
        if STRICT:
            pytest.exit("TEST_REQUIRE_BACKENDS=1 but TEST_DATABASE_URL is not set", returncode=3)
        return _migrate(f"sqlite:///{tmp_path_factory.mktemp('db') / 'participant.db'}")
    try:
        _reachable_postgres(url)
    except Exception as error:  # noqa: BLE001 - any failure here means "no database"
        pytest.exit(f"TEST_DATABASE_URL is set but unreachable: {error}", returncode=3)
    _drop_everything(url)
    return _migrate(url)


def _drop_everything(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    engine.dispose()


def _migrate(url: str) -> str:
    app = create_app(test_env(url))
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        db.engine.dispose()
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file of its own, whatever database the session runs on (for the tests
    that compare SQLite with PostgreSQL)."""
    return _migrate(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'participant.db'}")


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """The real Redis for the Redis-backed tests, or None to use fakeredis."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        if STRICT:
            pytest.exit("TEST_REQUIRE_BACKENDS=1 but TEST_REDIS_URL is not set", returncode=3)
        return None
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as error:
        pytest.exit(f"TEST_REDIS_URL is set but unreachable: {error}", returncode=3)
    return url


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


def test_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment a test application is built from."""
    env = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REQUIRE_SERVICE_AUTH": "true",
        "SERVICE_TOKENS": ",".join(f"{caller}={token}" for caller, token in TOKENS.items()),
        "TELEGIVE_GIVEAWAY_URL": GIVEAWAY_URL,
        "TELEGIVE_CHANNEL_URL": CHANNEL_URL,
        "TELEGIVE_AUTH_URL": AUTH_URL,
        "TELEGRAM_API_BASE": TELEGRAM_URL,
        "SERVICE_TO_SERVICE_SECRET": SERVICE_SECRET,
        "LOG_LEVEL": "INFO",
        "CORS_ORIGINS": "https://dashboard.telegive.test",
        **drand_chain.env(DRAND_URL),
    }
    env.update(overrides)
    return env


test_env.__test__ = False  # a helper, not a test


def wipe(url: str) -> None:
    """Empty every table of ours (on PostgreSQL the append-only tables refuse DELETE and
    TRUNCATE: their triggers are skipped for this one transaction of the test database)."""
    engine = create_engine(url)
    tables = [table.name for table in Base.metadata.sorted_tables]
    with engine.begin() as connection:
        if is_postgres(url):
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def attach_redis(app, client: redis.Redis) -> None:
    """Point an application at a Redis client (real or fake) after it was built."""
    app.extensions["telegive.redis"] = client
    with app.app_context():
        cache.init_app(app)
        captcha.init_app(app, current_settings())


@pytest.fixture
def make_app(database_url: str, redis_url: str | None) -> Iterator[Callable[..., object]]:
    """Build applications with environment overrides; ``redis=True`` gives it a Redis store."""
    built = []
    fakes = []

    def build(*, redis: bool = False, **overrides: str):
        env = test_env(database_url, **overrides)
        if redis and redis_url:
            env["REDIS_URL"] = redis_url
        app = create_app(env)
        if redis and not redis_url:
            fake = fakeredis.FakeRedis(decode_responses=True)
            fakes.append(fake)
            attach_redis(app, fake)
        built.append(app)
        return app

    yield build
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        client = app.extensions.get("telegive.redis")
        if client is not None:
            client.flushdb()
    wipe(database_url)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(params=["database", "redis"])
def store_app(request, make_app):
    """The application once with the database captcha store and once with the Redis one."""
    return make_app(redis=request.param == "redis")


# --- the drand beacon's clock -------------------------------------------------------------------


class FakeClock:
    """services.beacon's clock in tests: wall time stands at the test's start and monotonic time
    runs, and both move on by every sleep (which returns at once) and every ``advance``."""

    def __init__(self) -> None:
        self.start = time.time()
        self.skipped = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.start + self.skipped

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.skipped += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, as far as the beacon can tell."""
        self.skipped += seconds

    def latest_round(self) -> int:
        """The test chain's latest round published now."""
        return DRAND_CHAIN.round_at(self.time())


@pytest.fixture(autouse=True)
def beacon_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every test's beacon clock: waiting for a round is instant."""
    fake = FakeClock()
    monkeypatch.setattr(beacon, "clock", fake)
    return fake


# --- the siblings and Telegram, mocked ---------------------------------------------------------


@dataclass
class Peers:
    """The Giveaway, Channel and Auth services, Telegram and a drand relay, as ``responses``
    mocks. The relay serves the test chain's rounds already published by ``clock``, unless
    ``drand_answer`` (round -> status, body) says otherwise."""

    mock: responses.RequestsMock
    clock: FakeClock
    members: dict[int, str] = field(default_factory=dict)
    telegram_answer: Callable[[int], tuple[int, dict]] | None = None
    drand_answer: Callable[[int], tuple[int, dict]] | None = None

    def giveaway(self, giveaway_id: int, *, status: str = "active", account_id: int = ACCOUNT_ID):
        self.mock.upsert(
            responses.GET,
            f"{GIVEAWAY_URL}/api/giveaways/{giveaway_id}",
            json={
                "success": True,
                "giveaway": {
                    "id": giveaway_id,
                    "account_id": account_id,
                    "title": f"Giveaway {giveaway_id}",
                    "status": status,
                    "winner_count": 3,
                    "message_id": 77,
                },
            },
        )

    def channel(self, account_id: int = ACCOUNT_ID, *, channel_id: int = CHANNEL_ID):
        self.mock.upsert(
            responses.GET,
            f"{CHANNEL_URL}/api/accounts/{account_id}/channel",
            json={
                "success": True,
                "channel": {
                    "channel_id": channel_id,
                    "channel_username": "@telegive_news",
                    "channel_title": "Telegive News",
                    "is_verified": True,
                },
            },
        )

    def bot_token(self, account_id: int = ACCOUNT_ID):
        self.mock.upsert(
            responses.GET,
            f"{AUTH_URL}/api/v1/bots/token/{account_id}",
            json={"bot_token": BOT_TOKEN, "bot_id": 4242000},
            match=[matchers.header_matcher({"X-Service-Token": SERVICE_SECRET})],
        )

    def telegram(self):
        def answer(request):
            query = parse_qs(urlsplit(request.url).query)
            user_id = int(query["user_id"][0])
            if self.telegram_answer is not None:
                status, body = self.telegram_answer(user_id)
                return status, {"Content-Type": "application/json"}, _json(body)
            member_status = self.members.get(user_id, "member")
            result = {"status": member_status, "user": {"id": user_id}}
            if member_status == "restricted":
                result["is_member"] = True
            return 200, {"Content-Type": "application/json"}, _json({"ok": True, "result": result})

        self.mock.add_callback(
            responses.GET, f"{TELEGRAM_URL}/bot{BOT_TOKEN}/getChatMember", callback=answer
        )

    def standard(self, *giveaway_ids: int):
        """Active giveaways on account 42, its channel and bot, Telegram saying "member"."""
        for giveaway_id in giveaway_ids or (1,):
            self.giveaway(giveaway_id)
        self.channel()
        self.bot_token()
        self.telegram()
        return self

    def calls_to(self, base: str) -> int:
        return sum(1 for call in self.mock.calls if call.request.url.startswith(base))

    def drand(self) -> None:
        """The relay at DRAND_URL: ``/{chain}/public/{round}`` and ``/{chain}/public/latest``."""
        path = re.compile(rf"{re.escape(DRAND_URL)}/{DRAND_CHAIN.hash}/public/(\d+|latest)$")

        def answer(request):
            asked = path.match(request.url)[1]
            latest = self.clock.latest_round()
            round = latest if asked == "latest" else int(asked)
            if self.drand_answer is not None:
                status, body = self.drand_answer(round)
            elif 1 <= round <= latest:
                status, body = 200, drand_chain.beacon(round)
            else:
                status, body = 404, {"error": "round not published yet"}
            return status, {"Content-Type": "application/json"}, _json(body)

        self.mock.add_callback(responses.GET, path, callback=answer)


def _json(body: dict) -> str:
    return json.dumps(body)


@pytest.fixture
def peers(beacon_clock: FakeClock) -> Iterator[Peers]:
    """The mocked peers; the drand relay is always there."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mocked = Peers(mock, beacon_clock)
        mocked.drand()
        yield mocked


# --- strict mode: no skips in CI ----------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if STRICT and skipped:
        reporter.write_line(
            f"STRICT MODE: {skipped} test(s) were skipped; failing the run.", red=True
        )
        session.exitstatus = 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
