"""Property-based requests generated from the app's own OpenAPI schema (schemathesis 4): no request,
however odd, gets a 5xx, and responses conform to the documented status codes, content types and
schemas. The infinite /stream/alerts is left out (it is tested on a real server).

schemathesis' pytest integration (`from_fixture`) does not run on pytest 9, so the operations are
driven here with hypothesis directly: one property per operation, each with a small example budget.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import APIRouter
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from feed.app import ROUTERS

from .conftest import Feed

# the ingestion bodies are text: send the generated strings as they are
for _media in ("application/x-ndjson", "application/ndjson", "application/jsonl", "text/csv"):
    schemathesis.serializer.alias(_media, "text/plain")
# a router, or a function building one (the ingest routes, from the registry of input formats)
CORE_PATHS = {route.path for r in ROUTERS for route in (r if isinstance(r, APIRouter) else r()).routes}  # type: ignore[attr-defined]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 20


@pytest.mark.parametrize("part", ["core", "extra"])
def test_generated_requests_get_no_server_error(feed: Feed, part: str) -> None:
    """core: the routers of feed/app.py's ROUTERS; extra: whatever feed/extra.py adds."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", feed.app).exclude(path="/stream/alerts")
    headers = feed.auth("admin")
    failures: dict[str, str] = {}
    n = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.path in CORE_PATHS) != (part == "core"):
            continue
        n += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    assert n >= (18 if part == "core" else 0)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
