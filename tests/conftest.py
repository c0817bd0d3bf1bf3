from __future__ import annotations

import pytest

from channels_app.models import Channel
from customers.models import Role
from omnidesk.lib import events
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def tenant(db):
    return TenantFactory(slug="acme", name="Acme", default_region="US")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(slug="globex", name="Globex", default_region="GB")


@pytest.fixture
def agent(tenant):
    """An agent of `tenant` (the user; the membership is `agent.membership`)."""
    membership = MembershipFactory(tenant=tenant, role=Role.AGENT, user__email="agent@acme.test")
    membership.user.membership = membership
    return membership.user


@pytest.fixture
def teammate(tenant):
    membership = MembershipFactory(tenant=tenant, role=Role.AGENT, user__email="teammate@acme.test")
    membership.user.membership = membership
    return membership.user


@pytest.fixture
def supervisor(tenant):
    membership = MembershipFactory(tenant=tenant, role=Role.SUPERVISOR, user__email="supervisor@acme.test")
    membership.user.membership = membership
    return membership.user


@pytest.fixture
def tenant_admin(tenant):
    membership = MembershipFactory(tenant=tenant, role=Role.ADMIN, user__email="admin@acme.test", user__is_staff=True)
    membership.user.membership = membership
    return membership.user


@pytest.fixture
def outsider(other_tenant):
    """An admin of another tenant: sees nothing of `tenant`."""
    membership = MembershipFactory(
        tenant=other_tenant, role=Role.ADMIN, user__email="admin@globex.test", user__is_staff=True
    )
    membership.user.membership = membership
    return membership.user


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
