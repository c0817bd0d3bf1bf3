"""Cross-tenant isolation, generated from the URL conf and from Django admin's registry.

Tenant A's admin (the strongest role), by session and for the API also by token, tries tenant B's real
objects in every path parameter of every pattern, with every method, and B's ids in request bodies and query
strings. Each answer must be a refusal (or harmless) with none of B's marker strings, and B's rows must be
exactly as they were. A new pattern whose parameter the tables below do not know fails with a message
saying where to add it; a new public endpoint (a secret in the URL) must be added to PUBLIC with a reason.
Hand-written checks of the same area: tests/test_tenant_isolation.py; websockets: test_cross_tenant_websockets.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from unittest import mock

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.db import transaction
from django.test import Client, override_settings
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient
from twilio.request_validator import RequestValidator

from channels_app.inbound import inbox_cache_clear
from conversations import attachments
from customers.models import Tenant
from omnidesk.lib.api_defaults import TokenRateThrottle
from tests.channels.api.conftest import sign as sign_api_body
from tests.security.cross_tenant_world import (
    API_INBOX_SECRET,
    CHAT_SITE,
    EMAIL_WEBHOOK_SECRET,
    TWILIO_AUTH_TOKEN,
    TenantWorld,
    digest_changes,
    tenant_rows_digest,
    tenant_world_build,
)
from tests.security.urlconf_walk import Endpoint, endpoints

# --- What each path parameter names ----------------------------------------------------------------

# A parameter that means the same object wherever it appears.
BY_PARAMETER = {
    "number": lambda w: w.conversation.number,
    "customer_id": lambda w: w.customer.pk,
    "attachment_id": lambda w: w.attachment.pk,
    "saved_filter_id": lambda w: w.saved_filter.pk,
    "token_id": lambda w: w.api_token.pk,
}
# A parameter whose object depends on the view (dotted view path, parameter name).
BY_VIEW = {
    ("conversations.views.conversation_cancel_scheduled", "entry_id"): lambda w: w.scheduled_entry.pk,
    ("channels_app.adapters.twilio_voice.agent_views.call_followup", "entry_id"): lambda w: w.call_entry.pk,
    ("channels_app.adapters.twilio_voice.agent_views.softphone_token", "key"): lambda w: w.voice_inbox.key,
    ("customers.api.CustomerViewSet", "pk"): lambda w: w.customer.pk,
    ("channels_app.api.InboxViewSet", "pk"): lambda w: w.email_inbox.pk,
    ("routing.api.TeamViewSet", "pk"): lambda w: w.team.pk,
}
# Parameters that name no tenant object.
NOT_AN_OBJECT = {"format": "json"}

# Public endpoints: the secret in the URL (or a signature) is the credential, so tenant A's session is
# irrelevant; each kind has its own tampering check in test_a_public_endpoint_refuses_another_tenants_secret.
PUBLIC = {
    "channels_app.adapters.twilio_common.views.messages_hook": ("twilio", "Twilio signs with the inbox's auth token"),
    "channels_app.adapters.twilio_common.views.status_hook": ("twilio", "Twilio signs with the inbox's auth token"),
    "channels_app.adapters.twilio_voice.views.incoming_call": ("twilio", "Twilio signs with the inbox's auth token"),
    "channels_app.adapters.twilio_voice.views.dial_result": ("twilio", "Twilio signs with the inbox's auth token"),
    "channels_app.adapters.twilio_voice.views.voicemail_done": ("twilio", "Twilio signs with the inbox's auth token"),
    "channels_app.adapters.twilio_voice.views.status_callback": ("twilio", "Twilio signs with the inbox's auth token"),
    "channels_app.adapters.twilio_voice.views.recording_callback": ("twilio", "Twilio signs with the inbox's token"),
    "channels_app.adapters.twilio_voice.views.outbound_answered": ("twilio", "Twilio signs with the inbox's token"),
    "channels_app.adapters.twilio_voice.views.outbound_dial_result": ("twilio", "Twilio signs with the inbox's token"),
    "channels_app.adapters.twilio_voice.views.outbound_status": ("twilio", "Twilio signs with the inbox's token"),
    "channels_app.adapters.email.views.inbound": ("email", "the mail relay sends the inbox's webhook secret"),
    "channels_app.adapters.api.views.messages": ("api", "the bot signs the body with the inbox's secret"),
    "channels_app.adapters.web_chat.views.chat_config": ("chat_public", "the widget's public settings, by design"),
    "channels_app.adapters.web_chat.views.chat_session": ("chat_session", "anyone may start a chat on a site"),
    "channels_app.adapters.web_chat.views.chat_messages": ("chat_visitor", "the visitor's bearer token"),
    "channels_app.adapters.web_chat.views.chat_typing": ("chat_visitor", "the visitor's bearer token"),
    "channels_app.adapters.web_chat.views.chat_read": ("chat_visitor", "the visitor's bearer token"),
    "channels_app.adapters.web_chat.views.chat_offline": ("chat_visitor", "the visitor's bearer token"),
    "channels_app.adapters.web_chat.widget.widget_script": ("widget", "the loader script is public, by design"),
    "conversations.csat_views.csat_survey": ("csat", "the survey's random token is the credential"),
    "conversations.views.attachment_public": ("file_link", "a signed, expiring link for providers"),
    "django.contrib.auth.views.PasswordResetConfirmView": ("password_reset", "Django's signed reset link"),
}
# Views that take no tenant data in a body (sign-in flows): their POSTs are not probed with B's ids.
NO_TENANT_BODY = {
    "django.contrib.auth.views.LoginView", "django.contrib.auth.views.LogoutView",
    "django.contrib.auth.views.PasswordResetView", "customers.views.tenant_switch",  # tests/test_tenant_isolation.py
}

WRITE_METHODS = ("post", "put", "patch")
# A refusal: not found, forbidden, or the method/input is not accepted. A redirect is not a refusal here:
# A's admin is signed in, so a redirect means the view went ahead.
REFUSED = {400, 403, 404, 405}

ALL_ENDPOINTS = endpoints(skip_prefixes=("admin/",))


def object_params(endpoint: Endpoint) -> tuple[str, ...]:
    return tuple(name for name in endpoint.params if name not in NOT_AN_OBJECT)


def value_for(endpoint: Endpoint, name: str, world: TenantWorld):
    if name in NOT_AN_OBJECT:
        return NOT_AN_OBJECT[name]
    factory = BY_VIEW.get((endpoint.view, name)) or BY_PARAMETER.get(name)
    if factory is None:
        pytest.fail(
            f"{endpoint.route} ({endpoint.view}) has the path parameter {name!r} that the cross-tenant suite does "
            f"not know: add it to BY_PARAMETER or BY_VIEW in tests/security/test_cross_tenant.py (and the object "
            f"to tests/security/cross_tenant_world.py), or to PUBLIC with a reason if a secret in the URL guards it."
        )
    return factory(world)


def url_with(endpoint: Endpoint, worlds: dict[str, TenantWorld]) -> str:
    """`worlds[name]` says whose object fills each parameter."""
    return endpoint.url({name: value_for(endpoint, name, worlds[name]) for name in endpoint.params})


PRIVATE = [e for e in ALL_ENDPOINTS if e.view not in PUBLIC]
WITH_OBJECTS = [e for e in PRIVATE if object_params(e)]
WITHOUT_OBJECTS = [e for e in PRIVATE if not object_params(e)]
PUBLIC_ENDPOINTS = [e for e in ALL_ENDPOINTS if e.view in PUBLIC]


def auths(endpoint: Endpoint) -> list[str]:
    return ["session", "token"] if endpoint.is_api else ["session"]


def probed_methods(endpoint: Endpoint) -> tuple[str, ...]:
    """The view's own methods, and DELETE besides (no view of ours should delete on a method it does not declare)."""
    return tuple(dict.fromkeys([*endpoint.methods(), "delete"]))


