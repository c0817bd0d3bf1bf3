"""Small template helpers for the workspace pages."""

from __future__ import annotations

from django import template

register = template.Library()

# Short labels for channel icons in lists (full names are in the title attribute).
CHANNEL_ABBREVIATIONS = {"sms": "SMS", "whatsapp": "WA", "email": "Mail", "voice": "Call", "chat": "Chat", "api": "API"}


@register.filter
def name_of(people: dict, user_id) -> str:
    """A teammate's display name from the view's `people` map (user id -> name)."""
    if user_id in (None, ""):
        return ""
    try:
        return people.get(int(user_id), f"user {user_id}")
    except (TypeError, ValueError):
        return str(user_id)


@register.filter
def channel_abbr(channel: str) -> str:
    return CHANNEL_ABBREVIATIONS.get(channel, channel)


@register.simple_tag
def sla_due(conversation):
    """The soonest SLA due time still running on a conversation, or None."""
    dues = [
        due for due in (
            conversation.first_response_due_at, conversation.next_response_due_at, conversation.resolution_due_at
        ) if due is not None
    ]
    return min(dues) if dues else None


@register.filter
def duration(seconds) -> str:
    """Seconds as 1:05 or 1:02:03, for calls."""
    try:
        seconds = int(seconds)
    except (TypeError, ValueError):
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def channels_used(conversation) -> list[str]:
    """Every channel the conversation has used, in order (falls back to its first and last channel)."""
    used = getattr(conversation, "channels", None)
    if used:
        return list(used)
    return list(dict.fromkeys(ch for ch in (conversation.first_channel, conversation.last_channel) if ch))


@register.filter
def channel_label(channel: str) -> str:
    """A channel's name as people read it ("E-mail", "WhatsApp")."""
    from channels_app.models import Channel

    try:
        return Channel(channel).label
    except ValueError:
        return channel
