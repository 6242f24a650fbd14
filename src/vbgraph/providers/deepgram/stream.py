"""One session's live stream to Deepgram across its connections: socket, timers, reconnects.

Theory of operation
-------------------
:class:`LiveStream` is the asyncio half of the provider; the protocol logic is
in :mod:`.protocol` and :mod:`.messages`, the audio bookkeeping in
:mod:`.ledger`. The node fills the ledger and calls :meth:`LiveStream.wake`;
the stream does the rest:

* :meth:`open` makes the first connection (``start`` of the node: a refused
  key fails the session before any audio flows).
* :meth:`run` is the connection loop. Per connection a *sender* task writes
  what the ledger hands out, and ``KeepAlive`` once nothing was sent for
  ``keepalive_s``; a *receiver* task feeds frames to a
  :class:`~.protocol.ListenConnection` and passes its events to the node's
  ``on_event``, then confirms finals in the ledger (after the node mapped
  their times). A message that breaks the protocol is reported (phase
  ``receive``) and skipped.
* How the socket closed decides what follows (:class:`~.messages.CloseKind`):
  done after ``CloseStream``; an error for a refusing close; otherwise the
  ledger queues the unconfirmed audio again and the loop reconnects with
  :class:`~vbgraph.providers._backoff.Backoff` (handshake refusals other than
  4xx count as failed attempts). After ``NET-0001`` (idle) the audio is only
  replayed if the server had started hearing words, and the loop reconnects
  once there is audio to send.

``websockets`` is imported inside the functions that use it (this module is
imported with ``vbgraph.nodes``). Its logger gets a filter that redacts the
``Authorization`` header from the handshake's debug lines: the key is never
logged. Errors name the node (``where``) and never quote the key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...clock import Clock
from ...errors import ProviderConnectionError, ProviderError, ProviderProtocolError
from .._backoff import Backoff
from .ledger import AudioLedger
from .messages import CloseKind, ListenEvent, StreamClosed, Transcript
from .protocol import (
    CLOSE_STREAM,
    FINALIZE,
    ConnectionState,
    HandshakeRejection,
    ListenConnection,
    auth_headers,
    handshake_rejection,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["LiveStream", "StreamSettings"]

_NS = 1_000_000_000


class _RedactAuthorization(logging.Filter):
    """websockets logs each handshake header at DEBUG (``> %s: %s``): hide the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == "authorization":
            record.args = (args[0], "[redacted]")
        return True


WEBSOCKET_LOGGER = logging.getLogger("vbgraph.providers.deepgram.websocket")
WEBSOCKET_LOGGER.addFilter(_RedactAuthorization())


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """How to reach Deepgram and how patient to be."""

    url: str
    """The full ``/v1/listen`` URL with its query."""
    api_key: str
    where: str
    """Who is speaking, for error messages: ``stt.deepgram node 'stt'``."""
    key_hint: str = "$DEEPGRAM_API_KEY"
    keepalive_s: float = 4.0
    connect_timeout_s: float = 10.0
    reconnect_attempts: int = 5


