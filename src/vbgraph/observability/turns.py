"""Conversation turns assembled from a session's bus events (no OpenTelemetry here).

Theory of operation
-------------------
A :class:`TurnTracker` is fed every bus event of one session, in publish order,
and keeps at most two turns: the one the user is speaking (``current``) and
the one that ended and waits for the bot's answer to play (``answering``).
Times are session times (ns) taken from the events' ``pts``:

* ``UserSpeechStarted``/``UserSpeechStopped`` (the VAD) open the current turn;
* ``TranscriptReceived`` (final, not empty) marks its words as recognised;
* ``TurnEnded`` with text closes it: it becomes the answering turn (and the
  previous answering turn, whose reply never finished playing, is finished);
  an empty ``TurnEnded`` (a cough) discards it;
* ``AgentReplied`` is the reply. The turn node hands the text on before it
  publishes ``TurnEnded``, so a reply may come first: it then belongs to the
  current turn if that one has its words;
* ``BotSpeechStarted`` is the first bot audio of the answer
  once its reply has begun (``on_answered`` is called), ``BotSpeechStopped`` finishes the turn
  (``on_finished``), and so does :meth:`TurnTracker.finish` at the end.

Providers' ``Metric`` events add what each request took (:class:`ProviderCall`):
an STT latency to the current turn, an LLM time to first token and a TTS time
to first byte to the turn being answered. :func:`classify_metric` names them by
prefix (``stt.*.ms``, ``stt.*.ttfb_ms``, ``llm.*ttft_ms``, ``tts.*.ttfb_ms``,
``llm.prompt_tokens``/``llm.completion_tokens``), so a new provider that keeps
the naming is picked up without a change here.

``log.turns`` writes these turns as JSON lines; ``vbgraph.observability`` turns
them into latency metrics and a span per turn with a child span per stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    Metric,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)

__all__ = ["TURN_EVENTS", "ProviderCall", "Turn", "TurnTracker", "classify_metric"]

TURN_EVENTS: tuple[type[Event], ...] = (
    UserSpeechStarted,
    UserSpeechStopped,
    TranscriptReceived,
    TurnEnded,
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Interrupt,
    Metric,
)
"""The event types a :class:`TurnTracker` reads (for ``Node.subscribes``)."""

_UNIT_NS = {"ms": 1_000_000, "s": 1_000_000_000, "us": 1_000, "ns": 1}


def classify_metric(metric: str) -> str | None:
    """What a provider's ``Metric`` name measures: ``stt``, ``llm``, ``tts``, token kinds, or None.

    ``stt``: end of the user's audio to the transcript (``stt.<p>.ms``,
    ``stt.<p>.ttfb_ms``); ``llm``: time to first token (``llm.ttft_ms``,
    ``llm.<p>.ttft_ms``); ``tts``: time to first audio byte
    (``tts.<p>.ttfb_ms``); ``input_tokens``/``output_tokens``
    (``llm.prompt_tokens``, ``llm.completion_tokens``).
    """
    kind, _, rest = metric.partition(".")
    if kind == "stt" and (rest.endswith(".ms") or rest.endswith("ttfb_ms")):
        return "stt"
    if kind == "tts" and rest.endswith("ttfb_ms"):
        return "tts"
    if kind == "llm":
        if rest.endswith("ttft_ms"):
            return "llm"
        if rest.endswith("prompt_tokens"):
            return "input_tokens"
        if rest.endswith("completion_tokens"):
            return "output_tokens"
    return None


def metric_ns(event: Metric) -> int:
    """A duration ``Metric``'s value in ns (its ``unit``: ms by default, s, us or ns)."""
    return round(event.value * _UNIT_NS.get(event.unit or "ms", 1_000_000))


@dataclass(slots=True)
class ProviderCall:
    """One provider request of a turn, from the provider's ``Metric`` event.

    ``start`` is when the request went out (the event's time minus the
    latency it reports), ``first`` when the first result came (the event's
    time); ``end`` is known for an LLM only (its ``AgentReplied``).
    """

    stage: str
    source: str | None
    metric: str
    start: int
    first: int
    end: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    interrupted: bool = False

    @property
    def latency_ns(self) -> int:
        """Request to first result."""
        return self.first - self.start


@dataclass(slots=True)
class Turn:
    """What is known about one user turn (session times in ns; ``None``: did not happen)."""

    number: int = 0
    """1, 2, ... in the order turns ended (0 while the user is still speaking)."""
    user_start: int | None = None
    user_stop: int | None = None
    transcript: int | None = None
    stt_compute_ms: float | None = None
    """The recogniser's own compute time (``stt.whisper.ms``), when it reports one."""
    turn_end: int | None = None
    text: str = ""
    agent: int | None = None
    reply: str | None = None
    intent: str | None = None
    bot_start: int | None = None
    bot_stop: int | None = None
    interrupted: bool = False
    shown: bool = False
    stt: ProviderCall | None = None
    llm: ProviderCall | None = None
    tts: ProviderCall | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def between(a: int | None, b: int | None) -> int | None:
        """``b - a`` in ns, or None if either is unknown."""
        return None if a is None or b is None else b - a

    @property
    def end_of_turn_delay_ns(self) -> int | None:
        """End of the user's speech to the end of the turn (VAD hangover, STT, endpointing)."""
        return self.between(self.user_stop, self.turn_end)

    @property
    def voice_to_voice_ns(self) -> int | None:
        """End of the user's speech to the bot's first audio."""
        return self.between(self.user_stop, self.bot_start)

    @property
    def first_reply(self) -> int | None:
        """When the reply began: the LLM's first token if reported, else ``AgentReplied``."""
        if self.llm is not None:
            return self.llm.first
        return self.agent


