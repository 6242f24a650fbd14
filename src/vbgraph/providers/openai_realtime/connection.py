"""One WebSocket connection to the Realtime API: the asyncio half of the provider.

:meth:`RealtimeConnection.open` connects (websockets, imported here and only
when a connection is made, so ``vbgraph.nodes`` stays quick to import), waits
for ``session.created``, sends the ``session.update`` and waits for
``session.updated``; every failure on the way is raised as a
:class:`~vbgraph.errors.ProviderError` that names the node and says what to do
(a refused key, a refused config field, a refused or timed-out connection).

:meth:`RealtimeConnection.serve` then runs the socket: a reader that feeds
every message to the :class:`~.protocol.RealtimeProtocol` and hands the parsed
events to the node, and a writer that sends what the protocol queued, in
order. Sending never blocks the caller (``flush`` is synchronous, for
``on_interrupt``); the queue is bounded by dropping *audio* appends once more
than ``max_queued`` messages wait (a stalled socket makes old audio useless;
``dropped_audio`` counts them), never control events.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import ProviderConnectionError, ProviderError, ProviderProtocolError
from .config import Api, SessionConfig
from .events import ServerError, ServerEvent, SessionCreated, SessionUpdated
from .params import API_KEY_ENV
from .protocol import RealtimeProtocol
from .states import ConnState

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["Closed", "RealtimeConnection", "error_for"]

_MAX_MESSAGE = 16 * 1024 * 1024  # a long audio delta is well under this
_APPEND = '{"type":"input_audio_buffer.append"'


@dataclass(frozen=True, slots=True)
class Closed:
    """How a connection ended: the close code and reason, and whether we closed it."""

    code: int | None
    reason: str
    by_us: bool

    def __str__(self) -> str:
        code = "no close frame" if self.code is None or self.code == 1006 else f"{self.code}"
        return f"{code} {self.reason}".strip()


def error_for(where: str, error: ServerError) -> ProviderError:
    """A clear exception for an ``error`` event that makes the session unusable."""
    if error.code == "invalid_api_key":
        return ProviderError(
            f"{where}: the server refused the API key: set api_key or ${API_KEY_ENV} ({error})"
        )
    if error.answers == "session.update":
        field = f" (field {error.param})" if error.param else ""
        return ProviderError(f"{where}: the server refused the session config{field}: {error}")
    return ProviderError(f"{where}: {error}")


class RealtimeConnection:
    """An open, configured Realtime session over one WebSocket."""

    def __init__(self, ws: ClientConnection, protocol: RealtimeProtocol, where: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self.where = where
        self.max_queued = 500
        """Messages allowed to wait for the socket before audio appends are dropped."""
        self.dropped_audio = 0
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        self._closing = False

    @classmethod
    async def open(
        cls,
        url: str,
        headers: Mapping[str, str],
        api: Api,
        config: SessionConfig,
        *,
        where: str,
        timeout_s: float,
        ping_interval_s: float | None = 20.0,
    ) -> tuple[RealtimeConnection, list[ServerEvent]]:
        """Connect and configure; returns the connection and events that came meanwhile."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        try:
            async with asyncio.timeout(timeout_s):
                ws = await connect(
                    url,
                    additional_headers=dict(headers),
                    max_size=_MAX_MESSAGE,
                    open_timeout=None,  # the timeout above covers the whole handshake
                    ping_interval=ping_interval_s,
                    compression=None,  # base64 audio does not compress; save the CPU
                )
                conn = cls(ws, RealtimeProtocol(api), where)
                try:
                    early = await conn._configure(config)
                except BaseException:
                    await ws.close()
                    raise
        except InvalidStatus as exc:
            status = exc.response.status_code
            hint = f": set api_key or ${API_KEY_ENV}" if status in (401, 403) else ""
            raise ProviderConnectionError(
                f"{where}: {url} refused the connection with HTTP {status}{hint}"
            ) from exc
        except ConnectionClosed as exc:
            raise ProviderConnectionError(
                f"{where}: {url} closed the connection during setup ({_closed(exc)})"
            ) from exc
        except TimeoutError as exc:
            raise ProviderConnectionError(
                f"{where}: no configured session from {url} within {timeout_s} s"
            ) from exc
        except (OSError, InvalidHandshake) as exc:
            raise ProviderConnectionError(f"{where}: cannot connect to {url}: {exc}") from exc
        return conn, early

    async def _configure(self, config: SessionConfig) -> list[ServerEvent]:
        protocol, early = self.protocol, []
        while protocol.state is not ConnState.READY:
            message = await self.ws.recv()
            protocol.receive_message(message)
            for event in protocol.events_received():
                if type(event) is ServerError:
                    raise error_for(self.where, event)
                if type(event) is SessionCreated:
                    protocol.send_session_update(config)
                elif type(event) is not SessionUpdated:
                    early.append(event)
            for text in protocol.data_to_send():
                await self.ws.send(text)
        return early

    # -- running -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Queue what the protocol has to send (the writer sends it, in order)."""
        outbox = self._outbox
        for text in self.protocol.data_to_send():
            if len(outbox) >= self.max_queued and text.startswith(_APPEND):
                self.dropped_audio += 1
                continue
            outbox.append(text)
        if outbox:
            self._wake.set()

    async def serve(
        self,
        on_events: Callable[[list[ServerEvent]], None],
        on_error: Callable[[ProviderProtocolError], None],
    ) -> Closed:
        """Run the socket until it closes; each message's events go to ``on_events``.

        A malformed message goes to ``on_error`` and the connection goes on.
        """
        from websockets.exceptions import ConnectionClosed

        writer = asyncio.create_task(self._write(), name=f"{self.where}:write")
        try:
            async for message in self.ws:
                try:
                    self.protocol.receive_message(message)
                except ProviderProtocolError as exc:
                    on_error(exc)
                events = self.protocol.events_received()
                if events:
                    on_events(events)
                self.flush()
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self.protocol.receive_close()
        return Closed(self.ws.close_code, self.ws.close_reason or "", self._closing)

    async def _write(self) -> None:
        from websockets.exceptions import ConnectionClosed

        outbox, wake = self._outbox, self._wake
        try:
            while True:
                while outbox:
                    await self.ws.send(outbox.popleft())
                wake.clear()
                await wake.wait()
        except ConnectionClosed:
            return  # the reader sees the close too and ends serve()

    @property
    def queued(self) -> int:
        """Messages waiting for the socket."""
        return len(self._outbox)

    async def close(self) -> None:
        """Send what is queued, then close (normal closure)."""
        self._closing = True
        from websockets.exceptions import ConnectionClosed

        try:
            async with asyncio.timeout(2.0):
                while self._outbox:
                    await self.ws.send(self._outbox.popleft())
        except (ConnectionClosed, TimeoutError):
            pass
        await self.ws.close()


def _closed(exc: Any) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is None:
        return "no close frame"
    return f"{rcvd.code} {rcvd.reason}".strip()
