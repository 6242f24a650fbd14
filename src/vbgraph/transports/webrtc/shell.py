"""The WebRTC transport's asyncio shell: routes, one aiortc peer connection per call.

Example (``vbgraph serve talk.yaml``, then open ``http://127.0.0.1:8765/`` and press Talk)::

    version: 1
    name: talk
    nodes:
      caller: {type: transport.in, transports: [webrtc]}
      echo: {type: gain, db: -6}
      speaker: {type: transport.out, chunk_ms: 20}
    edges: [caller -> echo -> speaker]

Routes (added to the :class:`~vbgraph.serve.Server` when the graph lists
``webrtc`` in ``transport.in``'s ``transports``):

* ``GET /`` — the talk page (``page/index.html``); ``GET /static/{file}`` its
  script and style sheet. Plain files, no build step, no external assets.
* ``POST /offer`` — signalling, one request per call: the page's SDP offer in,
  the answer out (:mod:`.protocol` validates both sides; the wire format is in
  ``docs/protocols/webrtc.md``). A bad body is a 400 JSON error, a full or
  draining server a 503 (``server_full``, ``server_draining``), both before a
  peer connection exists.

Per call (:class:`_Call`): the offer is answered by a fresh
``RTCPeerConnection`` with no STUN or TURN servers unless the handler is given
some (ICE then finds host candidates only: the same machine or LAN). When the
connection comes up within ``connect_timeout_s`` the session starts (not
earlier: a greeting would otherwise play to nobody), with a
:class:`~vbgraph.transports.link.CallLink` in 48 kHz mono s16 both ways and
``continuous=True``. The remote audio track feeds the link
(:func:`.tracks.pump_caller_audio`) and :class:`.tracks.BotAudioTrack` plays
the link's output. Bus events go to the page on the ``events`` data channel
the page created; the page's ``interrupt`` and ``end`` commands come back on
it. The call ends when the session does (then the peer connection is closed),
or when the peer goes: its track ends, the connection fails or closes, or it
sends ``end``; then the link's input ends and the session drains. A peer that
breaks the data-channel protocol gets an ``error`` message and its call ends.
Every failure stays inside its own call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, InvalidStateError

from ...errors import UsageError
from ...runtime.session import Session
from ...serve.calls import Admission, CallRefused
from ..link import CallLink
from .protocol import (
    CHANNEL_LABEL,
    ChannelError,
    EndCommand,
    EventsChannel,
    InterruptCommand,
    Offer,
    SignallingError,
    answer_body,
    error_body,
    parse_offer,
    refusal_body,
)
from .tracks import BOT_FORMAT, CALLER_FORMAT, BotAudioTrack, pump_caller_audio

if TYPE_CHECKING:
    from ...runtime.bus import Listener
    from ...serve.app import ServerContext

__all__ = ["PAGE_DIR", "WebRTCHandler"]

log = logging.getLogger("vbgraph.serve.webrtc")

PAGE_DIR = Path(__file__).resolve().parent / "page"
"""The talk page's files."""
_STATIC = frozenset({"app.js", "style.css"})
_NO_CACHE = {"Cache-Control": "no-cache"}
_MAX_PENDING_MESSAGES = 256
"""Messages held while the data channel is not open yet; older ones are dropped (counted)."""

IceServerLike = str | Mapping[str, Any] | RTCIceServer


