"""Tests for ``tone``: frequency, level, phase continuity, exact length and timestamps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from nodes_support import Collect, Stamps, as_array, peak_hz, run_graph

from vbgraph.errors import ConfigError
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.graph.builder import Graph
from vbgraph.nodes.tone import Tone


def tone(**params: object) -> tuple[Collect, int]:
    g = Graph("tone")
    g.chain(g.add("tone", **params), g.add("test.collect", id="sink"))
    result, nodes = run_graph(g)
    assert result.ok, result.errors
    sink = nodes["sink"]
    assert isinstance(sink, Collect)
    return sink, result.duration_ns


class TestSignal:
    def test_the_spectrum_peaks_at_freq_hz(self) -> None:
        """A 1 s 440 Hz tone at 16 kHz has its FFT peak at 440 Hz."""
        sink, _ = tone(freq_hz=440)
        assert peak_hz(as_array(sink.audio()), 16000) == pytest.approx(440, abs=1)

    def test_the_peak_level_is_level_db_below_full_scale(self) -> None:
        """At -12 dBFS the largest sample is 10**(-12/20) of full scale (int16 rounding)."""
        sink, _ = tone(level_db=-12, freq_hz=1000)
        expected = 10 ** (-12 / 20) * 32768
        assert np.abs(as_array(sink.audio())).max() == pytest.approx(expected, abs=1)

    def test_float_output_is_the_same_wave_unscaled(self) -> None:
        """pcm_f32le gives the sine in [-1, 1]; int16 is that times 32768, rounded."""
        f, _ = tone(encoding="pcm_f32le")
        i, _ = tone(encoding="pcm_s16le")
        wave = as_array(f.audio(), "pcm_f32le")
        np.testing.assert_array_equal(
            np.clip(np.rint(wave.astype(np.float64) * 32768), -32768, 32767),
            as_array(i.audio()),
        )

    def test_every_channel_carries_the_same_wave(self) -> None:
        """A stereo tone has identical left and right samples."""
        sink, _ = tone(channels=2, duration_ms=100)
        both = as_array(sink.audio()).reshape(-1, 2)
        np.testing.assert_array_equal(both[:, 0], both[:, 1])
        assert sink.audio_frames[0].fmt == AudioFormat(16000, 2)

    def test_the_wave_is_continuous_across_chunks(self) -> None:
        """7 ms chunks give exactly the samples of one 1 s chunk."""
        small, _ = tone(chunk_ms=7, freq_hz=1234.5)
        whole, _ = tone(chunk_ms=1000, freq_hz=1234.5)
        assert len(small.audio_frames) == 143
        assert small.audio() == whole.audio()

    def test_samples_follow_the_sine_of_the_absolute_index(self) -> None:
        """Sample n is level * sin(2 pi f n / rate), even far into a stream."""
        sink, _ = tone(encoding="pcm_f32le", level_db=0, freq_hz=100, rate=8000)
        n = np.arange(8000)
        np.testing.assert_allclose(
            as_array(sink.audio(), "pcm_f32le"), np.sin(2 * np.pi * 100 * n / 8000), atol=1e-6
        )


class TestLength:
    def test_duration_gives_exactly_rate_times_seconds_samples(self) -> None:
        """1000 ms at 16 kHz is 16 000 samples in 50 frames of 320."""
        sink, _ = tone()
        assert [f.samples for f in sink.audio_frames] == [320] * 50

    def test_the_last_chunk_holds_the_remainder(self) -> None:
        """110 ms in 20 ms chunks ends with a 10 ms chunk."""
        sink, _ = tone(duration_ms=110)
        assert [f.samples for f in sink.audio_frames] == [320] * 5 + [160]

    def test_pts_come_from_the_sample_count(self) -> None:
        """At 44.1 kHz (no whole number of ns per sample) pts are pts_ns of the sample index."""
        sink, _ = tone(rate=44100, chunk_ms=10)
        assert [f.pts for f in sink.audio_frames] == [pts_ns(441 * k, 44100) for k in range(100)]

    def test_an_hour_of_tone_ends_at_exactly_one_hour(self) -> None:
        """Paced on virtual time, 3600 s at 3 kHz (1/3 us per sample) ends at exactly 3600 s."""
        g = Graph("hour")
        g.chain(
            g.add(
                "tone",
                rate=3000,
                encoding="pcm_f32le",
                duration_ms=3_600_000,
                chunk_ms=60_000,
                realtime=True,
            ),
            g.add("test.stamps", id="stamps"),
        )
        result, nodes = run_graph(g)
        stamps = nodes["stamps"]
        assert isinstance(stamps, Stamps)
        assert [(p, n) for p, n, _ in stamps.stamps] == [
            (pts_ns(180_000 * k, 3000), 180_000) for k in range(60)
        ]
        assert pts_ns(60 * 180_000, 3000) == 3_600_000_000_000
        assert result.duration_ns == 3_600_000_000_000
        assert all(abs(t - p) <= 1 for p, _, t in stamps.stamps)


class TestPacing:
    def test_realtime_takes_the_signals_duration_on_the_session_clock(self) -> None:
        """A 1 s real-time tone ends the session at 1 s, each frame at its pts (±1 ns)."""
        sink, duration = tone(realtime=True)
        assert duration == 1_000_000_000
        pts = [f.pts for f in sink.audio_frames]
        assert all(abs(t - p) <= 1 for t, p in zip(sink.arrivals, pts, strict=True))

    def test_realtime_emits_each_frame_exactly_at_its_pts(self) -> None:
        """On the virtual clock, the session time at emission equals the frame's pts."""
        sink, _ = tone(realtime=True, duration_ms=10_000)
        assert sink.arrivals == [f.pts for f in sink.audio_frames]

    def test_without_realtime_no_session_time_passes(self) -> None:
        """Frames go out as fast as they are taken."""
        sink, duration = tone()
        assert duration == 0 and set(sink.arrivals) == {0}


class TestParams:
    @pytest.mark.parametrize(
        "params",
        [
            {"freq_hz": 8000},
            {"freq_hz": 0},
            {"level_db": 1},
            {"chunk_ms": 0.01},
            {"chunk_ms": 0},
            {"duration_ms": -1},
            {"channels": 0},
            {"encoding": "mulaw"},
            {"rate": 0},
        ],
        ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
    )
    def test_impossible_params_are_config_errors(self, params: dict[str, object]) -> None:
        """Nyquist, positive level, sub-sample chunks, bad formats: refused at compile time."""
        g = Graph("bad")
        with pytest.raises(ConfigError):
            g.chain(g.add("tone", **params), g.add("test.collect"))
            g.compile()

    def test_minus_infinity_db_is_digital_silence(self) -> None:
        """level_db: -inf gives all-zero samples."""
        sink, _ = tone(level_db=-math.inf, duration_ms=100)
        assert not any(sink.audio())

    def test_output_format_follows_the_params(self) -> None:
        """output_formats reports rate, channels and encoding."""
        params = Tone.Params(rate=24000, channels=2, encoding="pcm_f32le")
        assert Tone.output_formats(params, {}) == {"out": AudioFormat(24000, 2, "pcm_f32le")}
