from __future__ import annotations

from conversations.services import InboundMessage, message_record_inbound
from customers.models import AuditLog, Customer
from tests.factories import CustomerFactory, IdentityFactory


def write_in(tenant, inbox, sender: str, body: str = "Hello", channel: str = "sms", kind: str = "phone"):
    return message_record_inbound(
        tenant=tenant, inbox=inbox,
        message=InboundMessage(channel=channel, sender_kind=kind, sender_value=sender, body=body),
    )


def test_an_agent_links_an_email_to_a_customer_so_their_mail_joins_the_sms_conversation(
    client, tenant, agent, sms_inbox, email_inbox
):
    sms = write_in(tenant, sms_inbox, "+12025550143", "Order 4411 is late")
    client.force_login(agent)

    response = client.post(
        f"/app/customers/{sms.entry.customer_id}/identities/", {"kind": "email", "value": " Maria@Example.org "}
    )
    mail = write_in(tenant, email_inbox, "maria@example.org", "Here is the receipt", channel="email", kind="email")

    assert response.status_code == 302
    assert mail.conversation == sms.conversation
    assert mail.entry.customer_id == sms.entry.customer_id


def test_linking_an_address_someone_else_has_says_so_and_changes_nothing(client, tenant, agent):
    jane = CustomerFactory(tenant=tenant, name="Jane")
    IdentityFactory(customer=jane, kind="email", value="jane@example.org")
    john = CustomerFactory(tenant=tenant, name="John")
    client.force_login(agent)

    response = client.post(f"/app/customers/{john.pk}/identities/", {"kind": "email", "value": "jane@example.org"}, follow=True)

    assert "already belongs to customer" in response.content.decode()
    assert not john.identities.exists()


def test_an_impossible_address_is_refused_with_a_reason(client, tenant, agent):
    john = CustomerFactory(tenant=tenant)
    client.force_login(agent)

    response = client.post(f"/app/customers/{john.pk}/identities/", {"kind": "phone", "value": "12"}, follow=True)

    assert "is not a valid phone number for region US" in response.content.decode()
    assert not john.identities.exists()


def test_an_agent_merges_a_duplicate_choosing_the_survivor(client, tenant, agent):
    keep = CustomerFactory(tenant=tenant, name="Maria Garcia")
    dupe = CustomerFactory(tenant=tenant, name="Maria Garcia")
    IdentityFactory(customer=dupe, kind="email", value="maria@example.org")
    client.force_login(agent)

    response = client.post(f"/app/customers/{dupe.pk}/merge/", {"other": keep.pk, "survivor": "other"})

    assert response.status_code == 302
    assert response["Location"] == f"/app/customers/{keep.pk}/"
    assert Customer.objects.get(pk=dupe.pk).merged_into_id == keep.pk
    assert keep.identities.get().value == "maria@example.org"
    assert AuditLog.objects.for_tenant(tenant).get(action="customer.merge").actor == agent


def test_merging_with_another_tenants_customer_is_a_404(client, tenant, other_tenant, agent):
    mine = CustomerFactory(tenant=tenant)
    theirs = CustomerFactory(tenant=other_tenant)
    client.force_login(agent)

    response = client.post(f"/app/customers/{mine.pk}/merge/", {"other": theirs.pk, "survivor": "this"})

    assert response.status_code == 404
    assert Customer.objects.get(pk=theirs.pk).merged_into_id is None


def test_the_customer_page_offers_a_merge_for_a_likely_duplicate(client, tenant, agent):
    one = CustomerFactory(tenant=tenant, name="Lee Chen")
    two = CustomerFactory(tenant=tenant, name="lee chen")
    client.force_login(agent)

    page = client.get(f"/app/customers/{one.pk}/").content.decode()

    assert f'name="other" value="{two.pk}"' in page
