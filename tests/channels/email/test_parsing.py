from __future__ import annotations

import base64
from email import policy
from email.message import EmailMessage

import pytest

from channels_app.adapters.email.parsing import parse_email, strip_reply
from conversations.models import Attachment, TimelineEntry
from tests.channels.email.mails import mail, post_raw

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_it_reads_a_plain_message():
    parsed = parse_email(mail().as_bytes())

    assert (parsed.from_address, parsed.from_name, parsed.subject) == ("jane@example.org", "Jane Doe", "Printer on fire")
    assert parsed.text == "My printer is on fire.\n"
    assert parsed.html == ""
    assert parsed.warnings == []


def test_it_keeps_both_parts_of_a_multipart_alternative_and_sanitizes_the_html():
    html = '<p onclick="steal()">It is <b>on fire</b></p><script>alert(1)</script><a href="javascript:x()">x</a>'

    parsed = parse_email(mail(html=html).as_bytes())

    assert parsed.text.strip() == "My printer is on fire."
    assert "<b>on fire</b>" in parsed.html
    assert "onclick" not in parsed.html
    assert "script" not in parsed.html
    assert "javascript" not in parsed.html


def test_it_takes_the_text_from_the_html_when_there_is_no_plain_part():
    parsed = parse_email(mail(text=None, html="<html><style>p{}</style><p>First line</p><p>Second&nbsp;line</p></html>").as_bytes())

    assert parsed.text == "First line\n\nSecond line"
    assert parsed.body == "First line\n\nSecond line"


def test_it_reads_latin_1():
    raw = (
        "From: Zoë <zoe@example.org>\r\nSubject: =?iso-8859-1?q?Caf=E9?=\r\nMessage-ID: <l1@example.org>\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCrème brûlée\r\n"
    ).encode("latin-1")

    parsed = parse_email(raw)

    assert parsed.subject == "Café"
    assert parsed.text.strip() == "Crème brûlée"
    assert parsed.warnings == []


def test_it_reads_shift_jis():
    body = "プリンターが燃えています".encode("shift_jis")
    raw = (
        b"From: taro@example.jp\r\nSubject: =?shift_jis?b?" + base64.b64encode("故障".encode("shift_jis"))
        + b"?=\r\nContent-Type: text/plain; charset=shift_jis\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )

    parsed = parse_email(raw)

    assert parsed.subject == "故障"
    assert parsed.text.strip() == "プリンターが燃えています"


def test_it_keeps_a_message_with_broken_bytes_and_says_so():
    raw = b"From: a@example.org\r\nMessage-ID: <b2@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe bytes and a NUL \x00 here\r\n"

    parsed = parse_email(raw)

    assert parsed.text.strip() == "bad \ufffd\ufffd bytes and a NUL  here"
    assert parsed.warnings == ["The text part is not valid utf-8; unreadable bytes were replaced."]


def test_it_reads_an_unknown_charset_as_utf8_with_a_warning():
    raw = "From: a@example.org\r\nMessage-ID: <k@x>\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nnuqneH ✓\r\n".encode()

    parsed = parse_email(raw)

    assert parsed.text.strip() == "nuqneH ✓"
    assert parsed.warnings == ["The text part names an unknown charset 'x-klingon'; it was read as UTF-8."]


def test_a_charset_name_python_cannot_look_up_is_an_unknown_charset():
    # Found by test_fuzz: a NUL in the name makes bytes.decode raise ValueError, not LookupError.
    raw = b'From: a@example.org\r\nMessage-ID: <n@x>\r\nContent-Type: text/plain; charset="utf\x008"\r\n\r\nhello\r\n'

    parsed = parse_email(raw)

    assert parsed.text.strip() == "hello"
    assert parsed.warnings == ["The text part names an unknown charset 'utf\\x008'; it was read as UTF-8."]


def test_it_cleans_8bit_headers():
    raw = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\nSubject: caf\xc3\xa9 \xff\r\n\r\nhi\r\n"

    parsed = parse_email(raw)

    assert parsed.from_name == "Jörg"
    assert parsed.subject == "café \ufffd"


def test_it_collects_attachments_and_inline_images():
    message = mail(html='<p>See <img src="cid:logo@x"></p>')
    message.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@x>", filename="logo.png")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")

    parsed = parse_email(message.as_bytes())

    assert [(a.filename, a.content_type, a.inline, a.content_id) for a in parsed.attachments] == [
        ("logo.png", "image/png", True, "logo@x"),
        ("invoice.pdf", "application/pdf", False, ""),
    ]
    assert parsed.attachments[0].content == PNG
    assert parsed.text.strip() == "My printer is on fire."
    assert 'src="cid:logo@x"' in parsed.html


