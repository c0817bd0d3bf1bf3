from __future__ import annotations

import base64

import pytest
from django.test import Client

from channels_app.models import Channel
from conversations.models import Attachment, Conversation, Direction, TimelineEntry
from customers.models import Customer, Identity
from tests.channels.api.conftest import SECRET, make_api_inbox, message, post_signed, sign
from tests.factories import CustomerFactory, IdentityFactory


def test_it_stores_a_signed_message_and_answers_with_its_ids(client, tenant, api_inbox):
    response = post_signed(client, api_inbox, message(customer={"name": "Ada"}))

    assert response.status_code == 201
    entry = TimelineEntry.objects.for_tenant(tenant).get(external_id="m-1")
    assert response.json() == {
        "message_id": entry.pk, "conversation": entry.conversation.number, "customer_id": entry.customer_id,
    }
    assert (entry.channel, entry.direction, entry.body, entry.inbox) == (Channel.API, Direction.INBOUND, "Hello from the bot", api_inbox)
    assert entry.customer.name == "Ada"
    assert list(entry.customer.identities.values_list("kind", "value")) == [("external", "u-42")]


def test_it_is_csrf_exempt(tenant, api_inbox):
    response = post_signed(Client(enforce_csrf_checks=True), api_inbox, message())

    assert response.status_code == 201


def test_it_rejects_a_bad_signature_and_stores_nothing(client, tenant, api_inbox):
    response = post_signed(client, api_inbox, message(), secret="not-the-secret")

    assert response.status_code == 403
    assert "Bad X-Omnidesk-Signature" in response.json()["detail"]
    assert not TimelineEntry.objects.for_tenant(tenant).exists()
    assert not Customer.objects.for_tenant(tenant).exists()


def test_it_rejects_a_signature_of_other_bytes_than_the_body(client, tenant, api_inbox):
    signature = sign(SECRET, b'{"external_id": "m-1"}')

    response = post_signed(client, api_inbox, message(), HTTP_X_OMNIDESK_SIGNATURE=signature)

    assert response.status_code == 403
    assert not TimelineEntry.objects.for_tenant(tenant).exists()


def test_it_rejects_a_missing_signature(client, tenant, api_inbox):
    response = client.post(f"/hooks/api/{api_inbox.key}/messages/", data=message(), content_type="application/json")

    assert response.status_code == 403
    assert response.json() == {"detail": "Missing X-Omnidesk-Signature header."}
    assert not TimelineEntry.objects.for_tenant(tenant).exists()


def test_it_rejects_everything_while_the_inbox_has_no_secret(client, tenant):
    inbox = make_api_inbox(tenant, secret="")

    response = post_signed(client, inbox, message(), secret="")

    assert response.status_code == 403
    assert "no signing secret" in response.json()["detail"]


def test_a_signature_made_with_another_tenants_secret_is_rejected(client, tenant, other_tenant):
    ours = make_api_inbox(tenant, secret="acme-secret")
    theirs = make_api_inbox(other_tenant, secret="globex-secret")

    response = post_signed(client, theirs, message(), secret="acme-secret")

    assert response.status_code == 403
    assert not TimelineEntry.objects.filter(inbox__in=[ours, theirs]).exists()


