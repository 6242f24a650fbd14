"""Specification of vbgraph.dsp.vad, run against the numpy reference and the C kernel.

``TestVadReference`` states the behaviour; ``TestVadCompiled`` inherits every
test and runs it with the compiled module (STYLE.md rule 10). Without a build
the compiled tests skip, except on CI (``CI=true``) or with
``VBGRAPH_REQUIRE_COMPILED=1``, where they fail.
"""

from __future__ import annotations

import os
import types
import warnings
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from vbgraph.errors import AudioFormatError, ConfigError, UsageError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    from vbgraph.dsp import _vad_ref, vad
    from vbgraph.dsp.vad import Vad

_vad_c: types.ModuleType | None
try:
    from vbgraph.dsp import _vad_c
except ImportError as exc:
    _vad_c = None
    _MISSING_REASON = f"vbgraph.dsp._vad_c is not built ({exc}); run `pip install -e .`"
else:
    _MISSING_REASON = ""

ON_CI = os.environ.get("CI", "").lower() in ("1", "true")
REQUIRE_COMPILED = ON_CI or os.environ.get("VBGRAPH_REQUIRE_COMPILED") == "1"
SPEECH = Path(__file__).resolve().parents[2] / "graphs" / "samples" / "speech_16k.wav"


def speech_16k() -> NDArray[np.int16]:
    """7.1 s of real speech, 16 kHz mono int16."""
    with wave.open(str(SPEECH), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def white(seconds: float, dbfs: float, rate: int = 16000, seed: int = 1) -> NDArray[np.int16]:
    """Seeded white noise at ``dbfs`` RMS."""
    x = np.random.default_rng(seed).standard_normal(int(seconds * rate))
    return np.clip(np.rint(x * 32768 * 10 ** (dbfs / 20)), -32768, 32767).astype("<i2")


def noisy_speech(snr_db: float = 10.0, seed: int = 2) -> NDArray[np.int16]:
    """The speech clip with 0.5 s of silence either side, plus white noise."""
    x = np.concatenate([np.zeros(8000), speech_16k().astype(np.float64), np.zeros(8000)])
    noise = np.random.default_rng(seed).standard_normal(len(x))
    gain = np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))
    return np.clip(np.rint(x + gain * noise), -32768, 32767).astype("<i2")


def decisions(v: Vad, x: NDArray[np.int16]) -> list[bool]:
    n = v.frame_samples
    return [v.process(x[i : i + n].tobytes()) for i in range(0, len(x) - n + 1, n)]


@pytest.fixture(scope="class")
def use_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """Route vbgraph.dsp.vad through the requesting class's ``backend``."""
    backend = request.cls.backend
    if backend is None:
        pytest.fail(f"the compiled module is required here, but {_MISSING_REASON}")
    saved = vad._backend
    vad._backend = backend
    yield
    vad._backend = saved


