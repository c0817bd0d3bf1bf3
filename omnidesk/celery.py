from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings")

app = Celery("omnidesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _adapter_packages() -> list[str]:
    # Channel adapter packages keep their own tasks (media fetches, mailbox polling).
    import pkgutil

    from channels_app import adapters

    return [f"{adapters.__name__}.{module.name}" for module in pkgutil.iter_modules(adapters.__path__) if module.ispkg]


app.autodiscover_tasks(_adapter_packages)


@worker_process_init.connect
def _forget_parents_database_pool(**kwargs) -> None:
    """A forked worker process must not use the parent's pooled Postgres sockets (nor close them, which
    would end the parent's sessions): drop the inherited pool so the child opens its own."""
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    DatabaseWrapper._connection_pools.clear()
    for connection in connections.all(initialized_only=True):
        connection.connection = None


@task_postrun.connect
def _return_database_connections(task=None, **kwargs) -> None:
    """After each task: pooled connections go back to the pool, broken or expired ones are closed (Django's
    per-request rule; Celery's own closing is off, see CELERY_DB_REUSE_MAX). Not for eager tasks, which run
    inside their caller's transaction."""
    from django.db import connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()
