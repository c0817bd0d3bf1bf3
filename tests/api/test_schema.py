"""The OpenAPI schema: it generates cleanly, covers every /api/v1/ route, is served with its docs, and the API
keeps to it (a schemathesis run against the in-process WSGI app, on the real test database)."""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS, reset_generator_stats
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from conversations.services import InboundMessage, message_record_inbound
from omnidesk.lib.api_defaults import TokenRateThrottle
from routing.models import SlaPolicy, SlaTarget
from routing.sla import sla_apply
from tests.factories import InboxFactory, TeamFactory

API_PREFIX = "/api/v1/"
# Examples per operation: enough to hit odd input on every endpoint, small enough for ~30 s in all.
MAX_EXAMPLES = 12


def generate_schema() -> dict:
    reset_generator_stats()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema


def schema_problems() -> list[str]:
    return [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + _openapi_path(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + _openapi_path(pattern.pattern), pattern.callback


def _openapi_path(pattern) -> str:
    text = str(pattern)
    if text.startswith("^") or text.endswith("$"):  # a router's regex
        text = text.lstrip("^").rstrip("$")
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", text)
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", text)


def api_routes() -> set[str]:
    """Every /api/v1/ route of the URL conf with a DRF view that belongs in the schema (not the router's
    root page, not the `.json` format suffixes)."""
    routes = set()
    for route, callback in _walk(get_resolver().url_patterns, "/"):
        view_class = getattr(callback, "cls", None)
        if not route.startswith(API_PREFIX) or view_class is None or getattr(view_class, "schema", True) is None:
            continue
        if "{format}" in route or "\\." in route:
            continue
        routes.add(route)
    return routes


def shape(path: str) -> str:
    return re.sub(r"\{\w+\}", "{}", path)


def test_the_schema_generates_without_warnings_or_errors():
    schema = generate_schema()

    assert schema_problems() == []
    validate_schema(schema)


def test_the_schema_lists_every_api_route_of_the_url_conf():
    paths = set(generate_schema()["paths"])

    # drf-spectacular may name a router's `pk` after the model field (`id`): compare the shapes.
    assert {shape(route) for route in api_routes()} - {shape(path) for path in paths} == set()
    assert "/api/v1/me/" in paths


def test_every_operation_is_documented_to_need_a_token():
    schema = generate_schema()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"tokenAuth": []} in operation.get("security", []), f"{method.upper()} {path}"


def test_the_schema_and_the_docs_page_are_served(client, db):
    schema = client.get("/api/schema/?format=json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()


# --- schemathesis ---


def _operation_labels() -> list[str]:
    schema = schemathesis.openapi.from_dict(generate_schema())
    return sorted(result.ok().label for result in schema.get_all_operations())


@pytest.fixture
def api_app(tenant_admin, tenant, monkeypatch):
    """The WSGI app, a tenant with an inbox, a team, and a conversation (#1) under an SLA, and an admin's token."""
    from tests.api.conftest import token_client

    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"api": "100000/min"})
    # As Django's test client does: the handler must not close the test's connection (and its transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    inbox = InboxFactory(tenant=tenant, channel="sms", name="SMS", address="+15550100000")
    TeamFactory(tenant=tenant, name="Support").members.add(tenant_admin.membership)
    policy = SlaPolicy.objects.create(tenant=tenant, name="Standard")
    SlaTarget.objects.create(tenant=tenant, policy=policy, priority="normal", metric="first_response", seconds=600)
    result = message_record_inbound(
        tenant=tenant, inbox=inbox,
        message=InboundMessage(channel="sms", sender_kind="phone", sender_value="+12025550143", body="Where is my parcel?"),
    )
    sla_apply(conversation=result.conversation)
    client = token_client(tenant_admin)
    yield get_wsgi_application(), client._credentials["HTTP_AUTHORIZATION"]
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.parametrize("label", _operation_labels())
def test_the_api_keeps_to_its_schema(label, api_app, db):
    app, authorization = api_app
    schema = schemathesis.openapi.from_dict(generate_schema())
    operation = next(result.ok() for result in schema.get_all_operations() if result.ok().label == label)

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call(app=app, headers={"Authorization": authorization})
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    check()


def test_a_private_notes_answer_keeps_to_the_schema(api_app, db):
    """Found by a longer run: notes have no channel, direction or delivery status, and the schema said they must."""
    app, authorization = api_app
    schema = schemathesis.openapi.from_dict(generate_schema())
    operation = schema["/api/v1/conversations/{number}/messages/"]["POST"]
    case = operation.Case(path_parameters={"number": 1}, body={"text": "Called the courier.", "private": True},
                          media_type="application/json")

    response = case.call(app=app, headers={"Authorization": authorization})

    assert response.status_code == 201
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