TurnCallback = Callable[[Turn], None]


class TurnTracker:
    """Follows one session's events and calls back as turns are answered and finished."""

    def __init__(
        self, on_answered: TurnCallback | None = None, on_finished: TurnCallback | None = None
    ) -> None:
        self.on_answered = on_answered
        self.on_finished = on_finished
        self.current: Turn | None = None
        """The turn the user is speaking."""
        self.answering: Turn | None = None
        """Ended, waiting for its reply to play."""
        self.ended = 0
        """Turns ended so far (with words)."""

    def feed(self, event: Event) -> None:
        """Take one bus event (any type; the ones not in ``TURN_EVENTS`` are ignored)."""
        kind = type(event)
        t = event.pts
        turn: Turn | None
        if kind is UserSpeechStarted:
            turn = self._user_turn()
            if turn.user_start is None:
                turn.user_start = t
        elif kind is UserSpeechStopped:
            self._user_turn().user_stop = t
        elif kind is TranscriptReceived:
            assert isinstance(event, TranscriptReceived)
            if event.final and event.text.strip():
                self._user_turn().transcript = t
        elif kind is Metric:
            assert isinstance(event, Metric)
            self._metric(event)
        elif kind is TurnEnded:
            assert isinstance(event, TurnEnded)
            self._turn_ended(event.text, t)
        elif kind is AgentReplied:
            assert isinstance(event, AgentReplied)
            turn = self._replying()
            if turn is not None and turn.reply is None:
                turn.agent, turn.reply, turn.intent = t, event.text, event.intent
                llm = turn.llm
                if llm is not None and llm.end is None and llm.source == event.source:
                    llm.end, llm.interrupted = t, event.interrupted
        elif kind is BotSpeechStarted:
            turn = self.answering
            # Its answer has begun (a streamed reply may play before AgentReplied).
            answered = turn is not None and (turn.reply is not None or turn.llm is not None)
            if turn is not None and answered and turn.bot_start is None:
                turn.bot_start = t
                if self.on_answered is not None:
                    self.on_answered(turn)
        elif kind is BotSpeechStopped:
            assert isinstance(event, BotSpeechStopped)
            turn = self.answering
            if turn is not None and turn.bot_start is not None:
                turn.bot_stop = t
                turn.interrupted = turn.interrupted or event.interrupted
                self.finish()
        elif kind is Interrupt:
            turn = self.answering
            if turn is not None and turn.bot_start is not None and turn.bot_stop is None:
                turn.interrupted = True

    def finish(self) -> None:
        """Finish the turn being answered, if any (its reply stopped, or the session ends)."""
        turn = self.answering
        if turn is None:
            return
        self.answering = None
        if self.on_finished is not None:
            self.on_finished(turn)

    # -- internals --------------------------------------------------------------------

    def _user_turn(self) -> Turn:
        if self.current is None:
            self.current = Turn()
        return self.current

    def _replying(self) -> Turn | None:
        """The turn a reply (or its LLM metrics) belongs to."""
        turn = self.answering
        if turn is None or turn.reply is not None:
            current = self.current
            turn = current if current is not None and current.transcript is not None else None
        return turn

    def _turn_ended(self, text: str, t: int) -> None:
        turn = self.current
        self.current = None
        if not text.strip():
            return  # a discarded turn (a cough, speech over the bot that did not interrupt)
        if turn is None:
            turn = Turn()
        self.ended += 1
        turn.number = self.ended
        turn.turn_end, turn.text = t, text.strip()
        if turn.agent is not None:
            turn.agent = max(turn.agent, t)  # same instant: the reply was made for this end
        self.finish()  # the previous turn's reply never played to its end
        self.answering = turn

    def _metric(self, event: Metric) -> None:
        if event.metric == "stt.whisper.ms" and self.current is not None:
            self.current.stt_compute_ms = round(event.value, 1)
        stage = classify_metric(event.metric)
        if stage is None:
            return
        t = event.pts
        if stage == "stt":
            turn = self.current
            if turn is not None and turn.stt is None:
                turn.stt = ProviderCall(stage, event.source, event.metric, t - metric_ns(event), t)
        elif stage == "llm":
            turn = self._replying()
            if turn is not None and turn.llm is None:
                turn.llm = ProviderCall(stage, event.source, event.metric, t - metric_ns(event), t)
        elif stage == "tts":
            turn = self.answering
            if turn is not None and turn.tts is None:
                turn.tts = ProviderCall(stage, event.source, event.metric, t - metric_ns(event), t)
        else:  # token counts: the LLM call of the turn being answered (or just replied)
            for turn in (self.answering, self.current):
                if turn is not None and turn.llm is not None and turn.llm.source == event.source:
                    if stage == "input_tokens":
                        turn.llm.input_tokens = round(event.value)
                    else:
                        turn.llm.output_tokens = round(event.value)
                    break
