"""Raw RFC 822 bytes -> a plain ParsedEmail, with the standard library's `email` package (policy `default`).

Mail in the wild is broken in every possible way: wrong or unknown charsets, 8-bit bytes in headers,
NUL bytes, headers the stdlib's own parser trips over. The parser never loses a readable message for
that: it decodes what it can, replaces what it cannot, and lists what it did in `warnings`, which the
timeline shows. Only input that is not a message at all raises EmailParseError.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

import nh3

logger = logging.getLogger(__name__)

# Postgres keeps neither NUL characters nor lone surrogates in text or JSON.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_MSGID = re.compile(r"<([^<>\s]{1,500})>")
MAX_ID_LENGTH = 255


class EmailParseError(Exception):
    """The bytes are not an e-mail message we can read."""


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    message_id: str
    message_id_generated: bool
    subject: str
    from_address: str
    from_name: str
    to: list[str]
    cc: list[str]
    in_reply_to: list[str]
    references: list[str]
    text: str
    html: str  # sanitized, safe to display
    body: str  # text without quoted replies and signature, for the timeline
    attachments: list[ParsedAttachment]
    headers: dict[str, str]
    content_type: str
    warnings: list[str] = field(default_factory=list)
    # The message itself, for the noise checks that need its parts (delivery reports).
    message: EmailMessage | None = field(default=None, repr=False, compare=False)


def clean_text(value: str) -> str:
    """A string Postgres can store: surrogate-escaped bytes decoded as UTF-8 (or replaced), no NULs."""
    if not _UNSTORABLE.search(value):
        return value
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _UNSTORABLE.sub("", value.replace("\x00", ""))


def message_ids(value: str) -> list[str]:
    """Message-IDs in a header, without angle brackets; a bare id without brackets counts too."""
    found = _MSGID.findall(value or "")
    if not found and value and value.strip() and " " not in value.strip():
        found = [value.strip()]
    return [clean_text(one)[:MAX_ID_LENGTH] for one in found if one.strip()]


def _header(message: EmailMessage, name: str, warnings: list[str]) -> str:
    try:
        value = message.get(name)
        return clean_text(str(value)) if value is not None else ""
    except Exception as exc:  # noqa: BLE001 - the stdlib header parser raises many kinds of errors on hostile input
        warnings.append(f"The {name} header could not be read ({type(exc).__name__}); it was ignored.")
        return ""


def _addresses(message: EmailMessage, name: str, warnings: list[str]) -> list[str]:
    raw = _raw_header(message, name)
    return [clean_text(address).lower() for _, address in getaddresses([raw]) if "@" in address] if raw else []


def _raw_header(message: EmailMessage, name: str) -> str:
    """The header's unparsed text (folded lines joined, encoded words left alone)."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return clean_text(re.sub(r"\r?\n[ \t]+", " ", str(value)))
    return ""


def _decode_part(part: EmailMessage, label: str, warnings: list[str]) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001 - broken transfer encodings raise from deep inside the stdlib
        warnings.append(f"The {label} part could not be decoded ({type(exc).__name__}).")
        return ""
    if isinstance(payload, str):
        return clean_text(payload)
    if not payload:
        return ""
    try:
        charset = str(part.get_content_charset() or "").strip().strip('"').lower()
    except Exception:  # noqa: BLE001 - RFC 2231 charset parameters can break the stdlib's parameter parser
        charset = ""
    if charset:
        try:
            return clean_text(payload.decode(charset))
        except UnicodeDecodeError:
            warnings.append(f"The {label} part is not valid {charset}; unreadable bytes were replaced.")
            return clean_text(payload.decode(charset, "replace"))
        except (LookupError, ValueError):  # ValueError (after its subclass above): a name with a NUL in it
            warnings.append(f"The {label} part names an unknown charset {charset!r}; it was read as UTF-8.")
    try:
        return clean_text(payload.decode("utf-8"))
    except UnicodeDecodeError:
        if charset:
            return clean_text(payload.decode("utf-8", "replace"))
        warnings.append(f"The {label} part declares no charset and is not UTF-8; it was read as Latin-1.")
        return clean_text(payload.decode("latin-1"))


