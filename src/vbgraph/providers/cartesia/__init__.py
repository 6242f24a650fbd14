"""Cartesia Sonic text to speech over WebSocket: ``protocol`` (sans-I/O) and ``node``.

Importing this package does not import the node (and so asyncio or websockets):
import ``vbgraph.providers.cartesia.node`` or ``vbgraph.nodes`` for ``tts.cartesia``.
"""

__all__: list[str] = []
