"""ElevenLabs streaming TTS over the WebSocket ``multi-stream-input``: ``protocol`` and ``node``.

Importing this package does not import the node (and so asyncio): import
``vbgraph.providers.elevenlabs.node`` or ``vbgraph.nodes`` for ``tts.elevenlabs``.
"""

__all__: list[str] = []
