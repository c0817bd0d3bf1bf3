from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError

from channels_app.models import WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus, WebhookSubscription
from channels_app.webhooks import services
from channels_app.webhooks.services import webhook_deliver, webhook_subscription_disable
from channels_app.webhooks.urls import check_webhook_url
from tests.channels.webhooks.conftest import customer_writes, make_subscription

ADD_URL = "/admin/channels_app/webhooksubscription/add/"


def add_subscription(client, tenant, url: str, events=("message.created",)):
    return client.post(ADD_URL, {"tenant": tenant.pk, "url": url, "description": "CRM", "events": list(events)},
                       follow=True)


def test_an_admin_adds_a_subscription_and_sees_its_secret_once(client, tenant, tenant_admin, receiver):
    client.force_login(tenant_admin)

    response = add_subscription(client, tenant, receiver.url)

    subscription = WebhookSubscription.objects.for_tenant(tenant).get()
    secret = subscription.get_secret()
    assert secret.startswith("whsec_")
    assert secret in " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert secret not in subscription.secret_encrypted
    assert subscription.events == ["message.created"]
    change_page = client.get(f"/admin/channels_app/webhooksubscription/{subscription.pk}/change/").content.decode()
    assert secret not in change_page
    assert secret[-4:] in change_page


def test_an_unknown_event_or_a_non_http_url_is_a_form_error(client, tenant, tenant_admin):
    client.force_login(tenant_admin)

    for response in (add_subscription(client, tenant, "ftp://example.com/hook"),
                     add_subscription(client, tenant, "https://example.com/hook", events=["note.created"])):
        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_loopback_and_private_urls_are_refused_in_production(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False

    for url in ("http://127.0.0.1:8000/hook", "http://localhost/hook", "http://10.1.2.3/", "http://[::1]/",
                "http://169.254.169.254/latest/meta-data/", "http://192.168.0.10/"):
        with pytest.raises(ValidationError, match="public addresses only"):
            check_webhook_url(url)
    check_webhook_url("https://93.184.215.14/hooks")


def test_loopback_is_allowed_where_the_setting_says_so(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True

    check_webhook_url("http://127.0.0.1:8000/hook")
    with pytest.raises(ValidationError):
        check_webhook_url("file:///etc/passwd")


def test_another_tenants_admin_cannot_see_or_change_the_subscription(client, tenant, outsider, receiver):
    subscription = make_subscription(tenant, receiver.url)
    client.force_login(outsider)

    listing = client.get("/admin/channels_app/webhooksubscription/")
    change = client.get(f"/admin/channels_app/webhooksubscription/{subscription.pk}/change/")

    assert receiver.url not in listing.content.decode()
    assert change.status_code in (302, 404)


def delivered_once(tenant, receiver, capture, monkeypatch) -> WebhookDelivery:
    monkeypatch.setattr(services, "webhook_deliveries_enqueue", lambda ids: None)
    make_subscription(tenant, receiver.url, events=["message.created"])
    with capture(execute=True):
        customer_writes(tenant)
    delivery = WebhookDelivery.objects.for_tenant(tenant).get()
    webhook_deliver(delivery_id=delivery.pk)
    monkeypatch.undo()
    return delivery


def test_resend_makes_a_new_attempt_with_the_same_delivery_id_and_body(
    client, tenant, tenant_admin, receiver, celery_eager, django_capture_on_commit_callbacks, monkeypatch
):
    delivery = delivered_once(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    client.force_login(tenant_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/channels_app/webhookdelivery/",
                               {"action": "resend", "_selected_action": [delivery.pk]})

    assert response.status_code == 302
    first, second = receiver.requests
    assert first.headers["X-Omnidesk-Delivery"] == second.headers["X-Omnidesk-Delivery"] == str(delivery.uuid)
    assert first.body == second.body
    assert list(WebhookAttempt.objects.for_tenant(tenant).filter(delivery=delivery).values_list("number", "succeeded")) == [
        (1, True), (2, True),
    ]
    detail = client.get(f"/admin/channels_app/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "Attempt" in detail and str(delivery.uuid) in detail


def test_a_resend_that_fails_is_tried_once_and_does_not_disable_the_subscription(
    client, tenant, tenant_admin, receiver, celery_eager, django_capture_on_commit_callbacks, monkeypatch, mailoutbox
):
    delivery = delivered_once(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    receiver.answer(500)
    client.force_login(tenant_admin)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/channels_app/webhookdelivery/", {"action": "resend", "_selected_action": [delivery.pk]})

    delivery.refresh_from_db()
    assert (delivery.status, len(receiver.requests)) == (WebhookDeliveryStatus.FAILED, 2)
    assert delivery.subscription.is_active
    assert mailoutbox == []


def test_another_tenants_admin_cannot_resend(client, tenant, outsider, receiver, celery_eager,
                                             django_capture_on_commit_callbacks, monkeypatch):
    delivery = delivered_once(tenant, receiver, django_capture_on_commit_callbacks, monkeypatch)
    client.force_login(outsider)

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/channels_app/webhookdelivery/", {"action": "resend", "_selected_action": [delivery.pk]})

    assert len(receiver.requests) == 1


def test_re_enable_clears_the_disabled_state(client, tenant, tenant_admin, receiver, django_capture_on_commit_callbacks):
    subscription = make_subscription(tenant, receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        webhook_subscription_disable(subscription=subscription, reason="Receiver gone for a day")
    client.force_login(tenant_admin)
    listing = client.get("/admin/channels_app/webhooksubscription/").content.decode()
    assert "Receiver gone for a day" in listing

    client.post("/admin/channels_app/webhooksubscription/", {"action": "reenable", "_selected_action": [subscription.pk]})

    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_at, subscription.disabled_reason) == (True, None, "")
    assert subscription.consecutive_failures == 0


def test_editing_the_events_keeps_the_secret(client, tenant, tenant_admin, receiver):
    subscription = make_subscription(tenant, receiver.url, events=["message.created"])
    secret = subscription.get_secret()
    client.force_login(tenant_admin)

    response = client.post(f"/admin/channels_app/webhooksubscription/{subscription.pk}/change/", {
        "tenant": tenant.pk, "url": receiver.url, "description": "", "events": ["sla.breached", "csat.received"],
    })

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.events, subscription.get_secret()) == (["sla.breached", "csat.received"], secret)


def test_the_model_refuses_unknown_or_no_events(tenant, receiver):
    for events in ([], ["note.created"], "message.created"):
        with pytest.raises(ValidationError):
            WebhookSubscription(tenant=tenant, url=receiver.url, events=events).full_clean(exclude=["secret_encrypted"])
