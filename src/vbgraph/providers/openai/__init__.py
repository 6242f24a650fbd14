"""OpenAI-compatible chat completions (streaming SSE): ``protocol`` (sans-I/O) and ``node``.

Importing this package does not import the node (and so asyncio): import
``vbgraph.providers.openai.node`` or ``vbgraph.nodes`` for ``llm.openai``.
"""

__all__: list[str] = []
