"""Transports: how a caller's audio reaches a session and the bot's audio reaches the caller.

Every transport is a sans-I/O ``protocol`` module (wire messages ⇄ audio and
control) plus an asyncio shell that the server (:mod:`vbgraph.serve`) runs per
connection. Shell and graph meet in a :class:`~vbgraph.transports.link.CallLink`
attached to the session; the graph's ``transport.in`` and ``transport.out``
nodes read and write it, whatever the transport is. One graph therefore
serves a phone call, a browser and a WebSocket client alike.

The names below are imported on first use, so that importing a protocol module
(``vbgraph.transports.twilio`` ...) does not import the link and asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .link import CallLink, OutboundAudio, OutboundClear, OutboundMark

__all__ = ["CallLink", "OutboundAudio", "OutboundClear", "OutboundMark"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".link", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
