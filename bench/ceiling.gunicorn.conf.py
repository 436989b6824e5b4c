"""Gunicorn settings of the ceiling app: exactly the service's (``gunicorn.conf.py``), read from it so
they cannot drift apart, without the service's own start-up hooks (configuration check, metrics).

Kept: every plain setting (bind, workers, worker_class, threads, worker_connections, timeouts,
keepalive, backlog, logging) and the ``post_fork`` hook that makes psycopg2 cooperative under
gevent. Dropped: ``on_starting`` (checks the *service's* settings), ``when_ready`` and
``child_exit`` (Prometheus), which the ceiling does not have.
"""

import runpy
import types
from pathlib import Path

_SERVICE_CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
_DROPPED_HOOKS = {"on_starting", "when_ready", "child_exit", "on_exit", "worker_exit"}

for _name, _value in runpy.run_path(str(_SERVICE_CONF)).items():
    if _name.startswith("_") or _name in _DROPPED_HOOKS or isinstance(_value, types.ModuleType):
        continue
    if callable(_value) and _name != "post_fork":
        continue
    globals()[_name] = _value
