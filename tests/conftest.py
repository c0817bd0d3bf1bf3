from __future__ import annotations

import pytest

from channels_app.models import Channel
from customers.models import Role
from omnidesk.lib import events
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

pytest_plugins = ["tests.fixtures.celery"]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="Acme", default_region="US")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex", name="Globex", default_region="GB")


def seated_user(tenant, role: str, email: str):
    """A user with a seat in `tenant`; the membership rides along as `user.membership`."""
    membership = MembershipFactory(tenant=tenant, role=role, user__email=email, user__is_staff=role == Role.ADMIN)
    membership.user.membership = membership
    return membership.user


@pytest.fixture
def agent(tenant):
    return seated_user(tenant, Role.AGENT, "agent@acme.test")


@pytest.fixture
def teammate(tenant):
    return seated_user(tenant, Role.AGENT, "teammate@acme.test")


@pytest.fixture
def supervisor(tenant):
    return seated_user(tenant, Role.SUPERVISOR, "supervisor@acme.test")


@pytest.fixture
def tenant_admin(tenant):
    return seated_user(tenant, Role.ADMIN, "admin@acme.test")


@pytest.fixture
def outsider(other_tenant):
    """An admin of another tenant: sees nothing of `tenant`."""
    return seated_user(other_tenant, Role.ADMIN, "admin@globex.test")


@pytest.fixture
def sms_inbox(tenant):
    return InboxFactory(tenant=tenant, channel=Channel.SMS, name="SMS", address="+15550100000")


@pytest.fixture
def email_inbox(tenant):
    return InboxFactory(tenant=tenant, channel=Channel.EMAIL, name="Support mail", address="support@acme.test")


@pytest.fixture
def captured_events():
    """Domain events dispatched during the test, in order (dispatch happens on commit)."""
    seen: list[events.DomainEvent] = []

    def record(event: events.DomainEvent) -> None:
        seen.append(event)

    events.subscribe("*")(record)
    yield seen
    events.unsubscribe(record)


@pytest.fixture(autouse=True)
def inbox_cache_forgotten():
    """Webhook views remember inboxes for a few seconds per process; a test starts and ends without any."""
    from channels_app.inbound import inbox_cache_clear

    inbox_cache_clear()
    yield
    inbox_cache_clear()
