"""The ``turn`` node: end-of-turn detection and barge-in, on the session clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import ClassVar

import numpy as np
from pydantic import Field

from ..errors import ConfigError
from ..events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    InterruptionsDisabled,
    InterruptionsEnabled,
    Metric,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from ..formats import AudioFormat, Encoding
from ..frames import AudioFrame, Frame, TextFrame, TranscriptFrame
from ..node import (
    GraphPath,
    Node,
    NodeContext,
    NodeParams,
    Port,
    audio_port,
    frame_port,
    text_port,
)
from ..registry import register
from ..speech.barge_in import (
    BACKCHANNELS,
    BargeInAction,
    BargeInPolicy,
    BargeInState,
    BargeInTiming,
)
from ..speech.smart_turn import SAMPLE_RATE, AudioWindow, SmartTurnModel, shared_model
from ..speech.turn_policy import CONTINUATION_WORDS, TurnEnd, TurnPolicy, TurnState, TurnTiming
from ._params import typed

__all__ = ["Turn"]

_NS = 1_000_000_000
_PENDING = (BargeInState.CANDIDATE, BargeInState.PAUSED)
_F32 = Encoding.PCM_F32LE
_AUDIO_PORT = audio_port(
    rates=(SAMPLE_RATE,),
    channels=(1,),
    encodings=("pcm_s16le", "pcm_f32le"),
    doc="The caller's audio, for the end-of-turn model (only with model_path).",
)


class _Timer:
    """One re-armable timer on the running loop (the session clock drives it)."""

    __slots__ = ("_callback", "_handle", "_when")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None
        self._when: int | None = None

    def arm(self, when_ns: int | None, now_ns: int) -> None:
        """Fire at session time ``when_ns`` (``None``: disarm); re-arming replaces it."""
        if when_ns == self._when and (when_ns is None or self._handle is not None):
            return
        self.cancel()
        if when_ns is None:
            return
        self._when = when_ns
        delay = max(0, when_ns - now_ns) / _NS
        self._handle = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._when = None
        self._callback()

    def cancel(self) -> None:
        """Disarm."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._when = None


