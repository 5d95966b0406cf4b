"""SMART App Launch (feed/smart.py) against the fake EHR (tests/integration/feed/smart_fake_ehr.py),
without a browser: imn-monitor runs in FastAPI's TestClient (http://testserver), the EHR on a real uvicorn
server that imn-monitor reaches over HTTP. The browser test (test_smart_browser.py) runs the same
launch end to end; these check each way it can go wrong, and the scope of the session it opens."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from storage.db import session
from storage.models import SmartLaunchRow
from tests.integration.feed import conftest_web, smart_fake_ehr

# conftest_web's fixtures, shared by name (web_rt is this module's own, below)
app, client, seeded = conftest_web.app, conftest_web.client, conftest_web.seeded

pytestmark = pytest.mark.integration
APP = "http://testserver"


@pytest.fixture
def ehr():  # type: ignore[no-untyped-def]
    with smart_fake_ehr.running(app_base=APP) as e:
        e.auto_approve = True
        yield e


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


DOWN_ISS = f"http://127.0.0.1:{_closed_port()}/fhir"


@pytest.fixture
def web_rt(tmp_path, ehr):  # type: ignore[no-untyped-def]
    """conftest_web's runtime, with the fake EHR (and one that is down) registered as SMART issuers."""
    from storage.db import upgrade
    from tasks import runtime
    from tasks.settings import Settings

    rt = runtime.init(Settings(database_url=f"sqlite:///{tmp_path / 'imn.db'}", broker_url=None, webhook_url=None,
                               smart_clients={ehr.iss: smart_fake_ehr.CLIENT_ID, DOWN_ISS: "imn"},
                               smart_http_timeout_s=5, _env_file=None))
    upgrade(rt.engine)
    yield rt
    runtime.reset()


def start(c: TestClient, ehr: smart_fake_ehr.FakeEhr, fhir_patient: str) -> httpx.Response:
    """From the EHR's launch URL to the EHR's redirect back to imn-monitor (not yet followed)."""
    r = c.get(ehr.launch_url(fhir_patient).removeprefix(APP), follow_redirects=False)
    assert r.status_code == 302, r.text
    assert r.headers["location"].startswith(ehr.base + "/auth/authorize?")
    back = httpx.get(r.headers["location"], follow_redirects=False)  # the EHR's authorization server
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(APP + "/smart/callback?")
    return back


def finish(c: TestClient, back: httpx.Response) -> httpx.Response:
    return c.get(back.headers["location"].removeprefix(APP), follow_redirects=False)


def launch(c: TestClient, ehr: smart_fake_ehr.FakeEhr, fhir_patient: str) -> httpx.Response:
    return finish(c, start(c, ehr, fhir_patient))


def _sessions(rt) -> list[dict]:  # type: ignore[no-untyped-def]
    with rt.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.exec_driver_sql("select * from user_sessions order by id")]


