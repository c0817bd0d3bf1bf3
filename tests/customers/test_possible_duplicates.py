"""Possible duplicates offered for a merge: the same number on another channel, or the same name."""

from __future__ import annotations

from customers.selectors import customer_possible_duplicates
from customers.services import customer_add_identity, customer_merge
from tests.factories import CustomerFactory


def test_it_finds_the_same_number_on_whatsapp_and_the_same_name_in_any_case_only_in_the_tenant(tenant, other_tenant):
    maria = CustomerFactory(tenant=tenant, name="Maria Garcia")
    customer_add_identity(tenant=tenant, customer=maria, kind="phone", value="+12025550143")
    on_whatsapp = CustomerFactory(tenant=tenant, name="")
    customer_add_identity(tenant=tenant, customer=on_whatsapp, kind="whatsapp", value="+12025550143")
    same_name = CustomerFactory(tenant=tenant, name="maria garcia")
    CustomerFactory(tenant=tenant, name="Maria Lopez")
    elsewhere = CustomerFactory(tenant=other_tenant, name="Maria Garcia")
    customer_add_identity(tenant=other_tenant, customer=elsewhere, kind="whatsapp", value="+12025550143")

    found = set(customer_possible_duplicates(tenant=tenant, customer=maria))

    assert found == {on_whatsapp, same_name}


def test_a_merged_away_customer_is_no_longer_offered(tenant, agent):
    maria = CustomerFactory(tenant=tenant, name="Maria Garcia")
    twin = CustomerFactory(tenant=tenant, name="Maria Garcia")
    customer_merge(tenant=tenant, survivor=maria, merged=twin, actor=agent)

    assert list(customer_possible_duplicates(tenant=tenant, customer=maria)) == []


def test_a_customer_without_name_or_number_has_none(tenant):
    CustomerFactory(tenant=tenant, name="")

    assert list(customer_possible_duplicates(tenant=tenant, customer=CustomerFactory(tenant=tenant, name=""))) == []
