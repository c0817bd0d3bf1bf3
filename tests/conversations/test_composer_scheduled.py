"""Send later: a reply stored as scheduled, cancelled before it goes, or sent once at its time."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from channels_app.services import scheduled_send, scheduled_timers
from conversations.models import Conversation, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from customers.models import Identity

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def open_conversation(tenant, inbox):
    message = InboundMessage(
        channel="sms", sender_kind="phone", sender_value="+12025550143", body="Help", data={"from": "+12025550143"},
    )
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def local(dt: datetime) -> str:
    """What the browser's datetime-local sends for `dt`, in the tenant's zone (New York)."""
    return dt.astimezone(NEW_YORK).strftime("%Y-%m-%dT%H:%M")


def schedule(client, conversation, send_at: str, body: str = "Following up as promised"):
    return client.post(
        f"/app/conversations/{conversation.number}/reply/", {"channel": "sms", "body": body, "send_at": send_at},
        follow=True,
    )


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def make_due(entry) -> None:
    TimelineEntry.objects.filter(pk=entry.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def conversation(tenant, sms_inbox):
    return open_conversation(tenant, sms_inbox)


def test_a_reply_scheduled_in_the_tenants_time_zone_is_stored_and_not_yet_a_reply(client, tenant, conversation, agent):
    assert tenant.time_zone == "America/New_York"
    client.force_login(agent)
    at = (timezone.now() + timedelta(hours=3)).replace(second=0, microsecond=0)

    response = schedule(client, conversation, local(at))

    entry = TimelineEntry.objects.get(conversation=conversation, direction="outbound")
    assert (entry.delivery_status, entry.scheduled_at) == ("scheduled", at)
    assert f"Scheduled for {at.astimezone(NEW_YORK):%Y-%m-%d %H:%M} (America/New_York)." in response.content.decode()
    conversation = fresh(conversation)
    # Still waiting for an answer: response times and SLA move only when it goes out.
    assert (conversation.first_response_at, conversation.waiting_since is not None) == (None, True)


def test_a_time_in_the_past_is_a_form_error(client, tenant, conversation, agent):
    client.force_login(agent)

    response = schedule(client, conversation, local(timezone.now() - timedelta(minutes=5)))

    assert "The time to send at has passed" in response.content.decode()
    assert "(Times are in America/New_York.)" in response.content.decode()
    assert not TimelineEntry.objects.filter(direction="outbound").exists()


def test_a_time_too_far_ahead_is_a_form_error(client, tenant, conversation, agent):
    client.force_login(agent)

    response = schedule(client, conversation, local(timezone.now() + timedelta(days=31)))

    assert "Replies can be scheduled at most 30 days ahead." in response.content.decode()
    assert not TimelineEntry.objects.filter(direction="outbound").exists()


def test_a_malformed_time_is_a_form_error_not_a_server_error(client, tenant, conversation, agent):
    client.force_login(agent)

    response = schedule(client, conversation, "next tuesday-ish")

    assert response.status_code == 200
    assert "Send at: Enter a valid date/time." in response.content.decode()


def test_the_timeline_shows_it_as_scheduled_with_a_cancel_button(client, tenant, conversation, agent):
    client.force_login(agent)
    at = timezone.now() + timedelta(hours=3)
    schedule(client, conversation, local(at))
    entry = TimelineEntry.objects.get(direction="outbound")

    page = client.get(f"/app/conversations/{conversation.number}/").content.decode()

    assert "Scheduled for" in page
    assert f"/app/conversations/{conversation.number}/scheduled/{entry.pk}/cancel/" in page


def test_cancelling_before_it_goes_means_it_never_goes(client, tenant, conversation, agent):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")

    client.post(f"/app/conversations/{conversation.number}/scheduled/{entry.pk}/cancel/")
    again = client.post(f"/app/conversations/{conversation.number}/scheduled/{entry.pk}/cancel/", follow=True)
    make_due(entry)

    assert fresh(entry).delivery_status == "cancelled"
    assert "cancelled; it will not be sent" in again.content.decode()
    assert scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk) is False
    assert fresh(entry).delivery_status == "cancelled"


def test_at_its_time_it_becomes_a_queued_reply_exactly_once(client, tenant, conversation, agent):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")
    make_due(entry)

    first, second = (scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk) for _ in range(2))

    assert (first, second) == (True, False)
    sent = fresh(entry)
    assert sent.delivery_status == "queued"
    # It takes its place on the timeline when it goes out.
    assert sent.created_at > entry.created_at
    conversation = fresh(conversation)
    assert (conversation.first_response_at, conversation.waiting_since) == (sent.created_at, None)


def test_it_is_not_sent_before_its_time(client, tenant, conversation, agent):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")

    assert scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk) is False
    assert fresh(entry).delivery_status == "scheduled"


def test_too_late_to_cancel_once_it_went_out(client, tenant, conversation, agent):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")
    make_due(entry)
    scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk)

    response = client.post(f"/app/conversations/{conversation.number}/scheduled/{entry.pk}/cancel/", follow=True)

    assert "Too late to cancel: the reply is already queued." in response.content.decode()
    assert fresh(entry).delivery_status == "queued"


def test_an_opt_out_after_scheduling_fails_it_with_the_reason_on_the_timeline(client, tenant, conversation, agent):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")
    Identity.objects.filter(tenant=tenant, kind="phone").update(opted_out_at=timezone.now())
    make_due(entry)

    assert scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk) is False

    failed = fresh(entry)
    assert failed.delivery_status == "failed"
    assert failed.failure_reason.startswith("Not sent at its time: +12025550143 opted out of messages on")
    page = client.get(f"/app/conversations/{conversation.number}/").content.decode()
    assert "Not sent at its time" in page


def test_a_closed_conversation_does_not_send_its_scheduled_reply(client, tenant, conversation, agent):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")
    Conversation.objects.filter(pk=conversation.pk).update(status="closed")
    make_due(entry)

    scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk)

    assert fresh(entry).delivery_status == "failed"
    assert "was closed" in fresh(entry).failure_reason


def test_the_sweeper_finds_due_replies_and_arms_timers_for_the_next_minute(client, tenant, conversation, agent):
    client.force_login(agent)
    for minutes in (30, 60, 600):
        schedule(client, conversation, local(timezone.now() + timedelta(minutes=minutes)), body=f"in {minutes}")
    due_entry, soon_entry, later_entry = TimelineEntry.objects.filter(direction="outbound").order_by("scheduled_at")
    make_due(due_entry)
    now = timezone.now()
    TimelineEntry.objects.filter(pk=soon_entry.pk).update(scheduled_at=now + timedelta(seconds=45))

    due, soon = scheduled_timers(now=now)

    assert due == [(tenant.pk, due_entry.pk)]
    assert [(t, e) for t, e, _ in soon] == [(tenant.pk, soon_entry.pk)]


def test_another_tenant_cannot_cancel_it(client, tenant, conversation, agent, outsider):
    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=1)))
    entry = TimelineEntry.objects.get(direction="outbound")
    client.force_login(outsider)

    response = client.post(f"/app/conversations/{conversation.number}/scheduled/{entry.pk}/cancel/")

    assert response.status_code == 404
    assert fresh(entry).delivery_status == "scheduled"


def test_the_periodic_sweeper_sends_a_reply_whose_timer_was_lost(client, tenant, conversation, agent, celery_eager):
    from channels_app.tasks import sweep_outbound

    client.force_login(agent)
    schedule(client, conversation, local(timezone.now() + timedelta(hours=2)))
    entry = TimelineEntry.objects.get(direction="outbound")
    make_due(entry)

    sweep_outbound()

    assert fresh(entry).delivery_status == "queued"


def test_the_composer_offers_files_and_a_send_at_time_in_the_tenants_zone(client, tenant, conversation, agent):
    client.force_login(agent)

    page = client.get(f"/app/conversations/{conversation.number}/").content.decode()

    assert page.count('enctype="multipart/form-data"') == 2  # the reply and the note
    assert page.count('type="file" name="attachments" multiple') == 2
    assert 'type="datetime-local" name="send_at"' in page
    assert "Times are in America/New_York." in page


@pytest.mark.django_db(transaction=True)
def test_two_workers_firing_at_once_release_it_once(tenant, sms_inbox, agent):
    from channels_app.services import reply_send
    from tests.conversations.conftest import run_in_threads

    conversation = open_conversation(tenant, sms_inbox)
    entry = reply_send(tenant=tenant, conversation=conversation, author=agent, channel="sms", body="Once",
                       send_at=timezone.now() + timedelta(hours=2))
    make_due(entry)

    results = run_in_threads(lambda: scheduled_send(tenant_id=tenant.pk, entry_id=entry.pk), 4)

    assert sorted(results) == [False, False, False, True]
    # No worker runs here, so it waits in the queue: released once, handed to delivery once.
    assert fresh(entry).delivery_status == "queued"
