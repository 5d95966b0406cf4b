"""The service benches never flush the machine's Redis (they used its database 12) nor reset a database
of the machine's PostgreSQL that is not their own: they start a redis-server of their own
(bench/_common.py, with tests/_servers.py), and --database only takes an imn_bench_ name."""

from __future__ import annotations

import importlib
import shutil

import pytest


@pytest.fixture
def common(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("IMN_BENCH_REDIS_URL", raising=False)
    import bench._common as c

    c = importlib.reload(c)  # read the environment again
    yield c
    c.stop_private_redis()


def test_without_a_named_redis_the_bench_starts_its_own(common) -> None:  # type: ignore[no-untyped-def]
    assert common.REDIS_URL is None  # was redis://127.0.0.1:6379/12, flushed by every service bench
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH: the private broker cannot be started here")
    url = common.redis_url()
    assert url.startswith("redis://127.0.0.1:") and ":6379/" not in url
    r = common.redis_client()
    r.set("bench:probe", "1")
    common.flush_redis()  # flushes the bench's own server
    assert r.get("bench:probe") is None
    assert common.bench_env("sqlite://")["IMN_BROKER_URL"] == url
    common.stop_private_redis()
    assert common.REDIS_URL is None


def test_a_named_redis_is_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMN_BENCH_REDIS_URL", "redis://127.0.0.1:1/3")
    import bench._common as c

    c = importlib.reload(c)
    try:
        assert c.redis_url() == "redis://127.0.0.1:1/3"
    finally:
        monkeypatch.delenv("IMN_BENCH_REDIS_URL")
        importlib.reload(c)


@pytest.mark.parametrize("name", ["test", "postgres", "imn", "imn_bench_", "imn_bench_X; drop", "x_imn_bench_1"])
def test_a_kept_database_must_be_the_benchs_own(name: str) -> None:
    import argparse

    from bench.nightly import bench_database_name

    with pytest.raises(argparse.ArgumentTypeError, match="must match"):
        bench_database_name(name)  # --database: refused before any connection is made


def test_the_documented_kept_database_names_are_accepted() -> None:
    from bench.nightly import bench_database_name

    assert bench_database_name("imn_bench_1m") == "imn_bench_1m"
    assert bench_database_name("imn_bench_10k") == "imn_bench_10k"
