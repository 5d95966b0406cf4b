"""Who may call the CDS Hooks service: the JWT bearer of CDS Hooks 2.0 ("Trusting CDS Clients").

The EHR signs a short-lived JWT (ES384 or RS384) with a key of its JWKS; the monitor trusts only the
issuers of Settings.cds_trusted_issuers (IMN_CDS_TRUSTED_ISSUERS, issuer -> JWKS URL or file path).
A token is accepted when all hold, and refused (CdsAuthError, answered 401) otherwise:
- the header's alg is ES384 or RS384 (never none, never an HMAC: a public key is not a secret), and
  its kid names a key of the issuer's JWKS of the matching type (P-384 for ES384, RSA for RS384);
- the signature verifies (PyJWT with cryptography: no hand-written crypto);
- iss is a trusted issuer, aud is this service's URL, exp is in the future, iat and jti are present;
- the (iss, jti) pair was not accepted before (storage/cds_jti.py keeps them until they expire).

The header's `jku` (a JWKS URL chosen by the caller) is ignored: keys come from configuration only,
so a caller cannot point the monitor at keys of its own or at an internal address.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy.engine import Engine

from storage import cds_jti
from storage.db import session

log = logging.getLogger("imn.cds")

ALGORITHMS = ("ES384", "RS384")
LEEWAY_S = 10  # clock skew allowed on exp/iat
JWKS_TTL_S = 300  # a fetched JWKS is reused this long
JWKS_REFRESH_MIN_S = 30  # an unknown kid refetches the JWKS at most this often (key rotation)
JWKS_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 256 * 1024


class CdsAuthError(Exception):
    """Refused; the message says why (logged, and in the 401 body: it names no secret)."""


@dataclass(frozen=True)
class CdsClient:
    issuer: str
    subject: str | None  # the EHR's client id
    jti: str

    @property
    def actor(self) -> str:
        """Who acts in the alert audit trail when this client sends feedback."""
        return f"cds-hooks:{self.subject or self.issuer}"[:200]


class JwksCache:
    """Issuers' key sets, fetched (URL) or read (file) on demand and kept JWKS_TTL_S."""

    def __init__(self, trusted: dict[str, str]) -> None:
        self.trusted = dict(trusted)
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}

    def key(self, issuer: str, kid: str) -> dict[str, Any]:
        source = self.trusted.get(issuer)
        if source is None:
            raise CdsAuthError("issuer is not trusted")
        now = time.monotonic()
        with self._lock:
            cached = self._sets.get(issuer)
        if cached is None or now - cached[0] > JWKS_TTL_S or (kid not in cached[1] and now - cached[0] > JWKS_REFRESH_MIN_S):
            keys = self._load(source)
            cached = (now, keys)
            with self._lock:
                self._sets[issuer] = cached
        jwk = cached[1].get(kid)
        if jwk is None:
            raise CdsAuthError("kid is not a key of the issuer's JWKS")
        return jwk

    @staticmethod
    def _load(source: str) -> dict[str, dict[str, Any]]:
        try:
            if source.startswith(("https://", "http://")):
                with httpx.Client(timeout=JWKS_TIMEOUT_S, follow_redirects=False) as client:
                    resp = client.get(source, headers={"Accept": "application/json"})
                resp.raise_for_status()
                if len(resp.content) > JWKS_MAX_BYTES:
                    raise ValueError("JWKS too large")
                doc = resp.json()
            else:
                doc = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError, httpx.HTTPError) as exc:
            log.warning("cds: JWKS %s could not be loaded: %s", source, type(exc).__name__)
            raise CdsAuthError("the issuer's JWKS could not be loaded") from None
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise CdsAuthError("the issuer's JWKS has no keys")
        return {str(k["kid"]): k for k in keys if isinstance(k, dict) and k.get("kid")}


def _public_key(jwk: dict[str, Any], alg: str) -> Any:
    if jwk.get("alg") not in (None, alg):
        raise CdsAuthError("the key's alg does not match the token's")
    if jwk.get("use") not in (None, "sig"):
        raise CdsAuthError("the key is not a signing key")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
    except jwt.exceptions.PyJWTError:
        raise CdsAuthError("the key does not fit the token's alg") from None
    if alg == "ES384" and not (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"):
        raise CdsAuthError("ES384 needs a P-384 public key")
    if alg == "RS384" and not isinstance(key, rsa.RSAPublicKey):
        raise CdsAuthError("RS384 needs an RSA public key")
    return key


def verify(token: str, audience: str, jwks: JwksCache, engine: Engine, now: datetime | None = None) -> CdsClient:
    """The caller, or CdsAuthError."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.exceptions.PyJWTError:
        raise CdsAuthError("not a JWT") from None
    alg, kid, issuer = header.get("alg"), header.get("kid"), unverified.get("iss")
    if alg not in ALGORITHMS:
        raise CdsAuthError("alg must be ES384 or RS384")
    if not isinstance(kid, str) or not kid:
        raise CdsAuthError("the JWT header has no kid")
    if not isinstance(issuer, str) or issuer not in jwks.trusted:
        # the caller's own claim, named so that an administrator registering an EHR sees what it sends
        raise CdsAuthError(f"issuer {str(issuer)[:200]!r} is not trusted")
    key = _public_key(jwks.key(issuer, kid), alg)
    try:
        claims = jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=issuer, leeway=LEEWAY_S,
                            options={"require": ["iss", "aud", "exp", "iat", "jti"]})
    except jwt.exceptions.ExpiredSignatureError:
        raise CdsAuthError("the JWT has expired") from None
    except jwt.exceptions.InvalidAudienceError:
        raise CdsAuthError("the JWT's aud is not this service's URL") from None
    except jwt.exceptions.PyJWTError as exc:
        raise CdsAuthError(f"the JWT is not valid ({type(exc).__name__})") from None
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 200:
        raise CdsAuthError("jti must be a non-empty string")
    when = now or datetime.now(UTC)
    expires = datetime.fromtimestamp(float(claims["exp"]) + LEEWAY_S, UTC)
    with session(engine) as s:
        fresh = cds_jti.remember(s, issuer, jti, expires, when)
    if not fresh:
        raise CdsAuthError("the JWT's jti was used before")
    sub = claims.get("sub")
    return CdsClient(issuer, sub if isinstance(sub, str) else None, jti)
