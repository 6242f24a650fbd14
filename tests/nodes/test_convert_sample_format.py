"""Tests for ``convert.sample_format``: int16 <-> float32, exact and saturating."""

from __future__ import annotations

import pytest
from nodes_support import SPEECH, Collect, as_array, audio, f32, make_node, run_graph, s16

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.convert_sample_format import ConvertSampleFormat


def convert(frame: AudioFrame, encoding: str) -> AudioFrame:
    node, out = make_node(ConvertSampleFormat, encoding=encoding)
    node.process("in", frame)
    ((_, result),) = out
    assert isinstance(result, AudioFrame)
    return result


def test_int16_to_float32_divides_by_32768() -> None:
    """-32768 -> -1.0, 16384 -> 0.5, 32767 -> 32767/32768; pts, epoch, rate, channels kept."""
    frame = audio(s16([-32768, 16384, 32767, 0]), AudioFormat(8000, 2), pts=77)
    out = convert(frame, "pcm_f32le")
    assert as_array(out.data, "pcm_f32le").tolist() == [-1.0, 0.5, 32767 / 32768, 0.0]
    assert out.fmt == AudioFormat(8000, 2, "pcm_f32le") and out.pts == 77


def test_float32_to_int16_saturates_and_rounds_half_to_even() -> None:
    """2.0 -> 32767, -2.0 -> -32768, 2.5/32768 -> 2, 3.5/32768 -> 4."""
    frame = audio(f32([2.0, -2.0, 2.5 / 32768, 3.5 / 32768]), AudioFormat(8000, 1, "pcm_f32le"))
    out = convert(frame, "pcm_s16le")
    assert as_array(out.data).tolist() == [32767, -32768, 2, 4]
    assert out.fmt == AudioFormat(8000)


def test_speech_round_trips_through_float_exactly() -> None:
    """file -> float32 -> int16 gives the file's samples back, bit for bit."""
    g = Graph("round trip")
    g.chain(
        g.add("file.source", path=str(SPEECH)),
        g.add("convert.sample_format", id="to_f32", encoding="pcm_f32le"),
        g.add("convert.sample_format", id="to_s16", encoding="pcm_s16le"),
        g.add("test.collect", id="sink"),
    )
    result, nodes = run_graph(g)
    sink = nodes["sink"]
    assert result.ok and isinstance(sink, Collect)
    assert sink.audio() == read_wav(SPEECH)[1]


def test_a_frame_already_in_the_encoding_passes_as_the_same_object() -> None:
    """Nothing to do: the frame itself goes on."""
    frame = audio(s16([1]), AudioFormat(8000))
    assert convert(frame, "pcm_s16le") is frame


def test_output_format_is_the_input_with_the_new_encoding() -> None:
    """output_formats keeps rate and channels."""
    params = ConvertSampleFormat.Params(encoding="pcm_f32le")
    assert ConvertSampleFormat.output_formats(params, {"in": AudioFormat(22050, 2)}) == {
        "out": AudioFormat(22050, 2, "pcm_f32le")
    }


def test_negotiation_inserts_it_for_a_float_consumer() -> None:
    """An int16 tone into a float32 mixer passes through one inserted converter."""
    g = Graph("neg")
    m = g.add("mixer", inputs=["a"], encoding="pcm_f32le")
    g.connect(g.add("tone"), m["a"])
    g.connect(m, g.add("test.collect", id="sink"))
    result, nodes = run_graph(g)
    assert result.ok
    assert isinstance(nodes["tone~mixer.format"], ConvertSampleFormat)
    sink = nodes["sink"]
    assert isinstance(sink, Collect)
    assert {f.fmt for f in sink.audio_frames} == {AudioFormat(16000, 1, "pcm_f32le")}


@pytest.mark.parametrize("encoding", ["mulaw", "alaw", "opus"])
def test_only_linear_pcm_targets_are_accepted(encoding: str) -> None:
    """G.711 and opus are not sample formats this node produces."""
    with pytest.raises(ValueError):
        ConvertSampleFormat.Params(encoding=encoding)
