"""Entry for `celery -A tasks.worker worker`: configures the app from the environment (IMN_*)."""

from celery.signals import worker_process_init

from tasks import runtime
from tasks.app import app, configure

configure(runtime.get().settings)


@worker_process_init.connect
def _own_runtime_per_child(**_: object) -> None:
    # a prefork child must not share the parent's database connections
    runtime.after_fork()
    runtime.tune_gc(runtime.get().settings)


__all__ = ["app"]
