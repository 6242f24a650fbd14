"""Barge-in: when the caller's speech interrupts the bot, sans-I/O.

Theory of operation
-------------------
While the bot speaks, the caller may start talking. Three things can be going
on, and the policy tells them apart without cutting the bot off for a cough:

1. *Noise or a short sound* — speech shorter than ``min_interruption_ms``:
   ignored; the bot never pauses.
2. *A real interruption* — the speech lasts ``min_interruption_ms``, so the
   bot **pauses** (the playout keeps its buffer; ``BargeInStarted``); as soon
   as a transcript brings at least ``min_words`` words that are not all
   backchannels, the interruption is **confirmed** and the caller of the
   policy interrupts the session (new epoch, buffers cleared).
3. *A false interruption* — the bot paused but no qualifying words came within
   ``false_interruption_ms`` (a cough, "mm-hm"): the bot **resumes** where it
   paused (``BargeInCancelled``) and the caller's sound is discarded.

With ``min_words=0`` an interruption is confirmed by duration alone.
Interruptions can be turned off for the whole graph (``allowed=False``) or
until the bot's current speech ends (:meth:`BargeInPolicy.mute_utterance`).
Speech that overlaps the bot and does not interrupt it is *ignored*: the
caller should drop it from the user's turn, as if their microphone were muted.

The machine is the table :data:`TRANSITIONS`, mapping (state, event) to the
next state and the action the caller must take; :meth:`BargeInPolicy._apply`
is the only code that changes state. The policy owns no timer: after every
call, arm one timer for :attr:`BargeInPolicy.deadline_ns` (``None``: none) and
call :meth:`BargeInPolicy.deadline_reached` when it fires. An action is
returned *after* the state changed, so the caller may publish events that
re-enter the policy (an interruption makes the playout report
``BotSpeechStopped`` at once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..errors import IllegalTransitionError

__all__ = [
    "BACKCHANNELS",
    "TRANSITIONS",
    "BargeInAction",
    "BargeInEvent",
    "BargeInPolicy",
    "BargeInState",
    "BargeInTiming",
    "is_interruption",
]

_MS = 1_000_000
_STRIP = ".,;:!?\"'()[]…"

BACKCHANNELS: frozenset[str] = frozenset(
    {
        "yeah",
        "yes",
        "yep",
        "yup",
        "ok",
        "okay",
        "right",
        "sure",
        "uh-huh",
        "uh huh",
        "uhhuh",
        "mhm",
        "mm-hm",
        "mm-hmm",
        "mmhm",
        "mm",
        "hmm",
        "hm",
        "um",
        "uh",
        "ah",
        "oh",
        "i see",
        "got it",
        "cool",
        "alright",
    }
)
"""Default words that acknowledge without taking the turn (English)."""


class BargeInState(StrEnum):
    """Who is speaking, as far as interruptions go."""

    QUIET = "quiet"
    """The bot is not speaking: nothing to interrupt."""
    BOT_SPEAKING = "bot_speaking"
    """The bot speaks; the caller is silent (or being ignored)."""
    CANDIDATE = "candidate"
    """The caller started speaking over the bot; not yet ``min_interruption_ms`` long."""
    PAUSED = "paused"
    """The bot is paused, waiting up to ``false_interruption_ms`` for words."""


class BargeInEvent(StrEnum):
    """What can happen (the policy's methods name these)."""

    BOT_STARTED = "bot_started"
    BOT_STOPPED = "bot_stopped"
    USER_STARTED = "user_started"
    USER_STARTED_MUTED = "user_started_muted"
    USER_STOPPED = "user_stopped"
    OVERLAP_STOPPED = "overlap_stopped"
    TRANSCRIPT = "transcript"
    WORDS = "words"
    MIN_SPEECH = "min_speech"
    MIN_SPEECH_WITH_WORDS = "min_speech_with_words"
    NO_WORDS = "no_words"
    MUTE = "mute"
    RESET = "reset"


class BargeInAction(StrEnum):
    """What the caller must do after a transition."""

    PAUSE = "pause"
    """Pause the bot's playout (publish ``BargeInStarted``)."""
    RESUME = "resume"
    """Resume the playout (publish ``BargeInCancelled``) and discard the caller's sound."""
    INTERRUPT = "interrupt"
    """Interrupt the session (``ctx.interrupt``): the caller's speech is a new turn."""
    IGNORE = "ignore"
    """The caller's speech overlapped the bot without interrupting: discard it."""


S, E, A = BargeInState, BargeInEvent, BargeInAction

TRANSITIONS: dict[tuple[BargeInState, BargeInEvent], tuple[BargeInState, BargeInAction | None]] = {
    (S.QUIET, E.BOT_STARTED): (S.BOT_SPEAKING, None),
    (S.QUIET, E.BOT_STOPPED): (S.QUIET, None),
    (S.QUIET, E.USER_STARTED): (S.QUIET, None),
    (S.QUIET, E.USER_STOPPED): (S.QUIET, None),
    (S.QUIET, E.TRANSCRIPT): (S.QUIET, None),
    (S.QUIET, E.MUTE): (S.QUIET, None),
    (S.QUIET, E.RESET): (S.QUIET, None),
    (S.BOT_SPEAKING, E.BOT_STARTED): (S.BOT_SPEAKING, None),
    (S.BOT_SPEAKING, E.BOT_STOPPED): (S.QUIET, None),
    (S.BOT_SPEAKING, E.USER_STARTED): (S.CANDIDATE, None),
    (S.BOT_SPEAKING, E.USER_STARTED_MUTED): (S.BOT_SPEAKING, None),
    (S.BOT_SPEAKING, E.USER_STOPPED): (S.BOT_SPEAKING, None),
    (S.BOT_SPEAKING, E.OVERLAP_STOPPED): (S.BOT_SPEAKING, A.IGNORE),
    (S.BOT_SPEAKING, E.TRANSCRIPT): (S.BOT_SPEAKING, None),
    (S.BOT_SPEAKING, E.MUTE): (S.BOT_SPEAKING, None),
    (S.BOT_SPEAKING, E.RESET): (S.QUIET, None),
    (S.CANDIDATE, E.BOT_STARTED): (S.CANDIDATE, None),
    (S.CANDIDATE, E.BOT_STOPPED): (S.QUIET, None),
    (S.CANDIDATE, E.USER_STOPPED): (S.BOT_SPEAKING, A.IGNORE),
    (S.CANDIDATE, E.TRANSCRIPT): (S.CANDIDATE, None),
    (S.CANDIDATE, E.MIN_SPEECH): (S.PAUSED, A.PAUSE),
    (S.CANDIDATE, E.MIN_SPEECH_WITH_WORDS): (S.QUIET, A.INTERRUPT),
    (S.CANDIDATE, E.MUTE): (S.BOT_SPEAKING, None),
    (S.CANDIDATE, E.RESET): (S.QUIET, None),
    (S.PAUSED, E.BOT_STARTED): (S.PAUSED, None),
    (S.PAUSED, E.BOT_STOPPED): (S.QUIET, None),
    (S.PAUSED, E.USER_STARTED): (S.PAUSED, None),
    (S.PAUSED, E.USER_STOPPED): (S.PAUSED, None),
    (S.PAUSED, E.TRANSCRIPT): (S.PAUSED, None),
    (S.PAUSED, E.WORDS): (S.QUIET, A.INTERRUPT),
    (S.PAUSED, E.NO_WORDS): (S.BOT_SPEAKING, A.RESUME),
    (S.PAUSED, E.MUTE): (S.BOT_SPEAKING, A.RESUME),
    (S.PAUSED, E.RESET): (S.QUIET, None),
}
"""(state, event) → (next state, action); ``docs/turn-taking.md`` lists every row."""


def _tokens(text: str) -> list[str]:
    return [t for t in (w.strip(_STRIP).lower() for w in text.split()) if t]


def is_interruption(text: str, min_words: int, backchannels: Iterable[str] = BACKCHANNELS) -> bool:
    """True if ``text`` has at least ``min_words`` words and they are not all backchannels.

    Multi-word backchannels ("uh huh", "got it") are matched as a whole text too.
    """
    words = _tokens(text)
    if len(words) < min_words:
        return False
    if not words:
        return True  # min_words == 0: duration alone decides
    channel = frozenset(b.lower() for b in backchannels)
    if " ".join(words) in channel:
        return False
    return not all(w in channel for w in words)


@dataclass(frozen=True, slots=True)
class BargeInTiming:
    """The settings of a :class:`BargeInPolicy` (see the module docstring)."""

    allowed: bool = True
    min_interruption_ms: float = 300
    min_words: int = 1
    false_interruption_ms: float = 1000
    backchannels: frozenset[str] = BACKCHANNELS


class BargeInPolicy:
    """Decides whether the caller's speech interrupts the bot. See the module docstring."""

    __slots__ = (
        "_finals",
        "_interim",
        "_muted",
        "_overlap",
        "_user_speaking",
        "deadline_ns",
        "role",
        "state",
        "timing",
    )

    def __init__(self, timing: BargeInTiming | None = None, role: str = "barge-in policy") -> None:
        self.timing = timing or BargeInTiming()
        self.role = role
        self.state = BargeInState.QUIET
        self.deadline_ns: int | None = None
        """When :meth:`deadline_reached` must be called; ``None`` if no timer is needed."""
        self._user_speaking = False
        self._overlap = False  # the caller's current speech is being ignored
        self._muted = False  # interruptions off until the bot's speech ends
        self._finals: list[str] = []
        self._interim = ""

    def _apply(self, event: BargeInEvent) -> BargeInAction | None:
        try:
            self.state, action = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalTransitionError(self.role, self.state.value, event.value) from None
        if self.state not in (BargeInState.CANDIDATE, BargeInState.PAUSED):
            self.deadline_ns = None
            self._finals = []
            self._interim = ""
        return action

    @property
    def allowed(self) -> bool:
        """True if the bot's speech may be interrupted now."""
        return self.timing.allowed and not self._muted

    @property
    def text(self) -> str:
        """What the caller said since they started speaking over the bot."""
        return " ".join([*self._finals, self._interim] if self._interim else self._finals)

    # -- inputs ---------------------------------------------------------------------

    def bot_started(self, now_ns: int) -> BargeInAction | None:
        """The bot's audio started playing."""
        was = self.state
        action = self._apply(BargeInEvent.BOT_STARTED)
        if was is BargeInState.QUIET and self._user_speaking:
            # The caller was already talking when the bot began: that is overlap too.
            return self._user_started(now_ns)
        return action

    def bot_stopped(self, now_ns: int) -> BargeInAction | None:
        """The bot's audio stopped (drained or cleared); ends a per-utterance mute."""
        self._muted = False
        self._overlap = False
        return self._apply(BargeInEvent.BOT_STOPPED)

    def user_started(self, now_ns: int) -> BargeInAction | None:
        """The VAD heard the caller start speaking."""
        self._user_speaking = True
        return self._user_started(now_ns)

    def _user_started(self, now_ns: int) -> BargeInAction | None:
        if self.state is BargeInState.BOT_SPEAKING and not self.allowed:
            self._overlap = True
            return self._apply(BargeInEvent.USER_STARTED_MUTED)
        action = self._apply(BargeInEvent.USER_STARTED)
        if self.state is BargeInState.CANDIDATE:
            self._overlap = False
            self.deadline_ns = now_ns + round(self.timing.min_interruption_ms * _MS)
            if self.timing.min_interruption_ms <= 0:
                return self.deadline_reached(now_ns)
        return action

    def user_stopped(self, now_ns: int) -> BargeInAction | None:
        """The VAD heard the caller stop speaking."""
        self._user_speaking = False
        if self._overlap and self.state is BargeInState.BOT_SPEAKING:
            self._overlap = False
            return self._apply(BargeInEvent.OVERLAP_STOPPED)
        return self._apply(BargeInEvent.USER_STOPPED)

    def transcript(self, text: str, final: bool, now_ns: int) -> BargeInAction | None:
        """Text from the STT; confirms a pending interruption if it qualifies."""
        if self.state not in (BargeInState.CANDIDATE, BargeInState.PAUSED):
            return self._apply(BargeInEvent.TRANSCRIPT)
        if final:
            if text.strip():
                self._finals.append(text.strip())
            self._interim = ""
        else:
            self._interim = text.strip()
        if self.state is BargeInState.PAUSED and self._qualifies():
            return self._apply(BargeInEvent.WORDS)
        return self._apply(BargeInEvent.TRANSCRIPT)

    def deadline_reached(self, now_ns: int) -> BargeInAction | None:
        """The caller's timer fired; ``None`` if nothing was due."""
        if self.deadline_ns is None or now_ns < self.deadline_ns:
            return None
        if self.state is BargeInState.CANDIDATE:
            if self._qualifies():
                return self._apply(BargeInEvent.MIN_SPEECH_WITH_WORDS)
            action = self._apply(BargeInEvent.MIN_SPEECH)
            self.deadline_ns = now_ns + round(self.timing.false_interruption_ms * _MS)
            return action
        # PAUSED: no words in time. If the sound goes on, it is ignored till it stops.
        self._overlap = self._user_speaking
        return self._apply(BargeInEvent.NO_WORDS)

    def mute_utterance(self) -> BargeInAction | None:
        """No interruptions until the bot's current speech ends (``InterruptionsDisabled``)."""
        self._muted = True
        if self.state in (BargeInState.CANDIDATE, BargeInState.PAUSED):
            self._overlap = self._user_speaking
        return self._apply(BargeInEvent.MUTE)

    def unmute(self) -> None:
        """Interruptions allowed again (``InterruptionsEnabled``); the graph setting still holds."""
        self._muted = False

    def reset(self) -> BargeInAction | None:
        """The session was interrupted: the bot's speech is gone, nothing to resume."""
        self._overlap = False
        return self._apply(BargeInEvent.RESET)

    def _qualifies(self) -> bool:
        t = self.timing
        return is_interruption(self.text, t.min_words, t.backchannels)
