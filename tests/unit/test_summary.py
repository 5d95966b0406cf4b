"""The patient summary (Assessment.summary, shown by the CLI, the API and the page): the immunological
state with the date of the latest titer, and every latest value with the text people are shown, while
the values themselves keep full precision."""

from __future__ import annotations

from tests.unit.rules.builders import PID, assess_on, day, lab, patient


def test_summary_shows_the_immunological_state_with_the_date_of_the_latest_titer() -> None:
    events = [lab(PID, "anti_pla2r", 168, "RU/mL", 0), lab(PID, "anti_pla2r", 1.5, "RU/mL", 200)]
    state = assess_on(events, day(210)).summary()["immunological_state"]
    assert state["state"] == "complete immunological remission" and state["date"] == day(200).isoformat()
    assert state["display"] == f"complete immunological remission (1.5 RU/mL on {day(200).isoformat()})"
    # as of an earlier date, what was knowable then
    assert assess_on(events, day(100)).summary()["immunological_state"]["state"] == "positive"
    assert assess_on([lab(PID, "serum_albumin", 30, "g/L", 0)], day(1)).summary()["immunological_state"] is None


def test_latest_values_keep_full_precision_and_show_the_labs() -> None:
    events = [patient(birth_date="1960-01-01", sex="female"),
              lab(PID, "serum_creatinine", 0.91, "mg/dL", 0), lab(PID, "upcr", 1.24644, "g/g", 0),
              lab(PID, "proteinuria_24h", 5.76103, "g/d", 1)]
    latest = assess_on(events, day(2)).summary()["latest"]
    assert latest["serum_creatinine"]["value"] == 80.4622  # stored: full precision
    assert latest["serum_creatinine"]["display"] == "80 \u00b5mol/L (0.91 mg/dL)"
    assert (latest["upcr"]["value"], latest["upcr"]["display"]) == (1.24644, "1.25 g/g")
    assert latest["proteinuria_24h"]["display"] == "5.76 g/d"
    assert latest["egfr"]["equation"] == "CKD-EPI 2021" and "." not in latest["egfr"]["display"].split()[0]
