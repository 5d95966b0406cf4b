"""JSON text to Python objects, refusing what the standard library would silently accept.

- Duplicate keys: json.loads keeps the last value, so {"patient_id":"A","patient_id":"B"} filed a
  result under B. RFC 8259 leaves the meaning of duplicate names open; for clinical data the only
  safe reading is none. Refused at any nesting level, naming the key.
- Nesting deeper than the interpreter can recurse: json raises RecursionError, which is no
  ValueError, and some callers only caught ValueError. Here it is a JsonRefused with its reason.

Every parser of JSON input (NDJSON, FHIR) reads through `loads`.
"""

from __future__ import annotations

import json
from typing import Any


class JsonRefused(ValueError):
    """Well-formed JSON that is refused anyway; str() is the reason."""


class DuplicateKey(JsonRefused):
    def __init__(self, key: str):
        self.key = key
        shown = key if len(key) <= 60 else key[:57] + "..."
        super().__init__(f"duplicate key {shown!r} in one JSON object: which of its values is meant is ambiguous")


class TooDeep(JsonRefused):
    def __init__(self) -> None:
        super().__init__("JSON nested too deeply to read (hundreds of levels of arrays or objects)")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def loads(text: str) -> Any:
    """json.loads, raising DuplicateKey or TooDeep (both JsonRefused) besides json's own errors
    (JSONDecodeError for malformed text, ValueError for integers beyond Python's digit limit)."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise TooDeep() from None
