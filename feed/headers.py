"""Response headers every answer of the feed carries (issue 12, item 11).

- `X-Content-Type-Options: nosniff` everywhere: a browser never guesses a type other than the declared
  one (an uploaded payload echoed in an error can never run as a script).
- `Cache-Control: no-store` unless the route already said no-store: almost every answer carries
  patient data (alerts, summaries, charts, the alert stream), and no answer is meant to be cached by a
  browser or a shared proxy, so the rule is "never", not a list of routes to remember.

A pure ASGI middleware (it only edits the response start message), so streamed answers (Server-Sent
Events) pass through unchanged.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if "no-store" not in headers.get("cache-control", ""):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
