"""The point of Omnidesk, end to end through the real webhooks: one customer who writes by SMS, then
WhatsApp from the same number, then e-mail (after an agent links the address) is one customer with one
conversation, and the agent's reply goes out on whichever channel they pick."""

from __future__ import annotations

import re

from channels_app.models import Channel
from conversations.models import Conversation, DeliveryStatus, TimelineEntry
from customers.models import Customer
from tests.channels.email.conftest import mail_inbox, smtp_server  # noqa: F401  (fixtures)
from tests.channels.email.mails import mail, post_raw
from tests.channels.twilio.conftest import customer_writes, fake_twilio, twilio_inbox  # noqa: F401


def test_sms_then_whatsapp_then_email_is_one_customer_and_one_conversation(client, tenant, agent, mail_inbox):  # noqa: F811
    sms_inbox = twilio_inbox(tenant, Channel.SMS, "+15550100000")
    whatsapp_inbox = twilio_inbox(tenant, Channel.WHATSAPP, "whatsapp:+15550100001")

    sms = customer_writes(client, sms_inbox, From="+12025550143", Body="My parcel is late")
    whatsapp = customer_writes(
        client, whatsapp_inbox, From="whatsapp:+12025550143", To="whatsapp:+15550100001", Body="Any news?"
    )
    client.force_login(agent)
    client.post(f"/app/customers/{sms.customer_id}/identities/", {"kind": "email", "value": "maria@example.org"})
    response = post_raw(mail(sender="Maria <maria@example.org>", subject="Receipt", text="Receipt attached.").as_bytes(), mail_inbox)

    assert response.status_code == 202
    assert Customer.objects.for_tenant(tenant).filter(merged_into__isnull=True).count() == 1
    conversation = Conversation.objects.for_tenant(tenant).get()
    assert whatsapp.conversation_id == sms.conversation_id == conversation.pk
    timeline = list(conversation.entries.order_by("created_at", "id").values_list("kind", "channel", "event"))
    assert [c for kind, c, _ in timeline if kind == "message"] == ["sms", "whatsapp", "email"]
    switches = [e.data for e in conversation.entries.filter(event="channel_switched").order_by("created_at", "id")]
    assert switches == [{"from": "sms", "to": "whatsapp"}, {"from": "whatsapp", "to": "email"}]

    pane = client.get(
        f"/app/conversations/{conversation.number}/", headers={"HX-Request": "true", "HX-Target": "conversation-pane"}
    ).content.decode()
    # Each message carries its channel's badge (the one with the channel's name as its title).
    assert pane.count('class="chip ch-sms" title="SMS"') == 1
    assert pane.count('class="chip ch-whatsapp" title="WhatsApp"') == 1
    assert pane.count('class="chip ch-email" title="E-mail"') == 1
    text = " ".join(re.sub(r"<[^>]+>", " ", pane).split())
    assert "Channel switched from SMS to WhatsApp" in text
    assert "Channel switched from WhatsApp to E-mail" in text


def test_the_agent_replies_by_sms_from_the_workspace_and_twilio_receives_it(
    client, tenant, agent, fake_twilio, celery_eager, django_capture_on_commit_callbacks  # noqa: F811
):
    sms_inbox = twilio_inbox(tenant, Channel.SMS, "+15550100000")
    inbound = customer_writes(client, sms_inbox, From="+12025550143", Body="My parcel is late")
    client.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/app/conversations/{inbound.conversation.number}/reply/", {"channel": "sms", "body": "On its way!"}
        )

    assert response.status_code == 302
    reply = TimelineEntry.objects.for_tenant(tenant).get(direction="outbound")
    assert reply.delivery_status == DeliveryStatus.SENT
    assert [(r["form"]["To"], r["form"]["Body"]) for r in fake_twilio.accepted()] == [("+12025550143", "On its way!")]


def test_a_refused_reply_tells_the_agent_why_and_stores_nothing(client, tenant, agent, fake_twilio):  # noqa: F811
    sms_inbox = twilio_inbox(tenant, Channel.SMS, "+15550100000")
    inbound = customer_writes(client, sms_inbox, From="+12025550143", Body="STOP")
    client.force_login(agent)

    response = client.post(
        f"/app/conversations/{inbound.conversation.number}/reply/", {"channel": "sms", "body": "Hello?"}, follow=True
    )

    assert "opted out" in response.content.decode()
    assert not TimelineEntry.objects.for_tenant(tenant).filter(direction="outbound").exists()
    assert fake_twilio.creates() == []
    # The agent's text waits in the composer, to send on another channel or fix.
    assert ">Hello?</textarea>" in response.content.decode()


def test_a_refusal_in_the_pane_keeps_the_draft_and_the_address_of_the_conversation(client, tenant, agent, fake_twilio):  # noqa: F811
    sms_inbox = twilio_inbox(tenant, Channel.SMS, "+15550100000")
    inbound = customer_writes(client, sms_inbox, From="+12025550143", Body="STOP")
    client.force_login(agent)
    url = f"/app/conversations/{inbound.conversation.number}/"

    response = client.post(
        f"{url}reply/", {"channel": "sms", "body": "Your <b>refund</b> is on its way"},
        headers={"HX-Request": "true", "HX-Target": "conversation-pane", "Referer": f"http://testserver{url}?view=mine"},
    )

    page = response.content.decode()
    assert response.status_code == 200  # htmx swaps 2xx answers only
    assert response["HX-Push-Url"] == f"{url}?view=mine"
    assert "opted out" in page
    assert ">Your &lt;b&gt;refund&lt;/b&gt; is on its way</textarea>" in page
    assert 'value="sms" checked' in page
