"""Create (idempotently) a demo tenant with people, teams, inboxes and cross-channel customer histories."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import time
from secrets import token_hex

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from channels_app.models import Channel, Inbox
from conversations.models import Priority, Status
from conversations.services import (
    InboundMessage,
    conversation_assign,
    conversation_set_status,
    message_record_inbound,
    message_record_outbound,
    note_add,
)
from customers.models import ApiToken, Identity, Membership, Role, Tenant, Tier
from customers.services import api_token_hash, audit_record, customer_add_identity
from omnidesk.lib.crypto import SecretUnreadable
from routing.models import (
    BusinessCalendar,
    CalendarInterval,
    RoutingRule,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
    Team,
)
from routing.services import agent_profile_for

PEOPLE = [
    ("admin", "Ada Admin", Role.ADMIN),
    ("supervisor", "Sam Supervisor", Role.SUPERVISOR),
    ("agent1", "Alex Agent", Role.AGENT),
    ("agent2", "Bea Agent", Role.AGENT),
]

INBOXES = [
    (Channel.SMS, "SMS line", "+15005550006"),
    (Channel.WHATSAPP, "WhatsApp", "whatsapp:+15005550006"),
    (Channel.EMAIL, "Support mailbox", "support@{slug}.example.com"),
    (Channel.VOICE, "Phone line", "+15005550007"),
    (Channel.CHAT, "Website chat", "{slug}.example.com"),
    (Channel.API, "API", ""),
]


# Which secrets each demo inbox gets, and the plain settings its adapter reads.
DEMO_SECRETS = {
    Channel.SMS: ("twilio_auth_token",),
    Channel.WHATSAPP: ("twilio_auth_token",),
    Channel.VOICE: ("twilio_auth_token",),
    Channel.EMAIL: ("webhook_secret",),
    Channel.API: ("secret",),
}
TWILIO_DEMO_SETTINGS = {"account_sid": "ACdemo{slug}", "from_number": "{address}"}
DEMO_SETTINGS = {
    Channel.SMS: TWILIO_DEMO_SETTINGS,
    Channel.WHATSAPP: TWILIO_DEMO_SETTINGS,
    Channel.VOICE: TWILIO_DEMO_SETTINGS,
    Channel.EMAIL: {"from_address": "{address}"},
}


def inbox_summary(inbox: Inbox) -> dict:
    """What a sender needs to reach this inbox: its key, address and the secret that proves who they are."""
    summary = {"channel": inbox.channel, "name": inbox.name, "key": inbox.key, "address": inbox.address}
    secrets = inbox.get_secrets()
    if "twilio_auth_token" in secrets:
        summary["twilio_auth_token"] = secrets["twilio_auth_token"]
        summary["account_sid"] = inbox.setting("account_sid")
    for name in ("webhook_secret", "secret"):
        if name in secrets:
            summary["secret"] = secrets[name]
    return summary


def demo_password(slug: str, email: str) -> str:
    """Stable per installation (derived from SECRET_KEY), so a second run prints the same logins."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo:{slug}:{email}".encode(), hashlib.sha256).digest()
    return "Demo-" + base64.urlsafe_b64encode(digest)[:14].decode()


DEMO_TOKEN_NAME = "Demo (seed_demo)"


def _demo_token_key(slug: str, email: str, token_id: int) -> str:
    # Keyed by the token's id as well, so a revoked demo token never comes back: the next run makes a new one.
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-api:{slug}:{email}:{token_id}".encode(), hashlib.sha256).digest()
    return "od_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def demo_api_token(membership: Membership) -> str:
    """The demo admin's API key: stable per installation (derived from SECRET_KEY like the passwords, which
    already let whoever holds SECRET_KEY in), and only its SHA-256 is stored, like every other token's."""
    slug, email = membership.tenant.slug, membership.user.email
    live = ApiToken.objects.for_tenant(membership.tenant).filter(
        membership=membership, name=DEMO_TOKEN_NAME, revoked_at__isnull=True
    ).order_by("-pk")
    for token in live:
        key = _demo_token_key(slug, email, token.pk)
        if token.key_hash == api_token_hash(key):
            return key
    # None, or made under another SECRET_KEY: retire those and make a fresh one.
    live.update(revoked_at=timezone.now())
    token = ApiToken.objects.create(
        tenant=membership.tenant, membership=membership, name=DEMO_TOKEN_NAME, prefix="", key_hash=f"pending-{token_hex(16)}"
    )
    key = _demo_token_key(slug, email, token.pk)
    token.prefix, token.key_hash = key[:11], api_token_hash(key)
    token.save(update_fields=["prefix", "key_hash"])
    audit_record(tenant=membership.tenant, actor=None, action="api_token.create", target=token, details={"name": token.name})
    return key


