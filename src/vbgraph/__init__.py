"""vbgraph: a real-time voice AI engine.

The public API in three tiers:

* ``vbgraph`` — build and run graphs: :class:`Graph`, :func:`load`, :func:`run`,
  :func:`arun`, :class:`Session`, frames, formats, events and errors.
* ``vbgraph.lowlevel`` — for node authors: the node base class, params, ports,
  clock, registry.
* ``vbgraph.testing`` — for tests: the virtual clock and helpers.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AudioFormatError,
    ConfigError,
    FormatNegotiationError,
    GraphCycleError,
    NodeFailure,
    ProviderConnectionError,
    ProviderError,
    ProviderProtocolError,
    SessionError,
    UnknownNodeTypeError,
    UnknownPortError,
    UsageError,
    VbgraphError,
)
from .events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    Metric,
    NodeError,
    SessionStateChanged,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from .formats import ALAW, MULAW, OPUS, PCM_F32LE, PCM_S16LE, AudioCaps, AudioFormat, Encoding
from .frames import (
    AudioFrame,
    EndFrame,
    Frame,
    ImageFrame,
    LLMTokenFrame,
    TextFrame,
    ToolCallFrame,
    TranscriptFrame,
    Word,
)
from .queue_policy import BLOCK, DROP_NEWEST, DROP_OLDEST, QueuePolicy

if TYPE_CHECKING:
    from .graph.builder import Graph, NodeRef, PortRef
    from .graph.load import load, loads
    from .graph.plan import Plan
    from .runner import arun, run
    from .runtime.edge import EdgeStatistics
    from .runtime.lifecycle import SessionState
    from .runtime.session import NodeStatistics, Session, SessionResult

__version__ = "0.1.0"

# The graph layer pulls in pydantic and PyYAML (~100 ms): load it on first use so
# ``import vbgraph`` stays cheap for code that only needs frames and formats.
_LAZY = {
    "Graph": "graph.builder",
    "NodeRef": "graph.builder",
    "PortRef": "graph.builder",
    "load": "graph.load",
    "loads": "graph.load",
    "Plan": "graph.plan",
    "arun": "runner",
    "run": "runner",
    "EdgeStatistics": "runtime.edge",
    "SessionState": "runtime.lifecycle",
    "NodeStatistics": "runtime.session",
    "Session": "runtime.session",
    "SessionResult": "runtime.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vbgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ALAW",
    "BLOCK",
    "DROP_NEWEST",
    "DROP_OLDEST",
    "MULAW",
    "OPUS",
    "PCM_F32LE",
    "PCM_S16LE",
    "AudioCaps",
    "AudioFormat",
    "AudioFormatError",
    "AudioFrame",
    "BargeInCancelled",
    "BargeInStarted",
    "BotSpeechStarted",
    "BotSpeechStopped",
    "ConfigError",
    "EdgeStatistics",
    "Encoding",
    "EndFrame",
    "Event",
    "FormatNegotiationError",
    "Frame",
    "Graph",
    "GraphCycleError",
    "ImageFrame",
    "Interrupt",
    "LLMTokenFrame",
    "Metric",
    "NodeError",
    "NodeFailure",
    "NodeRef",
    "NodeStatistics",
    "Plan",
    "PortRef",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderProtocolError",
    "QueuePolicy",
    "Session",
    "SessionError",
    "SessionResult",
    "SessionState",
    "SessionStateChanged",
    "TextFrame",
    "ToolCallFrame",
    "TranscriptFrame",
    "TurnEnded",
    "UnknownNodeTypeError",
    "UnknownPortError",
    "UsageError",
    "UserSpeechStarted",
    "UserSpeechStopped",
    "VbgraphError",
    "Word",
    "__version__",
    "arun",
    "load",
    "loads",
    "run",
]
