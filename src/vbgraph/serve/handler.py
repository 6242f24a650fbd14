"""What a transport plugs into the server: a :class:`TransportHandler`.

Each transport's asyncio shell (``vbgraph.transports.<name>.shell``) provides
one. The server asks it to add its HTTP/WebSocket routes to the aiohttp
application; the handler then, per connection: checks auth, asks the
:class:`~vbgraph.serve.calls.CallManager` to admit the call (refusing at the
protocol level when it cannot), makes a :class:`~vbgraph.transports.link.CallLink`,
runs the call with :meth:`CallManager.run_call` while it pumps wire messages
into the link and the link's output onto the wire, and closes cleanly.

Handlers are found by transport name in :data:`HANDLERS` and imported only
when a graph asks for them, so a graph served over WebSocket alone never
imports aiortc.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError

if TYPE_CHECKING:
    from aiohttp import web

    from .app import ServerContext

__all__ = ["HANDLERS", "TransportHandler", "load_handler"]


class TransportHandler(Protocol):
    """One transport's shell as the server sees it."""

    name: str

    def add_routes(self, app: web.Application, server: ServerContext) -> None:
        """Add this transport's routes (paths documented in its module)."""


HANDLERS: dict[str, str] = {
    "websocket": "vbgraph.transports.websocket.shell:WebSocketHandler",
    "twilio": "vbgraph.transports.telephony.shell:TwilioHandler",
    "telnyx": "vbgraph.transports.telephony.shell:TelnyxHandler",
    "plivo": "vbgraph.transports.telephony.shell:PlivoHandler",
    "exotel": "vbgraph.transports.telephony.shell:ExotelHandler",
    "vonage": "vbgraph.transports.telephony.shell:VonageHandler",
    "webrtc": "vbgraph.transports.webrtc.shell:WebRTCHandler",
}
"""Transport name → ``module:Class`` of its handler (constructed with no arguments)."""


def load_handler(name: str) -> TransportHandler:
    """Import and construct the handler of transport ``name``."""
    try:
        target = HANDLERS[name]
    except KeyError:
        known = ", ".join(sorted(HANDLERS))
        raise ConfigError(f"unknown transport {name!r} (known: {known})") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"transport {name!r} needs packages that are not installed ({exc.name}): "
            "pip install 'vbgraph[serve]'"
        ) from exc
    handler: TransportHandler = getattr(module, attr)()
    return handler
