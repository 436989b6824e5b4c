"""The harness: where the benchmark runs (database, Redis, ports), the processes it starts, and how
it talks to them (one timed HTTP request, a wrk run).

Processes are started with ``devtools/backends.py``: two stand-ins for the whole run, one app
server (the service or the ceiling app) at a time. Each server start has its own log in
``bench/work/logs/`` (numbered in start order).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
import redis

from devtools import backends
from devtools.backends import VENV_BIN

if TYPE_CHECKING:
    from bench.scales import Scale
    from bench.world import World

ROOT = backends.ROOT
BENCH = ROOT / "bench"
WORK = BENCH / "work"

DB_NAME = "participant_bench"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DSN = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/14"

HOST = "127.0.0.1"
STANDIN_FAST_PORT = 18001
STANDIN_SLOW_PORT = 18002
STANDIN_LIMITED_PORT = 18003  # Telegram at TELEGRAM_SLOW_MS, and a flood limit per bot
TELEGRAM_LIMIT_PER_SECOND = 30
SERVICE_PORT = 18010
CEILING_PORT = 18020
TELEGRAM_SLOW_MS = 100


def log(message: str) -> None:
    """A progress line on stdout, with the time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class BenchError(RuntimeError):
    """A benchmark could not run or got an answer it did not expect."""


def connect(dsn: str = PG_DSN):
    """A psycopg2 connection to the benchmark's database (or ``dsn``)."""
    return psycopg2.connect(dsn, application_name="bench-harness")


