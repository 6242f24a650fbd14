"""Specification of vbgraph.dsp.pcm, run against the numpy reference and the C kernels.

``TestPcmReference`` states the behaviour; ``TestPcmCompiled`` inherits every test
and runs it with the compiled module (STYLE.md rule 10). Without a build the
compiled tests skip, except on CI (``CI=true``) or with
``VBGRAPH_REQUIRE_COMPILED=1``, where they fail.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import types
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbgraph.errors import AudioFormatError, UsageError

with warnings.catch_warnings():
    # Without the compiled module, importing pcm warns (TestFallback checks that);
    # here the missing module is reported by TestPcmCompiled instead.
    warnings.simplefilter("ignore", RuntimeWarning)
    from tests.dsp.fallback_support import reimport_without_compiled
from vbgraph.dsp import _pcm_ref, pcm

_pcm_c: types.ModuleType | None
try:
    from vbgraph.dsp import _pcm_c
except ImportError as exc:
    _pcm_c = None
    _MISSING_REASON = f"vbgraph.dsp._pcm_c is not built ({exc}); run `pip install -e .`"
else:
    _MISSING_REASON = ""

# On CI (CI=true) or with VBGRAPH_REQUIRE_COMPILED=1, a missing compiled module fails.
ON_CI = os.environ.get("CI", "").lower() in ("1", "true")
REQUIRE_COMPILED = ON_CI or os.environ.get("VBGRAPH_REQUIRE_COMPILED") == "1"
FLT_MAX = float(np.finfo(np.float32).max)

ALL_S16 = np.arange(-32768, 32768, dtype="<i2").tobytes()


def s16(*values: int) -> bytes:
    """Little-endian int16 samples."""
    return np.array(values, dtype="<i2").tobytes()


def f32(*values: float) -> bytes:
    """Little-endian float32 samples."""
    return np.array(values, dtype="<f4").tobytes()


def f32_bits(*bits: int) -> bytes:
    """float32 samples given as raw IEEE bit patterns (NaN payloads, signalling NaN)."""
    return np.array(bits, dtype="<u4").tobytes()


def as_s16(data: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(data, dtype="<i2")]


def as_f32(data: bytes) -> list[float]:
    return [float(v) for v in np.frombuffer(data, dtype="<f4")]


def assert_same_f32(actual: bytes, expected: bytes) -> None:
    """Bit-identical float32 buffers, except that any NaN matches any NaN."""
    a = np.frombuffer(actual, dtype="<u4")
    e = np.frombuffer(expected, dtype="<u4")
    assert a.shape == e.shape
    a_nan = np.isnan(a.view("<f4"))
    assert np.array_equal(a_nan, np.isnan(e.view("<f4")))
    assert np.array_equal(a[~a_nan], e[~a_nan])


def assert_equal(actual: bytes, expected: bytes) -> None:
    assert actual == expected


def to_float32(value: float) -> float:
    """Round a double to the nearest float32, as C does (overflow gives infinity)."""
    try:
        packed = struct.pack("<f", value)
    except OverflowError:  # struct refuses what would round to infinity
        return math.copysign(math.inf, value)
    result: float = struct.unpack("<f", packed)[0]
    return result


def spec_to_s16(y: float) -> int:
    """The int16 rule in plain Python: NaN -> 0, round half to even, saturate."""
    if math.isnan(y):
        return 0
    if math.isinf(y):
        return 32767 if y > 0 else -32768
    return max(-32768, min(32767, round(y)))  # round() is half-to-even


S16_FUNCTIONS: Sequence[tuple[str, Callable[[bytes], object]]] = [
    ("s16_to_f32", pcm.s16_to_f32),
    ("gain_s16", lambda d: pcm.gain_s16(d, 0.5)),
    ("peak_s16", pcm.peak_s16),
    ("rms_s16", pcm.rms_s16),
    ("mono_to_stereo_s16", pcm.mono_to_stereo_s16),
    ("mix_s16", lambda d: pcm.mix_s16([d, d])),
]
F32_FUNCTIONS: Sequence[tuple[str, Callable[[bytes], object]]] = [
    ("f32_to_s16", pcm.f32_to_s16),
    ("gain_f32", lambda d: pcm.gain_f32(d, 0.5)),
    ("peak_f32", pcm.peak_f32),
    ("rms_f32", pcm.rms_f32),
    ("mono_to_stereo_f32", pcm.mono_to_stereo_f32),
    ("mix_f32", lambda d: pcm.mix_f32([d, d])),
]
STEREO_FUNCTIONS: Sequence[tuple[str, Callable[[bytes], object], int]] = [
    ("stereo_to_mono_s16", pcm.stereo_to_mono_s16, 4),
    ("stereo_to_mono_f32", pcm.stereo_to_mono_f32, 8),
]
# (name, function of (data, gain), input unit size, output is float32)
CONVERTERS: Sequence[tuple[str, Callable[[bytes, float], bytes], int, bool]] = [
    ("s16_to_f32", lambda d, g: pcm.s16_to_f32(d), 2, True),
    ("f32_to_s16", lambda d, g: pcm.f32_to_s16(d), 4, False),
    ("gain_s16", pcm.gain_s16, 2, False),
    ("gain_f32", pcm.gain_f32, 4, True),
    ("mix_s16", lambda d, g: pcm.mix_s16([d, pcm.gain_s16(d, g), d]), 2, False),
    ("mix_f32", lambda d, g: pcm.mix_f32([d, pcm.gain_f32(d, g), d]), 4, True),
    ("stereo_to_mono_s16", lambda d, g: pcm.stereo_to_mono_s16(d), 4, False),
    ("stereo_to_mono_f32", lambda d, g: pcm.stereo_to_mono_f32(d), 8, True),
    ("mono_to_stereo_s16", lambda d, g: pcm.mono_to_stereo_s16(d), 2, False),
    ("mono_to_stereo_f32", lambda d, g: pcm.mono_to_stereo_f32(d), 4, True),
]

# The property tests run once per implementation, from two test classes: that is
# the point, so Hypothesis' check against one test having two executors is off.
# Examples saved by one class replay in the other, where they are just as valid.
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.differing_executors])

gains = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.5, 2.0, -1.0, 1e-3, 1e3, 40000.0, FLT_MAX]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32),
)


@pytest.fixture(scope="class")
def use_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """Route vbgraph.dsp.pcm through the requesting class's ``backend``."""
    backend = request.cls.backend
    if backend is None:
        pytest.fail(f"the compiled module is required here, but {_MISSING_REASON}")
    saved = pcm._impl
    pcm._impl = backend
    yield
    pcm._impl = saved


