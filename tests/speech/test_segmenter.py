"""The speech segmenter: start after start_ms of speech, stop after stop_ms of quiet."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vbgraph.speech.segmenter import SegmenterState, SpeechSegmenter, VadParams

MS = 1_000_000


def feed(seg: SpeechSegmenter, pattern: str, volume: float = -20.0) -> list[tuple[str, int]]:
    """One 10 ms frame per character: 'S' speech, '.' not speech."""
    out = []
    for i, c in enumerate(pattern):
        t = seg.update(c == "S", volume, i * 10 * MS, 10 * MS)
        if t is not None:
            out.append((t.kind, t.at_ns // MS))
    return out


def test_a_segment_starts_at_the_first_speech_frame_and_stops_at_the_last() -> None:
    """start_ms=30, stop_ms=50: times are the run's start and the last speech frame's end."""
    seg = SpeechSegmenter(VadParams(start_ms=30, stop_ms=50))
    assert feed(seg, "..SSSSSS......") == [("started", 20), ("stopped", 80)]


def test_a_click_shorter_than_start_ms_is_ignored() -> None:
    """Two speech frames then quiet never start a segment."""
    seg = SpeechSegmenter(VadParams(start_ms=30, stop_ms=50))
    assert feed(seg, ".SS....SS....") == []
    assert seg.state is SegmenterState.QUIET


def test_a_pause_shorter_than_stop_ms_does_not_end_the_segment() -> None:
    """A 30 ms gap inside speech keeps one segment."""
    seg = SpeechSegmenter(VadParams(start_ms=20, stop_ms=50))
    assert feed(seg, "SSSS...SSSS......") == [("started", 0), ("stopped", 110)]


def test_quiet_frames_do_not_count_as_speech() -> None:
    """Below min_volume, VAD speech is ignored."""
    seg = SpeechSegmenter(VadParams(start_ms=20, stop_ms=50, min_volume=-40))
    assert feed(seg, "SSSSSSSS", volume=-50) == []


@given(st.text(alphabet="S.", max_size=200))
def test_starts_and_stops_alternate(pattern: str) -> None:
    """Transitions alternate started/stopped, and times never go backwards."""
    seg = SpeechSegmenter(VadParams(start_ms=20, stop_ms=40))
    events = feed(seg, pattern)
    kinds = [k for k, _ in events]
    assert kinds == ["started", "stopped"] * (len(kinds) // 2) + (
        ["started"] if len(kinds) % 2 else []
    )
    times = [t for _, t in events]
    assert times == sorted(times)
