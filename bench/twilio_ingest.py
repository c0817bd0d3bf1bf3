#!/usr/bin/env python3
"""Fire N signed Twilio SMS webhooks at a running Omnidesk and report throughput and latency.

Standard library only; the senders and the figures are bench/load_senders.py's. Each request carries a distinct
MessageSid and one of a handful of sender numbers; the bodies start with a run id so the stored count can be
checked afterwards (see bench/README.md).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import sys
import uuid
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_senders import add_load_arguments, print_result, send_load  # noqa: E402

SENDERS = [f"+1202555014{n}" for n in range(8)]


def sender_number(index: int, senders: int) -> str:
    """The sender of message `index`: the eight regulars in turn, or with more senders 202-2xx-xxxx numbers
    (valid, so each is a customer: `--senders` = `--count` makes every message a new customer's first)."""
    if senders <= len(SENDERS):
        return SENDERS[index % senders]
    return f"+1202{2_000_000 + index % senders:07d}"


def twilio_signature(url: str, form: dict[str, str], token: str) -> str:
    """Twilio's scheme: HMAC-SHA1 over the URL followed by each sorted key and its value, base64."""
    payload = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def sms_request(run_id: str, index: int, key: str, auth_token: str, to: str, account_sid: str,
                signed_base_url: str, senders: int = len(SENDERS)) -> tuple[str, bytes, dict[str, str]]:
    form = {
        "MessageSid": "SM" + uuid.uuid4().hex, "From": sender_number(index, senders), "To": to,
        "Body": f"bench {run_id} #{index}", "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if account_sid:
        form["AccountSid"] = account_sid
    path = f"/hooks/twilio/{key}/messages/"
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": twilio_signature(signed_base_url.rstrip("/") + path, form, auth_token)}
    return path, urlencode(form).encode(), headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser, what="webhooks")
    parser.add_argument("--public-url", default="", help="PUBLIC_BASE_URL of the server, if it differs from --url.")
    parser.add_argument("--inbox-key", required=True, help="The SMS inbox's key (seed_demo --json).")
    parser.add_argument("--auth-token", required=True, help="The inbox's twilio_auth_token (seed_demo --json).")
    parser.add_argument("--account-sid", default="", help="AccountSid to send; must match the inbox's if given.")
    parser.add_argument("--to", default="+15005550006", help="The inbox's number.")
    parser.add_argument("--senders", type=int, default=len(SENDERS),
                        help="How many sender numbers take turns (default 8); as many as --count: each message is a "
                             "new customer's first")
    args = parser.parse_args()
    if args.senders < 1:
        parser.error("--senders must be at least 1")
    # What Twilio signs is the public URL; it differs from --url when a proxy sits in between.
    make_request = partial(sms_request, key=args.inbox_key, auth_token=args.auth_token, to=args.to,
                           account_sid=args.account_sid, signed_base_url=args.public_url or args.url, senders=args.senders)
    result = send_load(make_request, url=args.url, count=args.count, rate=args.rate, concurrency=args.concurrency)
    print_result(result, as_json=args.json, show_mean=True)
    if not args.json:
        print(f"stored messages are those whose body starts with 'bench {result['run_id']} #'")


if __name__ == "__main__":
    main()
