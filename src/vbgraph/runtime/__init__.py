"""The runtime: sessions, edges, the event bus and the session lifecycle."""

from .bus import EventBus, Listener
from .edge import DEFAULT_CAPACITY, DirectEdge, EdgeQueue, EdgeStatistics, Inbox, QueuePolicy
from .lifecycle import SessionEvent, SessionState
from .session import NodeStatistics, Session, SessionResult

__all__ = [
    "DEFAULT_CAPACITY",
    "DirectEdge",
    "EdgeQueue",
    "EdgeStatistics",
    "EventBus",
    "Inbox",
    "Listener",
    "NodeStatistics",
    "QueuePolicy",
    "Session",
    "SessionEvent",
    "SessionResult",
    "SessionState",
]
