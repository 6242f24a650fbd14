"""The WebSocket transport's asyncio shell: ``GET /ws`` on the aiohttp server.

Theory of operation
-------------------
One :class:`_Connection` per client, in the aiohttp handler's task:

1. *Admission before accepting.* A full or draining server still completes
   the upgrade (a browser cannot read an HTTP 503 from a WebSocket), then
   sends ``error`` (``server_full`` / ``server_draining``) and closes 1013.
2. *Start.* The first message must be ``start`` within ``start_timeout_s``;
   it fixes the :class:`~vbgraph.transports.link.CallLink`'s formats
   (``caller_format`` = ``format``, ``bot_format`` = ``output_format``).
3. *The call.* ``CallManager.run_call`` runs the session in its own task.
   The reader (this task) turns messages into link input through the
   sans-I/O :class:`~.protocol.ServerProtocol`; a writer task sends
   ``started``, then pumps the link's output (bot audio, ``clear``,
   ``mark``), while a third task forwards the session's bus events.
4. *The end.* When the session ends, run_call closes the link's output: the
   writer sends ``end`` and closes 1000. When the client closes first, its
   input ends (``"hangup"``) and the graph drains with nowhere to send to.
   A protocol violation sends ``error``, closes with the violation's code and
   ends the call the same way; other connections never notice.

Sends are plain synchronous frame writes in aiohttp (compression is off), so
the writer and the event forwarder can share the socket without a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from ...events import Event
from ...runtime.bus import Listener
from ...runtime.lifecycle import SessionState
from ...runtime.session import Session
from ...serve.app import ServerContext
from ...serve.calls import Admission, CallRefused
from ..link import CallLink, OutboundAudio, OutboundClear
from .messages import (
    CLOSE_CODES,
    Audio,
    End,
    Interrupt,
    MarkPlayed,
    ProtocolViolation,
    Start,
    Text,
)
from .protocol import ServerProtocol, WireState

__all__ = ["WebSocketHandler"]

log = logging.getLogger("vbgraph.serve.websocket")

_REASON_BYTES = 123  # RFC 6455: a close frame's reason is at most 123 bytes of UTF-8


class WebSocketHandler:
    """The ``websocket`` transport: vbgraph's own protocol for apps on ``GET /ws``.

    Mounted by ``vbgraph serve`` when the graph's ``transport.in`` lists
    ``websocket``. ``start_timeout_s`` bounds the wait for the ``start``
    message; ``heartbeat_s`` pings idle clients (and drops dead ones);
    ``max_text_chars`` and ``max_audio_ms`` bound one message.
    """

    name = "websocket"
    path = "/ws"

    def __init__(
        self,
        *,
        start_timeout_s: float = 10.0,
        heartbeat_s: float | None = 20.0,
        max_text_chars: int = 65_536,
        max_audio_ms: float = 1000.0,
    ) -> None:
        self.start_timeout_s = start_timeout_s
        self.heartbeat_s = heartbeat_s
        self.max_text_chars = max_text_chars
        self.max_audio_ms = max_audio_ms
        # Above this aiohttp itself closes with 1009 (no error message): a margin over
        # our own limits, so a too-big message normally gets a readable error first.
        self.max_msg_size = 4 * max(max_text_chars * 4, int(48 * max_audio_ms) * 2)

    def add_routes(self, app: web.Application, server: ServerContext) -> None:
        """``GET /ws``: a WebSocket upgrade; see ``docs/protocols/websocket.md``."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(server, request)

        app.router.add_get(self.path, handle)

    async def _handle(self, server: ServerContext, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            max_msg_size=self.max_msg_size, compress=False, heartbeat=self.heartbeat_s
        )
        if not ws.can_prepare(request).ok:
            return web.json_response(
                {"error": {"code": "upgrade_required", "message": "GET /ws is a WebSocket"}},
                status=426,
                headers={"Upgrade": "websocket", "Connection": "Upgrade"},
            )
        proto = ServerProtocol(max_text_chars=self.max_text_chars, max_audio_ms=self.max_audio_ms)
        conn = _Connection(ws, proto, server, self.start_timeout_s, request.remote or "?")
        task = asyncio.current_task()
        if task is not None:
            server.tasks.add(task)
        try:
            try:
                admission = server.calls.admit()
            except CallRefused as exc:
                await ws.prepare(request)
                await conn.refuse(exc)
                return ws
            try:
                await ws.prepare(request)
                await conn.run(admission)
            finally:
                admission.release()  # a no-op once run_call has taken the slot
        finally:
            if task is not None:
                server.tasks.discard(task)
        return ws