class LiveStream:
    """The connections of one live stream (see the module docstring).

    ``on_event`` gets every server event but the close, on the receiver task;
    ``report`` gets non-fatal errors; ``drain`` is awaited after each message
    (the session's backpressure).
    """

    def __init__(
        self,
        settings: StreamSettings,
        ledger: AudioLedger,
        clock: Clock,
        *,
        on_event: Callable[[ListenEvent], None],
        report: Callable[[str, BaseException], None],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self._clock = clock
        self._on_event = on_event
        self._report = report
        self._drain = drain
        self._ws: ClientConnection | None = None
        self._wake = asyncio.Event()
        self.finished = asyncio.Event()
        """Set when the loop is over: the stream completed, failed or had nothing to send."""
        self._ending = False
        self._words_pending = False  # an interim with words came after the last final
        self.connections = 0
        """Connections opened (1 + reconnections)."""
        self.idle_timeouts = 0
        """Connections the server closed for lack of audio (``NET-0001``)."""
        self.drops = 0
        """Connections lost otherwise (network, server error)."""
        self.keepalives = 0
        self.unknown_messages = 0
        """Server messages of an unknown type (ignored)."""
        self.malformed = 0
        """Server messages that broke the protocol (each reported)."""

    # -- the node's side ---------------------------------------------------------------------

    def wake(self) -> None:
        """Something was queued in the ledger."""
        self._wake.set()

    def end(self) -> None:
        """No more audio will come (the node queued ``CloseStream``)."""
        self._ending = True
        self._wake.set()

    async def open(self) -> None:
        """The first connection; raises :class:`ProviderError` if refused or unreachable."""
        self._ws = await self._connect_retrying(self._backoff())

    async def run(self) -> None:
        """The connection loop; sets :attr:`finished` when it is over."""
        try:
            await self._loop()
        finally:
            self.finished.set()

    async def close(self) -> None:
        """Close the socket if it is still open."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close()

    # -- connections -------------------------------------------------------------------------

    def _backoff(self) -> Backoff:
        return Backoff(attempts=self.settings.reconnect_attempts)

    async def _loop(self) -> None:
        backoff = self._backoff()
        while True:
            ws = self._ws
            if ws is None:
                if not self.ledger.pending_audio:
                    if self._ending:
                        return  # nothing left to transcribe: no need for a connection
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                ws = self._ws = await self._connect_retrying(backoff)
            closed = await self._serve(ws)
            self._ws = None
            if closed.kind is CloseKind.COMPLETE:
                return
            if closed.kind is CloseKind.REFUSED:
                raise ProviderError(
                    f"{self.settings.where}: Deepgram refused the stream ({closed})"
                )
            if closed.kind is CloseKind.IDLE_TIMEOUT:
                # Silence since the last final is all the server lost, unless it
                # had started hearing words: only then is replaying worth it
                # (and replaying silence would reopen an idle connection at once).
                self.idle_timeouts += 1
                self.ledger.restart(replay=self._words_pending)
            else:
                self.drops += 1
                self.ledger.restart()
            self._words_pending = False

    async def _connect_retrying(self, backoff: Backoff) -> ClientConnection:
        while True:
            try:
                ws = await self._connect()
            except ProviderConnectionError as exc:
                delay = backoff.next_delay()
                if delay is None:
                    raise ProviderConnectionError(
                        f"{exc} (gave up after {backoff.failures} retries)"
                    ) from exc
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            return ws

    async def _connect(self) -> ClientConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        s = self.settings
        try:
            async with asyncio.timeout(s.connect_timeout_s):
                ws = await connect(
                    s.url,
                    additional_headers=auth_headers(s.api_key),
                    open_timeout=None,
                    logger=WEBSOCKET_LOGGER,
                )
        except InvalidStatus as exc:
            response = exc.response
            rejection = handshake_rejection(response.status_code, bytes(response.body))
            raise self._refused(rejection) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            where = s.url.split("?", 1)[0]
            raise ProviderConnectionError(
                f"{s.where}: cannot connect to {where}: {exc or type(exc).__name__}"
            ) from exc
        self.connections += 1
        return ws

    def _refused(self, rejection: HandshakeRejection) -> ProviderError:
        s = self.settings
        if rejection.status in (401, 403):
            return ProviderError(
                f"{s.where}: Deepgram refused the API key ({rejection}); "
                f"check the api_key param or {s.key_hint}"
            )
        if rejection.status in (400, 404):
            return ProviderError(f"{s.where}: Deepgram refused the request ({rejection})")
        return ProviderConnectionError(f"{s.where}: Deepgram answered {rejection}")

    async def _serve(self, ws: ClientConnection) -> StreamClosed:
        """Run one connection until it closes; returns how it closed."""
        conn = ListenConnection()
        receiver = asyncio.create_task(self._receive(ws, conn))
        sender = asyncio.create_task(self._send(ws, conn))
        try:
            await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and sender.exception() is not None:
                await ws.close()
                sender.result()  # a bug in the sender: raise it
            return await receiver
        finally:
            for task in (receiver, sender):
                task.cancel()
            await asyncio.gather(receiver, sender, return_exceptions=True)
            self.unknown_messages += conn.unknown

    async def _send(self, ws: ClientConnection, conn: ListenConnection) -> None:
        """Write what the ledger hands out; ``KeepAlive`` when nothing was sent for a while."""
        from websockets.exceptions import ConnectionClosed

        wake, ledger, clock = self._wake, self.ledger, self._clock
        keepalive_ns = round(self.settings.keepalive_s * _NS)
        last = clock.now_ns()
        try:
            while conn.state is ConnectionState.OPEN:
                wake.clear()
                now = clock.now_ns()
                item = ledger.take(now)
                if item is None:
                    if now - last < keepalive_ns:
                        with suppress(TimeoutError):
                            async with asyncio.timeout((last + keepalive_ns - now) / _NS):
                                await wake.wait()
                        continue
                    conn.send_keepalive()
                    self.keepalives += 1
                elif isinstance(item, bytes):
                    conn.send_audio(item)
                elif item == FINALIZE:
                    conn.send_finalize()
                elif item == CLOSE_STREAM:
                    conn.send_close_stream()
                for data in conn.data_to_send():
                    await ws.send(data)
                last = clock.now_ns()
        except ConnectionClosed:
            return  # the receiver reports how

    async def _receive(self, ws: ClientConnection, conn: ListenConnection) -> StreamClosed:
        """Feed server frames to the protocol and pass on its events until the socket closes."""
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in ws:
                try:
                    if isinstance(message, str):
                        conn.receive_text(message)
                    else:
                        conn.receive_binary(message)
                except ProviderProtocolError as exc:
                    self.malformed += 1
                    self._report("receive", ProviderProtocolError(f"{self.settings.where}: {exc}"))
                    continue
                for event in conn.events_received():
                    self._on_event(event)
                    if type(event) is Transcript:
                        if event.is_final:
                            self.ledger.confirm(event.end)
                            self._words_pending = False
                        elif event.text.strip():
                            self._words_pending = True
                await self._drain()
        except ConnectionClosed:
            pass
        conn.receive_close(ws.close_code, ws.close_reason or "")
        closed = conn.events_received()[-1]
        assert isinstance(closed, StreamClosed)
        return closed
