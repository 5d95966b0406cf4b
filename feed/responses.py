"""JSON answers rendered in one pass.

A route that returns a plain dict has FastAPI validate it against the route's response model
(`dict[str, Any]`: a walk over every value), convert it to JSON-ready Python (a second walk) and
`json.dumps` it (a third). The read side already builds JSON-ready dicts (storage.serialize,
monitor's `summary()`), so those walks only cost CPU: for a page of 50 alerts with their evidence
(98 kB) 2.7 ms of CPU against 0.19 ms for the one pass below, on the loaded benchmark machine
(docs/performance.md section 3).

`JSON(data)` renders the dict once with pydantic-core's serializer, which encodes exactly what
FastAPI's own pipeline produced for these values (dates and date-times in ISO 8601, enums by value,
tuples as lists, NaN and infinities as null); the route keeps `response_model=...` so the OpenAPI
schema is unchanged, and FastAPI returns a Response object as it is.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic_core import to_json


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # inf_nan_mode="null": what FastAPI's JSON-mode serialisation of the response model gave
        return to_json(content, inf_nan_mode="null")
