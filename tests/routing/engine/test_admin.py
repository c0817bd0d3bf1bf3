from __future__ import annotations

from channels_app.models import Channel
from customers.models import Tier
from routing.models import AgentProfile, Presence, RoutingRule, Team
from tests.factories import MembershipFactory

TESTER = "/admin/routing/routingrule/test/"


def test_the_rule_tester_shows_which_rule_would_match_and_why(client, tenant, tenant_admin, sms_inbox):
    billing = Team.objects.create(tenant=tenant, name="Billing")
    RoutingRule.objects.create(tenant=tenant, name="vip only", position=1, tiers=[Tier.VIP])
    RoutingRule.objects.create(tenant=tenant, name="switched off", position=2, is_active=False)
    RoutingRule.objects.create(tenant=tenant, name="refund keywords", position=3, keywords="refund", set_team=billing)
    RoutingRule.objects.create(tenant=tenant, name="catch-all", position=4)
    client.force_login(tenant_admin)

    response = client.post(TESTER, {
        "tenant": tenant.pk, "channel": Channel.SMS, "inbox": sms_inbox.pk, "text": "Refund my order please",
        "tier": Tier.STANDARD, "language": "en", "tags": "",
    })

    page = response.content.decode()
    assert response.status_code == 200
    assert "Rule “refund keywords” would match (first match wins)." in page
    assert "✗ tier: standard not in vip" in page
    assert "inactive" in page
    assert "✓ keywords: &#x27;refund&#x27; found (&#x27;Refund&#x27;)" in page
    assert "matches, but an earlier rule wins" in page


def test_the_rule_tester_offers_only_the_admins_own_tenants(client, tenant, other_tenant, outsider):
    RoutingRule.objects.create(tenant=tenant, name="acme secret rule")
    client.force_login(outsider)

    response = client.post(TESTER, {"tenant": tenant.pk, "text": "hello", "tier": Tier.STANDARD})

    page = response.content.decode()
    assert "Select a valid choice" in page
    assert "acme secret rule" not in page


def test_a_bad_regular_expression_is_a_form_error(client, tenant, tenant_admin):
    client.force_login(tenant_admin)

    response = client.post("/admin/routing/routingrule/add/", {
        "tenant": tenant.pk, "name": "broken", "position": 10, "is_active": "on", "keywords": "refund\n/(unclosed/",
        "business_hours": "any",
    })

    assert response.status_code == 200
    assert "is not a valid regular expression" in response.content.decode()
    assert not RoutingRule.objects.for_tenant(tenant).exists()


def profile_form(tenant, membership, capacity: str, presence: str = Presence.OFFLINE) -> dict:
    return {
        "tenant": tenant.pk, "membership": membership.pk, "capacity": capacity, "languages": "en", "presence": presence,
        "skills-TOTAL_FORMS": "0", "skills-INITIAL_FORMS": "0", "skills-MIN_NUM_FORMS": "0", "skills-MAX_NUM_FORMS": "1000",
    }


def test_capacity_must_name_known_channels_with_non_negative_whole_numbers(client, tenant, tenant_admin):
    membership = MembershipFactory(tenant=tenant)
    client.force_login(tenant_admin)

    unknown = client.post("/admin/routing/agentprofile/add/", profile_form(tenant, membership, '{"fax": 2}'))
    negative = client.post("/admin/routing/agentprofile/add/", profile_form(tenant, membership, '{"sms": -1}'))
    fractional = client.post("/admin/routing/agentprofile/add/", profile_form(tenant, membership, '{"sms": 1.5}'))

    assert "Unknown channel(s) fax" in unknown.content.decode()
    assert "Capacity for sms must be a whole number, 0 or more." in negative.content.decode()
    assert "Capacity for sms must be a whole number, 0 or more." in fractional.content.decode()
    assert not AgentProfile.objects.for_tenant(tenant).exists()


def test_an_agent_profile_saved_online_in_admin_is_timestamped(client, tenant, tenant_admin):
    membership = MembershipFactory(tenant=tenant)
    client.force_login(tenant_admin)

    response = client.post(
        "/admin/routing/agentprofile/add/", profile_form(tenant, membership, '{"sms": 5, "email": 0}', Presence.ONLINE)
    )

    assert response.status_code == 302
    profile = AgentProfile.objects.for_tenant(tenant).get()
    assert (profile.capacity, profile.presence, profile.presence_changed_at is not None) == (
        {"sms": 5, "email": 0}, Presence.ONLINE, True
    )