def children(pid: int) -> list[int]:
    """The child processes of ``pid``, started from any of its threads."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(part) for part in task.read_text().split()]
        except OSError:
            continue
    return found


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# --- settings of the processes -------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """A clean environment (nothing from the caller's shell but PATH, HOME and the locale)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if k in os.environ}
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_env(
    *,
    telegram_port: int = STANDIN_FAST_PORT,
    workers: int = 2,
    worker_class: str = "gthread",
    threads: int = 8,
    subscription_cache_seconds: int | None = None,
    draw_beacon: str = "drand",
    env: tuple[tuple[str, str], ...] = (),
) -> dict[str, str]:
    """The production settings of the service, pointed at the stand-in and the bench database
    (``env``: more variables, as pairs)."""
    extra = {
        "TELEGRAM_API_BASE": f"http://{HOST}:{telegram_port}",
        "DRAW_RECHECK_SUBSCRIPTION": "true",
        "DRAW_BEACON": draw_beacon,
        "GUNICORN_BIND": f"{HOST}:{SERVICE_PORT}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_WORKER_CLASS": worker_class,
        "GUNICORN_THREADS": str(threads),
    }
    if subscription_cache_seconds is not None:
        extra["SUBSCRIPTION_CACHE_SECONDS"] = str(subscription_cache_seconds)
    extra.update(env)
    siblings = f"http://{HOST}:{STANDIN_FAST_PORT}"
    return backends.service_env(PG_DSN, REDIS_URL, siblings, base=base_env(), **extra)


def gunicorn_env(env: dict[str, str]) -> dict[str, str]:
    """gunicorn.conf.py would make a fresh temporary directory for its metrics at every start."""
    metrics = WORK / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    return {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}


def default_worker_class(app_dir: Path) -> str:
    """The worker class gunicorn.conf.py chooses when GUNICORN_WORKER_CLASS is not set."""
    env = gunicorn_env(service_env())
    env.pop("GUNICORN_WORKER_CLASS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy; print(runpy.run_path('gunicorn.conf.py')['worker_class'])",
        ],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    value = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return value if value in ("gthread", "gevent") else "gthread"


def migrate(app_dir: Path) -> float:
    """``flask db upgrade`` of the bench database with the service's code; its seconds."""
    started = time.perf_counter()
    try:
        backends.migrate(service_env(), cwd=app_dir)
    except subprocess.CalledProcessError as error:
        output = (error.stdout or b"").decode() + (error.stderr or b"").decode()
        raise BenchError(f"flask db upgrade failed:\n{output}") from None
    return time.perf_counter() - started


def preflight() -> None:
    """Stop at once, naming what is missing, when the machine cannot run the benchmark."""
    missing = []
    if not (shutil.which("wrk") or Path("/usr/bin/wrk").exists()):
        missing.append("wrk (apt-get install wrk)")
    if not (VENV_BIN / "gunicorn").exists():
        missing.append("the virtualenv (make install)")
    try:
        connect(PG_ADMIN_DSN).close()
    except psycopg2.Error as error:
        missing.append(f"PostgreSQL on 127.0.0.1:5432 ({str(error).strip()})")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        missing.append(f"Redis on 127.0.0.1:6379 ({error})")
    if missing:
        raise SystemExit("bench: missing " + "; ".join(missing))


def fresh_work_dir() -> Path:
    """``bench/work/`` without an earlier run's logs and scratch files; the logs directory."""
    logs = WORK / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    for stale in [
        *WORK.glob("confirmed-*.txt"),
        *WORK.glob("warm-*.txt"),
        *WORK.glob("profile-*.txt"),
    ]:
        stale.unlink()
    return logs


# --- processes -----------------------------------------------------------------------------------


class Stack:
    """The processes of a run: stand-ins for the whole run, one app server at a time."""

    def __init__(self, logs: Path, app_dir: Path) -> None:
        self.logs = logs
        self.app_dir = app_dir  # where the service's code is (--app-dir: a candidate change)
        self.server: subprocess.Popen | None = None
        self._standins = ExitStack()
        self._server = ExitStack()
        self._server_settings: dict | None = None
        self._starts = 0

    def start_standins(self) -> None:
        """A stand-in answering at once, one whose Telegram answers after TELEGRAM_SLOW_MS, and
        one that also refuses a bot's calls beyond TELEGRAM_LIMIT_PER_SECOND (429)."""
        for port, delay, limit in (
            (STANDIN_FAST_PORT, 0, None),
            (STANDIN_SLOW_PORT, TELEGRAM_SLOW_MS, None),
            (STANDIN_LIMITED_PORT, TELEGRAM_SLOW_MS, TELEGRAM_LIMIT_PER_SECOND),
        ):
            workdir = self.logs / f"standin-{port}"
            workdir.mkdir(parents=True, exist_ok=True)
            self._standins.enter_context(
                backends.standin(workdir, delay, port=port, telegram_limit=limit)
            )

    def standin_pids(self) -> list[int]:
        """The stand-ins' processes (children of this harness running devtools/standin.py)."""
        return [pid for pid in children(os.getpid()) if b"standin.py" in _command_line(pid)]

    def start_service(self, label: str, *, reuse: bool = False, **settings) -> subprocess.Popen:
        """Start the service (stopping whatever runs); ``reuse`` keeps a running one of the same settings."""
        if (
            reuse
            and self.server is not None
            and self.server.poll() is None
            and self._server_settings == settings
        ):
            return self.server
        env = service_env(**settings)
        self._start(
            f"service[{label}]",
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
            gunicorn_env(env),
            f"http://{HOST}:{SERVICE_PORT}/health/ready",
            cwd=self.app_dir,
            workers=int(env["WEB_CONCURRENCY"]),
        )
        self._server_settings = settings
        return self.server

    def start_ceiling(
        self,
        label: str,
        *,
        worker_class: str,
        threads: int,
        workers: int = 2,
        telegram_port: int = STANDIN_FAST_PORT,
    ) -> subprocess.Popen:
        """Start the ceiling app (stopping whatever runs) under the service's gunicorn settings."""
        env = base_env()
        env.update(
            {
                "DATABASE_URL": PG_DSN,
                "CEILING_TELEGRAM_URL": f"http://{HOST}:{telegram_port}",
                "CEILING_POOL_SIZE": "20",  # the service's hot-path pool: DB_POOL_SIZE (20)
                "LOG_LEVEL": "WARNING",
                "GUNICORN_BIND": f"{HOST}:{CEILING_PORT}",
                "WEB_CONCURRENCY": str(workers),
                "GUNICORN_WORKER_CLASS": worker_class,
                "GUNICORN_THREADS": str(threads),
            }
        )
        self._start(
            f"ceiling[{label}]",
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                "bench/ceiling.gunicorn.conf.py",
                "bench.ceiling_app:app",
            ],
            gunicorn_env(env),
            f"http://{HOST}:{CEILING_PORT}/health",
            cwd=ROOT,
            workers=workers,
        )
        return self.server

    def _start(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        ready_url: str,
        *,
        cwd: Path,
        workers: int,
    ) -> None:
        self.stop_server()
        self._starts += 1
        log_path = self.logs / f"{self._starts:02d}-{name.replace('[', '-').rstrip(']')}.log"
        server = ExitStack()
        try:
            self.server = server.enter_context(
                backends.running(command, env, log_path, ready_url, 40, cwd=cwd)
            )
        except RuntimeError:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            raise BenchError(f"{name} did not start:\n{tail}") from None
        self._server = server
        deadline = time.monotonic() + 20
        while len(children(self.server.pid)) < workers:
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: {workers} workers did not start")
            time.sleep(0.1)

    def workers(self) -> list[int]:
        """The running server's worker processes."""
        return children(self.server.pid) if self.server else []

    def stop_server(self) -> None:
        """Stop the running app server, if any."""
        self._server.close()
        self.server = None

    def stop_all(self) -> None:
        """Stop the app server and the stand-ins."""
        self.stop_server()
        self._standins.close()


