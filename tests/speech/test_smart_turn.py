"""Tests for ``speech.smart_turn``: Whisper log-mel features, the audio window, the ONNX model."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.smart_turn_support import logit, sigmoid, write_model

from vbgraph.errors import ConfigError
from vbgraph.speech.smart_turn import (
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    AudioWindow,
    fit_window,
    hz_to_mel,
    log_mel_features,
    mel_filterbank,
    mel_to_hz,
    shared_model,
)

RNG = np.random.default_rng(7)


def noise(seconds: float, level: float = 0.1) -> np.ndarray:
    """White noise of ``seconds`` at 16 kHz."""
    return (RNG.standard_normal(round(seconds * SAMPLE_RATE)) * level).astype(np.float32)


def tone(seconds: float, hz: float, level: float = 0.5) -> np.ndarray:
    """A sine of ``hz`` at 16 kHz."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


class TestMelScale:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""

    def test_one_kilohertz_is_fifteen_mel(self) -> None:
        """The break point of the scale."""
        assert hz_to_mel(1000.0) == pytest.approx(15.0)

    def test_below_the_break_three_mel_per_200_hz(self) -> None:
        """500 Hz is 7.5 mel."""
        assert hz_to_mel(500.0) == pytest.approx(7.5)

    def test_above_the_break_27_mel_per_factor_of_6_4(self) -> None:
        """6400 Hz is 15 + 27 mel."""
        assert hz_to_mel(6400.0) == pytest.approx(42.0)

    def test_mel_to_hz_inverts_hz_to_mel(self) -> None:
        """Round trip over 0..8 kHz."""
        hz = np.linspace(0, 8000, 97)
        assert np.allclose(mel_to_hz(hz_to_mel(hz)), hz)


class TestFilterbank:
    """80 triangular filters over the 201 FFT bins, each of unit area."""

    fb = mel_filterbank()

    def test_it_has_one_column_per_mel_band_and_one_row_per_bin(self) -> None:
        """Shape (201, 80), no negative weight."""
        assert self.fb.shape == (201, N_MELS)
        assert (self.fb >= 0).all()

    def test_each_filter_matches_the_triangle_formula(self) -> None:
        """Every weight equals the piecewise-linear definition, computed bin by bin."""
        edges_mel = np.linspace(0, hz_to_mel(8000.0), N_MELS + 2)
        edges = [float(mel_to_hz(m)) for m in edges_mel]
        for i in range(N_MELS):
            lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
            height = 2.0 / (hi - lo)
            for k in range(201):
                f = k * 40.0
                if lo <= f <= mid:
                    want = height * (f - lo) / (mid - lo)
                elif mid < f <= hi:
                    want = height * (hi - f) / (hi - mid)
                else:
                    want = 0.0
                assert self.fb[k, i] == pytest.approx(want, abs=1e-12), (i, k)

    def test_wide_filters_have_unit_area_in_hz(self) -> None:
        """Slaney normalisation: sum of weights x 40 Hz per bin is about 1 once a filter is wide."""
        areas = self.fb.sum(axis=0) * 40.0
        assert np.allclose(areas[45:], 1.0, atol=0.03)  # >= 8 bins wide: sampling error small
        assert areas.mean() == pytest.approx(1.0, abs=0.01)

    def test_filter_peaks_rise_with_the_band(self) -> None:
        """Band i peaks at a bin no lower than band i - 1's."""
        peaks = self.fb.argmax(axis=0)
        assert (np.diff(peaks) >= 0).all()
        assert peaks[-1] >= 190


