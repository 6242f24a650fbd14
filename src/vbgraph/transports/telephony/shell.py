"""The telephony transports' asyncio shell: one WebSocket route per provider, one call each.

Example launch line (``vbgraph serve graphs/phone_assistant.yaml``)::

    nodes:
      caller: {type: transport.in, sample_rate: 16000, transports: [twilio, telnyx]}
      echo: {type: gain, db: -6}
      speaker: {type: transport.out}
    edges: [caller -> echo -> speaker]

Routes: ``GET /twilio``, ``/telnyx``, ``/plivo``, ``/exotel``, ``/vonage``
(WebSocket: the provider connects to us) and ``POST /twilio/voice`` (the
call webhook, answering TwiML that connects the call to ``/twilio``).

Per connection (:class:`MediaStreamHandler`): admit the call or refuse it
(accept, then close with 1013 and the reason), read until the provider's start
message, attach a :class:`~vbgraph.transports.link.CallLink` in the call's
wire format and run the session while pumping both ways: caller audio into
the link; the bot's audio, marks and clears onto the wire, with a position
mark every ``mark_interval_ms`` whose echo confirms what the caller heard. A
message that breaks the protocol closes that connection only (1002, the error
as reason) and ends its session; other calls go on. When the session ends
first, the call is hung up through the :class:`HangupHook` (Twilio: the REST
API, when an auth token is configured) and the socket closed.

Twilio requests are authenticated when an auth token is configured
(``ServeConfig.twilio_auth_token`` or ``$TWILIO_AUTH_TOKEN``):
``X-Twilio-Signature`` must match on the handshake and on the webhook, else
403. Set ``ServeConfig.public_url`` when a proxy terminates TLS: the URL
Twilio signed and the TwiML's stream URL are built from it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from ...events import DtmfPressed
from ...serve.app import ServerContext
from ...serve.calls import Admission, CallRefused
from ..link import CallLink, OutboundAudio, OutboundMark
from ._common import (
    CallStarted,
    Dialect,
    DtmfReceived,
    MediaReceived,
    RemoteError,
    StreamProtocolError,
    StreamStopped,
    WireMessage,
)
from .exotel import EXOTEL
from .plivo import PLIVO
from .signature import SIGNATURE_HEADER, validate_signature
from .stream import MarkPlayed, MediaStream, State
from .telnyx import TELNYX
from .twilio import TWILIO, connect_twiml, hangup_request, stream_url
from .vonage import VONAGE

__all__ = [
    "ExotelHandler",
    "HangupHook",
    "MediaStreamHandler",
    "PlivoHandler",
    "TelnyxHandler",
    "TwilioHandler",
    "TwilioRestHangup",
    "VonageHandler",
]

log = logging.getLogger("vbgraph.transports.telephony")

DtmfHook = Callable[[CallLink, DtmfReceived], None]


class HangupHook(Protocol):
    """Ends a live call at the provider (the session ended before the caller hung up)."""

    def __call__(self, call: CallStarted) -> Awaitable[None]:
        """Hang up ``call``; errors are logged, never raised into the server."""


class TwilioRestHangup:
    """Hangs up a Twilio call over REST: ``POST .../Calls/{CallSid}.json`` ``Status=completed``."""

    def __init__(self, auth_token: str, *, api_base: str = "https://api.twilio.com") -> None:
        self._token = auth_token
        self.api_base = api_base

    async def __call__(self, call: CallStarted) -> None:
        """Send the request (404 means the call had already ended: fine)."""
        import aiohttp

        req = hangup_request(call.account_id, call.call_id, self._token, api_base=self.api_base)
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(req.method, req.url, headers=dict(req.headers), data=req.body) as resp,
        ):
            if resp.status not in (200, 404):
                text = (await resp.text())[:200]
                log.warning("twilio hang-up of %s: HTTP %s %s", call.call_id, resp.status, text)


RequestGuard = Callable[[web.Request, bool], Awaitable[bool]]
"""``guard(request, websocket)`` → whether the request may go on (else 403)."""


class MediaStreamHandler:
    """Serves one provider's media streams at its path; see the module docstring.

    ``dialect`` is the wire (``TWILIO``, ``TELNYX`` ...). ``hangup`` ends a
    call the session finished first (``None``: just close the socket, which
    ends the stream; the provider then moves on in its call flow).
    ``on_dtmf`` gets each key the caller presses. A provider that sends no
    start within ``start_timeout_s`` is disconnected.
    """

    def __init__(
        self,
        dialect: Dialect,
        *,
        hangup: HangupHook | None = None,
        on_dtmf: DtmfHook | None = None,
        mark_interval_ms: float = 200.0,
        start_timeout_s: float = 10.0,
        guard: RequestGuard | None = None,
    ) -> None:
        self.dialect = dialect
        self.name = dialect.name
        self.hangup = hangup
        self.on_dtmf = on_dtmf
        self.mark_interval_ms = mark_interval_ms
        self.start_timeout_s = start_timeout_s
        self.guard = guard

    def add_routes(self, app: web.Application, server: ServerContext) -> None:
        """``GET {dialect.path}``: the provider's WebSocket."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, server)

        app.router.add_get(self.dialect.path, handle)

    async def serve(self, request: web.Request, server: ServerContext) -> web.StreamResponse:
        """One connection: guard, admit, run the call, close."""
        if self.guard is not None and not await self.guard(request, True):
            return web.Response(status=403, text=f"{self.name}: request signature is not valid\n")
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        try:
            admission = server.calls.admit()
        except CallRefused as exc:
            await ws.prepare(request)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=_reason(str(exc)))
            return ws
        try:
            await ws.prepare(request)
        except BaseException:
            admission.release()
            raise
        task = asyncio.current_task()
        if task is not None:
            server.tasks.add(task)
        try:
            await _Connection(self, server, ws).run(admission)
        finally:
            if task is not None:
                server.tasks.discard(task)
        return ws


