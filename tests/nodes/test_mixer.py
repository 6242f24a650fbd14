"""Tests for ``mixer``: cancellation, saturation, alignment, ends, negotiation, pts."""

from __future__ import annotations

import numpy as np
import pytest
from nodes_support import (
    Collect,
    Stamps,
    as_array,
    audio,
    f32,
    make_node,
    run_graph,
    s16,
    test_registry,
)

from vbgraph.errors import AudioFormatError, ConfigError
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.graph.builder import Graph
from vbgraph.nodes.mixer import Mixer

MONO = AudioFormat(16000)


def mixed(graph: Graph) -> Collect:
    result, nodes = run_graph(graph)
    assert result.ok, result.errors
    sink = nodes["mixed"]
    assert isinstance(sink, Collect)
    return sink


class TestSumming:
    def test_a_tone_mixed_with_its_negation_is_silence(self) -> None:
        """tone + (-tone) cancels to digital zero over the whole second."""
        g = Graph("cancel")
        t, m = g.add("tee"), g.add("mixer")
        g.chain(g.add("tone", level_db=-3), t)
        g.connect(t["a"], m["a"])
        g.chain(t["b"], g.add("test.negate"), m["b"])
        g.connect(m, g.add("test.collect", id="mixed"))
        sink = mixed(g)
        data = sink.audio()
        assert len(data) == 16000 * 2
        assert not any(data)

    def test_int16_sums_saturate_at_full_scale(self) -> None:
        """Two inputs of 30000 give 32767; two of -30000 give -32768."""
        node, out = make_node(Mixer)
        node.process("a", audio(s16([30000, -30000, 100]), MONO))
        node.process("b", audio(s16([30000, -30000, -300]), MONO))
        ((_, frame),) = out
        assert as_array(frame.data).tolist() == [32767, -32768, -200]

    def test_float32_sums_are_not_clipped(self) -> None:
        """0.75 + 0.75 is 1.5 in a float mix."""
        fmt = AudioFormat(16000, 1, "pcm_f32le")
        node, out = make_node(Mixer, encoding="pcm_f32le")
        node.process("a", audio(f32([0.75, -0.25]), fmt))
        node.process("b", audio(f32([0.75, 0.5]), fmt))
        ((_, frame),) = out
        assert as_array(frame.data, "pcm_f32le").tolist() == [1.5, 0.25]

    def test_three_inputs_sum_sample_by_sample(self) -> None:
        """Stereo samples add per channel across three named inputs."""
        fmt = AudioFormat(8000, 2)
        node, out = make_node(Mixer, inputs=["x", "y", "z"], rate=8000, channels=2)
        node.process("x", audio(s16([1, 2, 3, 4]), fmt))
        node.process("y", audio(s16([10, 20, 30, 40]), fmt))
        assert out == []
        node.process("z", audio(s16([100, 200, 300, 400]), fmt))
        ((_, frame),) = out
        assert as_array(frame.data).tolist() == [111, 222, 333, 444]
        assert frame.fmt == fmt


class TestAlignment:
    def test_output_waits_until_every_open_input_has_audio(self) -> None:
        """Mixing advances by the shortest buffered input; the rest waits."""
        node, out = make_node(Mixer)
        node.process("a", audio(s16([1, 1, 1, 1]), MONO))
        assert out == []
        node.process("b", audio(s16([2, 2]), MONO))
        assert [as_array(f.data).tolist() for _, f in out] == [[3, 3]]
        node.process("b", audio(s16([5, 5, 5]), MONO))
        assert [as_array(f.data).tolist() for _, f in out] == [[3, 3], [6, 6]]

    def test_on_end_mixes_the_remainder_with_silence_for_shorter_inputs(self) -> None:
        """A 1000 ms tone and a 500 ms tone mix to 1000 ms; the tail is the long tone alone."""
        g = Graph("lengths")
        m = g.add("mixer")
        g.connect(g.add("tone", id="long", freq_hz=440), m["a"])
        g.connect(g.add("tone", id="short", freq_hz=880, duration_ms=500), m["b"])
        g.connect(m, g.add("test.collect", id="mixed"))
        g.connect(g.add("tone", id="ref", freq_hz=440), g.add("test.collect", id="reference"))
        _, nodes = run_graph(g)
        sink, ref = nodes["mixed"], nodes["reference"]
        assert isinstance(sink, Collect) and isinstance(ref, Collect)
        out = as_array(sink.audio())
        assert len(out) == 16000
        np.testing.assert_array_equal(out[8000:], as_array(ref.audio())[8000:])

    def test_an_input_that_ended_counts_as_silence_from_then_on(self) -> None:
        """After on_input_end('b'), audio on 'a' is mixed at once, with b's leftovers first."""
        node, out = make_node(Mixer)
        assert isinstance(node, Mixer)
        node.process("b", audio(s16([7, 7]), MONO))
        node.on_input_end("b")
        assert out == []
        node.process("a", audio(s16([1, 1, 1]), MONO))
        assert [as_array(f.data).tolist() for _, f in out] == [[8, 8, 1]]

    def test_interruption_drops_buffered_input(self) -> None:
        """Audio waiting for the other input is discarded by on_interrupt."""
        node, out = make_node(Mixer)
        node.process("a", audio(s16([1, 1]), MONO))
        node.on_interrupt(1)
        node.process("b", audio(s16([2, 2]), MONO))
        node.process("a", audio(s16([3, 3]), MONO))
        assert [as_array(f.data).tolist() for _, f in out] == [[5, 5]]