def write_methods(endpoint: Endpoint) -> tuple[str, ...]:
    return tuple(method for method in endpoint.methods() if method in WRITE_METHODS)


def one_auth(endpoint: Endpoint) -> list[str]:
    """Bodies and lists: the API by token only (its session path is probed with B's objects in the path)."""
    return ["token"] if endpoint.is_api else ["session"]


# --- One data set for the whole module -------------------------------------------------------------


@dataclass
class Worlds:
    ours: TenantWorld  # tenant A: the prober's
    theirs: TenantWorld  # tenant B: must stay out of reach
    theirs_digest: dict[str, str]  # B's rows as every test starts (each test is rolled back)
    session_cookie: str  # A's admin, signed in once


@pytest.fixture(scope="module")
def worlds(django_db_setup, django_db_blocker, tmp_path_factory):
    """Both tenants, built once inside a transaction that is rolled back after the module (each test runs in
    a savepoint of it). The API rate limit is off: hundreds of probes by one token are the point here."""
    media = tmp_path_factory.mktemp("cross-tenant-media")
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=media, TWILIO_API_BASE_URL="http://127.0.0.1:9"),
        mock.patch.object(TokenRateThrottle, "allow_request", return_value=True),
    ):
        inbox_cache_clear()
        with transaction.atomic():
            ours = tenant_world_build(slug="acme-probe", marker="ACME-OWN", conversation_count=1,
                                      phone_prefix="+1555010")
            # More conversations than A: B's newest number exists in B only.
            theirs = tenant_world_build(slug="globex-probe", marker="GLOBEX-SECRET", conversation_count=3,
                                        phone_prefix="+4420790")
            signed_in = Client()
            signed_in.force_login(ours.admin)
            yield Worlds(ours=ours, theirs=theirs, theirs_digest=tenant_rows_digest(theirs.tenant),
                         session_cookie=signed_in.cookies[settings.SESSION_COOKIE_NAME].value)
            transaction.set_rollback(True)
        inbox_cache_clear()


