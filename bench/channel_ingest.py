#!/usr/bin/env python3
"""Fire N raw e-mails (`POST /hooks/email/<key>/`) or API-channel messages (`POST /hooks/api/<key>/messages/`)
at a running Omnidesk from C concurrent senders at a target rate, and report throughput and latency.

The e-mail and API webhooks store the message on the timeline before they answer, so once this returns
every 2xx is already stored. Standard library only, like twilio_ingest.py, and the same output: each
message's text starts with "bench <run id> #", so the stored count can be checked afterwards (run_all.py does).

    .venv/bin/python bench/channel_ingest.py --channel email --inbox-key KEY --secret SECRET --count 1000
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from twilio_ingest import percentile  # noqa: E402

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


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.build = REQUESTS[args.channel]
        self.prefix = urlsplit(args.url).path.rstrip("/")
        self.next_index = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.max_lag = 0.0
        self.started = 0.0

    def take(self) -> int | None:
        with self.lock:
            if self.next_index >= self.args.count:
                return None
            self.next_index += 1
            return self.next_index - 1

    def sender(self) -> None:
        target = urlsplit(self.args.url)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        while (index := self.take()) is not None:
            if self.args.rate:
                lag = time.perf_counter() - (self.started + index / self.args.rate)
                if lag < 0:
                    time.sleep(-lag)
                self.max_lag = max(self.max_lag, lag)
            path, body, headers = self.build(self.run_id, index, self.args.inbox_key, self.args.secret, self.args.to)
            began = time.perf_counter()
            try:
                connection.request("POST", self.prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                status, detail = 0, f"{type(exc).__name__}: {exc}"
            else:
                detail = f"HTTP {status} {answer[:120].decode(errors='replace')}"
            elapsed = (time.perf_counter() - began) * 1000
            with self.lock:
                self.latencies.append(elapsed)
                if not 200 <= status < 300:
                    self.errors.append(detail)
        connection.close()

    def go(self) -> dict:
        threads = [threading.Thread(target=self.sender) for _ in range(self.args.concurrency)]
        self.started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        duration = time.perf_counter() - self.started
        ordered = sorted(self.latencies)
        return {
            "channel": self.args.channel, "run_id": self.run_id, "sent": len(ordered), "errors": len(self.errors),
            "error_kinds": sorted(set(self.errors))[:5], "seconds": round(duration, 2),
            "requests_per_second": round(len(ordered) / duration, 1) if duration else None,
            "p50_ms": round(percentile(ordered, 0.50), 1), "p95_ms": round(percentile(ordered, 0.95), 1),
            "p99_ms": round(percentile(ordered, 0.99), 1), "max_ms": round(ordered[-1], 1) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered), 1) if ordered else None,
            "max_schedule_lag_ms": round(self.max_lag * 1000, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", choices=sorted(REQUESTS), required=True)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the running server.")
    parser.add_argument("--inbox-key", required=True, help="The inbox's key (seed_demo --json).")
    parser.add_argument("--secret", required=True, help="The inbox's webhook secret (e-mail) or signing secret (API).")
    parser.add_argument("--to", default="support@demo.example", help="The e-mail inbox's address (e-mail only).")
    parser.add_argument("--count", type=int, default=1000, help="How many messages to send.")
    parser.add_argument("--concurrency", type=int, default=8, help="Concurrent senders (connections).")
    parser.add_argument("--rate", type=float, default=100.0, help="Target requests per second in all; 0 = as fast as possible.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")
    args = parser.parse_args()
    result = Run(args).go()
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.channel} run {result['run_id']}: {result['sent']} requests in {result['seconds']} s "
          f"= {result['requests_per_second']} req/s, {result['errors']} errors {result['error_kinds'] or ''}")
    print(f"latency ms: p50 {result['p50_ms']}  p95 {result['p95_ms']}  p99 {result['p99_ms']}  max {result['max_ms']}  "
          f"(senders fell behind schedule by up to {result['max_schedule_lag_ms']} ms)")


if __name__ == "__main__":
    main()
