"""The customers API: list and search, detail, create, update, addresses and merges, all within the token's tenant."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from customers.models import AuditLog, Customer
from customers.services import customer_add_identity, customer_resolve_identity
from omnidesk.lib.api_defaults import TokenRateThrottle
from tests.factories import CustomerFactory


@pytest.fixture
def maria(tenant):
    customer, _ = customer_resolve_identity(tenant=tenant, kind="phone", value="+12025550143", name="Maria Lopez")
    customer_add_identity(tenant=tenant, customer=customer, kind="email", value="maria@example.org")
    return customer


@pytest.fixture
def globex_customer(other_tenant):
    customer, _ = customer_resolve_identity(tenant=other_tenant, kind="email", value="hans@globex.test", name="Hans")
    return customer


def test_it_lists_the_tenants_customers_with_their_addresses(agent_api, maria, globex_customer):
    response = agent_api.get("/api/v1/customers/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["id"], row["name"]) == (maria.pk, "Maria Lopez")
    assert sorted((i["kind"], i["value"]) for i in row["identities"]) == [
        ("email", "maria@example.org"), ("phone", "+12025550143"),
    ]


def test_search_finds_by_name_by_address_and_by_a_number_written_any_way(agent_api, tenant, maria):
    CustomerFactory(tenant=tenant, name="Somebody Else")

    by_name = agent_api.get("/api/v1/customers/", {"q": "lopez"}).json()["results"]
    by_email = agent_api.get("/api/v1/customers/", {"q": "MARIA@example"}).json()["results"]
    by_number = agent_api.get("/api/v1/customers/", {"q": "(202) 555-0143"}).json()["results"]
    nobody = agent_api.get("/api/v1/customers/", {"q": "nobody-here"}).json()["results"]

    assert [c["id"] for c in by_name] == [c["id"] for c in by_email] == [c["id"] for c in by_number] == [maria.pk]
    assert nobody == []


def test_the_cursor_walks_every_customer_exactly_once(agent_api, tenant):
    made = {CustomerFactory(tenant=tenant).pk for _ in range(7)}

    seen: list[int] = []
    url = "/api/v1/customers/?page_size=3"
    pages = 0
    while url:
        body = agent_api.get(url).json()
        seen += [c["id"] for c in body["results"]]
        url = body["next"]
        pages += 1

    assert sorted(seen) == sorted(made)
    assert len(seen) == len(made)
    assert pages == 3


def test_a_huge_page_size_is_capped_and_a_bad_cursor_is_a_404(agent_api, tenant):
    CustomerFactory(tenant=tenant)

    assert agent_api.get("/api/v1/customers/", {"page_size": "100000000000000000000"}).status_code == 200
    assert agent_api.get("/api/v1/customers/", {"page_size": "many"}).status_code == 200
    bad = agent_api.get("/api/v1/customers/", {"cursor": "not-a-cursor"})
    assert bad.status_code == 404
    assert bad.json() == {"detail": "Invalid cursor"}


def test_the_detail_shows_the_addresses(agent_api, maria):
    response = agent_api.get(f"/api/v1/customers/{maria.pk}/")

    assert response.status_code == 200
    assert response.json()["merged_into"] is None
    assert len(response.json()["identities"]) == 2


def test_another_tenants_customer_and_a_nonsense_id_are_404_on_every_endpoint(agent_api, globex_customer):
    base = f"/api/v1/customers/{globex_customer.pk}/"

    assert agent_api.get(base).status_code == 404
    assert agent_api.patch(base, {"name": "Mine now"}, format="json").status_code == 404
    assert agent_api.post(base + "identities/", {"kind": "email", "value": "x@y.test"}, format="json").status_code == 404
    assert agent_api.post(base + "merge/", {"merge": globex_customer.pk}, format="json").status_code == 404
    assert agent_api.get("/api/v1/customers/abc/").status_code == 404
    assert agent_api.get("/api/v1/customers/99999999999999999999999/").json() == {"detail": "Not found."}
    globex_customer.refresh_from_db()
    assert globex_customer.name == "Hans"


def test_the_outsider_cannot_see_our_customers(outsider_api, maria):
    assert outsider_api.get(f"/api/v1/customers/{maria.pk}/").status_code == 404
    assert outsider_api.get("/api/v1/customers/", {"q": "Maria"}).json()["results"] == []


def test_it_creates_a_customer_with_normalized_addresses(agent_api, tenant, captured_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = agent_api.post("/api/v1/customers/", {
            "name": "Ana", "tier": "vip", "language": "pt-BR", "time_zone": "America/Sao_Paulo",
            "attributes": {"plan": "gold"},
            "identities": [{"kind": "phone", "value": "(202) 555-0177"}, {"kind": "email", "value": " Ana@Example.ORG "}],
        }, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["tier"], body["language"], body["attributes"]) == ("Ana", "vip", "pt-BR", {"plan": "gold"})
    assert sorted((i["kind"], i["value"]) for i in body["identities"]) == [
        ("email", "ana@example.org"), ("phone", "+12025550177"),
    ]
    assert Customer.objects.for_tenant(tenant).get(pk=body["id"]).name == "Ana"
    assert [e.name for e in captured_events] == ["customer.created"]


def test_an_impossible_address_is_a_400_naming_the_field_and_stores_nothing(agent_api, tenant):
    response = agent_api.post("/api/v1/customers/", {
        "name": "Bad", "identities": [{"kind": "email", "value": "ok@example.org"}, {"kind": "phone", "value": "12"}],
    }, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["errors"]["identities"]["1"]["value"] == ["'12' is not a valid phone number for region US."]
    assert body["detail"] == "identities.1.value: '12' is not a valid phone number for region US."
    assert not Customer.objects.for_tenant(tenant).exists()


def test_an_invalid_email_tier_and_time_zone_are_field_errors(agent_api):
    response = agent_api.post("/api/v1/customers/", {
        "tier": "gold", "time_zone": "Mars/Olympus", "identities": [{"kind": "email", "value": "not-an-address"}],
    }, format="json")

    errors = response.json()["errors"]
    assert response.status_code == 400
    assert errors["tier"] == ['"gold" is not a valid choice.']
    assert errors["time_zone"] == ["'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin)."]
    assert errors["identities"]["0"]["value"] == ["'not-an-address' is not a valid e-mail address."]


def test_an_address_someone_already_has_says_whose_it_is(agent_api, maria):
    response = agent_api.post(
        "/api/v1/customers/", {"name": "Copy", "identities": [{"kind": "email", "value": "maria@example.org"}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"]["identities"] == [
        f"maria@example.org already belongs to customer #{maria.pk}; merge the two customers instead."
    ]


def test_it_updates_the_fields_it_is_given(agent_api, maria):
    response = agent_api.patch(
        f"/api/v1/customers/{maria.pk}/", {"tier": "vip", "attributes": {"plan": "pro"}}, format="json"
    )

    assert response.status_code == 200
    maria.refresh_from_db()
    assert (maria.name, maria.tier, maria.attributes) == ("Maria Lopez", "vip", {"plan": "pro"})


def test_an_update_with_a_bad_language_is_a_400(agent_api, maria):
    response = agent_api.patch(f"/api/v1/customers/{maria.pk}/", {"language": "not a language"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["language"] == ["Write a BCP 47 language tag, e.g. en, de or pt-BR."]


def test_it_adds_an_address_normalized_and_refuses_a_taken_one(agent_api, tenant, maria):
    other = CustomerFactory(tenant=tenant)

    added = agent_api.post(f"/api/v1/customers/{other.pk}/identities/", {"kind": "whatsapp", "value": "whatsapp:+1 202 555 0188"}, format="json")
    taken = agent_api.post(f"/api/v1/customers/{other.pk}/identities/", {"kind": "email", "value": "maria@example.org"}, format="json")

    assert added.status_code == 201
    assert (added.json()["kind"], added.json()["value"]) == ("whatsapp", "+12025550188")
    assert taken.status_code == 400
    assert "already belongs to customer" in taken.json()["errors"]["value"][0]


def test_an_agent_merges_a_duplicate_into_the_survivor_with_an_audit_entry(agent_api, tenant, maria):
    duplicate, _ = customer_resolve_identity(tenant=tenant, kind="email", value="m.lopez@example.org", name="M. Lopez")

    response = agent_api.post(f"/api/v1/customers/{maria.pk}/merge/", {"merge": duplicate.pk}, format="json")
    again = agent_api.post(f"/api/v1/customers/{maria.pk}/merge/", {"merge": duplicate.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == maria.pk
    assert "m.lopez@example.org" in {i["value"] for i in response.json()["identities"]}
    assert again.status_code == 200
    assert AuditLog.objects.for_tenant(tenant).filter(action="customer.merge").count() == 1
    merged = agent_api.get(f"/api/v1/customers/{duplicate.pk}/").json()
    assert merged["merged_into"] == maria.pk


def test_a_merge_into_itself_or_with_another_tenants_customer_is_a_400(agent_api, maria, globex_customer):
    itself = agent_api.post(f"/api/v1/customers/{maria.pk}/merge/", {"merge": maria.pk}, format="json")
    foreign = agent_api.post(f"/api/v1/customers/{maria.pk}/merge/", {"merge": globex_customer.pk}, format="json")
    nonsense = agent_api.post(f"/api/v1/customers/{maria.pk}/merge/", {"merge": "abc"}, format="json")

    assert itself.status_code == foreign.status_code == nonsense.status_code == 400
    assert itself.json()["errors"]["merge"] == ["A customer cannot be merged into itself."]
    assert foreign.json()["errors"]["merge"] == ["No customer with this id in this tenant."]
    assert nonsense.json()["errors"]["merge"] == ["A valid integer is required."]
    globex_customer.refresh_from_db()
    assert globex_customer.merged_into_id is None


def test_supervisors_and_admins_use_the_same_endpoints(supervisor_api, admin_api, maria):
    assert supervisor_api.get(f"/api/v1/customers/{maria.pk}/").status_code == 200
    assert admin_api.patch(f"/api/v1/customers/{maria.pk}/", {"name": "María López"}, format="json").status_code == 200


def test_a_get_repeated_with_its_etag_is_a_304(agent_api, maria):
    first = agent_api.get(f"/api/v1/customers/{maria.pk}/")
    second = agent_api.get(f"/api/v1/customers/{maria.pk}/", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first["ETag"]
    assert second.status_code == 304


def test_too_many_requests_get_a_429_with_retry_after(agent_api, monkeypatch):
    # DRF reads the rates into the throttle class once, at import: overriding the setting alone changes nothing.
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"api": "3/min"})
    cache.clear()
    try:
        answers = [agent_api.get("/api/v1/customers/").status_code for _ in range(4)]
        limited = agent_api.get("/api/v1/customers/")
    finally:
        cache.clear()

    assert answers == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert "throttled" in limited.json()["detail"].lower()


def test_nul_characters_are_field_errors_and_an_edited_cursor_a_404(agent_api, maria):
    import base64

    nul = agent_api.patch(f"/api/v1/customers/{maria.pk}/", {"attributes": {"note": "a\u0000b"}}, format="json")
    forged = agent_api.get("/api/v1/customers/", {"cursor": base64.b64encode(b"o=0&p=abc").decode()})
    search = agent_api.get("/api/v1/customers/", {"q": "Maria\u0000"})

    assert nul.status_code == 400
    assert nul.json()["errors"]["attributes"] == ["Attributes cannot contain NUL characters (\\u0000)."]
    assert forged.status_code == 404
    assert [c["id"] for c in search.json()["results"]] == [maria.pk]


def test_the_list_takes_a_fixed_number_of_queries(agent_api, tenant, django_assert_max_num_queries):
    for n in range(6):
        customer, _ = customer_resolve_identity(tenant=tenant, kind="email", value=f"c{n}@example.org")
        customer_add_identity(tenant=tenant, customer=customer, kind="phone", value=f"+1202555{n + 300:04d}")
    agent_api.get("/api/v1/me/")

    with django_assert_max_num_queries(4):
        assert len(agent_api.get("/api/v1/customers/").json()["results"]) == 6
