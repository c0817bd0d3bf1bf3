from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connection

from customers.services import customer_add_identity, customer_resolve_identity

T = TypeVar("T")

JANE_PHONE = "+12025550143"
JANE_EMAIL = "jane@example.org"


@pytest.fixture
def jane(tenant):
    """A customer of `tenant` known by both a phone number and an e-mail address."""
    customer, _ = customer_resolve_identity(tenant=tenant, kind="phone", value=JANE_PHONE, name="Jane")
    customer_add_identity(tenant=tenant, customer=customer, kind="email", value=JANE_EMAIL)
    return customer


def run_in_threads(target: Callable[[], T], count: int) -> list[T]:
    """Run `target` in `count` threads started together, each on its own database connection.

    Returns the results; re-raises the first exception a thread hit, so a crash cannot pass unseen.
    """
    start = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(target())
        except BaseException as exc:  # noqa: B036 - re-raised in the calling thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    if len(results) != count:
        raise AssertionError(f"only {len(results)} of {count} threads finished")
    return results
