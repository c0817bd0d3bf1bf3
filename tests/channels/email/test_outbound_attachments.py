"""Files on e-mail replies go as MIME attachments."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from channels_app.models import Channel
from channels_app.services import message_deliver, reply_send
from conversations.models import TimelineEntry
from conversations.services import OutgoingFile
from tests.channels.email.mails import mail, post_raw

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def conversation(mail_inbox, smtp_server):
    mail_inbox.settings = {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port}
    mail_inbox.save()
    response = post_raw(mail(message_id="<q1@example.org>", subject="Invoice").as_bytes(), mail_inbox)
    return TimelineEntry.objects.get(pk=response.entry_id).conversation


def test_files_go_as_mime_attachments_with_their_names_and_types(tenant, agent, conversation, smtp_server):
    files = [
        OutgoingFile(name="invoice 42.pdf", content=b"%PDF-1.4 invoice", content_type="application/pdf"),
        OutgoingFile(name="Überweisung.txt", content=b"IBAN DE00", content_type="text/plain"),
    ]
    entry = reply_send(tenant=tenant, conversation=conversation, author=agent, channel=Channel.EMAIL,
                       body="Your invoice is attached.", files=files)

    message_deliver(entry_id=entry.pk)

    sent = message_from_bytes(smtp_server.received[0].content, policy=policy.default)
    assert sent.get_body(("plain",)).get_content().strip() == "Your invoice is attached."
    parts = [(p.get_filename(), p.get_content_type(), p.get_content()) for p in sent.iter_attachments()]
    assert parts == [
        ("invoice_42.pdf", "application/pdf", b"%PDF-1.4 invoice"),
        ("Überweisung.txt", "text/plain", "IBAN DE00"),
    ]
