"""Drill: Postgres crashes and comes back during a burst of inbound SMS.

The web server (uvicorn, with the production psycopg pool) and a Celery worker run against a private
Postgres 15 cluster (a copy of this run's test database) that the drill stops with `pg_ctl -m immediate`
(a crash: every session cut, nothing flushed) and starts again three seconds later. The machine's own
Postgres is never touched. Senders retry the way Twilio does. Then the drill counts: the webhooks answered
200 or 503 (never a 500), each message has exactly one receipt and one timeline entry, and no customer,
conversation or identity exists twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from redis import Redis

from tests.channels.twilio.conftest import twilio_inbox
from tests.drills.conftest import ROOT, Burst, child_env, run_database_url, sms_form, wait_until

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]

MESSAGES = 40

SWEEP = (
    "import django; django.setup(); from datetime import timedelta; "
    "from channels_app.receipts import receipts_sweep as sweep; "
    "print(sweep(older_than=timedelta(0)))"
)


@pytest.fixture
def own_queue():
    """The child processes get a run id (so a broker queue) of their own: their tasks name rows of the
    private cluster and must not reach another drill's worker."""
    run_id = f"{settings.CELERY_TASK_DEFAULT_QUEUE.removeprefix('omnidesk-test-')}-pg{uuid.uuid4().hex[:6]}"
    yield run_id
    with Redis.from_url(settings.CELERY_BROKER_URL) as redis:
        redis.delete(f"omnidesk-test-{run_id}")


def test_webhooks_answer_503_while_postgres_is_down_and_retries_store_each_message_once(
    tenant, private_postgres, start_web, start_worker, own_queue
):
    inbox = twilio_inbox(tenant)
    private_postgres.load_copy_of(run_database_url())
    env = {"DATABASE_URL": private_postgres.url, "DATABASE_POOL_MAX": "4", "OMNIDESK_TEST_RUN_ID": own_queue}
    web = start_web(**env)
    start_worker(**env)
    count = private_postgres.query
    run = uuid.uuid4().hex[:8]
    burst = Burst(web.url, f"/hooks/twilio/{inbox.key}/messages/", [sms_form(i, run=run) for i in range(MESSAGES)])
    outage: dict[str, float] = {}

    def crash_postgres_mid_burst(burst: Burst) -> None:
        assert wait_until(lambda: count("SELECT count(*) FROM channels_app_inboundreceipt")[0][0] >= MESSAGES // 4)
        private_postgres.stop("immediate")
        outage["sent_at_crash"] = burst.sent
        time.sleep(3)
        private_postgres.start()

    burst.run(pace=0.2, during=crash_postgres_mid_burst)

    assert outage["sent_at_crash"] < MESSAGES
    assert 503 in burst.statuses() and burst.statuses() <= {200, 503}, (burst.statuses(), web.output()[-3000:])
    assert set(burst.last_status_per_message().values()) == {200}
    # What beat does every 30 s: store the receipts whose task failed while the database was down.
    subprocess.run([sys.executable, "-c", SWEEP], cwd=ROOT, env=child_env(**env), check=True, capture_output=True)
    assert wait_until(lambda: count(
        "SELECT count(*) FROM channels_app_inboundreceipt WHERE processed_at IS NULL")[0][0] == 0, timeout=60)

    sids = [form["MessageSid"] for form in burst.forms]
    receipts = count("SELECT count(*), count(DISTINCT provider_id), count(*) FILTER (WHERE error <> '') "
                     "FROM channels_app_inboundreceipt WHERE provider_id = ANY(%s)", (sids,))
    messages = count("SELECT count(*), count(DISTINCT external_id) FROM conversations_timelineentry "
                     "WHERE kind = 'message' AND external_id = ANY(%s)", (sids,))
    assert receipts == [(MESSAGES, MESSAGES, 0)]
    assert messages == [(MESSAGES, MESSAGES)]
    assert count("SELECT count(*) FROM conversations_conversation WHERE tenant_id = %s", (tenant.pk,)) == [(MESSAGES,)]
    assert count("SELECT count(*) FROM customers_customer WHERE tenant_id = %s", (tenant.pk,)) == [(MESSAGES,)]
    assert count("SELECT count(*), count(DISTINCT value) FROM customers_identity WHERE tenant_id = %s",
                 (tenant.pk,)) == [(MESSAGES, MESSAGES)]
