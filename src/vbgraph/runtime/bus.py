"""The per-session event bus.

Control events (speech started, interruption, node errors, metrics) are
published here and delivered synchronously, in subscription order, to the
nodes that subscribe to their type, then queued for every external listener
(``session.events()``). Delivery to nodes is a direct call, so a node's
``on_event`` must not block; a handler that raises becomes a ``NodeError``
event and does not stop delivery to the others.

External listeners have bounded buffers (``drop_oldest``): a slow UI cannot
grow memory; what it missed is counted in ``Listener.dropped``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from ..events import Event, NodeError

__all__ = ["EventBus", "Listener"]

Handler = Callable[[Event], None]


class Listener:
    """An external subscriber: an async iterator over events with a bounded buffer."""

    def __init__(self, bus: EventBus, capacity: int) -> None:
        self._bus = bus
        self._items: deque[Event] = deque()
        self._capacity = capacity
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0

    def push(self, event: Event) -> None:
        """Queue an event for this listener (drops the oldest when full, counted)."""
        if len(self._items) >= self._capacity:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._wake()

    def close(self) -> None:
        """End iteration once the buffered events are consumed."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._items:
            if self._closed:
                self._bus.remove_listener(self)
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def drain(self) -> list[Event]:
        """Take every buffered event at once (no waiting)."""
        out = list(self._items)
        self._items.clear()
        return out


class EventBus:
    """Delivers events to subscribed handlers by type, then to listeners."""

    def __init__(self, on_handler_error: Callable[[str, BaseException, Event], None]) -> None:
        self._handlers: list[tuple[type[Event], str, Handler]] = []
        self._by_type: dict[type[Event], list[tuple[str, Handler]]] = {}
        self._listeners: list[Listener] = []
        self._on_handler_error = on_handler_error
        self._history: deque[Event] | None = None
        self.published = 0
        self.handler_failures = 0  # every handler exception, reported or not

    def subscribe(self, event_type: type[Event], owner: str, handler: Handler) -> None:
        """Call ``handler(event)`` for every event that is an instance of ``event_type``."""
        self._handlers.append((event_type, owner, handler))
        self._by_type.clear()

    def listen(self, capacity: int = 1024) -> Listener:
        """A new external listener receiving every event published from now on."""
        listener = Listener(self, capacity)
        self._listeners.append(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        """Stop delivering to ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def close(self) -> None:
        """End every listener's iteration (after what it has buffered)."""
        for listener in list(self._listeners):
            listener.close()

    def _handlers_for(self, event_type: type[Event]) -> list[tuple[str, Handler]]:
        found = self._by_type.get(event_type)
        if found is None:
            found = [(o, h) for t, o, h in self._handlers if issubclass(event_type, t)]
            self._by_type[event_type] = found
        return found

    def publish(self, event: Event) -> None:
        """Deliver ``event`` now to handlers, and queue it for listeners."""
        self.published += 1
        for owner, handler in self._handlers_for(type(event)):
            try:
                handler(event)
            except Exception as exc:
                self.handler_failures += 1
                if isinstance(event, NodeError):
                    # Do not recurse: a handler failing on an error event is only
                    # counted (handler_failures), not published again.
                    continue
                self._on_handler_error(owner, exc, event)
        for listener in self._listeners:
            listener.push(event)
