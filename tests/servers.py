"""Real processes for the tests that need them: gunicorn instances and the development stand-in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, log: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up:\n" + log.read_text(errors="replace")[-3000:])


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path, ready_url: str):
    """Run ``command`` in its own process group until the block ends."""
    with log.open("wb") as output:
        child = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_up(ready_url, log)
            yield child
        finally:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)


@contextmanager
def gunicorn(env: dict[str, str], tmp_path: Path, name: str = "service"):
    """The service under gunicorn on a free loopback port; yields its base URL."""
    port = free_port()
    full_env = {**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    full_env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / f"{name}-metrics"))
    base = f"http://127.0.0.1:{port}"
    command = [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"]
    with process(command, full_env, tmp_path / f"{name}.log", f"{base}/health"):
        yield base


@contextmanager
def standin(tmp_path: Path, secret: str, delay_ms: float = 0):
    """The development stand-in for the siblings and Telegram; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "devtools/standin.py",
        "--port",
        str(port),
        "--service-secret",
        secret,
        "--telegram-delay-ms",
        str(delay_ms),
    ]
    with process(command, dict(os.environ), tmp_path / "standin.log", f"{base}/health"):
        yield base
