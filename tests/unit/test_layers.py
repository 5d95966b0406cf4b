"""The layers of docs/architecture.md, checked on every import (lazy ones inside functions too):
monitor/ is the pure domain and imports no other package of the project; storage/ builds on monitor/;
tasks/ (the use cases and the Celery jobs) on both; the entry points cli/ and feed/ on all three, and
nothing below them imports an entry point."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("monitor", "storage", "tasks", "feed", "cli", "synthetic")
# package -> the project's packages it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "monitor": {"monitor"},
    "synthetic": {"synthetic", "monitor"},  # the synthetic cohort: domain events only
    "storage": {"storage", "monitor"},
    "tasks": {"tasks", "storage", "monitor"},
    "feed": {"feed", "tasks", "storage", "monitor"},
    "cli": {"cli", "feed", "tasks", "storage", "monitor", "synthetic"},  # `imn-monitor api` serves the feed
}
# monitor/ does no I/O and reads no clock: none of these modules belong in it
IO_MODULES = {"sqlalchemy", "sqlmodel", "redis", "celery", "httpx", "requests", "fastapi", "socket",
              "subprocess", "asyncio", "os", "time", "logging"}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", list(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(package: str) -> None:
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        wrong = (_imports(path) & set(PROJECT)) - ALLOWED[package]
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert offenders == {}


def test_the_domain_does_no_io() -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & IO_MODULES)
                 for p in sorted((ROOT / "monitor").rglob("*.py")) if _imports(p) & IO_MODULES}
    assert offenders == {}
