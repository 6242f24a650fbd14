"""Serving a graph to network callers: ``vbgraph serve GRAPH.yaml``.

A :class:`Server` (aiohttp: HTTP and WebSocket on one port) mounts the
transports the graph declares; a :class:`CallManager` admits calls and runs a
fresh session per connection. Needs the ``serve`` extra.
"""

from .app import Server, ServerContext, served_transports
from .calls import Admission, CallCounters, CallManager, CallRefused
from .config import ServeConfig
from .handler import HANDLERS, TransportHandler, load_handler

__all__ = [
    "HANDLERS",
    "Admission",
    "CallCounters",
    "CallManager",
    "CallRefused",
    "ServeConfig",
    "Server",
    "ServerContext",
    "TransportHandler",
    "load_handler",
    "served_transports",
]
