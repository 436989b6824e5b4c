#!/usr/bin/env python3
"""`make fuzz`: schemathesis against every operation of /openapi.json, longer than CI's run.

Two targets:

- the application in process (default): built like the test suite builds it (SQLite file under
  /tmp, or ``--database-url``), migrated, every sibling and Telegram mocked with ``responses`` so
  that any id gets an answer (the world of ``tests/test_fuzz.py``), and seeded with a drawn
  giveaway, an open one, a committed one and a pending captcha;
- a running instance (``--url http://127.0.0.1:8004``, with ``--token`` or ``FUZZ_TOKEN``, an
  admin token): whatever siblings that instance uses (``make run``: the development stand-in).

For every operation: the coverage phase (schemathesis' deterministic boundary and type cases, both
valid and invalid) unless ``--no-coverage``, then ``--examples`` generated cases of valid input and
as many of invalid input. Every response is checked: no 5xx (except the contract's retryable 503
when a peer cannot answer), documented status code, documented content type, and the documented
schema of that status. Prints a table of status codes per operation and every distinct failure
(with a curl line to reproduce it); exits 1 when there is any.

    .venv/bin/python devtools/fuzz.py --examples 300
    .venv/bin/python devtools/fuzz.py --url http://127.0.0.1:8004 --token "$ADMIN_TOKEN"
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import responses
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests import test_fuzz as world
from tests.conftest import TOKENS, test_env


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("FUZZ_EXAMPLES", 200)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 20261126)))
    parser.add_argument("--no-coverage", action="store_true", help="skip the coverage phase")
    parser.add_argument("--operation", default="", help="only operations whose label has this")
    parser.add_argument("--url", default=os.environ.get("FUZZ_URL", ""), help="a running service")
    parser.add_argument("--token", default=os.environ.get("FUZZ_TOKEN", ""), help="admin token")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FUZZ_DATABASE_URL", ""),
        help="in-process target's database, migrated and EMPTIED first: give it a database of "
        "its own, e.g. postgresql://postgres@127.0.0.1:5432/participant_fuzz (default: a fresh "
        "SQLite file under /tmp, removed afterwards)",
    )
    parser.add_argument(
        "--redis",
        nargs="?",
        const="fake",
        default=os.environ.get("FUZZ_REDIS_URL", ""),
        metavar="URL",
        help="in-process target with the Redis captcha store and cache: fakeredis, or the Redis "
        "at URL (flushed before and after: give it a database of its own, e.g. "
        "redis://127.0.0.1:6379/12)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also check the input side: documented-valid input is not refused with 400, "
        "documented-invalid input is refused (generation is then not steered to the seeded world)",
    )
    parser.add_argument(
        "--max-failures", type=int, default=50, help="stop after this many distinct failures"
    )
    return parser.parse_args(argv)


# --- the in-process target -------------------------------------------------------------------


@contextlib.contextmanager
def in_process_app(database_url: str, redis_url: str = ""):
    """The service on a migrated, empty database, its peers mocked, the world seeded."""
    from flask_migrate import upgrade

    from app import MIGRATIONS_DIR, create_app
    from config import normalize_database_url
    from extensions import db
    from tests.conftest import wipe

    database_url = normalize_database_url(database_url)
    scratch = None
    if not database_url:
        scratch = Path(tempfile.gettempdir()) / f"telegive-fuzz-{os.getpid()}.db"
        database_url = f"sqlite:///{scratch}"
    overrides = {"LOG_LEVEL": "ERROR"}
    if redis_url and redis_url != "fake":
        overrides["REDIS_URL"] = redis_url
    app = create_app(test_env(database_url, **overrides))
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
    wipe(database_url)
    if redis_url == "fake":
        import fakeredis

        from tests.conftest import attach_redis

        attach_redis(app, fakeredis.FakeRedis(decode_responses=True))
    redis_client = app.extensions.get("telegive.redis")
    if redis_client is not None:
        redis_client.flushdb()
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            world.fuzz_world(mock)
            world.seed_world(app)
            yield app
    finally:
        if redis_client is not None:
            redis_client.flushdb()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if scratch is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{scratch}{suffix}").unlink(missing_ok=True)


# --- the run ---------------------------------------------------------------------------------


# What a failed example raises: schemathesis' FailureGroup is a BaseExceptionGroup.
REPORTED = (Exception, BaseExceptionGroup)


class Tally:
    """Status codes per operation, and distinct failures."""

    def __init__(self, max_failures: int) -> None:
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.failures: dict[tuple[str, str], str] = {}
        self.max_failures = max_failures
        self.calls = 0
        self.checks = list(world.CHECKS)

    def record_failure(self, label: str, error: BaseException) -> None:
        text = str(error).strip()
        key = (label, text.splitlines()[2] if len(text.splitlines()) > 2 else text)
        self.failures.setdefault(key, text)

    @property
    def exhausted(self) -> bool:
        return len(self.failures) >= self.max_failures


def call_and_check(case, tally: Tally, label: str, call_kwargs: dict[str, Any]) -> None:
    world.PEER_FAILURES.clear()
    response = case.call(**call_kwargs)
    tally.calls += 1
    tally.statuses[label][response.status_code] += 1
    case.validate_response(response, checks=tally.checks)


def fuzz_operation(operation, schema, tally: Tally, args, call_kwargs: dict[str, Any]) -> None:
    label = operation.label
    if not args.no_coverage:
        generation = schema.config.generation_for(operation=operation, phase="coverage")
        for case in schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=generation,
        ):
            try:
                call_and_check(case, tally, label, call_kwargs)
            except REPORTED as error:  # every failure is reported, the run goes on
                tally.record_failure(label, error)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @seed(args.seed)
        @settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            call_and_check(case, tally, label, call_kwargs)

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to make invalid (an operation without parameters or body)
        except REPORTED as error:  # hypothesis shrank it; report and go on
            tally.record_failure(f"{label} ({mode.value})", error)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    config = world.schemathesis_config(
        examples=args.examples,
        seed=args.seed,
        coverage=not args.no_coverage,
        token=args.token or TOKENS["admin"],
    )
    token = args.token or TOKENS["admin"]
    tally = Tally(args.max_failures)
    if args.strict:
        tally.checks += world.STRICT_CHECKS
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.url:
            if not args.token:
                print("--url needs --token (or FUZZ_TOKEN): an admin token of that instance")
                return 2
            schema = world.load_schema_from_url(args.url, config, steered=not args.strict)
            call_kwargs: dict[str, Any] = {"base_url": args.url.rstrip("/"), "timeout": 30}
            target = args.url
        else:
            app = stack.enter_context(in_process_app(args.database_url, args.redis))
            schema = world.load_schema(app, config, steered=not args.strict)
            call_kwargs = {"app": app}
            target = f"in process ({args.database_url or 'SQLite under /tmp'}"
            target += f", Redis {args.redis})" if args.redis else ")"
        # The coverage phase's cases do not get the configured headers: send the token always.
        call_kwargs["headers"] = {"X-Service-Token": token}
        operations = [
            result.ok()
            for result in schema.get_all_operations()
            if args.operation in result.ok().label
        ]
        print(
            f"fuzzing {len(operations)} operations of {target}: "
            f"{'coverage phase + ' if not args.no_coverage else ''}"
            f"{args.examples} valid + {args.examples} invalid examples each, seed {args.seed}"
        )
        for operation in operations:
            if tally.exhausted:
                print(f"stopping: {args.max_failures} distinct failures")
                break
            before = time.monotonic()
            fuzz_operation(operation, schema, tally, args, call_kwargs)
            statuses = " ".join(
                f"{status}×{count}"
                for status, count in sorted(tally.statuses[operation.label].items())
            )
            print(f"  {operation.label:<62} {time.monotonic() - before:6.1f}s  {statuses}")
    elapsed = time.monotonic() - started
    print(f"\n{tally.calls} requests in {elapsed:.0f}s; {len(tally.failures)} distinct failure(s)")
    for (label, _), text in tally.failures.items():
        print(f"\n=== {label}\n{text}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
