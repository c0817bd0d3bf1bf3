"""Two tenants with one object of every kind the URL conf and Django admin reach, for the cross-tenant suite.

Every text the other tenant owns carries its marker, so a response that shows any of its rows is caught by a
substring check; `tenant_rows_digest` fingerprints all of a tenant's rows so a write that slipped through is
caught even when the response looks like a refusal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from django.apps import apps
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.utils import timezone

from analytics.models import AnalyticsEvent, AnalyticsSettings
from channels_app.models import Channel, DeliveryAttempt, Inbox, WebhookDelivery, WebhookSubscription
from conversations.models import (
    Attachment,
    CannedResponse,
    Conversation,
    CsatSurvey,
    DeliveryStatus,
    Direction,
    EntryKind,
    SavedFilter,
    TimelineEntry,
)
from conversations.services import InboundMessage, message_record_inbound
from customers.models import ApiToken, Customer, Membership, Role, Tenant
from customers.services import api_token_create, audit_record
from routing.models import AgentProfile, BusinessCalendar, RoutingRule, Skill, SlaPolicy, Team
from tests.factories import InboxFactory, MembershipFactory, TenantFactory

# Secrets of each tenant's inboxes (the public endpoints' credentials).
TWILIO_AUTH_TOKEN = "twilio-auth-token-of-{slug}"
API_INBOX_SECRET = "api-inbox-secret-of-{slug}-0123456789"
EMAIL_WEBHOOK_SECRET = "email-webhook-secret-of-{slug}"
CHAT_SITE = "https://shop.example"
CHAT_IDENTITY_SECRET = "chat-identity-secret-of-{slug}-0123456789"
ACCOUNT_SID = "AC" + "b" * 32


@dataclass
class TenantWorld:
    """One tenant's objects, by the role they play in URLs."""

    tenant: Tenant
    marker: str
    admin: object  # the user; a staff member with the admin role
    api_key: str
    api_token: ApiToken
    conversation: Conversation  # the newest: its number exists in this tenant only
    conversations: list[Conversation]
    customer: Customer
    email_inbox: Inbox
    sms_inbox: Inbox
    voice_inbox: Inbox
    api_inbox: Inbox
    chat_inbox: Inbox
    chat_visitor_token: str
    team: Team
    saved_filter: SavedFilter
    note: TimelineEntry
    attachment: Attachment
    scheduled_entry: TimelineEntry
    call_entry: TimelineEntry
    csat_survey: CsatSurvey

    def slug_secret(self, template: str) -> str:
        return template.format(slug=self.tenant.slug)


def _inbox(tenant: Tenant, marker: str, channel: str, address: str, settings: dict | None = None, **secrets) -> Inbox:
    inbox = InboxFactory(tenant=tenant, channel=channel, name=f"{marker} {channel} inbox", address=address,
                         settings=settings or {})
    if secrets:
        inbox.set_secrets(**secrets)
        inbox.save()
    return inbox


