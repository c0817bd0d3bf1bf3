"""Text as Postgres can store it."""

from __future__ import annotations

from typing import Any


def strip_nul(value: Any) -> Any:
    """`value` (a string, or JSON made of dicts and lists) without NUL characters: Postgres text and jsonb cannot
    hold them, and senders put them in anyway."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    return value
