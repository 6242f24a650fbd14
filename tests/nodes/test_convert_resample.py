"""Tests for ``convert.resample``: exact lengths, content, chunking, timestamps, reset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from nodes_support import (
    SPEECH,
    SPEECH_SAMPLES,
    Collect,
    Stamps,
    as_array,
    audio,
    f32,
    make_node,
    peak_hz,
    run_graph,
    s16,
    test_registry,
)

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.frames import AudioFrame, Frame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav
from vbgraph.nodes.convert_resample import ConvertResample


def expected_length(n: int, in_rate: int, out_rate: int) -> int:
    """The documented tail rule: round(n * out / in), halves rounded up."""
    return (2 * n * out_rate + in_rate) // (2 * in_rate)


def resample_speech(rate: int, tmp_path: Path, **params: object) -> tuple[AudioFormat, bytes]:
    out = tmp_path / "out.wav"
    g = Graph("resample")
    g.chain(
        g.add("file.source", path=str(SPEECH)),
        g.add("convert.resample", rate=rate, **params),
        g.add("file.sink", path=str(out)),
    )
    result, _ = run_graph(g)
    assert result.ok, result.errors
    return read_wav(out)


def resample_frames(frames: list[AudioFrame], rate: int) -> list[AudioFrame]:
    node, out = make_node(ConvertResample, rate=rate)
    for frame in frames:
        node.process("in", frame)
    node.on_end()
    emitted = [f for _, f in out]
    assert all(isinstance(f, AudioFrame) for f in emitted)
    return [f for f in emitted if isinstance(f, AudioFrame)]


class TestLength:
    def test_speech_at_48k_has_exactly_three_times_the_samples(self, tmp_path: Path) -> None:
        """file 16 kHz -> resample 48 kHz -> sink: 3 x 113 600 samples, nothing lost at the end."""
        fmt, data = resample_speech(48000, tmp_path)
        assert fmt == AudioFormat(48000)
        assert len(data) // 2 == 3 * SPEECH_SAMPLES

    @pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100])
    def test_output_length_follows_the_rounding_rule(self, tmp_path: Path, rate: int) -> None:
        """n samples give round(n * rate / 16000), halves up (11025 Hz: 78277.5 -> 78278)."""
        _, data = resample_speech(rate, tmp_path)
        assert len(data) // 2 == expected_length(SPEECH_SAMPLES, 16000, rate)

    @pytest.mark.parametrize("quality", ["low", "medium", "high", "vhq"])
    def test_every_quality_keeps_the_length_rule(self, tmp_path: Path, quality: str) -> None:
        """The quality preset changes the filter, not how many samples come out."""
        _, data = resample_speech(24000, tmp_path, quality=quality)
        assert len(data) // 2 == expected_length(SPEECH_SAMPLES, 16000, 24000)

    def test_an_input_without_frames_gives_no_output(self) -> None:
        """on_end with nothing received emits nothing."""
        assert resample_frames([], 48000) == []


class TestContent:
    def test_a_440_hz_tone_keeps_its_frequency(self) -> None:
        """16 kHz -> 48 kHz: the spectrum still peaks at 440 Hz."""
        g = Graph("tone")
        g.chain(
            g.add("tone", freq_hz=440),
            g.add("convert.resample", rate=48000),
            g.add("test.collect", id="sink"),
        )
        _, nodes = run_graph(g)
        sink = nodes["sink"]
        assert isinstance(sink, Collect)
        samples = as_array(sink.audio())
        assert len(samples) == 48000
        assert peak_hz(samples, 48000) == pytest.approx(440, abs=1)

    def test_stereo_channels_stay_apart(self) -> None:
        """Left 440 Hz and right 1000 Hz come out of 16 -> 32 kHz on their own channels."""
        n = np.arange(16000)
        left = np.sin(2 * np.pi * 440 * n / 16000) * 0.5
        right = np.sin(2 * np.pi * 1000 * n / 16000) * 0.5
        stereo = np.stack([left, right], axis=1).astype("<f4")
        fmt = AudioFormat(16000, 2, "pcm_f32le")
        frames = [audio(stereo[i : i + 320].tobytes(), fmt) for i in range(0, 16000, 320)]
        out = resample_frames(frames, 32000)
        assert {f.fmt for f in out} == {AudioFormat(32000, 2, "pcm_f32le")}
        both = np.concatenate([as_array(f.data, "pcm_f32le") for f in out]).reshape(-1, 2)
        assert both.shape == (32000, 2)
        assert peak_hz(both[:, 0], 32000) == pytest.approx(440, abs=1)
        assert peak_hz(both[:, 1], 32000) == pytest.approx(1000, abs=1)

    def test_float_output_does_not_depend_on_chunking(self) -> None:
        """1, 7, 320 or 16000 samples per frame give bit-identical float32 output."""
        rng = np.random.default_rng(3)
        x = rng.uniform(-0.5, 0.5, 16000).astype("<f4")
        fmt = AudioFormat(16000, 1, "pcm_f32le")
        results = []
        for size in (1, 7, 320, 16000):
            frames = [audio(x[i : i + size].tobytes(), fmt) for i in range(0, len(x), size)]
            results.append(b"".join(bytes(f.data) for f in resample_frames(frames, 44100)))
        assert len(results[0]) == 44100 * 4
        assert all(r == results[0] for r in results)

    def test_int16_output_depends_on_chunking_by_at_most_2_lsb(self) -> None:
        """soxr dithers int16 output: chunkings agree within 2 of 32768."""
        _, data = read_wav(SPEECH)
        fmt = AudioFormat(16000)
        outs = []
        for size in (160, 113_600):
            frames = [audio(data[i : i + 2 * size], fmt) for i in range(0, len(data), 2 * size)]
            outs.append(np.concatenate([as_array(f.data) for f in resample_frames(frames, 48000)]))
        assert len(outs[0]) == len(outs[1]) == 3 * SPEECH_SAMPLES
        assert np.abs(outs[0].astype(np.int32) - outs[1]).max() <= 2


class TestTime:
    def test_pts_count_output_samples_from_the_first_input_pts(self) -> None:
        """Output frame pts are t0 + pts_ns(samples before it, out rate); input pts are ignored."""
        fmt = AudioFormat(16000)
        frames = [audio(s16([0] * 320), fmt, pts=5_000_000 + k * 999) for k in range(50)]
        out = resample_frames(frames, 44100)
        start = 0
        for frame in out:
            assert frame.pts == pts_ns(start, 44100, 5_000_000)
            start += frame.samples
        assert start == 44100

    def test_ten_minutes_of_audio_keep_exact_pts(self) -> None:
        """16 -> 44.1 kHz over ten minutes of silence: the last sample ends at exactly 600 s."""
        g = Graph("hour")
        g.chain(
            g.add("silence", rate=16000, duration_ms=600_000, chunk_ms=20_000),
            g.add("convert.resample", rate=44100, quality="low"),
            g.add("test.stamps", id="stamps"),
        )
        result, nodes = run_graph(g)
        assert result.ok
        stamps = nodes["stamps"]
        assert isinstance(stamps, Stamps)
        start = 0
        for pts, samples, _ in stamps.stamps:
            assert pts == pts_ns(start, 44100)
            start += samples
        assert start == 44100 * 600
        assert pts_ns(start, 44100) == 600_000_000_000

    def test_frames_keep_the_input_epoch(self) -> None:
        """Output frames carry the epoch of the input frame that produced them."""
        fmt = AudioFormat(16000)
        out = resample_frames([audio(s16([0] * 1600), fmt, epoch=4)], 48000)
        assert out and {f.epoch for f in out} == {4}


class TestInterrupt:
    def test_interruption_drops_the_history_and_reanchors_pts(self) -> None:
        """After on_interrupt, float silence gives exact silence, timed from the next frame."""
        fmt = AudioFormat(16000, 1, "pcm_f32le")
        node, out = make_node(ConvertResample, rate=48000)
        node.process("in", audio(f32(np.sin(np.arange(3200) * 0.3) * 0.6), fmt, pts=0))
        node.on_interrupt(1)
        out.clear()
        for k in range(10):
            node.process("in", audio(f32([0] * 320), fmt, pts=9_000_000_000 + k, epoch=1))
        node.on_end()
        frames = [f for _, f in out if isinstance(f, AudioFrame)]
        assert frames[0].pts == 9_000_000_000
        assert sum(f.samples for f in frames) == 3 * 3200
        assert not any(b"".join(bytes(f.data) for f in frames))

    def test_int16_after_interruption_holds_nothing_but_dither(self) -> None:
        """int16 output of silence after a loud turn stays within soxr's 1 LSB dither."""
        fmt = AudioFormat(16000)
        node, out = make_node(ConvertResample, rate=48000)
        loud = s16((np.sin(np.arange(3200) * 0.3) * 20000).astype(int))
        node.process("in", audio(loud, fmt))
        node.on_interrupt(1)
        out.clear()
        node.process("in", audio(s16([0] * 3200), fmt, epoch=1))
        node.on_end()
        samples = np.concatenate([as_array(f.data) for _, f in out if isinstance(f, AudioFrame)])
        assert len(samples) == 9600
        assert np.abs(samples).max() <= 1


