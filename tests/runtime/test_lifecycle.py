"""The session lifecycle table."""

from __future__ import annotations

import pytest

from vbgraph.errors import IllegalTransitionError
from vbgraph.runtime.lifecycle import TRANSITIONS, SessionEvent, SessionState, apply


def test_the_normal_life_is_created_starting_running_ended() -> None:
    """start, started, drained."""
    s = SessionState.CREATED
    for ev in (SessionEvent.START, SessionEvent.STARTED, SessionEvent.DRAINED):
        s = apply(s, ev)
    assert s is SessionState.ENDED


def test_an_illegal_event_names_role_state_and_event() -> None:
    """Starting a running session is refused with a clear message."""
    with pytest.raises(IllegalTransitionError, match=r"session x: event 'start'.*'running'"):
        apply(SessionState.RUNNING, SessionEvent.START, role="session x")


def test_every_non_final_state_can_be_cancelled() -> None:
    """cancel is allowed from every state that is not finished."""
    for state in SessionState:
        if not state.finished:
            assert (state, SessionEvent.CANCEL) in TRANSITIONS
