"""Memory of the api process while N large uploads arrive at once (issue 12, item 12).

Not a test. Needs the PostgreSQL at 127.0.0.1:5432 (a database of its own, imn_bench_<random>,
dropped at the end); no Redis: the api runs in broker mode on kombu's in-memory transport, so the
uploads are received and stored in the inbox, and their processing (another process's job in
production) does not run in the measured process.

    .venv/bin/python bench/upload_memory.py [--mb 20] [--parallel 4] [--set IMN_INGEST_CONCURRENCY=4]
                                            [--json PATH]

1. `imn-monitor api` as a separate process (uvicorn, one process) on a fresh migrated database,
   with an ingest key; one small upload warms the ingest path up, then the RSS is read after 1 s.
2. --parallel threads each POST a different --mb MB NDJSON body (lab results of many patients) to
   /ingest/ndjson at the same moment; meanwhile the server's VmRSS is sampled every 10 ms.
3. Reported: RSS before, peak (the larger of the sampled maximum and the kernel's VmHWM minus
   nothing: VmHWM is the process's peak since start), RSS 2 s after, each upload's status (202, or
   503 with Retry-After when over IMN_INGEST_CONCURRENCY) and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench import _common as c  # noqa: E402

LINE = ('{"type":"lab","patient_id":"U%d-%06d","analyte":"serum_albumin","value":%d,"unit":"g/L",'
        '"effective_at":"2025-05-%02d","source":"lis","source_id":"U%d-%07d"}\n')


def body(upload: int, mb: float) -> bytes:
    target = int(mb * 1024 * 1024)
    parts, size, i = [], 0, 0
    while size < target:
        line = (LINE % (upload, i % 5000, 20 + i % 20, 1 + i % 28, upload, i)).encode()
        parts.append(line)
        size += len(line)
        i += 1
    return b"".join(parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], metavar="IMN_X=V", help="extra settings of the api")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in args.set)
    bodies = [body(i, args.mb) for i in range(args.parallel)]

    with c.bench_database() as db_url, tempfile.TemporaryDirectory() as tmp:
        from storage import api_keys
        from storage.db import make_engine, session

        engine = make_engine(db_url)
        with session(engine) as s:
            key = api_keys.create_key(s, "bench-lis", "ingest")[0]
        engine.dispose()
        port = free_port()
        env = c.bench_env(db_url, IMN_BROKER_URL="memory://", **extra)
        log = open(Path(tmp) / "api.log", "wb")
        api = subprocess.Popen([str(Path(sys.executable).parent / "imn-monitor"), "api", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
        try:
            c.wait_until(lambda: _up(base), 60, 0.1, "the api")
            warm = httpx.post(f"{base}/ingest/ndjson", content=body(99, 0.5), headers=headers, timeout=60)
            assert warm.status_code == 202, warm.text
            time.sleep(1.0)
            before = c._status_kb(api.pid, "VmRSS")
            peak = [before]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], c._status_kb(api.pid, "VmRSS"))
                    time.sleep(0.01)

            results: list[dict] = [{} for _ in bodies]
            go = threading.Barrier(len(bodies))

            def upload(i: int) -> None:
                go.wait()
                t0 = time.monotonic()
                r = httpx.post(f"{base}/ingest/ndjson", content=bodies[i], headers=headers, timeout=300)
                results[i] = {"status": r.status_code, "retry_after": r.headers.get("retry-after"),
                              "seconds": round(time.monotonic() - t0, 2)}

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.monotonic()
            threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
            time.sleep(2.0)
            stop.set()
            sampler.join()
            after = c._status_kb(api.pid, "VmRSS")
            hwm = c._status_kb(api.pid, "VmHWM")
        finally:
            api.terminate()
            api.wait(timeout=30)
            log.close()
    out = {"meta": {"machine": c.machine(), "load": c.load_note(), "mb": args.mb, "parallel": args.parallel,
                    "settings": extra},
           "rss_before_mb": round(before / 1024), "rss_peak_sampled_mb": round(peak[0] / 1024),
           "vm_hwm_mb": round(hwm / 1024), "rss_after_mb": round(after / 1024), "wall_s": round(wall, 2),
           "uploads": results}
    print(c.table(["RSS before", "peak (sampled)", "VmHWM", "after", "wall", "statuses"],
                  [[f"{out['rss_before_mb']} MB", f"{out['rss_peak_sampled_mb']} MB",
                    f"{out['vm_hwm_mb']} MB",
                    f"{out['rss_after_mb']} MB", f"{wall:.1f} s",
                    " ".join(str(r["status"]) for r in results)]]))
    print(f"{args.parallel} x {args.mb:g} MB NDJSON, settings {extra or 'default'}; {c.load_note()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