class Command(BaseCommand):
    help = "Create or refresh a demo tenant; --json prints its logins and inboxes as one JSON object."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo", help="Slug of the demo tenant (default: demo).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object and nothing else.")

    def handle(self, *args, **options):
        slug = slugify(options["tenant"])
        if not slug:
            raise CommandError("--tenant needs letters or digits.")
        with transaction.atomic():
            tenant, users = self._people(slug)
            inboxes = self._inboxes(tenant)
            teams = self._teams(tenant, users)
            self._routing(tenant, users, teams)
            api_key = demo_api_token(Membership.objects.for_tenant(tenant).select_related("tenant", "user").get(user=users["admin"][0]))
        # Histories go through the real services, each in its own transaction like a webhook would.
        self._histories(tenant, users, inboxes, teams)
        summary = {
            "tenant": tenant.slug,
            "url": settings.PUBLIC_BASE_URL,
            "users": [
                {"email": user.email, "password": demo_password(slug, user.email), "role": role, "name": user.get_full_name()}
                for user, role in users.values()
            ],
            "api_token": api_key,
            "inboxes": [inbox_summary(inbox) for inbox in inboxes.values()],
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(f"Demo tenant '{tenant.name}' ({tenant.slug}) is ready at {settings.PUBLIC_BASE_URL}/")
        for user in summary["users"]:
            self.stdout.write(f"  {user['role']:<10} {user['email']:<28} password: {user['password']}")
        self.stdout.write(f"  API token of the admin (Authorization: Token ...): {api_key}")

    def _people(self, slug: str):
        tenant, _ = Tenant.objects.get_or_create(
            slug=slug, defaults={"name": slug.replace("-", " ").title() + " Inc.", "default_region": "US", "time_zone": "America/New_York"}
        )
        User = get_user_model()
        users = {}
        for handle, full_name, role in PEOPLE:
            email = f"{handle}@{slug}.example.com"
            first, last = full_name.split(" ", 1)
            user, _ = User.objects.get_or_create(username=email, defaults={"email": email, "first_name": first, "last_name": last})
            user.email = email
            user.is_staff = role == Role.ADMIN
            user.set_password(demo_password(slug, email))
            user.save()
            membership, _ = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
            users[handle] = (user, membership.role)
        return tenant, users

    def _inboxes(self, tenant: Tenant) -> dict[str, Inbox]:
        inboxes = {}
        for channel, name, address in INBOXES:
            inbox, _ = Inbox.objects.get_or_create(
                tenant=tenant, name=name, defaults={"channel": channel, "address": address.format(slug=tenant.slug)}
            )
            # Secrets are made once and kept, so every run prints the same ones.
            wanted = DEMO_SECRETS.get(channel, ())
            try:
                stored = inbox.get_secrets()
            except SecretUnreadable:
                self.stderr.write(f"Secrets of demo inbox {inbox.name!r} were encrypted with another key; new ones made.")
                inbox.secrets_encrypted, stored = "", {}
            missing = {secret: token_hex(16) for secret in wanted if not stored.get(secret)}
            if missing:
                inbox.set_secrets(**missing)
            for setting, value in DEMO_SETTINGS.get(channel, {}).items():
                inbox.settings.setdefault(setting, value.format(address=inbox.address, slug=tenant.slug))
            inbox.save()
            inboxes[channel] = inbox
        return inboxes

    def _teams(self, tenant: Tenant, users) -> dict[str, Team]:
        teams = {}
        for name, handles in (("Support", ["agent1", "agent2"]), ("Billing", ["agent2"]), ("VIP desk", ["agent1"])):
            team, _ = Team.objects.get_or_create(tenant=tenant, name=name)
            team.members.add(*Membership.objects.for_tenant(tenant).filter(user__in=[users[h][0] for h in handles]))
            teams[name] = team
        return teams

    def _routing(self, tenant: Tenant, users, teams) -> None:
        """Office hours, a default SLA, two routing rules, and agents who take work (created once)."""
        calendar, created = BusinessCalendar.objects.get_or_create(
            tenant=tenant, name="Office hours", defaults={"time_zone": tenant.time_zone}
        )
        if created:
            CalendarInterval.objects.bulk_create([
                CalendarInterval(tenant=tenant, calendar=calendar, weekday=day, start=time(9), end=time(17))
                for day in range(5)
            ])
        policy, created = SlaPolicy.objects.get_or_create(
            tenant=tenant, name="Standard", defaults={"position": 100, "calendar": calendar}
        )
        if created:
            hour = 3600
            SlaTarget.objects.bulk_create([
                SlaTarget(tenant=tenant, policy=policy, priority=priority, metric=metric, seconds=seconds)
                for priority, factor in (("urgent", 0.25), ("high", 0.5), ("normal", 1), ("low", 2))
                for metric, seconds in (
                    (SlaMetric.FIRST_RESPONSE, int(hour * factor)), (SlaMetric.NEXT_RESPONSE, int(2 * hour * factor)),
                    (SlaMetric.RESOLUTION, int(24 * hour * factor)),
                )
            ])
        RoutingRule.objects.get_or_create(
            tenant=tenant, name="VIP customers", defaults={"position": 10, "tiers": ["vip"], "set_team": teams["VIP desk"],
                                                          "set_priority": "high"},
        )
        RoutingRule.objects.get_or_create(
            tenant=tenant, name="Billing questions",
            defaults={"position": 20, "keywords": "refund\ninvoice\n/charged? twice/", "set_team": teams["Billing"]},
        )
        RoutingRule.objects.get_or_create(
            tenant=tenant, name="Everything else", defaults={"position": 100, "set_team": teams["Support"]}
        )
        for handle in ("agent1", "agent2"):
            membership = Membership.objects.for_tenant(tenant).get(user=users[handle][0])
            agent_profile_for(tenant=tenant, membership=membership)

    def _histories(self, tenant: Tenant, users, inboxes, teams) -> None:
        if Identity.objects.for_tenant(tenant).exists():
            return
        agent1, agent2 = users["agent1"][0], users["agent2"][0]

        def inbound(channel, kind, value, body, sid, name="", subject=""):
            return message_record_inbound(
                tenant=tenant, inbox=inboxes[channel],
                message=InboundMessage(channel=channel, sender_kind=kind, sender_value=value, sender_name=name,
                                       body=body, external_id=f"demo-{sid}", subject=subject),
            )

        # Maria starts on chat, follows up by SMS, then e-mails: one conversation, two channel switches.
        maria = inbound(Channel.CHAT, "chat_visitor", "visitor-maria-01", "Hi, my order #4411 hasn't arrived.", 1, "Maria Garcia")
        customer_add_identity(tenant=tenant, customer=maria.entry.customer, kind="phone", value="+1 202 555 0143")
        customer_add_identity(tenant=tenant, customer=maria.entry.customer, kind="email", value="maria.garcia@example.org")
        conversation_assign(tenant=tenant, conversation=maria.conversation, assignee=agent1, team=teams["Support"])
        message_record_outbound(tenant=tenant, conversation=maria.conversation, author=agent1, channel=Channel.CHAT,
                                inbox=inboxes[Channel.CHAT], body="Sorry about that, Maria! Let me check with the courier.")
        inbound(Channel.SMS, "phone", "+12025550143", "Had to leave my desk — any news on the parcel?", 2)
        inbound(Channel.EMAIL, "email", "Maria Garcia <maria.garcia@example.org>", "Attaching the receipt as asked.", 3,
                subject="Order #4411")
        note_add(tenant=tenant, conversation=maria.conversation, author=agent1, body="Courier says it is stuck in the depot; re-shipping.")

        # John, a VIP, wrote on WhatsApp last week; resolved, then he calls back by SMS and it reopens.
        john = inbound(Channel.WHATSAPP, "whatsapp", "whatsapp:+14155550182", "Can I upgrade my plan today?", 4, "John Smith")
        john.entry.customer.tier = Tier.VIP
        john.entry.customer.save(update_fields=["tier"])
        conversation_assign(tenant=tenant, conversation=john.conversation, assignee=agent2, team=teams["VIP desk"])
        message_record_outbound(tenant=tenant, conversation=john.conversation, author=agent2, channel=Channel.WHATSAPP,
                                inbox=inboxes[Channel.WHATSAPP], body="Done — you're on Business now.")
        conversation_set_status(tenant=tenant, conversation=john.conversation, status=Status.RESOLVED, actor=agent2)
        customer_add_identity(tenant=tenant, customer=john.entry.customer, kind="phone", value="+14155550182")
        inbound(Channel.SMS, "phone", "+14155550182", "Thanks! One more thing: the invoice shows the old plan.", 5)

        # Two more customers waiting in the queue, on e-mail and the API channel.
        lee = inbound(Channel.EMAIL, "email", "lee.chen@example.net", "Password reset link never arrives.", 6, "Lee Chen",
                      subject="Can't log in")
        lee.conversation.priority = Priority.HIGH
        lee.conversation.save(update_fields=["priority"])
        inbound(Channel.API, "email", "ops@partner.example", "Webhook from partner system: refund request R-88.", 7,
                "Partner Ops", subject="Refund R-88")
