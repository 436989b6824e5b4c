"""Real processes for the tests that need them, from the same helpers `make load` and
`make chaos` use (devtools/backends.py): gunicorn instances and the development stand-in."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from devtools.backends import ROOT, STANDIN_SECRET, VENV_BIN, free_port, instance, running, standin

__all__ = ["ROOT", "STANDIN_SECRET", "VENV_BIN", "free_port", "gunicorn", "running", "standin"]


@contextmanager
def gunicorn(env: dict[str, str], tmp_path: Path, name: str = "service"):
    """The service under gunicorn on a free loopback port, with ``env`` over ours; its URL."""
    with instance({**os.environ, **env}, tmp_path, name) as base:
        yield base
