"""Resource sampling for the service benches (not a test helper): CPU time and memory of the worker
processes and of the PostgreSQL backends serving the bench database, read from /proc (no psutil).

- CPU seconds (utime + stime) per process: how much of the two cores each side used, so a run can
  say "PostgreSQL spent x ms of CPU per patient" -- the basis of the scale-out estimate.
- Memory: VmRSS for workers; for PostgreSQL backends RssAnon (private memory: VmRSS also counts the
  shared buffers a backend has touched, which belong to the server, not the connection).
- A time series of the worker pool children's RSS, to show whether memory is flat over a run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from bench._common import _status_kb as status_kb

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of the process so far (children not included), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def postgres_pids() -> list[int]:
    """Every process of the PostgreSQL server (postmaster, backends, checkpointer, walwriter, ...)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() in ("postgres", "postmaster"):
                        out.append(int(d))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out


def backend_pids(admin_url: str, dbname: str) -> list[int]:
    """PostgreSQL backends connected to `dbname` right now (pg_stat_activity)."""
    engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("select pid from pg_stat_activity where datname = :d and pid <> pg_backend_pid()"),
                             {"d": dbname})
            return [int(r[0]) for r in rows]
    finally:
        engine.dispose()


@dataclass
class RunSampler:
    """Samples, every `interval` s during one run: the summed RSS of the worker pool children, and the
    RSS / RssAnon of the PostgreSQL backends of the bench database; CPU time is read at start/stop."""

    worker_pids: Callable[[], list[tuple[str, int]]]  # (role, pid), e.g. bench._common.Workers.pids
    admin_url: str
    dbname: str
    interval: float = 1.0
    series: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, children RSS kB)
    pg_peak_rss_kb: int = 0
    pg_peak_anon_kb: int = 0
    pg_backends_seen: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _cpu0: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # "workers" / "postgres": CPU seconds in the run

    def _cpu_now(self) -> dict[str, float]:
        return {"workers": sum(cpu_s(pid) for _, pid in self.worker_pids()),
                "postgres": sum(cpu_s(pid) for pid in postgres_pids())}

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._cpu0 = self._cpu_now()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backends: list[int] = []
        last_lookup = -1e9
        while not self._stop.is_set():
            now = time.perf_counter() - self._t0
            children = sum(status_kb(pid, "VmRSS") for role, pid in self.worker_pids() if role == "child")
            self.series.append((now, children))
            if now - last_lookup > 5:  # backends come and go with the pool; look them up now and then
                backends, last_lookup = backend_pids(self.admin_url, self.dbname), now
                self.pg_backends_seen.update(backends)
            for pid in backends:
                self.pg_peak_rss_kb = max(self.pg_peak_rss_kb, status_kb(pid, "VmRSS"))
                self.pg_peak_anon_kb = max(self.pg_peak_anon_kb, status_kb(pid, "RssAnon"))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        end = self._cpu_now()
        # a worker child recycled meanwhile takes its CPU time with it: then the figure is a floor
        self.cpu = {k: max(0.0, end[k] - self._cpu0.get(k, 0.0)) for k in end}

    def rss_profile(self) -> dict[str, float]:
        """Children RSS (MiB) at 25 / 50 / 75 / 100 % of the run and the growth from 25 % to the end."""
        if not self.series:
            return {}
        end = self.series[-1][0] or 1.0

        def at(frac: float) -> float:
            best = min(self.series, key=lambda s: abs(s[0] - frac * end))
            return best[1] / 1024

        out = {f"rss_{int(f * 100)}": at(f) for f in (0.25, 0.5, 0.75, 1.0)}
        out["growth_25_to_end"] = out["rss_100"] - out["rss_25"]
        return out