@pytest.mark.usefixtures("use_backend")
class TestVadReference:
    """The VAD contract, run with the numpy reference implementation."""

    backend: object = _vad_ref

    def test_a_frame_is_rate_times_frame_ms_samples(self) -> None:
        """Frame sizes follow rate and frame_ms: 20 ms at 16 kHz is 320 samples, 640 bytes."""
        for rate in (8000, 16000):
            for ms in (10, 20, 30):
                v = Vad(rate, frame_ms=ms)
                assert v.frame_samples == rate * ms // 1000
                assert v.frame_bytes == 2 * v.frame_samples

    def test_digital_silence_is_not_speech_and_reads_minus_120_dbfs(self) -> None:
        """Zeros give no speech, probability under 0.5 and the -120 dBFS floor."""
        v = Vad(16000)
        assert not any(v.process(bytes(640)) for _ in range(50))
        assert v.volume_db == -120.0
        assert v.probability < 0.5

    def test_volume_is_the_frames_rms_in_dbfs(self) -> None:
        """A full-scale square wave reads 0 dBFS; half scale about -6 dBFS."""
        v = Vad(8000, frame_ms=10)
        v.process(np.tile(np.array([32767, -32767], dtype="<i2"), 40).tobytes())
        assert v.volume_db == pytest.approx(0.0, abs=1e-3)
        v.process(np.tile(np.array([16384, -16384], dtype="<i2"), 40).tobytes())
        assert v.volume_db == pytest.approx(-6.02, abs=0.01)

    def test_real_speech_is_found_where_it_is_loud(self) -> None:
        """On the clean clip, most loud frames are speech and the noise-only lead-in is not."""
        x = noisy_speech(snr_db=30.0)
        v = Vad(16000, aggressiveness=2)
        d = np.array(decisions(v, x))
        frames = x[: len(d) * 320].astype(np.float64).reshape(len(d), 320)
        level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2 + 1e-12)
        loud = level > level.max() - 25
        assert np.mean(d[loud]) > 0.9
        assert not d[:10].any()

    @pytest.mark.parametrize("rate", [8000, 16000])
    def test_white_noise_alone_is_not_speech_from_aggressiveness_2(self, rate: int) -> None:
        """3 s of -30 dBFS white noise: at most a few frames flagged at presets 2 and 3."""
        x = white(3.0, -30.0, rate)
        for a in (2, 3):
            assert sum(decisions(Vad(rate, aggressiveness=a), x)) <= 3

    @pytest.mark.parametrize("noise_seed", [1, 2, 3])
    def test_a_higher_aggressiveness_never_flags_more_noise(self, noise_seed: int) -> None:
        """On noise-only input, frames flagged do not increase from preset 0 to 3."""
        rng = np.random.default_rng(noise_seed)
        # Pink-ish noise with a level step, so the floor has something to track.
        x = np.cumsum(rng.standard_normal(16000 * 4)) * 0.02
        x = x - np.convolve(x, np.ones(64) / 64, mode="same")
        x = x * 300 * np.where(np.arange(len(x)) < 32000, 1.0, 4.0)
        x = np.clip(np.rint(x), -32768, 32767).astype("<i2")
        counts = [sum(decisions(Vad(16000, aggressiveness=a), x)) for a in range(4)]
        assert counts == sorted(counts, reverse=True), counts

    def test_reset_starts_a_new_stream(self) -> None:
        """After reset, the same input gives the same decisions as a fresh VAD."""
        x = noisy_speech()[:32000]
        v = Vad(16000)
        first = decisions(v, x)
        v.reset()
        assert decisions(v, x) == first

    def test_bytes_bytearray_memoryview_and_numpy_give_the_same_decision(self) -> None:
        """Any contiguous buffer of the right size is accepted."""
        x = noisy_speech()[:3200]
        outs = []
        for kind in (bytes, bytearray, memoryview, lambda b: np.frombuffer(b, dtype="<i2")):
            v = Vad(16000)
            outs.append([v.process(kind(x[i : i + 320].tobytes())) for i in range(0, 3200, 320)])
        assert all(o == outs[0] for o in outs)

    def test_a_frame_at_an_odd_address_is_accepted(self) -> None:
        """A memoryview sliced at an odd byte offset gives the same decision."""
        x = noisy_speech()[:320].tobytes()
        a, b = Vad(16000), Vad(16000)
        assert a.process(memoryview(b"\x00" + x)[1:]) == b.process(x)
        assert a.probability == b.probability

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"rate": 44100}, AudioFormatError, "rate must be one of 8000, 16000"),
            ({"frame_ms": 25}, ConfigError, "frame_ms must be one of 10, 20, 30"),
            ({"aggressiveness": 4}, ConfigError, "aggressiveness must be one of 0, 1, 2, 3"),
            ({"aggressiveness": True}, UsageError, "aggressiveness must be an int"),
            ({"rate": 16000.0}, UsageError, "rate must be an int"),
        ],
    )
    def test_bad_arguments_raise_clear_errors(
        self, kwargs: dict[str, object], error: type[Exception], match: str
    ) -> None:
        """Unsupported rates, frame lengths and presets are refused by name."""
        with pytest.raises(error, match=match):
            Vad(**kwargs)  # type: ignore[arg-type]

    def test_a_frame_of_the_wrong_size_raises(self) -> None:
        """A frame one sample short, or odd-sized, is an AudioFormatError naming the size."""
        v = Vad(16000)
        with pytest.raises(AudioFormatError, match="must be 640 bytes"):
            v.process(bytes(638))
        with pytest.raises(AudioFormatError, match="got 641"):
            v.process(bytes(641))
        with pytest.raises(UsageError, match="expected bytes"):
            v.process("not audio")  # type: ignore[arg-type]

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.differing_executors]
    )
    @given(
        size=st.integers(0, 2000),
        rate=st.sampled_from([8000, 16000]),
        ms=st.sampled_from([10, 20, 30]),
        fill=st.integers(-32768, 32767),
    )
    def test_the_wrapper_never_crashes_on_any_length(
        self, size: int, rate: int, ms: int, fill: int
    ) -> None:
        """Any byte length is either processed (the exact size) or refused with an error."""
        v = Vad(rate, frame_ms=ms)
        data = (np.full(size // 2 + 1, fill, dtype="<i2").tobytes())[:size]
        if size == v.frame_bytes:
            assert v.process(data) in (True, False)
            assert 0.0 <= v.probability <= 1.0
        else:
            with pytest.raises(AudioFormatError):
                v.process(data)


@pytest.mark.skipif(_vad_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestVadCompiled(TestVadReference):
    """The same contract, run with the compiled C kernel."""

    backend = _vad_c

    @pytest.mark.parametrize("rate", [8000, 16000])
    @pytest.mark.parametrize("ms", [10, 20, 30])
    def test_c_and_numpy_make_the_same_decisions_on_speech_and_noise(
        self, rate: int, ms: int
    ) -> None:
        """Decisions equal, probabilities and volumes within 1e-9, on noisy real speech."""
        assert _vad_c is not None
        x = noisy_speech(snr_db=10.0)
        if rate == 8000:
            x = x[::2].copy()
        n = rate * ms // 1000
        for a in (0, 2, 3):
            c, r = _vad_c.Vad(rate, n, a), _vad_ref.Vad(rate, n, a)
            for i in range(0, len(x) - n + 1, n):
                frame = x[i : i + n].tobytes()
                assert c.process(frame) == r.process(frame), (a, i)
                assert c.probability == pytest.approx(r.probability, abs=1e-9)
                assert c.volume_db == pytest.approx(r.volume_db, abs=1e-9)

    def test_the_c_kernel_refuses_a_wrong_frame_size(self) -> None:
        """Past the Python checks, the kernel still refuses a short frame with its name."""
        assert _vad_c is not None
        with pytest.raises(ValueError, match="vb_vad_process"):
            _vad_c.Vad(16000, 320, 2).process(bytes(100))
        with pytest.raises(ValueError, match="vb_vad_new"):
            _vad_c.Vad(16000, 321, 2)


class TestImplementation:
    """Which implementation is in use."""

    @pytest.mark.skipif(_vad_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
    def test_the_compiled_module_is_used_when_present(self) -> None:
        """With _vad_c importable, IMPLEMENTATION is "c"."""
        assert vad.IMPLEMENTATION == "c"
        assert vad._backend is _vad_c