@pytest.fixture
def probe(worlds, db):
    return Probe(worlds)


class Probe:
    def __init__(self, worlds: Worlds) -> None:
        self.ours, self.theirs = worlds.ours, worlds.theirs
        self.before = worlds.theirs_digest
        self.session_cookie = worlds.session_cookie

    def client(self, auth: str):
        if auth == "token":
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.ours.api_key}")
            return client
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = self.session_cookie
        return client

    def body(self, endpoint: Endpoint) -> dict:
        """B's ids under every field name a form or serializer of ours takes an object by."""
        theirs = self.theirs
        other = theirs.customer.pk if endpoint.view.startswith("customers.") else theirs.conversation.number
        return {
            "status": "closed", "priority": "urgent", "tags": "probe", "body": "cross-tenant probe",
            "text": "cross-tenant probe", "channel": "email", "name": "probe", "kind": "email",
            "value": "probe@example.com", "survivor": "other", "other": other, "assignee": theirs.admin.pk,
            "team": theirs.team.pk, "team_id": theirs.team.pk, "inbox": theirs.email_inbox.pk,
            "inbox_id": theirs.email_inbox.pk, "customer": theirs.customer.pk, "customer_id": theirs.customer.pk,
            "conversation": theirs.conversation.number, "number": theirs.voice_inbox.address, "ring": "phone",
            "query": "view=all", "presence": "online",
        }

    def send(self, client, method: str, url: str, endpoint: Endpoint, *, follow: bool = False):
        if method not in WRITE_METHODS:
            return getattr(client, method)(url, follow=follow)
        if endpoint.is_api:
            return getattr(client, method)(url, data=json.dumps(self.body(endpoint)),
                                           content_type="application/json", follow=follow)
        if method == "post":
            return client.post(url, data=self.body(endpoint), follow=follow)
        return getattr(client, method)(url, data=json.dumps(self.body(endpoint)), content_type="application/json",
                                       follow=follow)

    def assert_nothing_of_theirs(self, response, *, texts: list[str] | None = None) -> None:
        content = b"".join(response.streaming_content) if response.streaming else response.content
        shown = content.decode(errors="replace")
        for text in texts or [self.theirs.marker]:
            assert text not in shown, f"the response shows {text!r} of the other tenant"
        changed = digest_changes(self.before, tenant_rows_digest(self.theirs.tenant))
        assert changed == [], f"the other tenant's rows changed: {changed}"


def _ids(endpoints_: list[Endpoint], extra) -> list:
    return [pytest.param(e, *rest, id=f"{e.route}-{'-'.join(rest)}") for e in endpoints_ for rest in extra(e)]


# --- The tables stay complete ----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", WITH_OBJECTS, ids=[e.route for e in WITH_OBJECTS])
def test_every_path_parameter_names_a_known_object(endpoint):
    unknown = [name for name in object_params(endpoint)
               if (endpoint.view, name) not in BY_VIEW and name not in BY_PARAMETER]

    assert unknown == [], (
        f"{endpoint.route} ({endpoint.view}): add {unknown} to BY_PARAMETER or BY_VIEW in "
        f"tests/security/test_cross_tenant.py, or the view to PUBLIC with a reason"
    )


