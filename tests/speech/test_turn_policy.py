"""The turn policy: when the caller's turn ends, from VAD segments and transcripts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbgraph.errors import IllegalTransitionError
from vbgraph.speech.turn_policy import (
    TRANSITIONS,
    Completeness,
    TurnEvent,
    TurnPolicy,
    TurnState,
    TurnTiming,
    classify,
)

MS = 1_000_000


def policy(**timing: float) -> TurnPolicy:
    return TurnPolicy(TurnTiming(**timing))  # type: ignore[arg-type]


class TestClassify:
    """How the text of a turn reads."""

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("", Completeness.EMPTY),
            ("  ", Completeness.EMPTY),
            ("I want to book a flight.", Completeness.COMPLETE),
            ("Is it open?", Completeness.COMPLETE),
            ("I want to book a flight and", Completeness.CONTINUING),
            ("I went there and.", Completeness.CONTINUING),
            ("so um", Completeness.CONTINUING),
            ("Because,", Completeness.CONTINUING),
            ("well...", Completeness.CONTINUING),
            ("I want to book a flight", Completeness.UNKNOWN),
        ],
    )
    def test_text_is_classified_by_its_last_word_then_its_punctuation(
        self, text: str, kind: Completeness
    ) -> None:
        """Continuation words win over a full stop; terminal punctuation means complete."""
        assert classify(text) is kind

    def test_the_word_list_is_configurable(self) -> None:
        """A custom list replaces the default one, case-insensitively."""
        assert classify("yo quiero y", ["Y"]) is Completeness.CONTINUING
        assert classify("I went there and", ["y"]) is Completeness.UNKNOWN


class TestSilenceEndpointing:
    """With no text, the turn ends stop_ms after speech stopped."""

    def test_the_turn_ends_stop_ms_after_speech_stopped(self) -> None:
        """Deadline = stop + stop_ms; the end comes once, with the segment's times."""
        p = policy(stop_ms=600)
        p.speech_started(100 * MS)
        assert p.deadline_ns is None
        p.speech_stopped(900 * MS)
        assert p.state is TurnState.WAITING and p.deadline_ns == 1500 * MS
        assert p.deadline_reached(1499 * MS) is None
        end = p.deadline_reached(1500 * MS)
        assert end is not None and (end.started_ns, end.stopped_ns) == (100 * MS, 900 * MS)
        assert end.text == "" and p.state is TurnState.IDLE
        assert p.deadline_reached(2000 * MS) is None

    def test_speech_before_the_deadline_cancels_it_and_the_turn_goes_on(self) -> None:
        """A pause shorter than the delay keeps one turn, now in the thinking profile."""
        p = policy(stop_ms=600, thinking_ms=1000)
        p.speech_started(0)
        p.speech_stopped(500 * MS)
        p.speech_started(800 * MS)
        assert p.deadline_ns is None and p.thinking
        p.speech_stopped(1200 * MS)
        assert p.deadline_ns == 2200 * MS
        end = p.deadline_reached(2200 * MS)
        assert end is not None and end.started_ns == 0


class TestTranscriptAwareEndpointing:
    """A final transcript changes the delay that runs from the end of speech."""

    def test_a_complete_sentence_ends_after_min_delay(self) -> None:
        """Final "Book it." -> stop + min_delay_ms."""
        p = policy(min_delay_ms=200)
        p.speech_started(0)
        p.transcript("Book it.", True, 400 * MS)
        p.speech_stopped(500 * MS)
        assert p.deadline_ns == 700 * MS

    def test_a_late_final_shortens_the_running_wait(self) -> None:
        """A final arriving after the stop recomputes the deadline from the stop."""
        p = policy(stop_ms=600, min_delay_ms=200)
        p.speech_started(0)
        p.speech_stopped(500 * MS)
        assert p.deadline_ns == 1100 * MS
        p.transcript("Book it.", True, 650 * MS)
        assert p.deadline_ns == 700 * MS

    def test_a_trailing_conjunction_waits_max_delay(self) -> None:
        """ "... and" -> stop + max_delay_ms."""
        p = policy(max_delay_ms=1500)
        p.speech_started(0)
        p.transcript("I need a taxi and", True, 400 * MS)
        p.speech_stopped(500 * MS)
        assert p.deadline_ns == 2000 * MS

    def test_the_text_is_the_finals_then_the_latest_interim(self) -> None:
        """Interims are replaced by the final that follows them."""
        p = policy()
        p.speech_started(0)
        p.transcript("I need", False, 100 * MS)
        p.transcript("I need a taxi", True, 200 * MS)
        p.transcript("to the", False, 300 * MS)
        assert p.text == "I need a taxi to the"
        p.transcript("to the station.", True, 400 * MS)
        p.speech_stopped(500 * MS)
        end = p.deadline_reached(10_000 * MS)
        assert end is not None and end.text == "I need a taxi to the station."
        assert end.completeness is Completeness.COMPLETE

    def test_a_final_without_vad_starts_and_times_a_turn(self) -> None:
        """An STT-only graph: the delay counts from the final's arrival."""
        p = policy(min_delay_ms=200)
        p.transcript("Hello.", True, 1000 * MS)
        assert p.state is TurnState.WAITING and p.deadline_ns == 1200 * MS

    def test_end_now_ends_a_waiting_turn_at_once(self) -> None:
        """end_now is for the end of the input; it does nothing when not waiting."""
        p = policy()
        assert p.end_now(0) is None
        p.speech_started(0)
        p.speech_stopped(100 * MS)
        end = p.end_now(150 * MS)
        assert end is not None and p.state is TurnState.IDLE


