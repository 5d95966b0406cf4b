"""Servers of the test session's own: a PostgreSQL cluster and redis-servers started by the tests.

The pipeline and fault tests run celery workers, flush the broker, drop schemas and kill or restart
servers. None of that may touch the servers of whoever runs the tests (a laptop's PostgreSQL and
Redis, or another test session on the same machine), so those tests never use them: they get

- `pg_server` (session): a PostgreSQL cluster made by `initdb` in a temporary folder, listening on
  127.0.0.1 on a free port, stopped and deleted at the end of the session;
- `private_postgres` (per test): another such cluster, for a test that stops and restarts it;
- `redis_server` (session) and `private_redis` (per test): a `redis-server` on a free port, in
  memory only (as in production: no RDB, no AOF).

Each fixture stops its server at the end; if the test process dies outright, the kernel stops them
(PR_SET_PDEATHSIG, Linux). Ports are picked below the kernel's ephemeral range (so an outgoing
connection cannot hold the port of a server that a test restarts), and a first start that finds its
port taken retries on another one.

Binaries: PostgreSQL's `initdb`, `postgres` and the Redis `redis-server` are looked up on PATH, then
in Debian's /usr/lib/postgresql/<version>/bin (IMN_TEST_PG_BIN names the folder explicitly). Without
them these tests are skipped with the reason, unless IMN_REQUIRE_SERVICES=1 (CI), where they fail.

Root: PostgreSQL refuses to run as root (initdb and postgres exit with "cannot be run as root").
When the tests run as root (CI here, containers), the cluster is created and run as the OS user
`postgres` (IMN_TEST_PG_OS_USER names another) in a folder owned by that user; a normal user runs it
as themselves.

Registered for the whole suite by tests/conftest.py (one definition, so one session server).
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE = os.environ.get("IMN_REQUIRE_SERVICES") == "1"


def unavailable(what: str, why: str) -> NoReturn:
    """Skip (or, with IMN_REQUIRE_SERVICES=1, fail) a test whose server cannot be had."""
    msg = f"{what}: {why}"
    if REQUIRE:
        pytest.fail(msg + " (and IMN_REQUIRE_SERVICES=1)")
    pytest.skip(msg)


# --------------------------------------------------------------------------------------- ports

def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback TCP port nobody listens on, outside the ephemeral range (10000 up to it)."""
    lo = _ephemeral_range()[0]
    candidates = list(range(10000, lo)) if lo > 11000 else list(range(61000, 65000))
    for port in random.sample(candidates, 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found")


def _wait(until, timeout: float, proc: subprocess.Popen[bytes], what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not until():
        if proc.poll() is not None:
            raise ServerExited(f"{what} exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not answering after {timeout}s")
        time.sleep(0.05)


class ServerExited(RuntimeError):
    pass


def _die_with_parent(sig: int):  # type: ignore[no-untyped-def]
    """A preexec_fn that has the kernel send `sig` to the server when the test process dies, so a
    test session killed outright (SIGKILL, a CI timeout) leaves no server behind. Linux only; it runs
    after the switch to the server's OS user, which would otherwise clear the setting. prctl is
    looked up here, in the parent: the child only makes the call (no import, no Python lock taken
    between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sig)
    return preexec


# ---------------------------------------------------------------------------------- PostgreSQL

def _start_on_free_port(server: PrivatePostgres | PrivateRedis, timeout: float, what: str,
                        details: Callable[[], str]) -> None:
    """Start `server` on its port: a new free one the first time, or another one if someone took it
    between the check and the bind. A restart must keep its port (the clients reconnect to it), so
    there a failed start is final. `details` adds the server's log to the failure, where it has one."""
    for _ in range(5):
        if not server.port:
            server.port = free_port()
        try:
            server._start(timeout)
            return
        except ServerExited:
            if server.starts > 1:
                raise AssertionError(f"{what} did not start again on port {server.port}{details()}")
            server.port = 0
    raise AssertionError(f"{what} did not start{details()}")


def pg_bin_dir() -> Path | None:
    """The folder holding initdb and postgres: IMN_TEST_PG_BIN if set (only it), else the one of
    `initdb` on PATH, else Debian's newest /usr/lib/postgresql/<version>/bin."""
    explicit = os.environ.get("IMN_TEST_PG_BIN")
    if explicit:
        candidates = [Path(explicit)]
    else:
        on_path = shutil.which("initdb")
        candidates = [Path(on_path).resolve().parent] if on_path else []
        candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for d in candidates:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    return None


def _pg_os_user() -> pwd.struct_passwd | None:
    """Who runs the cluster: None (this process's user) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("IMN_TEST_PG_OS_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        unavailable("private PostgreSQL", f"running as root, and PostgreSQL refuses to run as root; there is no "
                    f"OS user {name!r} to run it as (set IMN_TEST_PG_OS_USER, or run the tests as a normal user)")


@dataclass
class PrivatePostgres:
    """A throw-away PostgreSQL cluster: superuser `postgres`, trust authentication, 127.0.0.1 only,
    no fsync (the data does not outlive the session). `stop()` is a fast shutdown (open transactions
    are cut, as when an administrator restarts the server); `start()` brings it back on the same port."""

    bin: Path
    dir: Path
    port: int = 0
    os_user: pwd.struct_passwd | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, object]:
        if self.os_user is None:
            return {}
        return {"user": self.os_user.pw_uid, "group": self.os_user.pw_gid, "extra_groups": []}

    def init(self) -> None:
        if self.os_user is not None:
            os.chown(self.dir, self.os_user.pw_uid, self.os_user.pw_gid)
        r = subprocess.run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                            "-E", "UTF8", "--locale=C", "--no-sync"],
                           check=False, capture_output=True, timeout=180, cwd=self.dir, **self._run_as())  # type: ignore[call-overload]
        if r.returncode != 0:
            raise AssertionError(f"initdb failed ({r.returncode}): {(r.stderr or r.stdout).decode()[-2000:]}")

    def start(self, timeout: float = 90) -> None:
        """Start on self.port (a new free port the first time, or if it was taken meanwhile)."""
        _start_on_free_port(self, timeout, "PostgreSQL", lambda: f":\n{self.log()}")

    def _start(self, timeout: float) -> None:
        with open(self.dir / f"postgres-{self.starts}.log", "wb") as log:
            self.starts += 1
            self.proc = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir,
                start_new_session=True, preexec_fn=_die_with_parent(signal.SIGQUIT),  # noqa: PLW1509 (see there)
                **self._run_as())  # type: ignore[call-overload]
        _wait(self.is_ready, timeout, self.proc, f"private PostgreSQL on port {self.port}")

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.dir.glob("postgres-*.log")))

    def is_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                                 connect_timeout=2) as c:
                c.execute("select 1")
            return True
        except psycopg.Error:
            return False

    def stop(self, timeout: float = 60) -> None:
        """Fast shutdown (SIGINT): sessions are cut, the server exits cleanly."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown
                self.proc.wait(timeout=30)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, prefix: str = "imn", template: str | None = None) -> str:
        """A new database of this cluster (a copy of `template`, a database name, if given); returns
        its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=10) as c:
            c.execute(sql)  # type: ignore[arg-type]


def _world_searchable(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _pg_folder(os_user: pwd.struct_passwd | None) -> Path:
    base = Path(tempfile.gettempdir())
    if os_user is not None and not _world_searchable(base):
        base = Path("/tmp")  # the cluster's own user must be able to reach its folder
    return Path(tempfile.mkdtemp(prefix="imn-test-pg-", dir=base))


@pytest.fixture(scope="session")
def pg_binaries() -> Path:
    d = pg_bin_dir()
    if d is None:
        explicit = os.environ.get("IMN_TEST_PG_BIN")
        where = f"in IMN_TEST_PG_BIN={explicit}" if explicit else "on PATH nor in /usr/lib/postgresql/*/bin"
        unavailable("private PostgreSQL", f"initdb/postgres not found {where} (install PostgreSQL's server "
                    "package, e.g. Debian's `postgresql`, or set IMN_TEST_PG_BIN to the folder holding them)")
    return d


@pytest.fixture
def private_postgres(pg_binaries: Path) -> Iterator[PrivatePostgres]:
    """A cluster of this test's own (for a test that stops and restarts PostgreSQL)."""
    with _postgres(pg_binaries) as pg:
        yield pg


@pytest.fixture(scope="session")
def pg_server(pg_binaries: Path) -> Iterator[PrivatePostgres]:
    """The test session's PostgreSQL cluster."""
    with _postgres(pg_binaries) as pg:
        yield pg


class _postgres:
    def __init__(self, bin_dir: Path) -> None:
        user = _pg_os_user()
        self.pg = PrivatePostgres(bin_dir, _pg_folder(user), os_user=user)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.pg.init()
            self.pg.start()
        except BaseException:
            self.__exit__()
            raise
        return self.pg

    def __exit__(self, *exc: object) -> None:
        self.pg.stop()
        shutil.rmtree(self.pg.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------- Redis

@dataclass
class PrivateRedis:
    """A redis-server of the tests' own on a free loopback port, kept in memory only (as in
    production: no RDB, no AOF). `restart()` SIGKILLs it and starts a new one on the same port, so
    everything queued is gone."""

    dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> None:
        _start_on_free_port(self, timeout, "redis-server", lambda: "")

    def _start(self, timeout: float) -> None:
        with open(self.dir / f"redis-{self.starts}.log", "wb") as log:
            self.starts += 1
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                 "no", "--daemonize", "no", "--dir", str(self.dir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGTERM))  # noqa: PLW1509 (see there)
        _wait(self.ping, timeout, self.proc, f"private redis-server on port {self.port}")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
                                    socket_timeout=0.5).ping())
        except Exception:  # noqa: BLE001 - any failure means "not answering yet"
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self) -> None:
        """SIGKILL (nothing saved) and start again on the same port."""
        self.kill()
        self.start()

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2, socket_timeout=5)


def _redis(tmp: Path) -> PrivateRedis:
    if shutil.which("redis-server") is None:
        unavailable("private Redis", "redis-server not found on PATH (install Redis, e.g. Debian's `redis-server`)")
    tmp.mkdir(parents=True, exist_ok=True)
    r = PrivateRedis(tmp)
    r.start()
    return r


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """The test session's redis-server."""
    r = _redis(tmp_path_factory.mktemp("redis"))
    try:
        yield r
    finally:
        r.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (for a test that kills and restarts Redis)."""
    r = _redis(tmp_path / "redis")
    try:
        yield r
    finally:
        r.kill()