def test_every_table_entry_is_still_routed():
    routed = {(e.view, name) for e in ALL_ENDPOINTS for name in e.params}
    views = {e.view for e in ALL_ENDPOINTS}

    assert [key for key in BY_VIEW if key not in routed] == []
    assert [view for view in PUBLIC if view not in views] == []
    assert [view for view in NO_TENANT_BODY if view not in views] == []


# --- Session and token: B's objects in the path ---------------------------------------------------


@pytest.mark.parametrize(("endpoint", "auth", "method"),
                         _ids(WITH_OBJECTS, lambda e: [(a, m) for a in auths(e) for m in probed_methods(e)]))
def test_another_tenants_object_in_the_path_is_refused(probe, endpoint, auth, method):
    url = url_with(endpoint, dict.fromkeys(endpoint.params, probe.theirs))

    response = probe.send(probe.client(auth), method, url, endpoint)

    assert response.status_code in REFUSED, f"{method.upper()} {url} answered {response.status_code}"
    probe.assert_nothing_of_theirs(response)


MIXED = [(e, name) for e in WITH_OBJECTS if len(object_params(e)) > 1 for name in object_params(e)]


@pytest.mark.parametrize(("endpoint", "theirs_param", "method"),
                         [pytest.param(e, name, m, id=f"{e.route}-{name}-{m}")
                          for e, name in MIXED for m in probed_methods(e)])
def test_one_of_another_tenants_objects_among_ours_is_not_reached(probe, endpoint, theirs_param, method):
    owners = {name: probe.theirs if name == theirs_param else probe.ours for name in endpoint.params}
    url = url_with(endpoint, owners)

    response = probe.send(probe.client("session"), method, url, endpoint, follow=True)

    assert response.status_code < 500
    probe.assert_nothing_of_theirs(response)


# --- B's ids in bodies and query strings, on our own objects ---------------------------------------

BODY_PROBED = [e for e in PRIVATE if e.view not in NO_TENANT_BODY]


@pytest.mark.parametrize(("endpoint", "auth", "method"),
                         _ids(BODY_PROBED, lambda e: [(a, m) for a in one_auth(e) for m in write_methods(e)]))
def test_another_tenants_ids_in_the_body_change_none_of_their_rows(probe, endpoint, auth, method):
    url = url_with(endpoint, dict.fromkeys(endpoint.params, probe.ours))

    response = probe.send(probe.client(auth), method, url, endpoint, follow=auth == "session")

    assert response.status_code < 500
    probe.assert_nothing_of_theirs(response)


def list_query(theirs: TenantWorld) -> dict:
    """B's ids in every filter a list of ours takes, and a search word only B's subjects hold with its marker."""
    return {
        "inbox": theirs.email_inbox.pk, "team": theirs.team.pk, "customer": theirs.customer.pk,
        "assignee": theirs.admin.pk, "agent": theirs.admin.pk, "conversation": theirs.conversation.number,
        "channel": "email", "view": "all", "q": "zebra", "search": "zebra",
    }


@pytest.mark.parametrize(("endpoint", "auth", "query"),
                         _ids(WITHOUT_OBJECTS, lambda e: [(a, q) for a in one_auth(e) for q in ("plain", "their-ids")]))
def test_a_list_shows_none_of_another_tenants_rows(probe, endpoint, auth, query):
    url = url_with(endpoint, dict.fromkeys(endpoint.params, probe.ours))
    params = list_query(probe.theirs) if query == "their-ids" else {}

    response = probe.client(auth).get(url, params)

    assert response.status_code < 500
    probe.assert_nothing_of_theirs(response)


def test_the_probes_can_see_our_own_rows(probe):
    """The marker checks would pass vacuously if A's admin saw nothing at all."""
    client = probe.client("session")

    page = client.get(f"/app/conversations/{probe.ours.conversation.number}/")
    listed = probe.client("token").get("/api/v1/customers/")

    assert page.status_code == 200 and probe.ours.marker in page.content.decode()
    assert listed.status_code == 200 and probe.ours.marker in listed.content.decode()


