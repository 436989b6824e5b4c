"""DEVELOPMENT TOOL — private PostgreSQL and Redis servers, the stand-in and service instances,
for `make load` and `make chaos`; `make bench` starts its processes with the same helpers.

The chaos run stops and starts its database and Redis on purpose, so it gets servers of its own
(the machine's PostgreSQL 15 and Redis binaries, on their own ports and data directories) and never
touches the shared ones other work depends on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from devtools import drand_chain

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path(f"/usr/lib/postgresql/{sorted(os.listdir('/usr/lib/postgresql'))[-1]}/bin")
STANDIN_SECRET = "standin-secret-for-load-and-chaos"
TOKENS = {
    "bot": "load-bot-token-0123456789",
    "giveaway": "load-giveaway-token-0123456",
    "dashboard": "load-dashboard-token-012345",
    "admin": "load-admin-token-0123456789",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(*command: str) -> list[str]:
    """Run a PostgreSQL tool as the postgres user when we are root (it refuses root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="telegive-pg-"))
        self.data = self.directory / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/telegive"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")

    def init(self) -> None:
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"
            ),
            check=True,
            capture_output=True,
        )
        self.start()
        subprocess.run(
            [
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "telegive",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=on"
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-w",
                "-l",
                str(self.directory / "postgres.log"),
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"),
            check=False,
            capture_output=True,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    """A Redis server of our own that keeps nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def running(
    command: list[str],
    env: dict[str, str],
    log: Path,
    ready_url: str,
    seconds: float = 30,
    *,
    cwd: Path = ROOT,
):
    """A child process in its own group, up (``ready_url`` answers) for the block's duration."""
    with log.open("wb") as output:
        child = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    requests.get(ready_url, timeout=1)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline or child.poll() is not None:
                        raise RuntimeError(f"{command[0]} did not start; see {log}") from None
                    time.sleep(0.1)
            yield child
        finally:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def service_env(
    database_url: str,
    redis_url: str | None,
    siblings: str,
    *,
    base: dict[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """Production settings for an instance of the service, on top of ``base`` (this environment),
    with the stand-in (``siblings``) as the drand relay of the development chain. APP_ENV is
    development only because production refuses that chain (its key is public); nothing else
    differs."""
    env = {
        **(os.environ if base is None else base),
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "TELEGIVE_GIVEAWAY_URL": siblings,
        "TELEGIVE_CHANNEL_URL": siblings,
        "TELEGIVE_AUTH_URL": siblings,
        "TELEGRAM_API_BASE": siblings,
        "SERVICE_TO_SERVICE_SECRET": STANDIN_SECRET,
        "SERVICE_TOKENS": ",".join(f"{caller}={token}" for caller, token in TOKENS.items()),
        "REQUIRE_SERVICE_AUTH": "true",
        # The stand-in's Telegram has no flood limit: every call still takes its slot of the
        # per-bot budget, but the budget is set far above any load these tools make.
        "TELEGRAM_CALLS_PER_SECOND": "100000",
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": "2",
        "FLASK_APP": "app:create_app",
        **drand_chain.env(siblings),
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def migrate(env: dict[str, str], cwd: Path = ROOT) -> None:
    """``flask db upgrade`` with these settings, on the code in ``cwd``."""
    subprocess.run(
        [str(VENV_BIN / "flask"), "db", "upgrade"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )


@contextmanager
def standin(
    workdir: Path, delay_ms: float = 0, port: int | None = None, telegram_limit: int | None = None
):
    """The development stand-in (``workdir/standin.log``), on ``port`` or a free one; its
    Telegram allows ``telegram_limit`` calls a second per bot (None: any number)."""
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "devtools/standin.py",
        "--port",
        str(port),
        "--service-secret",
        STANDIN_SECRET,
        "--telegram-delay-ms",
        str(delay_ms),
        *([] if telegram_limit is None else ["--telegram-limit", str(telegram_limit)]),
    ]
    with running(command, dict(os.environ), workdir / "standin.log", f"{base}/health"):
        yield base


@contextmanager
def instance(env: dict[str, str], workdir: Path, name: str):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full = {
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"{name}-metrics"),
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
    }
    command = [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"]
    with running(command, full, workdir / f"{name}.log", f"{base}/health"):
        yield base
