#!/usr/bin/env python3
"""Fire N signed Twilio SMS webhooks at a running Omnidesk and report throughput and latency.

Standard library only. Each request carries a distinct MessageSid and one of a handful of sender numbers;
the bodies start with a run id so the stored count can be checked afterwards (see bench/README.md).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import statistics
import threading
import time
import uuid
from urllib.parse import urlencode, urlsplit

SENDERS = [f"+1202555014{n}" for n in range(8)]


def twilio_signature(url: str, form: dict[str, str], token: str) -> str:
    """Twilio's scheme: HMAC-SHA1 over the URL followed by each sorted key and its value, base64."""
    payload = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.path = f"{urlsplit(args.url).path.rstrip('/')}/hooks/twilio/{args.inbox_key}/messages/"
        # What Twilio signs is the public URL; it differs from --url when a proxy sits in between.
        self.signed_url = f"{(args.public_url or args.url).rstrip('/')}/hooks/twilio/{args.inbox_key}/messages/"
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

    def form(self, index: int) -> dict[str, str]:
        form = {
            "MessageSid": "SM" + uuid.uuid4().hex, "From": SENDERS[index % len(SENDERS)], "To": self.args.to,
            "Body": f"bench {self.run_id} #{index}", "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        if self.args.account_sid:
            form["AccountSid"] = self.args.account_sid
        return form

    def sender(self) -> None:
        target = urlsplit(self.args.url)
        connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(target.hostname, target.port, timeout=30)
        while (index := self.take()) is not None:
            if self.args.rate:
                due = self.started + index / self.args.rate
                lag = time.perf_counter() - due
                if lag < 0:
                    time.sleep(-lag)
                self.max_lag = max(self.max_lag, lag)
            form = self.form(index)
            body = urlencode(form)
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": twilio_signature(self.signed_url, form, self.args.auth_token)}
            began = time.perf_counter()
            try:
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = connection_class(target.hostname, target.port, timeout=30)
                status, detail = 0, f"{type(exc).__name__}: {exc}"
            else:
                detail = f"HTTP {status}"
            elapsed = (time.perf_counter() - began) * 1000
            with self.lock:
                self.latencies.append(elapsed)
                if status != 200:
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
            "run_id": self.run_id, "sent": len(ordered), "errors": len(self.errors),
            "error_kinds": sorted(set(self.errors))[:5], "seconds": round(duration, 2),
            "requests_per_second": round(len(ordered) / duration, 1) if duration else None,
            "p50_ms": round(percentile(ordered, 0.50), 1), "p95_ms": round(percentile(ordered, 0.95), 1),
            "p99_ms": round(percentile(ordered, 0.99), 1), "max_ms": round(ordered[-1], 1) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered), 1) if ordered else None,
            "max_schedule_lag_ms": round(self.max_lag * 1000, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Base URL of the running server.")
    parser.add_argument("--public-url", default="", help="PUBLIC_BASE_URL of the server, if it differs from --url.")
    parser.add_argument("--inbox-key", required=True, help="The SMS inbox's key (seed_demo --json).")
    parser.add_argument("--auth-token", required=True, help="The inbox's twilio_auth_token (seed_demo --json).")
    parser.add_argument("--account-sid", default="", help="AccountSid to send; must match the inbox's if given.")
    parser.add_argument("--to", default="+15005550006", help="The inbox's number.")
    parser.add_argument("--count", type=int, default=1000, help="How many webhooks to send.")
    parser.add_argument("--concurrency", type=int, default=8, help="Concurrent senders (connections).")
    parser.add_argument("--rate", type=float, default=100.0, help="Target requests per second in all; 0 = as fast as possible.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")
    args = parser.parse_args()
    result = Run(args).go()
    if args.json:
        print(json.dumps(result))
        return
    print(f"run {result['run_id']}: {result['sent']} requests in {result['seconds']} s "
          f"= {result['requests_per_second']} req/s, {result['errors']} errors {result['error_kinds'] or ''}")
    print(f"latency ms: p50 {result['p50_ms']}  p95 {result['p95_ms']}  p99 {result['p99_ms']}  "
          f"max {result['max_ms']}  (mean {result['mean_ms']}; senders fell behind schedule by up to "
          f"{result['max_schedule_lag_ms']} ms)")
    print(f"stored messages are those whose body starts with 'bench {result['run_id']} #'")


if __name__ == "__main__":
    main()