# --- Public endpoints: another tenant's secret with our credentials --------------------------------


def _twilio(probe: Probe, endpoint: Endpoint):
    """B's inbox key, signed with A's auth token (what A's admin knows)."""
    inbox = probe.theirs.voice_inbox if "/voice/" in endpoint.route else probe.theirs.sms_inbox
    path = endpoint.url({"key": inbox.key})
    form = {"MessageSid": "SM" + "1" * 32, "CallSid": "CA" + "1" * 32, "AccountSid": inbox.settings["account_sid"],
            "From": "+12025550143", "To": inbox.address, "Body": "probe", "NumMedia": "0",
            "MessageStatus": "delivered", "CallStatus": "completed"}
    signature = RequestValidator(probe.ours.slug_secret(TWILIO_AUTH_TOKEN)).compute_signature(
        "http://testserver" + path, form)
    return Client().post(path, data=form, HTTP_X_TWILIO_SIGNATURE=signature), {403}


def _email(probe: Probe, endpoint: Endpoint):
    path = endpoint.url({"key": probe.theirs.email_inbox.key})
    raw = b"From: probe@example.com\r\nTo: x@example.com\r\nSubject: probe\r\nMessage-ID: <p@x>\r\n\r\nprobe\r\n"
    return Client().post(path, data=raw, content_type="message/rfc822",
                         HTTP_X_OMNIDESK_SECRET=probe.ours.slug_secret(EMAIL_WEBHOOK_SECRET)), {401, 403}


def _api(probe: Probe, endpoint: Endpoint):
    path = endpoint.url({"key": probe.theirs.api_inbox.key})
    body = json.dumps({"external_id": "probe-1", "customer": {"identifier": "probe"}, "text": "probe"}).encode()
    signature = sign_api_body(probe.ours.slug_secret(API_INBOX_SECRET), body)
    return Client().post(path, data=body, content_type="application/json",
                         HTTP_X_OMNIDESK_SIGNATURE=signature), {401, 403}


def _chat_visitor(probe: Probe, endpoint: Endpoint):
    """A's visitor token on B's chat inbox."""
    path = endpoint.url({"key": probe.theirs.chat_inbox.key})
    return Client().post(path, data=json.dumps({"body": "probe", "email": "probe@example.com"}),
                         content_type="application/json", HTTP_ORIGIN=CHAT_SITE,
                         HTTP_AUTHORIZATION=f"Visitor {probe.ours.chat_visitor_token}"), {401, 403}


def _csat(probe: Probe, endpoint: Endpoint):
    token = probe.theirs.csat_survey.token[:-1] + "y"  # tampered
    values = {"token": token, "score": 5}
    return Client().post(endpoint.url({k: v for k, v in values.items() if k in endpoint.params}),
                         {"score": 1, "comment": "probe"}), {403, 404}


def _file_link(probe: Probe, endpoint: Endpoint):
    """A link validly signed for A's tenant but naming B's attachment (as if an id were swapped before signing)."""
    token = signing.dumps([probe.ours.tenant.pk, probe.theirs.attachment.pk, 2**40], salt=attachments.SALT)
    return Client().get(endpoint.url({"token": token, "filename": probe.theirs.attachment.filename})), {404}


def _password_reset(probe: Probe, endpoint: Endpoint):
    """B's admin's uid with a reset token made for A's admin."""
    uid = urlsafe_base64_encode(force_bytes(probe.theirs.admin.pk))
    token = default_token_generator.make_token(probe.ours.admin)
    response = Client().get(endpoint.url({"uidb64": uid, "token": token}))
    assert response.context["validlink"] is False
    return response, {200}


PUBLIC_CHECKS = {"twilio": _twilio, "email": _email, "api": _api, "chat_visitor": _chat_visitor, "csat": _csat,
                 "file_link": _file_link, "password_reset": _password_reset}
PUBLIC_BY_DESIGN = {"chat_public", "chat_session", "widget"}


@pytest.mark.parametrize("endpoint", [e for e in PUBLIC_ENDPOINTS if PUBLIC[e.view][0] in PUBLIC_CHECKS],
                         ids=lambda e: e.route)