def _write_in(tenant: Tenant, inbox: Inbox, sender: str, marker: str, n: int) -> Conversation:
    message = InboundMessage(
        channel=Channel.EMAIL, sender_kind="email", sender_value=sender, sender_name=f"{marker} customer {n}",
        subject=f"{marker} subject {n} zebra", body=f"{marker} body {n} zebra",
    )
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def tenant_world_build(*, slug: str, marker: str, conversation_count: int, phone_prefix: str) -> TenantWorld:
    tenant = TenantFactory(slug=slug, name=f"{marker} tenant")
    slug_secret = lambda template: template.format(slug=slug)  # noqa: E731
    membership = MembershipFactory(
        tenant=tenant, role=Role.ADMIN, user__email=f"admin@{slug}.test", user__is_staff=True,
        user__first_name=f"{marker} admin", display_name=f"{marker} admin",
    )
    admin = membership.user
    admin.membership = membership
    token, api_key = api_token_create(membership=membership, name=f"{marker} token")

    email_inbox = _inbox(tenant, marker, Channel.EMAIL, f"help@{slug}.test",
                         webhook_secret=slug_secret(EMAIL_WEBHOOK_SECRET))
    twilio = {"account_sid": ACCOUNT_SID, "from_number": f"{phone_prefix}0000"}
    sms_inbox = _inbox(tenant, marker, Channel.SMS, f"{phone_prefix}0000", twilio,
                       twilio_auth_token=slug_secret(TWILIO_AUTH_TOKEN))
    voice_inbox = _inbox(tenant, marker, Channel.VOICE, f"{phone_prefix}0001",
                         {"account_sid": ACCOUNT_SID, "from_number": f"{phone_prefix}0001"},
                         twilio_auth_token=slug_secret(TWILIO_AUTH_TOKEN))
    api_inbox = _inbox(tenant, marker, Channel.API, "", {"outbound_url": ""}, secret=slug_secret(API_INBOX_SECRET))
    chat_inbox = _inbox(tenant, marker, Channel.CHAT, "", {"allowed_origins": [CHAT_SITE]},
                        identity_secret=slug_secret(CHAT_IDENTITY_SECRET))

    conversations = [
        _write_in(tenant, email_inbox, f"buyer{n}@{slug}-customers.test", marker, n)
        for n in range(1, conversation_count + 1)
    ]
    conversation = conversations[-1]
    customer = conversation.customer
    Customer.objects.filter(pk=customer.pk).update(name=f"{marker} customer")
    customer.refresh_from_db()

    team = Team.objects.create(tenant=tenant, name=f"{marker} team")
    Skill.objects.create(tenant=tenant, name=f"{marker} skill")
    calendar = BusinessCalendar.objects.create(tenant=tenant, name=f"{marker} calendar")
    SlaPolicy.objects.create(tenant=tenant, name=f"{marker} sla", calendar=calendar)
    RoutingRule.objects.create(tenant=tenant, name=f"{marker} rule")
    AgentProfile.objects.create(tenant=tenant, membership=membership, client_identity=f"{slug}-admin")
    CannedResponse.objects.create(tenant=tenant, shortcut=f"{slug}-hi", title=f"{marker} canned", body=f"{marker} hi")
    subscription = WebhookSubscription.objects.create(tenant=tenant, url=f"https://{slug}.example/hook",
                                                      description=f"{marker} subscription")
    WebhookDelivery.objects.create(tenant=tenant, subscription=subscription, event="conversation.opened",
                                   body={"marker": marker})
    AnalyticsSettings.objects.update_or_create(tenant=tenant, defaults={"default_calendar": calendar})
    AnalyticsEvent.objects.create(tenant=tenant, name="conversation.opened", conversation=conversation,
                                  data={"marker": marker})
    audit_record(tenant=tenant, actor=admin, action="data.export", target_type="report", target_id=marker)
    saved_filter = SavedFilter.objects.create(tenant=tenant, user=admin, name=f"{marker} filter", query="view=all")

    now = timezone.now()
    note = TimelineEntry.objects.create(
        tenant=tenant, customer=customer, conversation=conversation, kind=EntryKind.NOTE, author=admin,
        body=f"{marker} note",
    )
    attachment = Attachment.objects.create(
        tenant=tenant, entry=note, filename=f"{slug}-secret.txt", content_type="text/plain",
        file=ContentFile(f"{marker} file".encode(), name=f"{slug}-secret.txt"), size=len(marker) + 5,
    )
    scheduled_entry = TimelineEntry.objects.create(
        tenant=tenant, customer=customer, conversation=conversation, kind=EntryKind.MESSAGE,
        direction=Direction.OUTBOUND, channel=Channel.EMAIL, inbox=email_inbox, author=admin,
        body=f"{marker} scheduled reply", delivery_status=DeliveryStatus.SCHEDULED,
        scheduled_at=now + timedelta(days=2),
    )
    call_entry = TimelineEntry.objects.create(
        tenant=tenant, customer=customer, conversation=conversation, kind=EntryKind.CALL,
        direction=Direction.INBOUND, channel=Channel.VOICE, inbox=voice_inbox, body=f"{marker} call",
        data={"from": f"{phone_prefix}9999", "to": voice_inbox.address},
    )
    DeliveryAttempt.objects.create(tenant=tenant, entry=scheduled_entry, inbox=email_inbox, number=1,
                                   error=f"{marker} attempt")
    csat_survey = CsatSurvey.objects.create(
        tenant=tenant, conversation=conversation, customer=customer, channel=Channel.EMAIL, inbox=email_inbox,
        recipient=f"buyer@{slug}-customers.test", token=f"csat-{slug}-{'x' * 24}", sent_at=now,
    )
    chat_visitor_token = _chat_visitor(chat_inbox)
    return TenantWorld(
        tenant=tenant, marker=marker, admin=admin, api_key=api_key, api_token=token, conversation=conversation,
        conversations=conversations, customer=customer, email_inbox=email_inbox, sms_inbox=sms_inbox,
        voice_inbox=voice_inbox, api_inbox=api_inbox, chat_inbox=chat_inbox, chat_visitor_token=chat_visitor_token,
        team=team, saved_filter=saved_filter, note=note, attachment=attachment, scheduled_entry=scheduled_entry,
        call_entry=call_entry, csat_survey=csat_survey,
    )