class TestTime:
    def test_pts_count_output_samples_from_the_first_frame(self) -> None:
        """Output pts are t0 + samples emitted / rate, whatever the input pts say."""
        node, out = make_node(Mixer)
        node.process("a", audio(s16([0] * 300), MONO, pts=5_000))
        node.process("b", audio(s16([0] * 100), MONO, pts=999_999))
        node.process("b", audio(s16([0] * 250), MONO, pts=123))
        node.on_end()
        assert [(f.pts, f.samples) for _, f in out] == [
            (5_000, 100),
            (5_000 + pts_ns(100, 16000), 200),
            (5_000 + pts_ns(300, 16000), 50),
        ]

    def test_pts_stay_exact_over_a_long_mix(self) -> None:
        """Two minutes at 44.1 kHz from 1000 and 700 ms chunks: each pts is pts_ns(sample index)."""
        g = Graph("long")
        m = g.add("mixer", rate=44100)
        g.connect(g.add("tone", id="a", rate=44100, duration_ms=120_000, chunk_ms=1000), m["a"])
        g.connect(g.add("silence", id="b", rate=44100, duration_ms=120_000, chunk_ms=700), m["b"])
        g.connect(m, g.add("test.stamps", id="stamps"))
        result, nodes = run_graph(g)
        assert result.ok
        stamps = nodes["stamps"]
        assert isinstance(stamps, Stamps)
        start = 0
        for pts, samples, _ in stamps.stamps:
            assert pts == pts_ns(start, 44100)
            start += samples
        assert start == 44100 * 120


class TestNegotiation:
    def test_inputs_in_other_formats_get_converters(self) -> None:
        """8 kHz int16 and 16 kHz stereo float inputs are converted to the mix format."""
        g = Graph("formats")
        m = g.add("mixer")
        g.connect(g.add("tone", id="narrow", rate=8000), m["a"])
        g.connect(g.add("tone", id="wide", channels=2, encoding="pcm_f32le"), m["b"])
        g.connect(m, g.add("test.collect", id="mixed"))
        plan = g.compile(test_registry())
        into_mixer = {e.dst_port: e.fmt for e in plan.edges if e.dst == "mixer"}
        assert into_mixer == {"a": MONO, "b": MONO}
        inserted = sorted(n.type_name for n in plan.nodes.values() if n.inserted_for)
        assert inserted == ["convert.channels", "convert.resample", "convert.sample_format"]
        sink = mixed(g)
        assert sum(f.samples for f in sink.audio_frames) == 16000
        assert {f.fmt for f in sink.audio_frames} == {MONO}

    def test_every_input_port_accepts_exactly_the_mix_format(self) -> None:
        """ports() builds one input per name with caps of exactly rate/channels/encoding."""
        inputs, _ = Mixer.ports(Mixer.Params(inputs=["mic", "bot"], rate=24000))
        assert list(inputs) == ["mic", "bot"]
        fmt = AudioFormat(24000)
        for port in inputs.values():
            assert port.caps is not None and port.caps.accepts(fmt)
            assert not port.caps.accepts(AudioFormat(16000))
        assert Mixer.output_formats(Mixer.Params(rate=24000), {}) == {"out": fmt}

    def test_a_frame_in_another_format_is_an_error(self) -> None:
        """Negotiation guarantees the format; anything else is refused, not mixed."""
        node, _ = make_node(Mixer)
        with pytest.raises(AudioFormatError, match="input 'a'"):
            node.process("a", audio(s16([1]), AudioFormat(8000)))

    @pytest.mark.parametrize("inputs", [[], ["a", "a"], ["in-1"]])
    def test_bad_input_names_are_config_errors(self, inputs: list[str]) -> None:
        """Input names must be unique identifiers, at least one."""
        g = Graph("bad")
        g.add("mixer", inputs=inputs)
        with pytest.raises(ConfigError):
            g.compile()
