"""The barge-in policy: pause, confirm with words, or resume after a false interruption."""

from __future__ import annotations

import pytest

from vbgraph.errors import IllegalTransitionError
from vbgraph.speech.barge_in import (
    TRANSITIONS,
    BargeInAction,
    BargeInEvent,
    BargeInPolicy,
    BargeInState,
    BargeInTiming,
    is_interruption,
)

MS = 1_000_000
A, S = BargeInAction, BargeInState


def speaking_bot(**timing: object) -> BargeInPolicy:
    p = BargeInPolicy(BargeInTiming(**timing))  # type: ignore[arg-type]
    p.bot_started(0)
    return p


class TestWords:
    """What counts as words that interrupt."""

    @pytest.mark.parametrize(
        ("text", "min_words", "expected"),
        [
            ("wait", 1, True),
            ("yeah", 1, False),
            ("Uh-huh.", 1, False),
            ("uh huh", 1, False),
            ("yeah yeah okay", 1, False),
            ("yeah but wait", 1, True),
            ("stop", 2, False),
            ("stop please", 2, True),
            ("", 0, True),
            ("", 1, False),
        ],
    )
    def test_words_interrupt_unless_too_few_or_all_backchannels(
        self, text: str, min_words: int, expected: bool
    ) -> None:
        """At least min_words words, not all of them backchannels."""
        assert is_interruption(text, min_words) is expected

    def test_the_backchannel_list_is_configurable(self) -> None:
        """With an empty list, "yeah" interrupts."""
        assert is_interruption("yeah", 1, ())


class TestInterruption:
    """Speech over the bot, then words: the session is interrupted."""

    def test_short_speech_over_the_bot_is_ignored(self) -> None:
        """Shorter than min_interruption_ms: no pause, and the sound is dropped."""
        p = speaking_bot(min_interruption_ms=300)
        assert p.user_started(1000 * MS) is None
        assert p.state is S.CANDIDATE and p.deadline_ns == 1300 * MS
        assert p.user_stopped(1200 * MS) is A.IGNORE
        assert p.state is S.BOT_SPEAKING and p.deadline_ns is None

    def test_long_speech_pauses_and_words_confirm(self) -> None:
        """min_interruption_ms -> PAUSE; a qualifying transcript -> INTERRUPT."""
        p = speaking_bot(min_interruption_ms=300, false_interruption_ms=1000)
        p.user_started(1000 * MS)
        assert p.deadline_reached(1300 * MS) is A.PAUSE
        assert p.state is S.PAUSED and p.deadline_ns == 2300 * MS
        assert p.transcript("yeah", False, 1400 * MS) is None
        assert p.transcript("yeah wait", False, 1500 * MS) is A.INTERRUPT
        assert p.state is S.QUIET and p.deadline_ns is None

    def test_words_before_the_pause_confirm_at_once(self) -> None:
        """Words already heard when min_interruption_ms passes: straight to INTERRUPT."""
        p = speaking_bot(min_interruption_ms=300)
        p.user_started(0)
        p.transcript("stop", False, 200 * MS)
        assert p.deadline_reached(300 * MS) is A.INTERRUPT

    def test_min_words_zero_interrupts_on_duration_alone(self) -> None:
        """No STT needed with min_words=0."""
        p = speaking_bot(min_words=0, min_interruption_ms=300)
        p.user_started(0)
        assert p.deadline_reached(300 * MS) is A.INTERRUPT

    def test_a_caller_already_speaking_when_the_bot_starts_is_a_candidate(self) -> None:
        """Overlap counts from the bot's start."""
        p = BargeInPolicy()
        p.user_started(0)
        p.bot_started(500 * MS)
        assert p.state is S.CANDIDATE and p.deadline_ns == 800 * MS