class TestNegotiation:
    def test_a_frame_already_at_the_rate_passes_as_the_same_object(self) -> None:
        """Nothing to do: the frame itself goes on."""
        node, out = make_node(ConvertResample, rate=16000)
        frame = audio(s16([1, 2, 3]), AudioFormat(16000))
        node.process("in", frame)
        assert out == [("out", frame)] and out[0][1] is frame

    def test_output_format_is_the_input_at_the_new_rate(self) -> None:
        """output_formats keeps channels and encoding."""
        params = ConvertResample.Params(rate=48000)
        fmt = AudioFormat(16000, 2, "pcm_f32le")
        assert ConvertResample.output_formats(params, {"in": fmt}) == {
            "out": AudioFormat(48000, 2, "pcm_f32le")
        }
        assert ConvertResample.output_formats(params, {}) == {}

    def test_latency_is_reported_as_zero_until_the_compiled_resampler(self) -> None:
        """latency_ns is 0 for now (soxr only reports delay from a live stream)."""
        assert ConvertResample.latency_ns(ConvertResample.Params(rate=8000)) == 0

    def test_negotiation_inserts_it_between_rates(self) -> None:
        """An 8 kHz tone into a 16 kHz mixer gets a convert.resample with rate 16000."""
        g = Graph("neg")
        m = g.add("mixer", inputs=["a"])
        g.connect(g.add("tone", rate=8000), m["a"])
        g.connect(m, g.add("test.collect"))
        plan = g.compile(test_registry())
        conv = plan.nodes["tone~mixer.resample"]
        assert conv.cls is ConvertResample
        assert conv.params == ConvertResample.Params(rate=16000)

    def test_float_audio_is_resampled_in_float(self) -> None:
        """A float32 frame comes out float32 at the new rate."""
        fmt = AudioFormat(8000, 1, "pcm_f32le")
        out = resample_frames([audio(f32([0.25] * 800), fmt)], 16000)
        assert {f.fmt for f in out} == {AudioFormat(16000, 1, "pcm_f32le")}
        assert sum(f.samples for f in out) == 1600


