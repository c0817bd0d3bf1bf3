"""A user of one tenant can read or change nothing of another, in the workspace or in Django admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_app.models import Channel, Inbox
from conversations.models import Conversation, Status, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from customers.middleware import SESSION_KEY
from customers.models import AuditLog, Customer, Identity, Membership, Role, Tenant
from customers.services import audit_record
from tests.factories import CustomerFactory, IdentityFactory, InboxFactory, MembershipFactory, UserFactory

ACME_SUBJECT = "Acme printer is jammed"
GLOBEX_SUBJECT = "Globex invoice is wrong"
GLOBEX_SECOND_SUBJECT = "Globex parcel never came"


def write_in(tenant, inbox, sender: str, body: str):
    message = InboundMessage(channel=Channel.EMAIL, sender_kind="email", sender_value=sender, body=body)
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message)


@pytest.fixture
def globex_inbox(other_tenant):
    return InboxFactory(tenant=other_tenant, channel=Channel.EMAIL, name="Globex mail", address="help@globex.test")


@pytest.fixture
def acme_conversation(tenant, email_inbox):
    """Conversation #1 of `tenant`."""
    return write_in(tenant, email_inbox, "jane@example.com", ACME_SUBJECT).conversation


@pytest.fixture
def globex_conversations(other_tenant, globex_inbox, acme_conversation):
    """Conversations #1 and #2 of `other_tenant`; #1 exists in both tenants, #2 only in `other_tenant`."""
    first = write_in(other_tenant, globex_inbox, "jane@example.com", GLOBEX_SUBJECT).conversation
    second = write_in(other_tenant, globex_inbox, "john@example.com", GLOBEX_SECOND_SUBJECT).conversation
    return first, second


@pytest.fixture
def both_tenants_data(tenant, other_tenant, tenant_admin, outsider, agent, acme_conversation, globex_conversations):
    """Rows of every admin-visible kind in both tenants."""
    for each in (tenant, other_tenant):
        audit_record(tenant=each, actor=None, action="data.export", target_type="report", target_id="1")


# --- The workspace ---------------------------------------------------------------------------------


def test_the_same_number_shows_the_users_own_tenants_conversation(client, agent, globex_conversations):
    client.force_login(agent)

    response = client.get("/app/conversations/1/")

    assert response.status_code == 200
    assert response.context["conversation"].tenant_id == agent.membership.tenant_id
    assert ACME_SUBJECT in response.content.decode()
    assert GLOBEX_SUBJECT not in response.content.decode()


def test_a_number_that_exists_only_in_another_tenant_is_404(client, agent, globex_conversations):
    client.force_login(agent)

    response = client.get("/app/conversations/2/")

    assert response.status_code == 404


def test_another_tenants_conversation_is_404_for_its_admin_too(client, outsider, acme_conversation):
    client.force_login(outsider)

    response = client.get(f"/app/conversations/{acme_conversation.number}/")

    assert response.status_code == 404


def test_posting_a_status_to_another_tenants_number_is_404_and_changes_nothing(client, agent, globex_conversations):
    _, theirs = globex_conversations
    client.force_login(agent)

    response = client.post("/app/conversations/2/status/", {"status": Status.CLOSED})

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == Status.OPEN


def test_posting_a_status_to_a_shared_number_changes_only_the_users_tenant(
    client, agent, acme_conversation, globex_conversations
):
    theirs, _ = globex_conversations
    client.force_login(agent)

    response = client.post("/app/conversations/1/status/", {"status": Status.RESOLVED})

    assert response.status_code == 302
    acme_conversation.refresh_from_db()
    theirs.refresh_from_db()
    assert acme_conversation.status == Status.RESOLVED
    assert theirs.status == Status.OPEN


def test_posting_a_note_to_another_tenants_number_is_404_and_stores_nothing(client, agent, globex_conversations):
    client.force_login(agent)

    response = client.post("/app/conversations/2/notes/", {"body": "Peeking in"})

    assert response.status_code == 404
    assert not TimelineEntry.objects.filter(body="Peeking in").exists()


def test_posting_a_note_to_a_shared_number_lands_in_the_users_tenant(
    client, agent, acme_conversation, globex_conversations
):
    client.force_login(agent)

    client.post("/app/conversations/1/notes/", {"body": "Called the customer"})

    note = TimelineEntry.objects.get(body="Called the customer")
    assert (note.tenant_id, note.conversation) == (agent.membership.tenant_id, acme_conversation)