class _Connection:
    """One provider connection: the pumps between the socket, the protocol and the link."""

    def __init__(
        self, handler: MediaStreamHandler, server: ServerContext, ws: web.WebSocketResponse
    ) -> None:
        self.handler = handler
        self.server = server
        self.ws = ws
        self.stream = MediaStream(handler.dialect, mark_interval_ms=handler.mark_interval_ms)
        self.name = handler.name
        self.peer_gone = False
        """The provider closed or stopped, or we closed on its error: do not hang up."""
        self.input_done = False
        """The link's input has ended: later caller audio is dropped (the call is ending)."""

    async def run(self, admission: Admission) -> None:
        try:
            call = await asyncio.wait_for(self._until_start(), self.handler.start_timeout_s)
        except (StreamProtocolError, TimeoutError, ConnectionError) as exc:
            admission.release()
            await self._refuse(exc)
            return
        except BaseException:
            admission.release()
            raise
        metadata = {**call.parameters, "stream_id": call.stream_id, "account_id": call.account_id}
        link = CallLink(
            transport=self.name,
            caller_format=call.caller_format,
            bot_format=call.bot_format,
            call_id=call.call_id or admission.call_id,
            metadata={k: v for k, v in metadata.items() if v},
            reports_playback=True,
        )
        session = asyncio.create_task(self.server.calls.run_call(admission, link))
        writer = asyncio.create_task(self._write(link, call))
        try:
            reason = await self._read(link)
            self.peer_gone = True
            self._end_input(link, reason)
            link.close_output()  # nobody to play to: later bot audio is dropped (counted)
            await session
            await writer
        finally:
            for task in (writer, session):
                if not task.done():
                    task.cancel()
            await asyncio.gather(writer, session, return_exceptions=True)

    async def _until_start(self) -> CallStarted:
        async for msg in self.ws:
            self._feed(msg)
            for event in self.stream.events_received():
                if isinstance(event, CallStarted):
                    return event
                if isinstance(event, StreamStopped):
                    raise ConnectionError("stream stopped before it started")
        raise ConnectionError("socket closed before the stream started")

    async def _refuse(self, exc: BaseException) -> None:
        if isinstance(exc, StreamProtocolError):
            log.warning("%s connection refused: %s", self.name, exc)
            await self.ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=_reason(str(exc)))
        elif isinstance(exc, TimeoutError):
            log.warning("%s: no start message within %ss", self.name, self.handler.start_timeout_s)
            await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no start message")
        else:
            await self.ws.close()

    def _feed(self, msg: WSMessage) -> None:
        if msg.type is WSMsgType.TEXT:
            self.stream.receive_text(msg.data)
        elif msg.type is WSMsgType.BINARY:
            self.stream.receive_binary(msg.data)
        else:  # ERROR: closing frames end the iteration before they get here
            raise ConnectionError(f"socket error: {self.ws.exception()!r}")

    async def _read(self, link: CallLink) -> str:
        """Pump the provider's messages into the link; returns why the input ended."""
        reason = "hangup"
        try:
            async for msg in self.ws:
                self._feed(msg)
                for event in self.stream.events_received():
                    if isinstance(event, MediaReceived):
                        if event.inbound and event.payload and not self.input_done:
                            link.push_audio(event.payload)
                    elif isinstance(event, MarkPlayed):
                        link.confirm_played(event.position)
                    elif isinstance(event, StreamStopped):
                        reason = "stop"
                        self._end_input(link, reason)
                    elif isinstance(event, DtmfReceived):
                        self._dtmf(link, event)
                    elif isinstance(event, RemoteError):
                        log.warning(
                            "call %s: %s reports error %s: %s",
                            link.call_id,
                            self.name,
                            event.code,
                            event.message,
                        )
        except StreamProtocolError as exc:
            # This call only: the session ends, the others go on.
            log.warning("call %s: closing on a protocol error: %s", link.call_id, exc)
            self.peer_gone = True
            self._end_input(link, f"protocol error: {exc}")
            await self.ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=_reason(str(exc)))
            return f"protocol error: {exc}"
        except ConnectionError as exc:
            log.info("call %s: %s", link.call_id, exc)
        return reason

    def _end_input(self, link: CallLink, reason: str) -> None:
        self.input_done = True
        link.end_input(reason)

    def _dtmf(self, link: CallLink, event: DtmfReceived) -> None:
        hook = self.handler.on_dtmf
        if hook is None:  # the default: the graph hears of it (a DtmfPressed bus event)
            if not self.input_done:
                link.push_event(DtmfPressed(digit=event.digit))
            return
        try:
            hook(link, event)
        except Exception:
            log.exception("call %s: on_dtmf hook failed", link.call_id)

    async def _write(self, link: CallLink, call: CallStarted) -> None:
        """Pump the link's output onto the wire; at the session's end, hang up and close."""
        stream = self.stream
        while (item := await link.next_outbound()) is not None:
            if isinstance(item, OutboundAudio):
                stream.send_audio(item.payload, item.end_sample)
            elif isinstance(item, OutboundMark):
                stream.send_mark(item.name)
            else:
                stream.send_clear()
            if not await self._send(stream.data_to_send()):
                return
        if self.peer_gone:
            return
        # The session ended first: the caller is still on the line (or the stream
        # stopped and the provider has not closed yet).
        self._end_input(link, "session ended")
        hook = self.handler.hangup
        if stream.state is State.STREAMING:
            stream.flush()
            await self._send(stream.data_to_send())
            if hook is not None:
                try:
                    await asyncio.wait_for(hook(call), 15)
                except Exception:
                    log.exception("call %s: %s hang-up failed", link.call_id, self.name)
        await self.ws.close(code=WSCloseCode.OK, message=b"call ended")

    async def _send(self, messages: list[WireMessage]) -> bool:
        try:
            for data in messages:
                if isinstance(data, str):
                    await self.ws.send_str(data)
                else:
                    await self.ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return False  # the socket is closing; the reader sees why
        return True


