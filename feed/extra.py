"""Routers joining the feed through create_app's extension point: the clinician web page (/ and
/ui/*), the patient chart (/patients/{id}/chart.png) and webhook subscriptions (/webhooks)."""

from __future__ import annotations

from fastapi import FastAPI

from feed import charts, web, webhooks


def include(app: FastAPI) -> None:
    app.include_router(web.router)
    app.include_router(charts.router)
    app.include_router(webhooks.router)
    web.install_login_redirect(app)
