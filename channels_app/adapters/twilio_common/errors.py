"""Twilio error codes an agent is likely to meet, explained in words they can act on.

Twilio's own descriptions are terse ("Unreachable destination handset"); these say what to do next.
"""

from __future__ import annotations

TWILIO_ERRORS: dict[str, str] = {
    "20003": "Twilio rejected this inbox's credentials; check the account SID and auth token in admin.",
    "20404": "Twilio does not know this resource; check the inbox's account SID and sender.",
    "20429": "Twilio is rate-limiting this account; the message will be retried.",
    "21211": "The number is not a valid phone number.",
    "21408": "This Twilio account may not send to that country or region (geographic permissions).",
    "21606": "The sender number cannot send messages to this number; check the inbox's sender.",
    "21610": "The customer replied STOP to this number; Twilio blocks messages until they send START.",
    "21612": "Twilio cannot route a message from this sender to that number.",
    "21614": "The number is not a mobile number (a landline cannot receive messages).",
    "21617": "The message is longer than Twilio's 1600-character limit.",
    "21660": "The sender number does not belong to this inbox's Twilio account.",
    "30001": "Twilio's queue for this sender overflowed; try again later.",
    "30002": "The Twilio account is suspended.",
    "30003": "The customer's phone is unreachable (switched off or out of coverage).",
    "30004": "The message was blocked (the customer or their carrier blocks this sender).",
    "30005": "The number is unknown to the carrier; it may no longer exist.",
    "30006": "The number is a landline or its carrier cannot receive messages.",
    "30007": "The carrier filtered the message as spam.",
    "30008": "The carrier reported an unknown error; trying again later may work.",
    "30034": "The sender number is not registered for A2P 10DLC messaging in the US.",
    "63003": "That number is not on WhatsApp.",
    "63016": "WhatsApp's 24-hour window is closed; only an approved template can be sent now.",
    "63018": "WhatsApp's rate limit for this sender was exceeded.",
    "63024": "WhatsApp does not accept this recipient.",
    "63049": "Meta chose not to deliver this WhatsApp message (marketing limits).",
    "63112": "Meta disabled this WhatsApp Business account.",
}


def twilio_error_explanation(code: str | int | None, fallback: str = "") -> str:
    """A sentence for an agent: the known explanation, else Twilio's own message, with the code."""
    code_text = str(code or "").strip()
    text = TWILIO_ERRORS.get(code_text) or fallback.strip() or "Twilio could not deliver the message."
    return f"{text} (Twilio error {code_text})" if code_text else text
