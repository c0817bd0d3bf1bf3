"""Files in the composer: on replies and notes, with limits, safe names and the channel's say."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations.attachments import attachment_public_link
from conversations.models import Attachment, TimelineEntry
from conversations.services import InboundMessage, message_record_inbound
from tests.factories import TeamFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def open_conversation(tenant, inbox, *, phone: str = "+12025550143"):
    message = InboundMessage(
        channel="sms", sender_kind="phone", sender_value=phone, body="Help", data={"from": phone},
    )
    return message_record_inbound(tenant=tenant, inbox=inbox, message=message).conversation


def upload(name: str = "receipt.pdf", content: bytes = b"%PDF-1.4 receipt", content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def reply(client, conversation, **fields):
    return client.post(
        f"/app/conversations/{conversation.number}/reply/", {"channel": "sms", "body": "Here it is", **fields},
        follow=True,
    )


def outbound(tenant):
    return TimelineEntry.objects.filter(tenant=tenant, direction="outbound")


def test_a_note_carries_files_with_sanitised_names(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    client.post(
        f"/app/conversations/{conversation.number}/notes/",
        {"body": "Customer's receipt", "attachments": [upload("../../etc/pass wd.pdf"), upload("scan.png", b"png", "image/png")]},
    )

    note = conversation.entries.get(kind="note")
    assert sorted(note.attachments.values_list("filename", "content_type", "size")) == [
        ("pass_wd.pdf", "application/pdf", 16), ("scan.png", "image/png", 3),
    ]
    assert all(a.file.name.startswith(f"attachments/{tenant.pk}/") for a in note.attachments.all())


def test_too_many_files_is_a_form_error_and_nothing_is_stored(client, tenant, sms_inbox, agent, settings):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    response = client.post(
        f"/app/conversations/{conversation.number}/notes/",
        {"body": "Lots", "attachments": [upload(f"f{i}.pdf") for i in range(11)]}, follow=True,
    )

    assert response.status_code == 200
    assert "Attach at most 10 files; you chose 11." in response.content.decode()
    assert not conversation.entries.filter(kind="note").exists()


def test_a_file_over_the_size_limit_is_a_form_error(client, tenant, sms_inbox, agent, monkeypatch):
    monkeypatch.setattr("conversations.forms.MAX_FILE_BYTES", 10)
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    response = reply(client, conversation, attachments=[upload("big.pdf", b"x" * 11)])

    assert "big.pdf is 0.0 MB; a file may have at most 0 MB." in response.content.decode()
    assert not outbound(tenant).exists()


def test_files_over_the_total_limit_are_a_form_error(client, tenant, sms_inbox, agent, monkeypatch):
    monkeypatch.setattr("conversations.forms.MAX_FILES_TOTAL_BYTES", 15)
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    response = reply(client, conversation, attachments=[upload("a.pdf", b"x" * 8), upload("b.pdf", b"x" * 8)])

    assert "The files add up to" in response.content.decode()
    assert not outbound(tenant).exists()


def test_a_reply_by_sms_stores_its_files_with_the_queued_message(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)

    reply(client, conversation, attachments=[upload("photo.jpg", b"jpeg!", "image/jpeg")])

    [entry] = outbound(tenant)
    assert (entry.delivery_status, list(entry.attachments.values_list("filename", flat=True))) == ("queued", ["photo.jpg"])


def test_the_channel_refuses_files_it_cannot_carry_with_the_alternative(client, tenant, agent):
    from tests.factories import InboxFactory

    uk_inbox = InboxFactory(tenant=tenant, channel="sms", name="UK SMS", address="+447700900123",
                            settings={"from_number": "+447700900123"})
    conversation = open_conversation(tenant, uk_inbox)
    client.force_login(agent)

    response = reply(client, conversation, attachments=[upload("photo.jpg", b"jpeg!", "image/jpeg")])

    assert "only from US and Canadian numbers" in response.content.decode()
    assert "send the files by e-mail or WhatsApp instead" in response.content.decode()
    assert not outbound(tenant).exists()
    assert not Attachment.objects.exists()


def test_a_member_downloads_a_file_of_a_conversation_they_may_see(client, tenant, sms_inbox, agent, teammate):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)
    client.post(f"/app/conversations/{conversation.number}/notes/", {"body": "See file", "attachments": [upload()]})
    attachment = Attachment.objects.get()

    response = client.get(f"/app/attachments/{attachment.pk}/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 receipt"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_file_of_another_teams_or_tenants_conversation_is_404(client, tenant, sms_inbox, agent, teammate, outsider):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)
    client.post(f"/app/conversations/{conversation.number}/notes/", {"body": "See file", "attachments": [upload()]})
    attachment = Attachment.objects.get()
    conversation.team = TeamFactory(tenant=tenant, name="Billing")
    conversation.assignee = agent
    conversation.save()

    client.force_login(teammate)
    other_team = client.get(f"/app/attachments/{attachment.pk}/")
    client.force_login(outsider)
    other_tenant = client.get(f"/app/attachments/{attachment.pk}/")

    assert (other_team.status_code, other_tenant.status_code) == (404, 404)


def test_an_uploaded_html_file_is_downloaded_never_shown_as_a_page(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)
    client.post(
        f"/app/conversations/{conversation.number}/notes/",
        {"body": "x", "attachments": [upload("evil.html", b"<script>alert(1)</script>", "text/html")]},
    )

    response = client.get(f"/app/attachments/{Attachment.objects.get().pk}/")

    assert response["Content-Disposition"].startswith("attachment;")


def test_a_signed_link_serves_the_file_without_a_session_until_it_expires(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)
    client.post(f"/app/conversations/{conversation.number}/notes/", {"body": "x", "attachments": [upload()]})
    attachment = Attachment.objects.get()
    client.logout()

    fresh = attachment_public_link(attachment, ttl=timedelta(minutes=5))
    expired = attachment_public_link(attachment, ttl=timedelta(seconds=-1))

    assert fresh.url.startswith("http://testserver/app/files/")
    ok = client.get(fresh.url.removeprefix("http://testserver"))
    assert (ok.status_code, b"".join(ok.streaming_content)) == (200, b"%PDF-1.4 receipt")
    assert client.get(expired.url.removeprefix("http://testserver")).status_code == 404


def test_a_tampered_link_is_404(client, tenant, sms_inbox, agent):
    conversation = open_conversation(tenant, sms_inbox)
    client.force_login(agent)
    client.post(f"/app/conversations/{conversation.number}/notes/", {"body": "x", "attachments": [upload()]})
    url = attachment_public_link(Attachment.objects.get(), ttl=timedelta(minutes=5)).url.removeprefix("http://testserver")
    token = url.split("/")[3]

    tampered = url.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))

    assert client.get(tampered).status_code == 404
