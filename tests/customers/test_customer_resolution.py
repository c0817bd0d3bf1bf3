from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from customers.identities import InvalidIdentity
from customers.models import Customer, Identity, IdentityKind
from customers.services import (
    IdentityTaken,
    customer_add_identity,
    customer_lock_for_identity,
    customer_resolve_identity,
)
from tests.factories import CustomerFactory, IdentityFactory
from tests.fixtures.plans import executed_plan, scans_of


def test_it_creates_a_customer_and_identity_for_a_new_address(tenant):
    customer, created = customer_resolve_identity(
        tenant=tenant, kind=IdentityKind.PHONE, value="(202) 555-0143", name="  Jane Doe  "
    )

    assert created is True
    assert customer.tenant == tenant
    assert customer.name == "Jane Doe"
    identity = Identity.objects.get(customer=customer)
    assert (identity.tenant_id, identity.kind, identity.value) == (tenant.pk, "phone", "+12025550143")


def test_it_emits_customer_created_after_commit(tenant, captured_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        customer, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com")

    assert [(e.name, e.tenant_id, e.payload) for e in captured_events] == [
        ("customer.created", tenant.pk, {"customer_id": customer.pk})
    ]


def test_it_emits_nothing_before_commit(tenant, captured_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        customer_resolve_identity(tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com")

    assert captured_events == []
    assert len(callbacks) == 1


def test_it_finds_the_same_customer_for_another_way_of_writing_the_number(tenant):
    first, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="(202) 555-0143")

    again, created = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="+1 202-555-0143")

    assert created is False
    assert again == first
    assert Customer.objects.for_tenant(tenant).count() == 1
    assert Identity.objects.for_tenant(tenant).count() == 1


def test_it_finds_the_same_customer_for_an_email_in_another_case_and_header_form(tenant):
    first, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com")

    again, created = customer_resolve_identity(
        tenant=tenant, kind=IdentityKind.EMAIL, value="Jane Doe <JANE@Example.com>"
    )

    assert created is False
    assert again == first


def test_it_emits_no_event_when_the_customer_already_exists(
    tenant, captured_events, django_capture_on_commit_callbacks
):
    customer_resolve_identity(tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        customer_resolve_identity(tenant=tenant, kind=IdentityKind.EMAIL, value="JANE@example.com")

    assert captured_events == []


def test_it_keeps_the_existing_name_when_found_again(tenant):
    first, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com", name="Jane")

    again, _ = customer_resolve_identity(
        tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com", name="Somebody Else"
    )

    again.refresh_from_db()
    assert again.name == "Jane"


def test_the_same_address_in_another_tenant_is_another_customer(tenant, other_tenant):
    ours, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="+12025550143")

    theirs, created = customer_resolve_identity(tenant=other_tenant, kind=IdentityKind.PHONE, value="+12025550143")

    assert created is True
    assert theirs != ours
    assert theirs.tenant == other_tenant
    assert Identity.objects.filter(value="+12025550143").count() == 2


def test_the_same_number_on_whatsapp_is_the_same_customer_with_a_second_identity(tenant):
    by_phone, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="+12025550143")

    by_whatsapp, created = customer_resolve_identity(
        tenant=tenant, kind=IdentityKind.WHATSAPP, value="whatsapp:+12025550143"
    )

    assert created is False
    assert by_whatsapp == by_phone
    assert sorted(by_phone.identities.values_list("kind", flat=True)) == ["phone", "whatsapp"]


def test_a_whatsapp_number_first_then_sms_from_it_is_the_same_customer(tenant):
    by_whatsapp, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.WHATSAPP, value="whatsapp:+12025550143")

    by_phone, created = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="(202) 555-0143")

    assert (created, by_phone) == (False, by_whatsapp)


def test_another_number_on_whatsapp_is_another_customer(tenant):
    by_phone, _ = customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="+12025550143")

    by_whatsapp, created = customer_resolve_identity(tenant=tenant, kind=IdentityKind.WHATSAPP, value="whatsapp:+12025550199")

    assert created is True
    assert by_whatsapp != by_phone


def test_it_uses_the_tenants_region_for_a_national_number(other_tenant):
    customer, _ = customer_resolve_identity(tenant=other_tenant, kind=IdentityKind.PHONE, value="020 7946 0958")

    assert customer.identities.get().value == "+442079460958"


def test_an_invalid_address_raises_and_creates_nothing(tenant, captured_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidIdentity):
        customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="12345", name="Nobody")

    assert Customer.objects.count() == 0
    assert Identity.objects.count() == 0
    assert captured_events == []


def test_an_unknown_kind_raises_and_creates_nothing(tenant):
    with pytest.raises(InvalidIdentity):
        customer_resolve_identity(tenant=tenant, kind="fax", value="+12025550143")

    assert Customer.objects.count() == 0


