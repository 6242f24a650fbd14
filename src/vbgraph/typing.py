"""Names with meaning, shared by the whole package."""

from __future__ import annotations

from typing import NewType, TypeAlias

__all__ = ["BytesLike", "NodeId", "PortName", "SessionId"]

NodeId = NewType("NodeId", str)
"""The id of a node within one graph, as written in YAML (``nodes: {mic: ...}``)."""

PortName = NewType("PortName", str)
"""The name of an input or output port of a node (``in``, ``out``, ``audio`` ...)."""

SessionId = NewType("SessionId", str)
"""The id of one live instance of a graph (one call, one browser tab)."""

BytesLike: TypeAlias = bytes | bytearray | memoryview
"""What audio-taking functions accept: anything exposing a contiguous byte buffer."""