def test_a_public_endpoint_refuses_another_tenants_secret(probe, endpoint):
    response, refused = PUBLIC_CHECKS[PUBLIC[endpoint.view][0]](probe, endpoint)

    assert response.status_code in refused, f"{endpoint.route} answered {response.status_code}: {response.content[:200]}"
    probe.assert_nothing_of_theirs(response)


def private_texts(world: TenantWorld) -> list[str]:
    """What a public page must never show (the inbox's and tenant's names may appear in a widget)."""
    return [world.conversation.subject, world.customer.name, world.note.body, world.scheduled_entry.body,
            world.admin.membership.display_name]


@pytest.mark.parametrize("endpoint", [e for e in PUBLIC_ENDPOINTS if PUBLIC[e.view][0] in PUBLIC_BY_DESIGN],
                         ids=lambda e: e.route)
def test_a_public_by_design_endpoint_shows_nothing_private_and_keeps_visitors_apart(probe, endpoint):
    path = endpoint.url({"key": probe.theirs.chat_inbox.key})
    client = Client()
    if PUBLIC[endpoint.view][0] == "chat_session":
        # A's visitor token offered to B's inbox must not resume A's visitor there: B gets a new one.
        response = client.post(path, data=json.dumps({"visitor_token": probe.ours.chat_visitor_token}),
                               content_type="application/json", HTTP_ORIGIN=CHAT_SITE)
        assert response.status_code == 200
        assert response.json()["visitor_token"] != probe.ours.chat_visitor_token
    else:
        response = client.get(path, HTTP_ORIGIN=CHAT_SITE)
        assert response.status_code == 200
    content = response.content.decode()
    assert [text for text in private_texts(probe.theirs) if text in content] == []


def test_every_public_kind_has_a_check():
    assert {kind for kind, _ in PUBLIC.values()} <= PUBLIC_CHECKS.keys() | PUBLIC_BY_DESIGN


# --- Django admin, from its registry ---------------------------------------------------------------

# Registered models that hold no tenant's data, with why they may stay out of the admin probes.
ADMIN_NOT_TENANT_DATA = {
    "auth.group": "permission groups are global and hold no tenant's rows",
    "axes.accessattempt": "failed logins: superusers only (a tenant admin has no permission on them)",
    "axes.accessfailurelog": "failed logins: superusers only",
    "axes.accesslog": "logins: superusers only",
}
ADMIN_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.label_lower not in ADMIN_NOT_TENANT_DATA),
    key=lambda model: model._meta.label_lower,
)


def their_admin_object(model, theirs: TenantWorld):
    if model is Tenant:
        return theirs.tenant
    if model is type(theirs.admin):
        return theirs.admin
    found = model.objects.filter(tenant=theirs.tenant).order_by("pk").first()
    if found is None:
        pytest.fail(f"No {model._meta.label} row of the other tenant: add one in tests/security/cross_tenant_world.py "
                    f"so its admin pages are probed (or list the model in ADMIN_NOT_TENANT_DATA with a reason).")
    return found


def admin_url(model, suffix: str) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m._meta.label_lower)
def test_an_admin_changelist_shows_none_of_another_tenants_rows(probe, model):
    their_admin_object(model, probe.theirs)  # the check below would pass vacuously without one

    response = probe.client("session").get(admin_url(model, ""))

    assert response.status_code in {200, 403}
    probe.assert_nothing_of_theirs(response)


# The delete page's GET shows what the change page shows; its POST is the one that could do harm.
ADMIN_OBJECT_PAGES = [("change/", "get"), ("change/", "post"), ("history/", "get"), ("delete/", "post")]


@pytest.mark.parametrize(("model", "page", "method"),
                         [pytest.param(m, p, meth, id=f"{m._meta.label_lower}-{p}{meth}")
                          for m in ADMIN_MODELS for p, meth in ADMIN_OBJECT_PAGES])
def test_an_admin_page_of_another_tenants_object_is_refused(probe, model, page, method):
    obj = their_admin_object(model, probe.theirs)
    client = probe.client("session")
    url = admin_url(model, f"{obj.pk}/{page}")

    response = client.post(url, {"post": "yes", "name": "taken over"}) if method == "post" else client.get(url)

    # The admin redirects to its index ("doesn't exist. Perhaps it was deleted?") for an object out of reach.
    assert response.status_code in {302, 403, 404}
    if response.status_code == 302:
        assert response["Location"] == "/admin/"
    probe.assert_nothing_of_theirs(response)
