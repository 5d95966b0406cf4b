"""Benchmark of the HTTP feed: server CPU per request and read latency during ingest, before and after.

Not a test: it prints figures. Needs the PostgreSQL at 127.0.0.1:5432 (a database
of its own, imn_bench_<random>, dropped at the end) and `redis-server` on PATH: it starts a Redis of
its own (IMN_BENCH_REDIS_URL names another one instead; the bench flushes it).

    .venv/bin/python bench/api.py [--patients 2000] [--configs baseline:1,head:1,head:2] [--baseline main]
                                  [--readers 8] [--duration 15] [--cpu-requests 300] [--idle]
                                  [--ingest-patients 1500] [--ingest-workers 2] [--json PATH]

1. Seed: the synthetic cohort (fixed seed, 3 years from 2023-01-01) stored with store_events by two
   processes, as bench/nightly.py loads it, then assessed in this process (tasks.service.
   reassess_everyone, as of --as-of) so that alerts exist; VACUUM ANALYZE. --ingest-workers real
   celery workers (bench._common.running_workers) run for the rest of the bench.
2. For each configuration of --configs, in turn, against the same database: `imn-monitor api` as a
   separate process (production settings: broker mode, access log at INFO into a file) with
   `--workers N`; code "head" is this checkout, "baseline" the tree of git --baseline (git archive,
   first on PYTHONPATH, with httptools and uvloop hidden from it: they came with the change measured).
   A 3 s warm-up (4 readers) is not recorded. Then
   - CPU per request: --cpu-requests sequential requests of each endpoint from one client, nothing
     else sent to the server; utime + stime of every server process (/proc) over them / requests;
   - N concurrent readers (asyncio tasks sharing one httpx.AsyncClient in this process, up to N
     keep-alive connections) loop for --duration seconds while a fresh synthetic cohort of
     --ingest-patients patients (other patient ids, one file per phase) is sent by
     `imn-monitor ingest --no-wait` (and first with no ingest, with --idle). Each iteration is, at
     random with equal odds, either the alert list (GET /alerts?status=firing&limit=50, then the page
     its next_cursor points to, reported separately as "alerts, cursor page") or a patient summary
     (GET /patients/{id} of a random seeded patient: the server loads the timeline and runs assess()).
   Latency is per request, from send to the whole body read. An error is any status other than 200,
   or an exception (client timeout 60 s). After each phase the bench waits until the server answers
   an authenticated request again, collects the exceptions the server logged, and waits for the
   ingest to settle. Requests/s = completed requests / phase time.
Per phase it also reports CPU time used (as a share of one core) by the API server's processes, this
client process, the celery worker processes, and all PostgreSQL processes of the machine (any
database: others may be using the same server), and the machine's CPU busy share (/proc/stat).

--json PATH writes {"meta": {...}, "cpu_per_request": [config x endpoint], "rows": [config x condition
x readers x endpoint], "phases": [config x condition x readers]} (latencies in ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx
import sqlalchemy as sa

from bench import _common as c

START = date(2023, 1, 1)
YEARS = 3.0
ALERTS_PATH = "/alerts"
ALERTS_PARAMS = {"status": "firing", "limit": "50"}
ENDPOINTS = ("alerts, first page", "alerts, cursor page", "patient summary")
REQUEST_TIMEOUT_S = 60.0  # above the server's pool timeout (30 s): its answer is seen
_TICK = os.sysconf("SC_CLK_TCK")
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout)\b: ")


# ------------------------------------------------------------------------------------------ CPU time

def _proc_cpu_s(pid: int, children: bool = False) -> float:
    """utime + stime of one process (all its threads), in seconds, plus those of its exited and
    reaped children with children=True; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if children:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / _TICK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its live descendants (uvicorn's supervisor and its workers)."""
    return _proc_cpu_s(pid) + sum(_tree_cpu_s(child) for child in c._children(pid))


def _postgres_cpu_s() -> float:
    """CPU seconds of every process named postgres* on the machine (the server, any database), with
    the reaped children of each (a backend that exits is counted in the postmaster's cutime)."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm") as f:
                if not f.read().startswith("postgres"):
                    continue
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += _proc_cpu_s(int(name), children=True)
    return total


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat; iowait counts as idle)."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


@dataclass
class CpuMeter:
    server_pid: int
    worker_pids: list[int] = field(default_factory=list)

    def snapshot(self) -> dict[str, float]:
        busy, total = _machine_cpu()
        return {"t": time.perf_counter(), "server": _tree_cpu_s(self.server_pid), "client": time.process_time(),
                "workers": sum(_proc_cpu_s(p) for p in self.worker_pids), "postgres": _postgres_cpu_s(),
                "busy": busy, "total": total}

    @staticmethod
    def shares(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
        """CPU used between two snapshots, in cores (1.0 = one core fully busy)."""
        dt = b["t"] - a["t"]
        out = {k: (b[k] - a[k]) / dt for k in ("server", "client", "workers", "postgres")}
        out["machine_busy_pct"] = 100 * (b["busy"] - a["busy"]) / max(b["total"] - a["total"], 1)
        return out


# ------------------------------------------------------------------------------------------- readers

@dataclass
class PhaseResult:
    latencies: dict[str, list[float]]
    errors: dict[str, int]
    error_samples: list[str]
    elapsed_s: float


async def _reader(client: httpx.AsyncClient, deadline: float, rng: random.Random, patients: list[str],
                  lat: dict[str, list[float]], errors: dict[str, int], samples: list[str]) -> None:
    async def get(endpoint: str, url: str, params: dict[str, str] | None = None) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            resp = await client.get(url, params=params)
        except httpx.HTTPError as exc:
            lat[endpoint].append(time.perf_counter() - t0)
            errors[endpoint] += 1
            if len(samples) < 5:
                samples.append(f"{endpoint}: {type(exc).__name__} {exc}")
            return None
        lat[endpoint].append(time.perf_counter() - t0)
        if resp.status_code != 200:
            errors[endpoint] += 1
            if len(samples) < 5:
                samples.append(f"{endpoint}: HTTP {resp.status_code} {resp.text[:200]}")
            return None
        return resp

    while time.perf_counter() < deadline:
        if rng.random() < 0.5:
            resp = await get(ENDPOINTS[0], ALERTS_PATH, ALERTS_PARAMS)
            nxt = resp.json().get("next_cursor") if resp is not None else None
            if nxt:
                await get(ENDPOINTS[1], ALERTS_PATH, {**ALERTS_PARAMS, "cursor": nxt})
        else:
            await get(ENDPOINTS[2], f"/patients/{rng.choice(patients)}")


async def _phase(base: str, token: str, readers: int, duration: float, patients: list[str],
                 seed: int) -> PhaseResult:
    lat: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    errors = dict.fromkeys(ENDPOINTS, 0)
    samples: list[str] = []
    limits = httpx.Limits(max_connections=readers, max_keepalive_connections=readers)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, limits=limits,
                                 timeout=REQUEST_TIMEOUT_S) as client:
        t0 = time.perf_counter()
        deadline = t0 + duration
        await asyncio.gather(*[_reader(client, deadline, random.Random(seed * 1000 + i), patients, lat, errors,
                                       samples) for i in range(readers)])
        elapsed = time.perf_counter() - t0
    return PhaseResult(lat, errors, samples, elapsed)


def run_phase(base: str, token: str, readers: int, duration: float, patients: list[str], seed: int) -> PhaseResult:
    return asyncio.run(_phase(base, token, readers, duration, patients, seed))


def pct(sorted_s: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted seconds, in ms."""
    if not sorted_s:
        return float("nan")
    k = max(0, min(len(sorted_s) - 1, int(-(-q * len(sorted_s) // 1)) - 1))
    return 1000 * sorted_s[k]


# -------------------------------------------------------------------------------------------- server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], log_path: Path, workers: int = 1,
                 code: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`imn-monitor api` on a free port; with `code`, that checkout's modules (PYTHONPATH first) run in
    this environment (the baseline of --baseline)."""
    port = _free_port()
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes to it until stop_server
    cmd = [sys.executable, "-c", "from cli.main import main; main()", "api", "--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    if code is not None:
        env = {**env, "PYTHONPATH": str(code)}
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=str(code or ROOT))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"API server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"API server not ready: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)


def new_log_errors(log_path: Path, offset: int) -> tuple[dict[str, int], int]:
    """The exceptions the server logged since `offset` (the last line of each traceback, counted)."""
    with log_path.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
        end = f.tell()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if _EXC_LINE.match(line):
            key = line.split(" (Background on this error", 1)[0][:240]
            counts[key] = counts.get(key, 0) + 1
    return counts, end


def wait_server_idle(base: str, token: str) -> float:
    """Until an authenticated request is answered (whatever the phase left queued in the server has
    finished); seconds waited."""
    t0 = time.perf_counter()
    httpx.get(base + ALERTS_PATH, params={"limit": "1"}, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    return time.perf_counter() - t0


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -------------------------------------------------------------------------------------------- ingest

def write_cohort(path: Path, patients: int, seed: int, id_prefix: str) -> int:
    from synthetic.cohort import iter_cohort

    n = 0
    with path.open("w") as f:
        for events in iter_cohort(patients, START, YEARS, seed, id_prefix=id_prefix):
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
                n += 1
    return n


BUSY_SQL = ("select (select count(*) from inbox where state <> 'processed')"
            " + (select count(*) from patients where dirty_since is not null)")


class IngestWatch:
    """Polls (in a thread, every 0.25 s) whether the pipeline still has work; remembers when it
    first had none after the ingest command returned."""

    def __init__(self, engine: sa.Engine, cli: subprocess.Popen[str]) -> None:
        self.engine, self.cli = engine, cli
        self.t0 = time.perf_counter()
        self.settled_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def busy(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(BUSY_SQL)).scalar() or 0)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.cli.poll() is not None and self.busy() == 0:
                self.settled_at = time.perf_counter()
                return
            self._stop.wait(0.25)

    def wait(self, timeout: float) -> float:
        self._thread.join(timeout)
        if self.settled_at is None:
            self._stop.set()
            raise TimeoutError(f"ingest not settled within {timeout:.0f} s")
        if self.cli.returncode != 0:
            raise RuntimeError(f"imn-monitor ingest failed: {self.cli.stderr.read()[-2000:] if self.cli.stderr else ''}")
        return self.settled_at - self.t0


# ---------------------------------------------------------------------------------------------- main

def seed_database(db_url: str, patients: int, seed: int, as_of: date) -> dict[str, object]:
    from bench.nightly import load_cohort
    from tasks import runtime, service
    from tasks.settings import Settings

    events, labs, load_s = load_cohort(db_url, patients, seed, 2)
    t0 = time.perf_counter()
    rt = runtime.init(Settings(database_url=db_url, broker_url=None, _env_file=None))
    service.reassess_everyone(rt, as_of)
    runtime.reset()
    assess_s = time.perf_counter() - t0
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("vacuum analyze"))
        alerts = dict(conn.execute(sa.text("select status, count(*) from alerts group by status")).all())
        not_current = conn.execute(sa.text("select count(*) from patients where last_as_of is distinct from :d"),
                                   {"d": as_of}).scalar()
    engine.dispose()
    return {"events": events, "labs": labs, "load_s": load_s, "assess_s": assess_s, "alerts": alerts,
            "not_current": not_current}


def clinician_key(db_url: str) -> str:
    from storage import api_keys
    from storage.db import make_engine, session

    engine = make_engine(db_url)
    with session(engine) as s:
        token, _ = api_keys.create_key(s, "bench-reader", "clinician")
    engine.dispose()
    return token


def summarise(condition: str, readers: int, res: PhaseResult, cpu: dict[str, float],
              extra: dict[str, object]) -> tuple[list[dict[str, object]], dict[str, object]]:
    rows = []
    for e in ENDPOINTS:
        xs = sorted(res.latencies[e])
        rows.append({"condition": condition, "readers": readers, "endpoint": e, "requests": len(xs),
                     "errors": res.errors[e], "req_per_s": len(xs) / res.elapsed_s,
                     "p50_ms": pct(xs, 0.50), "p95_ms": pct(xs, 0.95), "p99_ms": pct(xs, 0.99),
                     "max_ms": 1000 * xs[-1] if xs else float("nan")})
    total = sum(len(v) for v in res.latencies.values())
    allx = sorted(x for v in res.latencies.values() for x in v)
    rows.append({"condition": condition, "readers": readers, "endpoint": "all", "requests": total,
                 "errors": sum(res.errors.values()), "req_per_s": total / res.elapsed_s,
                 "p50_ms": pct(allx, 0.50), "p95_ms": pct(allx, 0.95), "p99_ms": pct(allx, 0.99),
                 "max_ms": 1000 * allx[-1] if allx else float("nan")})
    phase = {"condition": condition, "readers": readers, "elapsed_s": res.elapsed_s,
             "server_cpu_ms_per_request": 1000 * cpu["server"] * res.elapsed_s / total if total else None,
             "requests": total, "req_per_s": total / res.elapsed_s, "errors": sum(res.errors.values()),
             "error_samples": res.error_samples, "cpu_cores": cpu, **extra}
    return rows, phase


def print_phase(phase: dict[str, object]) -> None:
    cpu = phase["cpu_cores"]
    print(f"  {phase['condition']}, {phase['readers']} reader(s): {phase['requests']} requests in "
          f"{phase['elapsed_s']:.1f} s ({phase['req_per_s']:,.0f}/s), errors {phase['errors']}; CPU (cores): "
          f"API server {cpu['server']:.2f}, client {cpu['client']:.2f}, celery workers {cpu['workers']:.2f}, "
          f"PostgreSQL {cpu['postgres']:.2f}; machine busy {cpu['machine_busy_pct']:.0f} %; "
          f"load average {phase['loadavg_end'][0]:.2f}")
    if phase.get("ingest"):
        ing = phase["ingest"]
        state = "still busy at the phase's end" if ing["busy_at_end"] else "WARNING: settled BEFORE the phase's end"
        print(f"    ingest of {ing['events']} events: {state}; settled {ing['settled_s']:.1f} s after its start "
              f"({ing['events'] / ing['settled_s']:,.0f} events/s under this API load)")
    for s in phase["error_samples"]:
        print(f"    error (client side): {s}")
    for line, k in phase["server_exceptions"].items():
        print(f"    server log: {k} x {line}")


# ------------------------------------------------------------------------------- configurations

@dataclass(frozen=True)
class Config:
    """One way of serving: this checkout's code or the baseline's, with N uvicorn processes."""

    name: str
    code: str  # "head" or "baseline"
    workers: int


def parse_configs(spec: str) -> list[Config]:
    """"baseline:1,head:1,head:2" -> configurations (code:workers)."""
    out = []
    for part in spec.split(","):
        code, _, n = part.strip().partition(":")
        if code not in ("head", "baseline"):
            raise SystemExit(f"--configs: {code!r} is neither head nor baseline")
        out.append(Config(f"{code}, {int(n or 1)} process{'es' if int(n or 1) > 1 else ''}", code, int(n or 1)))
    return out


@contextlib.contextmanager
def baseline_checkout(ref: str) -> Iterator[tuple[Path, str]]:
    """The tree of git `ref` in a temporary folder (git archive: no worktree left behind)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True, capture_output=True,
                            text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="imn-bench-baseline-") as tmp:
        archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", ref], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tmp], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise RuntimeError(f"git archive {ref} failed")
        # the baseline served without httptools and uvloop, which this change added as dependencies:
        # hide them from it, or uvicorn's "auto" would pick them up from this environment
        (Path(tmp) / "sitecustomize.py").write_text('import sys\nsys.modules["uvloop"] = None\n'
                                                    'sys.modules["httptools"] = None\n')
        yield Path(tmp), commit



def endpoint_cpu(server: subprocess.Popen[bytes], base: str, token: str, patients: list[str], n: int,
                 seed: int) -> dict[str, dict[str, float]]:
    """Server CPU (all its processes, /proc utime + stime) per request of each endpoint, one request at
    a time from one client, nothing else running in the server; also the client-side mean latency."""
    rng = random.Random(seed)
    out = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_S) as cl:
        cursor = cl.get(ALERTS_PATH, params=ALERTS_PARAMS).json()["next_cursor"]
        calls = {
            ENDPOINTS[0]: lambda: cl.get(ALERTS_PATH, params=ALERTS_PARAMS),
            ENDPOINTS[1]: lambda: cl.get(ALERTS_PATH, params={**ALERTS_PARAMS, "cursor": cursor}),
            ENDPOINTS[2]: lambda: cl.get(f"/patients/{rng.choice(patients)}"),
        }
        if cursor is None:  # fewer firing alerts than a page
            del calls[ENDPOINTS[1]]
        for name, call in calls.items():
            for _ in range(max(5, n // 10)):  # warm this route (and, for workers > 1, every process)
                call()
            cpu0, t0 = _tree_cpu_s(server.pid), time.perf_counter()
            for _ in range(n):
                r = call()
                if r.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {r.status_code} {r.text[:200]}")
            wall, cpu = time.perf_counter() - t0, _tree_cpu_s(server.pid) - cpu0
            out[name] = {"requests": n, "server_cpu_ms_per_request": 1000 * cpu / n, "mean_ms": 1000 * wall / n}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000, help="seeded (and assessed) patients")
    ap.add_argument("--configs", default="baseline:1,head:1,head:2",
                    help="servers to measure, code:processes (code = head or baseline)")
    ap.add_argument("--baseline", default="main", help="git ref of the baseline code (git archive)")
    ap.add_argument("--readers", default="8", help="comma-separated concurrent reader counts")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    ap.add_argument("--cpu-requests", type=int, default=300, help="sequential requests per endpoint for CPU/request")
    ap.add_argument("--idle", action="store_true", help="also run the reader phases with no ingest running")
    ap.add_argument("--ingest-patients", type=int, default=1500, help="patients ingested during each busy phase")
    ap.add_argument("--ingest-workers", type=int, default=2, help="celery worker processes for the busy phases")
    ap.add_argument("--seed", type=int, default=None, help="cohort seed (default: synthetic's)")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 1, 1))
    ap.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the result rows as JSON here")
    args = ap.parse_args()

    from synthetic.cohort import DEFAULT_SEED

    seed = args.seed if args.seed is not None else DEFAULT_SEED
    readers_list = [int(x) for x in args.readers.split(",")]
    configs = parse_configs(args.configs)
    machine = c.machine()
    load_start = os.getloadavg()
    print(f"machine: {machine}; {c.load_note()} at start")
    rows: list[dict[str, object]] = []
    phases: list[dict[str, object]] = []
    cpu_rows: list[dict[str, object]] = []
    with contextlib.ExitStack() as stack:
        tmpdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imn-bench-")))
        c.redis_url()  # the broker: a redis-server of the bench's own unless IMN_BENCH_REDIS_URL names one
        stack.callback(c.stop_private_redis)
        db_url = stack.enter_context(c.bench_database())
        code = {"head": None}
        baseline_commit = None
        if any(cf.code == "baseline" for cf in configs):
            code["baseline"], baseline_commit = stack.enter_context(baseline_checkout(args.baseline))
        head_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, check=True).stdout.strip())
        print(f"code: head = {head_commit}{' + uncommitted changes' if dirty else ''}"
              + (f", baseline = {args.baseline} ({baseline_commit})" if baseline_commit else ""))
        c.flush_redis()
        seeded = seed_database(db_url, args.patients, seed, args.as_of)
        print(f"seed: {args.patients} patients (seed {seed}), {seeded['events']} events stored in "
              f"{seeded['load_s']:.1f} s, assessed as of {args.as_of} in {seeded['assess_s']:.1f} s "
              f"(not current: {seeded['not_current']}); alerts by status {seeded['alerts']}")
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            patients = [r[0] for r in conn.execute(sa.text("select patient_id from patients order by 1"))]
        token = clinician_key(db_url)
        env = c.bench_env(db_url)

        files = []
        for i, cf in enumerate(configs):
            for n in readers_list:
                path = tmpdir / f"ingest-{i}-{n}.ndjson"
                files.append((path, write_cohort(path, args.ingest_patients, seed, f"ING{i}R{n}")))
        print(f"ingest cohorts: {args.ingest_patients} new patients per busy phase, {files[0][1]} events each "
              f"(written beforehand)")
        workers = stack.enter_context(c.running_workers(env, tmpdir / "logs", args.ingest_workers))
        file_iter = iter(files)
        for ci, cf in enumerate(configs):
            log_path = tmpdir / f"api-{ci}.log"
            server, base = start_server(env, log_path, cf.workers, code[cf.code])
            try:
                run_phase(base, token, 4, 3.0, patients, seed=0)  # warm-up, not recorded
                if ci == 0:
                    first = httpx.get(base + ALERTS_PATH, params=ALERTS_PARAMS,
                                      headers={"Authorization": f"Bearer {token}"}).json()
                    print(f"GET /alerts?status=firing&limit=50 returns {len(first['items'])} items, next_cursor "
                          f"{'set' if first['next_cursor'] else 'null'}")
                print(f"\n[{cf.name}] server pid {server.pid} at {base}")
                per = endpoint_cpu(server, base, token, patients, args.cpu_requests, seed)
                for name, v in per.items():
                    cpu_rows.append({"config": cf.name, "code": cf.code, "workers": cf.workers, "endpoint": name, **v})
                    print(f"  {name}: server CPU {v['server_cpu_ms_per_request']:.2f} ms/request, "
                          f"mean latency {v['mean_ms']:.2f} ms (1 client, {v['requests']} requests, no ingest)")
                _, log_off = new_log_errors(log_path, 0)
                meter = CpuMeter(server.pid)
                conditions = (["idle"] if args.idle else []) + ["during ingest"]
                for condition in conditions:
                    for n in readers_list:
                        ingest = condition == "during ingest"
                        meter.worker_pids = [pid for _, pid in workers.pids()]
                        la = os.getloadavg()
                        a = meter.snapshot()
                        cli = watch = None
                        if ingest:
                            path, n_events = next(file_iter)
                            cli = subprocess.Popen([str(Path(sys.executable).with_name("imn-monitor")), "ingest",
                                                    "--no-wait", "--json", "--as-of", args.as_of.isoformat(),
                                                    str(path)], env=env, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.PIPE, text=True)
                            watch = IngestWatch(engine, cli)
                        res = run_phase(base, token, n, args.duration, patients, seed=100 + n)
                        meter.worker_pids = [pid for _, pid in workers.pids()]  # pool children may be recycled
                        b = meter.snapshot()
                        extra: dict[str, object] = {"ingest": None}
                        if watch is not None:
                            busy_at_end = watch.settled_at is None
                            settled_s = watch.wait(900)
                            extra["ingest"] = {"events": n_events, "busy_at_end": busy_at_end, "settled_s": settled_s,
                                               "failed": c.failed_counts(c.redis_client())}
                        cpu = CpuMeter.shares(a, b)
                        wait_server_idle(base, token)
                        exc, log_off = new_log_errors(log_path, log_off)
                        r, ph = summarise(condition, n, res, cpu, {"server_exceptions": exc, "loadavg_start": list(la),
                                                                   "loadavg_end": list(os.getloadavg()), **extra})
                        for x in [*r, ph]:
                            x.update(config=cf.name, code=cf.code, workers=cf.workers)
                        rows += r
                        phases.append(ph)
                        print_phase(ph)
                ph_rss = c._status_kb(server.pid, "VmHWM") + sum(c._status_kb(p, "VmHWM") for p in c._children(server.pid))
                print(f"  API server peak RSS (all its processes) {ph_rss / 1024:.0f} MiB")
            finally:
                stop_server(server)
        engine.dispose()

    print(f"\nServer CPU per request, {args.patients} seeded patients, one client, one request at a time, no ingest "
          f"(utime + stime of every server process / requests):")
    print(c.table(["server", "endpoint", "requests", "server CPU ms/req", "mean latency ms"],
                  [[str(r["config"]), str(r["endpoint"]), str(r["requests"]), f"{r['server_cpu_ms_per_request']:.2f}",
                    f"{r['mean_ms']:.2f}"] for r in cpu_rows]))
    print(f"\nAPI latency, readers = concurrent keep-alive clients (asyncio + httpx, one process), "
          f"{args.duration:.0f} s per phase:")
    print(c.table(["server", "condition", "readers", "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms",
                   "max ms", "errors"],
                  [[str(r["config"]), str(r["condition"]), str(r["readers"]), str(r["endpoint"]), str(r["requests"]),
                    f"{r['req_per_s']:,.1f}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}",
                    f"{r['max_ms']:.1f}", str(r["errors"])] for r in rows]))
    print("\nCPU per phase, in cores (2 on this machine):")
    print(c.table(["server", "condition", "readers", "req/s", "server CPU ms/req", "API server", "client",
                   "celery workers", "PostgreSQL (all)", "machine busy", "ingest busy at end", "load 1-min"],
                  [[str(p["config"]), str(p["condition"]), str(p["readers"]), f"{p['req_per_s']:,.0f}",
                    f"{p['server_cpu_ms_per_request']:.1f}" if p["server_cpu_ms_per_request"] else "-",
                    f"{p['cpu_cores']['server']:.2f}", f"{p['cpu_cores']['client']:.2f}",
                    f"{p['cpu_cores']['workers']:.2f}", f"{p['cpu_cores']['postgres']:.2f}",
                    f"{p['cpu_cores']['machine_busy_pct']:.0f} %",
                    ("yes" if p["ingest"]["busy_at_end"] else "NO") if p["ingest"] else "-",
                    f"{p['loadavg_start'][0]:.1f}-{p['loadavg_end'][0]:.1f}"] for p in phases]))
    print(f"({c.load_note()} at the end)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"bench": "api", "machine": machine, "patients": args.patients, "seed": seed,
                "as_of": args.as_of.isoformat(), "seeded": {k: v for k, v in seeded.items()},
                "head": head_commit, "head_dirty": dirty, "baseline": args.baseline if baseline_commit else None,
                "baseline_commit": baseline_commit, "configs": [cf.__dict__ for cf in configs],
                "duration_s": args.duration, "cpu_requests": args.cpu_requests,
                "ingest_patients": args.ingest_patients,
                "ingest_workers": args.ingest_workers, "alerts_params": ALERTS_PARAMS,
                "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg()),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}
        args.json.write_text(json.dumps({"meta": meta, "cpu_per_request": cpu_rows, "rows": rows,
                                         "phases": phases}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
