"""The exception tree of vbgraph.

Every error raised on purpose by vbgraph derives from :class:`VbgraphError`, and
where a builtin fits it subclasses that too, so ``except ValueError`` still works::

    VbgraphError
    ├── ConfigError (ValueError)            the graph as written is wrong
    │   ├── UnknownNodeTypeError            no node type of that name
    │   ├── UnknownPortError                no port of that name on the node
    │   ├── GraphCycleError                 data edges form a cycle
    │   └── FormatNegotiationError          no converter joins producer and consumer
    ├── AudioFormatError (ValueError)       a buffer does not fit its declared format
    ├── UsageError (TypeError)              local misuse of the Python API
    ├── SessionError (RuntimeError)         a session cannot do what was asked
    │   └── IllegalTransitionError          the lifecycle table forbids this event
    ├── NodeFailure (RuntimeError)          a node raised; carries the node id
    └── ProviderError                       the remote side misbehaved
        ├── ProviderProtocolError           a message broke the documented protocol
        └── ProviderConnectionError         the connection broke or was refused

Local misuse (``UsageError``, ``ConfigError``) is kept apart from remote
misbehaviour (``ProviderError``): the first is a bug to fix in the graph or code,
the second is something to retry or fall back from.

Errors carry their place: ``ConfigError`` a :class:`SourceLocation` (YAML
file:line:column), a node id and a field; ``NodeFailure`` the node id and port.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AudioFormatError",
    "ConfigError",
    "FormatNegotiationError",
    "GraphCycleError",
    "IllegalTransitionError",
    "NodeFailure",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderProtocolError",
    "SessionError",
    "SourceLocation",
    "UnknownNodeTypeError",
    "UnknownPortError",
    "UsageError",
    "VbgraphError",
]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A place in a graph file: 1-based line and column, as editors show them."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class VbgraphError(Exception):
    """Root of every error vbgraph raises on purpose."""


class ConfigError(VbgraphError, ValueError):
    """The graph as written (YAML or builder calls) is invalid.

    The message reads ``file:line:col: node 'id' field 'f': what is wrong``; each
    part is present when known and also available as an attribute.
    """

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        node_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.location = location
        self.node_id = node_id
        self.field = field
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts: list[str] = []
        if self.location is not None:
            parts.append(f"{self.location}:")
        if self.node_id is not None:
            parts.append(f"node '{self.node_id}'")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        prefix = " ".join(parts)
        if prefix and not prefix.endswith(":"):
            prefix += ":"
        return f"{prefix} {self.message}" if prefix else self.message


class UnknownNodeTypeError(ConfigError):
    """A node names a ``type`` that no registered node class has."""


class UnknownPortError(ConfigError):
    """An edge names a port that the node does not declare."""


class GraphCycleError(ConfigError):
    """Data edges form a cycle; feedback belongs on the session bus."""


class FormatNegotiationError(ConfigError):
    """No chain of converters joins a producer's format to what its consumer accepts."""


class AudioFormatError(VbgraphError, ValueError):
    """An audio buffer does not fit its format (odd length, unknown encoding ...)."""


class UsageError(VbgraphError, TypeError):
    """The Python API was called in a way it does not support."""


class SessionError(VbgraphError, RuntimeError):
    """A session could not do what was asked (start, run, end)."""


class IllegalTransitionError(SessionError):
    """A state machine received an event its transition table does not allow."""

    def __init__(self, role: str, state: str, event: str) -> None:
        self.role = role
        self.state = state
        self.event = event
        super().__init__(f"{role}: event {event!r} is not allowed in state {state!r}")


class NodeFailure(VbgraphError, RuntimeError):
    """A node raised while starting, processing or stopping.

    Raised to callers that asked for failures to propagate; inside a running
    session the same information travels as a ``NodeError`` event instead.
    """

    def __init__(self, node_id: str, phase: str, cause: BaseException, port: str | None = None):
        self.node_id = node_id
        self.phase = phase
        self.port = port
        self.cause = cause
        where = f"node '{node_id}'" + (f" port '{port}'" if port else "")
        super().__init__(f"{where} failed in {phase}: {type(cause).__name__}: {cause}")


class ProviderError(VbgraphError):
    """The remote side (a provider or peer) misbehaved."""


class ProviderProtocolError(ProviderError):
    """A message from the remote side broke the documented protocol."""


class ProviderConnectionError(ProviderError, ConnectionError):
    """The connection to the remote side broke or was refused."""
