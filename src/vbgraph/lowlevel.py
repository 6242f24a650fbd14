"""The API for node authors: base class, params, ports, clock and registry.

.. code-block:: python

    from vbgraph.lowlevel import Node, Params, audio_port, register

    @register
    class Gain(Node):
        \"\"\"Scale audio by a gain in dB. Example: ``{type: my.gain, db: -6}``\"\"\"
        type_name = "my.gain"
        ...
"""

from .clock import Clock, LoopClock, VirtualClock
from .formats import AudioCaps, pts_ns
from .node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port, frame_port, text_port
from .registry import ENTRY_POINT_GROUP, Registry, default_registry, register
from .typing import BytesLike, NodeId, PortName, SessionId

Params = NodeParams
"""Alias of :class:`NodeParams`: ``class Params(Params): ...`` inside a node reads well."""

__all__ = [
    "ENTRY_POINT_GROUP",
    "AudioCaps",
    "BytesLike",
    "Clock",
    "GraphPath",
    "LoopClock",
    "Node",
    "NodeContext",
    "NodeId",
    "NodeParams",
    "Params",
    "Port",
    "PortName",
    "Registry",
    "SessionId",
    "VirtualClock",
    "audio_port",
    "default_registry",
    "frame_port",
    "pts_ns",
    "register",
    "text_port",
]