def _chat_visitor(inbox: Inbox) -> str:
    """A visitor of the chat inbox, made the way the widget makes one; returns their bearer token."""
    response = Client().post(
        f"/chat/{inbox.key}/session", data=json.dumps({"visitor_token": None}), content_type="application/json",
        HTTP_ORIGIN=CHAT_SITE,
    )
    assert response.status_code == 200, response.content
    return response.json()["visitor_token"]


def tenant_owned_models() -> list[type]:
    return [m for m in apps.get_models() if "tenant" in {f.name for f in m._meta.concrete_fields}]


_TABLE_DIGEST = "SELECT {i}, md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t WHERE t.{column} = %(tenant)s"
_USERS_DIGEST = (
    "SELECT {i}, md5(coalesce(string_agg(concat_ws(',', u.id, u.password, u.email, u.is_active, u.is_staff, u.is_superuser),"
    " '|' ORDER BY u.id), '')) FROM {users} u WHERE u.id IN (SELECT user_id FROM {memberships} WHERE tenant_id = %(tenant)s)"
)


def tenant_rows_digest(tenant: Tenant) -> dict[str, str]:
    """A fingerprint of every row the tenant owns (and of the tenant row and its members' accounts), per table,
    hashed by Postgres in one query (the suite takes it after each of several hundred probes)."""
    quote = connection.ops.quote_name
    parts, labels = [], []
    for model in [Tenant, *tenant_owned_models()]:
        column = "id" if model is Tenant else "tenant_id"
        parts.append(_TABLE_DIGEST.format(i=len(parts), table=quote(model._meta.db_table), column=column))
        labels.append(model._meta.label)
    # Not tenant-owned, but the other tenant's members' accounts must not change either.
    users = Membership._meta.get_field("user").related_model
    parts.append(_USERS_DIGEST.format(i=len(parts), users=quote(users._meta.db_table), memberships=quote(Membership._meta.db_table)))
    labels.append(users._meta.label)
    # Table names come from the models, never from input; the tenant id is a parameter.
    query = " UNION ALL ".join(f"({part})" for part in parts)
    with connection.cursor() as cursor:
        cursor.execute(query, {"tenant": tenant.pk})
        return {labels[i]: digest for i, digest in cursor.fetchall()}


def digest_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(label for label in before.keys() | after.keys() if before.get(label) != after.get(label))

