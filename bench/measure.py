"""What is measured on the machine: memory of a worker, CPU seconds of each part of the stack,
what the app's PostgreSQL sessions wait on, py-spy profiles, and a description of the machine."""

from __future__ import annotations

import os
import platform
import re
import resource
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import redis

from bench.harness import (
    DB_NAME,
    PG_ADMIN_DSN,
    REDIS_URL,
    ROOT,
    STANDIN_FAST_PORT,
    WORK,
    Bench,
    Fetched,
    connect,
    log,
)
from devtools.backends import VENV_BIN

# --- processes -----------------------------------------------------------------------------------


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0])
    return values


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, writing 5 to clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class _Sampling(ABC):
    """A sampler thread started and stopped with a ``with`` block; subclasses define ``_run``."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @abstractmethod
    def _run(self) -> None:
        """Sample until ``self._stop`` is set."""


class RssSampler(_Sampling):
    """Samples a process's VmRSS every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._started = 0.0
        super().__init__()

    def __enter__(self) -> RssSampler:
        self._started = time.perf_counter()
        return super().__enter__()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = memory_kb(self.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            self.samples.append((time.perf_counter() - self._started, rss))
            self._stop.wait(self.interval)

    def peak_kb(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes_named(name: str) -> list[int]:
    """Every process whose command name is ``name``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def postgres_pids() -> list[int]:
    """The PostgreSQL processes working for this benchmark: its database's backends and the
    server's own background processes (WAL writer, checkpointer...), not other databases' clients."""
    conn = connect()
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE (datname = %s AND pid <> pg_backend_pid()) "
            "OR backend_type <> 'client backend'",
            (DB_NAME,),
        )
        pids = [row[0] for row in cursor.fetchall()]
    conn.close()
    return pids


class CpuMeter:
    """CPU seconds spent by each part of the stack between start() and stop()."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self._before: dict[str, dict[int, float]] = {}
        self.seconds: dict[str, float] = {}

    def _snapshot(self) -> dict[str, dict[int, float]]:
        return {
            name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()
        }

    def __enter__(self) -> CpuMeter:
        self._before = self._snapshot()
        self._machine = machine_busy_seconds()
        self._self = resource.getrusage(resource.RUSAGE_SELF)
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        after = self._snapshot()
        self.wall = time.perf_counter() - self._wall
        for name, pids in after.items():
            before = self._before.get(name, {})
            self.seconds[name] = round(sum(t - before.get(pid, 0.0) for pid, t in pids.items()), 2)
        self.seconds["wrk"] = _rusage_delta(resource.RUSAGE_CHILDREN, self._children)
        self.seconds["harness"] = _rusage_delta(resource.RUSAGE_SELF, self._self)
        busy = machine_busy_seconds() - self._machine
        self.seconds["machine busy"] = round(busy, 2)
        self.seconds["machine capacity"] = round(self.wall * (os.cpu_count() or 1), 2)
        # CPU used by processes that are not part of this benchmark (another test run, ...): noise.
        self.seconds["other processes"] = round(
            max(
                0.0,
                busy
                - sum(v for k, v in self.seconds.items() if not k.startswith(("machine", "other"))),
            ),
            2,
        )


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all CPUs)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _rusage_delta(who: int, before: resource.struct_rusage) -> float:
    after = resource.getrusage(who)
    return round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)


class WaitSampler(_Sampling):
    """What the app's PostgreSQL sessions are doing, sampled every ``interval`` s from pg_stat_activity."""

    def __init__(self, application_name: str, interval: float = 0.1) -> None:
        self.application_name = application_name
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.samples = 0
        super().__init__()

    def _run(self) -> None:
        conn = connect()
        conn.autocommit = True
        with conn.cursor() as cursor:
            while not self._stop.is_set():
                cursor.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name = %s",
                    (DB_NAME, self.application_name),
                )
                self.samples += 1
                for state, kind, event in cursor.fetchall():
                    if state == "idle":
                        key = "idle (in the pool)"
                    elif state == "active":
                        key = f"active: {kind}:{event}" if kind else "active: on CPU"
                    else:
                        key = f"{state}: {kind}:{event}" if kind else f"{state}"
                    self.counts[key] = self.counts.get(key, 0) + 1
                self._stop.wait(self.interval)
        conn.close()

    def summary(self) -> dict[str, float]:
        """Average number of sessions in each state over the run."""
        if not self.samples:
            return {}
        ranked = sorted(self.counts.items(), key=lambda item: -item[1])
        return {key: round(count / self.samples, 2) for key, count in ranked[:8]}


