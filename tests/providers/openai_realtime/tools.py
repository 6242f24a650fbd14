"""Tools the fake model calls in the node tests, referenced by import path from params."""

from __future__ import annotations

from typing import Any

CALLS: list[str] = []
"""Cities get_weather was asked about (cleared by each test that reads it)."""


def get_weather(city: str) -> dict[str, Any]:
    """A plain sync tool."""
    CALLS.append(city)
    return {"city": city, "sky": "sunny", "celsius": 21}
