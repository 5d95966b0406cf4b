"""Webhook subscriptions of the clinician feed.

    POST   /webhooks                    admin: {name, url, secret?, filters?} -> 201, secret shown once
    GET    /webhooks                    clinician/admin: subscriptions (never their secrets)
    DELETE /webhooks/{id}               admin: deactivate (history stays; pending deliveries go dead)
    GET    /webhooks/{id}/deliveries    clinician/admin: delivery states, attempts, last errors

Deliveries are signed like the single IMN_WEBHOOK_URL path (tasks/webhooks.py); filters are lists of
rules, severities and patients (absent/empty = all).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from feed.auth import AUTH_RESPONSES, admin_key, clinician_key
from feed.schemas import Id, Storable
from storage import subscriptions as subs
from storage.api_keys import ApiKey
from storage.db import session
from tasks import url_safety

router = APIRouter(tags=["webhooks"], responses=AUTH_RESPONSES)


class Filters(BaseModel):
    rules: list[Storable] | None = None
    severities: list[Storable] | None = None
    patients: list[Storable] | None = None


class SubscriptionIn(BaseModel):
    name: Storable = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL receiving POSTs")
    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="HMAC-SHA256 key; generated (and returned once) when absent")
    filters: Filters = Field(default_factory=Filters)


class DeliveryState(str, Enum):
    pending = "pending"
    delivered = "delivered"
    dead = "dead"


def _engine(request: Request) -> Any:
    return request.app.state.runtime.engine


def _shown(sub: dict[str, Any]) -> dict[str, Any]:
    """A subscription as anyone may see it: its URL without credentials or query values."""
    return {**sub, "url": url_safety.redact(sub["url"])}


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, responses={422: {"description": "invalid"}})
def create_webhook(body: SubscriptionIn, request: Request, _: ApiKey = Depends(admin_key)) -> dict[str, Any]:
    """Subscribe a receiver. Its URL must be http(s), without credentials, and reach a public address
    unless IMN_WEBHOOK_ALLOW_PRIVATE=1 (checked here and again at every delivery)."""
    allow_private = request.app.state.runtime.settings.webhook_allow_private
    try:
        url_safety.check_url(body.url, allow_private, resolve_names=True)
    except url_safety.UnsafeUrl as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"url: {exc}") from None
    try:
        with session(_engine(request)) as s:
            sub, secret = subs.create_subscription(s, body.name, body.url, body.filters.model_dump(),
                                                   datetime.now(UTC), body.secret)
    except subs.SubscriptionError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return {**_shown(sub), "secret": secret}


@router.get("/webhooks")
def list_webhooks(request: Request, _: ApiKey = Depends(clinician_key),
                  include_inactive: bool = False) -> list[dict[str, Any]]:
    with session(_engine(request), write=False) as s:
        return [_shown(sub) for sub in subs.list_subscriptions(s, include_inactive)]


@router.delete("/webhooks/{sub_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses={404: {"description": "no such active subscription"}})
def delete_webhook(sub_id: Id, request: Request, _: ApiKey = Depends(admin_key)) -> Response:
    with session(_engine(request)) as s:
        if not subs.deactivate_subscription(s, sub_id, datetime.now(UTC)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no active subscription {sub_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{sub_id}/deliveries", responses={404: {"description": "no such subscription"}})
def webhook_deliveries(sub_id: Id, request: Request, _: ApiKey = Depends(clinician_key),
                       state: DeliveryState | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    with session(_engine(request), write=False) as s:
        sub = subs.get_subscription(s, sub_id)
        if sub is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no subscription {sub_id}")
        return {"subscription": _shown(sub), "counts": subs.delivery_counts(s, sub_id),
                "deliveries": subs.list_deliveries(s, sub_id, state.value if state else None, limit)}
