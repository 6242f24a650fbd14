"""The session lifecycle as a transition table.

Theory of operation: a session is created, starts its nodes, runs until every
node has ended (graceful end: sources finish, end markers drain through the
graph) or until it is cancelled (bounded time: tasks that ignore cancellation
are abandoned and reported). ``TRANSITIONS`` is the whole truth; the diagram
in ``docs/runtime.md`` is drawn from it and :func:`apply` is the only code that
changes state.

::

    created --start--> starting --started--> running --end--> draining
       |                  |                     |                 |
       |             start_failed             drained           drained
       |                  v                     v                 v
       |                failed                ended  <-----------+
       +--cancel--> cancelling <--cancel-- (starting, running, draining)
                        |
                    cancelled --> cancelled
"""

from __future__ import annotations

from enum import StrEnum

from ..errors import IllegalTransitionError

__all__ = ["TRANSITIONS", "SessionEvent", "SessionState", "apply"]


class SessionState(StrEnum):
    """Where a session is in its life."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    CANCELLING = "cancelling"
    ENDED = "ended"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """True for the terminal states."""
        return self in (SessionState.ENDED, SessionState.CANCELLED, SessionState.FAILED)


class SessionEvent(StrEnum):
    """What can happen to a session."""

    START = "start"
    STARTED = "started"
    START_FAILED = "start_failed"
    END = "end"
    DRAINED = "drained"
    CANCEL = "cancel"
    CANCELLED = "cancelled"


S, E = SessionState, SessionEvent

TRANSITIONS: dict[tuple[SessionState, SessionEvent], SessionState] = {
    (S.CREATED, E.START): S.STARTING,
    (S.CREATED, E.CANCEL): S.CANCELLING,
    (S.STARTING, E.STARTED): S.RUNNING,
    (S.STARTING, E.START_FAILED): S.FAILED,
    (S.STARTING, E.CANCEL): S.CANCELLING,
    (S.RUNNING, E.END): S.DRAINING,
    (S.RUNNING, E.DRAINED): S.ENDED,
    (S.RUNNING, E.CANCEL): S.CANCELLING,
    (S.DRAINING, E.END): S.DRAINING,
    (S.DRAINING, E.DRAINED): S.ENDED,
    (S.DRAINING, E.CANCEL): S.CANCELLING,
    (S.CANCELLING, E.CANCEL): S.CANCELLING,
    (S.CANCELLING, E.DRAINED): S.CANCELLING,
    (S.CANCELLING, E.CANCELLED): S.CANCELLED,
    # Ending or cancelling a finished session is harmless and changes nothing.
    (S.ENDED, E.END): S.ENDED,
    (S.ENDED, E.CANCEL): S.ENDED,
    (S.CANCELLED, E.END): S.CANCELLED,
    (S.CANCELLED, E.CANCEL): S.CANCELLED,
    (S.FAILED, E.END): S.FAILED,
    (S.FAILED, E.CANCEL): S.FAILED,
}


def apply(state: SessionState, event: SessionEvent, role: str = "session") -> SessionState:
    """The state after ``event``; raises :class:`IllegalTransitionError` if not allowed."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransitionError(role, state.value, event.value) from None