class WebRTCHandler:
    """The ``webrtc`` transport of :class:`~vbgraph.serve.Server`; see the module docstring.

    ``ice_servers``: STUN/TURN servers for the server's side (``"stun:host:port"``
    or ``{"urls": ..., "username": ..., "credential": ...}``); none by default.
    ``connect_timeout_s``: how long an answered peer has to connect before
    its slot is given back.
    """

    name = "webrtc"

    def __init__(
        self,
        *,
        ice_servers: Sequence[IceServerLike] = (),
        connect_timeout_s: float = 15.0,
    ) -> None:
        self.ice_servers = [_ice_server(s) for s in ice_servers]
        self.connect_timeout_s = connect_timeout_s
        self.calls: dict[str, _Call] = {}
        """Calls answered and not yet closed, by call id."""
        self._server: ServerContext | None = None

    def add_routes(self, app: web.Application, server: ServerContext) -> None:
        """``GET /``, ``GET /static/{name}``, ``POST /offer``."""
        self._server = server
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_post("/offer", self._offer)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(PAGE_DIR / "index.html", headers=_NO_CACHE)

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:  # a fixed list: no path ever reaches the file system
            raise web.HTTPNotFound()
        return web.FileResponse(PAGE_DIR / name, headers=_NO_CACHE)

    async def _offer(self, request: web.Request) -> web.Response:
        server = self._server
        assert server is not None, "add_routes() first"
        try:
            offer = parse_offer(await request.read())
        except SignallingError as exc:
            log.info("webrtc offer refused from %s: %s", request.remote, exc)
            return web.json_response(exc.body(), status=exc.status)
        try:
            admission = server.calls.admit()
        except CallRefused as exc:
            status, body = refusal_body(exc.reason, str(exc))
            return web.json_response(body, status=status)
        call = _Call(self, server, admission, offer)
        try:
            sdp = await call.answer()
        except (ValueError, InvalidAccessError, InvalidStateError) as exc:
            await call.abort()
            log.info("webrtc offer rejected by aiortc (call %s): %s", admission.call_id, exc)
            body = error_body("offer_rejected", f"the WebRTC stack refused the offer: {exc}")
            return web.json_response(body, status=400)
        except Exception:
            await call.abort()
            log.exception("webrtc call %s: answering the offer failed", admission.call_id)
            return web.json_response(error_body("internal_error", "answer failed"), status=500)
        task = asyncio.create_task(call.run(), name=f"webrtc call {admission.call_id}")
        server.tasks.add(task)
        task.add_done_callback(server.tasks.discard)
        return web.json_response(answer_body(sdp, admission.call_id))


def _ice_server(spec: IceServerLike) -> RTCIceServer:
    if isinstance(spec, RTCIceServer):
        return spec
    if isinstance(spec, str):
        return RTCIceServer(urls=spec)
    return RTCIceServer(**spec)