def test_another_tenants_customer_is_404(client, agent, globex_conversations):
    theirs, _ = globex_conversations
    client.force_login(agent)

    response = client.get(f"/app/customers/{theirs.customer_id}/")

    assert response.status_code == 404


def test_the_users_own_customer_is_shown(client, agent, acme_conversation):
    client.force_login(agent)

    response = client.get(f"/app/customers/{acme_conversation.customer_id}/")

    assert response.status_code == 200
    assert response.context["customer"] == acme_conversation.customer


def test_the_customer_page_lists_no_duplicates_from_another_tenant(client, agent, acme_conversation, other_tenant):
    CustomerFactory(tenant=other_tenant, name=acme_conversation.customer.name)
    client.force_login(agent)

    response = client.get(f"/app/customers/{acme_conversation.customer_id}/")

    assert list(response.context["duplicates"]) == []


def test_the_conversation_list_never_shows_another_tenants_rows(client, supervisor, globex_conversations):
    client.force_login(supervisor)

    response = client.get("/app/?view=unassigned")

    content = response.content.decode()
    assert [c.subject for c in response.context["conversations"]] == [ACME_SUBJECT]
    assert GLOBEX_SUBJECT not in content
    assert GLOBEX_SECOND_SUBJECT not in content


def test_a_tenant_id_planted_in_the_session_without_a_seat_is_ignored(client, agent, other_tenant, globex_conversations):
    client.force_login(agent)
    session = client.session
    session[SESSION_KEY] = other_tenant.pk
    session.save()

    response = client.get("/app/?view=unassigned")

    assert [c.subject for c in response.context["conversations"]] == [ACME_SUBJECT]


# --- Switching tenant ------------------------------------------------------------------------------


def test_switching_to_a_tenant_without_a_seat_is_refused(client, agent, other_tenant):
    client.force_login(agent)

    response = client.post("/switch-tenant/", {"tenant": other_tenant.slug})

    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_a_user_with_two_seats_switches_and_sees_only_the_second_tenant(
    client, tenant, other_tenant, globex_conversations
):
    user = UserFactory(email="consultant@example.com")
    MembershipFactory(tenant=tenant, user=user, role=Role.SUPERVISOR)
    MembershipFactory(tenant=other_tenant, user=user, role=Role.SUPERVISOR)
    client.force_login(user)

    response = client.post("/switch-tenant/", {"tenant": other_tenant.slug})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == other_tenant.pk
    listed = client.get("/app/?view=unassigned").context["conversations"]
    assert sorted(c.subject for c in listed) == sorted([GLOBEX_SUBJECT, GLOBEX_SECOND_SUBJECT])
    assert client.get("/app/conversations/1/").context["conversation"].subject == GLOBEX_SUBJECT


def test_a_user_with_two_seats_sees_the_first_tenant_before_switching(
    client, tenant, other_tenant, globex_conversations
):
    user = UserFactory(email="consultant@example.com")
    MembershipFactory(tenant=tenant, user=user, role=Role.SUPERVISOR)
    MembershipFactory(tenant=other_tenant, user=user, role=Role.SUPERVISOR)
    client.force_login(user)

    listed = client.get("/app/?view=unassigned").context["conversations"]

    assert [c.subject for c in listed] == [ACME_SUBJECT]


def test_switching_refuses_a_redirect_to_another_host(client, tenant, other_tenant):
    user = UserFactory(email="consultant@example.com")
    MembershipFactory(tenant=tenant, user=user)
    MembershipFactory(tenant=other_tenant, user=user)
    client.force_login(user)

    response = client.post("/switch-tenant/", {"tenant": other_tenant.slug, "next": "https://evil.example/"})

    assert response.url == reverse("workspace:home")


# --- Django admin ----------------------------------------------------------------------------------

CHANGELISTS = [
    (Customer, "customers", "customer"),
    (Conversation, "conversations", "conversation"),
    (Identity, "customers", "identity"),
    (TimelineEntry, "conversations", "timelineentry"),
    (Inbox, "channels_app", "inbox"),
    (Membership, "customers", "membership"),
    (AuditLog, "customers", "auditlog"),
]


