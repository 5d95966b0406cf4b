"""Entry for `celery -A tasks.worker worker`: configures the app from the environment (IMN_*)."""

from tasks.app import app, configure
from tasks.runtime import get

configure(get().settings)

__all__ = ["app"]
