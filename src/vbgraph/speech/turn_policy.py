"""End-of-turn decisions (endpointing), sans-I/O.

Theory of operation
-------------------
The user's *turn* is everything they say before the bot should answer. A VAD
reports speech segments (``speech_started`` / ``speech_stopped``) and an STT
reports text (interim hypotheses and finals). The turn ends some delay after
the last segment stopped, and the delay depends on what was said:

==================================================  ==================
the turn's text so far                               delay after stop
==================================================  ==================
ends with a continuation word ("and", "um", ...)     ``max_delay_ms``
ends a sentence (``.``, ``!``, ``?``)                ``min_delay_ms``
anything else, or no text (silence endpointing)      ``stop_ms``
the same, once the user has paused mid-turn          ``thinking_ms``
==================================================  ==================

With an end-of-turn *model* (``smart_turn``), the node reports its verdict
with :meth:`TurnPolicy.model_verdict` after ``speech_stopped``; until the
caller speaks again the verdict replaces the last two rows: "complete" waits
``min_delay_ms``, "not complete" ``max_delay_ms``. A trailing continuation
word still waits ``max_delay_ms`` whatever the model says (either signal of
"not finished" wins: waiting is cheaper than cutting the caller off).

The delay counts from the moment speech stopped, not from when the transcript
arrived: a final that arrives late shortens or lengthens the wait that is
already running, and if the new deadline has passed the turn ends at once.
Speech that starts before the deadline cancels it; the turn goes on, and from
then on the user counts as *thinking* (they paused mid-answer), so silence
alone waits ``thinking_ms`` instead of ``stop_ms``.

The policy is a three-state machine driven only by the table
:data:`TRANSITIONS` through :meth:`TurnPolicy._apply`. It does no I/O and owns
no timer: after each call the caller reads :attr:`TurnPolicy.deadline_ns` and
arms (or disarms) one timer for it, and when that timer fires calls
:meth:`TurnPolicy.deadline_reached`, which returns the ended turn exactly once.
Times are integer nanoseconds on whatever clock the caller uses.

::

    idle --speech_started--> speaking --speech_stopped--> waiting --deadline--> idle
      |                          ^                           |
      +--final_transcript--------|------------------------> waiting
                                 +-------speech_started------+
    (any state) --discard--> idle
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..errors import IllegalTransitionError

__all__ = [
    "CONTINUATION_WORDS",
    "TRANSITIONS",
    "Completeness",
    "TurnEnd",
    "TurnEvent",
    "TurnPolicy",
    "TurnState",
    "TurnTiming",
    "classify",
]

_MS = 1_000_000

CONTINUATION_WORDS: frozenset[str] = frozenset(
    {
        # conjunctions and clause openers: the sentence is not over
        "and",
        "but",
        "or",
        "so",
        "because",
        "cause",
        "since",
        "if",
        "then",
        "that",
        "which",
        "who",
        "when",
        "while",
        "although",
        "though",
        "unless",
        "until",
        "like",
        "with",
        "to",
        "for",
        "of",
        "the",
        "a",
        "an",
        "my",
        "is",
        # fillers: the user is thinking
        "um",
        "uh",
        "er",
        "erm",
        "hmm",
        "uhm",
        "ah",
        "well",
    }
)
"""Default words after which the user is probably not finished (English)."""

_TERMINAL = (".", "!", "?")
_STRIP = ".,;:!?\"'()[]\u2026-\u2013\u2014"  # ... and the en and em dashes


class TurnState(StrEnum):
    """Where the user's turn is."""

    IDLE = "idle"
    """No turn in progress."""
    SPEAKING = "speaking"
    """The user is speaking (VAD)."""
    WAITING = "waiting"
    """The user stopped; the turn ends at :attr:`TurnPolicy.deadline_ns` unless they go on."""


class TurnEvent(StrEnum):
    """What can happen to a turn."""

    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"
    INTERIM_TRANSCRIPT = "interim_transcript"
    FINAL_TRANSCRIPT = "final_transcript"
    DEADLINE = "deadline"
    DISCARD = "discard"


S, E = TurnState, TurnEvent