class TestModelVerdict:
    """An end-of-turn model's verdict picks min_delay_ms or max_delay_ms."""

    def test_complete_waits_min_delay_from_the_stop(self) -> None:
        """No text, verdict complete: stop + min_delay_ms instead of stop_ms."""
        p = policy(stop_ms=600, min_delay_ms=200)
        p.speech_started(0)
        p.speech_stopped(500 * MS)
        p.model_verdict(True)
        assert p.deadline_ns == 700 * MS
        end = p.deadline_reached(700 * MS)
        assert end is not None and end.model_complete is True

    def test_incomplete_waits_max_delay_even_after_a_full_stop(self) -> None:
        """Text "Book it." but verdict incomplete: stop + max_delay_ms."""
        p = policy(min_delay_ms=200, max_delay_ms=1500)
        p.speech_started(0)
        p.transcript("Book it.", True, 400 * MS)
        p.speech_stopped(500 * MS)
        p.model_verdict(False)
        assert p.deadline_ns == 2000 * MS

    def test_a_continuation_word_outweighs_a_complete_verdict(self) -> None:
        """ "... and" waits max_delay_ms whatever the model says."""
        p = policy(max_delay_ms=1500)
        p.speech_started(0)
        p.transcript("a taxi and", True, 400 * MS)
        p.speech_stopped(500 * MS)
        p.model_verdict(True)
        assert p.deadline_ns == 2000 * MS

    def test_a_verdict_is_ignored_unless_waiting_and_cleared_by_speech(self) -> None:
        """While speaking the verdict does nothing; new speech forgets an old one."""
        p = policy(stop_ms=600, thinking_ms=1000)
        p.speech_started(0)
        p.model_verdict(True)
        assert p.deadline_ns is None
        p.speech_stopped(500 * MS)
        p.model_verdict(True)
        p.speech_started(600 * MS)
        p.speech_stopped(900 * MS)
        assert p.deadline_ns == 1900 * MS  # thinking_ms: the old verdict is gone
        end = p.deadline_reached(1900 * MS)
        assert end is not None and end.model_complete is None


class TestTransitions:
    """The table is the whole truth."""

    def test_an_illegal_transition_names_role_state_and_event(self) -> None:
        """Two starts in a row raise IllegalTransitionError."""
        p = TurnPolicy(role="turn 't'")
        p.speech_started(0)
        with pytest.raises(IllegalTransitionError) as info:
            p.speech_started(1)
        assert (info.value.role, info.value.state, info.value.event) == (
            "turn 't'",
            "speaking",
            "speech_started",
        )

    def test_discard_forgets_the_turn(self) -> None:
        """After discard, nothing is pending and the text is gone."""
        p = policy()
        p.speech_started(0)
        p.transcript("mm-hm", True, 10 * MS)
        p.speech_stopped(20 * MS)
        p.discard()
        assert p.state is TurnState.IDLE and p.deadline_ns is None and p.text == ""
        p.speech_stopped(30 * MS)  # a stray stop after a discard is harmless
        assert p.state is TurnState.IDLE

    def test_every_event_is_covered_by_the_table_or_refused(self) -> None:
        """Each (state, event) pair outside the table raises."""
        for state in TurnState:
            for event in TurnEvent:
                p = TurnPolicy()
                p.state = state
                if (state, event) in TRANSITIONS:
                    assert p._apply(event) is TRANSITIONS[(state, event)]
                else:
                    with pytest.raises(IllegalTransitionError):
                        p._apply(event)

    @given(st.lists(st.sampled_from(["start", "stop", "final", "tick"]), max_size=60))
    def test_a_turn_ends_at_most_once_per_stop(self, script: list[str]) -> None:
        """Any well-formed script: turn ends never outnumber speech stops plus finals."""
        p = policy()
        now = 0
        speaking = False
        ends = stops = finals = 0
        for step in script:
            now += 100 * MS
            if step == "start" and not speaking:
                p.speech_started(now)
                speaking = True
            elif step == "stop" and speaking:
                p.speech_stopped(now)
                speaking = False
                stops += 1
            elif step == "final":
                p.transcript("ok.", True, now)
                finals += 1
            elif step == "tick" and p.deadline_reached(now + 2000 * MS) is not None:
                ends += 1
                assert p.deadline_reached(now + 4000 * MS) is None
        assert ends <= stops + finals


def test_the_docs_list_every_row_of_the_table() -> None:
    """docs/turn-taking.md shows the table as it is."""
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "turn-taking.md").read_text()
    for (state, event), new in TRANSITIONS.items():
        assert f"| {state.value} | {event.value} | {new.value} |" in text
