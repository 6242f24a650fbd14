"""The Realtime connection's two state machines, as transition tables.

:class:`~.protocol.RealtimeProtocol` applies them with :func:`apply`; the
diagrams in ``docs/providers/openai-realtime.md`` are drawn from the same
tables (:func:`mermaid`). A key ``(state, event)`` missing from a table is an
illegal transition: raised as :class:`~vbgraph.errors.IllegalTransitionError`
for something we tried to send, :class:`~vbgraph.errors.ProviderProtocolError`
for something the server sent.

Event names are the wire ``type`` of client or server events, plus
``error:X`` (an ``error`` event answering our ``X``) and ``delta`` (any audio,
transcript or function-call event of the response in flight).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from ...errors import IllegalTransitionError, ProviderProtocolError

__all__ = ["CONNECTION", "RESPONSE", "ConnState", "ResponseState", "apply", "mermaid"]


class ConnState(Enum):
    """The connection's lifecycle."""

    CONNECTING = "connecting"
    OPEN = "open"
    CONFIGURING = "configuring"
    READY = "ready"
    RECONFIGURING = "reconfiguring"
    CLOSED = "closed"


class ResponseState(Enum):
    """The current response's lifecycle (the server runs at most one at a time)."""

    IDLE = "idle"
    REQUESTED = "requested"
    CANCEL_REQUESTED = "cancel_requested"
    ACTIVE = "active"
    CANCELLING = "cancelling"


C, R = ConnState, ResponseState
_WORKING = (C.READY, C.RECONFIGURING)
_CLIENT_EVENTS = (
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "response.create",
    "response.cancel",
    "conversation.item.create",
    "conversation.item.truncate",
)
CONNECTION: dict[tuple[ConnState, str], ConnState] = {
    (C.CONNECTING, "session.created"): C.OPEN,
    (C.OPEN, "session.update"): C.CONFIGURING,
    (C.CONFIGURING, "session.updated"): C.READY,
    (C.CONFIGURING, "error:session.update"): C.OPEN,
    (C.READY, "session.update"): C.RECONFIGURING,
    (C.READY, "session.updated"): C.READY,
    (C.RECONFIGURING, "session.updated"): C.READY,
    (C.RECONFIGURING, "error:session.update"): C.READY,
    **{(state, name): state for state in _WORKING for name in _CLIENT_EVENTS},
}
"""Connection transitions. ``error:X`` is an ``error`` event answering our ``X``."""

RESPONSE: dict[tuple[ResponseState, str], ResponseState] = {
    (R.IDLE, "response.create"): R.REQUESTED,
    (R.IDLE, "response.created"): R.ACTIVE,  # server VAD answered a turn by itself
    (R.REQUESTED, "response.created"): R.ACTIVE,
    (R.REQUESTED, "error:response.create"): R.IDLE,
    (R.REQUESTED, "response.cancel"): R.CANCEL_REQUESTED,  # sent once it is created
    (R.CANCEL_REQUESTED, "response.created"): R.CANCELLING,
    (R.CANCEL_REQUESTED, "error:response.create"): R.IDLE,
    (R.ACTIVE, "delta"): R.ACTIVE,
    (R.ACTIVE, "response.cancel"): R.CANCELLING,
    (R.ACTIVE, "response.done"): R.IDLE,
    (R.CANCELLING, "delta"): R.CANCELLING,  # in flight when we cancelled: dropped
    (R.CANCELLING, "response.done"): R.IDLE,
}
"""Response transitions; ``delta`` is any audio, transcript or function-call event."""


def apply(
    table: Mapping[tuple[Any, str], Any], role: str, state: Any, event: str, remote: bool
) -> Any:
    """The state after ``event``; raises if ``table`` has no such transition."""
    new = table.get((state, event))
    if new is None:
        if remote:
            raise ProviderProtocolError(
                f"{role}: server event {event!r} is not allowed in state {state.value!r}"
            )
        raise IllegalTransitionError(role, state.value, event)
    return new


def mermaid(table: Mapping[tuple[Any, str], Any]) -> str:
    """A Mermaid ``stateDiagram-v2`` of ``table`` (self-loops left out, but ``delta``'s)."""
    lines = ["stateDiagram-v2"]
    for (state, event), new in table.items():
        if state is new and event != "delta":
            continue
        lines.append(f"    {state.value} --> {new.value}: {event}")
    return "\n".join(lines)
