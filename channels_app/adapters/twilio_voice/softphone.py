"""Access tokens for agents' browser softphones (Twilio Voice SDK), signed with the inbox's API key.

An agent receives calls in the browser as their profile's Twilio Client identity, which is also what
an inbound call dials (`<Client>`), so the token carries exactly that identity and nothing the request says.
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from channels_app.models import Channel, Inbox
from customers.models import Membership, Tenant
from routing.models import AgentProfile

TOKEN_TTL_SECONDS = 3600


class SoftphoneUnavailable(Exception):
    """No token can be made (no identity, no API key); the message says what to set."""


@dataclass(frozen=True)
class SoftphoneToken:
    token: str
    identity: str
    expires_in: int


def voice_inbox_for_member(*, tenant: Tenant, key: str) -> Inbox | None:
    """The tenant's active voice inbox with this key; another tenant's is not found."""
    return Inbox.objects.for_tenant(tenant).filter(key=key, channel=Channel.VOICE, is_active=True).first()


def softphone_token_issue(*, inbox: Inbox, membership: Membership) -> SoftphoneToken:
    profile = AgentProfile.objects.for_tenant(inbox.tenant_id).filter(membership=membership).first()
    identity = profile.client_identity.strip() if profile is not None else ""
    if not identity:
        raise SoftphoneUnavailable("Your agent profile has no Twilio Client identity; ask an admin to set one.")
    account_sid = str(inbox.setting("account_sid") or "").strip()
    api_key_sid = str(inbox.setting("api_key_sid") or "").strip()
    api_key_secret = inbox.get_secret("twilio_api_key_secret")
    if not (account_sid and api_key_sid and api_key_secret):
        raise SoftphoneUnavailable(
            f"Inbox {inbox.name!r} has no Twilio API key (account_sid, api_key_sid and its secret); set them in admin."
        )
    token = AccessToken(account_sid, api_key_sid, api_key_secret, identity=identity, ttl=TOKEN_TTL_SECONDS)
    token.add_grant(VoiceGrant(incoming_allow=True,
                               outgoing_application_sid=str(inbox.setting("twiml_app_sid") or "").strip() or None))
    jwt = token.to_jwt()
    return SoftphoneToken(token=jwt if isinstance(jwt, str) else jwt.decode(), identity=identity,
                          expires_in=TOKEN_TTL_SECONDS)
