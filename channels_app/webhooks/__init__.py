"""Outgoing webhooks: tenant admins subscribe URLs to events; each event is stored as one delivery per matching
subscription after commit, then POSTed as signed JSON by Celery with retries (see README, "Outgoing webhooks").

`events.py` maps domain events to webhook events and builds the payload, `urls.py` checks target URLs,
`services.py` writes (deliveries, attempts, disabling, resending), `handlers.py` subscribes to domain events,
`tasks.py` holds the Celery entry points.
"""
