"""The HTTP feed (`imn-monitor api`): an entry point like the CLI, built on FastAPI.

It only parses requests and calls tasks (ingestion) or the read side and the repository (alerts,
patients); `create_app(runtime)` is its composition root. See feed/app.py for how other routers
(the web page, charts, webhooks) join it through `feed/extra.py`.
"""

from feed.app import create_app

__all__ = ["create_app"]