class TestEngines:
    """The compiled resampler runs where it can; soxr elsewhere."""

    def _node(self, **params: object) -> tuple[ConvertResample, list[tuple[str, Frame]]]:
        node, out = make_node(ConvertResample, **params)
        assert isinstance(node, ConvertResample)
        return node, out

    def test_auto_uses_the_compiled_resampler_for_supported_rates(self) -> None:
        """16 -> 48 kHz at high runs on vbgraph's engine; 16 -> 11.025 kHz and vhq on soxr."""
        for params, engine in (
            ({"rate": 48000}, "vbgraph"),
            ({"rate": 11025}, "soxr"),
            ({"rate": 48000, "quality": "vhq"}, "soxr"),
            ({"rate": 48000, "engine": "soxr"}, "soxr"),
        ):
            node, _ = self._node(**params)
            node.process("in", audio(b"\x00\x00" * 320, AudioFormat(16000)))
            assert node.engine == engine, params

    def test_every_20ms_chunk_yields_its_share_at_once(self) -> None:
        """Compiled engine, 48 -> 16 kHz: each 20 ms in gives 320 +- 1 samples out at once."""
        node, out = self._node(rate=16000)
        for k in range(50):
            node.process("in", audio(b"\x01\x00" * 960, AudioFormat(48000), pts=k * 20_000_000))
            frames = [f for _, f in out if isinstance(f, AudioFrame)]
            assert len(frames) == k + 1, "a chunk produced no output"
        produced = [len(f.data) // 2 for _, f in out if isinstance(f, AudioFrame)]
        assert all(abs(n - 320) <= 1 for n in produced[1:])

    def test_the_latency_query_reports_the_compiled_delay(self) -> None:
        """latency_ns is the engine's delay for the negotiated input (under 2 ms at high)."""
        params = ConvertResample.Params(rate=16000)
        latency = ConvertResample.latency_ns(params, {"in": AudioFormat(48000)})
        assert 0 < latency <= 2_000_000
        assert ConvertResample.latency_ns(params, {"in": AudioFormat(16000)}) == 0

    def test_forcing_the_compiled_engine_on_an_unsupported_pair_fails_at_compile(self) -> None:
        """engine: vbgraph with 16 -> 11.025 kHz is a ConfigError naming the rates."""
        g = Graph("x")
        g.chain(
            g.add("tone", rate=16000, duration_ms=40),
            g.add("convert.resample", id="r", rate=11025, engine="vbgraph"),
        )
        with pytest.raises(ConfigError, match="16000 -> 11025"):
            g.compile()


def test_a_gap_in_the_input_is_kept_in_the_output() -> None:
    """Two bursts 1 s apart at 16 kHz come out at 48 kHz with the 1 s gap (within 2 ms)."""
    node, out = make_node(ConvertResample, rate=48000)
    node.process("in", audio(b"\x01\x00" * 3200, AudioFormat(16000), pts=0))
    node.process("in", audio(b"\x01\x00" * 3200, AudioFormat(16000), pts=1_200_000_000))
    frames = [f for _, f in out if isinstance(f, AudioFrame)]
    second = [f for f in frames if f.pts >= 1_000_000_000]
    assert second, "the second burst was packed against the first"
    assert abs(second[0].pts - 1_200_000_000) <= 2_000_000
