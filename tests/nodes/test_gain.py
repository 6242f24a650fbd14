"""Tests for ``gain``: level change on real speech, saturation, float, passthrough."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nodes_support import (
    SPEECH,
    Collect,
    as_array,
    audio,
    f32,
    make_node,
    rms,
    run_graph,
    s16,
    test_registry,
)

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat
from vbgraph.frames import TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.gain import Gain
from vbgraph.nodes.recorder import Recorder


def speech_through_gain(db: float) -> tuple[Recorder, Collect]:
    g = Graph("gain")
    g.chain(
        g.add("file.source", path=str(SPEECH)),
        g.add("recorder", id="before", keep=True),
        g.add("gain", db=db),
        g.add("test.collect", id="after"),
    )
    result, nodes = run_graph(g)
    assert result.ok, result.errors
    before, after = nodes["before"], nodes["after"]
    assert isinstance(before, Recorder) and isinstance(after, Collect)
    return before, after


def test_minus_6_db_halves_the_rms_of_speech() -> None:
    """-6 dB scales real speech's RMS by 10**(-6/20) ~ 0.501, within 1%."""
    _, after = speech_through_gain(-6)
    _, original = read_wav(SPEECH)
    ratio = rms(as_array(after.audio())) / rms(as_array(original))
    assert ratio == pytest.approx(10 ** (-6 / 20), rel=0.01)
    assert ratio == pytest.approx(0.5, rel=0.01)


def test_zero_db_passes_the_same_frame_objects() -> None:
    """db: 0 costs nothing: each frame downstream is the very frame that came in."""
    before, after = speech_through_gain(0)
    assert before.kept is not None
    assert len(after.frames) == len(before.kept) == 355
    assert all(a is b for a, b in zip(after.frames, before.kept, strict=True))


def test_frames_keep_pts_epoch_and_format() -> None:
    """A scaled frame has the input frame's pts, epoch and format."""
    before, after = speech_through_gain(-3)
    assert before.kept is not None
    for a, b in zip(after.audio_frames, before.kept, strict=True):
        assert (a.pts, a.epoch, a.fmt) == (b.pts, b.epoch, b.fmt)


def test_int16_saturates_at_full_scale() -> None:
    """+12 dB on large int16 values clips to [-32768, 32767]."""
    node, out = make_node(Gain, db=12)
    node.process("in", audio(s16([10000, -10000, 100]), AudioFormat(8000)))
    ((_, frame),) = out
    assert as_array(frame.data).tolist() == [32767, -32768, round(100 * 10 ** (12 / 20))]


def test_float32_is_scaled_without_clipping() -> None:
    """+6 dB on 0.9 gives about 1.8: float audio may exceed full scale."""
    node, out = make_node(Gain, db=6)
    fmt = AudioFormat(8000, 1, "pcm_f32le")
    node.process("in", audio(f32([0.9, -0.5]), fmt))
    ((_, frame),) = out
    np.testing.assert_allclose(
        as_array(frame.data, "pcm_f32le"), [0.9 * 10**0.3, -0.5 * 10**0.3], rtol=1e-6
    )


def test_minus_infinity_db_mutes() -> None:
    """db: -inf gives all-zero samples."""
    node, out = make_node(Gain, db=-math.inf)
    node.process("in", audio(s16([1000, -1000]), AudioFormat(8000)))
    assert as_array(out[0][1].data).tolist() == [0, 0]


def test_non_audio_frames_pass_unchanged() -> None:
    """A text frame that reaches gain goes on as the same object."""
    node, out = make_node(Gain, db=-6)
    text = TextFrame("hi")
    node.process("in", text)
    assert out == [("out", text)]


@pytest.mark.parametrize("db", [math.nan, math.inf, 121])
def test_nan_and_huge_gains_are_rejected(db: float) -> None:
    """db must be a number no greater than 120."""
    g = Graph("bad")
    with pytest.raises(ConfigError):
        g.chain(g.add("tone"), g.add("gain", db=db), g.add("test.collect"))
        g.compile()


def test_float_input_is_accepted_without_conversion() -> None:
    """A float32 stream reaches gain as float32 (no converter inserted)."""
    g = Graph("f32")
    g.chain(g.add("tone", encoding="pcm_f32le"), g.add("gain", db=-6), g.add("test.collect"))
    plan = g.compile(test_registry())
    assert list(plan.nodes) == ["tone", "gain", "collect"]