@register
class Turn(Node):
    """Example launch line::

        nodes:
          turn: {type: turn, stop_ms: 600, min_delay_ms: 200, max_delay_ms: 1500}
          out: {type: log}
        edges: [turn.text -> out]

    Decides when the caller has finished their turn and when they interrupt
    the bot. Feed it the STT's transcripts on ``transcript`` (interim and
    final); it listens on the bus for ``UserSpeechStarted/Stopped`` (from a VAD
    node) and ``BotSpeechStarted/Stopped`` (from ``audio.playout``).

    *End of turn.* ``stop_ms`` after the VAD reports the end of speech, or
    ``min_delay_ms`` if the transcript ends a complete sentence, or up to
    ``max_delay_ms`` after a trailing conjunction or filler ("and", "um"), or
    ``thinking_ms`` once the caller has paused mid-turn and gone on. Speech
    before the deadline cancels it. Then the node emits the whole turn's text
    on ``text`` (a ``TextFrame`` stamped with the current epoch, if there is any
    text) and publishes ``TurnEnded(text=...)``, exactly once per turn.

    *Barge-in.* While the bot speaks, caller speech longer than
    ``min_interruption_ms`` publishes ``BargeInStarted`` (the playout pauses);
    a transcript with at least ``min_words`` words that are not all
    ``backchannels`` then confirms it: ``ctx.interrupt("barge-in")``. No such
    words within ``false_interruption_ms`` publishes ``BargeInCancelled``: the
    playout resumes where it paused and the sound is dropped from the turn.
    ``allow_interruptions: false`` turns barge-in off for the graph; the
    ``InterruptionsDisabled`` event turns it off until the bot's current
    speech ends. Speech that overlaps the bot without interrupting it is
    discarded.

    *End-of-turn model* (optional). ``model_path`` names a Smart Turn v3 ONNX
    file (``pip install onnxruntime``; nothing is downloaded). It adds the
    input ``audio``: connect the caller's audio to it, and the STT to
    ``transcript`` by name (there are now two inputs). The node keeps the last
    8 s of audio and, when the VAD reports the end of speech, asks the model
    whether the turn is complete (from the audio since the turn's first
    ``UserSpeechStarted``). P >= ``model_threshold`` ends the turn after
    ``min_delay_ms``, else after ``max_delay_ms`` (a trailing "and" or "um"
    still waits ``max_delay_ms``). The call runs on the event loop (about
    25-65 ms for a model of this size on one core); a call slower than
    ``model_timeout_ms`` turns the model off for the rest of the session.
    Without ``model_path`` the rules above decide; a missing file or
    onnxruntime is a ``ConfigError`` when the graph is compiled. See
    ``docs/turn-taking.md``.
    """

    type_name: ClassVar[str] = "turn"
    subscribes: ClassVar[tuple[type[Event], ...]] = (
        UserSpeechStarted,
        UserSpeechStopped,
        BotSpeechStarted,
        BotSpeechStopped,
        InterruptionsDisabled,
        InterruptionsEnabled,
    )

    class Params(NodeParams):
        """Parameters of ``turn``."""

        stop_ms: float = Field(
            600, ge=0, le=30_000, description="Silence after speech that ends the turn."
        )
        min_delay_ms: float = Field(
            200,
            ge=0,
            le=30_000,
            description="Delay after speech when the transcript ends a complete sentence.",
        )
        max_delay_ms: float = Field(
            1500,
            ge=0,
            le=30_000,
            description="Delay after speech when the transcript ends with a conjunction "
            "or filler (the caller is not finished).",
        )
        thinking_ms: float = Field(
            1000,
            ge=0,
            le=30_000,
            description="Silence that ends the turn once the caller has paused mid-turn "
            "and gone on (they are thinking), instead of stop_ms.",
        )
        continuation_words: list[str] = Field(
            default_factory=lambda: sorted(CONTINUATION_WORDS),
            description="Last words that mean the caller is not finished (max_delay_ms).",
        )
        allow_interruptions: bool = Field(
            True, description="Let the caller interrupt the bot (barge-in)."
        )
        min_interruption_ms: float = Field(
            300, ge=0, le=10_000, description="Speech over the bot that pauses it."
        )
        min_words: int = Field(
            1,
            ge=0,
            le=50,
            description="Words (not all backchannels) that confirm an interruption; 0: "
            "duration alone interrupts.",
        )
        false_interruption_ms: float = Field(
            1000,
            ge=0,
            le=30_000,
            description="Time after the pause for words to come; then the bot resumes.",
        )
        backchannels: list[str] = Field(
            default_factory=lambda: sorted(BACKCHANNELS),
            description="Words that acknowledge without interrupting (yeah, uh-huh, ...).",
        )
        model_path: GraphPath | None = Field(
            None,
            description="A Smart Turn v3 ONNX file (input_features [batch, 80, 800]) that "
            "judges from the audio whether the turn is complete; needs onnxruntime and an "
            "edge to turn.audio. None: the rules alone decide.",
        )
        model_threshold: float = Field(
            0.5,
            ge=0,
            le=1,
            description="P(complete) from the model at or above which the turn ends after "
            "min_delay_ms (else max_delay_ms).",
        )
        model_timeout_ms: float = Field(
            250,
            ge=0,
            le=10_000,
            description="Wall time one model call may take; a slower call turns the model "
            "off for the rest of the session (rules only). 0: no limit.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "transcript": frame_port(TranscriptFrame, doc="The STT's interim and final transcripts.")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "text": text_port(doc="The caller's whole turn, once it has ended.")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, Turn.Params)
        self.turns = TurnPolicy(
            TurnTiming(
                stop_ms=p.stop_ms,
                min_delay_ms=p.min_delay_ms,
                max_delay_ms=p.max_delay_ms,
                thinking_ms=p.thinking_ms,
                continuation_words=frozenset(w.lower() for w in p.continuation_words),
            ),
            role=f"turn '{node_id}'",
        )
        self.barge_in = BargeInPolicy(
            BargeInTiming(
                allowed=p.allow_interruptions,
                min_interruption_ms=p.min_interruption_ms,
                min_words=p.min_words,
                false_interruption_ms=p.false_interruption_ms,
                backchannels=frozenset(w.lower() for w in p.backchannels),
            ),
            role=f"turn '{node_id}' barge-in",
        )
        self.ended_turns: list[TurnEnd] = []
        """Every turn this node ended, in order (for tests and inspection)."""
        self._turn_timer = _Timer(self._turn_deadline)
        self._barge_timer = _Timer(self._barge_deadline)
        self._closed = False
        self._model: SmartTurnModel | None = (
            shared_model(p.model_path) if p.model_path is not None else None
        )
        self._threshold = p.model_threshold
        self._timeout_s = p.model_timeout_ms / 1000
        self._audio = AudioWindow()
        self._turn_start_pts: int | None = None
        self.model_probabilities: list[float] = []
        """Every P(complete) the model returned, in order (for tests and inspection)."""
        self.model_disabled = False
        """True once a model call took longer than ``model_timeout_ms``."""

    # -- negotiation -----------------------------------------------------------------------

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """With ``model_path``: loads and checks the model (once per process), adds ``audio``."""
        path = typed(params, cls.Params).model_path
        if path is None:
            return cls.inputs, cls.outputs
        shared_model(path)
        return {**cls.inputs, "audio": _AUDIO_PORT}, cls.outputs

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """No audio outputs; a model without an edge to ``audio`` is an error."""
        if typed(params, cls.Params).model_path is not None and "audio" not in inputs:
            raise ConfigError(
                "the end-of-turn model needs the caller's audio: add an edge to "
                "'<this node>.audio' (16 kHz mono is negotiated), or remove model_path",
                field="model_path",
            )
        return super().output_formats(params, inputs)

    # -- inputs ------------------------------------------------------------------------

    def process(self, port: str, frame: Frame) -> None:
        """Audio: keep it for the model. A transcript: update the turn and any interruption."""
        if type(frame) is AudioFrame:
            if self._model is not None:
                self._keep(frame)
            return
        if type(frame) is not TranscriptFrame:
            return
        now = self.ctx.now_ns()
        self.turns.transcript(frame.text, frame.final, now)
        self._act(self.barge_in.transcript(frame.text, frame.final, now))
        self._sync(now)

    def on_event(self, event: Event) -> None:
        """VAD and playout events drive both policies."""
        now = self.ctx.now_ns()
        kind = type(event)
        if kind is UserSpeechStarted:
            if self.turns.state is TurnState.IDLE:
                self._turn_start_pts = event.pts or now
            self.turns.speech_started(now)
            self._act(self.barge_in.user_started(now))
        elif kind is UserSpeechStopped:
            self.turns.speech_stopped(now)
            self._act(self.barge_in.user_stopped(now))  # may discard overlapping speech
            if self._model is not None and self.turns.state is TurnState.WAITING:
                self._judge(self._model)
        elif kind is BotSpeechStarted:
            self._act(self.barge_in.bot_started(now))
        elif kind is BotSpeechStopped:
            self._act(self.barge_in.bot_stopped(now))
        elif kind is InterruptionsDisabled:
            self._act(self.barge_in.mute_utterance())
        elif kind is InterruptionsEnabled:
            self.barge_in.unmute()
        self._sync(now)

    def on_interrupt(self, epoch: int) -> None:
        """The session was interrupted (by us or anyone): nothing of the bot's is left."""
        self._act(self.barge_in.reset())
        if not self._closed:
            self._sync(self.ctx.now_ns())

    def on_end(self) -> None:
        """The transcripts ended: a turn still waiting ends now."""
        if self.turns.deadline_ns is not None and self.barge_in.state not in _PENDING:
            self._end_turn(self.turns.end_now(self.ctx.now_ns()))
        self._closed = True
        self._turn_timer.cancel()

    def stop(self) -> None:
        """Disarm the timers."""
        self._closed = True
        self._turn_timer.cancel()
        self._barge_timer.cancel()

    # -- the end-of-turn model --------------------------------------------------------------

    def _keep(self, frame: AudioFrame) -> None:
        data = np.frombuffer(frame.data, dtype="<f4" if frame.fmt.encoding is _F32 else "<i2")
        samples = data if data.dtype.kind == "f" else data.astype(np.float32) / 32768.0
        self._audio.push(samples, frame.pts + frame.duration_ns)

    def _judge(self, model: SmartTurnModel) -> None:
        """Ask the model about the turn so far and give the policy its verdict."""
        # On the loop, not in a thread: see docs/turn-taking.md ("Where the model runs").
        begin = time.perf_counter()
        probability = model.predict(self._audio.latest(self._turn_start_pts))
        elapsed = time.perf_counter() - begin
        self.model_probabilities.append(probability)
        self.turns.model_verdict(probability >= self._threshold)
        self.ctx.publish(Metric(metric="turn.model_ms", value=elapsed * 1000, unit="ms"))
        if self._timeout_s and elapsed > self._timeout_s:
            self._model = None
            self.model_disabled = True
            self._audio.clear()

    # -- decisions -----------------------------------------------------------------------

    def _act(self, action: BargeInAction | None) -> None:
        if action is None:
            return
        if action is BargeInAction.PAUSE:
            self.ctx.publish(BargeInStarted())
        elif action is BargeInAction.INTERRUPT:
            self.ctx.interrupt("barge-in")
        elif action is BargeInAction.RESUME:
            self.turns.discard()
            self.ctx.publish(BargeInCancelled(reason="no words"))
        elif action is BargeInAction.IGNORE:
            self.turns.discard()

    def _sync(self, now: int) -> None:
        """Arm the timers for what the policies wait for."""
        self._barge_timer.arm(self.barge_in.deadline_ns, now)
        # While an interruption is undecided, the turn may not end: it is either
        # discarded (false interruption) or goes on (confirmed).
        turn_due = None if self.barge_in.state in _PENDING else self.turns.deadline_ns
        self._turn_timer.arm(None if self._closed else turn_due, now)

    def _barge_deadline(self) -> None:
        now = self.ctx.now_ns()
        self._act(self.barge_in.deadline_reached(now))
        self._sync(now)

    def _turn_deadline(self) -> None:
        now = self.ctx.now_ns()
        self._end_turn(self.turns.deadline_reached(now))
        self._sync(now)

    def _end_turn(self, end: TurnEnd | None) -> None:
        if end is None:
            return
        self.ended_turns.append(end)
        if end.text and not self._closed:
            self.emit("text", TextFrame(end.text, pts=self.ctx.now_ns(), epoch=self.ctx.epoch))
        self.ctx.publish(TurnEnded(text=end.text))
