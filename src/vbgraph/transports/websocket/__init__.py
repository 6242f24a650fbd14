"""vbgraph's own WebSocket transport for apps: ``GET /ws``, JSON control and binary audio.

The protocol is specified in ``docs/protocols/websocket.md``. This package
exports the sans-I/O side (:mod:`.protocol`, :mod:`.messages`,
:mod:`.events`); the server's
shell, :class:`vbgraph.transports.websocket.shell.WebSocketHandler`, needs
aiohttp and is imported by ``vbgraph serve`` only when a graph lists the
``websocket`` transport.
"""

from .events import EventEncoder, format_json
from .messages import (
    CLOSE_CODES,
    ENCODINGS,
    MESSAGE_FIELDS,
    SAMPLE_RATES,
    Audio,
    ClientEvent,
    End,
    Interrupt,
    MarkPlayed,
    ProtocolViolation,
    Start,
    Text,
)
from .protocol import TRANSITIONS, ServerProtocol, Trigger, WireState, apply

__all__ = [
    "CLOSE_CODES",
    "ENCODINGS",
    "MESSAGE_FIELDS",
    "SAMPLE_RATES",
    "TRANSITIONS",
    "Audio",
    "ClientEvent",
    "End",
    "EventEncoder",
    "Interrupt",
    "MarkPlayed",
    "ProtocolViolation",
    "ServerProtocol",
    "Start",
    "Text",
    "Trigger",
    "WireState",
    "apply",
    "format_json",
]