def _is_page(r: httpx.Response, status: int, text: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert text in r.text, r.text


# ------------------------------------------------------------------------------------ the good path


def test_a_launch_opens_a_clinician_session_scoped_to_the_patient(seeded, client, ehr) -> None:  # type: ignore[no-untyped-def]
    r = client.get(ehr.launch_url("P-ALB").removeprefix(APP), follow_redirects=False)
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert {k: v[0] for k, v in q.items() if k in ("response_type", "client_id", "aud", "scope",
                                                    "code_challenge_method", "redirect_uri")} == {
        "response_type": "code", "client_id": smart_fake_ehr.CLIENT_ID, "aud": ehr.iss,
        "scope": "launch openid fhirUser patient/*.read", "code_challenge_method": "S256",
        "redirect_uri": APP + "/smart/callback"}
    # nothing of the protocol is in the browser: the launch cookie is a random binding value only
    with seeded.engine.connect() as conn:
        [row] = [dict(x._mapping) for x in conn.execute(sa.select(SmartLaunchRow.__table__))]
    cookie = r.headers["set-cookie"]
    assert row["code_verifier"] not in cookie and q["state"][0] not in str(row)
    assert "samesite=lax" in cookie.lower() and "httponly" in cookie.lower() and "Path=/smart/" in cookie
    back = httpx.get(r.headers["location"], follow_redirects=False)
    done = finish(client, back)
    _is_page(done, 200, "Signed in from the EHR")
    assert 'content="0; url=/ui/patients/P-ALB"' in done.text
    # the fake authorization server checked the PKCE verifier against the challenge (it refuses otherwise)
    assert ehr.token_requests[-1]["code_verifier"] == row["code_verifier"]
    [sess] = _sessions(seeded)
    assert (sess["auth_method"], sess["role"], sess["patient_id"], sess["api_key_id"]) == (
        "smart", "clinician", "P-ALB", None)
    assert sess["actor"] == ehr.iss + "/Practitioner/dr-ehr"  # the id_token's fhirUser, absolute
    page = client.get("/ui/patients/P-ALB")
    assert page.status_code == 200 and "albumin_low_thrombosis" in page.text
    assert "opened from the EHR for patient P-ALB" in page.text
    assert client.get("/patients/P-ALB/chart.png").status_code == 200


def test_the_session_reaches_its_patient_only(seeded, client, ehr) -> None:  # type: ignore[no-untyped-def]
    from storage import views

    _is_page(launch(client, ehr, "P-ALB"), 200, "Signed in from the EHR")
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/ui/patients/P-ALB"
    _is_page(client.get("/ui/patients/P-CSA"), 403, "for patient P-ALB only")
    _is_page(client.get("/ui/report"), 403, "for patient P-ALB only")
    assert client.get("/patients/P-CSA/chart.png").status_code == 403
    with session(seeded.engine, write=False) as s:
        own = views.list_alerts(s, patient_id="P-ALB", status="open")[0]
        other = views.list_alerts(s, patient_id="P-CSA", status="open")[0]
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/ui/patients/P-ALB").text).group(1)
    r = client.post(f"/ui/alerts/{other['id']}/acknowledge", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(f"/ui/alerts/{own['id']}/acknowledge", data={"csrf": csrf, "next": "/ui/patients/P-ALB"},
                    follow_redirects=False)
    assert r.status_code == 303 and "acknowledged" in r.headers["location"]
    with session(seeded.engine, write=False) as s:
        trail = views.alert_detail(s, own["id"])["audit"]
        assert views.alert_detail(s, other["id"])["status"] == "firing"
    assert trail[-1]["actor"] == ehr.iss + "/Practitioner/dr-ehr"  # the EHR user, in the audit trail


# ------------------------------------------------------------------------------------- refusals


def test_an_unknown_issuer_gets_a_400_page(web_rt, client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/smart/launch", params={"iss": "https://evil.example/fhir", "launch": "x"})
    _is_page(r, 400, "not registered")
    assert "https://evil.example/fhir" in r.text and "IMN_SMART_CLIENTS" in r.text


def test_a_launch_without_its_parameters_gets_a_400_page(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    _is_page(client.get("/smart/launch", params={"iss": ehr.iss}), 400, "incomplete")
    _is_page(client.get("/smart/callback"), 400, "incomplete")


def test_an_ehr_that_is_down_gets_a_502_page(web_rt, client) -> None:  # type: ignore[no-untyped-def]
    _is_page(client.get("/smart/launch", params={"iss": DOWN_ISS, "launch": "x"}), 502, "cannot be reached")


def test_a_state_imn_monitor_did_not_issue_is_refused(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    back = start(client, ehr, "P-ALB")
    forged = re.sub(r"state=[^&]+", "state=forged-state", back.headers["location"])
    _is_page(client.get(forged.removeprefix(APP)), 400, "did not start this sign-in")
    assert ehr.token_requests == [] and _sessions(web_rt) == []


def test_a_replayed_callback_is_refused(seeded, client, ehr) -> None:  # type: ignore[no-untyped-def]
    back = start(client, ehr, "P-ALB")
    _is_page(finish(client, back), 200, "Signed in from the EHR")
    _is_page(finish(client, back), 400, "already used")
    assert len(_sessions(seeded)) == 1 and len(ehr.token_requests) == 1


def test_an_expired_launch_is_refused(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    back = start(client, ehr, "P-ALB")
    t = SmartLaunchRow.__table__  # type: ignore[attr-defined]
    ttl = timedelta(seconds=web_rt.settings.smart_launch_ttl_s + 1)
    with session(web_rt.engine) as s:  # move the launch's expiry into the past (instead of waiting)
        expires = s.execute(sa.select(t.c.expires_at)).scalar_one()
        s.execute(sa.update(t).values(expires_at=expires - ttl))
    _is_page(finish(client, back), 400, "not completed within 10 minutes")
    assert _sessions(web_rt) == []


def test_a_callback_in_another_browser_opens_nothing(web_rt, app, client, ehr) -> None:  # type: ignore[no-untyped-def]
    back = start(client, ehr, "P-ALB")
    with TestClient(app) as other:  # no launch cookie: someone else's browser
        _is_page(finish(other, back), 400, "another browser")
    assert _sessions(web_rt) == [] and ehr.token_requests == []


def test_the_authorization_server_checks_pkce(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    back = start(client, ehr, "P-ALB")
    t = SmartLaunchRow.__table__  # type: ignore[attr-defined]
    with session(web_rt.engine) as s:  # the verifier no longer matches the challenge sent to the EHR
        s.execute(sa.update(t).values(code_verifier="x" * 64))
    r = finish(client, back)
    _is_page(r, 400, "refused the sign-in")
    assert "invalid_grant" in r.text
    assert ehr.token_requests[-1]["code_verifier"] == "x" * 64 and _sessions(web_rt) == []


def test_denied_authorization_gets_a_403_page_and_burns_the_state(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    ehr.deny = True
    back = start(client, ehr, "P-ALB")
    r = finish(client, back)
    _is_page(r, 403, "did not authorize")
    assert "access_denied" in r.text and _sessions(web_rt) == []
    with session(web_rt.engine, write=False) as s:
        assert s.execute(sa.select(SmartLaunchRow.used_at)).scalar_one() is not None


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_token_endpoint_gets_a_502_page(web_rt, client, ehr, status) -> None:  # type: ignore[no-untyped-def]
    ehr.token_status = status
    _is_page(launch(client, ehr, "P-ALB"), 502, f"answered HTTP {status}")
    assert _sessions(web_rt) == []


def test_an_unreachable_token_endpoint_gets_a_502_page(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    ehr.token_endpoint = f"http://127.0.0.1:{_closed_port()}/token"
    _is_page(launch(client, ehr, "P-ALB"), 502, "cannot be reached")
    assert _sessions(web_rt) == []


def test_an_unknown_patient_gets_a_404_page(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    r = launch(client, ehr, "NOT-FOLLOWED")
    _is_page(r, 404, "not followed by imn-monitor")
    assert "NOT-FOLLOWED" in r.text and _sessions(web_rt) == []


def test_a_launch_without_an_identified_user_is_refused(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    ehr.issue_id_token = False
    _is_page(launch(client, ehr, "P-ALB"), 403, "did not say who you are")
    assert _sessions(web_rt) == []


def test_a_forged_id_token_is_refused(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import rsa

    ehr.id_token_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not in the JWKS
    _is_page(launch(client, ehr, "P-ALB"), 502, "identity token is not valid")
    assert _sessions(web_rt) == []


# ------------------------------------------------------------------------------ MRN patient mapping


def test_with_an_mrn_system_the_patient_is_found_by_the_mrn_in_the_ehrs_patient(seeded, client, ehr) -> None:  # type: ignore[no-untyped-def]
    seeded.settings.ehr_mrn_system = smart_fake_ehr.MRN_SYSTEM
    ehr.patients["ehr-7"] = {"resourceType": "Patient", "id": "ehr-7", "identifier": [
        {"system": "urn:other", "value": "P-ALB"}, {"system": smart_fake_ehr.MRN_SYSTEM, "value": "P-CSA"}]}
    r = launch(client, ehr, "ehr-7")  # the EHR's id means nothing here: its MRN is P-CSA
    _is_page(r, 200, "Signed in from the EHR")
    assert 'url=/ui/patients/P-CSA"' in r.text
    assert [s["patient_id"] for s in _sessions(seeded)] == ["P-CSA"]
    assert client.get("/ui/patients/P-CSA").status_code == 200


def test_with_an_mrn_system_a_patient_record_the_ehr_withholds_gets_a_502_page(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    web_rt.settings.ehr_mrn_system = smart_fake_ehr.MRN_SYSTEM  # and the EHR serves no Patient ehr-8
    _is_page(launch(client, ehr, "ehr-8"), 502, "did not give the patient")
    assert _sessions(web_rt) == []


def test_the_redirect_uri_uses_the_public_url_when_set(web_rt, client, ehr) -> None:  # type: ignore[no-untyped-def]
    web_rt.settings.public_url = "https://imn.hospital.example"  # behind a proxy: not the request's host
    r = client.get(ehr.launch_url("P-ALB").removeprefix(APP), follow_redirects=False)
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["redirect_uri"] == ["https://imn.hospital.example/smart/callback"]
    with session(web_rt.engine, write=False) as s:  # and the token exchange will send the same one
        assert s.execute(sa.select(SmartLaunchRow.redirect_uri)).scalar_one() == q["redirect_uri"][0]
