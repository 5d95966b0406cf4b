"""The MLLP listener over a real socket: store, then ACK; bad frames get AR; the connection survives."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from cli.mllp import serve
from storage.db import upgrade
from tasks import runtime
from tasks.settings import Settings

MSG = ("MSH|^~\\&|LIS|HOSP|IMN|NEPH|20250301093000+0100||ORU^R01^ORU_R01|{ctrl}|P|2.5.1\r"
       "PID|1||{pid}^^^HOSP^MR||Doe^Jane||19680302|F\r"
       "OBR|1|ORD-1|F-{ctrl}^LIS|24326-1^Panel^LN|||20250301080000+0100\r"
       "OBX|1|NM|1751-7^Albumin^LN||{albumin}|g/L|35-50|L|||F|||20250301080000+0100\r")


@contextmanager
def listening(tmp_path: Path, **settings: object) -> Iterator[tuple[int, runtime.Runtime]]:
    """The listener on 127.0.0.1:<free port> in a thread of its own, with these settings."""
    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path}/mllp.db", broker_url=None, _env_file=None,
                               **settings))  # type: ignore[arg-type]
    upgrade(rt.engine)
    loop = asyncio.new_event_loop()
    started: asyncio.Future[int] = loop.create_future()
    task = loop.create_task(serve(rt, "127.0.0.1", 0, started))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = _wait(started, loop)
    try:
        yield port, rt
    finally:
        async def shutdown() -> None:
            task.cancel()
            # let connection handlers see their client's EOF and finish before the loop stops
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.wait(pending, timeout=5)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        runtime.reset()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[int, runtime.Runtime]]:
    with listening(tmp_path) as it:
        yield it


def _wait(fut: asyncio.Future[int], loop: asyncio.AbstractEventLoop) -> int:
    async def get() -> int:
        return await fut
    return asyncio.run_coroutine_threadsafe(get(), loop).result(timeout=10)


def exchange(sock: socket.socket, payload: bytes) -> str:
    sock.sendall(b"\x0b" + payload + b"\x1c\r")
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = sock.recv(65536)
        assert chunk, "listener closed the connection"
        data += chunk
    return data.strip(b"\x0b\x1c\r").decode()


def msa(ack: str) -> list[str]:
    return next(s for s in ack.split("\r") if s.startswith("MSA")).split("|")


def test_messages_are_stored_then_acknowledged_and_bad_frames_do_not_break_the_connection(listener) -> None:  # type: ignore[no-untyped-def]
    port, rt = listener
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        ack = exchange(sock, MSG.format(ctrl="C1", pid="P-1", albumin="18").encode())
        assert msa(ack)[1:3] == ["AA", "C1"]
        with rt.engine.connect() as c:  # the ACK came after the message was durably stored
            assert c.execute(sa.text("select count(*) from inbox")).scalar() == 1
            assert c.execute(sa.text("select count(*) from events where kind = 'lab'")).scalar() == 1
        bad = exchange(sock, b"this is not HL7 at all")
        assert msa(bad)[1] == "AR" and "MSH" in bad
        unit = exchange(sock, MSG.format(ctrl="C2", pid="P-2", albumin="18").replace("g/L", "parsecs").encode())
        assert msa(unit)[1:3] == ["AE", "C2"] and "ERR" in unit and "parsecs" in unit
        again = exchange(sock, MSG.format(ctrl="C3", pid="P-3", albumin="40").encode())
        assert msa(again)[1:3] == ["AA", "C3"]
    with rt.engine.connect() as c:
        assert c.execute(sa.text("select count(*) from events where kind = 'lab'")).scalar() == 2
        assert c.execute(sa.text("select count(*) from quarantine")).scalar() == 1
        rules = {r[0] for r in c.execute(sa.text("select rule from alerts where patient_id = 'P-1'"))}
    assert "albumin_low_thrombosis" in rules


# --- limits (issue 12, item 13): no sender holds a connection or memory for ever ----------------------

def _closed_by_server(sock: socket.socket, within: float = 10.0, dribble: bytes | None = None) -> bytes:
    """Everything the server sends until it closes the connection (AssertionError if it has not
    closed it within `within` s). With `dribble`, one byte of it is sent every 0.1 s meanwhile, as a
    slow sender keeping a frame open would."""
    deadline = time.monotonic() + within
    received = b""
    sock.settimeout(0.1)
    sent = 0
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if dribble is not None and sent < len(dribble):
                try:
                    sock.sendall(dribble[sent:sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return received
                sent += 1
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the listener kept the connection open for {within} s")


def _inbox_rows(rt: runtime.Runtime) -> int:
    with rt.engine.connect() as c:
        return c.execute(sa.text("select count(*) from inbox")).scalar()


def test_a_frame_without_an_end_block_is_dropped_after_the_read_timeout(tmp_path: Path) -> None:
    msg = MSG.format(ctrl="T1", pid="P-T", albumin="18").encode()
    with listening(tmp_path, mllp_read_timeout_s=0.5, mllp_idle_timeout_s=60) as (port, rt):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"\x0b" + msg)  # no end block
            assert _closed_by_server(sock) == b""  # no ACK: the sender resends
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"\x0b")  # a sender dribbling its frame a byte at a time
            assert _closed_by_server(sock, dribble=msg) == b""
        assert _inbox_rows(rt) == 0
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:  # the listener still serves
            assert msa(exchange(sock, msg))[1:3] == ["AA", "T1"]


def test_a_silent_connection_is_closed_after_the_idle_timeout(tmp_path: Path) -> None:
    with listening(tmp_path, mllp_read_timeout_s=30, mllp_idle_timeout_s=0.5) as (port, rt):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert _closed_by_server(sock) == b""  # connected, never sent anything
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert msa(exchange(sock, MSG.format(ctrl="I1", pid="P-I", albumin="40").encode()))[1] == "AA"
            # bytes outside any frame are no activity: the connection still counts as idle
            assert _closed_by_server(sock, dribble=b"noise" * 20) == b""
        assert _inbox_rows(rt) == 1


def test_an_oversized_frame_gets_ar_and_the_connection_is_closed(tmp_path: Path) -> None:
    big = MSG.format(ctrl="B1", pid="P-B", albumin="18") + "NTE|1||" + "x" * 5000 + "\r"
    with listening(tmp_path, mllp_max_frame_bytes=2048) as (port, rt):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"\x0b" + big.encode())  # still open: refused once it passes the limit
            reply = _closed_by_server(sock).strip(b"\x0b\x1c\r").decode()
            assert msa(reply)[1] == "AR" and "larger than 2048 bytes" in reply
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"\x0b" + big.encode() + b"\x1c\r")  # complete, but too large
            assert "larger than 2048 bytes" in _closed_by_server(sock).decode()
        assert _inbox_rows(rt) == 0
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            ok = exchange(sock, MSG.format(ctrl="B2", pid="P-B", albumin="18").encode())
            assert msa(ok)[1:3] == ["AA", "B2"]


def test_frames_split_and_pipelined_across_reads_are_each_acknowledged(listener) -> None:  # type: ignore[no-untyped-def]
    port, _ = listener
    one, two, three = (MSG.format(ctrl=f"S{i}", pid=f"P-S{i}", albumin="40").encode() for i in (1, 2, 3))
    stream = b"junk" + b"\x0b" + one + b"\x1c\r" + b"\x0b" + two + b"\x1c\r\x0b" + three + b"\x1c\r"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for i in range(0, len(stream), 37):  # cut anywhere, also inside the end block
            sock.sendall(stream[i:i + 37])
            time.sleep(0.005)
        acks = b""
        while acks.count(b"\x1c\r") < 3:
            chunk = sock.recv(65536)
            assert chunk, "listener closed the connection"
            acks += chunk
    controls = [msa(a.strip(b"\x0b").decode())[2] for a in acks.split(b"\x1c\r") if a]
    assert controls == ["S1", "S2", "S3"]
