"""API clients: a DRF test client per role, authenticated the way integrations are (a token)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from customers.services import api_token_create


def token_client(user) -> APIClient:
    _, key = api_token_create(membership=user.membership, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def agent_api(agent):
    return token_client(agent)


@pytest.fixture
def supervisor_api(supervisor):
    return token_client(supervisor)


@pytest.fixture
def admin_api(tenant_admin):
    return token_client(tenant_admin)


@pytest.fixture
def outsider_api(outsider):
    """An admin of another tenant, with a token of theirs."""
    return token_client(outsider)
