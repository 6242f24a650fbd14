"""Control events: what is published on a session's bus.

Data frames follow edges; control events go to every node that subscribes and
to whoever iterates ``session.events()``. Feedback (the bot started speaking →
the turn detector) therefore needs no cycle in the data graph.

Events are frozen values with the session time ``pts`` (ns) and the id of the
node that published them (``source``; ``None`` for the runtime itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "AgentReplied",
    "BargeInCancelled",
    "BargeInStarted",
    "BotSpeechStarted",
    "BotSpeechStopped",
    "BotTextPlayed",
    "DtmfPressed",
    "Event",
    "Interrupt",
    "InterruptionsDisabled",
    "InterruptionsEnabled",
    "Metric",
    "NodeError",
    "ProviderSwitched",
    "SessionStateChanged",
    "TranscriptReceived",
    "TurnEnded",
    "UserSpeechStarted",
    "UserSpeechStopped",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every bus event."""

    name: ClassVar[str] = "event"
    pts: int = field(default=-1, kw_only=True)
    """Session time in ns; -1 (the default) means "now": the bus stamps it on publish."""
    source: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class UserSpeechStarted(Event):
    """A VAD heard the user start speaking."""

    name: ClassVar[str] = "user_speech_started"


@dataclass(frozen=True, slots=True)
class UserSpeechStopped(Event):
    """A VAD heard the user stop speaking (after its hangover)."""

    name: ClassVar[str] = "user_speech_stopped"


@dataclass(frozen=True, slots=True)
class BotSpeechStarted(Event):
    """Transport-out started playing bot audio."""

    name: ClassVar[str] = "bot_speech_started"


@dataclass(frozen=True, slots=True)
class BotSpeechStopped(Event):
    """Transport-out finished (or was cut off) playing bot audio."""

    name: ClassVar[str] = "bot_speech_stopped"
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class BargeInStarted(Event):
    """The user may be interrupting: playout pauses (not yet an ``Interrupt``)."""

    name: ClassVar[str] = "barge_in_started"


@dataclass(frozen=True, slots=True)
class BargeInCancelled(Event):
    """It was not an interruption (a cough, a backchannel): playout resumes where it paused."""

    name: ClassVar[str] = "barge_in_cancelled"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class InterruptionsDisabled(Event):
    """The bot's speech may not be interrupted until its current span of speech ends.

    Publish it just before queueing an utterance that must be heard whole (a legal
    disclaimer). The turn detector ignores barge-in until the next
    ``BotSpeechStopped`` (or an ``InterruptionsEnabled``); the caller's speech
    that overlaps it is discarded, as if their microphone were muted.
    """

    name: ClassVar[str] = "interruptions_disabled"


@dataclass(frozen=True, slots=True)
class InterruptionsEnabled(Event):
    """Barge-in is allowed again (ends an ``InterruptionsDisabled`` early)."""

    name: ClassVar[str] = "interruptions_enabled"


@dataclass(frozen=True, slots=True)
class TranscriptReceived(Event):
    """An STT node recognised what the user said (for UIs and logs; the frame went out too).

    ``speech_start_ns`` is the session time the utterance's audio began;
    ``pts`` is when the transcript was ready, so their difference includes the
    recogniser's latency. ``epoch`` is the one its ``TranscriptFrame`` carries.
    """

    name: ClassVar[str] = "transcript_received"
    text: str = ""
    final: bool = True
    confidence: float = 1.0
    language: str | None = None
    speech_start_ns: int = 0
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class TurnEnded(Event):
    """The turn detector decided the user finished their turn."""

    name: ClassVar[str] = "turn_ended"
    text: str = ""


@dataclass(frozen=True, slots=True)
class Interrupt(Event):
    """The session was interrupted; frames of epochs below ``epoch`` are stale."""

    name: ClassVar[str] = "interrupt"
    epoch: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DtmfPressed(Event):
    """The caller pressed a key on their phone (``0``-``9``, ``*``, ``#``, ``A``-``D``).

    Published by ``transport.in`` for telephony transports that report key presses.
    """

    name: ClassVar[str] = "dtmf"
    digit: str = ""


@dataclass(frozen=True, slots=True)
class ProviderSwitched(Event):
    """A ``fallback`` slot moved its work from one provider node to another.

    ``slot`` is the slot's node id, ``from_node``/``to_node`` the provider
    node ids (``slot/0``, ``slot/1`` ...), ``reason`` why (``error: ...``,
    ``ttfb timeout``, ``start failed``, ``recovered``), ``replayed`` how many
    frames of the unanswered turn were sent again to the new provider.
    """

    name: ClassVar[str] = "provider_switched"
    slot: str = ""
    from_node: str = ""
    to_node: str = ""
    reason: str = ""
    replayed: int = 0


@dataclass(frozen=True, slots=True)
class NodeError(Event):
    """A node raised. The session goes on; the frame that failed is counted as dropped."""

    name: ClassVar[str] = "node_error"
    node_id: str = ""
    phase: str = ""
    port: str | None = None
    error_type: str = ""
    message: str = ""

    def __str__(self) -> str:
        where = f"node '{self.node_id}'" + (f" port '{self.port}'" if self.port else "")
        return f"{where} failed in {self.phase}: {self.error_type}: {self.message}"


@dataclass(frozen=True, slots=True)
class AgentReplied(Event):
    """An agent node finished a reply (for UIs and logs; the text went out on its port).

    ``intent`` names the rule that matched (``agent.rules``; empty for a fallback
    or an LLM). ``interrupted`` is true when a barge-in cut the reply short; then
    ``text`` is what had been generated when it was cut.
    """

    name: ClassVar[str] = "agent_replied"
    text: str = ""
    intent: str = ""
    epoch: int = 0
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class BotTextPlayed(Event):
    """Exactly which text of the bot's reply of ``epoch`` the caller heard.

    Optional: a node that knows the alignment of text to played audio (a TTS
    node with word timings, together with ``audio.playout``'s ``played``)
    publishes it when a reply stops; agent nodes then truncate their
    conversation context to ``text`` instead of estimating it from the
    playout's timing (see ``vbgraph.agent.context``).
    """

    name: ClassVar[str] = "bot_text_played"
    text: str = ""
    epoch: int = 0
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class Metric(Event):
    """A measured value (time to first byte, queue depth ...)."""

    name: ClassVar[str] = "metric"
    metric: str = ""
    value: float = 0.0
    unit: str = ""


@dataclass(frozen=True, slots=True)
class SessionStateChanged(Event):
    """The session moved from one lifecycle state to another."""

    name: ClassVar[str] = "session_state_changed"
    old: str = ""
    new: str = ""