class _TextFromHtml(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"}
    _SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in "".join(parser.chunks).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def sanitize_html(html: str) -> str:
    # nh3 (ammonia) keeps formatting and drops scripts, event handlers and javascript: links.
    return nh3.clean(html, url_schemes={"http", "https", "mailto", "cid", "data"})


# A reply's quoted history starts with one of these lines; everything from there down is history.
_QUOTE_HEADERS = [
    re.compile(r"^On .{0,300}wrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^Le .{0,300}a écrit\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^Am .{0,300}schrieb .{0,200}:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^El .{0,300}escribió:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^-{2,}\s*(Original Message|Forwarded message|Ursprüngliche Nachricht)\s*-{2,}", re.IGNORECASE),
    re.compile(r"^_{10,}\s*$"),
    re.compile(r"^From: .+$"),
]
_SIGNATURE_STARTS = [
    re.compile(r"^-- ?$"),
    re.compile(r"^Sent from my \w+", re.IGNORECASE),
    re.compile(r"^Get Outlook for ", re.IGNORECASE),
]


def strip_reply(text: str) -> str:
    """The new part of a reply: quoted history and signature removed; the full text is kept elsewhere."""
    lines = text.replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        two_lines = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else stripped
        if index > 0 and (
            any(p.match(stripped) for p in _QUOTE_HEADERS) or any(p.match(two_lines) for p in _QUOTE_HEADERS[:4])
        ):
            cut = index
            break
        if stripped.startswith(">") and all(not rest.strip() or rest.lstrip().startswith(">") for rest in lines[index:]):
            cut = index
            break
        if index > 0 and any(p.match(line.rstrip("\n")) for p in _SIGNATURE_STARTS):
            cut = index
            break
    new_part = "\n".join(lines[:cut]).strip()
    return new_part or text.strip()


def _filename(part: EmailMessage, index: int, warnings: list[str]) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001 - RFC 2231 parameters in the wild break the stdlib in many ways
        name = ""
        warnings.append(f"Attachment {index} had an unreadable file name.")
    name = clean_text(str(name)).strip()
    if name:
        return name
    subtype = re.sub(r"[^a-z0-9.+-]", "", part.get_content_subtype())[:20] or "bin"
    return f"attachment-{index}.{'eml' if part.get_content_type() == 'message/rfc822' else subtype}"


def _part_bytes(part: EmailMessage, warnings: list[str]) -> bytes:
    try:
        if part.get_content_type() == "message/rfc822" or part.is_multipart():
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            return inner.as_bytes(policy=policy.SMTP) if hasattr(inner, "as_bytes") else str(inner).encode()
        payload = part.get_payload(decode=True)
        return payload if isinstance(payload, bytes) else (payload or "").encode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001 - same as above: keep the attachment as raw text rather than lose it
        warnings.append(f"An attachment could not be decoded ({type(exc).__name__}); its raw text was kept.")
        try:
            return str(part.get_payload()).encode("utf-8", "surrogateescape")
        except Exception:  # noqa: BLE001
            return b""


def _walk(message: EmailMessage, warnings: list[str]):
    """Leaf parts, depth first; an attached message is one leaf (its own parts are its business)."""
    stack = [message]
    depth = 0
    while stack:
        part = stack.pop(0)
        depth += 1
        if depth > 2000:
            warnings.append("The message has too many parts; the rest were ignored.")
            return
        if part.is_multipart() and part.get_content_maintype() == "multipart":
            payload = part.get_payload()
            stack[0:0] = [p for p in payload if isinstance(p, EmailMessage)] if isinstance(payload, list) else []
            continue
        yield part


def _named(part: EmailMessage) -> bool:
    try:
        return bool(part.get_filename())
    except Exception:  # noqa: BLE001
        return True


def _disposition(part: EmailMessage) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        return ""


def _content_id(part: EmailMessage) -> str:
    ids = message_ids(_raw_header(part, "Content-ID"))
    return ids[0] if ids else ""


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw RFC 822 bytes. Raises EmailParseError only when the bytes are not a message at all."""
    if not isinstance(raw, bytes | bytearray) or not raw.strip():
        raise EmailParseError("The message is empty.")
    raw = bytes(raw)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - the parser itself rarely fails, but it is stdlib code fed hostile bytes
        raise EmailParseError(f"The message could not be parsed ({type(exc).__name__}).") from exc
    if not message.keys():
        raise EmailParseError("The message has no headers.")
    warnings: list[str] = []

    ids = message_ids(_raw_header(message, "Message-ID"))
    generated = not ids
    message_id = ids[0] if ids else f"generated.{hashlib.sha256(raw).hexdigest()[:40]}@omnidesk.invalid"
    if generated:
        warnings.append("The message had no Message-ID; one was derived from its content.")

    from_raw = _header(message, "From", warnings) or _raw_header(message, "From")
    from_name, from_address = parseaddr(from_raw)
    from_name, from_address = clean_text(from_name).strip(), clean_text(from_address).strip().lower()

    text_parts: list[str] = []
    html = ""
    attachments: list[ParsedAttachment] = []
    for index, part in enumerate(_walk(message, warnings), start=1):
        content_type = clean_text(part.get_content_type())[:127]
        disposition = _disposition(part)
        if content_type == "text/plain" and disposition != "attachment" and not _named(part):
            text_parts.append(_decode_part(part, "text", warnings))
            continue
        if content_type == "text/html" and disposition != "attachment" and not html and not _named(part):
            html = _decode_part(part, "HTML", warnings)
            continue
        content = _part_bytes(part, warnings)
        content_id = _content_id(part)
        attachments.append(ParsedAttachment(
            filename=_filename(part, index, warnings), content_type=content_type, content=content,
            content_id=content_id, # A part with a Content-ID is what the HTML shows in place (cid: links), whatever its disposition says.
            inline=disposition == "inline" or bool(content_id),
        ))

    text = "\n\n".join(t for t in text_parts if t.strip()).replace("\r\n", "\n")
    if not text.strip() and html:
        text = html_to_text(html)
    safe_html = clean_text(sanitize_html(html)).strip() if html else ""

    headers = {
        name: _header(message, name, warnings)
        for name in ("Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress",
                     "Return-Path", "List-Id", "Date", "X-Failed-Recipients")
    }
    return ParsedEmail(
        message_id=message_id, message_id_generated=generated,
        subject=_header(message, "Subject", warnings).strip()[:998],
        from_address=from_address, from_name=from_name,
        to=_addresses(message, "To", warnings), cc=_addresses(message, "Cc", warnings),
        in_reply_to=message_ids(_raw_header(message, "In-Reply-To")),
        references=message_ids(_raw_header(message, "References")),
        text=text, html=safe_html, body=strip_reply(text), attachments=attachments,
        headers={k: v for k, v in headers.items() if v}, content_type=message.get_content_type(),
        warnings=warnings, message=message,
    )
