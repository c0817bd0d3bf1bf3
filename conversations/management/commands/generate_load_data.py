"""Fill a tenant with a realistic volume for speed measurements: customers with several identities,
conversations across every channel, and their timelines (bulk inserts; minutes, not hours)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from channels_app.models import Channel, Inbox
from conversations.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    EntryKind,
    Priority,
    Status,
    TimelineEntry,
)
from customers.models import Customer, Identity, Membership, Tenant, TenantCounter

CHANNELS = [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL, Channel.CHAT, Channel.API]
WORDS = "order parcel refund invoice login password delivery late broken account plan upgrade charge card".split()


class Command(BaseCommand):
    help = "Generate N conversations with M timeline entries each (on average) in a tenant, for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="load")
        parser.add_argument("--conversations", type=int, default=100_000)
        parser.add_argument("--entries", type=int, default=10, help="average timeline entries per conversation")
        parser.add_argument("--long-conversation", type=int, default=500, help="entries of one extra-long conversation")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options):
        rng = random.Random(options["seed"])
        tenant, _ = Tenant.objects.get_or_create(slug=options["tenant"], defaults={"name": options["tenant"].title()})
        agents = list(Membership.objects.for_tenant(tenant).values_list("user_id", flat=True)) or [None]
        inboxes = {}
        for channel in CHANNELS:
            inboxes[channel], _ = Inbox.objects.get_or_create(tenant=tenant, name=f"Load {channel}", defaults={"channel": channel})
        start_number = Conversation.objects.for_tenant(tenant).count()
        total = options["conversations"]
        batch = 2000
        now = timezone.now()
        made = 0
        while made < total:
            size = min(batch, total - made)
            with transaction.atomic():
                customers = Customer.objects.bulk_create(
                    [Customer(tenant=tenant, name=f"Load customer {start_number + made + i}") for i in range(size)]
                )
                identities = []
                for customer in customers:
                    identities.append(Identity(tenant=tenant, customer=customer, kind="email", value=f"c{customer.pk}@load.example"))
                    identities.append(Identity(tenant=tenant, customer=customer, kind="phone", value=f"+1202{customer.pk:07d}"[:12]))
                Identity.objects.bulk_create(identities, ignore_conflicts=True)
                conversations = []
                for i, customer in enumerate(customers):
                    created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 90))
                    first, last = rng.choice(CHANNELS), rng.choice(CHANNELS)
                    status = rng.choices([Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED], [3, 1, 5, 1])[0]
                    conversations.append(Conversation(
                        tenant=tenant, number=start_number + made + i + 1, customer=customer, status=status,
                        priority=rng.choice(Priority.values), assignee_id=rng.choice(agents), first_channel=first,
                        last_channel=last, channels=list(dict.fromkeys((first, last))), first_inbox=inboxes[first],
                        subject=" ".join(rng.sample(WORDS, 3)),
                        created_at=created, updated_at=created + timedelta(minutes=30),
                        waiting_since=created if status == Status.OPEN and rng.random() < 0.6 else None,
                        resolved_at=created + timedelta(hours=5) if status == Status.RESOLVED else None,
                    ))
                Conversation.objects.bulk_create(conversations)
                entries = []
                for conversation in conversations:
                    count = options["entries"]
                    for n in range(max(1, int(rng.gauss(count, count / 3)))):
                        inbound = n % 2 == 0
                        channel = conversation.first_channel if n < 2 else conversation.last_channel
                        entries.append(TimelineEntry(
                            tenant=tenant, customer_id=conversation.customer_id, conversation=conversation,
                            kind=EntryKind.MESSAGE, direction=Direction.INBOUND if inbound else Direction.OUTBOUND,
                            channel=channel, inbox=inboxes[channel], body=" ".join(rng.choices(WORDS, k=12)),
                            delivery_status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.DELIVERED,
                            created_at=conversation.created_at + timedelta(minutes=n), updated_at=conversation.created_at,
                        ))
                for entry in entries:
                    if entry.direction == Direction.INBOUND:
                        entry.conversation.last_customer_message_at = entry.created_at
                Conversation.objects.bulk_update(conversations, ["last_customer_message_at"], batch_size=2000)
                TimelineEntry.objects.bulk_create(entries, batch_size=5000)
            made += size
            self.stderr.write(f"{made}/{total} conversations")
        if options["long_conversation"]:
            conversation = Conversation.objects.for_tenant(tenant).order_by("number").first()
            TimelineEntry.objects.bulk_create([
                TimelineEntry(
                    tenant=tenant, customer_id=conversation.customer_id, conversation=conversation, kind=EntryKind.MESSAGE,
                    direction=Direction.INBOUND if n % 2 == 0 else Direction.OUTBOUND, channel=rng.choice(CHANNELS),
                    body=" ".join(rng.choices(WORDS, k=20)), created_at=conversation.created_at + timedelta(seconds=n),
                    updated_at=conversation.created_at,
                ) for n in range(options["long_conversation"])
            ], batch_size=5000)
        with connection.cursor() as cursor:
            # Fresh planner statistics after a bulk load, as autovacuum would gather them soon after.
            cursor.execute("ANALYZE conversations_conversation")
            cursor.execute("ANALYZE conversations_timelineentry")
        number = Conversation.objects.for_tenant(tenant).order_by("-number").values_list("number", flat=True).first() or 0
        TenantCounter.objects.update_or_create(tenant=tenant, name="conversation", defaults={"value": number})
        self.stdout.write(f"{tenant.slug}: {Conversation.objects.for_tenant(tenant).count()} conversations, "
                          f"{TimelineEntry.objects.for_tenant(tenant).count()} timeline entries")