class TestFalseInterruption:
    """No words in time: the bot resumes."""

    def test_no_words_within_false_interruption_ms_resumes(self) -> None:
        """A cough: PAUSE, then RESUME after false_interruption_ms."""
        p = speaking_bot(min_interruption_ms=300, false_interruption_ms=1000)
        p.user_started(0)
        assert p.deadline_reached(300 * MS) is A.PAUSE
        p.user_stopped(500 * MS)
        p.transcript("mm-hm", True, 700 * MS)
        assert p.deadline_reached(1299 * MS) is None
        assert p.deadline_reached(1300 * MS) is A.RESUME
        assert p.state is S.BOT_SPEAKING

    def test_sound_that_goes_on_after_the_resume_stays_ignored(self) -> None:
        """Still 'speaking' at the resume (music): its stop is IGNORE, no new candidate."""
        p = speaking_bot(min_interruption_ms=300, false_interruption_ms=1000)
        p.user_started(0)
        p.deadline_reached(300 * MS)
        assert p.deadline_reached(1300 * MS) is A.RESUME
        assert p.user_stopped(2000 * MS) is A.IGNORE

    def test_the_bot_stopping_ends_a_pending_interruption(self) -> None:
        """Nothing to interrupt once the bot's audio stopped."""
        p = speaking_bot()
        p.user_started(0)
        assert p.bot_stopped(100 * MS) is None
        assert p.state is S.QUIET and p.deadline_ns is None


class TestDisabling:
    """Interruptions off per graph or per utterance."""

    def test_a_graph_without_interruptions_never_pauses(self) -> None:
        """allowed=False: speech over the bot is ignored."""
        p = speaking_bot(allowed=False)
        assert p.user_started(0) is None and p.deadline_ns is None
        assert p.user_stopped(2000 * MS) is A.IGNORE

    def test_a_muted_utterance_resumes_a_pause_and_unmutes_when_the_bot_stops(self) -> None:
        """mute_utterance during a pause resumes; BotSpeechStopped allows again."""
        p = speaking_bot()
        p.user_started(0)
        p.deadline_reached(300 * MS)
        assert p.mute_utterance() is A.RESUME
        assert not p.allowed
        assert p.user_stopped(400 * MS) is A.IGNORE
        p.bot_stopped(500 * MS)
        assert p.allowed

    def test_unmute_allows_again_before_the_bot_stops(self) -> None:
        """InterruptionsEnabled ends the mute early."""
        p = speaking_bot()
        p.mute_utterance()
        p.unmute()
        p.user_started(0)
        assert p.state is S.CANDIDATE


class TestTransitions:
    """The table is the whole truth."""

    def test_an_illegal_transition_names_role_state_and_event(self) -> None:
        """A second start while a candidate is pending raises."""
        p = BargeInPolicy(role="turn 't' barge-in")
        p.bot_started(0)
        p.user_started(0)
        with pytest.raises(IllegalTransitionError) as info:
            p.user_started(1)
        assert (info.value.role, info.value.state, info.value.event) == (
            "turn 't' barge-in",
            "candidate",
            "user_started",
        )

    def test_every_event_is_covered_by_the_table_or_refused(self) -> None:
        """Each (state, event) pair outside the table raises; inside, it returns the action."""
        for state in BargeInState:
            for event in BargeInEvent:
                p = BargeInPolicy()
                p.state = state
                if (state, event) in TRANSITIONS:
                    assert p._apply(event) is TRANSITIONS[(state, event)][1]
                    assert p.state is TRANSITIONS[(state, event)][0]
                else:
                    with pytest.raises(IllegalTransitionError):
                        p._apply(event)

    def test_reset_after_an_outside_interrupt_drops_a_pause(self) -> None:
        """Another node interrupted: nothing to resume."""
        p = speaking_bot()
        p.user_started(0)
        p.deadline_reached(300 * MS)
        assert p.reset() is None and p.state is S.QUIET


def test_the_docs_list_every_row_of_the_table() -> None:
    """docs/turn-taking.md shows the table, with its actions, as it is."""
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "turn-taking.md").read_text()
    for (state, event), (new, action) in TRANSITIONS.items():
        shown = action.value if action else "—"
        assert f"| {state.value} | {event.value} | {new.value} | {shown} |" in text
