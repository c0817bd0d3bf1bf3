from __future__ import annotations

from analytics.models import AnalyticsSettings
from analytics.services import analytics_calendar_for, analytics_calendars_load
from conversations.models import Conversation
from routing.models import BusinessCalendar, ConversationSla, SlaPolicy, Team
from tests.routing.engine.conftest import incoming


def fresh(conversation: Conversation) -> Conversation:
    """The same row without the cached calendar."""
    return Conversation.objects.get(pk=conversation.pk)


def test_many_conversations_get_the_calendar_each_would_get_alone_in_three_queries(tenant, django_assert_num_queries):
    policy_hours = BusinessCalendar.objects.create(tenant=tenant, name="Policy hours")
    team_hours = BusinessCalendar.objects.create(tenant=tenant, name="Team hours")
    tenant_hours = BusinessCalendar.objects.create(tenant=tenant, name="Tenant hours")
    AnalyticsSettings.objects.create(tenant=tenant, default_calendar=tenant_hours)
    own_calendar = SlaPolicy.objects.create(tenant=tenant, name="Own calendar", calendar=policy_hours)
    team_calendar = SlaPolicy.objects.create(tenant=tenant, name="Team's calendar")
    night_shift = Team.objects.create(tenant=tenant, name="Night shift", calendar=team_hours)
    day_shift = Team.objects.create(tenant=tenant, name="Day shift")
    by_policy, by_team, team_without, no_team, no_sla = (incoming(tenant, f"Help {i}") for i in range(5))
    for conversation, policy, team in [
        (by_policy, own_calendar, night_shift), (by_team, team_calendar, night_shift),
        (team_without, team_calendar, day_shift), (no_team, team_calendar, None),
    ]:
        Conversation.objects.filter(pk=conversation.pk).update(team=team)
        ConversationSla.objects.update_or_create(tenant=tenant, conversation=conversation, defaults={"policy": policy})
    conversations = [fresh(c) for c in (by_policy, by_team, team_without, no_team, no_sla)]
    alone = [analytics_calendar_for(fresh(c)) for c in conversations]

    with django_assert_num_queries(3):
        analytics_calendars_load(conversations)

    assert [analytics_calendar_for(c) for c in conversations] == alone
    assert alone == [policy_hours, team_hours, tenant_hours, tenant_hours, tenant_hours]


def test_without_an_analytics_calendar_durations_count_around_the_clock(tenant):
    conversation = fresh(incoming(tenant))

    analytics_calendars_load([conversation])

    assert analytics_calendar_for(conversation) is None
