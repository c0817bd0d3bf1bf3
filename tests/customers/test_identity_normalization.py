from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from customers.identities import InvalidIdentity, normalize_email, normalize_identity, normalize_phone
from customers.models import IdentityKind


def test_it_turns_a_national_number_into_e164_with_the_default_region():
    assert normalize_phone("(202) 555-0143", region="US") == "+12025550143"


def test_it_ignores_dots_and_spaces_in_a_national_number():
    assert normalize_phone(" 202.555.0143 ", region="US") == "+12025550143"


def test_it_keeps_the_country_of_an_international_number_whatever_the_region():
    assert normalize_phone("+44 20 7946 0958", region="US") == "+442079460958"


def test_it_reads_a_gb_national_number_for_a_gb_tenant(other_tenant):
    assert other_tenant.default_region == "GB"

    value = normalize_identity(IdentityKind.PHONE, "020 7946 0958", region=other_tenant.default_region)

    assert value == "+442079460958"


def test_it_refuses_a_gb_national_number_for_a_us_tenant(tenant):
    with pytest.raises(InvalidIdentity, match="not a valid phone number for region US"):
        normalize_identity(IdentityKind.PHONE, "020 7946 0958", region=tenant.default_region)


def test_it_strips_the_whatsapp_prefix():
    assert normalize_identity(IdentityKind.WHATSAPP, "whatsapp:+14155238886", region="GB") == "+14155238886"


def test_it_strips_the_whatsapp_prefix_in_any_case():
    assert normalize_identity(IdentityKind.WHATSAPP, "WhatsApp:+44 20 7946 0958", region="US") == "+442079460958"


def test_it_stores_a_whatsapp_number_like_the_same_phone_number():
    whatsapp = normalize_identity(IdentityKind.WHATSAPP, "whatsapp:+12025550143", region="US")

    assert whatsapp == normalize_identity(IdentityKind.PHONE, "(202) 555-0143", region="US")


def test_it_refuses_a_too_short_number_and_says_why():
    with pytest.raises(InvalidIdentity) as excinfo:
        normalize_phone("12345", region="US")

    assert excinfo.value.messages == ["'12345' is not a valid phone number for region US."]


def test_it_refuses_letters_as_a_phone_number():
    with pytest.raises(InvalidIdentity, match="'hello' is not a phone number"):
        normalize_phone("hello", region="US")


def test_it_refuses_a_number_with_trailing_letters():
    with pytest.raises(InvalidIdentity, match="not a valid phone number"):
        normalize_phone("2025550143abc", region="US")


def test_it_refuses_an_unassigned_number():
    with pytest.raises(InvalidIdentity, match="not a valid phone number"):
        normalize_phone("+1 555 0100", region="US")


def test_it_refuses_a_number_after_an_unknown_country_code():
    with pytest.raises(InvalidIdentity, match="is not a phone number"):
        normalize_phone("+999 123", region="US")


@pytest.mark.parametrize("raw", ["", "   ", None])
def test_it_asks_for_a_phone_number_when_there_is_none(raw):
    with pytest.raises(InvalidIdentity, match="A phone number is required"):
        normalize_phone(raw, region="US")


def test_it_asks_for_a_number_when_whatsapp_sends_only_the_prefix():
    with pytest.raises(InvalidIdentity, match="A phone number is required"):
        normalize_identity(IdentityKind.WHATSAPP, "whatsapp:", region="US")


def test_an_invalid_identity_is_a_validation_error():
    with pytest.raises(ValidationError):
        normalize_phone("hello", region="US")


def test_it_trims_and_lower_cases_an_email_address():
    assert normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"


def test_it_takes_the_address_out_of_a_name_and_address_header():
    assert normalize_email("Jane Doe <Jane.Doe@Example.com>") == "jane.doe@example.com"


def test_it_takes_the_address_out_of_a_quoted_name_with_a_comma():
    assert normalize_email('"Doe, Jane" <jane@example.com>') == "jane@example.com"


def test_it_drops_a_mailto_prefix():
    assert normalize_email("mailto:Jane@Example.com") == "jane@example.com"


@pytest.mark.parametrize(
    "raw", ["", "jane", "jane@", "@example.com", "jane doe@example.com", "Jane <not an address>", "a@b.com, c@d.com"]
)
def test_it_refuses_an_invalid_email_address(raw):
    with pytest.raises(InvalidIdentity) as excinfo:
        normalize_identity(IdentityKind.EMAIL, raw, region="US")

    assert excinfo.value.messages == [f"{raw!r} is not a valid e-mail address."]


def test_it_trims_a_chat_visitor_id_and_keeps_its_case():
    assert normalize_identity(IdentityKind.CHAT_VISITOR, "  Visitor_8F3a ", region="US") == "Visitor_8F3a"


@pytest.mark.parametrize("raw", ["", "   ", "two words", "x" * 129])
def test_it_refuses_a_chat_visitor_id_that_is_empty_spaced_or_too_long(raw):
    with pytest.raises(InvalidIdentity, match="1–128 characters without spaces"):
        normalize_identity(IdentityKind.CHAT_VISITOR, raw, region="US")


def test_it_accepts_a_chat_visitor_id_of_128_characters():
    assert normalize_identity(IdentityKind.CHAT_VISITOR, "v" * 128, region="US") == "v" * 128


def test_it_lower_cases_a_social_handle_and_drops_the_at_sign():
    assert normalize_identity(IdentityKind.SOCIAL, "X:@Jane_Doe", region="US") == "x:jane_doe"


def test_it_keeps_dots_in_a_social_handle():
    assert normalize_identity(IdentityKind.SOCIAL, " instagram:jane.doe ", region="US") == "instagram:jane.doe"


@pytest.mark.parametrize("raw", ["jane", "@jane", "x:", "x:@", "x:jane doe", ""])
def test_it_refuses_a_social_handle_without_network_and_handle(raw):
    with pytest.raises(InvalidIdentity, match="write it as network:handle"):
        normalize_identity(IdentityKind.SOCIAL, raw, region="US")


def test_it_refuses_an_unknown_kind_and_lists_the_known_ones():
    with pytest.raises(InvalidIdentity) as excinfo:
        normalize_identity("fax", "+12025550143", region="US")

    assert excinfo.value.messages == [
        "'fax' is not a kind of identity (phone, email, whatsapp, chat_visitor, social, external)."
    ]
