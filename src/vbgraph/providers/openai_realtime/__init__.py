"""OpenAI Realtime speech to speech over WebSocket: ``protocol`` (sans-I/O) and ``node``.

Importing this package does not import the node (and so asyncio): import
``vbgraph.providers.openai_realtime.node`` or ``vbgraph.nodes`` for
``s2s.openai_realtime``. The modules: :mod:`.events` (typed server events and
audio codecs), :mod:`.config` (the session config, GA and beta shapes),
:mod:`.protocol` (the connection's state machine).
"""

__all__: list[str] = []