@pytest.mark.parametrize(("model", "app", "name"), CHANGELISTS)
def test_an_admin_of_another_tenant_lists_none_of_our_rows(
    client, tenant, other_tenant, outsider, both_tenants_data, model, app, name
):
    assert model.objects.filter(tenant=tenant).exists()
    client.force_login(outsider)

    response = client.get(f"/admin/{app}/{name}/")

    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows
    assert {row.tenant_id for row in rows} == {other_tenant.pk}


@pytest.mark.parametrize(("model", "app", "name"), CHANGELISTS)
def test_a_tenant_admin_lists_their_own_rows_only(
    client, tenant, other_tenant, tenant_admin, both_tenants_data, model, app, name
):
    assert model.objects.filter(tenant=other_tenant).exists()
    client.force_login(tenant_admin)

    response = client.get(f"/admin/{app}/{name}/")

    rows = list(response.context["cl"].result_list)
    assert {row.tenant_id for row in rows} == {tenant.pk}
    assert len(rows) == model.objects.filter(tenant=tenant).count()


def test_an_admin_of_another_tenant_lists_only_their_tenant(client, tenant, other_tenant, outsider):
    client.force_login(outsider)

    response = client.get("/admin/customers/tenant/")

    assert list(response.context["cl"].result_list) == [other_tenant]


def admin_objects(tenant, acme_conversation, agent):
    """One object of `tenant` per admin page, as (object, app_label/model_name)."""
    return [
        (acme_conversation.customer, "customers/customer"),
        (acme_conversation, "conversations/conversation"),
        (acme_conversation.customer.identities.get(), "customers/identity"),
        (acme_conversation.entries.first(), "conversations/timelineentry"),
        (acme_conversation.first_inbox, "channels_app/inbox"),
        (agent.membership, "customers/membership"),
        (AuditLog.objects.filter(tenant=tenant).first(), "customers/auditlog"),
        (tenant, "customers/tenant"),
    ]


ADMIN_PAGES = [
    "customers/customer",
    "conversations/conversation",
    "customers/identity",
    "conversations/timelineentry",
    "channels_app/inbox",
    "customers/membership",
    "customers/auditlog",
    "customers/tenant",
]


@pytest.fixture
def acme_objects(tenant, agent, acme_conversation, both_tenants_data):
    return {page: obj for obj, page in admin_objects(tenant, acme_conversation, agent)}


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_an_admin_of_another_tenant_cannot_open_our_change_page(client, outsider, acme_objects, page):
    obj = acme_objects[page]
    client.force_login(outsider)

    response = client.get(f"/admin/{page}/{obj.pk}/change/")

    assert response.status_code in (302, 403, 404)
    assert str(obj) not in response.content.decode()


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_an_admin_of_another_tenant_cannot_delete_our_objects(client, outsider, acme_objects, page):
    obj = acme_objects[page]
    client.force_login(outsider)

    opened = client.get(f"/admin/{page}/{obj.pk}/delete/")
    posted = client.post(f"/admin/{page}/{obj.pk}/delete/", {"post": "yes"})

    assert opened.status_code in (302, 403, 404)
    assert posted.status_code in (302, 403, 404)
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_an_admin_of_another_tenant_cannot_bulk_delete_our_customers(client, outsider, acme_conversation, tenant):
    spare = CustomerFactory(tenant=tenant)
    client.force_login(outsider)

    client.post(
        "/admin/customers/customer/",
        {"action": "delete_selected", "_selected_action": [spare.pk], "post": "yes"},
    )

    assert Customer.objects.filter(pk=spare.pk).exists()


def test_posting_a_change_to_our_customer_from_another_tenant_changes_nothing(
    client, outsider, other_tenant, acme_conversation
):
    customer = acme_conversation.customer
    client.force_login(outsider)

    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "tenant": other_tenant.pk, "name": "Taken over", "tier": "vip", "language": "", "time_zone": "",
            "attributes": "{}",
            "identities-TOTAL_FORMS": "0", "identities-INITIAL_FORMS": "0",
            "identities-MIN_NUM_FORMS": "0", "identities-MAX_NUM_FORMS": "1000",
        },
    )

    assert response.status_code != 200
    customer.refresh_from_db()
    assert (customer.tenant_id, customer.name, customer.tier) == (acme_conversation.tenant_id, "", "standard")


def test_adding_an_identity_for_our_customer_from_another_tenant_is_refused(
    client, outsider, other_tenant, acme_conversation
):
    customer = acme_conversation.customer
    client.force_login(outsider)

    response = client.post(
        "/admin/customers/identity/add/",
        {"tenant": other_tenant.pk, "customer": customer.pk, "kind": "email", "value": "mole@example.com"},
    )

    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    assert not Identity.objects.filter(value="mole@example.com").exists()


