"""The ``s2s.openai_realtime`` node: the asyncio shell around :mod:`.protocol`.

Theory of operation
-------------------
``start`` opens and configures the session (:class:`.connection.RealtimeConnection`);
a failure there fails the session start with an error naming the node. Then
three things run: ``process`` appends the caller's audio (never waiting on
the socket); the background task ``run`` reads server events and keeps the
connection (reconnecting with backoff when it breaks); an emitter task sends
the reply's audio downstream at the pace downstream takes it, so a long reply
arriving at once never stops the reader from seeing the caller barge in.

*Turns.* With ``turn_detection: server_vad`` the server finds the turns and
answers by itself; its VAD events are published as ``UserSpeechStarted`` /
``UserSpeechStopped``. With ``none`` a local VAD in front decides: on
``UserSpeechStopped`` the node commits the audio up to the event's ``pts``
(waiting for that audio if it is still queued) and asks for a response.

*Barge-in* is a cancel scope, not an error: speech that starts while the bot
is audible makes the node call ``ctx.interrupt`` (unless ``barge_in: false``,
e.g. when a turn node decides), and every interruption of the session, ours
or another node's, lands in :meth:`OpenAIRealtime.on_interrupt`: drop the
audio not yet emitted, ``response.cancel`` if a response runs, and
``conversation.item.truncate`` at what the caller heard (see
:mod:`.playback` for how that is measured), so the model's memory of the
conversation matches what was said.

At ~500 lines this module is over the 400 the style asks for: it is one
concept (the session's asyncio shell) whose parts share the connection and
the reply in flight; the logic that stands alone is already out, sans-I/O
(``protocol``, ``playback``, ``turns``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ...agent.context import ConversationContext, Tool, ToolCall
from ...errors import ProviderProtocolError, VbgraphError
from ...events import (
    AgentReplied,
    BotTextPlayed,
    Event,
    Metric,
    TranscriptReceived,
    UserSpeechStarted,
    UserSpeechStopped,
)
from ...formats import AudioFormat
from ...frames import AudioFrame, Frame, TextFrame, TranscriptFrame
from ...node import (
    Node,
    NodeContext,
    NodeParams,
    Port,
    audio_port,
    frame_port,
    text_port,
)
from ...registry import register
from .._backoff import Backoff
from .._secrets import resolve_api_key
from . import events as ev
from .config import Api, connect_headers, connect_url
from .connection import Closed, RealtimeConnection, error_for
from .params import API_KEY_ENV, RealtimeParams
from .playback import PlaybackClock, Reply, ReplyAudio
from .states import ConnState
from .turns import Turns

__all__ = ["OpenAIRealtime"]

_MS = 1_000_000
_BENIGN = {"response_cancel_not_active", "conversation_already_has_active_response"}
"""Error codes of races the protocol allows (our cancel crossed the server's own)."""


@register
class OpenAIRealtime(Node):
    """Example launch line::

        nodes:
          mic:  {type: file.source, path: speech.wav, realtime: true}
          s2s:  {type: s2s.openai_realtime, instructions: "Be brief.", voice: alloy}
          play: {type: audio.playout}
          out:  {type: file.sink, path: reply.wav}
        edges: [mic -> s2s -> play -> out]

    Speech to speech with the OpenAI Realtime API over WebSocket
    (``wss://api.openai.com/v1/realtime?model=...``; GA protocol, or the beta
    one with ``api: beta``). Needs the ``websockets`` package.

    *Audio.* ``audio_format`` is the format both ways: ``pcm16`` (16-bit mono
    at 24 kHz; negotiation resamples a microphone to it) or ``pcmu`` /
    ``pcma`` (G.711 at 8 kHz, for telephone lines: no transcoding at all).
    The reply's audio leaves on ``out`` as it arrives (faster than real time):
    wire it to ``audio.playout`` or a transport-out, which pace it and report
    what was played.

    *Text.* The caller's transcripts (``transcription_model``) go out on
    ``transcript`` and are published as ``TranscriptReceived``; each reply's
    transcript goes out whole on ``text`` and is published as
    ``AgentReplied`` (and ``BotTextPlayed`` with the words heard when cut).

    *Tools.* As for ``llm.openai``: ``{name, description, parameters,
    function: 'pkg.mod:func'}``; the node runs the call, sends the result
    (``function_call_output``) and asks for the spoken answer.

    *Key.* ``api_key``, else ``$OPENAI_API_KEY`` (a missing key fails at
    start; a refused one fails the session start with the server's message).
    """

    type_name: ClassVar[str] = "s2s.openai_realtime"

    class Params(RealtimeParams):
        """Parameters of ``s2s.openai_realtime``."""

    params: Params
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(doc="The reply's audio, as it arrives (pace it with audio.playout)."),
        "text": text_port(doc="Each reply's transcript, once it is complete (optional)."),
        "transcript": frame_port(TranscriptFrame, doc="The caller's transcripts (optional)."),
    }

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """The input accepts exactly the session's audio format."""
        fmt = _typed(params).audio_format.fmt
        inputs = {
            "in": audio_port(
                rates=(fmt.rate,),
                channels=(1,),
                encodings=(fmt.encoding,),
                doc="The caller's audio (pcm16 24 kHz, or G.711 8 kHz).",
            )
        }
        return inputs, cls.outputs

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """``out`` carries the session's audio format."""
        return {"out": _typed(params).audio_format.fmt}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = self._p = _typed(params)
        self.where = f"s2s.openai_realtime '{node_id}'"
        self.context = ConversationContext("", [Tool.from_spec(spec) for spec in p.tools])
        """The conversation as heard: transcripts, truncated after a barge-in; runs the tools."""
        self.config = p.session_config(list(self.context.tools.values()))
        """The session asked for (sent at connect and as the end-of-input barrier)."""
        self._conn: RealtimeConnection | None = None
        self._early: list[ev.ServerEvent] = []
        self._key = ""
        self._audio = ReplyAudio(p.audio_format.fmt, p.truncate_from)
        self._reply: Reply | None = None  # the response in flight
        self._heard: Reply | None = None  # the reply whose audio went out last
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._tools: set[asyncio.Task[None]] = set()
        self._turns = Turns(p.turn_detection == "none", p.max_tool_rounds)
        self._speech_start: dict[str, int] = {}  # user item id -> session ns
        self._audio_t0: int | None = None  # pts of the first audio sent on this connection
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.SpeechStarted: self._on_speech_started,
            ev.SpeechStopped: self._on_speech_stopped,
            ev.InputCommitted: self._on_committed,
            ev.UserTranscript: self._on_user_transcript,
            ev.ResponseCreated: self._on_response_created,
            ev.AudioDelta: self._on_audio,
            ev.TranscriptDelta: self._on_transcript_delta,
            ev.TranscriptDone: self._on_transcript_done,
            ev.ResponseDone: self._on_response_done,
            ev.ItemTruncated: self._on_truncated,
            ev.ServerError: self._on_server_error,
        }
        self.truncations: list[int] = []
        """``audio_end_ms`` of every truncation the server confirmed."""
        self.dropped_audio_ms = 0
        """Input audio dropped while disconnected or with the socket stalled."""
        self.server_errors = 0
        """``error`` events from the server (benign races included)."""

    subscribes: ClassVar[tuple[type[Event], ...] | None] = (
        *PlaybackClock.EVENTS,
        UserSpeechStarted,
        UserSpeechStopped,
    )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the key, connect and configure the session (fails the start if refused)."""
        self._key = resolve_api_key(self._p.api_key, API_KEY_ENV, node_id=self.id) or ""
        self._conn, self._early = await self._open()
        self._poke()

    async def _open(self) -> tuple[RealtimeConnection, list[ev.ServerEvent]]:
        p = self._p
        self._audio_t0 = None
        return await RealtimeConnection.open(
            connect_url(p.url, p.model),
            connect_headers(self._key, Api(p.api)),
            Api(p.api),
            self.config,
            where=self.where,
            timeout_s=p.connect_timeout_s,
        )

    async def process(self, port: str, frame: Frame) -> None:
        """Send the caller's audio (dropped, counted, while the link is down)."""
        if type(frame) is not AudioFrame or not frame.data:
            return
        conn = self._conn
        if conn is None or not conn.protocol.ready:
            self.dropped_audio_ms += frame.duration_ns // _MS
            return
        if self._audio_t0 is None:
            self._audio_t0 = frame.pts
        conn.protocol.send_audio(frame.data)
        self._turns.audio_sent(frame.pts + frame.duration_ns, conn.protocol, self.ctx.now_ns())
        conn.flush()

    async def run(self) -> None:
        """Read server events and keep the connection; emit the reply audio meanwhile."""
        emitter = asyncio.create_task(self._emit_loop(), name=f"{self.id}:emit")
        try:
            if self._early:
                self._on_events(self._early)
                self._early = []
            await self._keep_connected()
            await asyncio.Event().wait()  # the emitter goes on until the node stops
        finally:
            emitter.cancel()
            for task in self._tools:
                task.cancel()

    async def _keep_connected(self) -> None:
        backoff = Backoff(attempts=self._p.reconnect_attempts)
        while (conn := self._conn) is not None:
            closed = await conn.serve(self._on_events, self._on_protocol_error)
            self._lost_reply()
            if closed.by_us:
                return
            self._conn = None
            self.ctx.report("connection", _broken(self.where, closed))
            while self._conn is None:
                delay = backoff.next_delay()
                if delay is None or closed.reason.startswith("invalid_request_error"):
                    self._poke()
                    return  # given up: input audio is dropped (counted) from now on
                await asyncio.sleep(delay)
                try:
                    self._conn, early = await self._open()
                except VbgraphError as exc:
                    self.ctx.report("reconnect", exc)
                    continue
                backoff.reset()
                self._on_events(early)

    async def on_end(self) -> None:
        """The input ended: wait (at most ``end_timeout_s``) for the reply in flight."""
        conn = self._conn
        if conn is None or conn.protocol.state is not ConnState.READY:
            return
        if self._turns.commit_at is not None:
            self._turns.commit(conn.protocol, self.ctx.now_ns())
        # A barrier: session.updated comes after the server has handled all our audio,
        # so a turn its VAD ends in that audio is known (and awaited) by then.
        conn.protocol.send_session_update(self.config)
        conn.flush()
        try:
            async with asyncio.timeout(self._p.end_timeout_s):
                while self._conn is conn and not (conn.protocol.ready and self._is_quiet()):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            self.ctx.report(
                "on_end",
                VbgraphError(
                    f"{self.where}: a reply was still due {self._p.end_timeout_s} s "
                    "after the input ended; the node ends without it"
                ),
            )

    async def stop(self) -> None:
        """Close the socket."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    # -- server events -------------------------------------------------------------------------

    def _on_events(self, events: list[ev.ServerEvent]) -> None:
        handlers = self._handlers
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
        self._poke()

    def _on_protocol_error(self, exc: ProviderProtocolError) -> None:
        self.ctx.report("receive", ProviderProtocolError(f"{self.where}: {exc}"))

    def _session_ns(self, audio_ms: int) -> int:
        return (self._audio_t0 or 0) + audio_ms * _MS

    def _on_speech_started(self, event: ev.SpeechStarted) -> None:
        self._turns.speech(started=True)
        start = self._session_ns(event.audio_start_ms)
        if self.config.transcription_model is not None:
            while len(self._speech_start) >= 16:  # transcripts that never came
                del self._speech_start[next(iter(self._speech_start))]
            self._speech_start[event.item_id] = start
        self.ctx.publish(UserSpeechStarted(pts=start))
        self._maybe_barge_in()

    def _on_speech_stopped(self, event: ev.SpeechStopped) -> None:
        self._turns.speech(started=False)
        self.ctx.publish(UserSpeechStopped(pts=self._session_ns(event.audio_end_ms)))

    def _on_committed(self, event: ev.InputCommitted) -> None:
        vad = self.config.turn_detection
        self._turns.committed(self.ctx.now_ns(), vad is not None and vad.create_response)

    def _on_user_transcript(self, event: ev.UserTranscript) -> None:
        text = event.transcript.strip()
        if not text:
            return
        start = self._speech_start.pop(event.item_id, self.ctx.now_ns())
        epoch = self.ctx.epoch
        self.context.add_user(text)
        self.emit("transcript", TranscriptFrame(text, pts=start, epoch=epoch))
        self.ctx.publish(TranscriptReceived(text=text, speech_start_ns=start, epoch=epoch))

    def _on_response_created(self, event: ev.ResponseCreated) -> None:
        self._turns.response_created()
        self._reply = Reply(event.response_id, self.ctx.epoch)

    def _on_audio(self, event: ev.AudioDelta) -> None:
        reply = self._reply
        if reply is None or reply.epoch < self.ctx.epoch:
            return  # stale: the session was interrupted since this response began
        now = self.ctx.now_ns()
        if not reply.has_audio and (ms := self._turns.first_audio(now)) is not None:
            self.ctx.publish(Metric(metric="s2s.openai_realtime.ttfb_ms", value=ms, unit="ms"))
        self._heard = reply
        self._audio.push(reply, event.data, now)
        self._wake.set()

    def _on_transcript_delta(self, event: ev.TranscriptDelta) -> None:
        if self._reply is not None:
            self._reply.text.add(event.audio_ms, event.delta)
            self.context.append_assistant(event.delta)

    def _on_transcript_done(self, event: ev.TranscriptDone) -> None:
        if self._reply is not None:
            self._reply.text.final = event.transcript.strip()

    def _on_response_done(self, event: ev.ResponseDone) -> None:
        reply, self._reply = self._reply, None
        conn = self._conn
        if reply is not None and reply.text.text:
            interrupted = reply.interrupted or event.status != "completed"
            text = reply.text.text
            self.emit("text", TextFrame(text, pts=self.ctx.now_ns(), epoch=reply.epoch))
            self.ctx.publish(AgentReplied(text=text, epoch=reply.epoch, interrupted=interrupted))
        if event.calls and event.status == "completed" and reply is not None:
            calls = [ToolCall(c.call_id, c.name, c.arguments) for c in event.calls]
            self.context.add_tool_calls(calls)
            task = asyncio.create_task(self._run_tools(calls, reply.epoch))
            self._tools.add(task)
            task.add_done_callback(self._tool_done)
        elif conn is not None:
            self._turns.response_done(conn.protocol)

    def _on_truncated(self, event: ev.ItemTruncated) -> None:
        self.truncations.append(event.audio_end_ms)

    def _on_server_error(self, event: ev.ServerError) -> None:
        self.server_errors += 1
        if event.code in _BENIGN:
            return
        self.ctx.report("server", error_for(self.where, event))

    def _lost_reply(self) -> None:
        """The connection ended: a response in flight will never finish."""
        reply, self._reply = self._reply, None
        self._turns.lost()
        if reply is not None and reply.text.text:
            self.ctx.publish(
                AgentReplied(text=reply.text.text, epoch=reply.epoch, interrupted=True)
            )

    # -- turns and barge-in --------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Playout events measure what was heard; a local VAD's events end manual turns."""
        kind = type(event)
        if kind is UserSpeechStarted or kind is UserSpeechStopped:
            if self.config.turn_detection is None and event.source != self.id:
                self._on_local_vad(kind is UserSpeechStarted, event.pts)
            return
        self._audio.clock.on_event(event)
        self._poke()

    def _on_local_vad(self, started: bool, pts: int) -> None:
        conn = self._conn
        if started:
            self._turns.local_start()
            self._maybe_barge_in()
        elif conn is not None:
            self._turns.local_stop(pts, conn.protocol, self.ctx.now_ns())
            conn.flush()

    def _bot_audible(self) -> bool:
        now = self.ctx.now_ns()
        conn = self._conn
        busy = conn is not None and not conn.protocol.can_create_response
        return busy or bool(self._audio) or self._audio.clock.unheard(now)

    def _maybe_barge_in(self) -> None:
        if self._p.barge_in and self._bot_audible():
            self.ctx.interrupt("s2s.openai_realtime: the caller spoke")

    def on_interrupt(self, epoch: int) -> None:
        """Drop unsent reply audio, cancel the response, truncate at what was heard."""
        now = self.ctx.now_ns()
        unheard = bool(self._audio) or self._audio.clock.unheard(now)
        self._audio.clear()
        conn = self._conn
        if conn is None:
            return
        protocol = conn.protocol
        cancelled = protocol.send_response_cancel()
        reply, item = self._heard, protocol.last_audio_item
        # Truncate the reply whose audio went out last if some of it was not heard, or
        # it is the response we just cancelled (more audio was coming).
        cut = unheard or (cancelled and reply is not None and reply is self._reply)
        if reply is not None and item is not None and item.response_id == reply.response_id and cut:
            self._heard = None
            reply.interrupted = True
            sent = protocol.send_truncate(item.item_id, self._audio.clock.heard_ms(now))
            heard = reply.text.heard(sent)
            self.context.record_played(heard)
            self.ctx.publish(BotTextPlayed(text=heard, epoch=reply.epoch, interrupted=True))
        conn.flush()
        self._poke()

    # -- output and tools ----------------------------------------------------------------------

    async def _emit_loop(self) -> None:
        audio, wake = self._audio, self._wake
        while True:
            frame = audio.next_frame(self.ctx.now_ns(), self.ctx.epoch)
            if frame is None:
                self._poke()
                wake.clear()
                await wake.wait()
                continue
            self.emit("out", frame)
            await self.ctx.drain()

    async def _run_tools(self, calls: list[ToolCall], epoch: int) -> None:
        for call in calls:
            result = await self.context.call_tool(call)
            self.context.add_tool_result(call.id, result)
            if self._conn is None:
                return
            self._conn.protocol.send_function_output(call.id, result)
            self._conn.flush()
        conn = self._conn
        if conn is None or epoch < self.ctx.epoch:
            return  # the caller spoke meanwhile: their new turn gets the answer
        self._turns.tools_answered(conn.protocol)
        conn.flush()

    def _tool_done(self, task: asyncio.Task[None]) -> None:
        self._tools.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.ctx.report("tools", task.exception() or RuntimeError())
        self._poke()

    def _poke(self) -> None:
        """Something ``on_end`` may be waiting for changed."""
        self._changed.set()

    def _is_quiet(self) -> bool:
        """Nothing in flight: no turn awaiting its reply, no response, tool or audio left."""
        conn = self._conn
        protocol = None if conn is None else conn.protocol
        return self._turns.quiet(protocol) and not self._tools and not self._audio


def _typed(params: NodeParams) -> OpenAIRealtime.Params:
    assert isinstance(params, OpenAIRealtime.Params)
    return params


def _broken(where: str, closed: Closed) -> VbgraphError:
    from ...errors import ProviderConnectionError

    return ProviderConnectionError(f"{where}: the connection closed ({closed})")
