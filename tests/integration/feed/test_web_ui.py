"""The clinician web page through the ASGI app: login cookie, roles, CSRF, actions audited."""

from __future__ import annotations

import re

import pytest

from tests.integration.feed.conftest_web import app, bearer, client, keys, seeded, web_rt  # noqa: F401

pytestmark = pytest.mark.integration


def _login(client, key: str) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/ui/login", data={"key": key, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = client.get("/")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)


def _alert_id(client, keys, rule: str) -> int:  # type: ignore[no-untyped-def]
    alerts = client.get("/alerts", params={"status": "open", "rule": rule}, headers=bearer(keys.clinician)).json()
    items = alerts["items"] if isinstance(alerts, dict) else alerts
    return items[0]["id"]


def test_page_needs_a_login_and_lists_open_alerts_critical_first(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    _login(client, keys.clinician)
    page = client.get("/").text
    assert "albumin_low_thrombosis" in page and "csa_trough_low" in page
    assert page.index("badge critical") < page.index("badge warning")
    assert 'href="/ui/patients/P-ALB"' in page
    assert "dr-clinician" in page
    patient = client.get("/ui/patients/P-RTX")
    assert patient.status_code == 200 and 'src="/patients/P-RTX/chart.png?as_of=2025-09-01"' in patient.text
    chart = client.get("/patients/P-RTX/chart.png")  # the session cookie is enough for the image
    assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"
    assert client.get("/ui/patients/NOPE").status_code == 404


def test_patient_page_shows_the_immunological_state_and_values_at_the_labs_precision(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    _login(client, keys.clinician)
    page = client.get("/ui/patients/P-CSA").text
    assert "Immunological state" in page and "positive (35 RU/mL on 2025-08-20)" in page
    # UPCR 180 mg/mmol as reported, with the estimate the rules read (mg/mmol / 100, KDIGO's pairing)
    assert "upcr: 180 mg/mmol (\u2248 1.8 g/d)" in page
    assert "csa_trough: 70 ng/mL" in page
    assert not re.search(r"\d\.\d{4,}", page)  # no value shown with more digits than a lab reports
    page = client.get("/ui/patients/P-RTX").text
    assert "positive (95 RU/mL on 2025-08-20)" in page and "proteinuria_24h: 7.9 g/d" in page


def test_ingest_and_unknown_keys_cannot_log_in(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/ui/login", data={"key": keys.ingest}, follow_redirects=False).status_code == 403
    assert client.post("/ui/login", data={"key": "imn_" + "x" * 43}, follow_redirects=False).status_code == 401
    assert "imn_session" not in client.cookies


def test_acknowledge_and_resolve_are_csrf_checked_and_audited(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    csrf = _login(client, keys.clinician)
    alert = _alert_id(client, keys, "albumin_low_thrombosis")
    bad = client.post(f"/ui/alerts/{alert}/acknowledge", data={"csrf": "0" * 64, "next": "/"}, follow_redirects=False)
    assert bad.status_code == 403
    r = client.post(f"/ui/alerts/{alert}/acknowledge", data={"csrf": csrf, "next": "//evil.example/"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/?ok=")  # no open redirect
    detail = client.get(f"/alerts/{alert}", headers=bearer(keys.clinician)).json()
    assert detail["status"] == "acknowledged" and detail["acknowledged_by"] == "dr-clinician"
    assert detail["audit"][-1]["actor"] == "dr-clinician"
    r = client.post(f"/ui/alerts/{alert}/resolve", data={"csrf": csrf, "next": "/", "comment": " "},
                    follow_redirects=False)
    assert "error=" in r.headers["location"]
    r = client.post(f"/ui/alerts/{alert}/resolve", data={"csrf": csrf, "next": "/ui/patients/P-ALB",
                                                         "comment": "albumin re-measured 32 g/L"},
                    follow_redirects=False)
    assert r.headers["location"].startswith("/ui/patients/P-ALB?ok=")
    detail = client.get(f"/alerts/{alert}", headers=bearer(keys.clinician)).json()
    assert detail["status"] == "resolved" and detail["audit"][-1]["comment"] == "albumin re-measured 32 g/L"


def test_logout_clears_the_session(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    csrf = _login(client, keys.clinician)
    r = client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.clear()
    assert client.get("/", follow_redirects=False).status_code == 303


def test_alerts_are_grouped_per_patient_and_an_inhibited_one_links_to_its_inhibitor(seeded, client, keys) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.feed.conftest_web import ingest, relapse_case

    ingest(seeded, relapse_case())
    listed = client.get("/alerts", params={"patient": "P-REL"}, headers=bearer(keys.clinician)).json()["items"]
    by_rule = {a["rule"]: a for a in listed}
    assert set(by_rule) == {"relapse", "titer_rising"}
    relapse, titer = by_rule["relapse"], by_rule["titer_rising"]
    assert titer["inhibited_by"] == {"id": relapse["id"], "fingerprint": relapse["fingerprint"]}
    assert relapse["inhibited_by"] is None and {a["group"] for a in listed} == {"patient:P-REL"}
    # FHIR: the inhibited alert's Flag references the inhibiting alert's Flag (a valid R4 extension)
    from fhir.resources.R4B.flag import Flag

    flag = Flag.model_validate(client.get(f"/fhir/Flag/{titer['id']}", headers=bearer(keys.clinician)).json())
    refs = [e.valueReference.reference for e in flag.extension if e.url.endswith("inhibited-by")]
    assert refs == [f"Flag/{relapse['id']}"]
    flag = client.get(f"/fhir/Flag/{relapse['id']}", headers=bearer(keys.clinician)).json()
    assert not any(e["url"].endswith("inhibited-by") for e in flag["extension"])

    _login(client, keys.clinician)
    page = client.get("/").text
    group = page[page.index('data-group="patient:P-REL"'):]
    group = group[:group.index("</section>")]
    # the active relapse first, then the inhibited titer alert, marked and linked to the relapse
    assert group.index(f'id="alert-{relapse["id"]}"') < group.index(f'id="alert-{titer["id"]}"')
    card = group[group.index(f'id="alert-{titer["id"]}"'):]
    assert 'class="alert warning inhibited"' in group and f'data-inhibited-by="{relapse["id"]}"' in card
    assert f'href="#alert-{relapse["id"]}">relapse (critical) #{relapse["id"]}</a>' in card
    assert "no notifications while that alert is open" in card and "announces months ahead" in card
    # groups in the order of their most severe active alert: P-REL and P-ALB (critical) before P-CSA
    order = [m.group(1) for m in re.finditer(r'data-group="patient:([^"]+)"', page)]
    assert order.index("P-REL") < order.index("P-CSA") and order.index("P-ALB") < order.index("P-CSA")
    patient = client.get("/ui/patients/P-REL").text
    assert f'href="#alert-{relapse["id"]}">relapse (critical) #{relapse["id"]}</a>' in patient
