"""The per-process list of a tenant's active subscriptions (channels_app/webhooks/subscriptions.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app.models import WebhookSubscription
from channels_app.webhooks import subscriptions
from channels_app.webhooks.subscriptions import active_subscriptions
from tests.channels.webhooks.conftest import make_subscription


def ids(tenant) -> list[int]:
    return sorted(s.id for s in active_subscriptions(tenant.pk))


@pytest.fixture(autouse=True)
def fresh_memo():
    subscriptions._memo.clear()
    yield
    subscriptions._memo.clear()


def test_a_known_tenant_is_answered_without_a_query(tenant):
    make_subscription(tenant, "https://hooks.example/a", events=["message.created"])
    assert len(ids(tenant)) == 1

    with CaptureQueriesContext(connection) as queries:
        [subscription] = active_subscriptions(tenant.pk)

    assert len(queries) == 0
    assert subscription.wants("message.created") and not subscription.wants("conversation.created")


def test_adding_changing_and_deleting_a_subscription_is_seen_at_once(tenant):
    assert ids(tenant) == []
    first = make_subscription(tenant, "https://hooks.example/a")
    assert ids(tenant) == [first.pk]

    first.is_active = False
    first.save(update_fields=["is_active"])
    assert ids(tenant) == []

    second = make_subscription(tenant, "https://hooks.example/b", events=["csat.received"])
    assert [s.events for s in active_subscriptions(tenant.pk)] == [frozenset({"csat.received"})]
    second.delete()
    assert ids(tenant) == []


def test_a_change_made_by_another_process_is_seen_through_the_token(tenant):
    subscription = make_subscription(tenant, "https://hooks.example/a")
    assert ids(tenant) == [subscription.pk]
    # Another process disabled it: the row and the token changed, not this process's memo.
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)
    assert ids(tenant) == [subscription.pk], "an unchanged token keeps the list (that is the point of the memo)"

    cache.set(subscriptions._token_key(tenant.pk), "written-by-the-other-process", timeout=None)

    assert ids(tenant) == []


def test_a_lost_token_reads_the_database_again(tenant):
    subscription = make_subscription(tenant, "https://hooks.example/a")
    assert ids(tenant) == [subscription.pk]
    cache.delete(subscriptions._token_key(tenant.pk))  # Redis restarted empty
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)

    assert ids(tenant) == []


def test_tenants_are_kept_apart(tenant, other_tenant):
    mine = make_subscription(tenant, "https://hooks.example/a")
    theirs = make_subscription(other_tenant, "https://hooks.example/b")

    assert ids(tenant) == [mine.pk]
    assert ids(other_tenant) == [theirs.pk]


def test_without_the_cache_every_lookup_reads_the_database(tenant, monkeypatch):
    subscription = make_subscription(tenant, "https://hooks.example/a")

    def unavailable(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(subscriptions.cache, "get", unavailable)
    assert ids(tenant) == [subscription.pk]
    WebhookSubscription.objects.filter(pk=subscription.pk).update(is_active=False)
    assert ids(tenant) == []
