from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from channels_app.models import Channel
from conversations.models import Priority
from customers.models import Tier
from routing.models import (
    BusinessCalendar,
    BusinessHoursCondition,
    CalendarInterval,
    RoutingRule,
    Skill,
    Team,
)
from routing.rules import (
    KeywordError,
    RuleInput,
    compile_keyword,
    keywords_validate,
    rules_for_tenant,
    rules_match,
)
from routing.services import conversation_route
from tests.factories import InboxFactory
from tests.routing.engine.conftest import explanations, incoming, make_agent


def winner(tenant, **data) -> str | None:
    match = rules_match(rules_for_tenant(tenant), RuleInput(**data))
    return match.rule.name if match.rule else None


def test_the_first_matching_rule_by_position_wins(tenant):
    RoutingRule.objects.create(tenant=tenant, name="catch-all", position=50)
    RoutingRule.objects.create(tenant=tenant, name="refunds", position=10, keywords="refund")

    assert winner(tenant, text="I want a refund") == "refunds"
    assert winner(tenant, text="Where is my parcel?") == "catch-all"


def test_an_inactive_rule_is_skipped(tenant):
    RoutingRule.objects.create(tenant=tenant, name="refunds", position=10, keywords="refund", is_active=False)
    RoutingRule.objects.create(tenant=tenant, name="catch-all", position=50)

    assert winner(tenant, text="I want a refund") == "catch-all"


def test_keywords_match_whole_words_and_phrases_case_insensitively(tenant):
    RoutingRule.objects.create(tenant=tenant, name="cancel", keywords="cancel my order\nrefund")

    assert winner(tenant, text="Please CANCEL   my order now") == "cancel"
    assert winner(tenant, text="REFUND!") == "cancel"
    assert winner(tenant, text="Is this refundable?") is None


def test_a_keyword_between_slashes_is_a_regular_expression(tenant):
    RoutingRule.objects.create(tenant=tenant, name="orders", keywords=r"/order\s*#?\d{5}/")

    assert winner(tenant, text="About order #12345") == "orders"
    assert winner(tenant, text="About order #12") is None


def test_a_bad_or_overlong_regular_expression_is_refused():
    assert keywords_validate("refund\n/(unclosed/") == ["/(unclosed/ is not a valid regular expression: missing ), unterminated subpattern at position 0."]
    with pytest.raises(KeywordError, match="longer than 200"):
        compile_keyword("/" + "a" * 250 + "/")


def test_channel_and_inbox_conditions(tenant, sms_inbox):
    other_inbox = InboxFactory(tenant=tenant, channel=Channel.SMS, name="Second number")
    rule = RoutingRule.objects.create(tenant=tenant, name="main number", channels=[Channel.SMS])
    rule.inboxes.add(sms_inbox)

    assert winner(tenant, channel=Channel.SMS, inbox_id=sms_inbox.pk) == "main number"
    assert winner(tenant, channel=Channel.SMS, inbox_id=other_inbox.pk) is None
    assert winner(tenant, channel=Channel.EMAIL, inbox_id=sms_inbox.pk) is None


def test_language_matches_on_the_primary_subtag(tenant):
    RoutingRule.objects.create(tenant=tenant, name="portuguese", languages=["pt"])

    assert winner(tenant, language="pt-BR") == "portuguese"
    assert winner(tenant, language="es") is None
    assert winner(tenant, language="") is None


def test_tier_and_tags_conditions(tenant):
    RoutingRule.objects.create(tenant=tenant, name="vip returns", tiers=[Tier.VIP], tags=["returns", "eu"])

    assert winner(tenant, tier=Tier.VIP, tags=("eu", "returns", "x")) == "vip returns"
    assert winner(tenant, tier=Tier.VIP, tags=("returns",)) is None
    assert winner(tenant, tier=Tier.STANDARD, tags=("eu", "returns")) is None


def test_business_hours_conditions_use_the_rule_calendar(tenant):
    calendar = BusinessCalendar.objects.create(tenant=tenant, name="Berlin office", time_zone="Europe/Berlin")
    CalendarInterval.objects.create(tenant=tenant, calendar=calendar, weekday=0, start=time(9), end=time(17))
    RoutingRule.objects.create(
        tenant=tenant, name="after hours", business_hours=BusinessHoursCondition.CLOSED, business_calendar=calendar
    )
    monday_10_berlin = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    monday_20_berlin = datetime(2025, 3, 3, 19, 0, tzinfo=UTC)

    assert winner(tenant, at=monday_10_berlin) is None
    assert winner(tenant, at=monday_20_berlin) == "after hours"


def test_every_condition_gets_a_verdict_with_its_reason(tenant):
    RoutingRule.objects.create(tenant=tenant, name="vip refunds", keywords="refund", tiers=[Tier.VIP])

    match = rules_match(rules_for_tenant(tenant), RuleInput(text="refund please", tier=Tier.STANDARD), explain_all=True)

    assert match.rule is None
    assert [(c.condition, c.ok) for c in match.verdicts[0].checks] == [("keywords", True), ("tier", False)]
    assert match.verdicts[0].reason == "tier: standard not in vip"


def test_the_matching_rule_sets_team_priority_tags_and_skills_and_the_timeline_says_why(tenant):
    billing = Team.objects.create(tenant=tenant, name="Billing")
    refunds = Skill.objects.create(tenant=tenant, name="refunds")
    make_agent(tenant, billing, "Dana", capacity={"sms": 5}, skills=(refunds,))
    rule = RoutingRule.objects.create(
        tenant=tenant, name="refund keywords", keywords="refund", set_team=billing, set_priority=Priority.HIGH,
        add_tags=["refund"],
    )
    rule.required_skills.add(refunds)
    conversation = incoming(tenant, "I need a refund for my order")

    conversation_route(tenant=tenant, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert (conversation.team, conversation.priority, conversation.tags) == (billing, Priority.HIGH, ["refund"])
    assert list(conversation.routing.required_skills.all()) == [refunds]
    assert explanations(conversation) == [
        "routed to Billing by rule 'refund keywords' (keywords: 'refund' found ('refund')); "
        "assigned to Dana: least busy, 1/5 SMS"
    ]


def test_rules_and_agents_of_another_tenant_are_never_used(tenant, other_tenant):
    foreign_team = Team.objects.create(tenant=other_tenant, name="Foreign")
    make_agent(other_tenant, foreign_team, "Outsider", capacity={"sms": 5})
    RoutingRule.objects.create(tenant=other_tenant, name="everything", set_team=foreign_team, position=1)
    conversation = incoming(tenant, "Hello")

    outcome = conversation_route(tenant=tenant, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert (outcome.status, conversation.team, conversation.assignee) == ("queued", None, None)
    assert explanations(conversation) == ["no routing rule matched; waiting in the general queue: no agents to take it"]
