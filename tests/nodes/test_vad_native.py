"""Tests for the ``vad.native`` node: segments, events, ports, chunking, arguments."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from benchmarks.vad.dataset import label_clip
from hypothesis import given, settings
from hypothesis import strategies as st
from nodes_support import audio, make_node
from numpy.typing import NDArray
from pydantic import ValidationError

from vbgraph.events import UserSpeechStarted, UserSpeechStopped
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, TextFrame
from vbgraph.nodes.vad_native import VadNative

FMT16 = AudioFormat(16000, 1, "pcm_s16le")
SPEECH = Path(__file__).resolve().parents[2] / "graphs" / "samples" / "speech_16k.wav"


def speech() -> NDArray[np.int16]:
    with wave.open(str(SPEECH), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def with_gaps(x: NDArray[np.int16], lead: int = 16000, tail: int = 16000) -> NDArray[np.int16]:
    return np.concatenate([np.zeros(lead, "<i2"), x, np.zeros(tail, "<i2")]).astype("<i2")


def feed(node: VadNative, x: NDArray[np.int16], sizes: list[int] | None = None) -> None:
    """Feed ``x`` in chunks of ``sizes`` samples (cycled), default 20 ms."""
    sizes = sizes or [320]
    i = k = 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        node.process("in", audio(x[i : i + n].tobytes(), FMT16, pts=i * 62_500))
        i += n
        k += 1


def events(node: VadNative) -> list[object]:
    return node.ctx._session.published  # type: ignore[attr-defined]


def segments(node: VadNative) -> list[tuple[int, int]]:
    """(start, stop) pts pairs from the published events."""
    evs = events(node)
    starts = [e.pts for e in evs if isinstance(e, UserSpeechStarted)]
    stops = [e.pts for e in evs if isinstance(e, UserSpeechStopped)]
    return list(zip(starts, stops, strict=True))


def test_every_input_frame_goes_out_unchanged_as_the_same_object() -> None:
    """``out`` carries each input frame itself, text frames included."""
    node, emitted = make_node(VadNative)
    frames = [audio(bytes(500), FMT16, pts=i) for i in range(5)]
    for f in frames:
        node.process("in", f)
    text = TextFrame("hi")
    node.process("in", text)
    out = [f for port, f in emitted if port == "out"]
    assert len(out) == 6
    assert all(a is b for a, b in zip(out, [*frames, text], strict=True))


def test_labelled_speech_lies_inside_the_reported_segments() -> None:
    """On the clean clip, at least 90 % of labelled 10 ms speech units fall inside segments."""
    clip = speech()
    x = with_gaps(clip)
    node, _ = make_node(VadNative)
    feed(node, x)
    node.on_end()
    segs = segments(node)
    assert segs
    labels = np.concatenate([np.zeros(100, bool), label_clip(clip.astype(np.float64))])
    t = np.arange(len(labels)) * 10_000_000 + 5_000_000
    inside = np.zeros(len(labels), bool)
    for start, stop in segs:
        inside |= (t >= start) & (t < stop)
    assert np.mean(inside[labels]) >= 0.9
    assert segs[0][0] >= 900_000_000  # nothing in the leading second of silence


@pytest.mark.parametrize("aggressiveness", [2, 3])
def test_no_segment_in_three_seconds_of_white_noise(aggressiveness: int) -> None:
    """3 s of -30 dBFS white noise opens no segment at presets 2 and 3."""
    rng = np.random.default_rng(7)
    x = np.clip(np.rint(rng.standard_normal(48000) * 32768 * 10 ** (-30 / 20)), -32768, 32767)
    node, emitted = make_node(VadNative, aggressiveness=aggressiveness)
    feed(node, x.astype("<i2"))
    node.on_end()
    assert events(node) == []
    assert not [f for port, f in emitted if port == "speech"]


def test_events_alternate_and_carry_exact_frame_times() -> None:
    """Started and stopped alternate; their pts lie on the 20 ms frame grid."""
    node, _ = make_node(VadNative, start_ms=100, stop_ms=300)
    feed(node, with_gaps(speech()), sizes=[123, 517, 320, 7])
    node.on_end()
    evs = events(node)
    assert evs
    kinds = [type(e) for e in evs]
    assert kinds == [UserSpeechStarted, UserSpeechStopped] * (len(evs) // 2)
    assert all(e.pts % 20_000_000 == 0 for e in evs)  # type: ignore[attr-defined]
    pts = [e.pts for e in evs]  # type: ignore[attr-defined]
    assert pts == sorted(pts)


def test_the_speech_port_carries_exactly_the_segments() -> None:
    """``speech`` frames are 20 ms, each inside a segment, and cover every segment."""
    node, emitted = make_node(VadNative, start_ms=100, stop_ms=300)
    x = with_gaps(speech())
    feed(node, x)
    node.on_end()
    segs = segments(node)
    frames = [f for port, f in emitted if port == "speech"]
    assert isinstance(frames[0], AudioFrame)
    got = {f.pts for f in frames if isinstance(f, AudioFrame)}
    want = {t for start, stop in segs for t in range(start, stop, 20_000_000)}
    assert got == want
    for f in frames:
        assert isinstance(f, AudioFrame)
        i = f.pts // 62_500
        assert bytes(f.data) == x[i : i + 320].tobytes()


def test_the_end_of_the_stream_closes_an_open_segment() -> None:
    """Speech running into the end gets a UserSpeechStopped from on_end."""
    node, _ = make_node(VadNative, stop_ms=2000)
    clip = speech()
    feed(node, np.concatenate([np.zeros(16000, "<i2"), clip[: 16000 * 3]]))
    assert isinstance(events(node)[-1], UserSpeechStarted)
    node.on_end()
    assert isinstance(events(node)[-1], UserSpeechStopped)


def test_an_interruption_changes_nothing() -> None:
    """on_interrupt keeps the state: the same events as without it."""
    x = with_gaps(speech())
    a, _ = make_node(VadNative)
    b, _ = make_node(VadNative)
    feed(a, x[:48000])
    feed(b, x[:48000])
    b.on_interrupt(1)
    feed(a, x[48000:])
    feed(b, x[48000:])
    assert events(a) == events(b)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 1500), min_size=1, max_size=8))
def test_chunking_of_the_input_does_not_change_the_events(sizes: list[int]) -> None:
    """Any split of the input into chunks gives the same events as 20 ms chunks."""
    x = with_gaps(speech()[:48000], lead=8000, tail=8000)
    ref, _ = make_node(VadNative, start_ms=60, stop_ms=200)
    feed(ref, x)
    node, _ = make_node(VadNative, start_ms=60, stop_ms=200)
    feed(node, x, sizes)
    assert events(node) == events(ref)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"aggressiveness": 4}, "aggressiveness"),
        ({"aggressiveness": -1}, "aggressiveness"),
        ({"frame_ms": 25}, "frame_ms"),
        ({"start_ms": -1}, "start_ms"),
        ({"min_volume": 3}, "min_volume"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_params_raise_a_validation_error_naming_the_field(
    params: dict[str, object], field: str
) -> None:
    """Out-of-range or unknown params are refused by the Params model."""
    with pytest.raises(ValidationError, match=field):
        VadNative.Params.model_validate(params)


def test_the_input_port_asks_for_mono_int16_at_8_or_16_khz() -> None:
    """Negotiation converts anything else on the way in."""
    caps = VadNative.inputs["in"].caps
    assert caps is not None
    assert caps.rates == frozenset({8000, 16000})
    assert caps.channels == frozenset({1})
    assert {e.value for e in caps.encodings or ()} == {"pcm_s16le"}
