"""How the feed answers a request it cannot validate (422).

FastAPI's default 422 body repeats every rejected value (`input`): a mistyped API key posted to the
login form, a webhook secret that is too short or a URL with credentials would be echoed back (and
into any log or proxy that keeps error bodies), and a value that is not valid Unicode (a lone
surrogate) made the error itself unrenderable, a 500. This answer names the field (`loc`), the rule
(`type`) and the reason (`msg`), never the value, and is rendered as ASCII-safe JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response


def _error(e: dict[str, Any]) -> dict[str, Any]:
    loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
    return {"type": str(e.get("type", "")), "loc": loc, "msg": str(e.get("msg", ""))}


async def validation_error(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    body = json.dumps({"detail": [_error(e) for e in errors]}, ensure_ascii=True)
    return Response(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
