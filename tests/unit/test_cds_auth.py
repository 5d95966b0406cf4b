"""JWKS loading of the CDS Hooks JWT check (tasks/cds_auth.py): key rotation, unreachable or broken
key sets are refusals (401), never errors."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tasks import cds_auth
from tasks.cds_auth import CdsAuthError, JwksCache

ISS = "https://ehr.example.org"


def jwk(kid: str, alg: str = "ES384") -> dict:
    if alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1()).public_key()
        return {**jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True), "kid": kid}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return {**jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True), "kid": kid}


def test_an_unknown_kid_refetches_the_jwks_after_a_while(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk("k1")]}))
    clock = [1000.0]
    monkeypatch.setattr(cds_auth.time, "monotonic", lambda: clock[0])
    cache = JwksCache({ISS: str(path)})
    assert cache.key(ISS, "k1")["kid"] == "k1"
    path.write_text(json.dumps({"keys": [jwk("k1"), jwk("k2")]}))  # the EHR rotates its keys
    clock[0] += cds_auth.JWKS_REFRESH_MIN_S - 1
    with pytest.raises(CdsAuthError, match="kid"):
        cache.key(ISS, "k2")  # not refetched yet: an unknown kid cannot make us fetch on every request
    clock[0] += 2
    assert cache.key(ISS, "k2")["kid"] == "k2"


@pytest.mark.parametrize("source", ["http://127.0.0.1:9/jwks.json", "/nonexistent/jwks.json"])
def test_an_unreachable_jwks_is_a_refusal(source: str) -> None:
    with pytest.raises(CdsAuthError, match="could not be loaded"):
        JwksCache({ISS: source}).key(ISS, "k1")


def test_a_broken_jwks_is_a_refusal(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text('{"nokeys": []}')
    with pytest.raises(CdsAuthError):
        JwksCache({ISS: str(tmp_path / "a.json")}).key(ISS, "k1")
    with pytest.raises(CdsAuthError, match="no keys"):
        JwksCache({ISS: str(tmp_path / "b.json")}).key(ISS, "k1")


def test_the_key_must_fit_the_algorithm() -> None:
    assert cds_auth._public_key(jwk("a"), "ES384") is not None
    assert cds_auth._public_key(jwk("b", "RS384"), "RS384") is not None
    with pytest.raises(CdsAuthError):
        cds_auth._public_key(jwk("b", "RS384"), "ES384")
    with pytest.raises(CdsAuthError, match="P-384"):
        p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
        cds_auth._public_key({**jwt.algorithms.ECAlgorithm.to_jwk(p256, as_dict=True), "kid": "c"}, "ES384")
    with pytest.raises(CdsAuthError, match="alg"):
        cds_auth._public_key({**jwk("d"), "alg": "ES256"}, "ES384")
    with pytest.raises(CdsAuthError, match="signing"):
        cds_auth._public_key({**jwk("e"), "use": "enc"}, "ES384")