def test_an_admin_of_both_tenants_cannot_link_an_identity_across_them(client, tenant, other_tenant):
    user = UserFactory(email="both@example.com", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
    MembershipFactory(tenant=other_tenant, user=user, role=Role.ADMIN)
    theirs = CustomerFactory(tenant=other_tenant)
    client.force_login(user)

    response = client.post(
        "/admin/customers/identity/add/",
        {"tenant": tenant.pk, "customer": theirs.pk, "kind": "email", "value": "mole@example.com"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["customer"] == [f"{theirs} belongs to another tenant."]
    assert not Identity.objects.filter(value="mole@example.com").exists()


def test_an_admin_cannot_move_our_customer_into_their_tenant_by_posting_its_id(
    client, outsider, other_tenant, acme_conversation
):
    client.force_login(outsider)

    response = client.post(
        "/admin/conversations/conversation/add/",
        {"tenant": other_tenant.pk, "customer": acme_conversation.customer_id, "status": "open",
         "priority": "normal", "first_channel": "email", "last_channel": "email",
         "entries-TOTAL_FORMS": "0", "entries-INITIAL_FORMS": "0",
         "entries-MIN_NUM_FORMS": "0", "entries-MAX_NUM_FORMS": "1000"},
    )

    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors
    assert Conversation.objects.filter(tenant=other_tenant).count() == 0


# --- Audit of admin changes ------------------------------------------------------------------------


def test_a_role_change_in_admin_writes_an_audit_row(client, tenant, tenant_admin, agent):
    membership = agent.membership
    client.force_login(tenant_admin)

    response = client.post(
        f"/admin/customers/membership/{membership.pk}/change/",
        {"tenant": tenant.pk, "user": agent.pk, "role": Role.SUPERVISOR, "display_name": ""},
    )

    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.SUPERVISOR
    row = AuditLog.objects.get(action="membership.role_change")
    assert (row.tenant, row.actor, row.target_id) == (tenant, tenant_admin, str(membership.pk))
    assert row.details == {"user_id": agent.pk, "from": Role.AGENT, "to": Role.SUPERVISOR}


def test_saving_a_membership_without_a_role_change_writes_no_audit_row(client, tenant, tenant_admin, agent):
    client.force_login(tenant_admin)

    client.post(
        f"/admin/customers/membership/{agent.membership.pk}/change/",
        {"tenant": tenant.pk, "user": agent.pk, "role": Role.AGENT, "display_name": "Ann"},
    )

    assert Membership.objects.get(pk=agent.membership.pk).display_name == "Ann"
    assert not AuditLog.objects.filter(action="membership.role_change").exists()


def test_deleting_a_customer_in_admin_writes_an_audit_row(client, tenant, tenant_admin):
    customer = IdentityFactory(customer__tenant=tenant, customer__name="Short-lived").customer
    client.force_login(tenant_admin)

    response = client.post(f"/admin/customers/customer/{customer.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()
    row = AuditLog.objects.get(action="object.delete")
    assert (row.tenant, row.actor) == (tenant, tenant_admin)
    assert (row.target_type, row.target_id, row.target_repr) == ("customers.customer", str(customer.pk), "Short-lived")


def test_bulk_deleting_customers_in_admin_writes_an_audit_row_each(client, tenant, tenant_admin):
    customers = [CustomerFactory(tenant=tenant), CustomerFactory(tenant=tenant)]
    client.force_login(tenant_admin)

    client.post(
        "/admin/customers/customer/",
        {"action": "delete_selected", "_selected_action": [c.pk for c in customers], "post": "yes"},
    )

    assert not Customer.objects.filter(tenant=tenant).exists()
    assert sorted(AuditLog.objects.filter(action="object.delete").values_list("target_id", flat=True)) == sorted(
        str(c.pk) for c in customers
    )


def test_the_audit_rows_of_another_tenant_do_not_reach_our_admin(client, tenant, other_tenant, tenant_admin):
    audit_record(tenant=other_tenant, actor=None, action="data.export", target_type="report", target_id="7")
    client.force_login(tenant_admin)

    response = client.get("/admin/customers/auditlog/")

    assert list(response.context["cl"].result_list) == []
    assert Tenant.objects.count() == 2
