"""`imn-monitor scheduler`: APScheduler 3.x cron for the nightly run, plus the sweeper.

Jobs are module-level functions with fixed ids and replace_existing=True (APScheduler 3 practice).
Several scheduler instances may run: the nightly run is claimed once per date in the database
(nightly_runs primary key), so a second instance does nothing for a date already claimed.
"""

from __future__ import annotations

import logging
import os
import socket

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tasks import jobs, service
from tasks.bootstrap import current as get

log = logging.getLogger("imn.scheduler")
NIGHTLY_JOB_ID = "imn-nightly-reassess"
SWEEP_JOB_ID = "imn-sweeper"


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def nightly_job() -> None:
    rt = get()
    as_of = rt.settings.today()
    if service.run_nightly(rt, as_of, owner_name()):
        log.info("nightly reassessment for %s started", as_of)


def sweep_job() -> None:
    jobs.sweep_once(get())


def build_scheduler() -> BlockingScheduler:
    st = get().settings
    sched = BlockingScheduler(timezone=st.zone)
    sched.add_job(nightly_job, CronTrigger(hour=st.nightly_hour, minute=st.nightly_minute, timezone=st.zone),
                  id=NIGHTLY_JOB_ID, replace_existing=True, coalesce=True, misfire_grace_time=3600,
                  max_instances=1)
    sched.add_job(sweep_job, IntervalTrigger(seconds=st.sweep_interval_s), id=SWEEP_JOB_ID,
                  replace_existing=True, coalesce=True, max_instances=1)
    return sched