TRANSITIONS: dict[tuple[TurnState, TurnEvent], TurnState] = {
    (S.IDLE, E.SPEECH_STARTED): S.SPEAKING,
    # A stop without a start: the turn was discarded while the user still spoke.
    (S.IDLE, E.SPEECH_STOPPED): S.IDLE,
    (S.IDLE, E.INTERIM_TRANSCRIPT): S.IDLE,
    # A final with no VAD segment around it (an STT-only graph, or a late final):
    # the turn ends after the text's delay, counted from now.
    (S.IDLE, E.FINAL_TRANSCRIPT): S.WAITING,
    (S.IDLE, E.DISCARD): S.IDLE,
    (S.SPEAKING, E.SPEECH_STOPPED): S.WAITING,
    (S.SPEAKING, E.INTERIM_TRANSCRIPT): S.SPEAKING,
    (S.SPEAKING, E.FINAL_TRANSCRIPT): S.SPEAKING,
    (S.SPEAKING, E.DISCARD): S.IDLE,
    (S.WAITING, E.SPEECH_STARTED): S.SPEAKING,
    (S.WAITING, E.INTERIM_TRANSCRIPT): S.WAITING,
    (S.WAITING, E.FINAL_TRANSCRIPT): S.WAITING,
    (S.WAITING, E.DEADLINE): S.IDLE,
    (S.WAITING, E.DISCARD): S.IDLE,
}
"""The whole truth about turn states; ``docs/turn-taking.md`` lists every row."""


class Completeness(StrEnum):
    """What the text of a turn says about whether the user has finished."""

    EMPTY = "empty"
    COMPLETE = "complete"
    CONTINUING = "continuing"
    UNKNOWN = "unknown"


def classify(text: str, continuation_words: Iterable[str] = CONTINUATION_WORDS) -> Completeness:
    """Whether ``text`` reads as a finished sentence, an unfinished one, or neither.

    The last word is checked first, so "I went there and." still counts as
    unfinished; an ellipsis ("so...") means trailing off, not a full stop.
    """
    stripped = text.strip()
    if not stripped:
        return Completeness.EMPTY
    last = stripped.split()[-1].lower().strip(_STRIP)
    # The policy passes a frozenset it lowercased once; other callers get it done here.
    words = (
        continuation_words
        if isinstance(continuation_words, frozenset)
        else frozenset(w.lower() for w in continuation_words)
    )
    if last in words or stripped.endswith(("...", "…")):
        return Completeness.CONTINUING
    if stripped.endswith(_TERMINAL):
        return Completeness.COMPLETE
    return Completeness.UNKNOWN


@dataclass(frozen=True, slots=True)
class TurnTiming:
    """The delays of a :class:`TurnPolicy`, in milliseconds (see the module docstring)."""

    stop_ms: float = 600
    min_delay_ms: float = 200
    max_delay_ms: float = 1500
    thinking_ms: float = 1000
    continuation_words: frozenset[str] = CONTINUATION_WORDS


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """An ended turn: its text (may be empty with no STT) and when speech began and ended."""

    text: str
    started_ns: int
    stopped_ns: int
    completeness: Completeness
    model_complete: bool | None = None
    """The end-of-turn model's last verdict in this turn (``None``: no model ran)."""


