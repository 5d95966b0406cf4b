"""`imn-monitor alerts`: the JSON (a contract) and the human lines show inhibition and grouping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.feed.conftest_web import ingest, relapse_case, web_rt  # noqa: F401

pytestmark = pytest.mark.integration


def _cli(rt, *args: str) -> str:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMN_")}
    env["IMN_DATABASE_URL"] = str(rt.settings.database_url)
    exe = Path(sys.executable).with_name("imn-monitor")
    r = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_alerts_json_and_lines_show_the_inhibiting_alert_and_the_group(web_rt) -> None:  # type: ignore[no-untyped-def]
    ingest(web_rt, relapse_case())
    rows = json.loads(_cli(web_rt, "alerts", "--json"))
    by_rule = {a["rule"]: a for a in rows}
    relapse, titer = by_rule["relapse"], by_rule["titer_rising"]
    assert titer["inhibited_by"] == {"id": relapse["id"], "fingerprint": "P-REL/relapse/2025-08-01"}
    assert relapse["inhibited_by"] is None and {a["group"] for a in rows} == {"patient:P-REL"}
    lines = _cli(web_rt, "alerts").splitlines()
    assert any("titer_rising" in line and f"(inhibited by #{relapse['id']})" in line for line in lines)
    assert not any("relapse " in line and "inhibited by" in line for line in lines)
