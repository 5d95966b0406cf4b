"""Several processes storing into one database at once (the production shape: many workers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.db import session
from storage.models import EventRow

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]

WRITER = """
import sys
from datetime import datetime, timezone
from monitor.events import parse_event
from storage.db import make_engine, session
from storage import repository as repo

url, worker = sys.argv[1], int(sys.argv[2])
engine = make_engine(url)
for batch in range(15):
    # each writer's first batch is a final of every result, the later ones corrections of it
    events = [parse_event({"type": "lab", "patient_id": f"C{i % 5}", "analyte": "anti_pla2r",
                           "value": 20 + worker * 100 + batch, "unit": "RU/mL", "effective_at": "2025-01-10",
                           "source": "lis", "source_id": f"R{i}", "status": "corrected" if batch else "final"})
              for i in range(40)]
    with session(engine) as s:
        repo.store_events(s, None, events, datetime.now(timezone.utc))
engine.dispose()
"""


def test_concurrent_writers_keep_one_current_version_per_identity(engine, backend: str) -> None:  # type: ignore[no-untyped-def]
    url = engine.url.render_as_string(hide_password=False)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(w)], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for w in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    with session(engine, write=False) as s:
        total = s.execute(select(func.count()).select_from(EventRow)).scalar_one()
        current = s.execute(select(EventRow.identity, func.count()).where(EventRow.is_current.is_(True))  # type: ignore[attr-defined]
                            .group_by(EventRow.identity)).all()
        versions = s.execute(select(EventRow.identity, func.count(), func.count(func.distinct(EventRow.version)),
                                    func.max(EventRow.version)).group_by(EventRow.identity)).all()
        finals = s.execute(select(EventRow.identity, func.count()).where(EventRow.status == "final")
                           .group_by(EventRow.identity)).all()
    # every correction is a new version; of the three writers' finals of a result, the first stored
    # stands and the other two contradict it (a second final with another value: refused)
    assert total == 40 * (1 + 14 * 3)
    assert len(current) == 40 and all(n == 1 for _, n in current)
    assert all(n == distinct == top == 43 for _, n, distinct, top in versions)
    assert len(finals) == 40 and all(n == 1 for _, n in finals)