def test_it_adds_a_normalized_identity_to_a_customer(tenant):
    customer = CustomerFactory(tenant=tenant)

    identity = customer_add_identity(tenant=tenant, customer=customer, kind=IdentityKind.EMAIL, value=" Jane@Example.com")

    assert (identity.customer, identity.tenant, identity.value) == (customer, tenant, "jane@example.com")


def test_adding_an_address_the_customer_already_has_returns_it(tenant):
    identity = IdentityFactory(customer__tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com")

    again = customer_add_identity(
        tenant=tenant, customer=identity.customer, kind=IdentityKind.EMAIL, value="JANE@example.com"
    )

    assert again == identity
    assert Identity.objects.count() == 1


def test_it_refuses_an_address_that_belongs_to_another_customer(tenant):
    owner = IdentityFactory(customer__tenant=tenant, kind=IdentityKind.PHONE, value="+12025550143").customer
    someone_else = CustomerFactory(tenant=tenant)

    with pytest.raises(IdentityTaken, match=f"already belongs to customer #{owner.pk}; merge"):
        customer_add_identity(tenant=tenant, customer=someone_else, kind=IdentityKind.PHONE, value="202-555-0143")

    assert list(someone_else.identities.all()) == []
    assert Identity.objects.get(value="+12025550143").customer == owner


def test_it_allows_an_address_that_another_tenants_customer_has(tenant, other_tenant):
    IdentityFactory(customer__tenant=other_tenant, kind=IdentityKind.PHONE, value="+12025550143")
    customer = CustomerFactory(tenant=tenant)

    identity = customer_add_identity(tenant=tenant, customer=customer, kind=IdentityKind.PHONE, value="+12025550143")

    assert identity.customer == customer


def test_adding_an_invalid_address_raises_and_stores_nothing(tenant):
    customer = CustomerFactory(tenant=tenant)

    with pytest.raises(InvalidIdentity):
        customer_add_identity(tenant=tenant, customer=customer, kind=IdentityKind.EMAIL, value="not-an-address")

    assert Identity.objects.count() == 0


def test_it_refuses_to_give_another_tenants_customer_an_identity(tenant, other_tenant):
    theirs = CustomerFactory(tenant=other_tenant)

    with pytest.raises(ValidationError, match="belongs to another tenant"):
        customer_add_identity(tenant=tenant, customer=theirs, kind=IdentityKind.EMAIL, value="mole@example.com")

    assert Identity.objects.count() == 0


def test_an_identity_added_in_admin_is_stored_normalized_and_found_again(client, tenant, tenant_admin):
    customer = CustomerFactory(tenant=tenant)
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/identity/add/",
        {"tenant": tenant.pk, "customer": customer.pk, "kind": "phone", "value": "(202) 555-0143"},
    )

    assert response.status_code == 302
    assert Identity.objects.get(customer=customer).value == "+12025550143"
    assert customer_resolve_identity(tenant=tenant, kind=IdentityKind.PHONE, value="+12025550143") == (customer, False)


def test_an_invalid_identity_typed_in_admin_is_a_form_error(client, tenant, tenant_admin):
    customer = CustomerFactory(tenant=tenant)
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/identity/add/",
        {"tenant": tenant.pk, "customer": customer.pk, "kind": "phone", "value": "12345"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["value"] == ["'12345' is not a valid phone number for region US."]
    assert Identity.objects.count() == 0


def test_an_address_typed_in_admin_in_another_format_is_still_a_duplicate(client, tenant, tenant_admin):
    IdentityFactory(customer__tenant=tenant, kind=IdentityKind.EMAIL, value="jane@example.com")
    customer = CustomerFactory(tenant=tenant)
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/identity/add/",
        {"tenant": tenant.pk, "customer": customer.pk, "kind": "email", "value": "Jane <JANE@example.com>"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Identity.objects.count() == 1


def test_the_locking_lookup_reads_the_identities_once_whatever_the_statistics(tenant):
    """Regression: as a join, the lookup let a planner with stale statistics (a new tenant, autovacuum off) scan
    the identities once per customer, which made every inbound message slower as the tenant grew."""
    customers = Customer.objects.bulk_create([Customer(tenant=tenant) for _ in range(300)])
    Identity.objects.bulk_create(
        [Identity(tenant=tenant, customer=c, kind="email", value=f"c{n}@example.com") for n, c in enumerate(customers)]
    )
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        found = customer_lock_for_identity(tenant=tenant, kind="email", normalized="c299@example.com")
    assert found == customers[299]
    lookup = next(q["sql"] for q in queries.captured_queries if "FOR NO KEY UPDATE" in q["sql"])
    scans = scans_of(executed_plan(lookup), "customers_identity")
    assert [scan["Actual Loops"] for scan in scans] == [1]
