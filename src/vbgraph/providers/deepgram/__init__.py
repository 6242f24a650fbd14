"""Deepgram live speech to text (``/v1/listen``).

Sans-I/O: ``protocol`` (handshake, connection state), ``messages`` (server
events), ``ledger`` (audio in flight). Asyncio: ``stream`` (socket, timers,
reconnects) and ``node`` (``stt.deepgram``). Importing this package imports
none of them: import ``vbgraph.providers.deepgram.node`` or ``vbgraph.nodes``.
"""

__all__: list[str] = []
