from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from channels_app.adapters.api.adapter import MAX_ATTACHMENT_BYTES, MAX_BODY_BYTES
from conversations.models import TimelineEntry
from customers.models import Customer
from tests.channels.api.conftest import SECRET, message, post_signed, sign

B64 = base64.b64encode(b"file").decode()


@pytest.mark.parametrize(("payload", "detail"), [
    (b"{not json", "The body is not valid JSON."),
    (b"\xff\xfe\x00garbage", "The body is not valid JSON."),
    (b"[1, 2]", "The body must be a JSON object."),
    ({"customer": {"identifier": "u-1"}, "text": "hi"}, "external_id is required (a non-empty string)."),
    ({"external_id": "  ", "customer": {"identifier": "u-1"}, "text": "hi"}, "external_id is required (a non-empty string)."),
    ({"external_id": 7, "customer": {"identifier": "u-1"}, "text": "hi"}, "external_id must be a string, not int."),
    ({"external_id": "x" * 256, "customer": {"identifier": "u-1"}, "text": "hi"}, "external_id is longer than 255 characters."),
    ({"external_id": "m-1", "text": "hi"}, "customer is required (an object with at least an identifier)."),
    ({"external_id": "m-1", "customer": "u-1", "text": "hi"}, "customer is required (an object with at least an identifier)."),
    ({"external_id": "m-1", "customer": {}, "text": "hi"}, "customer.identifier is required (a non-empty string)."),
    ({"external_id": "m-1", "customer": {"identifier": ["u"]}, "text": "hi"}, "customer.identifier must be a string, not list."),
    (message(customer={"name": 5}), "customer.name must be a string, not int."),
    (message(external_id="m\x00"), "external_id contains a NUL character."),
    (message(text="hi\x00"), "text contains a NUL character."),
    (message(customer={"name": "A\x00"}), "customer.name contains a NUL character."),
    (message(customer={"email": "not-an-address"}), "customer.email: 'not-an-address' is not a valid e-mail address."),
    (message(customer={"phone": "12"}), "customer.phone: '12' is not a valid phone number for region US."),
    (message(text=None), "text is required (a non-empty string) unless the message has attachments."),
    (message(text="   "), "text is required (a non-empty string) unless the message has attachments."),
    (message(text={"body": "hi"}), "text must be a string, not dict."),
    (message(attachments={"url": "https://x.test/a"}), "attachments must be a list."),
    (message(attachments=["a.png"]), "attachments[0] must be an object."),
    (message(attachments=[{"filename": "a.png"}]), "attachments[0] needs exactly one of content_base64 or url."),
    (message(attachments=[{"url": "https://x.test/a", "content_base64": B64}]), "attachments[0] needs exactly one of content_base64 or url."),
    (message(attachments=[{"content_base64": B64}, {"content_base64": "not base64!"}]), "attachments[1].content_base64 is not valid base64."),
    (message(attachments=[{"url": "file:///etc/passwd"}]), "attachments[0].url is not an http(s) URL."),
    (message(attachments=[{"url": "https://x.test/a", "filename": 3}]), "attachments[0].filename must be a string, not int."),
])
def test_it_names_the_field_that_is_wrong_and_stores_nothing(client, tenant, api_inbox, payload, detail):
    response = post_signed(client, api_inbox, payload)

    assert response.status_code == 400
    assert response.json() == {"detail": detail}
    assert not TimelineEntry.objects.for_tenant(tenant).exists()
    assert not Customer.objects.for_tenant(tenant).exists()


def test_an_oversized_body_is_refused_with_413_before_it_is_read(client, tenant, api_inbox):
    body = json.dumps(message(text="x" * MAX_BODY_BYTES)).encode()

    response = post_signed(client, api_inbox, body)

    assert response.status_code == 413
    assert response.json() == {"detail": f"The body is larger than {MAX_BODY_BYTES} bytes."}
    assert not TimelineEntry.objects.for_tenant(tenant).exists()


def test_an_oversized_attachment_is_refused_with_413(client, tenant, api_inbox):
    content = base64.b64encode(b"\0" * (MAX_ATTACHMENT_BYTES + 1)).decode()

    response = post_signed(client, api_inbox, message(attachments=[{"filename": "big.bin", "content_base64": content}]))

    assert response.status_code == 413
    assert response.json()["detail"] == (
        f"attachments[0] is {MAX_ATTACHMENT_BYTES + 1} bytes; one attachment may have at most {MAX_ATTACHMENT_BYTES}."
    )
    assert not TimelineEntry.objects.for_tenant(tenant).exists()


def test_too_many_attachments_are_refused_with_413(client, tenant, api_inbox):
    response = post_signed(client, api_inbox, message(attachments=[{"url": "https://x.test/a"}] * 11))

    assert response.status_code == 413
    assert response.json()["detail"] == "attachments has 11 items; at most 10 are allowed."


def test_deeply_nested_json_is_a_400_not_a_crash(client, tenant, api_inbox):
    response = post_signed(client, api_inbox, b"[" * 100_000 + b"]" * 100_000)

    assert response.status_code == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Mostly the right keys with arbitrary values, so the fuzzing reaches the deeper checks.
shaped_payloads = st.fixed_dictionaries({}, optional={
    "external_id": json_values | st.text(max_size=30),
    "customer": json_values | st.fixed_dictionaries({}, optional={
        "identifier": json_values | st.text(max_size=30), "name": json_values, "email": json_values | st.emails(),
        "phone": json_values | st.from_regex(r"\+?[0-9 ()-]{0,16}", fullmatch=True),
    }),
    "text": json_values,
    "attachments": json_values | st.lists(st.fixed_dictionaries({}, optional={
        "filename": json_values, "content_type": json_values, "url": json_values | st.just("https://x.test/a"),
        "content_base64": json_values | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    }), max_size=3),
})

# Valid at the core, with fuzzed optional parts, so the fuzzing also reaches storage.
nearly_valid = st.fixed_dictionaries(
    {
        "external_id": st.text(min_size=1, max_size=40),
        "customer": st.fixed_dictionaries(
            {"identifier": st.text(min_size=1, max_size=40)},
            optional={"name": st.none() | st.text(max_size=40), "email": st.none() | st.emails() | st.text(max_size=10)},
        ),
        "text": st.text(max_size=200),
    },
    optional={"attachments": st.lists(st.fixed_dictionaries({
        "filename": st.text(max_size=30), "content_base64": st.binary(min_size=1, max_size=40).map(lambda b: base64.b64encode(b).decode()),
    }), max_size=2)},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=json_values | shaped_payloads | nearly_valid)
def test_random_json_never_gets_a_server_error(client, tenant, api_inbox, media_root, payload):
    response = post_signed(client, api_inbox, json.dumps(payload).encode())
    event(f"HTTP {response.status_code}")

    assert response.status_code in {200, 201, 400, 413}
    assert set(response.json()) in ({"detail"}, {"message_id", "conversation", "customer_id"})


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_random_bytes_never_get_a_server_error(client, tenant, api_inbox, body):
    response = client.post(
        f"/hooks/api/{api_inbox.key}/messages/", data=body, content_type="application/json",
        HTTP_X_OMNIDESK_SIGNATURE=sign(SECRET, body),
    )

    assert response.status_code in {200, 201, 400}
