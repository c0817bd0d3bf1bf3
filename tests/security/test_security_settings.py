"""Security settings: login throttling, cookies, headers, CSRF on every form, and `check --deploy` clean."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from tests.conftest import PASSWORD

# ------------------------------------------------------------------------------------------------ login throttling


def _login(client, username, password, ip="10.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_repeated_wrong_passwords_lock_that_username_and_address_out(client, agent, caplog):
    answers = [_login(client, "agent@acme.test", "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]

    locked = _login(client, "agent@acme.test", PASSWORD)

    assert answers[:-1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert answers[-1] == 429
    assert locked.status_code == 429  # even the right password, until the lock expires
    assert b"Too many sign-in attempts" in locked.content
    assert b"Try again in 15 minutes" in locked.content
    assert "_auth_user_id" not in client.session
    assert any("locking out" in record.getMessage().lower() for record in caplog.records)


def test_the_lock_ignores_case_and_spaces_in_the_username(client, agent):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "Agent@ACME.test ", "wrong")

    assert _login(client, "agent@acme.test", PASSWORD).status_code == 429


def test_another_address_or_another_user_is_not_locked(client, agent, teammate):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "agent@acme.test", "wrong")

    assert _login(Client(), "agent@acme.test", PASSWORD, ip="10.0.0.2").status_code == 302
    assert _login(Client(), "teammate@acme.test", PASSWORD).status_code == 302


def test_a_right_password_before_the_limit_resets_the_count(client, agent):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "agent@acme.test", "wrong")
    assert _login(client, "agent@acme.test", PASSWORD).status_code == 302
    client.logout()

    answers = [_login(client, "agent@acme.test", "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT - 1)]

    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert _login(client, "agent@acme.test", PASSWORD).status_code == 302


def test_the_lock_expires_after_the_cool_off(client, agent, settings):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "agent@acme.test", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))

    assert _login(client, "agent@acme.test", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client, tenant_admin):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "admin@acme.test", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")

    response = client.post("/admin/login/", {"username": "admin@acme.test", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 429


# ------------------------------------------------------------------------------------------------ headers and cookies


def test_a_workspace_page_carries_the_security_headers(client, agent):
    client.force_login(agent)

    response = client.get("/app/", secure=True)

    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"].startswith("'self' 'unsafe-hashes'")
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"


def test_hsts_is_only_sent_over_https(client, agent):
    client.force_login(agent)

    assert "Strict-Transport-Security" not in client.get("/app/")


def test_the_one_allowed_inline_handler_is_the_one_the_templates_use(client, agent):
    """The CSP allows exactly one inline handler by its hash: every on*= attribute in the page must be it."""
    import base64
    import hashlib

    client.force_login(agent)
    html = client.get("/app/").content.decode()
    handlers = set(re.findall(r'\son[a-z]+="([^"]*)"', html))
    allowed = {
        base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() for code in handlers
    }

    assert handlers == {"this.form.submit()"}
    assert {f"'sha256-{digest}'" for digest in allowed} <= set(settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["script-src"])


def test_pages_load_no_inline_script_blocks(client, agent, supervisor):
    """A CSP without 'unsafe-inline' would silently break an inline <script>: there must be none (JSON data
    blocks do not run, so they are fine)."""
    client.force_login(supervisor)

    for path in ("/app/", "/app/profile/", "/analytics/", "/analytics/reports/", "/accounts/login/"):
        html = client.get(path).content.decode()
        assert re.findall(r'<script(?![^>]*\b(?:src=|type="application/json"))[^>]*>', html) == [], path


def test_the_session_and_csrf_cookies_are_httponly_and_samesite(client, agent):
    page = client.get("/accounts/login/")
    login = client.post("/accounts/login/", {"username": "agent@acme.test", "password": PASSWORD})

    csrf_cookie = page.cookies[settings.CSRF_COOKIE_NAME]
    session_cookie = login.cookies[settings.SESSION_COOKIE_NAME]
    assert csrf_cookie["httponly"] and session_cookie["httponly"]
    assert csrf_cookie["samesite"] == session_cookie["samesite"] == "Lax"


# ------------------------------------------------------------------------------------------------ CSRF on every form

# URL prefixes whose POSTs carry their own proof instead of a CSRF token, and why that is enough.
CSRF_EXEMPT = {
    "/hooks/twilio/": "Twilio's X-Twilio-Signature over the URL and form (channels_app/adapters/twilio_common)",
    "/hooks/voice/": "Twilio's X-Twilio-Signature (channels_app/adapters/twilio_voice)",
    "/hooks/email/": "the inbox's X-Omnidesk-Secret header",
    "/hooks/api/": "HMAC-SHA256 of the body in X-Omnidesk-Signature",
    "/chat/": "the widget: an allowed Origin (CORS) and the visitor token in Authorization, no cookies",
    # DRF views are exempt from the middleware; DRF's SessionAuthentication enforces CSRF for cookie users
    # itself (checked below), and token clients send no cookies.
    "/api/": "Authorization: Token, or DRF's own CSRF check for session users",
}


def _sample(pattern_text: str, converters: dict) -> str:
    """A concrete path for one route: each <converter:name> filled with a value it accepts."""

    def fill(match):
        name = match.group(2)
        converter = converters.get(name)
        for value in ("1", "x", str(uuid.uuid4()), "x.txt"):
            if converter is None or re.fullmatch(converter.regex, value):
                return value
        return "1"

    return re.sub(r"<(?:(\w+):)?(\w+)>", fill, pattern_text)


def _regex_sample(regex: str) -> str:
    text = re.sub(r"\(\?P<\w+>[^)]*\)", "1", regex)
    return text.replace("^", "").replace("$", "").replace("\\", "").replace("?", "")


def _all_paths(resolver=None, prefix: str = "") -> list[str]:
    resolver = resolver or get_resolver()
    paths = []
    for entry in resolver.url_patterns:
        route = getattr(entry.pattern, "_route", None)
        piece = _sample(route, entry.pattern.converters) if route is not None else _regex_sample(entry.pattern.regex.pattern)
        if isinstance(entry, URLResolver):
            paths += _all_paths(entry, prefix + piece)
        elif isinstance(entry, URLPattern):
            paths.append("/" + prefix + piece)
    return sorted(set(paths))


def _is_exempt(path: str) -> bool:
    return path.startswith(tuple(CSRF_EXEMPT))


@pytest.fixture
def csrf_client(tenant_admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_admin)
    return client


def test_every_form_refuses_a_post_without_a_csrf_token(csrf_client):
    checked, unresolved = [], []
    for path in _all_paths():
        try:
            resolve(path)
        except Resolver404:
            unresolved.append(path)
            continue
        if _is_exempt(path):
            continue
        response = csrf_client.post(path, {"anything": "1"})
        checked.append((path, response.status_code))

    assert [path for path, status in checked if status != 403] == []
    assert len(checked) > 60  # the workspace, analytics, profile, admin…: the walk really covers them
    # Regex routes (admin's app index, DRF's format suffixes) are not all filled in; none holds a form of ours.
    assert all(path.startswith(("/admin/", "/api/")) for path in unresolved), unresolved


def test_only_the_listed_prefixes_skip_csrf():
    """A view made csrf_exempt anywhere else fails here until it is listed with its reason."""
    exempt = []
    for path in _all_paths():
        try:
            match = resolve(path)
        except Resolver404:
            continue
        if getattr(match.func, "csrf_exempt", False):
            exempt.append(path)

    outside = [path for path in exempt if not _is_exempt(path)]
    # /csat/: the widget's JSON answer is token- and origin-bound; the page's own form is csrf_protect'ed
    # (covered by the walk above, which posts a form there).
    assert [path for path in outside if not path.startswith("/csat/")] == []


def test_the_api_refuses_a_session_post_without_a_csrf_token(csrf_client, tenant):
    response = csrf_client.post("/api/v1/customers/", {"name": "Mallory"}, content_type="application/json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# ------------------------------------------------------------------------------------------------ check --deploy

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "desk.example.com",
    "PUBLIC_BASE_URL": "https://desk.example.com",
    "FIELD_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzJieXRlcy0wMTI=",
    "DJANGO_SETTINGS_MODULE": "omnidesk.settings",
}


def _production(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SECURE_", "SESSION_", "CSRF_"))}
    env.update(PRODUCTION_ENV)
    return subprocess.run([sys.executable, *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_clean_and_cookies_are_secure_with_production_settings():
    code = (
        "import django, json; django.setup(); from django.core.management import call_command;"
        "call_command('check', deploy=True, fail_level='WARNING');"
        "from django.conf import settings as s; print(json.dumps({"
        "'session': [s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE],"
        "'csrf': [s.CSRF_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.CSRF_COOKIE_SAMESITE],"
        "'hsts': [s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS], 'proxy': list(s.SECURE_PROXY_SSL_HEADER)}))"
    )
    result = _production("-c", code)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "session": [True, True, "Lax"], "csrf": [True, True, "Lax"], "hsts": [31536000, True],
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


def test_lockouts_are_shown_to_superusers_only(client, tenant_admin, agent):
    """Access attempts name users and addresses of every tenant: a tenant's admin must not read them."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "agent@acme.test", "wrong")
    client.force_login(tenant_admin)

    assert client.get("/admin/axes/accessattempt/").status_code == 403
