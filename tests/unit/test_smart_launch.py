"""The SMART App Launch's protocol pieces that need no EHR (tasks/smart_launch.py): PKCE, the
authorize URL, which endpoints a discovery document may name, the registered-issuer lookup, the
user's name for the audit trail and the id_token checks (the JWKS handed in, no network)."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tasks import smart_launch as smart
from tasks.smart_launch import Endpoints, SmartError


def test_s256_matches_the_rfc_7636_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert smart.s256(verifier) == challenge


def test_a_pkce_verifier_is_fresh_and_within_the_rfc_alphabet_and_length() -> None:
    pairs = [smart.pkce_pair() for _ in range(3)]
    assert len({v for v, _ in pairs}) == 3
    for verifier, challenge in pairs:
        assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier) and challenge == smart.s256(verifier)


def test_the_authorize_url_carries_every_smart_parameter() -> None:
    ends = Endpoints("https://ehr.example/oauth/authorize?tenant=a", "https://ehr.example/oauth/token",
                     None, None)
    url = smart.authorize_url(ends, client_id="imn", redirect_uri="https://imn.example/smart/callback",
                              iss="https://ehr.example/fhir", launch="L 1&x", state="s1", code_challenge="c1")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q == {"tenant": "a", "response_type": "code", "client_id": "imn",
                 "redirect_uri": "https://imn.example/smart/callback", "launch": "L 1&x",
                 "scope": "launch openid fhirUser patient/*.read", "state": "s1",
                 "aud": "https://ehr.example/fhir",
                 "code_challenge": "c1", "code_challenge_method": "S256"}


@pytest.mark.parametrize("url, why", [
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[::]/token", "unspecified"),
    ("https://user:pw@ehr.example/token", "user name or password"),
    ("ftp://ehr.example/token", "absolute http(s)"),
    ("http://ehr.example/token", "plain http while the EHR itself is https"),
    (None, "names no token endpoint"),
])
def test_an_endpoint_the_ehr_names_is_refused_when_unsafe(url, why) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SmartError) as err:
        smart.check_endpoint(url, "https://ehr.example/fhir", "token endpoint")
    assert err.value.status == 502 and why in err.value.detail
    assert "pw" not in err.value.detail


@pytest.mark.parametrize("url", ["https://10.1.2.3/token", "https://ehr.hospital.internal/token",
                                 "http://127.0.0.1:8080/token"])
def test_an_ehr_inside_the_hospital_network_is_allowed(url: str) -> None:
    iss = "http://127.0.0.1:8080/fhir" if url.startswith("http:") else "https://ehr.example/fhir"
    assert smart.check_endpoint(url, iss, "token endpoint") == url


def test_only_registered_issuers_have_a_client_id() -> None:
    clients = {"https://ehr.example/fhir": "imn"}
    assert smart.client_id_for(clients, "https://ehr.example/fhir/") == "imn"
    with pytest.raises(SmartError) as err:
        smart.client_id_for(clients, "https://ehr.example/other")
    assert err.value.status == 400 and "not registered" in err.value.title


def test_the_user_is_named_by_fhir_user_as_an_absolute_reference() -> None:
    iss = "https://ehr.example/fhir"
    assert smart.user_name({"fhirUser": "Practitioner/7"}, iss) == "https://ehr.example/fhir/Practitioner/7"
    other = "https://x.example/Practitioner/7"
    assert smart.user_name({"fhirUser": other}, iss) == other
    assert smart.user_name({"iss": "https://idp.example", "sub": "u1"}, iss) == "https://idp.example#u1"


# ------------------------------------------------------------------------------------------ id_token

KEY = ec.generate_private_key(ec.SECP384R1())
OTHER = ec.generate_private_key(ec.SECP384R1())
ISS, CLIENT = "https://ehr.example/fhir", "imn"


@pytest.fixture
def jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key()))
    monkeypatch.setattr(smart, "_get_json", lambda url, what, timeout_s, headers=None: {
        "keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "ES384"}]})


def _token(key=KEY, kid="k1", **claims) -> str:  # type: ignore[no-untyped-def]
    now = int(time.time())
    body = {"iss": ISS, "aud": CLIENT, "sub": "u1", "iat": now, "exp": now + 300,
            "fhirUser": "Practitioner/7",
            **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="ES384",
                      headers={"kid": kid})


def _verify(token: str) -> dict:  # type: ignore[type-arg]
    return smart.verify_id_token(token, jwks_uri="https://ehr.example/jwks", issuer=ISS, client_id=CLIENT,
                                 timeout_s=1)


def test_a_good_id_token_gives_its_claims(jwks: None) -> None:
    assert _verify(_token())["fhirUser"] == "Practitioner/7"


@pytest.mark.parametrize("token, why", [
    (lambda: _token(key=OTHER), "Signature verification failed"),
    (lambda: _token(kid="unknown"), "no key of its JWKS"),
    (lambda: _token(exp=int(time.time()) - 3600), "expired"),
    (lambda: _token(aud="someone-else"), "Audience"),
    (lambda: _token(iss="https://evil.example"), "issuer"),
    (lambda: _token(sub=None), "sub"),
    (lambda: "not.a.jwt", "not a JWT"),
])
def test_a_bad_id_token_is_refused_with_the_reason(  # type: ignore[no-untyped-def]
        jwks: None, token, why) -> None:
    with pytest.raises(SmartError) as err:
        _verify(token())
    assert err.value.status == 502 and why in err.value.detail, err.value.detail


def test_an_id_token_cannot_be_checked_without_a_jwks_uri() -> None:
    with pytest.raises(SmartError, match="no jwks_uri"):
        smart.verify_id_token(_token(), jwks_uri=None, issuer=ISS, client_id=CLIENT, timeout_s=1)
