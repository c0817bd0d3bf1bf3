from __future__ import annotations

from conversations.models import Conversation
from conversations.services import InboundMessage, message_record_inbound
from tests.factories import TeamFactory


def open_conversation(tenant, inbox):
    message = InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Help")
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def fresh(conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


def test_an_agent_takes_a_conversation_with_assign_to_me(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    client.post(f"/app/conversations/{conversation.number}/assign/", {"assignee": "me", "team": ""})

    assert fresh(conversation).assignee_id == agent.pk
    assert conversation.entries.filter(event="assigned", author=agent).exists()


def test_a_supervisor_assigns_to_a_teammate_and_a_team(client, tenant, sms_inbox, supervisor, teammate):
    conversation = open_conversation(tenant, sms_inbox)
    billing = TeamFactory(tenant=tenant, name="Billing")
    client.force_login(supervisor)

    client.post(f"/app/conversations/{conversation.number}/assign/", {"assignee": teammate.pk, "team": billing.pk})

    assert (fresh(conversation).assignee_id, fresh(conversation).team_id) == (teammate.pk, billing.pk)


def test_assigning_to_someone_or_a_team_of_another_tenant_is_refused(client, tenant, other_tenant, sms_inbox, supervisor, outsider):
    conversation = open_conversation(tenant, sms_inbox)
    foreign_team = TeamFactory(tenant=other_tenant, name="Elsewhere")
    client.force_login(supervisor)

    by_person = client.post(f"/app/conversations/{conversation.number}/assign/", {"assignee": outsider.pk}, follow=True)
    by_team = client.post(f"/app/conversations/{conversation.number}/assign/", {"team": foreign_team.pk}, follow=True)

    assert "Select a valid choice" in by_person.content.decode()
    assert "Select a valid choice" in by_team.content.decode()
    assert (fresh(conversation).assignee_id, fresh(conversation).team_id) == (None, None)


def test_an_agent_sets_priority_and_tags(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    client.post(f"/app/conversations/{conversation.number}/details/", {"priority": "urgent", "tags": "refund, VIP ,"})

    assert (fresh(conversation).priority, fresh(conversation).tags) == ("urgent", ["refund", "vip"])


def test_actions_on_another_tenants_conversation_are_404(client, tenant, sms_inbox, outsider):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(outsider)

    assign = client.post(f"/app/conversations/{conversation.number}/assign/", {"assignee": "me"})
    details = client.post(f"/app/conversations/{conversation.number}/details/", {"priority": "low"})

    assert (assign.status_code, details.status_code) == (404, 404)
    assert (fresh(conversation).assignee_id, fresh(conversation).priority) == (None, "normal")


def test_the_composer_offers_the_tenants_canned_responses_with_names_filled_in(client, tenant, other_tenant, sms_inbox, agent):
    from conversations.models import CannedResponse

    message = InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Hi", sender_name="Maria Garcia")
    conversation = message_record_inbound(tenant=tenant, inbox=sms_inbox, message=message).conversation
    agent.membership.display_name = "Dana"
    agent.membership.save()
    CannedResponse.objects.create(tenant=tenant, shortcut="thanks", title="Thanks", body="Thanks {customer_first_name}! — {agent_name}")
    CannedResponse.objects.create(tenant=other_tenant, shortcut="secret", title="Theirs", body="not yours")
    client.force_login(agent)

    canned = client.get(f"/app/conversations/{conversation.number}/").context["canned"]

    assert canned == [{"shortcut": "thanks", "title": "Thanks", "text": "Thanks Maria! — Dana"}]