def _reason(text: str) -> bytes:
    # A close frame's reason is at most 123 bytes of UTF-8.
    data = text.encode("utf-8")
    return data if len(data) <= 123 else data[:120].decode("utf-8", "ignore").encode() + b"..."


# -- the providers ----------------------------------------------------------------------------


class TwilioHandler(MediaStreamHandler):
    """Twilio Media Streams at ``/twilio`` plus the call webhook ``POST /twilio/voice``.

    With an auth token configured, requests need a valid ``X-Twilio-Signature``
    and a call the session ends is hung up over REST (``rest_hangup``), unless
    ``hangup`` replaces that.
    """

    def __init__(
        self,
        *,
        hangup: HangupHook | None = None,
        rest_hangup: bool = True,
        on_dtmf: DtmfHook | None = None,
        mark_interval_ms: float = 200.0,
        start_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(
            TWILIO,
            hangup=hangup,
            on_dtmf=on_dtmf,
            mark_interval_ms=mark_interval_ms,
            start_timeout_s=start_timeout_s,
            guard=self._check_signature,
        )
        self.rest_hangup = rest_hangup
        self.auth_token: str | None = None
        self.public_url: str | None = None

    def add_routes(self, app: web.Application, server: ServerContext) -> None:
        """``GET /twilio`` (the stream) and ``POST /twilio/voice`` (TwiML)."""
        config = server.config
        secret = config.twilio_auth_token
        self.auth_token = (
            (secret.get_secret_value() if secret else None)
            or os.environ.get("TWILIO_AUTH_TOKEN")
            or None
        )
        self.public_url = config.public_url
        if self.hangup is None and self.rest_hangup and self.auth_token:
            self.hangup = TwilioRestHangup(self.auth_token)
        super().add_routes(app, server)
        app.router.add_post(self.dialect.path + "/voice", self._voice)

    async def _voice(self, request: web.Request) -> web.Response:
        """The call webhook: TwiML connecting the call to our stream."""
        if not await self._check_signature(request, False):
            return web.Response(status=403, text="twilio: request signature is not valid\n")
        form = await request.post()
        parameters = {
            k.lower(): v for k, v in form.items() if k in ("From", "To") and isinstance(v, str)
        }
        url = stream_url(self.public_url or request.host, self.dialect.path)
        return web.Response(text=connect_twiml(url, parameters), content_type="text/xml")

    async def _check_signature(self, request: web.Request, websocket: bool) -> bool:
        token = self.auth_token
        if not token:
            return True
        params: list[tuple[str, str]] = []
        if request.method == "POST":
            form = await request.post()
            params = [(k, v) for k, v in form.items() if isinstance(v, str)]
        secure, plain = ("wss", "ws") if websocket else ("https", "http")
        urls = [f"{scheme}://{request.host}{request.path_qs}" for scheme in (secure, plain)]
        if self.public_url:
            base = stream_url(self.public_url, "") if websocket else self.public_url.rstrip("/")
            urls.insert(0, base.rstrip("/") + request.path_qs)
        return validate_signature(token, request.headers.get(SIGNATURE_HEADER), urls, params)


class TelnyxHandler(MediaStreamHandler):
    """Telnyx media streaming at ``/telnyx``."""

    def __init__(
        self, *, hangup: HangupHook | None = None, on_dtmf: DtmfHook | None = None
    ) -> None:
        super().__init__(TELNYX, hangup=hangup, on_dtmf=on_dtmf)


class PlivoHandler(MediaStreamHandler):
    """Plivo audio streams at ``/plivo``."""

    def __init__(
        self, *, hangup: HangupHook | None = None, on_dtmf: DtmfHook | None = None
    ) -> None:
        super().__init__(PLIVO, hangup=hangup, on_dtmf=on_dtmf)


class ExotelHandler(MediaStreamHandler):
    """Exotel AgentStream (Voicebot applet) at ``/exotel``."""

    def __init__(
        self, *, hangup: HangupHook | None = None, on_dtmf: DtmfHook | None = None
    ) -> None:
        super().__init__(EXOTEL, hangup=hangup, on_dtmf=on_dtmf)


class VonageHandler(MediaStreamHandler):
    """Vonage Voice API WebSocket endpoints at ``/vonage``."""

    def __init__(
        self, *, hangup: HangupHook | None = None, on_dtmf: DtmfHook | None = None
    ) -> None:
        super().__init__(VONAGE, hangup=hangup, on_dtmf=on_dtmf)
