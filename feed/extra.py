"""Routers joining the feed through create_app's extension point: the clinician web page (/ and
/ui/*), the patient chart (/patients/{id}/chart.png), the clinic outcome report (/report, /ui/report) and
webhook subscriptions (/webhooks), the SMART App Launch (/smart/*) and the CDS Hooks service
(/cds-services)."""

from __future__ import annotations

from fastapi import FastAPI

from feed import cds_hooks, chart_route, report, smart, web, webhooks


def include(app: FastAPI) -> None:
    app.include_router(web.router)
    app.include_router(chart_route.router)
    app.include_router(report.router)
    app.include_router(report.ui_router)
    app.include_router(webhooks.router)
    app.include_router(smart.router)
    web.install_login_redirect(app)
    cds_hooks.include(app)