def test_it_keeps_a_forwarded_message_as_one_attachment():
    inner = mail(subject="Original", message_id="<inner@example.org>")
    outer = mail(text="FYI, see below.")
    outer.add_attachment(inner)

    parsed = parse_email(outer.as_bytes())

    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]
    assert b"Subject: Original" in parsed.attachments[0].content
    assert parsed.text.strip() == "FYI, see below."


def test_it_strips_the_quoted_reply_and_the_signature():
    text = (
        "Thanks, that fixed it.\n\n-- \nJane Doe\nACME Corp\n\n"
        "On Mon, 2 Jun 2025 at 10:00, Support <support@acme.test> wrote:\n> Try turning it off.\n"
    )

    assert strip_reply(text) == "Thanks, that fixed it."


def test_it_strips_an_on_wrote_line_wrapped_over_two_lines():
    text = "Works now.\n\nOn Mon, 2 Jun 2025 at 10:00, Support Team\n<support@acme.test> wrote:\n> old\n"

    assert strip_reply(text) == "Works now."


def test_it_strips_an_outlook_original_message_block():
    text = "Yes please.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nOld text\n"

    assert strip_reply(text) == "Yes please."


def test_it_strips_sent_from_my_phone():
    assert strip_reply("On my way.\n\nSent from my iPhone\n") == "On my way."


def test_it_keeps_everything_when_stripping_would_leave_nothing():
    assert strip_reply("> only a quote\n> nothing else\n") == "> only a quote\n> nothing else"


@pytest.mark.django_db
def test_the_timeline_shows_the_new_part_and_keeps_the_full_text_and_files(mail_inbox):
    message = mail(text="New question.\n\nOn Mon, Support wrote:\n> old answer\n", html="<p>New question.</p>")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="../../etc/invoice.pdf")

    entry = TimelineEntry.objects.get(pk=post_raw(message.as_bytes(), mail_inbox).entry_id)

    assert entry.body == "New question."
    assert "> old answer" in entry.data["text"]
    assert entry.data["html"] == "<p>New question.</p>"
    assert sorted(Attachment.objects.filter(entry=entry).values_list("filename", flat=True)) == ["invoice.pdf", "original.eml"]


@pytest.mark.django_db
def test_an_undecodable_message_is_stored_with_a_visible_warning(mail_inbox):
    raw = b"From: a@example.org\r\nMessage-ID: <b1@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello \xff\x00\r\n"

    response = post_raw(raw, mail_inbox)

    entry = TimelineEntry.objects.get(pk=response.entry_id)
    assert entry.body == "hello \ufffd"
    assert entry.data["parse_warnings"] == ["The text part is not valid utf-8; unreadable bytes were replaced."]


@pytest.mark.django_db
def test_inline_images_are_stored_and_mapped_by_content_id(mail_inbox):
    message = mail(html='<p><img src="cid:logo@x"></p>')
    message.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@x>", filename="logo.png")

    entry = TimelineEntry.objects.get(pk=post_raw(message.as_bytes(), mail_inbox).entry_id)

    logo = Attachment.objects.get(entry=entry, filename="logo.png")
    assert entry.data["inline"] == {"logo@x": logo.pk}
    assert logo.file.read() == PNG


def test_a_message_built_by_the_stdlib_round_trips():
    message = EmailMessage(policy=policy.default)
    message["From"] = "x@example.org"
    message.set_content("ünïcode body ✓")

    assert parse_email(message.as_bytes()).text.strip() == "ünïcode body ✓"