def test_an_unknown_key_is_a_404(client, tenant, api_inbox):
    response = client.post(
        "/hooks/api/not-a-key/messages/", data=message(), content_type="application/json",
        HTTP_X_OMNIDESK_SIGNATURE=sign(SECRET, b"{}"),
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown inbox."}


def test_the_key_of_an_inbox_of_another_channel_is_a_404(client, tenant, sms_inbox):
    response = post_signed(client, sms_inbox, message())

    assert response.status_code == 404


def test_only_post_is_accepted(client, api_inbox):
    response = client.get(f"/hooks/api/{api_inbox.key}/messages/")

    assert response.status_code == 405
    assert response.json() == {"detail": "Use POST."}


def test_a_redelivery_answers_200_with_the_same_ids_and_stores_nothing_new(client, tenant, api_inbox, media_root):
    payload = message(attachments=[{"filename": "a.txt", "content_base64": base64.b64encode(b"hi").decode()}])
    first = post_signed(client, api_inbox, payload)

    again = post_signed(client, api_inbox, payload)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert TimelineEntry.objects.for_tenant(tenant).filter(external_id="m-1").count() == 1
    assert Attachment.objects.for_tenant(tenant).count() == 1


def test_a_second_message_joins_the_customers_open_conversation(client, tenant, api_inbox):
    first = post_signed(client, api_inbox, message("m-1"))

    second = post_signed(client, api_inbox, message("m-2", text="Still there?"))

    assert second.status_code == 201
    assert second.json()["conversation"] == first.json()["conversation"]
    assert Conversation.objects.for_tenant(tenant).count() == 1


def test_the_same_external_id_in_another_inbox_is_another_message(client, tenant, api_inbox):
    other = make_api_inbox(tenant, name="Mobile app")
    post_signed(client, api_inbox, message("m-1"))

    response = post_signed(client, other, message("m-1"))

    assert response.status_code == 201
    assert TimelineEntry.objects.for_tenant(tenant).filter(external_id="m-1").count() == 2


def test_it_stores_base64_attachments_and_records_url_attachments_as_links(client, tenant, api_inbox, media_root):
    payload = message(text="", attachments=[
        {"filename": "../receipt.pdf", "content_type": "application/pdf", "content_base64": base64.b64encode(b"%PDF-1.4").decode()},
        {"url": "https://cdn.example.com/photo.jpg", "filename": "photo.jpg", "content_type": "image/jpeg"},
    ])

    response = post_signed(client, api_inbox, payload)

    assert response.status_code == 201
    entry = TimelineEntry.objects.for_tenant(tenant).get(pk=response.json()["message_id"])
    attachment = entry.attachments.get()
    assert (attachment.filename, attachment.content_type, attachment.size) == ("receipt.pdf", "application/pdf", 8)
    assert attachment.file.read() == b"%PDF-1.4"
    assert entry.data["attachment_links"] == [
        {"url": "https://cdn.example.com/photo.jpg", "filename": "photo.jpg", "content_type": "image/jpeg"}
    ]


def test_it_links_an_email_and_a_phone_nobody_has_to_the_customer(client, tenant, api_inbox):
    response = post_signed(client, api_inbox, message(customer={"email": " Ada@Example.ORG ", "phone": "(202) 555-0143"}))

    customer = Customer.objects.for_tenant(tenant).get(pk=response.json()["customer_id"])
    assert sorted(customer.identities.values_list("kind", "value")) == [
        ("email", "ada@example.org"), ("external", "u-42"), ("phone", "+12025550143"),
    ]
    assert "possible_duplicates" not in TimelineEntry.objects.get(pk=response.json()["message_id"]).data


def test_an_address_of_another_customer_is_recorded_as_a_possible_duplicate_not_merged(client, tenant, api_inbox):
    someone = IdentityFactory(customer=CustomerFactory(tenant=tenant), kind="email", value="ada@example.org").customer

    response = post_signed(client, api_inbox, message(customer={"email": "ada@example.org", "phone": "+12025550143"}))

    assert response.status_code == 201
    entry = TimelineEntry.objects.for_tenant(tenant).get(pk=response.json()["message_id"])
    assert entry.customer_id != someone.pk
    assert entry.data["possible_duplicates"] == [{"kind": "email", "value": "ada@example.org", "customer_id": someone.pk}]
    assert Identity.objects.for_tenant(tenant).get(kind="email").customer_id == someone.pk
    assert Identity.objects.for_tenant(tenant).get(kind="phone").customer_id == entry.customer_id


def test_an_address_already_on_the_customer_is_no_duplicate(client, tenant, api_inbox):
    post_signed(client, api_inbox, message("m-1", customer={"email": "ada@example.org"}))

    response = post_signed(client, api_inbox, message("m-2", customer={"email": "ada@example.org"}))

    assert "possible_duplicates" not in TimelineEntry.objects.get(pk=response.json()["message_id"]).data
    assert Identity.objects.for_tenant(tenant).filter(kind="email").count() == 1


def test_addresses_in_another_tenant_are_not_touched(client, tenant, other_tenant, api_inbox):
    theirs = IdentityFactory(customer=CustomerFactory(tenant=other_tenant), kind="email", value="ada@example.org")

    response = post_signed(client, api_inbox, message(customer={"email": "ada@example.org"}))

    assert "possible_duplicates" not in TimelineEntry.objects.get(pk=response.json()["message_id"]).data
    assert Identity.objects.for_tenant(tenant).get(kind="email").customer_id == response.json()["customer_id"]
    assert Identity.objects.for_tenant(other_tenant).get(pk=theirs.pk).customer_id == theirs.customer_id


@pytest.mark.parametrize("name", ["", "Ada"])
def test_the_customer_name_is_optional(client, tenant, api_inbox, name):
    response = post_signed(client, api_inbox, message(customer={"name": name}))

    assert response.status_code == 201


def test_an_attachment_name_without_usable_characters_is_stored_as_attachment(client, tenant, api_inbox, media_root):
    payload = message(attachments=[{"filename": "\x03", "content_base64": base64.b64encode(b"x").decode()}])

    response = post_signed(client, api_inbox, payload)

    assert response.status_code == 201
    assert Attachment.objects.for_tenant(tenant).get().filename == "attachment"
