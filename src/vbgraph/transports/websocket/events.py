"""Session bus events as the WebSocket protocol's ``event`` messages (sans-I/O).

Theory of operation
-------------------
A client sees what the bot hears and does: the shell hands every event of
the session's bus to :meth:`EventEncoder.encode`, which keeps a documented
subset (:data:`EventEncoder.NAMES`) and turns each into the fields of one
``{"type": "event", ...}`` message. Every message has ``event`` (its name)
and ``time_ms`` (session time, ms since the call started); the other fields
are listed in ``docs/protocols/websocket.md``.

The encoder also measures each turn's latency from the events it sees, as
``log.turns`` does: ``bot_speech_started`` carries ``voice_to_voice_ms``
(the user stopped speaking → the bot's first audio) and ``turn_to_voice_ms``
(the turn detector ended the turn → first audio), ``null`` when there was no
user turn before it (a greeting, an echo graph without a VAD), or when the
turn ended while the bot was still speaking (the reply queued behind it).

Left out on purpose: ``session_state_changed`` (the ``started``/``end``
messages say it), barge-in and interruptions-enabled bookkeeping (internal to
the turn detector) and ``bot_text_played`` (the agent's context).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    Metric,
    NodeError,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from ...formats import AudioFormat

__all__ = ["EventEncoder", "format_json"]

_MS = 1_000_000


def format_json(fmt: AudioFormat) -> dict[str, Any]:
    """An audio format as the protocol writes it (``format`` of ``start``/``started``)."""
    return {"encoding": fmt.encoding.value, "sample_rate": fmt.rate, "channels": fmt.channels}


def _ms(ns: int) -> float:
    return round(ns / _MS, 1)


def _transcript(e: TranscriptReceived) -> dict[str, Any]:
    return {
        "text": e.text,
        "final": e.final,
        "confidence": e.confidence,
        "language": e.language,
        "speech_start_ms": _ms(e.speech_start_ns),
        "epoch": e.epoch,
    }


def _agent_reply(e: AgentReplied) -> dict[str, Any]:
    return {"text": e.text, "intent": e.intent, "interrupted": e.interrupted, "epoch": e.epoch}


def _node_error(e: NodeError) -> dict[str, Any]:
    return {
        "node_id": e.node_id,
        "phase": e.phase,
        "port": e.port,
        "error_type": e.error_type,
        "message": e.message,
    }


_FIELDS: dict[type[Event], tuple[str, Callable[[Any], dict[str, Any]]]] = {
    UserSpeechStarted: ("user_speech_started", lambda e: {}),
    UserSpeechStopped: ("user_speech_stopped", lambda e: {}),
    TranscriptReceived: ("transcript", _transcript),
    TurnEnded: ("turn_ended", lambda e: {"text": e.text}),
    AgentReplied: ("agent_reply", _agent_reply),
    BotSpeechStarted: ("bot_speech_started", lambda e: {}),
    BotSpeechStopped: ("bot_speech_stopped", lambda e: {"interrupted": e.interrupted}),
    Interrupt: ("interrupt", lambda e: {"epoch": e.epoch, "reason": e.reason}),
    Metric: ("metric", lambda e: {"metric": e.metric, "value": e.value, "unit": e.unit}),
    NodeError: ("node_error", _node_error),
}


class EventEncoder:
    """Bus events → ``event`` message fields, with per-turn latency; see the module docstring."""

    NAMES: tuple[str, ...] = tuple(name for name, _ in _FIELDS.values())
    """The event names a client can receive (and list in ``start.events``)."""

    def __init__(self) -> None:
        self._user_stop: int | None = None
        self._turn_end: int | None = None
        self._bot_speaking = False

    def encode(self, event: object) -> dict[str, Any] | None:
        """The message fields for ``event`` (``event``, ``time_ms``, ...); ``None`` to skip it."""
        if not isinstance(event, Event):
            return None
        entry = _FIELDS.get(type(event))
        if entry is None:
            return None
        name, fields_of = entry
        fields: dict[str, Any] = {"event": name, "time_ms": _ms(max(event.pts, 0))}
        fields.update(fields_of(event))
        self._track(event, fields)
        return fields

    def _track(self, event: Event, fields: dict[str, Any]) -> None:
        # One latency per user turn: the first bot audio after the user stopped. Events
        # arrive in publish order, not pts order (a VAD publishes its stop after its
        # hangover), so only what the events say is compared, never their arrival.
        kind = type(event)
        if kind is UserSpeechStarted:
            self._user_stop = self._turn_end = None
        elif kind is UserSpeechStopped:
            self._user_stop = event.pts
        elif kind is TurnEnded:
            if self._bot_speaking:
                # The reply queues behind speech still playing (a greeting the user
                # talked over): its first audio has no start event to measure.
                self._user_stop = None
            else:
                self._turn_end = event.pts
        elif kind is BotSpeechStarted:
            self._bot_speaking = True
            stop, turn = self._user_stop, self._turn_end
            fields["voice_to_voice_ms"] = None if stop is None else _ms(event.pts - stop)
            fields["turn_to_voice_ms"] = None if turn is None else _ms(event.pts - turn)
            self._user_stop = self._turn_end = None
        elif kind is BotSpeechStopped:
            self._bot_speaking = False
