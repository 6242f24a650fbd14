"""Tests for ``convert.channels``: down-mix by averaging, up-mix by copying, other counts."""

from __future__ import annotations

import numpy as np
import pytest
from nodes_support import SPEECH, Collect, as_array, audio, f32, make_node, run_graph, s16

from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.convert_channels import ConvertChannels


def convert(data: bytes, fmt: AudioFormat, channels: int) -> AudioFrame:
    node, out = make_node(ConvertChannels, channels=channels)
    node.process("in", audio(data, fmt, pts=123, epoch=2))
    ((port, frame),) = out
    assert port == "out" and isinstance(frame, AudioFrame)
    assert (frame.pts, frame.epoch) == (123, 2)
    assert frame.fmt == fmt.replace(channels=channels)
    return frame


class TestInt16:
    def test_stereo_to_mono_is_the_average_rounded_half_to_even(self) -> None:
        """(L + R) / 2 per sample: 1.5 -> 2, 0.5 -> 0, -2.5 -> -2."""
        frame = convert(s16([10, 20, 1, 2, 1, 0, -2, -3]), AudioFormat(8000, 2), 1)
        assert as_array(frame.data).tolist() == [15, 2, 0, -2]

    def test_down_mixing_full_scale_never_clips(self) -> None:
        """Averaging cannot leave the int16 range, even from full-scale channels."""
        frame = convert(s16([32767, 32767, -32768, -32768]), AudioFormat(8000, 2), 1)
        assert as_array(frame.data).tolist() == [32767, -32768]

    def test_mono_to_stereo_copies_each_sample(self) -> None:
        """Mono -> 2 channels: L and R both carry the mono sample."""
        frame = convert(s16([1, -2, 3]), AudioFormat(8000, 1), 2)
        assert as_array(frame.data).tolist() == [1, 1, -2, -2, 3, 3]

    def test_other_counts_average_to_mono_then_copy(self) -> None:
        """3 -> 2 channels: each output channel is the mean of the three inputs."""
        frame = convert(s16([3, 6, 9, -1, -1, -1]), AudioFormat(8000, 3), 2)
        assert as_array(frame.data).tolist() == [6, 6, -1, -1]

    def test_speech_survives_an_up_and_down_mix(self) -> None:
        """mono -> stereo -> mono through the graph gives the speech back exactly."""
        g = Graph("round trip")
        g.chain(
            g.add("file.source", path=str(SPEECH)),
            g.add("convert.channels", id="up", channels=2),
            g.add("convert.channels", id="down", channels=1),
            g.add("test.collect", id="sink"),
        )
        result, nodes = run_graph(g)
        sink = nodes["sink"]
        assert result.ok and isinstance(sink, Collect)
        assert sink.audio() == read_wav(SPEECH)[1]


class TestFloat32:
    def test_stereo_to_mono_is_the_average(self) -> None:
        """Float channels average in float32."""
        fmt = AudioFormat(8000, 2, "pcm_f32le")
        frame = convert(f32([0.5, 0.25, -1.0, 1.0]), fmt, 1)
        assert as_array(frame.data, "pcm_f32le").tolist() == [0.375, 0.0]

    def test_mono_to_six_channels_copies(self) -> None:
        """Mono -> 6 channels repeats each sample six times."""
        fmt = AudioFormat(8000, 1, "pcm_f32le")
        frame = convert(f32([0.5, -0.5]), fmt, 6)
        assert as_array(frame.data, "pcm_f32le").tolist() == [0.5] * 6 + [-0.5] * 6


class TestNegotiation:
    def test_a_frame_already_at_the_count_passes_as_the_same_object(self) -> None:
        """Nothing to do: the frame itself goes on."""
        node, out = make_node(ConvertChannels, channels=2)
        frame = audio(s16([1, 2]), AudioFormat(8000, 2))
        node.process("in", frame)
        assert out[0][1] is frame

    def test_output_format_is_the_input_with_the_new_count(self) -> None:
        """output_formats keeps rate and encoding."""
        params = ConvertChannels.Params(channels=2)
        fmt = AudioFormat(44100, 1, "pcm_f32le")
        assert ConvertChannels.output_formats(params, {"in": fmt}) == {
            "out": AudioFormat(44100, 2, "pcm_f32le")
        }

    def test_negotiation_down_mixes_before_resampling(self) -> None:
        """Stereo 8 kHz into a mono 16 kHz mixer: channels first (less data), then rate."""
        g = Graph("neg")
        m = g.add("mixer", inputs=["a"])
        g.connect(g.add("tone", rate=8000, channels=2), m["a"])
        g.connect(m, g.add("test.collect", id="sink"))
        result, nodes = run_graph(g)
        assert result.ok
        assert [n for n in nodes if "~" in n] == ["tone~mixer.0.channels", "tone~mixer.1.resample"]
        sink = nodes["sink"]
        assert isinstance(sink, Collect)
        assert sum(f.samples for f in sink.audio_frames) == 16000

    @pytest.mark.parametrize("channels", [0, 33])
    def test_impossible_counts_are_rejected(self, channels: int) -> None:
        """channels is 1..32."""
        with pytest.raises(ValueError):
            ConvertChannels.Params(channels=channels)


def test_samples_of_every_channel_are_used() -> None:
    """Randomised: the down-mix equals numpy's rounded mean over channels."""
    rng = np.random.default_rng(11)
    x = rng.integers(-32768, 32767, (500, 4), dtype=np.int16)
    frame = convert(x.astype("<i2").tobytes(), AudioFormat(16000, 4), 1)
    expected = np.rint(x.astype(np.float64).mean(axis=1)).astype(np.int16)
    np.testing.assert_array_equal(as_array(frame.data), expected)
