"""Drill: the Celery worker is SIGKILLed in the middle of a burst of inbound SMS, then restarted.

A real web server process (uvicorn) takes signed Twilio webhooks from four sender threads while a real
worker process (prefork, as `make run` starts it) stores and routes them; the worker is killed with
SIGKILL (no shutdown, the tasks it had taken are neither finished nor acknowledged) and started again.
Then the beat sweepers run once (called here with their age thresholds at zero instead of waiting a minute),
and the drill counts: every message stored once, every conversation opened once and routed once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db.models import Count

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import InboundReceipt
from channels_app.receipts import receipts_sweep
from conversations.models import Conversation, TimelineEntry
from routing.models import RoutingRule, Team
from routing.tasks import sweep_unrouted
from tests.channels.twilio.conftest import twilio_inbox
from tests.drills.conftest import Burst, sms_form, wait_until
from tests.routing.engine.conftest import make_agent

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]

MESSAGES = 60


def test_a_worker_killed_mid_burst_leaves_every_message_stored_and_routed_exactly_once(tenant, start_web, start_worker):
    inbox = twilio_inbox(tenant)
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="all", set_team=team)
    agents = [make_agent(tenant, team, name, capacity={"sms": MESSAGES}) for name in ("Dana", "Eli")]
    web = start_web()
    worker = start_worker()
    receipts = InboundReceipt.objects.for_tenant(tenant).filter(inbox=inbox)
    run = uuid.uuid4().hex[:8]
    burst = Burst(web.url, f"/hooks/twilio/{inbox.key}/messages/", [sms_form(i, run=run) for i in range(MESSAGES)])
    seen_at_kill: dict[str, int] = {}

    def kill_the_worker_mid_burst(burst: Burst) -> None:
        assert wait_until(lambda: receipts.filter(processed_at__isnull=False).count() >= MESSAGES // 10, timeout=60)
        worker.kill()
        seen_at_kill.update(sent=burst.sent, stored=receipts.filter(processed_at__isnull=False).count())
        assert wait_until(lambda: burst.sent == MESSAGES, timeout=60)
        worker.start()

    burst.run(pace=0.25, during=kill_the_worker_mid_burst)  # about 4 s of webhooks
    print("drill timings: sent/stored at kill", seen_at_kill)

    assert burst.statuses() == {200}
    assert seen_at_kill["sent"] < MESSAGES and seen_at_kill["stored"] < MESSAGES
    # What beat does every 30 s: store receipts whose task died with the worker, route what was not routed.
    receipts_sweep(older_than=timedelta(0))
    sweep_unrouted.delay(grace_seconds=0)
    conversations = Conversation.objects.for_tenant(tenant)
    assert wait_until(lambda: conversations.filter(assignee__isnull=False).count() == MESSAGES, timeout=60)
    assert wait_until(worker.idle, timeout=30)

    sids = [form["MessageSid"] for form in burst.forms]
    messages = TimelineEntry.objects.for_tenant(tenant).filter(kind="message", external_id__in=sids)
    assert (receipts.count(), receipts.filter(processed_at__isnull=True).count(), receipts.exclude(error="").count()) == (MESSAGES, 0, 0)
    assert (messages.count(), messages.values("external_id").distinct().count()) == (MESSAGES, MESSAGES)
    assert conversations.count() == MESSAGES
    routed = TimelineEntry.objects.for_tenant(tenant).filter(event="routed").values("conversation").annotate(n=Count("id"))
    assert sorted(row["n"] for row in routed) == [1] * MESSAGES
    assignments = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.ASSIGNMENT)
    assert (assignments.count(), assignments.values("conversation_id").distinct().count()) == (MESSAGES, MESSAGES)
    assert sum(conversations.filter(assignee=a.membership.user).count() for a in agents) == MESSAGES
