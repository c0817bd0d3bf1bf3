"""Mail that no person wrote: auto-replies and bounces. They never open conversations or get replies,
or two auto-responders would write to each other forever."""

from __future__ import annotations

import re
from dataclasses import dataclass

from channels_app.adapters.email.parsing import ParsedEmail, clean_text, message_ids

_OUT_OF_OFFICE = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|"
    r"réponse automatique|absence|respuesta automática|away from (the )?office|on vacation|vacation reply)",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"(undeliver(ed|able)|delivery (status notification|has failed|failure)|returned mail|failure notice|"
    r"mail delivery (failed|subsystem))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Bounce:
    original_message_id: str  # "" when the report does not say which message bounced
    recipient: str
    status: str  # the enhanced status code, e.g. "5.1.1"
    diagnostic: str
    permanent: bool


def auto_reply_reason(parsed: ParsedEmail) -> str:
    """Why this message is an automatic one, or "" for a message a person wrote."""
    headers = {k.lower(): v.strip().lower() for k, v in parsed.headers.items()}
    auto_submitted = headers.get("auto-submitted", "")
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    if headers.get("precedence") in {"bulk", "junk", "list", "auto_reply"}:
        return f"Precedence: {headers['precedence']}"
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return "X-Autoreply"
    if headers.get("x-auto-response-suppress") in {"all", "oof", "autoreply"} and _OUT_OF_OFFICE.search(parsed.subject):
        return "out-of-office"
    if _OUT_OF_OFFICE.search(parsed.subject):
        return "out-of-office subject"
    return ""


def _is_report(parsed: ParsedEmail) -> bool:
    message = parsed.message
    if message is None or parsed.content_type != "multipart/report":
        return False
    return str(message.get_param("report-type", "")).lower() == "delivery-status"


def is_bounce(parsed: ParsedEmail) -> bool:
    # A mailer-daemon writes nothing but reports, whatever its subject says.
    return _is_report(parsed) or bool(_DAEMON.match(parsed.from_address)) or bool(
        parsed.headers.get("X-Failed-Recipients") and _BOUNCE_SUBJECT.search(parsed.subject)
    )


def _status_fields(text: str) -> dict[str, str]:
    """The per-recipient fields of a message/delivery-status body (the first failed recipient wins)."""
    fields: dict[str, str] = {}
    for block in re.split(r"\r?\n\s*\r?\n", text):
        current: dict[str, str] = {}
        for line in re.sub(r"\r?\n[ \t]+", " ", block).splitlines():
            name, sep, value = line.partition(":")
            if sep:
                current[name.strip().lower()] = value.strip()
        if "action" in current or "status" in current:
            fields = current
            if current.get("action", "").lower() == "failed":
                break
    return fields


def bounce_details(parsed: ParsedEmail) -> Bounce:
    """What bounced and why, from an RFC 3464 report, or from a mailer-daemon's plain text."""
    message = parsed.message
    status_text = ""
    original_ids: list[str] = []
    if message is not None:
        for part in message.walk():
            content_type = part.get_content_type()
            if content_type == "message/delivery-status":
                # The stdlib parses the report's field groups as a list of header blocks.
                payload = part.get_payload()
                blocks = payload if isinstance(payload, list) else [payload]
                status_text += "\n\n".join(
                    "\n".join(f"{k}: {v}" for k, v in block.items()) if hasattr(block, "items") else str(block)
                    for block in blocks
                )
            elif content_type in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers") and not original_ids:
                payload = part.get_payload()
                inner = payload[0] if isinstance(payload, list) and payload else payload
                if hasattr(inner, "get"):
                    original_ids = message_ids(str(inner.get("Message-ID", "")))
                else:
                    found = re.search(r"^Message-ID:\s*(.+)$", str(inner), re.IGNORECASE | re.MULTILINE)
                    original_ids = message_ids(found.group(1)) if found else []
    if not original_ids:
        # Plain-text bounces quote the original's headers in their body.
        found = re.search(r"^\s*Message-ID:\s*(<[^>]+>)", parsed.text, re.IGNORECASE | re.MULTILINE)
        original_ids = message_ids(found.group(1)) if found else []
    fields = _status_fields(clean_text(status_text))
    status = fields.get("status", "").split()[0] if fields.get("status") else ""
    action = fields.get("action", "failed").lower()
    diagnostic = fields.get("diagnostic-code", "")
    diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
    recipient = fields.get("final-recipient", "") or parsed.headers.get("X-Failed-Recipients", "")
    recipient = recipient.split(";", 1)[1].strip() if ";" in recipient else recipient
    permanent = action == "failed" and not status.startswith("4")
    return Bounce(
        original_message_id=original_ids[0] if original_ids else "", recipient=recipient.lower(), status=status[:32],
        diagnostic=(diagnostic or parsed.body[:400] or parsed.subject)[:480], permanent=permanent,
    )

