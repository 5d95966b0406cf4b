"""API keys (admin): listing only. Keys are created and revoked with `imn-monitor keys …` by an
operator with database access, so a leaked admin key cannot mint more keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from feed.auth import AUTH_RESPONSES, admin_key
from feed.deps import read_session
from storage import api_keys
from storage.api_keys import ApiKey

router = APIRouter(tags=["keys"], responses=AUTH_RESPONSES)


@router.get("/keys")
def list_keys(s: Session = Depends(read_session), _: ApiKey = Depends(admin_key)) -> list[dict[str, Any]]:
    """Every key (id, name, role, prefix, created_at, revoked_at); never the key itself or its hash."""
    return [k.as_dict() for k in api_keys.list_keys(s)]
