"""Shared plumbing of the bench/ scripts that drive real services (not a test helper).

- a PostgreSQL database of the bench's own (imn_bench_<random>), created, migrated and dropped (the
  server's other databases are never touched);
- a redis-server of the bench's own (tests/_servers.py: a free loopback port, in memory, stopped when
  the bench exits), which the bench flushes; IMN_BENCH_REDIS_URL names another one to use instead
  (then that database is flushed: never point it at a Redis that holds anything);
- real `celery -A tasks.worker worker` processes (prefork, --concurrency 1 each), loading
  bench._worker_ext (-I), which adds a no-op task and per-task counters kept in Redis;
- peak memory of the worker processes from /proc (VmHWM of each parent and child; no psutil here).
"""

from __future__ import annotations

import atexit
import cProfile
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("IMN_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# None: a private redis-server, started on first use (redis_url()); a bench may set it to its own
REDIS_URL: str | None = os.environ.get("IMN_BENCH_REDIS_URL") or None
QUEUE = "imn"
TASKS_KEY = "bench:tasks"  # hash: task name -> number run (bench._worker_ext)
FAILED_KEY = "bench:failed"  # hash: task name -> failures / retries
CACHE_KEY = "bench:cache"  # hash: worker child pid -> "hits,misses" of its TimelineCache
NOOP_KEY = "bench:noop"
HOLD_QUEUE = "bench_hold"  # no-op messages wait here until released to QUEUE
TASK_S_KEY = "bench:task_s"  # hash: task name -> seconds spent in it (sum over workers)


# ------------------------------------------------------------------------------------------- services

@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh database of the bench's own, migrated to head; dropped on the way out."""
    name = f"imn_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        reset_schema(url)
        yield url
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def reset_schema(url: str) -> None:
    from storage.db import upgrade

    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("drop schema public cascade; create schema public"))
    upgrade(engine)
    engine.dispose()


def redis_url() -> str:
    """The bench's broker: IMN_BENCH_REDIS_URL, else a redis-server of this process's own, started
    here once (the benches flush their broker: the machine's Redis must never be it)."""
    global REDIS_URL
    if REDIS_URL is None:
        REDIS_URL = _private_redis()
    return REDIS_URL


_private: list[Any] = []  # the PrivateRedis started by _private_redis, if any


def _private_redis() -> str:
    from tests._servers import PrivateRedis

    if shutil.which("redis-server") is None:
        raise SystemExit("bench: redis-server not found on PATH (a private one is started for the bench); "
                         "install Redis or set IMN_BENCH_REDIS_URL to a Redis database the bench may flush")
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="imn-bench-redis-")))
    server.start()
    _private.append(server)
    if len(_private) == 1:
        atexit.register(stop_private_redis)  # the kernel stops it too, should the bench die outright
    print(f"  (broker: a private redis-server on port {server.port})", flush=True)
    return server.url


def stop_private_redis() -> None:
    """Stop the bench's own redis-server (at exit); the next redis_url() starts a new one."""
    global REDIS_URL
    while _private:
        server = _private.pop()
        server.kill()
        shutil.rmtree(server.dir, ignore_errors=True)
        if REDIS_URL == server.url:
            REDIS_URL = None


def redis_client():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(redis_url(), socket_connect_timeout=5)


def flush_redis() -> None:
    redis_client().flushdb()


def wait_for_bench_redis(timeout: float = 600) -> None:
    """Before flushing: wait until no other client uses the bench's Redis database (another bench on
    this shared machine, whose workers would run this bench's tasks against their database)."""
    r = redis_client()
    db = int(r.connection_pool.connection_kwargs.get("db", 0))
    me = r.client_id()
    t0 = time.monotonic()
    while True:
        others = [f"{c.get('addr')} {c.get('name') or ''} cmd={c.get('cmd')}".strip() for c in r.client_list()
                  if int(c.get("db", -1)) == db and int(c["id"]) != me]
        if not others:
            return
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"Redis database {db} still used by others after {timeout:.0f} s: {others[:5]}")
        print(f"  (Redis database {db} in use by {len(others)} other client(s), e.g. {others[0]}; waiting)", flush=True)
        time.sleep(15)


