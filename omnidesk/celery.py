from __future__ import annotations

import os

from celery import Celery

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
