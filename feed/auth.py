"""Bearer API keys and roles.

    ingest     POST /ingest/*, GET /inbox/{id}
    clinician  alerts (read and act), patients, the alert stream, FHIR Flags
    admin      everything, including GET /keys

`require(*roles)` is the dependency every protected route uses; admin passes any of them. It returns
the caller's `ApiKey` (name, role, prefix): the name is the acting identity in the alert audit trail.
A missing or unknown key answers 401 with `WWW-Authenticate: Bearer`; a known key of the wrong role
answers 403. The body says no more than that.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from storage import api_keys
from storage.api_keys import ApiKey
from storage.db import session

INGEST, CLINICIAN, ADMIN = "ingest", "clinician", "admin"
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="`Authorization: Bearer imn_…` (create one with `imn-monitor keys create`)")


def _unauthorized(error: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail="missing or invalid API key",
                         headers={"WWW-Authenticate": f'Bearer realm="imn-monitor", error="{error}"'})


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> ApiKey:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("invalid_request")
    with session(request.app.state.runtime.engine, write=False) as s:
        key = api_keys.authenticate(s, credentials.credentials.strip())
    if key is None:
        raise _unauthorized("invalid_token")
    return key


def require(*roles: str) -> Callable[..., ApiKey]:
    """A dependency admitting keys of these roles (and admin keys); returns the caller's key."""
    unknown = set(roles) - set(api_keys.ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles) | {ADMIN}

    def dependency(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
        key = authenticate(request, credentials)
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