class _Call:
    """One browser call: its peer connection, link, data channel and session."""

    def __init__(
        self, handler: WebRTCHandler, server: ServerContext, admission: Admission, offer: Offer
    ) -> None:
        self.handler = handler
        self.server = server
        self.admission = admission
        self.offer = offer
        self.call_id = admission.call_id
        self.link = CallLink(
            "webrtc",
            CALLER_FORMAT,
            BOT_FORMAT,
            call_id=self.call_id,
            metadata=offer.metadata,
            continuous=True,
        )
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(handler.ice_servers)))
        self.track = BotAudioTrack(self.link)
        self.channel = EventsChannel()
        self.session: Session | None = None
        self.end_reason = ""
        self.dropped_messages = 0
        self._dc: RTCDataChannel | None = None
        self._pending: deque[str] = deque()
        self._pump: asyncio.Task[None] | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._gone = asyncio.Event()

    # -- handshake ---------------------------------------------------------------------

    async def answer(self) -> str:
        """Apply the offer, add the bot's track, return the answer SDP (all candidates)."""
        pc = self.pc
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)
        await pc.setRemoteDescription(RTCSessionDescription(self.offer.sdp, "offer"))
        # Reuses the audio transceiver the offer created (aiortc's addTrack).
        pc.addTrack(self.track)
        await pc.setLocalDescription(await pc.createAnswer())
        self.handler.calls[self.call_id] = self
        return pc.localDescription.sdp

    async def abort(self) -> None:
        """The handshake failed: give the slot back and close what was opened."""
        self.admission.release()
        await self._close_peer()

    # -- the call ----------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the peer to connect, run the session, then close everything."""
        try:
            if await self._wait_connected():
                result = await self.server.calls.run_call(
                    self.admission, self.link, self._on_session
                )
                self.end_reason = self.end_reason or self.link.end_reason or "the session ended"
                if result is not None and result.errors:
                    errors = len(result.errors)
                    log.info("webrtc call %s ended with %d errors", self.call_id, errors)
            else:
                self.end_reason = self.end_reason or "the peer never connected"
                log.info("webrtc call %s: %s", self.call_id, self.end_reason)
        finally:
            self.admission.release()  # no-op once run_call has taken it
            await self._finish()

    async def _wait_connected(self) -> bool:
        waits = [asyncio.ensure_future(e.wait()) for e in (self._connected, self._gone)]
        try:
            await asyncio.wait(
                waits, timeout=self.handler.connect_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waits:
                w.cancel()
        return self._connected.is_set() and not self._gone.is_set()

    def _on_session(self, session: Session) -> None:
        self.session = session
        listener = session.events()
        self._forwarder = asyncio.create_task(self._forward(listener))

    async def _forward(self, listener: Listener) -> None:
        async for event in listener:
            self.channel.send_event(event)
            self._flush()

    async def _finish(self) -> None:
        self.end_input(self.end_reason or "call closed")
        if self._forwarder is not None:
            # The bus closes when the session finishes: the forwarder then sends
            # what is left and returns. The bound is for a session that never ran.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._forwarder), 1.0)
            self._forwarder.cancel()
        self.channel.send_session_ended(self.end_reason)
        self._flush()
        await self._close_peer()
        self.handler.calls.pop(self.call_id, None)

    async def _close_peer(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self.track.stop()
        try:
            await self.pc.close()
        except Exception:  # closing a half-broken peer must not hide the real end
            log.exception("webrtc call %s: closing the peer connection failed", self.call_id)

    def end_input(self, reason: str) -> None:
        """The caller's audio is over (hang-up, ``end``, failure): the session drains."""
        if self._pump is not None:
            self._pump.cancel()
        self.end_reason = self.end_reason or reason
        self.link.end_input(reason)

    # -- peer connection events ---------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._pump is None:
            self._pump = asyncio.create_task(self._pump_audio(track))

    async def _pump_audio(self, track: MediaStreamTrack) -> None:
        try:
            await pump_caller_audio(track, self.link)
        except UsageError as exc:  # audio after end_input: a race with the end, harmless
            log.debug("webrtc call %s: %s", self.call_id, exc)
            return
        except Exception as exc:  # a frame we cannot convert: end this call, not the server
            log.exception("webrtc call %s: receiving the caller's audio failed", self.call_id)
            self.end_input(f"caller audio failed: {exc}")
            return
        self.end_input("hangup")

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._gone.set()
            self.end_input("hangup" if state == "closed" else "connection failed")

    def _on_datachannel(self, dc: RTCDataChannel) -> None:
        if dc.label != CHANNEL_LABEL or self._dc is not None:
            log.info("webrtc call %s: ignoring data channel %r", self.call_id, dc.label)
            return
        self._dc = dc
        dc.on("message", self._on_message)
        if dc.readyState == "open":
            self._on_open()
        else:
            dc.on("open", self._on_open)

    def _on_open(self) -> None:
        self.channel.send_session(self.call_id)
        self._flush()

    def _on_message(self, data: str | bytes) -> None:
        # aiortc calls this from its event emitter, which would swallow or re-raise an
        # exception far from here: contain anything unexpected to this call.
        try:
            self._handle_message(data)
        except Exception as exc:
            log.exception("webrtc call %s: data-channel handler failed", self.call_id)
            self.end_input(f"internal error: {type(exc).__name__}")

    def _handle_message(self, data: str | bytes) -> None:
        channel = self.channel
        try:
            channel.receive_message(data)
        except ChannelError as exc:
            log.warning("webrtc call %s: bad data-channel message: %s", self.call_id, exc)
            channel.send_error("bad_message", str(exc))
            self._flush()
            self.end_input(f"protocol error: {exc}")
            return
        for command in channel.events_received():
            if type(command) is InterruptCommand:
                if self.session is not None:
                    self.session.interrupt("the caller pressed interrupt")
            elif type(command) is EndCommand:
                self.end_input("end")

    def _flush(self) -> None:
        pending = self._pending
        pending.extend(self.channel.data_to_send())
        dc = self._dc
        if dc is None or dc.readyState != "open":
            while len(pending) > _MAX_PENDING_MESSAGES:
                pending.popleft()
                self.dropped_messages += 1
            return
        while pending:
            try:
                dc.send(pending[0])
            except InvalidStateError:  # the channel closed under us: keep the rest, counted
                self.dropped_messages += len(pending)
                pending.clear()
                return
            pending.popleft()