class _Connection:
    """One client's call; see the module docstring."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        proto: ServerProtocol,
        server: ServerContext,
        start_timeout_s: float,
        peer: str,
    ) -> None:
        self.ws = ws
        self.proto = proto
        self.server = server
        self.start_timeout_s = start_timeout_s
        self.peer = peer
        self.name = f"websocket client {peer}"
        self.link: CallLink | None = None
        self.session: Session | None = None
        self._events: Listener | None = None
        self._ready = asyncio.Event()
        self._marks_sample = 0  # bot samples sent before the next mark

    async def refuse(self, exc: CallRefused) -> None:
        """The server cannot take the call: ``error`` then close 1013."""
        code = "server_full" if exc.reason == "full" else "server_draining"
        log.info("%s refused: %s", self.name, exc)
        await self._fail(code, str(exc))

    async def run(self, admission: Admission) -> None:
        """Wait for ``start``, run the call, pump both ways until the socket closes."""
        start = await self._await_start()
        if start is None:
            admission.release()
            return
        if self.server.calls.draining:
            admission.release()
            await self._fail("server_draining", "server is shutting down: no new calls")
            return
        self.name = f"websocket call {admission.call_id} ({self.peer})"
        link = self.link = CallLink(
            transport="websocket",
            caller_format=start.format,
            bot_format=start.output_format,
            call_id=start.call_id or admission.call_id,
            metadata=dict(start.metadata or {}),
            reports_playback=start.playback_marks,
        )
        call = asyncio.create_task(self.server.calls.run_call(admission, link, self._on_session))
        call.add_done_callback(lambda _: self._ready.set())
        writer = asyncio.create_task(self._write(link, admission.call_id))
        reason = "connection error"
        try:
            reason = await self._read(link)
        finally:
            # The client is gone (or broke the protocol): its input ends, and the graph
            # drains with nowhere to send to (the rest of its audio is dropped, counted).
            link.end_input(reason)
            link.close_output()
            await asyncio.gather(call, writer, return_exceptions=True)
        for task in (call, writer):
            if not task.cancelled() and task.exception() is not None:
                log.error("%s failed", self.name, exc_info=task.exception())

    # -- reading -----------------------------------------------------------------------

    async def _await_start(self) -> Start | None:
        try:
            msg = await self.ws.receive(timeout=self.start_timeout_s)
        except TimeoutError:
            await self._fail("start_timeout", f"no start message within {self.start_timeout_s:g} s")
            return None
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.proto.connection_closed()
            return None
        try:
            if msg.type is WSMsgType.TEXT:
                event = self.proto.receive_text(msg.data)
            else:
                self.proto.receive_binary(msg.data)  # always a violation before start
                raise AssertionError("binary message accepted before start")
        except ProtocolViolation as exc:
            await self._violation(exc)
            return None
        assert isinstance(event, Start)
        return event

    async def _read(self, link: CallLink) -> str:
        """Messages → link until the socket closes; returns why the caller's input ended."""
        handlers: dict[type[object], Callable[[Any], Awaitable[None] | None]] = {
            Audio: lambda e: link.push_audio(e.data),
            End: lambda e: link.end_input("end"),
            Interrupt: self._interrupt,
            MarkPlayed: lambda e: link.confirm_played(e.samples),
            Text: self._text,
        }
        async for msg in self.ws:
            if self.proto.state is WireState.CLOSED:
                continue  # the server has sent `end` and is closing: late messages are moot
            try:
                if msg.type is WSMsgType.BINARY:
                    event: object = self.proto.receive_binary(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    event = self.proto.receive_text(msg.data)
                else:  # ERROR: aiohttp has closed the socket (message too big, bad frame)
                    log.warning("%s: connection error: %s", self.name, msg.data)
                    return f"connection error: {msg.data}"
            except ProtocolViolation as exc:
                await self._violation(exc)
                return f"protocol error: {exc.code}: {exc}"
            result = handlers[type(event)](event)
            if result is not None:
                await result
        self.proto.connection_closed()
        return "hangup"

    def _interrupt(self, event: Interrupt) -> None:
        session = self.session
        if session is not None and not session.state.finished:
            session.interrupt(reason="client interrupt")
        # Before the session has started the bot has said nothing: nothing to stop.

    async def _text(self, event: Text) -> None:
        message = "text input is not supported by this server yet; the message was ignored"
        await self._send_text(self.proto.send_error("unsupported", message, fatal=False))

    # -- writing -----------------------------------------------------------------------

    def _on_session(self, session: Session) -> None:
        # Called by run_call right after start, before any node task has run: listening
        # here misses no event of the call.
        self.session = session
        self._events = session.events()
        self._ready.set()

    async def _write(self, link: CallLink, session_id: str) -> None:
        await self._ready.wait()
        session = self.session
        if session is None or session.state is SessionState.FAILED:
            errors = "; ".join(str(e) for e in session.errors) if session else "not started"
            log.error("%s: session failed to start: %s", self.name, errors)
            await self._fail("session_failed", f"the call could not start: {errors}")
            link.close_output()
            return
        await self._send_text(self.proto.send_started(session_id))
        events = asyncio.create_task(self._forward_events())
        try:
            while (item := await link.next_outbound()) is not None:
                if isinstance(item, OutboundAudio):
                    self._marks_sample = item.end_sample
                    await self._send_bytes(item.payload)
                elif isinstance(item, OutboundClear):
                    await self._send_text(self.proto.send_clear())
                else:
                    await self._send_text(self.proto.send_mark(item.name, self._marks_sample))
            await events  # the bus closes when the session has finished
        finally:
            events.cancel()
        if link.end_reason == "end":
            reason = "client_end"
        else:
            reason = "server_shutdown" if self.server.calls.draining else "graph_ended"
        await self._send_text(self.proto.send_end(reason))
        if not self.ws.closed:
            await self.ws.close(code=1000, message=b"call ended")

    async def _forward_events(self) -> None:
        listener = self._events
        assert listener is not None
        async for event in listener:
            assert isinstance(event, Event)
            await self._send_text(self.proto.send_event(event))
        if listener.dropped:
            # The listener's buffer is bounded (drop oldest): a client that reads too
            # slowly loses events, never the server's memory. Say so once.
            log.warning(
                "%s: %d events not forwarded (client too slow)", self.name, listener.dropped
            )

    async def _send_text(self, text: str | None) -> None:
        if text is not None and not self.ws.closed:
            # The client may be gone mid-send; the reader sees the close and ends the call.
            with contextlib.suppress(ConnectionError):
                await self.ws.send_str(text)

    async def _send_bytes(self, data: bytes) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError):
                await self.ws.send_bytes(data)

    async def _violation(self, exc: ProtocolViolation) -> None:
        log.warning("%s: protocol error %s: %s", self.name, exc.code, exc)
        await self._fail(exc.code, str(exc))

    async def _fail(self, code: str, message: str) -> None:
        """A fatal ``error`` message, then close with its code."""
        await self._send_text(self.proto.send_error(code, message))
        if not self.ws.closed:
            reason = message.encode()[:_REASON_BYTES].decode(errors="ignore").encode()
            await self.ws.close(code=CLOSE_CODES[code], message=reason)
