"""`make bench`: the service's benchmarks against the ceiling of this stack (see bench/run.py).

Nothing is imported here: gunicorn imports ``bench.ceiling_app`` on its own.
"""
