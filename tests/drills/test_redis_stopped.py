"""Drill: Redis (broker, channel layer, cache) dies during a burst of inbound SMS and comes back empty.

A private redis-server on a free port stands in for the machine's (which others use): the web server
(uvicorn) and a Celery worker (prefork) are pointed at it; the drill SIGKILLs it, keeps sending webhooks
and has the agent reply, then starts it again on the same port with nothing in it (queued tasks are gone).
Webhooks keep answering 200: the message is committed before the broker is needed. When Redis is back the
beat sweepers run once (called here with their age thresholds at zero instead of waiting a minute or two): the
messages are stored and routed, the reply goes out once, and the agent's socket, reconnected, hears about
every missed conversation while the workspace list (what the page refetches after a reconnect) shows all of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from django.db.models import Count
from django.test import Client
from websockets.sync.client import connect

from conversations.models import Conversation, DeliveryStatus, TimelineEntry
from routing.models import RoutingRule, Team
from tests.channels.twilio.conftest import twilio_inbox
from tests.drills.conftest import ROOT, Burst, child_env, sms_form, wait_until
from tests.routing.engine.conftest import make_agent

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]

BEFORE, DURING = 8, 20

SWEEPS = (
    "import django; django.setup(); from datetime import timedelta; "
    "from channels_app.receipts import receipts_sweep; "
    "from routing.tasks import sweep_unrouted; from channels_app.services import queued_requeue; "
    "from channels_app.tasks import deliver_message; "
    "print(receipts_sweep(older_than=timedelta(0)), sweep_unrouted(grace_seconds=0), "
    "[deliver_message.delay(i) for i in queued_requeue(never_tried_after_seconds=0)])"
)


class AgentSocket:
    """The workspace socket of a signed-in agent, read by a thread; the frames after its hello, in order.
    Like the page's script, it retries until the server accepts it (not while Redis is down)."""

    def __init__(self, url: str, origin: str, cookie: str) -> None:
        self.url, self.origin, self.cookie = url, origin, cookie
        self.frames: list[dict] = []
        self.socket = None
        deadline = time.monotonic() + 30
        while not self._open_once():
            assert time.monotonic() < deadline, f"the workspace socket did not reconnect: {self.error!r}"
            time.sleep(0.5)

    def _open_once(self) -> bool:
        self.error: BaseException | None = None
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        ready.wait(timeout=15)
        return self.socket is not None

    def _read(self, ready: threading.Event) -> None:
        try:
            with connect(self.url, origin=self.origin, additional_headers={"Cookie": self.cookie}, open_timeout=5) as ws:
                assert json.loads(ws.recv(timeout=5))["type"] == "hello"
                self.socket = ws
                ready.set()
                for frame in ws:
                    self.frames.append(json.loads(frame))
        except Exception as exc:  # noqa: BLE001 - refused while Redis is down, or cut by the drill
            self.error = exc
        finally:
            ready.set()

    def conversation_ids(self) -> set[int]:
        return {f["conversation_id"] for f in self.frames if isinstance(f.get("conversation_id"), int)}

    def close(self) -> None:
        self.socket.close()


def test_webhooks_keep_storing_while_redis_is_down_and_everything_catches_up_once(
    tenant, private_redis, fake_twilio, start_web, start_worker
):
    inbox = twilio_inbox(tenant)
    team = Team.objects.create(tenant=tenant, name="Support")
    RoutingRule.objects.create(tenant=tenant, name="all", set_team=team)
    agent = make_agent(tenant, team, "Dana", capacity={"sms": 100}).membership.user
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url, "TWILIO_API_BASE_URL": fake_twilio.url}
    web = start_web(**env)
    worker = start_worker(**env)
    browser = Client()
    browser.force_login(agent)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    ws_url = web.url.replace("http://", "ws://") + "/ws/workspace/"
    conversations = Conversation.objects.for_tenant(tenant)
    run = uuid.uuid4().hex[:8]
    forms = [sms_form(i, run=run) for i in range(BEFORE + DURING)]
    hook = f"/hooks/twilio/{inbox.key}/messages/"

    started = time.monotonic()
    socket = AgentSocket(ws_url, web.url, cookie)
    before = Burst(web.url, hook, forms[:BEFORE])
    before.run()
    assert wait_until(lambda: conversations.filter(assignee=agent).count() == BEFORE, timeout=60)
    first = conversations.order_by("number").first()
    assert wait_until(lambda: first.pk in socket.conversation_ids())

    print(f"drill timings: before the outage {time.monotonic() - started:.1f} s")
    private_redis.kill()
    during = Burst(web.url, hook, forms[BEFORE:], retry_for=0)
    during.run()
    with requests.Session() as http:
        http.headers["Cookie"] = cookie
        page = http.get(f"{web.url}/app/conversations/{first.number}/", timeout=30)
        token = page.cookies.get("csrftoken") or http.cookies.get("csrftoken")
        reply = http.post(
            f"{web.url}/app/conversations/{first.number}/reply/", timeout=30, allow_redirects=False,
            data={"channel": "sms", "body": "Sent while Redis was down", "csrfmiddlewaretoken": token},
            headers={"Cookie": f"{cookie}; csrftoken={token}"},
        )
    socket.close()

    assert during.statuses() == {200}, during.answers
    assert reply.status_code in (200, 302), (reply.status_code, web.output()[-3000:])
    replies = TimelineEntry.objects.for_tenant(tenant).filter(body="Sent while Redis was down")
    assert list(replies.values_list("delivery_status", flat=True)) == [DeliveryStatus.QUEUED]

    print(f"drill timings: outage {time.monotonic() - started:.1f} s")
    private_redis.start()
    socket = AgentSocket(ws_url, web.url, cookie)
    sweeps = subprocess.run([sys.executable, "-c", SWEEPS], cwd=ROOT, env=child_env(**env), capture_output=True, text=True)
    assert sweeps.returncode == 0, sweeps.stderr[-3000:]

    assert wait_until(lambda: conversations.filter(assignee=agent).count() == BEFORE + DURING, timeout=60)
    assert wait_until(lambda: replies.get().delivery_status == DeliveryStatus.SENT, timeout=60), (
        sweeps.stdout, worker.output()[-4000:])
    assert wait_until(worker.idle, timeout=30)
    missed = set(conversations.order_by("number")[BEFORE:].values_list("pk", flat=True))
    assert wait_until(lambda: missed <= socket.conversation_ids(), timeout=30)
    print(f"drill timings: caught up {time.monotonic() - started:.1f} s")
    live_list = requests.get(f"{web.url}/app/", headers={"Cookie": cookie, "X-Requested-With": "live"}, timeout=30)
    socket.close()

    sids = [form["MessageSid"] for form in forms]
    messages = TimelineEntry.objects.for_tenant(tenant).filter(kind="message", external_id__in=sids)
    assert (messages.count(), messages.values("external_id").distinct().count()) == (BEFORE + DURING,) * 2
    routed = TimelineEntry.objects.for_tenant(tenant).filter(event="routed").values("conversation").annotate(n=Count("id"))
    assert sorted(row["n"] for row in routed) == [1] * (BEFORE + DURING)
    assert [r["form"]["Body"] for r in fake_twilio.accepted()] == ["Sent while Redis was down"]
    assert live_list.status_code == 200
    assert all(form["Body"] in live_list.text for form in forms[BEFORE:])
