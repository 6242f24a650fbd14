"""Specification of vbgraph.dsp.resample, run against the numpy reference and the C kernels.

``TestResamplerReference`` states the behaviour; ``TestResamplerCompiled`` inherits
every test and runs it with the compiled module (STYLE.md rule 10). Without a
build the compiled tests skip, except on CI (``CI=true``) or with
``VBGRAPH_REQUIRE_COMPILED=1``, where they fail.

Notation: out/in = L/M in lowest terms, R = ``latency_frames``, n = input frames
of a stream. After n frames E(n) = ceil((n - R) L / M) output frames have come
out; after flush F(n) = floor(n L / M + 1/2).
"""

from __future__ import annotations

import itertools
import math
import os
import types
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import soxr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from tests.dsp.fallback_support import reimport_without_compiled

from vbgraph.errors import AudioFormatError, ConfigError, UsageError
from vbgraph.typing import BytesLike

with warnings.catch_warnings():
    # Without the compiled module, importing resample warns (TestFallback checks
    # that); here the missing module is reported by TestResamplerCompiled instead.
    warnings.simplefilter("ignore", RuntimeWarning)
    from vbgraph.dsp import _resample_ref, resample
    from vbgraph.dsp.resample import SUPPORTED_RATES, Resampler, is_supported

_resample_c: types.ModuleType | None
try:
    from vbgraph.dsp import _resample_c
except ImportError as exc:
    _resample_c = None
    _MISSING_REASON = f"vbgraph.dsp._resample_c is not built ({exc}); run `pip install -e .`"
else:
    _MISSING_REASON = ""

ON_CI = os.environ.get("CI", "").lower() in ("1", "true")
REQUIRE_COMPILED = ON_CI or os.environ.get("VBGRAPH_REQUIRE_COMPILED") == "1"

S16, F32 = "pcm_s16le", "pcm_f32le"
# The pairs the issue names, plus the odd 44.1 <-> 48 kHz ratio (147/160).
PAIRS = [
    (48000, 16000),
    (16000, 8000),
    (8000, 16000),
    (16000, 24000),
    (44100, 16000),
    (16000, 48000),
    (44100, 48000),
    (48000, 44100),
]
QUALITY_PAIRS = PAIRS[:6]
ALL_PAIRS = [(a, b) for a in SUPPORTED_RATES for b in SUPPORTED_RATES if a != b]
PASSBAND = 0.9  # of the lower rate's Nyquist frequency
STOPBAND = 2 - PASSBAND  # 1.1: where aliases would land inside the passband

PROPERTY = settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.differing_executors]
)


# -- helpers ---------------------------------------------------------------


def ratio(in_rate: int, out_rate: int) -> tuple[int, int]:
    g = math.gcd(in_rate, out_rate)
    return out_rate // g, in_rate // g


def total_frames(n: int, in_rate: int, out_rate: int) -> int:
    """F(n): n * out / in rounded, halves up."""
    up, down = ratio(in_rate, out_rate)
    return (2 * n * up + down) // (2 * down)