# --- profiling (optional, --profile) -------------------------------------------------------------


class Profiler:
    """py-spy record (collapsed stacks) on some worker processes, until stop() (SIGINT)."""

    def __init__(self, pids: list[int], out: Path, rate: int = 250, gil: bool = False) -> None:
        self.files = [Path(f"{out}-{pid}.txt") for pid in pids]
        self.procs: list[subprocess.Popen] = []
        spy = VENV_BIN / "py-spy"
        if not spy.exists():
            log("  (py-spy is not installed: no profile; pip install py-spy)")
            return
        for pid, path in zip(pids, self.files, strict=True):
            self.procs.append(
                subprocess.Popen(
                    [
                        str(spy),
                        "record",
                        *(["--gil"] if gil else []),
                        "--pid",
                        str(pid),
                        "--rate",
                        str(rate),
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.5)  # let py-spy attach

    def stop(self) -> dict:
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        return summarize_profile(self.files)


def summarize_profile(files: list[Path], top: int = 25) -> dict:
    """Inclusive and self sample shares per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            frames = [
                f for f in frames if not f.startswith("process ") and not f.startswith("thread ")
            ]
            total += count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
            if frames:
                own[frames[-1]] = own.get(frames[-1], 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda item: -item[1])[:top]
        return [(name, round(100 * count / total, 1)) for name, count in ranked] if total else []

    return {"samples": total, "inclusive": share(inclusive), "self": share(own)}


# --- one request, its memory measured ------------------------------------------------------------


def measure_one_request(
    bench: Bench,
    label: str,
    request: Callable[[], Fetched],
    warmup: Callable[[], None] | None,
    *,
    telegram_port: int = STANDIN_FAST_PORT,
    **settings,
) -> tuple[Fetched, dict]:
    """Restart a single-worker service, warm it up, then one request with its memory sampled
    (``settings``: more of ``harness.service_env``'s)."""
    # The full run restarts the worker before each memory measurement; the smoke run need not.
    bench.stack.start_service(
        label,
        reuse=not bench.scale.restart_for_memory,
        workers=1,
        worker_class=bench.single_class,
        telegram_port=telegram_port,
        **settings,
    )
    (worker,) = bench.stack.workers()
    if warmup is not None:
        warmup()
    before = memory_kb(worker)
    reset = reset_peak(worker)
    profiler = Profiler([worker], WORK / f"profile-{label}") if bench.profile else None
    with RssSampler(worker) as sampler:
        fetched = request()
    after = memory_kb(worker)
    if profiler:
        bench.profiles[label] = profiler.stop()
    peak = max(after["VmHWM"] if reset else 0, sampler.peak_kb())
    memory = {
        "rss_before_mb": round(before["VmRSS"] / 1024, 1),
        "rss_after_mb": round(after["VmRSS"] / 1024, 1),
        "peak_mb": round(peak / 1024, 1),
        "peak_growth_mb": round((peak - before["VmRSS"]) / 1024, 1),
        "retained_growth_mb": round((after["VmRSS"] - before["VmRSS"]) / 1024, 1),
        "peak_source": "VmHWM (reset before the request) and 20 ms VmRSS samples"
        if reset
        else "20 ms VmRSS samples",
        "samples": sampler.samples,
    }
    if bench.scale.restart_for_memory:
        bench.stack.stop_server()
    return fetched, memory


# --- the machine ---------------------------------------------------------------------------------


def machine() -> dict:
    """The machine, its PostgreSQL, Redis and wrk, and the commit measured."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])

    def command(argv: list[str]) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, check=False, cwd=ROOT
            ).stdout.strip()
        except OSError:
            return ""

    conn = connect(PG_ADMIN_DSN)
    with conn.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg_version = cursor.fetchone()[0].split(" on ")[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "max_connections", "synchronous_commit"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    conn.close()
    dirty = command(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_settings": settings,
        "redis": redis.Redis.from_url(REDIS_URL).info("server").get("redis_version"),
        "wrk": command(["wrk", "--version"]).splitlines()[0]
        if command(["wrk", "--version"])
        else "",
        "commit": command(["git", "rev-parse", "HEAD"]),
        "commit_subject": command(["git", "log", "-1", "--format=%s"]),
        "worktree_dirty": bool(dirty),
        "dirty_files": dirty.splitlines(),
        "load_average_at_start": os.getloadavg(),
    }
