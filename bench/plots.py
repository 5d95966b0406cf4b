"""Plots for docs/performance.md from the benches' JSON output (matplotlib, PNG). Not a benchmark.

    .venv/bin/python bench/plots.py [--results bench/results] [--out docs/img]

Reads what the benches wrote with --json:
  ingest.json   (bench/ingest.py: {"meta", "rows"})  -> ingest_vs_workers.png
  nightly.json  (bench/nightly.py: [{"meta", "rows"}, ...], one entry per invocation; an optional
                meta "code" names the code version, one line per version and worker count)
                -> nightly_vs_cohort.png (wall time and patients/s against cohort size, run 1 only)
Missing files are skipped with a note; nothing is invented.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]


def plot_ingest(data: dict[str, Any], out: Path) -> Path:
    rows = sorted(data["rows"], key=lambda r: r["workers"])
    workers = [r["workers"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(workers, [r["lab_per_s"] for r in rows], "o-", label="pipeline: lab results/s (end to end)")
    ax.plot(workers, [r["noop_per_s"] for r in rows], "s--", label="Celery no-op tasks/s (same run)")
    ax.plot(workers, [r["raw_insert_rows_per_s"] for r in rows], "^:", label="raw PostgreSQL INSERT rows/s")
    ax.plot(workers, [r["raw_copy_rows_per_s"] for r in rows], "v:", label="raw PostgreSQL COPY rows/s")
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(w) for w in workers])
    ax.set_xlabel("celery worker processes (prefork, concurrency 1) on 2 cores")
    ax.set_ylabel("per second")
    meta = data["meta"]
    ax.set_title(f"Ingest throughput vs workers ({meta['patients']:,} patients, {meta['lab_results']:,} lab results)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "ingest_vs_workers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_nightly(entries: list[dict[str, Any]], out: Path) -> Path:
    # run 1 (every patient assessed, cold) of each invocation, grouped by code version and worker count
    points: dict[str, list[tuple[int, float, float]]] = {}
    for entry in entries:
        code = entry["meta"].get("code", "")
        for r in entry["rows"]:
            if str(r["run"]).startswith("1") and r["assessed"]:
                label = f"{r['workers']} worker(s)" + (f", {code}" if code else "")
                points.setdefault(label, []).append((int(r["active"]), r["wall_s"], r["assessed"] / r["wall_s"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for label, pts in sorted(points.items()):
        pts.sort()
        sizes = [p[0] for p in pts]
        left.plot(sizes, [p[1] / 60 for p in pts], "o-", label=label)
        right.plot(sizes, [p[2] for p in pts], "o-", label=label)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("patients (about 68 events each)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_yscale("log")
    left.axhline(15, color="red", linestyle="--", linewidth=1)
    left.text(left.get_xlim()[0], 15, " 15 min target", color="red", va="bottom", fontsize=8)
    left.set_ylabel("wall time of the nightly run (min)")
    right.set_ylabel("patients assessed per second")
    right.set_ylim(bottom=0)
    fig.suptitle("Nightly reassessment (reassess_all, cold timelines) vs cohort size, 2 cores")
    fig.tight_layout()
    path = out / "nightly_vs_cohort.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, plot in (("ingest.json", plot_ingest), ("nightly.json", plot_nightly)):
        src = args.results / name
        if not src.exists():
            print(f"skipped: {src} not found (run the bench with --json {src})")
            continue
        print(f"wrote {plot(json.loads(src.read_text()), args.out)}")


if __name__ == "__main__":
    main()
