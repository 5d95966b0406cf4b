"""`imn-monitor mllp`: an asyncio MLLP listener for HL7 v2 feeds.

Each frame (<VT> message <FS><CR>) is stored in the inbox first (durable), then handed on to
processing through tasks.service (queued, or, embedded, processed here), then acknowledged. The ACK
code comes from parsing the stored message: AA when every result was understood, AE when some were quarantined (with the reason in ERR), AR when the
message cannot be used at all. A frame that could not be stored gets AE "resend" and nothing is
acknowledged as accepted. A bad frame never closes the connection; a frame that never ends, a
connection that stays silent and an oversized frame do (see _connection).
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
    import io

    from tasks import service
    from tasks.ingest import parse_received

    text = frame.decode("utf-8", errors="replace")
    if not text.lstrip().startswith("MSH"):
        return build_ack("", "AR", "not an HL7 v2 message: a frame must start with an MSH segment",
                         timestamp=_hl7_now(), error_code="100")
    received_at = datetime.now(timezone.utc)
    try:
        stored = service.store(rt, [(io.BytesIO(frame), f"mllp:{peer}")], "hl7v2")
    except Exception as exc:  # noqa: BLE001 - the sender must resend: say so, never claim acceptance
        log.error("could not store a message from %s: %s", peer, type(exc).__name__)
        return build_ack(_control_id(text), "AE", "message not stored (storage unavailable); please resend",
                         timestamp=_hl7_now())
    result = parse_received(rt, frame, "hl7v2", received_at)
    ack = result.acks[0] if result.acks else MessageAck(
        _control_id(text), "AR", result.rejected[0].reason if result.rejected else "no message found", "2.5.1")
    # stored is stored: the ACK stands even if processing fails here (the sweeper re-drives it)
    service.process_or_leave(rt, stored.todo)
    return ack_for(ack, timestamp=_hl7_now())


class _Frames:
    """The receive buffer of one connection: bytes outside frames are dropped, a frame is the bytes
    between a start block and the next end block. Scanning resumes where it stopped, so a large frame
    arriving in many reads is searched once (not once per read)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.scanned = 0  # bytes of the open frame already searched for an end block

    @property
    def open(self) -> bool:
        """A start block has been seen and its end block not yet."""
        return bool(self.buf)

    @property
    def open_size(self) -> int:
        return max(len(self.buf) - 1, 0)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the frames they complete."""
        if not self.buf:
            start = data.find(START)
            if start < 0:
                return []  # bytes outside any frame carry no message to acknowledge
            data = data[start:]
        self.buf += data
        frames = []
        while self.buf:
            end = self.buf.find(END, max(self.scanned, 1))
            if end < 0:
                self.scanned = len(self.buf)
                break
            frames.append(bytes(self.buf[1:end]))
            rest = self.buf[end + 1:]
            if rest.startswith(b"\r"):
                rest = rest[1:]
            start = rest.find(START)
            self.buf, self.scanned = (bytearray(rest[start:]) if start >= 0 else bytearray()), 0
        return frames


async def _connection(rt: Runtime, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One sender's connection. Limits (settings), so that no sender holds a connection or memory
    for ever: a frame must end within IMN_MLLP_READ_TIMEOUT_S of its start block (else the connection
    is closed without an ACK: the sender sees no acknowledgement and resends), a connection without a
    frame for IMN_MLLP_IDLE_TIMEOUT_S is closed, and a frame growing past IMN_MLLP_MAX_FRAME_BYTES
    gets AR and the connection is closed (the rest of that frame cannot be told from a new one)."""
    st = rt.settings
    peer = "%s:%s" % (writer.get_extra_info("peername") or ("?", "?"))[:2]
    loop = asyncio.get_running_loop()
    frames = _Frames()
    idle_since = loop.time()
    frame_since: float | None = None
    try:
        while True:
            if frames.open:
                frame_since = frame_since if frame_since is not None else loop.time()
                deadline, why = frame_since + st.mllp_read_timeout_s, "incomplete frame"
            else:
                frame_since = None
                deadline, why = idle_since + st.mllp_idle_timeout_s, "idle"
            try:
                data = await asyncio.wait_for(reader.read(65536), max(deadline - loop.time(), 0))
            except TimeoutError:
                log.warning("closing MLLP connection from %s: %s for too long", peer, why)
                return
            if not data:
                return
            for frame in frames.feed(data):
                if len(frame) > st.mllp_max_frame_bytes:
                    await _refuse_oversized(writer, peer, st.mllp_max_frame_bytes)
                    return
                ack = await loop.run_in_executor(None, handle_frame, rt, frame, peer)
                writer.write(_framed(ack))
                await writer.drain()
                idle_since, frame_since = loop.time(), None
            if frames.open_size > st.mllp_max_frame_bytes:
                await _refuse_oversized(writer, peer, st.mllp_max_frame_bytes)
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _refuse_oversized(writer: asyncio.StreamWriter, peer: str, limit: int) -> None:
    log.warning("closing MLLP connection from %s: frame larger than %d bytes", peer, limit)
    writer.write(_framed(build_ack("", "AR", f"frame larger than {limit} bytes", timestamp=_hl7_now())))
    await writer.drain()


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
