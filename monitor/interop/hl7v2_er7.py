"""HL7 v2 ER7 text: splitting a payload into messages and segments, fields into components.

Kept apart from the ORU^R01 mapping so that both stay small. Values are read here rather than through
hl7apy's element tree because real feeds put "<5" in NM fields and vary group structure by version;
hl7apy checks each message's structure and version (see hl7v2.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

MLLP_START, MLLP_END = "\x0b", "\x1c"
BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")


@dataclass(frozen=True)
class Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"


@dataclass(frozen=True)
class Segment:
    number: int  # 1-based position in the payload: the line number once segments are one per line
    text: str
    enc: Encoding

    @property
    def name(self) -> str:
        return self.text[:3]

    def field(self, n: int) -> str:
        """Raw field n (1-based, as HL7 numbers them; MSH-1 is the field separator itself)."""
        parts = self.text.split(self.enc.field)
        if self.name == "MSH":
            parts = [parts[0], self.enc.field, *parts[1:]]
        return parts[n] if 0 <= n < len(parts) else ""

    def get(self, n: int, component: int = 1, repetition: int = 0) -> str:
        """Field n, component `component` (1-based) of repetition `repetition`, unescaped and stripped."""
        reps = self.field(n).split(self.enc.repetition)
        if repetition >= len(reps):
            return ""
        comps = reps[repetition].split(self.enc.component)
        if component > len(comps):
            return ""
        # a subcomponent separator inside a component: keep the first subcomponent (the identifier)
        return unescape(comps[component - 1].split(self.enc.subcomponent)[0], self.enc).strip()

    def components(self, n: int, repetition: int = 0) -> list[str]:
        reps = self.field(n).split(self.enc.repetition)
        raw = reps[repetition] if repetition < len(reps) else ""
        return [unescape(c, self.enc).strip() for c in raw.split(self.enc.component)]

    def repetitions(self, n: int) -> int:
        return len([r for r in self.field(n).split(self.enc.repetition) if r.strip()])


def unescape(text: str, enc: Encoding) -> str:
    r"""Decode HL7 escapes: \F\ \S\ \T\ \R\ \E\, \Xhh\ and \.br\; formatting escapes are dropped."""
    e = enc.escape
    if not e or e not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == e:
            end = text.find(e, i + 1)
            if end == -1:  # an unterminated escape is taken literally
                out.append(text[i:])
                break
            out.append(_escape_value(text[i + 1 : end], enc))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _escape_value(code: str, enc: Encoding) -> str:
    simple = {
        "F": enc.field,
        "S": enc.component,
        "T": enc.subcomponent,
        "R": enc.repetition,
        "E": enc.escape,
        ".br": "\n",
    }
    if code in simple:
        return simple[code]
    if code[:1] == "X" and len(code) > 1 and len(code) % 2 == 1:
        try:
            return bytes.fromhex(code[1:]).decode("latin-1")
        except ValueError:
            return ""
    return ""  # \H\, \N\, \.sp\ and other formatting


def escape(text: str, enc: Encoding = Encoding()) -> str:
    """Escape delimiters so that free text (an ACK's reason) cannot break the message structure."""
    out = text.replace(enc.escape, f"{enc.escape}E{enc.escape}")
    for ch, code in ((enc.field, "F"), (enc.component, "S"), (enc.subcomponent, "T"), (enc.repetition, "R")):
        out = out.replace(ch, f"{enc.escape}{code}{enc.escape}")
    return out.replace("\r", " ").replace("\n", " ")


def encoding_of(msh: str) -> Encoding:
    """Delimiters from MSH-1/MSH-2, defaulting each missing one to the standard."""
    if len(msh) < 4:
        return Encoding()
    fs = msh[3]
    chars = msh[4:].split(fs, 1)[0]
    std = Encoding()
    picks = [
        chars[i] if i < len(chars) else d
        for i, d in enumerate((std.component, std.repetition, std.escape, std.subcomponent))
    ]
    return Encoding(fs, *picks)


def normalise(text: str) -> str:
    """MLLP framing removed; \\r\\n and \\n segment ends turned into HL7's \\r."""
    text = text.replace(MLLP_START, "").replace(MLLP_END, "")
    return text.replace("\r\n", "\r").replace("\n", "\r")


def segments(text: str) -> list[str]:
    """Non-blank segments of a normalised payload, leading blanks (pretty-printed files) removed."""
    return [s.strip(" \t") for s in normalise(text).split("\r") if s.strip()]


def split_messages(text: str) -> list[str]:
    """Each MSH-started message of a payload as its own \\r-separated text; batch envelopes
    (FHS/BHS/BTS/FTS) and anything before the first MSH are left out."""
    grouped, _ = group_segments(segments(text))
    return ["\r".join(s for _, s in msg) for msg in grouped]


def group_segments(segs: list[str]) -> tuple[list[list[tuple[int, str]]], list[tuple[int, str]]]:
    """Messages as lists of (segment number, text); and the segments that belong to no message."""
    messages: list[list[tuple[int, str]]] = []
    orphans: list[tuple[int, str]] = []
    for number, seg in enumerate(segs, start=1):
        name = seg[:3]
        if name in BATCH_SEGMENTS:
            continue
        if name == "MSH":
            messages.append([(number, seg)])
        elif messages:
            messages[-1].append((number, seg))
        else:
            orphans.append((number, seg))
    return messages, orphans


def valid_segment_name(seg: str) -> bool:
    return bool(_SEGMENT_ID.match(seg[:3]))


_TS = re.compile(
    r"^(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})(?:(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})(?:\.\d{1,4})?)?)?)?"
    r"(?P<tz>[+-]\d{4})?$"
)


def parse_ts(text: str) -> datetime | date | None:
    """HL7 TS/DTM 'YYYYMMDD[HH[MM[SS[.S]]]][+ZZZZ]' -> date (day precision) or datetime; None if
    unreadable. A time without an offset is left naive: events read it in the ValidationContext's zone
    (IMN_TIMEZONE)."""
    m = _TS.match(text.strip())
    if not m:
        return None
    try:
        day = date(int(m["y"]), int(m["mo"]), int(m["d"]))
        if m["h"] is None:
            return day
        tz = None
        if m["tz"]:
            sign = 1 if m["tz"][0] == "+" else -1
            hours, minutes = int(m["tz"][1:3]), int(m["tz"][3:5])
            if hours > 14 or minutes > 59:
                return None
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime(
            day.year, day.month, day.day, int(m["h"]), int(m["mi"] or 0), int(m["s"] or 0), tzinfo=tz
        )
    except ValueError:
        return None
