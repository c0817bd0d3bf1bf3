"""The parser never fails on hostile bytes except with its own error, and never loses a readable text."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from channels_app.adapters.email.parsing import EmailParseError, ParsedEmail, parse_email
from tests.channels.email.mails import mail

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEED = mail(html="<p>Hello <b>there</b></p>", headers={"In-Reply-To": "<x@y>", "References": "<a@b> <x@y>"})
SEED.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="f\u00fc.bin")
SEED_BYTES = SEED.as_bytes()


def storable(text: str) -> bool:
    """What Postgres accepts: valid UTF-8 without NUL characters."""
    text.encode("utf-8")
    return "\x00" not in text


def assert_clean(parsed: ParsedEmail) -> None:
    strings = [parsed.message_id, parsed.subject, parsed.from_address, parsed.from_name, parsed.text, parsed.html,
               parsed.body, *parsed.to, *parsed.cc, *parsed.in_reply_to, *parsed.references, *parsed.warnings,
               *parsed.headers.values(), *(a.filename for a in parsed.attachments)]
    assert all(storable(s) for s in strings)
    assert len(parsed.message_id) <= 255


def parse_or_refuse(raw: bytes) -> ParsedEmail | None:
    try:
        return parse_email(raw)
    except EmailParseError:
        return None


@FUZZ
@given(st.binary(max_size=2000))
@example(b"\x00")
@example(b"From: \xff\xfe\r\n\r\n\x00")
@example(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n--x--")
@example(b"Content-Type: text/plain; charset*=utf-8''%ff%fe\r\n\r\nhi")
@example(b"From: a@b.c\r\nContent-Type: multipart/alternative\x00 boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--")
def test_random_bytes_parse_or_raise_the_parsers_own_error(raw):
    parsed = parse_or_refuse(raw)

    assert parsed is None or assert_clean(parsed) is None


@FUZZ
@given(st.data())
def test_mutated_messages_parse_or_raise_the_parsers_own_error(data):
    raw = bytearray(SEED_BYTES)
    for _ in range(data.draw(st.integers(1, 20))):
        position = data.draw(st.integers(0, len(raw) - 1))
        operation = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.sampled_from([0, 10, 13, 32, 45, 58, 59, 60, 61, 62, 63, 34, 0xFF, 0xC3, 0x80, 0x1B]))
        if operation == "replace":
            raw[position] = byte
        elif operation == "insert":
            raw.insert(position, byte)
        else:
            del raw[position]

    parsed = parse_or_refuse(bytes(raw))

    assert parsed is None or assert_clean(parsed) is None


@FUZZ
@given(
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=300)
    .filter(lambda t: t.strip()),
    subject=st.lists(st.text(alphabet=st.characters(whitelist_categories=["L", "N", "P", "S"]), min_size=1, max_size=12),
                     max_size=6).map(" ".join),
    charset=st.sampled_from(["utf-8", "gb18030"]),  # both encode every character
)
def test_a_valid_message_never_loses_its_text(text, subject, charset):
    message = mail(subject=subject, text=None)
    message.set_content(text, charset=charset)

    parsed = parse_email(message.as_bytes())

    assert parsed.text.replace("\r\n", "\n").strip() == text.replace("\r\n", "\n").replace("\r", "\n").strip()
    # Whitespace between RFC 2047 encoded words is not part of the text: the stdlib's folding may drop it.
    assert "".join(parsed.subject.split()) == "".join(subject.split())
    assert_clean(parsed)
