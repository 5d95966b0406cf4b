"""Entry for `celery -A tasks.worker worker`: configures the app from the environment (IMN_*)."""

from celery.signals import worker_process_init

from tasks import bootstrap, runtime
from tasks.app import app

bootstrap.current()  # settings from the environment, the engine, Celery pointed at the broker


@worker_process_init.connect
def _own_runtime_per_child(**_: object) -> None:
    # a prefork child must not share the parent's database connections
    runtime.after_fork()
    runtime.tune_gc(runtime.get().settings)


__all__ = ["app"]
