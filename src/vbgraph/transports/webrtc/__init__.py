"""The WebRTC transport: a browser talks to a graph over an aiortc peer connection.

``vbgraph serve GRAPH.yaml`` mounts it when ``transport.in`` lists ``webrtc``:
``GET /`` serves a talk page, ``POST /offer`` does the signalling, Opus audio
flows both ways and an ``events`` data channel carries transcripts, replies
and per-turn latency to the page (``docs/protocols/webrtc.md``).

This package re-exports the sans-I/O :mod:`.protocol` only; the shell
(:mod:`.shell`, which imports aiortc and aiohttp) and the media tracks
(:mod:`.tracks`) are imported by the server when a graph asks for them.
"""

from .protocol import (
    CHANNEL_LABEL,
    ChannelError,
    Command,
    EndCommand,
    EventsChannel,
    InterruptCommand,
    LatencyReport,
    Offer,
    SignallingError,
    TurnLatency,
    answer_body,
    error_body,
    parse_offer,
    refusal_body,
)

__all__ = [
    "CHANNEL_LABEL",
    "ChannelError",
    "Command",
    "EndCommand",
    "EventsChannel",
    "InterruptCommand",
    "LatencyReport",
    "Offer",
    "SignallingError",
    "TurnLatency",
    "answer_body",
    "error_body",
    "parse_offer",
    "refusal_body",
]