# --- talking to them -----------------------------------------------------------------------------


@dataclass
class Fetched:
    """An answer as ``fetch`` measured it."""

    status: int
    seconds: float
    first_byte_seconds: float
    nbytes: int
    counted: int  # occurrences of the pattern asked for
    body: bytes | None


def fetch(
    method: str,
    path: str,
    *,
    port: int = SERVICE_PORT,
    token: str | None = None,
    body: dict | None = None,
    count: bytes | None = None,
    keep_body: bool = True,
    timeout: float = 120.0,
) -> Fetched:
    """One request on a fresh connection, timed to the last byte of the answer."""
    headers = {"X-Request-ID": f"bench-{secrets.token_hex(6)}"}
    if token:
        headers["X-Service-Token"] = token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    started = time.perf_counter()
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    first = time.perf_counter() - started
    kept: list[bytes] = []
    nbytes = counted = 0
    tail = b""
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            break
        nbytes += len(chunk)
        if count:
            counted += (tail + chunk).count(count)
            tail = chunk[-(len(count) - 1) :] if len(count) > 1 else b""
        if keep_body:
            kept.append(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    return Fetched(
        response.status, elapsed, first, nbytes, counted, b"".join(kept) if keep_body else None
    )


def expect(fetched: Fetched, status: int, what: str) -> dict | None:
    """The JSON body of an answer that must have ``status`` (else a BenchError naming ``what``)."""
    if fetched.status != status:
        snippet = (fetched.body or b"")[:300].decode(errors="replace")
        raise BenchError(f"{what}: HTTP {fetched.status} (expected {status}) {snippet}")
    if fetched.body is not None and fetched.body[:1] == b"{":
        return json.loads(fetched.body)
    return None


def run_wrk(
    *,
    port: int,
    script: str,
    args: list[str],
    threads: int,
    connections: int,
    seconds: int,
    log_file: Path,
) -> dict:
    """One wrk run of a Lua script beside this file; the figures it prints as BENCH_JSON."""
    argv = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH / script),
        f"http://{HOST}:{port}",
        "--",
        *args,
    ]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    with open(log_file, "a") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}\n")
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr[-500:]}")
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise BenchError(f"wrk printed no BENCH_JSON line:\n{result.stdout[-800:]}")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- one run -------------------------------------------------------------------------------------


@dataclass
class Bench:
    """One run, as every scenario sees it: its scale and data, the processes, what was measured."""

    scale: Scale
    world: World
    stack: Stack
    logs: Path
    profile: bool
    single_class: str = "gthread"  # the production default worker class
    results: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    profiles: dict = field(default_factory=dict)


Scenario = Callable[[Bench], None]