@pytest.mark.usefixtures("use_backend")
class TestPcmReference:
    """The PCM contract, run with the numpy reference implementation."""

    backend: types.ModuleType | None = _pcm_ref

    # -- int16 -> float32 -------------------------------------------------

    def test_s16_to_f32_divides_by_32768(self) -> None:
        """int16 becomes float32 by division by 32768: -32768 -> -1.0, 16384 -> 0.5."""
        out = pcm.s16_to_f32(s16(0, 1, -1, 16384, -16384, 32767, -32768))
        assert as_f32(out) == [0.0, 1 / 32768, -1 / 32768, 0.5, -0.5, 32767 / 32768, -1.0]

    def test_s16_to_f32_round_trip_is_the_identity_for_all_65536_values(self) -> None:
        """int16 -> float32 -> int16 gives back every one of the 65536 values."""
        assert pcm.f32_to_s16(pcm.s16_to_f32(ALL_S16)) == ALL_S16

    # -- float32 -> int16 -------------------------------------------------

    def test_f32_to_s16_scales_by_32768(self) -> None:
        """float32 becomes int16 by multiplication by 32768: 0.5 -> 16384, -0.5 -> -16384."""
        out = pcm.f32_to_s16(f32(0.0, -0.0, 0.5, -0.5, 0.25, 1 / 32768, -1 / 32768))
        assert as_s16(out) == [0, 0, 16384, -16384, 8192, 1, -1]

    def test_f32_to_s16_saturates_at_full_scale(self) -> None:
        """+1.0 and above give 32767, -1.0 and below -32768, infinities too."""
        values = (1.0, -1.0, 2.0, -2.0, 1e30, -1e30, FLT_MAX, -FLT_MAX, math.inf, -math.inf)
        out = pcm.f32_to_s16(f32(*values))
        assert as_s16(out) == [32767, -32768] * 5

    def test_f32_to_s16_maps_nan_to_zero(self) -> None:
        """Every NaN (quiet, negative, with payload, signalling) becomes 0."""
        out = pcm.f32_to_s16(f32_bits(0x7FC00000, 0xFFC00000, 0x7FC00001, 0x7F800001, 0xFFFFFFFF))
        assert as_s16(out) == [0, 0, 0, 0, 0]

    def test_f32_to_s16_rounds_halfway_cases_to_even(self) -> None:
        """x.5 rounds to the even neighbour: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -1.5 -> -2."""
        halves = (0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 32766.5, -32767.5, 32767.5)
        out = pcm.f32_to_s16(f32(*(h / 32768 for h in halves)))
        assert as_s16(out) == [0, 2, 2, 4, 0, -2, -2, -4, 32766, -32768, 32767]

    def test_f32_to_s16_rounds_every_halfway_point_to_even(self) -> None:
        """For every k in the int16 range, (k + 0.5) / 32768 gives the even one of k, k + 1."""
        k = np.arange(-32768, 32767, dtype=np.int64)
        out = np.frombuffer(pcm.f32_to_s16(((k + 0.5) / 32768).astype("<f4").tobytes()), "<i2")
        assert np.array_equal(out, np.where(k % 2 == 0, k, k + 1))

    def test_f32_to_s16_rounds_to_nearest_off_the_halfway_point(self) -> None:
        """Values just either side of x.5 round to the nearer integer."""
        out = pcm.f32_to_s16(f32(1.49 / 32768, 1.51 / 32768, -1.49 / 32768, -1.51 / 32768))
        assert as_s16(out) == [1, 2, -1, -2]

    # -- gain -------------------------------------------------------------

    def test_gain_s16_multiplies_and_rounds_half_to_even(self) -> None:
        """int16 gain rounds the product half to even: 1, 3, 5 times 0.5 give 0, 2, 2."""
        out = pcm.gain_s16(s16(1, 3, 5, -3, 100, -101), 0.5)
        assert as_s16(out) == [0, 2, 2, -2, 50, -50]

    def test_gain_s16_saturates(self) -> None:
        """int16 gain clips to [-32768, 32767]; -32768 inverted gives 32767."""
        assert as_s16(pcm.gain_s16(s16(32767, -32768, 20000, -20000, 3), 2.0)) == [
            32767,
            -32768,
            32767,
            -32768,
            6,
        ]
        assert as_s16(pcm.gain_s16(s16(-32768, 32767, 5), -1.0)) == [32767, -32767, -5]
        assert as_s16(pcm.gain_s16(s16(1, -1, 0), FLT_MAX)) == [32767, -32768, 0]

    def test_gain_s16_of_zero_gives_silence(self) -> None:
        """A gain of 0.0 or -0.0 turns every sample into 0."""
        assert pcm.gain_s16(ALL_S16, 0.0) == bytes(len(ALL_S16))
        assert pcm.gain_s16(ALL_S16, -0.0) == bytes(len(ALL_S16))

    @pytest.mark.parametrize("gain", [0.3, -0.77, 1.7, 2.5, 1e-4])
    def test_gain_s16_matches_the_scalar_definition_for_all_65536_values(self, gain: float) -> None:
        """Every int16 value times a float32 gain, rounded half to even and saturated."""
        g = to_float32(gain)
        expected = [spec_to_s16(to_float32(x * g)) for x in range(-32768, 32768)]
        assert as_s16(pcm.gain_s16(ALL_S16, gain)) == expected

    def test_gain_f32_multiplies_without_clipping(self) -> None:
        """float32 gain may take samples past full scale: 0.75 * 2 stays 1.5."""
        out = pcm.gain_f32(f32(0.75, -0.75, 0.25, 0.0), 2.0)
        assert as_f32(out) == [1.5, -1.5, 0.5, 0.0]

    def test_gain_f32_keeps_nan_and_infinity(self) -> None:
        """NaN stays NaN and infinities stay infinite under float32 gain."""
        out = as_f32(pcm.gain_f32(f32(math.nan, math.inf, -math.inf), 0.5))
        assert math.isnan(out[0])
        assert out[1:] == [math.inf, -math.inf]

    def test_gain_f32_rounds_the_product_to_float32(self) -> None:
        """The float32 product is the double product rounded once to float32."""
        x = [0.1, -0.3, 0.7, 1e-3, 3e-39]
        g = to_float32(1.1)
        expected = [to_float32(to_float32(v) * g) for v in x]
        assert as_f32(pcm.gain_f32(f32(*x), 1.1)) == expected

    def test_gain_of_one_returns_the_same_bytes_object(self) -> None:
        """A gain of exactly 1.0 on bytes is a passthrough: the very same object."""
        data16, data32 = s16(1, 2, 3), f32(0.5, math.nan)
        assert pcm.gain_s16(data16, 1.0) is data16
        assert pcm.gain_f32(data32, 1.0) is data32

    def test_gain_of_one_copies_other_buffers_into_bytes(self) -> None:
        """A gain of 1.0 on a bytearray or memoryview returns equal bytes."""
        data = bytearray(s16(1, -2, 3, -4))
        for buffer in (data, memoryview(data)):
            out = pcm.gain_s16(buffer, 1.0)
            assert type(out) is bytes
            assert out == data
            assert pcm.gain_f32(buffer, 1.0) == data

    @pytest.mark.parametrize("gain", [math.nan, math.inf, -math.inf, 1e39, -1e39])
    @pytest.mark.parametrize("name", ["gain_s16", "gain_f32"])
    def test_gain_must_be_a_finite_float32(self, name: str, gain: float) -> None:
        """A NaN, infinite or float32-overflowing gain raises UsageError naming the function."""
        with pytest.raises(UsageError, match=f"^{name}: gain must be a finite float32"):
            getattr(pcm, name)(s16(1, 2), gain)

    # -- level ------------------------------------------------------------

    def test_peak_s16_is_the_largest_magnitude(self) -> None:
        """The peak is max |x|, 32768 for -32768, and 0 for silence or an empty buffer."""
        assert pcm.peak_s16(s16(3, -7, 5)) == 7
        assert pcm.peak_s16(s16(-32768, 32767)) == 32768
        assert pcm.peak_s16(s16(0, 0)) == 0
        assert pcm.peak_s16(ALL_S16) == 32768

    def test_rms_s16_is_the_root_mean_square(self) -> None:
        """The RMS is sqrt(sum(x**2) / n) in sample units; a square wave's is its amplitude."""
        assert pcm.rms_s16(s16(1000, -1000) * 160) == 1000.0
        assert pcm.rms_s16(s16(3, 4, 0, 0)) == 2.5
        total = sum(x * x for x in range(-32768, 32768))
        assert pcm.rms_s16(ALL_S16) == math.sqrt(total / 65536)

    def test_peak_f32_is_the_largest_magnitude_ignoring_nan(self) -> None:
        """The float peak is max |x|, may exceed 1.0 or be infinite, and counts NaN as 0."""
        assert pcm.peak_f32(f32(0.25, -0.75, 0.5)) == 0.75
        assert pcm.peak_f32(f32(1.5, -2.0)) == 2.0
        assert pcm.peak_f32(f32(0.1, math.nan, -0.2)) == to_float32(0.2)
        assert pcm.peak_f32(f32(math.nan, math.nan)) == 0.0
        assert pcm.peak_f32(f32(0.5, -math.inf)) == math.inf
        assert pcm.peak_f32(f32(-0.0)) == 0.0

    def test_rms_f32_is_the_root_mean_square_counting_nan_as_zero(self) -> None:
        """The float RMS is sqrt(mean(x**2)); NaN samples count as 0 and inf gives inf."""
        assert pcm.rms_f32(f32(0.5, -0.5) * 160) == 0.5
        assert pcm.rms_f32(f32(0.75, 1.0, 0.0, 0.0)) == 0.625
        assert pcm.rms_f32(f32(0.75, 1.0, math.nan, 0.0)) == 0.625
        assert pcm.rms_f32(f32(0.5, math.inf)) == math.inf

    def test_rms_f32_of_converted_int16_is_rms_s16_over_32768(self) -> None:
        """For every int16 value at once, rms_f32(s16_to_f32(x)) is rms_s16(x) / 32768."""
        floats = pcm.s16_to_f32(ALL_S16)
        assert pcm.rms_f32(floats) == pytest.approx(pcm.rms_s16(ALL_S16) / 32768, rel=1e-15)
        assert pcm.peak_f32(floats) == 1.0

    @PROPERTY
    @given(values=st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False)))
    def test_rms_f32_is_within_rounding_of_the_exact_value(self, values: list[float]) -> None:
        """The double-precision sum stays within 1e-12 of the exactly rounded RMS."""
        exact = math.sqrt(math.fsum(v * v for v in values) / len(values)) if values else 0.0
        assert pcm.rms_f32(f32(*values)) == pytest.approx(exact, rel=1e-12)

    # -- mixing -----------------------------------------------------------

    def test_mix_s16_adds_exactly_and_saturates_once(self) -> None:
        """int16 streams add exactly, then clip: partial sums may pass full scale."""
        a = s16(20000, -20000, 1, 30000, -32768)
        b = s16(20000, -20000, 2, 30000, -32768)
        c = s16(0, 0, -5, -30000, 32767)
        assert as_s16(pcm.mix_s16([a, b])) == [32767, -32768, 3, 32767, -32768]
        assert as_s16(pcm.mix_s16([a, b, c])) == [32767, -32768, -2, 30000, -32768]

    def test_mix_f32_adds_left_to_right_in_float32_without_clipping(self) -> None:
        """float32 streams add in the order given, each sum rounded to float32, no clipping."""
        assert as_f32(pcm.mix_f32([f32(0.75, -0.75), f32(0.75, -0.75)])) == [1.5, -1.5]
        big, one, minus_big = f32(1e8), f32(1.0), f32(-1e8)
        assert as_f32(pcm.mix_f32([big, one, minus_big])) == [0.0]  # 1e8 + 1 rounds to 1e8
        assert as_f32(pcm.mix_f32([big, minus_big, one])) == [1.0]

    def test_mix_f32_keeps_negative_zero_nan_and_infinity(self) -> None:
        """-0.0 + -0.0 stays -0.0; NaN and infinities propagate as in IEEE addition."""
        out = as_f32(pcm.mix_f32([f32(-0.0, math.nan, math.inf), f32(-0.0, 1.0, 1.0)]))
        assert math.copysign(1.0, out[0]) == -1.0
        assert math.isnan(out[1])
        assert out[2] == math.inf

    def test_mix_of_one_bytes_buffer_returns_that_object(self) -> None:
        """One bytes buffer is a passthrough; one bytearray comes back as equal bytes."""
        data16, data32 = s16(1, 2), f32(-0.0, math.nan)
        assert pcm.mix_s16([data16]) is data16
        assert pcm.mix_f32((data32,)) is data32
        out = pcm.mix_s16([bytearray(data16)])
        assert type(out) is bytes
        assert out == data16

    def test_mix_of_many_streams_matches_the_exact_sum(self) -> None:
        """Twenty streams (more than the wrapper keeps on the stack) sum like numpy does."""
        rng = np.random.default_rng(7)
        streams = rng.integers(-5000, 5000, (20, 333), dtype=np.int64)
        out = pcm.mix_s16([row.astype("<i2").tobytes() for row in streams])
        assert as_s16(out) == np.clip(streams.sum(axis=0), -32768, 32767).tolist()

    def test_mix_accepts_any_iterable_of_any_buffers(self) -> None:
        """A generator of bytearrays, memoryviews and numpy arrays mixes like a list of bytes."""
        parts = [s16(1, 2, 3), s16(10, 20, 30), s16(-5, -5, -5)]
        expected = pcm.mix_s16(parts)
        mixed = (bytearray(parts[0]), memoryview(parts[1]), np.frombuffer(parts[2], "<i2"))
        assert pcm.mix_s16(iter(mixed)) == expected

    @pytest.mark.parametrize("name", ["mix_s16", "mix_f32"])
    def test_mix_needs_buffers_of_one_length(self, name: str) -> None:
        """Buffers of different lengths raise AudioFormatError naming the odd one out."""
        with pytest.raises(AudioFormatError, match=rf"^{name}: buffer 2 is 4 bytes long, buffer"):
            getattr(pcm, name)([bytes(8), bytes(8), bytes(4)])

    @pytest.mark.parametrize("name", ["mix_s16", "mix_f32"])
    def test_mix_needs_a_sequence_of_one_to_65535_buffers(self, name: str) -> None:
        """No buffer, too many, one bare buffer or a non-iterable raise UsageError."""
        mix = getattr(pcm, name)
        with pytest.raises(UsageError, match=rf"^{name}: needs at least one buffer"):
            mix([])
        with pytest.raises(UsageError, match=rf"^{name}: at most 65535 buffers, got 65536"):
            mix([b""] * 65536)
        with pytest.raises(UsageError, match=rf"^{name}: expected a sequence of buffers, got one"):
            mix(bytes(8))
        with pytest.raises(UsageError, match=rf"^{name}: expected a sequence of buffers, got int"):
            mix(3)

    # -- channels ---------------------------------------------------------

    def test_stereo_to_mono_s16_averages_rounding_half_to_even(self) -> None:
        """(L + R) / 2 with .5 going to the even neighbour, never saturating."""
        pairs = [
            (1, 2, 2),
            (1, 0, 0),
            (-1, 0, 0),
            (-1, -2, -2),
            (3, 0, 2),
            (5, 0, 2),
            (-3, 0, -2),
            (100, -40, 30),
            (32767, 32767, 32767),
            (-32768, -32768, -32768),
            (-32768, 32767, 0),
        ]
        stereo = s16(*(v for left, right, _ in pairs for v in (left, right)))
        assert as_s16(pcm.stereo_to_mono_s16(stereo)) == [mono for _, _, mono in pairs]

    def test_stereo_to_mono_f32_averages_in_float32(self) -> None:
        """(L + R) * 0.5 in float32: exact for these, infinite when L + R overflows."""
        stereo = f32(0.5, 0.25, -1.0, 1.0, 1.5, 1.5, FLT_MAX, FLT_MAX, -0.0, -0.0)
        out = as_f32(pcm.stereo_to_mono_f32(stereo))
        assert out == [0.375, 0.0, 1.5, math.inf, 0.0]
        assert math.copysign(1.0, out[4]) == -1.0

    def test_mono_to_stereo_copies_each_sample_to_both_channels(self) -> None:
        """L and R both get the sample; float32 bits are copied, signalling NaN included."""
        assert as_s16(pcm.mono_to_stereo_s16(s16(1, -2, 32767))) == [1, 1, -2, -2, 32767, 32767]
        bits = (0x7F800001, 0xFFC00123, 0x3F800000)
        assert pcm.mono_to_stereo_f32(f32_bits(*bits)) == f32_bits(*(b for b in bits for _ in "LR"))

    def test_down_mixing_an_up_mix_gives_the_input_back(self) -> None:
        """stereo_to_mono(mono_to_stereo(x)) == x for every int16 value and float32 sample."""
        assert pcm.stereo_to_mono_s16(pcm.mono_to_stereo_s16(ALL_S16)) == ALL_S16
        floats = pcm.s16_to_f32(ALL_S16)
        assert pcm.stereo_to_mono_f32(pcm.mono_to_stereo_f32(floats)) == floats

    @pytest.mark.parametrize("length", [2, 6, 642])
    @pytest.mark.parametrize(("name", "function", "size"), STEREO_FUNCTIONS)
    def test_stereo_buffers_must_hold_whole_frames(
        self, name: str, function: Callable[[bytes], object], size: int, length: int
    ) -> None:
        """A byte count that is not whole stereo frames raises AudioFormatError with the length."""
        message = rf"^{name}: buffer length {length} bytes is not a whole number of {size}-byte"
        with pytest.raises(AudioFormatError, match=message + " frames$"):
            function(bytes(length))

    # -- buffers ----------------------------------------------------------

    @pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
    def test_empty_buffers_give_empty_results(self, empty: bytes) -> None:
        """An empty buffer gives b"" from a converter, 0 from peak and 0.0 from rms."""
        for _, convert, _, _ in CONVERTERS:
            assert convert(empty, 0.5) == b""
            assert type(convert(empty, 0.5)) is bytes
        assert pcm.peak_s16(empty) == 0
        assert pcm.rms_s16(empty) == 0.0
        assert pcm.peak_f32(empty) == 0.0
        assert pcm.rms_f32(empty) == 0.0

    @pytest.mark.parametrize("length", [1, 3, 641])
    @pytest.mark.parametrize(("name", "function"), S16_FUNCTIONS)
    def test_int16_buffers_must_hold_whole_samples(
        self, name: str, function: Callable[[bytes], object], length: int
    ) -> None:
        """An odd byte count raises AudioFormatError naming the function and the length."""
        with pytest.raises(AudioFormatError, match=rf"^{name}: buffer length {length} bytes"):
            function(bytes(length))

    @pytest.mark.parametrize("length", [1, 2, 3, 6, 1281])
    @pytest.mark.parametrize(("name", "function"), F32_FUNCTIONS)
    def test_float32_buffers_must_hold_whole_samples(
        self, name: str, function: Callable[[bytes], object], length: int
    ) -> None:
        """A byte count that is not a multiple of 4 raises AudioFormatError with the length."""
        with pytest.raises(AudioFormatError, match=rf"^{name}: buffer length {length} bytes"):
            function(bytes(length))

    def test_every_contiguous_buffer_type_gives_the_same_result(self) -> None:
        """bytes, bytearray, memoryview, a wide-item memoryview and a numpy array all work."""
        samples = np.array([0, 1, -1, 12345, -32768, 32767], dtype="<i2")
        data = samples.tobytes()
        expected = pcm.gain_s16(data, 0.75)
        for buffer in (
            bytearray(data),
            memoryview(data),
            memoryview(data).cast("h"),
            memoryview(bytearray(data)),
            samples,
        ):
            assert pcm.gain_s16(buffer, 0.75) == expected
            assert pcm.s16_to_f32(buffer) == pcm.s16_to_f32(data)

    def test_misaligned_buffers_give_the_same_result(self) -> None:
        """A memoryview starting at an odd address is converted like an aligned one."""
        data = pcm.s16_to_f32(ALL_S16)
        for offset in (1, 2, 3):
            shifted = memoryview(bytes(offset) + data)[offset:]
            assert pcm.f32_to_s16(shifted) == ALL_S16
            assert pcm.gain_f32(shifted, 0.5) == pcm.gain_f32(data, 0.5)
            assert pcm.s16_to_f32(shifted[: len(ALL_S16)]) == pcm.s16_to_f32(data[: len(ALL_S16)])
            assert pcm.gain_s16(shifted, 0.3) == pcm.gain_s16(data, 0.3)
            assert pcm.peak_s16(shifted) == pcm.peak_s16(data)
            assert pcm.rms_s16(shifted) == pcm.rms_s16(data)
            assert pcm.peak_f32(shifted) == pcm.peak_f32(data)
            assert pcm.rms_f32(shifted) == pcm.rms_f32(data)
            assert pcm.mix_f32([data, shifted]) == pcm.gain_f32(data, 2.0)
            assert pcm.stereo_to_mono_f32(shifted) == pcm.stereo_to_mono_f32(data)
            assert pcm.mono_to_stereo_f32(shifted) == pcm.mono_to_stereo_f32(data)

    def test_non_contiguous_buffers_are_rejected(self) -> None:
        """A strided memoryview raises AudioFormatError naming the function."""
        with pytest.raises(AudioFormatError, match=r"^gain_s16: the buffer is not contiguous"):
            pcm.gain_s16(memoryview(bytes(8))[::2], 0.5)

    @pytest.mark.parametrize("value", ["ab", [1, 2], 12, None])
    def test_non_buffers_are_rejected(self, value: object) -> None:
        """A value without the buffer protocol raises UsageError naming the function."""
        with pytest.raises(UsageError, match=r"^s16_to_f32: expected bytes, bytearray or memory"):
            pcm.s16_to_f32(value)  # type: ignore[arg-type]

    def test_the_input_buffer_is_left_unchanged(self) -> None:
        """Converters read their input and write only to the new bytes they return."""
        data = bytearray(ALL_S16)
        pcm.gain_s16(data, 3.0)
        pcm.s16_to_f32(data)
        assert data == ALL_S16

    # -- properties -------------------------------------------------------

    @PROPERTY
    @given(data=st.binary(max_size=4 * 70), gain=gains)
    def test_every_function_matches_the_reference_bit_for_bit(
        self, data: bytes, gain: float
    ) -> None:
        """On any bytes and gain, each function returns exactly what the numpy reference does."""
        even = data[: len(data) // 2 * 2]
        whole = data[: len(data) // 4 * 4]
        assert pcm.s16_to_f32(even) == _pcm_ref.s16_to_f32(even)
        assert pcm.f32_to_s16(whole) == _pcm_ref.f32_to_s16(whole)
        assert pcm.gain_s16(even, gain) == _pcm_ref.gain_s16(even, gain)
        assert_same_f32(pcm.gain_f32(whole, gain), _pcm_ref.gain_f32(whole, gain))
        assert pcm.peak_s16(even) == _pcm_ref.peak_s16(even)
        assert pcm.rms_s16(even) == _pcm_ref.rms_s16(even)
        assert pcm.peak_f32(whole) == _pcm_ref.peak_f32(whole)
        assert pcm.rms_f32(whole) == _pcm_ref.rms_f32(whole)
        stereo16, stereo32 = data[: len(data) // 4 * 4], data[: len(data) // 8 * 8]
        assert pcm.stereo_to_mono_s16(stereo16) == _pcm_ref.stereo_to_mono_s16(stereo16)
        assert_same_f32(pcm.stereo_to_mono_f32(stereo32), _pcm_ref.stereo_to_mono_f32(stereo32))
        assert pcm.mono_to_stereo_s16(even) == _pcm_ref.mono_to_stereo_s16(even)
        assert pcm.mono_to_stereo_f32(whole) == _pcm_ref.mono_to_stereo_f32(whole)
        reverse16, reverse32 = even[::-1], whole[::-1]
        mixed16 = [even, reverse16, even]
        assert pcm.mix_s16(mixed16) == _pcm_ref.mix_s16(mixed16)
        mixed32 = [whole, reverse32, whole]
        assert_same_f32(pcm.mix_f32(mixed32), _pcm_ref.mix_f32(mixed32))

    @PROPERTY
    @given(
        streams=st.integers(min_value=1, max_value=12).flatmap(
            lambda k: st.integers(min_value=0, max_value=70).flatmap(
                lambda n: st.lists(
                    st.lists(st.integers(-32768, 32767), min_size=n, max_size=n),
                    min_size=k,
                    max_size=k,
                )
            )
        )
    )
    def test_mix_s16_is_the_clipped_exact_sum(self, streams: list[list[int]]) -> None:
        """For any streams, each output sample is the exact sum clipped to the int16 range."""
        expected = [max(-32768, min(32767, sum(column))) for column in zip(*streams, strict=True)]
        assert as_s16(pcm.mix_s16([s16(*stream) for stream in streams])) == expected

    @PROPERTY
    @given(samples=st.lists(st.integers(-32768, 32767), max_size=80))
    def test_stereo_to_mono_s16_follows_the_scalar_rule(self, samples: list[int]) -> None:
        """Frame by frame, the int16 down-mix is round((L + R) / 2), ties to even."""
        frames = samples[: len(samples) // 2 * 2]
        pairs = zip(frames[::2], frames[1::2], strict=True)
        expected = [round((left + right) / 2) for left, right in pairs]
        assert as_s16(pcm.stereo_to_mono_s16(s16(*frames))) == expected

    @PROPERTY
    @given(data=st.binary(max_size=4 * 40), gain=gains)
    def test_int16_results_match_the_scalar_definition(self, data: bytes, gain: float) -> None:
        """Sample by sample, int16 results follow the plain-Python rule on float32 products."""
        whole = data[: len(data) // 4 * 4]
        samples = as_f32(whole)
        expected = [spec_to_s16(to_float32(x * 32768.0)) for x in samples]
        assert as_s16(pcm.f32_to_s16(whole)) == expected
        g = to_float32(gain)
        ints = as_s16(whole)
        assert as_s16(pcm.gain_s16(whole, gain)) == [spec_to_s16(to_float32(x * g)) for x in ints]

    @PROPERTY
    @given(
        data=st.binary(min_size=0, max_size=4 * 100),
        cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6),
        gain=gains,
    )
    def test_any_chunking_gives_the_same_output_as_one_call(
        self, data: bytes, cuts: list[int], gain: float
    ) -> None:
        """Converting a stream in chunks, even one sample at a time, equals one call."""
        for _, convert, size, float_out in CONVERTERS:
            whole = data[: len(data) // size * size]
            bounds = sorted({0, len(whole), *(min(c * size, len(whole)) for c in cuts)})
            chunked = b"".join(convert(whole[a:b], gain) for a, b in itertools.pairwise(bounds))
            head = whole[: 24 * size]
            one_by_one = b"".join(
                convert(head[i : i + size], gain) for i in range(0, len(head), size)
            )
            same = assert_same_f32 if float_out else assert_equal
            same(chunked, convert(whole, gain))
            same(one_by_one, convert(head, gain))

    def test_lengths_around_the_vector_block_give_the_reference_result(self) -> None:
        """0 to 40 samples (either side of the 16-sample C block) match the reference."""
        rng = np.random.default_rng(1234)
        for n in range(41):
            ints = rng.integers(-32768, 32768, n, dtype=np.int64).astype("<i2").tobytes()
            floats = (rng.standard_normal(n) * 0.7).astype("<f4").tobytes()
            assert pcm.gain_s16(ints, 1.37) == _pcm_ref.gain_s16(ints, 1.37)
            assert pcm.s16_to_f32(ints) == _pcm_ref.s16_to_f32(ints)
            assert pcm.f32_to_s16(floats) == _pcm_ref.f32_to_s16(floats)
            assert pcm.gain_f32(floats, -2.5) == _pcm_ref.gain_f32(floats, -2.5)
            assert pcm.peak_s16(ints) == _pcm_ref.peak_s16(ints)
            assert pcm.rms_s16(ints) == _pcm_ref.rms_s16(ints)
            assert pcm.peak_f32(floats) == _pcm_ref.peak_f32(floats)
            assert pcm.rms_f32(floats) == _pcm_ref.rms_f32(floats)
            assert pcm.mix_s16([ints, ints[::-1]]) == _pcm_ref.mix_s16([ints, ints[::-1]])
            assert pcm.mix_f32([floats, floats]) == _pcm_ref.mix_f32([floats, floats])
            assert pcm.mono_to_stereo_s16(ints) == _pcm_ref.mono_to_stereo_s16(ints)
            assert pcm.mono_to_stereo_f32(floats) == _pcm_ref.mono_to_stereo_f32(floats)
            pairs16, pairs32 = ints[: n // 2 * 4], floats[: n // 2 * 8]
            assert pcm.stereo_to_mono_s16(pairs16) == _pcm_ref.stereo_to_mono_s16(pairs16)
            assert pcm.stereo_to_mono_f32(pairs32) == _pcm_ref.stereo_to_mono_f32(pairs32)

    def test_a_long_buffer_gives_the_reference_result(self) -> None:
        """10 s at 16 kHz, long enough for the C wrapper to release the GIL, matches too."""
        rng = np.random.default_rng(99)
        ints = rng.integers(-32768, 32768, 160_000, dtype=np.int64).astype("<i2").tobytes()
        floats = pcm.s16_to_f32(ints)
        assert floats == _pcm_ref.s16_to_f32(ints)
        assert pcm.f32_to_s16(floats) == ints
        assert pcm.gain_s16(ints, 0.9) == _pcm_ref.gain_s16(ints, 0.9)
        assert pcm.gain_f32(floats, 0.9) == _pcm_ref.gain_f32(floats, 0.9)
        assert pcm.peak_s16(ints) == _pcm_ref.peak_s16(ints)
        assert pcm.rms_s16(ints) == _pcm_ref.rms_s16(ints)
        assert pcm.peak_f32(floats) == _pcm_ref.peak_f32(floats)
        assert pcm.rms_f32(floats) == _pcm_ref.rms_f32(floats)
        assert pcm.mix_s16([ints, ints, ints]) == _pcm_ref.mix_s16([ints, ints, ints])
        assert pcm.mix_f32([floats, floats]) == _pcm_ref.mix_f32([floats, floats])
        assert pcm.stereo_to_mono_s16(ints) == _pcm_ref.stereo_to_mono_s16(ints)
        assert pcm.stereo_to_mono_f32(floats) == _pcm_ref.stereo_to_mono_f32(floats)
        assert pcm.mono_to_stereo_s16(ints) == _pcm_ref.mono_to_stereo_s16(ints)
        assert pcm.mono_to_stereo_f32(floats) == _pcm_ref.mono_to_stereo_f32(floats)


@pytest.mark.skipif(_pcm_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestPcmCompiled(TestPcmReference):
    """The same contract, run with the compiled C kernels."""

    backend = _pcm_c


@pytest.mark.skipif(_pcm_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestCompiledWrapperChecks:
    """The Cython layer's own guards, for callers that bypass vbgraph.dsp.pcm."""

    def test_mix_refuses_buffers_of_different_lengths(self) -> None:
        """_pcm_c.mix_* check lengths themselves, so a skipped check cannot read past a buffer."""
        assert _pcm_c is not None
        with pytest.raises(ValueError, match=r"^vb_pcm_mix_s16: buffers differ in length"):
            _pcm_c.mix_s16([bytes(8), bytes(4)])
        with pytest.raises(ValueError, match=r"^vb_pcm_mix_f32: buffers differ in length"):
            _pcm_c.mix_f32([bytes(8), bytes(8), bytes(12)])

    def test_mix_of_no_buffers_is_empty(self) -> None:
        """_pcm_c.mix_* of an empty list returns b"" rather than failing."""
        assert _pcm_c is not None
        assert _pcm_c.mix_s16([]) == b""
        assert _pcm_c.mix_f32(()) == b""


class TestDbToGain:
    """Decibels to a linear factor."""

    def test_zero_db_is_exactly_unity_gain(self) -> None:
        """0 dB gives exactly 1.0, so gain_s16(data, db_to_gain(0)) is a passthrough."""
        assert pcm.db_to_gain(0.0) == 1.0
        data = s16(1, 2)
        assert pcm.gain_s16(data, pcm.db_to_gain(0.0)) is data

    def test_decibels_are_twenty_log10_of_the_gain(self) -> None:
        """+20 dB is 10x, -20 dB is 0.1x, -6 dB is about 0.501x."""
        assert pcm.db_to_gain(20.0) == 10.0
        assert pcm.db_to_gain(-20.0) == pytest.approx(0.1, rel=1e-15)
        assert pcm.db_to_gain(-6.0) == pytest.approx(0.501187, rel=1e-6)

    def test_minus_infinity_db_is_silence(self) -> None:
        """-inf dB gives a gain of 0.0."""
        assert pcm.db_to_gain(-math.inf) == 0.0


class TestFallback:
    """Choosing between the compiled module and the numpy reference at import."""

    def test_missing_compiled_module_falls_back_to_numpy_with_one_warning(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without _pcm_c, pcm uses the numpy reference and warns exactly once, at import."""
        fresh = reimport_without_compiled(monkeypatch, "pcm")
        assert fresh.IMPLEMENTATION == "numpy"
        assert fresh.gain_s16(s16(1, 3, 5), 0.5) == s16(0, 2, 2)
        assert fresh.f32_to_s16(f32(1.0)) == s16(32767)

    @pytest.mark.skipif(_pcm_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
    def test_the_compiled_module_is_used_when_present(self) -> None:
        """With _pcm_c importable, IMPLEMENTATION is "c" and calls go to the C kernels."""
        assert pcm.IMPLEMENTATION == "c"
        assert pcm._impl is _pcm_c
