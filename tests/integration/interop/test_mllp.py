"""The MLLP listener over a real socket: store, then ACK; bad frames get AR; the connection survives."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
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


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[int, runtime.Runtime]]:
    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path}/mllp.db", broker_url=None, _env_file=None))
    upgrade(rt.engine)
    loop = asyncio.new_event_loop()
    started: asyncio.Future[int] = loop.create_future()
    task = loop.create_task(serve(rt, "127.0.0.1", 0, started))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = _wait(started, loop)
    yield port, rt

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
