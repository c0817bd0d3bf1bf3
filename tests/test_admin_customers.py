from __future__ import annotations

from customers.models import AuditLog, Customer, Identity, Membership


def add_customer(client, tenant, *identities: tuple[str, str]):
    data = {
        "tenant": tenant.pk, "name": "Walk-in", "tier": "standard", "language": "", "time_zone": "", "attributes": "{}",
        "identities-TOTAL_FORMS": str(len(identities)), "identities-INITIAL_FORMS": "0",
        "identities-MIN_NUM_FORMS": "0", "identities-MAX_NUM_FORMS": "1000",
    }
    for i, (kind, value) in enumerate(identities):
        data[f"identities-{i}-kind"] = kind
        data[f"identities-{i}-value"] = value
    return client.post("/admin/customers/customer/add/", data)


def test_a_tenant_admin_adds_a_customer_with_normalized_identities(client, tenant, tenant_admin):
    client.force_login(tenant_admin)

    response = add_customer(client, tenant, ("phone", "(202) 555-0143"), ("email", " Walk.In@Example.ORG "))

    assert response.status_code == 302
    customer = Customer.objects.for_tenant(tenant).get(name="Walk-in")
    assert sorted(customer.identities.values_list("value", flat=True)) == ["+12025550143", "walk.in@example.org"]
    assert set(customer.identities.values_list("tenant_id", flat=True)) == {tenant.pk}


def test_an_address_someone_already_has_is_a_form_error_not_a_crash(client, tenant, tenant_admin):
    client.force_login(tenant_admin)
    add_customer(client, tenant, ("phone", "+12025550143"))

    response = add_customer(client, tenant, ("phone", "202 555 0143"))

    assert response.status_code == 200
    assert "already belongs to another customer" in response.content.decode()
    assert Identity.objects.for_tenant(tenant).filter(value="+12025550143").count() == 1


def test_an_impossible_address_is_a_form_error(client, tenant, tenant_admin):
    client.force_login(tenant_admin)

    response = add_customer(client, tenant, ("phone", "12"))

    assert response.status_code == 200
    assert "is not" in response.content.decode()
    assert not Customer.objects.for_tenant(tenant).filter(name="Walk-in").exists()


def test_a_tenant_admin_sees_the_timeline_of_a_conversation_in_admin(client, tenant, tenant_admin, sms_inbox):
    from conversations.services import InboundMessage, message_record_inbound

    result = message_record_inbound(
        tenant=tenant, inbox=sms_inbox,
        message=InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Where is my parcel?"),
    )
    client.force_login(tenant_admin)

    response = client.get(f"/admin/conversations/conversation/{result.conversation.pk}/change/")

    assert response.status_code == 200
    assert "Where is my parcel?" in response.content.decode()


def test_a_tenant_admin_adds_a_new_person_by_email_and_they_get_a_link_to_set_a_password(client, tenant, tenant_admin, mailoutbox):
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/membership/add/",
        {"tenant": tenant.pk, "email": "New.Hire@Acme.test", "role": "agent", "display_name": "New Hire"},
    )

    assert response.status_code == 302
    membership = Membership.objects.for_tenant(tenant).get(user__email="new.hire@acme.test")
    assert membership.role == "agent"
    assert not membership.user.has_usable_password()
    assert AuditLog.objects.for_tenant(tenant).filter(action="membership.add", target_id=str(membership.pk)).exists()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["new.hire@acme.test"]
    assert "/accounts/password/reset/" in mailoutbox[0].body


def test_a_person_with_a_seat_already_is_a_form_error(client, tenant, tenant_admin, agent):
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/membership/add/", {"tenant": tenant.pk, "email": agent.email, "role": "admin"}
    )

    assert response.status_code == 200
    assert "already has a seat" in response.content.decode()
    assert Membership.objects.for_tenant(tenant).get(user=agent).role == "agent"


def test_a_tenant_admin_cannot_add_a_seat_in_a_tenant_they_do_not_administer(client, tenant, other_tenant, tenant_admin):
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/customers/membership/add/", {"tenant": other_tenant.pk, "email": "spy@acme.test", "role": "admin"}
    )

    assert response.status_code == 200
    assert not Membership.objects.for_tenant(other_tenant).filter(user__email="spy@acme.test").exists()
