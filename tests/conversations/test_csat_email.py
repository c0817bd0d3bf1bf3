"""CSAT by e-mail: the mail that reaches the SMTP server carries one-click links; the public pages take answers."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from analytics.models import AnalyticsEvent, EventName
from channels_app.models import Channel
from conversations.csat import csat_enabled
from conversations.models import CsatSurvey, Status, TimelineEntry
from conversations.services import conversation_set_status
from tests.channels.email import conftest as email_conftest
from tests.channels.email.mails import WEBHOOK_SECRET, mail, post_raw
from tests.factories import InboxFactory

pytestmark = pytest.mark.django_db

smtp_server = email_conftest.smtp_server

LINK = re.compile(r"https?://\S+/csat/[\w-]+/[1-5]/")


@pytest.fixture(autouse=True)
def eager_tasks(celery_eager):
    yield


def smtp_inbox_for(tenant, smtp_server, *, name="Support mail", address="support@acme.test"):
    inbox = InboxFactory(tenant=tenant, channel=Channel.EMAIL, name=name, address=address,
                         settings={"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port})
    inbox.set_secrets(webhook_secret=WEBHOOK_SECRET)
    inbox.save()
    return inbox


def emailed_conversation(inbox, *, sender="Jane Doe <jane@example.org>", message_id="<q1@example.org>"):
    response = post_raw(mail(sender=sender, to=inbox.address, message_id=message_id).as_bytes(), inbox)
    assert response.status_code == 202, response.content
    return TimelineEntry.objects.get(pk=response.entry_id).conversation


def resolve(tenant, conversation, capture):
    with capture(execute=True):
        conversation_set_status(tenant=tenant, conversation=conversation, status=Status.RESOLVED)
    return CsatSurvey.objects.for_tenant(tenant).filter(conversation=conversation).first()


def links_in(smtp_server, index=0) -> dict[int, str]:
    sent = message_from_bytes(smtp_server.received[index].content, policy=policy.default)
    return {int(url.rstrip("/").rsplit("/", 1)[1]): url for url in LINK.findall(sent.get_content())}


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def surveyed(tenant, smtp_server, django_capture_on_commit_callbacks):
    inbox = smtp_inbox_for(tenant, smtp_server)
    conversation = emailed_conversation(inbox)
    survey = resolve(tenant, conversation, django_capture_on_commit_callbacks)
    return survey


def test_the_survey_mail_carries_five_working_links(tenant, surveyed, smtp_server):
    [envelope] = smtp_server.received
    assert envelope.rcpt_tos == ["jane@example.org"]
    sent = message_from_bytes(envelope.content, policy=policy.default)
    assert sent["Subject"].endswith(f"[#{surveyed.conversation.number}]")
    links = links_in(smtp_server)
    assert sorted(links) == [1, 2, 3, 4, 5]
    assert {path_of(url) for url in links.values()} == {f"/csat/{surveyed.token}/{n}/" for n in range(1, 6)}
    # Nothing in the link but the token: 256 random bits, no ids.
    assert re.fullmatch(r"[\w-]{43}", surveyed.token)
    surveyed.sent_entry.refresh_from_db()
    assert surveyed.sent_entry.delivery_status == "sent"
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_SENT, channel="email").count() == 1


def test_clicking_a_link_records_the_score_and_thanks(client, tenant, surveyed, smtp_server):
    response = client.get(path_of(links_in(smtp_server)[4]))

    assert response.status_code == 200
    assert b"You rated us 4 out of 5" in response.content
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"
    surveyed.refresh_from_db()
    assert (surveyed.score, surveyed.answered_via) == (4, "link")
    [event] = TimelineEntry.objects.filter(conversation=surveyed.conversation, event="csat_answered")
    assert (event.data["score"], event.data["via"]) == (4, "link")
    [answer] = AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_ANSWER)
    assert (answer.channel, answer.data["score"], answer.data["survey_id"]) == ("email", 4, surveyed.pk)


def test_a_second_click_on_the_same_link_is_the_same_answer(client, surveyed, smtp_server):
    url = path_of(links_in(smtp_server)[5])
    client.get(url)
    client.get(url)
    client.get(f"/csat/{surveyed.token}/?score=5")

    assert TimelineEntry.objects.filter(conversation=surveyed.conversation, event="csat_answered").count() == 1
    assert AnalyticsEvent.objects.filter(name=EventName.CSAT_ANSWER).count() == 1


def test_a_prefetched_score_can_be_changed_and_commented_on_the_page(surveyed, smtp_server):
    browser = Client(enforce_csrf_checks=True)
    # A mail scanner opened the "1" link before the customer read the mail.
    Client().get(path_of(links_in(smtp_server)[1]))
    page = browser.get(f"/csat/{surveyed.token}/")
    csrf = page.cookies["csrftoken"].value

    response = browser.post(f"/csat/{surveyed.token}/", {"score": "5", "comment": "Quick and friendly",
                                                          "csrfmiddlewaretoken": csrf})

    assert response.status_code == 200
    surveyed.refresh_from_db()
    assert (surveyed.score, surveyed.comment, surveyed.answered_via) == (5, "Quick and friendly", "form")
    [answer] = AnalyticsEvent.objects.filter(name=EventName.CSAT_ANSWER)
    assert (answer.data["score"], answer.data["changes"]) == (5, 1)
    surveyed.answer_entry.refresh_from_db()
    assert (surveyed.answer_entry.data["previous_score"], surveyed.answer_entry.data["comment"]) == (1, "Quick and friendly")


def test_the_form_needs_the_csrf_token(surveyed):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(f"/csat/{surveyed.token}/", {"score": "5"})
    assert response.status_code == 403
    surveyed.refresh_from_db()
    assert surveyed.score is None


@pytest.mark.parametrize("query", ["?score=9", "?score=abc", "?score=", "9/"])
def test_a_score_out_of_range_is_a_400_with_the_reason(client, surveyed, query):
    response = client.get(f"/csat/{surveyed.token}/{query}")
    assert response.status_code == 400
    assert b"from 1 to 5" in response.content
    surveyed.refresh_from_db()
    assert surveyed.score is None


def test_a_form_without_a_score_is_a_400(client, surveyed):
    response = client.post(f"/csat/{surveyed.token}/", {"comment": "no rating"})
    assert response.status_code == 400
    assert b"Pick a rating" in response.content


def test_a_forged_token_is_a_404_page(client, surveyed):
    forged = surveyed.token[:-2] + ("AA" if not surveyed.token.endswith("AA") else "BB")
    for path in (f"/csat/{forged}/", f"/csat/{forged}/5/", f"/csat/{'x' * 200}/5/"):
        response = client.get(path)
        assert response.status_code == 404
        assert b"not valid" in response.content
    surveyed.refresh_from_db()
    assert surveyed.score is None


def test_another_tenants_token_only_ever_touches_that_tenants_survey(
    client, tenant, other_tenant, smtp_server, django_capture_on_commit_callbacks
):
    ours = resolve(tenant, emailed_conversation(smtp_inbox_for(tenant, smtp_server)), django_capture_on_commit_callbacks)
    other_inbox = smtp_inbox_for(other_tenant, smtp_server, name="Globex mail", address="help@globex.test")
    theirs = resolve(other_tenant, emailed_conversation(other_inbox, sender="jane@example.org", message_id="<g1@example.org>"),
                     django_capture_on_commit_callbacks)

    client.get(f"/csat/{theirs.token}/2/")

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.score, theirs.score) == (None, 2)
    assert AnalyticsEvent.objects.for_tenant(tenant).filter(name=EventName.CSAT_ANSWER).count() == 0
    assert AnalyticsEvent.objects.for_tenant(other_tenant).filter(name=EventName.CSAT_ANSWER).count() == 1
    assert TimelineEntry.objects.for_tenant(tenant).filter(event="csat_answered").count() == 0


def test_a_survey_never_sent_has_no_page(client, tenant, smtp_server, django_capture_on_commit_callbacks):
    inbox = smtp_inbox_for(tenant, smtp_server)
    inbox.settings = {"smtp_host": ""}  # the inbox cannot send: the survey is refused and kept
    inbox.save()
    survey = resolve(tenant, emailed_conversation(inbox), django_capture_on_commit_callbacks)

    assert "SMTP" in survey.refused_reason
    assert client.get(f"/csat/{survey.token}/5/").status_code == 404


def test_answers_after_the_window_are_refused_with_410(client, surveyed):
    CsatSurvey.objects.filter(pk=surveyed.pk).update(sent_at=timezone.now() - timedelta(days=8))
    response = client.get(f"/csat/{surveyed.token}/5/")
    assert response.status_code == 410
    assert b"closed" in response.content
    assert client.get(f"/csat/{surveyed.token}/").status_code == 410


def test_a_head_request_does_not_record(client, surveyed):
    client.head(f"/csat/{surveyed.token}/3/")
    surveyed.refresh_from_db()
    assert surveyed.score is None


def test_surveys_are_on_by_default_only_where_a_channel_carries_them(tenant):
    defaults = {channel: csat_enabled(InboxFactory.build(tenant=tenant, channel=channel)) for channel in Channel.values}
    assert defaults == {"email": True, "sms": True, "whatsapp": True, "voice": False, "chat": True, "api": False}
    assert csat_enabled(InboxFactory.build(tenant=tenant, channel="sms", settings={"csat": {"enabled": False}})) is False


def test_an_api_channel_conversation_gets_no_survey(tenant, django_capture_on_commit_callbacks):
    from conversations.services import InboundMessage, message_record_inbound

    inbox = InboxFactory(tenant=tenant, channel=Channel.API, name="Shop API")
    result = message_record_inbound(tenant=tenant, inbox=inbox, message=InboundMessage(
        channel=Channel.API, sender_kind="external", sender_value="shop-42", body="Order 42 is stuck", external_id="a1",
    ))
    assert resolve(tenant, result.conversation, django_capture_on_commit_callbacks) is None


def test_the_timeline_shows_the_answer(client, tenant, agent, surveyed):
    client.get(f"/csat/{surveyed.token}/?score=3")
    client.post(f"/csat/{surveyed.token}/", {"score": "3", "comment": "Slow but fine"})
    client.force_login(agent)

    page = client.get(f"/app/conversations/{surveyed.conversation.number}/")

    assert page.status_code == 200
    assert "CSAT 3/5</strong> — Slow but fine" in page.content.decode()
    assert "CSAT survey: 3/5" in page.content.decode()


def test_the_inbox_admin_switches_surveys_off(client, tenant, tenant_admin, smtp_server):
    inbox = smtp_inbox_for(tenant, smtp_server)
    client.force_login(tenant_admin)
    url = f"/admin/channels_app/inbox/{inbox.pk}/change/"
    page = client.get(url)
    assert b'name="csat_enabled"' in page.content

    response = client.post(url, {"tenant": tenant.pk, "channel": "email", "name": inbox.name, "address": inbox.address,
                                 "settings": '{"smtp_host": "127.0.0.1"}', "is_active": "on"})

    assert response.status_code == 302, response.content[:2000]
    inbox.refresh_from_db()
    assert inbox.settings["csat"] == {"enabled": False}
    assert csat_enabled(inbox) is False
