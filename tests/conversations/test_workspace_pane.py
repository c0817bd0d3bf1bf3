"""The conversation pane htmx loads beside the list: the same checks as the whole page, a fraction of the work."""

from __future__ import annotations

from conversations.services import InboundMessage, conversation_assign, message_record_inbound
from tests.factories import TeamFactory

PANE = {"HX-Request": "true", "HX-Target": "conversation-pane"}


def conversation_from(tenant, inbox, sender):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value=sender, body="Where is my parcel?")
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def test_htmx_gets_the_pane_alone_and_a_browser_the_whole_page(client, tenant, sms_inbox, agent):
    conversation = conversation_from(tenant, sms_inbox, "+12025550101")
    client.force_login(agent)

    pane = client.get(f"/app/conversations/{conversation.number}/", headers=PANE).content.decode()
    page = client.get(f"/app/conversations/{conversation.number}/").content.decode()

    assert 'id="conversation-pane"' in pane and "Where is my parcel?" in pane
    assert "<html" not in pane and "pane-list" not in pane
    assert 'id="conversation-pane"' in page and "pane-list" in page and "<html" in page


def test_an_agent_cannot_load_another_teams_conversation_into_the_pane(client, tenant, sms_inbox, agent, teammate):
    billing = TeamFactory(tenant=tenant, name="Billing")
    billing.members.add(teammate.membership)
    theirs = conversation_from(tenant, sms_inbox, "+12025550102")
    conversation_assign(tenant=tenant, conversation=theirs, assignee=teammate, team=billing)
    client.force_login(agent)

    response = client.get(f"/app/conversations/{theirs.number}/", headers=PANE)

    assert response.status_code == 404
    assert "Where is my parcel?" not in response.content.decode()


def test_another_tenants_admin_cannot_load_our_conversation_into_the_pane(client, tenant, sms_inbox, outsider):
    ours = conversation_from(tenant, sms_inbox, "+12025550103")
    client.force_login(outsider)

    response = client.get(f"/app/conversations/{ours.number}/", headers=PANE)

    assert response.status_code == 404


def test_an_action_from_the_pane_returns_to_the_conversation_with_the_list_as_it_was(client, tenant, sms_inbox, agent):
    conversation = conversation_from(tenant, sms_inbox, "+12025550104")
    client.force_login(agent)
    url = f"/app/conversations/{conversation.number}/"

    response = client.post(
        f"{url}notes/", {"body": "Checked the courier"}, headers={**PANE, "Referer": f"http://testserver{url}?view=unassigned&priority=high"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{url}?view=unassigned&priority=high"


def test_a_referer_from_another_site_is_not_followed(client, tenant, sms_inbox, agent):
    conversation = conversation_from(tenant, sms_inbox, "+12025550105")
    client.force_login(agent)
    url = f"/app/conversations/{conversation.number}/"

    response = client.post(f"{url}notes/", {"body": "Hi"}, headers={"Referer": f"https://evil.example{url}?view=all"})

    assert response["Location"] == url