class TestFeatures:
    """The log-mel spectrogram Smart Turn v3 reads."""

    def test_features_are_float32_80_by_800(self) -> None:
        """Any length in, (80, 800) float32 out."""
        for seconds in (0.0, 0.5, 8.0, 11.0):
            f = log_mel_features(noise(seconds))
            assert f.shape == (N_MELS, N_FRAMES) and f.dtype == np.float32

    def test_silence_is_the_constant_floor(self) -> None:
        """All zeros: log10(1e-10) = -10, scaled (x + 4) / 4 = -1.5 everywhere."""
        f = log_mel_features(np.zeros(SAMPLE_RATE, dtype=np.float32))
        assert np.all(f == np.float32(-1.5))

    def test_values_span_at_most_80_db_below_the_peak(self) -> None:
        """Floored at the maximum minus 8 (log10), i.e. 2 after scaling."""
        f = log_mel_features(np.concatenate([np.zeros(64_000), tone(4, 440)]))
        assert f.min() == pytest.approx(f.max() - 2.0, abs=1e-5)

    def test_a_1_khz_tone_is_loudest_in_the_band_centred_nearest_1_khz(self) -> None:
        """The row with the most energy is the filter whose peak is closest to 1000 Hz."""
        f = log_mel_features(tone(8, 1000.0))
        centres = mel_to_hz(np.linspace(0, hz_to_mel(8000.0), N_MELS + 2))[1:-1]
        assert f.mean(axis=1).argmax() == np.abs(centres - 1000.0).argmin()

    def test_one_frame_matches_a_direct_computation_of_the_definition(self) -> None:
        """Frame 400 by hand: normalise, Hann, naive DFT, |X|^2, triangles, log10, scale."""
        audio = noise(8) + tone(8, 300.0, 0.2)
        got = log_mel_features(audio)
        x = audio.astype(np.float64)
        x = (x - x.mean()) / math.sqrt(x.var() + 1e-7)
        t = 400
        frame = x[t * 160 - 200 : t * 160 + 200]  # centred on sample t * 160
        n = np.arange(400)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)
        k = np.arange(201)[:, None]
        dft = (np.exp(-2j * np.pi * k * n / 400) * (frame * hann)).sum(axis=1)
        power = np.abs(dft) ** 2
        mel = mel_filterbank().T @ power
        want = (np.log10(np.maximum(mel, 1e-10)) + 4) / 4
        # The floor is max - 8 over the whole clip; noise keeps every value above it here.
        assert got[:, t].min() > got.max() - 2
        assert np.allclose(got[:, t], want, atol=1e-4)

    def test_a_short_clip_is_padded_with_zeros_at_the_start(self) -> None:
        """3 s of audio gives the same features as 5 s of zeros followed by it."""
        clip = noise(3)
        padded = np.concatenate([np.zeros(5 * SAMPLE_RATE, dtype=np.float32), clip])
        assert np.array_equal(log_mel_features(clip), log_mel_features(padded))
        f = log_mel_features(clip)
        assert np.all(f[:, :400] == f[:, :1])  # the padding is steady (a DC offset once normalised)

    def test_a_long_clip_keeps_only_its_last_8_seconds(self) -> None:
        """Anything before the last 8 s does not change the features."""
        tail = noise(8)
        assert np.array_equal(
            log_mel_features(np.concatenate([tone(3, 500.0), tail])), log_mel_features(tail)
        )
        assert np.array_equal(fit_window(np.arange(WINDOW_SAMPLES + 5))[:2], [5, 6])

    def test_the_waveform_is_normalised_so_level_does_not_matter(self) -> None:
        """The same clip 20 dB quieter gives the same features."""
        clip = noise(6) + tone(6, 700.0, 0.3)
        assert np.allclose(log_mel_features(clip), log_mel_features(clip * 0.1), atol=1e-3)


class TestAudioWindow:
    """The node's bounded buffer: the last 8 s, addressable by time."""

    def test_it_keeps_the_last_8_seconds_across_wraps(self) -> None:
        """Pushes of odd sizes: the window holds the tail of their concatenation."""
        window, pushed, end = AudioWindow(), [], 0
        for size in [7_000, 33_333, 128_001, 5, 64_000, 99_999]:
            chunk = noise(size / SAMPLE_RATE)
            end += size * 62_500
            window.push(chunk, end)
            pushed.append(chunk)
            want = np.concatenate(pushed)[-WINDOW_SAMPLES:]
            assert len(window) == want.size
            assert np.array_equal(window.latest(), want)

    def test_latest_since_a_time_returns_only_the_audio_after_it(self) -> None:
        """1 s pushed ending at 2 s; since 1.5 s gives the last 8000 samples."""
        window = AudioWindow()
        clip = noise(1)
        window.push(clip, 2_000_000_000)
        assert np.array_equal(window.latest(1_500_000_000), clip[-8000:])
        assert np.array_equal(window.latest(0), clip)
        assert window.latest(3_000_000_000).size == clip.size  # a start after the end: all

    def test_clear_forgets_everything(self) -> None:
        """Empty after clear."""
        window = AudioWindow()
        window.push(noise(1), 1)
        window.clear()
        assert len(window) == 0 and window.latest().size == 0 and window.end_pts is None