def broker_drained(r) -> bool:  # type: ignore[no-untyped-def]
    """No message waiting in the queue and none delivered but unacknowledged (acks_late)."""
    return r.llen(QUEUE) == 0 and r.hlen("unacked") == 0


def task_counts(r) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {k.decode(): int(v) for k, v in r.hgetall(TASKS_KEY).items()}


def task_seconds(r) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {k.decode(): float(v) for k, v in r.hgetall(TASK_S_KEY).items()}


def failed_counts(r) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {k.decode(): int(v) for k, v in r.hgetall(FAILED_KEY).items()}


def bench_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMN_")}
    env.update({"IMN_DATABASE_URL": db_url, "IMN_BROKER_URL": redis_url(), "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def configure_client(db_url: str):  # type: ignore[no-untyped-def]
    """This (bench) process as a Celery client of the same broker, configured as the workers are."""
    from tasks import runtime
    from tasks.app import app, configure
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=db_url, broker_url=redis_url(), _env_file=None))
    configure(rt.settings)
    return app


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "condition") -> float:
    """Poll until pred() holds. A Redis that restarts meanwhile (the machine is shared) is waited for;
    its queues are empty afterwards, so the run will likely time out: see redis_run_id()."""
    import redis

    t0 = time.perf_counter()
    while True:
        try:
            if pred():
                return time.perf_counter()
        except redis.exceptions.ConnectionError as exc:
            print(f"  (Redis not answering while waiting for {what}: {exc})", flush=True)
            time.sleep(1)
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)


def redis_run_id(r) -> str:  # type: ignore[no-untyped-def]
    """Changes when the Redis server restarts (which empties every queue: the run is void)."""
    return str(r.info("server")["run_id"])


# -------------------------------------------------------------------------------------------- workers

def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


