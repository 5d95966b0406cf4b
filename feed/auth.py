"""Bearer API keys and roles.

    ingest     POST /ingest/*, GET /inbox/{id}
    clinician  alerts (read and act), patients, the alert stream, FHIR Flags
    admin      everything, including GET /keys

`require(*roles)` is the dependency every protected route uses; admin passes any of them. It returns
the caller's `ApiKey` (name, role, prefix): the name is the acting identity in the alert audit trail.
A missing or unknown key answers 401 with `WWW-Authenticate: Bearer`; a known key of the wrong role
answers 403. The body says no more than that.

Keys found valid are kept for KEY_CACHE_S seconds per process (storage.api_keys.KeyCache): a key
revoked with `imn-monitor keys revoke` stops working within that time in every API process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from storage import api_keys
from storage.api_keys import ApiKey
from storage.db import session

INGEST, CLINICIAN, ADMIN = "ingest", "clinician", "admin"
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="`Authorization: Bearer imn_…` (create one with `imn-monitor keys create`)")


def _unauthorized(error: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing or invalid API key",
                         headers={"WWW-Authenticate": f'Bearer realm="imn-monitor", error="{error}"'})


KEY_CACHE_S = 2.0  # how long a revoked key may still work in an API process other than the revoking one


def key_cache(request: Request) -> api_keys.KeyCache:
    """The app's cache of valid keys (made on first use: apps built without create_app have one too)."""
    cache = getattr(request.app.state, "key_cache", None)
    if cache is None:
        cache = request.app.state.key_cache = api_keys.KeyCache(KEY_CACHE_S)
    return cache


def _lookup(request: Request) -> Callable[[str], ApiKey | None]:
    def lookup(token: str) -> ApiKey | None:
        with session(request.app.state.runtime.engine, write=False) as s:
            return api_keys.authenticate(s, token)
    return lookup


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("invalid_request")
    return credentials.credentials.strip()


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> ApiKey:
    """The caller's key (blocking: from a thread, or from the cache)."""
    key = key_cache(request).authenticate(_lookup(request), _token(credentials))
    if key is None:
        raise _unauthorized("invalid_token")
    return key


async def authenticate_async(request: Request, credentials: HTTPAuthorizationCredentials | None) -> ApiKey:
    """The caller's key; a cached key is answered on the event loop, without a thread of the pool."""
    token = _token(credentials)
    cache = key_cache(request)
    key = cache.cached(token)
    if key is None:
        key = await run_in_threadpool(cache.authenticate, _lookup(request), token)
    if key is None:
        raise _unauthorized("invalid_token")
    return key


def require(*roles: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency admitting keys of these roles (and admin keys); returns the caller's key."""
    unknown = set(roles) - set(api_keys.ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles) | {ADMIN}

    async def dependency(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
        key = await authenticate_async(request, credentials)
        if key.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"forbidden for role {key.role}")
        request.state.api_key = key
        return key

    dependency.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return dependency


# the usual ones, for routes
ingest_key = require(INGEST)
clinician_key = require(CLINICIAN)
admin_key = require(ADMIN)

AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "missing or invalid API key"},
    403: {"description": "the key's role may not use this endpoint"},
}