class TestSmartTurnModel:
    """One shared ONNX session per file; features in, P(complete) out."""

    def test_the_model_receives_the_features_of_the_audio(self, tmp_path: Path) -> None:
        """A mean-of-features model returns sigmoid(mean of log_mel_features)."""
        model = shared_model(str(write_model(tmp_path / "mean.onnx")))
        assert model.predict(np.zeros(4000, dtype=np.float32)) == pytest.approx(sigmoid(-1.5))
        clip = noise(2) + tone(2, 440.0)
        want = sigmoid(float(log_mel_features(clip).astype(np.float64).mean()))
        assert model.predict(clip) == pytest.approx(want, rel=1e-5)

    def test_the_end_of_the_audio_lands_in_the_last_frames(self, tmp_path: Path) -> None:
        """A model of the last 20 frames hears a clip that ends loud, not one that ends quiet."""
        model = shared_model(str(write_model(tmp_path / "tail.onnx", frames=20, scale=8.0)))
        loud_end = np.concatenate([np.zeros(SAMPLE_RATE), noise(1, 0.5)])
        quiet_end = np.concatenate([noise(1, 0.5), np.zeros(SAMPLE_RATE)])
        assert model.predict(loud_end) > 0.5 > model.predict(quiet_end)

    def test_a_constant_model_returns_its_constant(self, tmp_path: Path) -> None:
        """scale 0, bias logit(0.8): 0.8 whatever the audio."""
        model = shared_model(str(write_model(tmp_path / "c.onnx", scale=0.0, bias=logit(0.8))))
        assert model.predict(noise(1)) == pytest.approx(0.8, abs=1e-6)

    def test_one_model_per_file_is_shared(self, tmp_path: Path) -> None:
        """The same path gives the same object."""
        path = str(write_model(tmp_path / "s.onnx"))
        assert shared_model(path) is shared_model(path)

    def test_a_missing_file_is_a_config_error_naming_the_field(self, tmp_path: Path) -> None:
        """The error names model_path, the path, where to get a model and how to do without."""
        with pytest.raises(ConfigError) as err:
            shared_model(str(tmp_path / "absent.onnx"))
        assert err.value.field == "model_path"
        assert "absent.onnx" in str(err.value) and "remove model_path" in str(err.value)

    def test_missing_onnxruntime_is_a_config_error_with_the_install_hint(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the import blocked, even a cached model is refused at once."""
        path = str(write_model(tmp_path / "m.onnx"))
        shared_model(path)
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        with pytest.raises(ConfigError) as err:
            shared_model(path)
        assert err.value.field == "model_path"
        assert "pip install onnxruntime" in str(err.value)

    def test_a_model_with_another_input_is_refused(self, tmp_path: Path) -> None:
        """A v2-style raw-audio input is not Smart Turn v3's: ConfigError saying what it takes."""
        path = write_model(
            tmp_path / "v2.onnx", input_name="input_values", input_shape=("batch", 80, 800)
        )
        with pytest.raises(ConfigError, match="input_values"):
            shared_model(str(path))

    def test_a_file_that_is_not_onnx_is_refused(self, tmp_path: Path) -> None:
        """Garbage bytes: ConfigError, not an onnxruntime exception."""
        path = tmp_path / "junk.onnx"
        path.write_bytes(b"not a model")
        with pytest.raises(ConfigError, match="not an ONNX model"):
            shared_model(str(path))
