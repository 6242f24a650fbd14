"""Provider nodes: each a sans-I/O ``protocol`` module plus an asyncio ``node`` shell.

Protocol modules import no asyncio or network library (a test checks it); the
node modules own sockets, timers and retries. See ``docs/`` and STYLE rule 1.
"""

__all__: list[str] = []