class TurnPolicy:
    """Decides when the user's turn ends. No I/O, no timers: see the module docstring.

    After every call, read :attr:`deadline_ns` and arm one timer for it (or
    cancel the timer if it is ``None``); when the timer fires, call
    :meth:`deadline_reached`. A deadline already in the past means "now".
    """

    __slots__ = (
        "_finals",
        "_interim",
        "_model_complete",
        "_started_ns",
        "_stopped_ns",
        "_thinking",
        "_words",
        "deadline_ns",
        "role",
        "state",
        "timing",
    )

    def __init__(self, timing: TurnTiming | None = None, role: str = "turn policy") -> None:
        self.timing = timing or TurnTiming()
        self._words = frozenset(w.lower() for w in self.timing.continuation_words)
        self.role = role
        self.state = TurnState.IDLE
        self.deadline_ns: int | None = None
        """When the turn ends unless something happens first; ``None`` if not waiting."""
        self._finals: list[str] = []
        self._interim = ""
        self._started_ns = 0
        self._stopped_ns = 0
        self._thinking = False
        self._model_complete: bool | None = None

    # -- the state machine -------------------------------------------------------

    def _apply(self, event: TurnEvent) -> TurnState:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalTransitionError(self.role, self.state.value, event.value) from None
        return self.state

    # -- inputs --------------------------------------------------------------------

    def speech_started(self, now_ns: int) -> None:
        """The VAD heard speech start. Cancels a pending end of turn (the turn goes on)."""
        if self.state is TurnState.IDLE:
            self._started_ns = now_ns
            self._thinking = False
        elif self.state is TurnState.WAITING:
            self._thinking = True
        self._apply(TurnEvent.SPEECH_STARTED)
        self.deadline_ns = None
        self._model_complete = None

    def speech_stopped(self, now_ns: int) -> None:
        """The VAD heard speech stop: the turn ends after a delay that depends on the text."""
        if self._apply(TurnEvent.SPEECH_STOPPED) is TurnState.WAITING:
            self._stopped_ns = now_ns
            self._set_deadline()

    def model_verdict(self, complete: bool) -> None:
        """An end-of-turn model judged the audio up to the stop; moves a waiting deadline.

        Ignored unless the turn is waiting (the caller may have spoken again).
        The new deadline counts from the stop, like a late transcript's.
        """
        if self.state is not TurnState.WAITING:
            return
        self._model_complete = complete
        self._set_deadline()

    def transcript(self, text: str, final: bool, now_ns: int) -> None:
        """Text from the STT: an interim hypothesis, or a final that replaces it."""
        if not final:
            self._apply(TurnEvent.INTERIM_TRANSCRIPT)
            self._interim = text.strip()
            return
        was = self.state
        self._apply(TurnEvent.FINAL_TRANSCRIPT)
        if text.strip():
            self._finals.append(text.strip())
        self._interim = ""
        if was is TurnState.IDLE:
            self._started_ns = self._stopped_ns = now_ns
            self._thinking = False
        if self.state is TurnState.WAITING:
            self._set_deadline()

    def deadline_reached(self, now_ns: int) -> TurnEnd | None:
        """The caller's timer fired. Returns the ended turn, once; ``None`` if not due yet."""
        if self.deadline_ns is None or now_ns < self.deadline_ns:
            return None
        text = self.text
        end = TurnEnd(
            text, self._started_ns, self._stopped_ns, self.completeness, self._model_complete
        )
        self._apply(TurnEvent.DEADLINE)
        self._clear()
        return end

    def end_now(self, now_ns: int) -> TurnEnd | None:
        """End a waiting turn without waiting for its deadline (the input ended)."""
        if self.deadline_ns is None:
            return None
        self.deadline_ns = min(self.deadline_ns, now_ns)
        return self.deadline_reached(now_ns)

    def discard(self) -> None:
        """Forget the turn in progress (it overlapped the bot and did not interrupt it)."""
        self._apply(TurnEvent.DISCARD)
        self._clear()

    # -- what the policy knows ---------------------------------------------------------

    @property
    def text(self) -> str:
        """The turn's text so far: the finals, then the latest interim hypothesis."""
        parts = [*self._finals, self._interim] if self._interim else self._finals
        return " ".join(parts)

    @property
    def completeness(self) -> Completeness:
        """How the text so far ends (decides the delay)."""
        return classify(self.text, self._words)

    @property
    def thinking(self) -> bool:
        """True once the user has paused mid-turn and gone on speaking."""
        return self._thinking

    def delay_ms(self) -> float:
        """The delay after speech stopped that the text so far calls for."""
        t = self.timing
        kind = self.completeness
        if self._model_complete is not None:
            finished = self._model_complete and kind is not Completeness.CONTINUING
            return t.min_delay_ms if finished else t.max_delay_ms
        if kind is Completeness.COMPLETE:
            return t.min_delay_ms
        if kind is Completeness.CONTINUING:
            return t.max_delay_ms
        return t.thinking_ms if self._thinking else t.stop_ms

    def _set_deadline(self) -> None:
        self.deadline_ns = self._stopped_ns + round(self.delay_ms() * _MS)

    def _clear(self) -> None:
        self.deadline_ns = None
        self._finals = []
        self._interim = ""
        self._thinking = False
        self._model_complete = None
