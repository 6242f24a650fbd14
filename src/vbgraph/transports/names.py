"""The transports ``vbgraph serve`` knows, by the names graphs use."""

from __future__ import annotations

from typing import Literal

__all__ = ["TRANSPORTS", "TransportName"]

TransportName = Literal["websocket", "twilio", "telnyx", "plivo", "exotel", "vonage", "webrtc"]
TRANSPORTS: tuple[TransportName, ...] = (
    "websocket",
    "twilio",
    "telnyx",
    "plivo",
    "exotel",
    "vonage",
    "webrtc",
)
