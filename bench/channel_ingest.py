#!/usr/bin/env python3
"""Fire N raw e-mails (`POST /hooks/email/<key>/`) or API-channel messages (`POST /hooks/api/<key>/messages/`)
at a running Omnidesk from C concurrent senders at a target rate, and report throughput and latency.

The e-mail and API webhooks store the message on the timeline before they answer, so once this returns
every 2xx is already stored. Standard library only; the senders and the figures are bench/load_senders.py's,
shared with twilio_ingest.py. Each message's text starts with "bench <run id> #", so the stored count can be
checked afterwards (run_all.py does).

    .venv/bin/python bench/channel_ingest.py --channel email --inbox-key KEY --secret SECRET --count 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_senders import add_load_arguments, print_result, send_load  # noqa: E402

# Eight customers take turns, so several conversations are written at once (one row lock per customer).
SENDERS = 8


def email_request(run_id: str, index: int, key: str, secret: str, to: str) -> tuple[str, bytes, dict[str, str]]:
    mail = EmailMessage()
    sender = index % SENDERS
    mail["From"] = f"Bench sender {sender} <bench-sender-{sender}@customer.example>"
    mail["To"] = to
    mail["Subject"] = f"bench {run_id} #{index}"
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
    mail.set_content(f"bench {run_id} #{index}\n")
    headers = {"Content-Type": "message/rfc822", "X-Omnidesk-Secret": secret}
    return f"/hooks/email/{key}/", mail.as_bytes(), headers


def api_request(run_id: str, index: int, key: str, secret: str, to: str) -> tuple[str, bytes, dict[str, str]]:
    from hashlib import sha256
    from hmac import new as hmac_new

    sender = index % SENDERS
    body = json.dumps({
        "external_id": f"bench-{uuid.uuid4().hex}",
        "customer": {"identifier": f"bench-sender-{sender}", "name": f"Bench sender {sender}"},
        "text": f"bench {run_id} #{index}",
    }).encode()
    # The API channel's scheme (channels_app/adapters/api/signing.py): HMAC-SHA256 of the exact body bytes.
    signature = "sha256=" + hmac_new(secret.encode(), body, sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Omnidesk-Signature": signature}
    return f"/hooks/api/{key}/messages/", body, headers


REQUESTS = {"email": email_request, "api": api_request}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser, what="messages")
    parser.add_argument("--channel", choices=sorted(REQUESTS), required=True)
    parser.add_argument("--inbox-key", required=True, help="The inbox's key (seed_demo --json).")
    parser.add_argument("--secret", required=True, help="The inbox's webhook secret (e-mail) or signing secret (API).")
    parser.add_argument("--to", default="support@demo.example", help="The e-mail inbox's address (e-mail only).")
    args = parser.parse_args()
    make_request = partial(REQUESTS[args.channel], key=args.inbox_key, secret=args.secret, to=args.to)
    load = send_load(make_request, url=args.url, count=args.count, rate=args.rate, concurrency=args.concurrency)
    print_result({"channel": args.channel, **load}, as_json=args.json, label=f"{args.channel} ")


if __name__ == "__main__":
    main()