def ready_frames(n: int, latency: int, in_rate: int, out_rate: int) -> int:
    """E(n): output frames out after n input frames."""
    up, down = ratio(in_rate, out_rate)
    return 0 if n <= latency else -(-(n - latency) * up // down)


def noise(frames: int, channels: int, encoding: str, seed: int = 0) -> bytes:
    """Random audio: full-range int16 (so saturation happens) or float32 at 0.3 rms."""
    rng = np.random.default_rng(seed)
    if encoding == S16:
        return (
            rng.integers(-32768, 32768, frames * channels, dtype=np.int64).astype("<i2").tobytes()
        )
    return (rng.standard_normal(frames * channels) * 0.3).astype("<f4").tobytes()


def frame_bytes(channels: int, encoding: str) -> int:
    return channels * (2 if encoding == S16 else 4)


def one_call(r: Resampler, data: BytesLike) -> bytes:
    return r.process(data) + r.flush()


def in_chunks(r: Resampler, data: bytes, bounds: Sequence[int]) -> bytes:
    """Process data[bounds[i]:bounds[i+1]] one by one, then flush."""
    parts = [r.process(data[a:b]) for a, b in itertools.pairwise(bounds)]
    return b"".join(parts) + r.flush()


def to_f32(data: bytes) -> NDArray[np.float64]:
    return np.frombuffer(data, "<f4").astype(np.float64)


def resample_f32(
    in_rate: int, out_rate: int, x: NDArray[np.float64], quality: str
) -> NDArray[np.float64]:
    r = Resampler(in_rate, out_rate, encoding=F32, quality=quality)  # type: ignore[arg-type]
    return to_f32(one_call(r, x.astype("<f4").tobytes()))


def soxr_vhq(in_rate: int, out_rate: int, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """soxr's very-high-quality recipe (one shot, float64), with its steep-filter flag.

    Plain ``soxr.resample(x, a, b, "VHQ")`` lets its passband roll off by up to
    0.01 dB before 0.913 of Nyquist (soxr's ROLLOFF_SMALL): at 44.1 -> 16 kHz it
    is -0.006 dB at 0.9, a -63 dB difference from any flat resampler, ours or an
    exact float64 sinc. SOXR_STEEP_FILTER (0x40) moves that roll-off past 0.99;
    for integer ratios the two recipes agree to 170 dB.
    """
    steep = 0x40
    y = soxr.soxr_ext.csoxr_divide_proc_float64(
        in_rate, out_rate, np.ascontiguousarray(x[:, None]), soxr.VHQ | steep
    )
    return np.asarray(y[:, 0], dtype=np.float64)


def tukey(n: int, tapered: float = 0.2) -> NDArray[np.float64]:
    """A window flat in the middle with raised-cosine ends (``tapered`` of it in all)."""
    w = np.ones(n)
    m = int(n * tapered / 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
    w[:m], w[n - m :] = ramp, ramp[::-1]
    return w


def passband_snr_db(
    in_rate: int, out_rate: int, ours: NDArray[np.float64], ref: NDArray[np.float64]
) -> float:
    """SNR of ours against ref in 0..0.9 of the lower Nyquist frequency, in dB.

    Both outputs are aligned by construction (each resampler removes its own
    delay: output k stands for input instant k * in / out) and have the same
    length. 50 ms at each end is dropped and both are band-limited to the
    passband in the frequency domain, after a Tukey window: flat, so every
    moment of the signal weighs the same, with smooth ends, so the large
    differences just above the passband (where each filter has its own
    transition band) do not leak into it.
    """
    assert len(ours) == len(ref)
    trim = out_rate // 20
    a, b = ours[trim:-trim], ref[trim:-trim]
    window = tukey(len(a))
    error = np.fft.rfft((a - b) * window)
    signal = np.fft.rfft(b * window)
    freqs = np.fft.rfftfreq(len(a), 1 / out_rate)
    band = freqs <= PASSBAND * min(in_rate, out_rate) / 2
    return float(
        10 * np.log10(np.sum(np.abs(signal[band]) ** 2) / np.sum(np.abs(error[band]) ** 2))
    )


def swept_sine(rate: int, seconds: float = 1.0) -> NDArray[np.float64]:
    """A linear chirp from 20 Hz to 0.98 of Nyquist at half scale, faded in and out."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0, f1 = 20.0, 0.98 * rate / 2
    x = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return np.asarray(x * fade)


def white_noise(rate: int, seconds: float = 1.0) -> NDArray[np.float64]:
    return np.random.default_rng(7).standard_normal(int(rate * seconds)) * 0.2


def filter_stopband_db(in_rate: int, out_rate: int, quality: int) -> float:
    """Peak gain of the prototype filter above 1.1 of the lower Nyquist, in dB re DC."""
    d = _resample_ref.design(in_rate, out_rate, quality)
    up, taps = d.phases, d.taps
    # Tap i of phase p weighs the input at tau = p/L + (taps - 1 - R - i):
    # on the grid of rate L * in_rate, that is index p + L * (taps - 1 - R - i).
    index = np.arange(up)[:, None] + up * (taps - 1 - d.lookahead - np.arange(taps))[None, :]
    h = np.zeros(index.max() - index.min() + 1)
    h[(index - index.min()).ravel()] = d.bank.astype(np.float64).ravel()
    nfft = 1 << 20
    response = np.abs(np.fft.rfft(h, nfft))
    freqs = np.fft.rfftfreq(nfft, 1 / (up * in_rate))
    stop = response[freqs >= STOPBAND * min(in_rate, out_rate) / 2].max()
    return float(20 * np.log10(stop / response[0]))


def tone_leak_db(in_rate: int, out_rate: int, quality: str) -> float:
    """The most energy any stopband tone leaks into the output, in dB re the tone.

    Downsampling: tones from 1.1 to 1.5 times the output Nyquist frequency
    (below the input's) must vanish; the whole output is leakage. Upsampling:
    tones in the passband must leave no images above 1.1 times the input
    Nyquist frequency. Tones sit on whole multiples of 4 Hz and the measured
    block is 0.25 s of steady output, so every component falls on an FFT bin.
    """
    nyq = min(in_rate, out_rate) / 2
    if in_rate > out_rate:
        low, high = STOPBAND * nyq, min(1.5 * nyq, 0.98 * in_rate / 2)
    else:
        low, high = 100.0, PASSBAND * nyq
    block = out_rate // 4
    worst = -math.inf
    for f in np.linspace(low, high, 5):
        f = 4 * round(f / 4)
        t = np.arange(in_rate // 2) / in_rate
        y = resample_f32(in_rate, out_rate, np.sin(2 * np.pi * f * t), quality)
        y = y[block // 2 : block // 2 + block]
        if in_rate > out_rate:
            leak = float(np.mean(y**2))
        else:
            spectrum = np.fft.rfft(y) / len(y)
            freqs = np.fft.rfftfreq(len(y), 1 / out_rate)
            leak = float(2 * np.sum(np.abs(spectrum[freqs >= STOPBAND * nyq]) ** 2))
        worst = max(worst, 10 * np.log10(max(leak, 1e-30) / 0.5))
    return worst


@pytest.fixture(scope="class")
def use_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """Route vbgraph.dsp.resample through the requesting class's ``backend``."""
    backend = request.cls.backend
    if backend is None:
        pytest.fail(f"the compiled module is required here, but {_MISSING_REASON}")
    saved = resample._backend
    resample._backend = backend
    yield
    resample._backend = saved


# -- the specification -----------------------------------------------------


@pytest.mark.usefixtures("use_backend")
class TestResamplerReference:
    """The resampler contract, run with the numpy reference implementation."""

    backend: object = _resample_ref

    # -- arguments ----------------------------------------------------------

    def test_every_pair_of_supported_rates_is_supported(self) -> None:
        """is_supported() is true for the 49 pairs of the seven rates, false otherwise."""
        assert SUPPORTED_RATES == (8000, 16000, 22050, 24000, 32000, 44100, 48000)
        assert all(is_supported(a, b) for a in SUPPORTED_RATES for b in SUPPORTED_RATES)
        assert not is_supported(11025, 16000)
        assert not is_supported(16000, 96000)

    @pytest.mark.parametrize(("in_rate", "out_rate"), [(11025, 16000), (16000, 96000), (0, 8000)])
    def test_an_unsupported_pair_names_the_pair_and_soxr(self, in_rate: int, out_rate: int) -> None:
        """Rates outside the list raise AudioFormatError naming both rates and soxr."""
        pattern = rf"^Resampler: {in_rate} -> {out_rate} Hz is not supported: .* soxr"
        with pytest.raises(AudioFormatError, match=pattern):
            Resampler(in_rate, out_rate)

    @pytest.mark.parametrize("channels", [0, -1, 9])
    def test_channels_must_be_one_to_eight(self, channels: int) -> None:
        """A channel count outside 1..8 raises AudioFormatError with the count."""
        with pytest.raises(AudioFormatError, match=rf"channels must be 1 to 8, got {channels}"):
            Resampler(16000, 8000, channels=channels)

    @pytest.mark.parametrize("encoding", ["mulaw", "opus", "s16", "int16"])
    def test_encoding_must_be_linear_pcm(self, encoding: str) -> None:
        """Anything but pcm_s16le and pcm_f32le raises AudioFormatError naming both."""
        with pytest.raises(AudioFormatError, match="encoding must be pcm_s16le or pcm_f32le"):
            Resampler(16000, 8000, encoding=encoding)

    def test_quality_must_be_a_preset(self) -> None:
        """An unknown quality raises ConfigError (a ValueError) listing the presets."""
        with pytest.raises(ConfigError, match="quality must be 'low', 'medium' or 'high'"):
            Resampler(16000, 8000, quality="vhq")  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [16000.0, "16000", None, True])
    def test_rates_must_be_ints(self, bad: object) -> None:
        """A rate that is not an int (a float, str, None or bool) raises UsageError."""
        with pytest.raises(UsageError, match="in_rate must be an int"):
            Resampler(bad, 8000)  # type: ignore[arg-type]

    def test_equal_rates_pass_bytes_through_as_the_same_object(self) -> None:
        """With in_rate == out_rate, process returns its bytes input itself, latency 0."""
        r = Resampler(16000, 16000)
        data = noise(160, 1, S16)
        assert r.passthrough and r.latency_frames == 0 and r.latency_ns == 0
        assert r.process(data) is data
        assert r.process(bytearray(data)) == data
        assert r.flush() == b""
        assert r.out_frames(160) == 160

    def test_the_repr_shows_the_arguments(self) -> None:
        """repr() reads like the call that made the resampler."""
        r = Resampler(48000, 16000, channels=2, encoding=F32, quality="low")
        assert repr(r) == (
            "Resampler(48000, 16000, channels=2, encoding='pcm_f32le', quality='low')"
        )

    # -- lengths --------------------------------------------------------------

    @pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
    def test_lengths_either_side_of_ratio_boundaries_follow_e_and_f(
        self, in_rate: int, out_rate: int
    ) -> None:
        """For n around multiples of M and around R, process gives E(n) and flush F(n) in all."""
        _, down = ratio(in_rate, out_rate)
        latency = Resampler(in_rate, out_rate).latency_frames
        lengths = {0, 1, 2, latency - 1, latency, latency + 1}
        for k in (1, 2, 3):
            lengths |= {k * down - 1, k * down, k * down + 1, latency + k * down}
        for n in sorted(x for x in lengths if x >= 0):
            r = Resampler(in_rate, out_rate)
            assert r.out_frames(n) == ready_frames(n, latency, in_rate, out_rate)
            out = r.process(noise(n, 1, S16))
            assert len(out) // 2 == ready_frames(n, latency, in_rate, out_rate), n
            assert (len(out) + len(r.flush())) // 2 == total_frames(n, in_rate, out_rate), n

    @pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
    def test_out_frames_predicts_every_call_exactly(self, in_rate: int, out_rate: int) -> None:
        """out_frames(n) is exactly the length of the next process() of n frames."""
        r = Resampler(in_rate, out_rate, channels=2)
        data = noise(2000, 2, S16)
        start = 0
        for size in (1, 7, 160, 0, 441, 3, 960, 1):
            expected = r.out_frames(size)
            assert len(r.process(data[4 * start : 4 * (start + size)])) == 4 * expected
            start += size

    def test_flush_completes_an_hour_to_the_exact_rounded_length(self) -> None:
        """The length rule F(n) holds at 44.1 -> 48 kHz for n up to an hour of audio."""
        r = Resampler(44100, 48000)
        latency = r.latency_frames
        for n in (44100 * 3600, 44100 * 3600 + 1, 147 * 1000 - 1):
            assert r.out_frames(n) == ready_frames(n, latency, 44100, 48000)
        assert total_frames(147, 44100, 48000) == 160
        assert total_frames(1, 44100, 48000) == 1  # 1.088... rounds to 1
        assert total_frames(1, 48000, 16000) == 0  # 1/3 rounds to 0
        assert total_frames(3, 16000, 24000) == 5  # 4.5 rounds up

    # -- chunking -------------------------------------------------------------

    @PROPERTY
    @given(
        pair=st.sampled_from(ALL_PAIRS),
        encoding=st.sampled_from([S16, F32]),
        channels=st.sampled_from([1, 2]),
        frames=st.integers(min_value=0, max_value=700),
        cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=8),
        seed=st.integers(min_value=0, max_value=2**16),
    )
    def test_any_chunking_gives_the_same_output_as_one_call(
        self,
        pair: tuple[int, int],
        encoding: str,
        channels: int,
        frames: int,
        cuts: list[int],
        seed: int,
    ) -> None:
        """Splitting a stream into calls anywhere gives the very same bytes, flush included."""
        size = frame_bytes(channels, encoding)
        data = noise(frames, channels, encoding, seed)
        bounds = sorted({0, frames, *(min(c, frames) for c in cuts)})
        r = Resampler(*pair, channels=channels, encoding=encoding)
        expected = one_call(r, data)
        assert in_chunks(r, data, [b * size for b in bounds]) == expected

    @pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
    @pytest.mark.parametrize("encoding", [S16, F32])
    def test_one_frame_at_a_time_gives_the_same_output_as_one_call(
        self, in_rate: int, out_rate: int, encoding: str
    ) -> None:
        """Feeding 300 frames one per call equals one call, for every pair and format."""
        size = frame_bytes(1, encoding)
        data = noise(300, 1, encoding, seed=3)
        r = Resampler(in_rate, out_rate, encoding=encoding)
        expected = one_call(r, data)
        assert in_chunks(r, data, range(0, len(data) + 1, size)) == expected

    def test_a_long_buffer_gives_the_same_output_as_20ms_chunks(self) -> None:
        """10 s of stereo at 48 kHz in one call (GIL released in C) equals 20 ms chunks."""
        data = noise(480_000, 2, S16, seed=5)
        r = Resampler(48000, 16000, channels=2)
        expected = one_call(r, data)
        assert len(expected) == 160_000 * 4
        assert in_chunks(r, data, range(0, len(data) + 1, 960 * 4)) == expected

    def test_trailing_and_input_data_are_left_untouched(self) -> None:
        """process reads its input and keeps no reference: the caller may reuse the buffer."""
        data = bytearray(noise(500, 1, S16, seed=9))
        copy = bytes(data)
        r = Resampler(44100, 48000)
        first = r.process(data)
        data[:] = bytes(len(data))  # overwrite the buffer the resampler just read
        rest = r.flush()
        assert data == bytes(len(copy))
        assert first + rest == one_call(Resampler(44100, 48000), copy)

    # -- channels -------------------------------------------------------------

    @pytest.mark.parametrize("encoding", [S16, F32])
    def test_channels_are_resampled_independently(self, encoding: str) -> None:
        """Each channel of an interleaved stream comes out as if resampled alone."""
        dtype = "<i2" if encoding == S16 else "<f4"
        channels = [np.frombuffer(noise(1000, 1, encoding, seed=s), dtype) for s in (1, 2, 3)]
        interleaved = np.stack(channels, axis=1).tobytes()
        out = one_call(Resampler(44100, 16000, channels=3, encoding=encoding), interleaved)
        got = np.frombuffer(out, dtype).reshape(-1, 3)
        for c, x in enumerate(channels):
            alone = one_call(Resampler(44100, 16000, encoding=encoding), x.tobytes())
            assert got[:, c].tobytes() == alone

    # -- reset and flush ------------------------------------------------------

    def test_reset_forgets_the_history(self) -> None:
        """After reset, a stream comes out as from a new resampler: nothing of the old leaks."""
        data = noise(800, 1, S16, seed=11)
        r = Resampler(16000, 48000)
        r.process(noise(333, 1, S16, seed=12))
        r.reset()
        assert one_call(r, data) == one_call(Resampler(16000, 48000), data)

    def test_flush_starts_a_new_stream(self) -> None:
        """After flush, the next stream is independent of the previous one."""
        data = noise(500, 2, F32, seed=13)
        r = Resampler(8000, 16000, channels=2, encoding=F32)
        first = one_call(r, data)
        assert one_call(r, data) == first
        assert r.flush() == b""  # nothing is owed after a flush

    def test_silence_stays_exact_silence(self) -> None:
        """Zeros in give zeros out, int16 and float32, with no dither."""
        for encoding in (S16, F32):
            r = Resampler(48000, 44100, encoding=encoding)
            out = one_call(r, bytes(frame_bytes(1, encoding) * 1000))
            assert out == bytes(len(out)) and len(out) > 0

    # -- numerics -------------------------------------------------------------

    def test_int16_output_is_the_float32_result_rounded_half_to_even(self) -> None:
        """int16 gives rint(clip(32768 * y)) of the float32 path on x / 32768: same sums."""
        ints = np.frombuffer(noise(3000, 1, S16, seed=4), "<i2")
        out16 = one_call(Resampler(16000, 24000), ints.tobytes())
        floats = (ints.astype(np.float32) / np.float32(32768)).tobytes()
        out32 = np.frombuffer(one_call(Resampler(16000, 24000, encoding=F32), floats), "<f4")
        expected = np.rint(np.clip(out32 * np.float32(32768), -32768, 32767)).astype("<i2")
        assert out16 == expected.tobytes()
        assert np.frombuffer(out16, "<i2").min() == -32768  # full-range noise saturates

    def test_full_scale_dc_saturates_without_wrapping(self) -> None:
        """int16 DC at the rails stays at the rails (overshoot saturates, never wraps)."""
        for value in (32767, -32768):
            x = np.full(4800, value, "<i2").tobytes()
            y = np.frombuffer(one_call(Resampler(48000, 16000), x), "<i2")
            assert np.all(y[100:-100] == value)

    def test_dc_passes_with_unit_gain(self) -> None:
        """A float32 DC level comes out at the same level within 1e-4 (-80 dB)."""
        for pair in PAIRS:
            y = resample_f32(*pair, np.full(4000, 0.5), "high")
            middle = y[len(y) // 4 : 3 * len(y) // 4]
            assert np.max(np.abs(middle - 0.5)) < 0.5e-4, pair

    # -- delay ----------------------------------------------------------------

    @pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
    def test_latency_is_the_measured_delay_of_an_impulse(self, in_rate: int, out_rate: int) -> None:
        """An impulse's peak comes out exactly latency_frames input frames after it goes in."""
        up, down = ratio(in_rate, out_rate)
        at = 2 * down  # an input instant that is also an output instant: output 2L
        r = Resampler(in_rate, out_rate, encoding=F32)
        out = bytearray(r.process(bytes(4 * at) + np.float32(1.0).tobytes()))
        waited = 0
        while len(out) // 4 <= 2 * up:
            out += r.process(bytes(4))
            waited += 1
        assert waited == r.latency_frames
        y = np.frombuffer(bytes(out) + r.flush(), "<f4")
        assert int(np.argmax(y)) == 2 * up  # output aligned with input: no added delay

    @pytest.mark.parametrize(("in_rate", "out_rate"), ALL_PAIRS)
    def test_high_quality_delay_is_under_2ms_above_8khz(self, in_rate: int, out_rate: int) -> None:
        """latency_ns is R * 1e9 / in_rate: < 1.9 ms if both rates >= 16 kHz, 3.75 ms at 8 kHz."""
        r = Resampler(in_rate, out_rate)
        assert r.latency_ns == round(r.latency_frames * 1e9 / in_rate)
        if min(in_rate, out_rate) >= 16000:
            assert r.latency_ns < 1_900_000
        else:
            assert r.latency_ns <= 3_750_000

    @pytest.mark.parametrize(
        ("in_rate", "out_rate"),
        [(48000, 16000), (16000, 24000), (8000, 16000), (16000, 8000), (44100, 48000)],
    )
    def test_every_20ms_chunk_yields_its_share_at_once(self, in_rate: int, out_rate: int) -> None:
        """Once primed, each 20 ms chunk gives 20 ms of output +-1 frame: no batching."""
        chunk = in_rate // 50
        r = Resampler(in_rate, out_rate)
        data = noise(chunk * 50, 1, S16, seed=8)
        counts = [len(r.process(data[2 * i * chunk : 2 * (i + 1) * chunk])) // 2 for i in range(50)]
        share = chunk * out_rate / in_rate
        first = (chunk - r.latency_frames) * out_rate / in_rate
        assert abs(counts[0] - first) <= 1  # short by the delay only
        assert all(abs(c - share) <= 1 for c in counts[1:]), counts

    # -- quality --------------------------------------------------------------

    @pytest.mark.parametrize(("in_rate", "out_rate"), QUALITY_PAIRS)
    def test_high_quality_tracks_soxr_vhq_to_80_db_in_the_passband(
        self, in_rate: int, out_rate: int
    ) -> None:
        """For a swept sine and white noise, high has SNR >= 80 dB against soxr VHQ."""
        for x in (swept_sine(in_rate), white_noise(in_rate)):
            ours = resample_f32(in_rate, out_rate, x, "high")
            snr = passband_snr_db(in_rate, out_rate, ours, soxr_vhq(in_rate, out_rate, x))
            assert snr >= 80.0, snr

    @pytest.mark.parametrize(("in_rate", "out_rate"), QUALITY_PAIRS)
    def test_medium_quality_tracks_soxr_vhq_to_60_db_and_low_to_55(
        self, in_rate: int, out_rate: int
    ) -> None:
        """For the same signals, medium has SNR >= 60 dB and low >= 55 dB."""
        for x in (swept_sine(in_rate), white_noise(in_rate)):
            ref = soxr_vhq(in_rate, out_rate, x)
            for quality, floor in (("medium", 60.0), ("low", 55.0)):
                ours = resample_f32(in_rate, out_rate, x, quality)
                snr = passband_snr_db(in_rate, out_rate, ours, ref)
                assert snr >= floor, (quality, snr)

    @pytest.mark.parametrize(("in_rate", "out_rate"), QUALITY_PAIRS)
    def test_high_quality_stopband_attenuation_is_at_least_90_db(
        self, in_rate: int, out_rate: int
    ) -> None:
        """Above 1.1x the lower Nyquist frequency the filter and real tones stay 90 dB down."""
        assert filter_stopband_db(in_rate, out_rate, 2) <= -90.0
        assert tone_leak_db(in_rate, out_rate, "high") <= -90.0

    # -- buffers --------------------------------------------------------------

    def test_every_contiguous_buffer_type_gives_the_same_result(self) -> None:
        """bytes, bytearray, memoryviews (also wide items or at an offset) and numpy all work."""
        samples = np.frombuffer(noise(700, 2, S16, seed=21), "<i2")
        data = samples.tobytes()
        expected = one_call(Resampler(22050, 32000, channels=2), data)
        for buffer in (
            bytearray(data),
            memoryview(data),
            memoryview(data).cast("h"),
            samples,
            samples.reshape(-1, 2),
            memoryview(b"\x00" + data)[1:],  # odd address: copied to align
            memoryview(b"\x00\x00" + data)[2:],
        ):
            r = Resampler(22050, 32000, channels=2)
            assert one_call(r, buffer) == expected  # type: ignore[arg-type]  # numpy arrays too

    @pytest.mark.parametrize(
        ("length", "channels", "encoding"),
        [(1, 1, S16), (3, 1, S16), (2, 2, S16), (6, 1, F32), (12, 2, F32)],
    )
    def test_partial_frames_raise_audio_format_error(
        self, length: int, channels: int, encoding: str
    ) -> None:
        """A byte count that is not whole frames raises AudioFormatError with the length."""
        r = Resampler(16000, 8000, channels=channels, encoding=encoding)
        with pytest.raises(AudioFormatError, match=rf"^Resampler.process: buffer length {length}"):
            r.process(bytes(length))

    def test_non_contiguous_and_non_buffers_are_rejected(self) -> None:
        """A strided view raises AudioFormatError; a str or list raises UsageError."""
        r = Resampler(16000, 8000)
        with pytest.raises(AudioFormatError, match="not contiguous"):
            r.process(memoryview(bytes(16))[::2])
        for value in ("ab", [1, 2], 12, None):
            with pytest.raises(UsageError, match="expected bytes, bytearray or memoryview"):
                r.process(value)  # type: ignore[arg-type]

    @PROPERTY
    @given(
        data=st.binary(max_size=160),
        offset=st.integers(min_value=0, max_value=7),
        channels=st.integers(min_value=1, max_value=3),
        encoding=st.sampled_from([S16, F32]),
        pair=st.sampled_from(PAIRS),
    )
    def test_fuzzed_buffers_give_a_result_or_a_clear_error(
        self, data: bytes, offset: int, channels: int, encoding: str, pair: tuple[int, int]
    ) -> None:
        """Any bytes at any offset give the output of a clean copy, or AudioFormatError."""
        r = Resampler(*pair, channels=channels, encoding=encoding)
        view = memoryview(bytes(offset) + data)[offset:]
        size = frame_bytes(channels, encoding)
        if len(data) % size:
            with pytest.raises(AudioFormatError):
                r.process(view)
            return
        out = r.process(view) + r.flush()
        assert out == one_call(Resampler(*pair, channels=channels, encoding=encoding), data)


@pytest.mark.skipif(_resample_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestResamplerCompiled(TestResamplerReference):
    """The same contract, run with the compiled C kernels."""

    backend = _resample_c

    @pytest.mark.parametrize("quality", [0, 1, 2])
    def test_the_coefficient_bank_equals_the_reference_design(self, quality: int) -> None:
        """For every pair and preset, C computes the same float32 coefficients as numpy."""
        assert _resample_c is not None
        for pair in ALL_PAIRS:
            c = _resample_c.Resampler(*pair, 1, 0, quality)
            d = _resample_ref.design(*pair, quality)
            assert (c.taps, c.latency_frames, c.ratio) == (d.taps, d.lookahead, (d.phases, d.step))
            assert c.coefficients() == d.bank.tobytes(), pair

    @pytest.mark.parametrize(("in_rate", "out_rate"), ALL_PAIRS)
    def test_c_and_numpy_give_the_same_bytes(self, in_rate: int, out_rate: int) -> None:
        """On the same stream, the compiled and numpy resamplers agree bit for bit."""
        assert _resample_c is not None
        for encoding, fmt in ((S16, 0), (F32, 1)):
            data = noise(900, 2, encoding, seed=in_rate + out_rate)
            c = _resample_c.Resampler(in_rate, out_rate, 2, fmt, 2)
            ref = _resample_ref.Resampler(in_rate, out_rate, 2, fmt, 2)
            assert c.process(data) + c.flush() == ref.process(data) + ref.flush()

    def test_the_scalar_and_simd_kernels_give_the_same_bytes(self) -> None:
        """Every kernel variant the CPU has computes the same bits as the scalar one."""
        assert _resample_c is not None
        probe = _resample_c.Resampler(16000, 8000, 1, 1, 2)
        if probe.kernel == "scalar":
            pytest.skip("this CPU has no SIMD variant")
        for pair in PAIRS:
            data = noise(3000, 2, F32, seed=pair[0])
            simd = _resample_c.Resampler(*pair, 2, 1, 2)
            scalar = _resample_c.Resampler(*pair, 2, 1, 2)
            scalar.kernel = "scalar"
            assert simd.kernel != "scalar"
            assert simd.process(data) + simd.flush() == scalar.process(data) + scalar.flush()

    def test_a_huge_frame_count_does_not_overflow_out_frames(self) -> None:
        """out_frames of 2**62 frames is a large positive number, not a wrapped one."""
        r = Resampler(8000, 48000)
        assert r.out_frames(2**62) > 2**40


class TestFallback:
    """Choosing between the compiled module and the numpy reference at import."""

    def test_missing_compiled_module_falls_back_to_numpy_with_one_warning(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without _resample_c, resample uses the numpy reference and warns once, at import."""
        fresh = reimport_without_compiled(monkeypatch, "resample")
        assert fresh.IMPLEMENTATION == "numpy"
        data = noise(100, 1, S16)
        assert one_call(fresh.Resampler(16000, 8000), data) == one_call(
            Resampler(16000, 8000), data
        )

    @pytest.mark.skipif(
        _resample_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built"
    )
    def test_the_compiled_module_is_used_when_present(self) -> None:
        """With _resample_c importable, IMPLEMENTATION is "c"."""
        assert resample.IMPLEMENTATION == "c"
        assert resample._backend is _resample_c