@dataclass
class Workers:
    """N `celery -A tasks.worker worker` processes, each prefork with --concurrency 1 (so N
    parents + N pool children), on queue `imn`, with the production task settings (tasks.app)."""

    env: dict[str, str]
    logdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    peak_kb: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (role, VmHWM kB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    def start(self, n: int, concurrency: int = 1, loglevel: str = "INFO") -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        logs = []
        for i in range(n):
            log_path = self.logdir / f"worker-{i}.log"
            log = open(log_path, "wb")
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tasks.worker", "worker", "-I", "bench._worker_ext",
                 "-Q", QUEUE, f"--concurrency={concurrency}", "--pool=prefork", f"--loglevel={loglevel}",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 f"--hostname=bench{i}-{uuid.uuid4().hex[:6]}@%h"],
                env=self.env, cwd=self.logdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
            logs.append(log_path)
        deadline = time.monotonic() + 90
        for p in logs:
            while b" ready." not in p.read_bytes():
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"worker not ready: {p.read_text()[-2000:]}")
                time.sleep(0.1)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def pids(self) -> list[tuple[str, int]]:
        out = []
        for p in self.procs:
            out.append(("parent", p.pid))
            out += [("child", c) for c in _children(p.pid)]
        return out

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.25)

    def sample(self) -> None:
        for role, pid in self.pids():
            hwm = _status_kb(pid, "VmHWM")
            if hwm:
                self.peak_kb[pid] = (role, max(hwm, self.peak_kb.get(pid, (role, 0))[1]))

    def rss_now_kb(self) -> dict[str, int]:
        """Current VmRSS summed by role."""
        out = {"parent": 0, "child": 0}
        for role, pid in self.pids():
            out[role] += _status_kb(pid, "VmRSS")
        return out

    def peaks(self) -> dict[str, int]:
        """Highest VmHWM of any parent, of any child, and the sum of all (kB)."""
        self.sample()
        by_role = {"parent": 0, "child": 0}
        for role, kb in self.peak_kb.values():
            by_role[role] = max(by_role[role], kb)
        return {**by_role, "sum": sum(kb for _, kb in self.peak_kb.values()), "processes": len(self.peak_kb)}

    def stop(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        self.procs.clear()


@contextmanager
def running_workers(env: dict[str, str], logdir: Path, n: int) -> Iterator[Workers]:
    w = Workers(env, logdir)
    try:
        w.start(n)
        yield w
    finally:
        w.stop()


# ------------------------------------------------------------------------------------------ reporting

def noop_rate(app, r, n: int, timeout: float = 300) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The Celery ceiling: n no-op tasks run by the workers, timed until all ran (a Redis counter
    incremented by the task). The messages are published first to a queue nobody consumes and then
    handed to the workers at once (RENAME to the `imn` list), so the figure is what the workers can
    consume, not how fast this one client can publish.
    Returns (tasks run per second, tasks published per second by this client)."""
    r.delete(NOOP_KEY, HOLD_QUEUE)
    t0 = time.perf_counter()
    for _ in range(n):
        app.send_task("bench.noop", queue=HOLD_QUEUE)
    publish_per_s = n / (time.perf_counter() - t0)
    if r.llen(HOLD_QUEUE) != n or r.exists(QUEUE):
        raise RuntimeError("unexpected queue state before the no-op run")
    t1 = time.perf_counter()
    r.rename(HOLD_QUEUE, QUEUE)
    t2 = wait_until(lambda: int(r.get(NOOP_KEY) or 0) >= n, timeout, 0.005, "no-op tasks")
    wait_until(lambda: broker_drained(r), 30, 0.01, "broker drained")
    return n / (t2 - t1), publish_per_s


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    try:
        with sa.create_engine(PG_ADMIN_URL).connect() as c:
            pg = c.execute(sa.text("show server_version")).scalar()
    except Exception:  # noqa: BLE001
        pg = "?"
    try:
        rv = redis_client().info("server")["redis_version"]
    except Exception:  # noqa: BLE001
        rv = "?"
    return (f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}, "
            f"PostgreSQL {pg}, Redis {rv}")


def load_note() -> str:
    """The 1/5/15-minute load averages: another job on this 2-core machine skews every figure."""
    a, b, c_ = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c_:.2f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def profile_breakdown(prof: cProfile.Profile, parts: list[tuple[str, str, str]], total: float) -> str:
    """Inclusive time of chosen functions (label, file suffix, function name) as a share of `total`."""
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    lines = []
    for label, suffix, name in parts:
        ct = sum(v[3] for (fn, _, fname), v in stats.items() if fname == name and fn.endswith(suffix))
        lines.append(f"    {label:44s} {ct:7.2f} s  {100 * ct / total:5.1f} %")
    return "\n".join(lines)


def top_functions(prof: cProfile.Profile, n: int = 15) -> str:
    """The n functions with the most own time (tottime)."""
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    out = []
    for (fn, line, name), (_, nc, tt, ct, _) in rows:
        short = "/".join(Path(fn).parts[-2:]) if fn != "~" else "~"
        out.append(f"    {tt:7.2f} s own  {ct:7.2f} s cum  {nc:>9}  {short}:{line}({name})")
    return "\n".join(out)


# where a reassessment's time goes (tasks.reassess.reassess), for profile_breakdown
REASSESS_PARTS = [
    ("patient_marks", "storage/patients.py", "patient_marks"),
    ("TimelineCache.load", "storage/event_store.py", "load"),
    ("  event_marks (max(id), count per patient)", "storage/event_store.py", "event_marks"),
    ("  load_timelines (SELECT + rebuild events)", "storage/event_store.py", "load_timelines"),
    ("assess()", "monitor/assess.py", "assess"),
    ("reconcile_many (alerts, audit, outbox)", "storage/alerts.py", "reconcile_many"),
    ("clear_dirty", "storage/patients.py", "clear_dirty"),
    ("save_assessments", "storage/patients.py", "save_assessments"),
    ("session commit", "sqlalchemy/orm/session.py", "commit"),
    ("psycopg execute (all SQL, server wait included)", "psycopg/cursor.py", "execute"),
]
