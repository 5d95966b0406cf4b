"""`imn-monitor mllp`: an asyncio MLLP listener for HL7 v2 feeds.

Each frame (<VT> message <FS><CR>) is stored in the inbox first (durable), then acknowledged, then
queued (or, embedded, processed here). The ACK code comes from parsing the stored message: AA when
every result was understood, AE when some were quarantined (with the reason in ERR), AR when the
message cannot be used at all. A frame that could not be stored gets AE "resend" and nothing is
acknowledged as accepted. A bad frame never closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from monitor.interop.base import MessageAck
from monitor.interop.hl7v2 import ack_for, build_ack
from tasks.runtime import Runtime

log = logging.getLogger("imn.mllp")
START, END = b"\x0b", b"\x1c"
MAX_FRAME_BYTES = 10 * 1024 * 1024  # a larger "message" is a broken sender, not a lab result


def _hl7_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def _control_id(text: str) -> str:
    """MSH-10 of a message (best effort, for ACKs of messages that could not be parsed)."""
    first = text.lstrip().split("\r", 1)[0].split("\n", 1)[0]
    if len(first) > 8 and first.startswith("MSH"):
        fields = first.split(first[3])
        if len(fields) > 9:
            return fields[9]
    return ""


def handle_frame(rt: Runtime, frame: bytes, peer: str) -> str:
    """Store, acknowledge and hand on one framed message; returns the ACK text."""
    from tasks import jobs
    from tasks.ingest import accept, parse_received

    text = frame.decode("utf-8", errors="replace")
    if not text.lstrip().startswith("MSH"):
        return build_ack("", "AR", "not an HL7 v2 message: a frame must start with an MSH segment",
                         timestamp=_hl7_now(), error_code="100")
    received_at = datetime.now(timezone.utc)
    try:
        stored = accept(rt, frame, "hl7v2", f"mllp:{peer}")
    except Exception as exc:  # noqa: BLE001 - the sender must resend: say so, never claim acceptance
        log.error("could not store a message from %s: %s", peer, type(exc).__name__)
        return build_ack(_control_id(text), "AE", "message not stored (storage unavailable); please resend",
                         timestamp=_hl7_now())
    result = parse_received(rt, frame, "hl7v2", received_at)
    ack = result.acks[0] if result.acks else MessageAck(
        _control_id(text), "AR", result.rejected[0].reason if result.rejected else "no message found", "2.5.1")
    ids = [a.inbox_id for a in stored]
    if rt.settings.embedded:
        jobs.run_inline_ingest(rt, ids, None)
    else:
        for inbox_id in ids:
            jobs.ingest_batch.delay(inbox_id)
    return ack_for(ack, timestamp=_hl7_now())


async def _connection(rt: Runtime, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = "%s:%s" % (writer.get_extra_info("peername") or ("?", "?"))[:2]
    loop = asyncio.get_running_loop()
    buf = b""
    try:
        while data := await reader.read(65536):
            buf += data
            while True:
                start = buf.find(START)
                if start < 0:
                    buf = b""  # bytes outside any frame carry no message to acknowledge
                    break
                end = buf.find(END, start)
                if end < 0:
                    if len(buf) - start > MAX_FRAME_BYTES:
                        writer.write(_framed(build_ack("", "AR", "frame larger than 10 MB", timestamp=_hl7_now())))
                        buf = b""
                    else:
                        buf = buf[start:]
                    break
                frame, buf = buf[start + 1:end], buf[end + 1:].removeprefix(b"\r")
                ack = await loop.run_in_executor(None, handle_frame, rt, frame, peer)
                writer.write(_framed(ack))
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _framed(ack: str) -> bytes:
    return START + ack.encode("utf-8") + END + b"\r"


async def serve(rt: Runtime, host: str, port: int, started: asyncio.Future[int] | None = None) -> None:
    server = await asyncio.start_server(lambda r, w: _connection(rt, r, w), host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("MLLP listener on %s:%s", host, bound)
    if started is not None:
        started.set_result(bound)
    async with server:
        await server.serve_forever()
