"""Specification of vbgraph.dsp.g711, run against the numpy reference and the C kernels.

The expected codes are built here from ITU-T G.711 itself, not from either
implementation: the decision values and decoder outputs of Tables 1 (A-law) and
2 (mu-law), written as interval lists, and the convention of ITU-T G.191's
reference coder for negative samples (magnitude ``-x - 1``), which G.711 leaves
open. ``TestG711Reference`` states the behaviour; ``TestG711Compiled`` inherits
every test and runs it with the compiled module (STYLE.md rule 10).
"""

from __future__ import annotations

import bisect
import importlib
import importlib.abc
import importlib.machinery
import itertools
import os
import types
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbgraph.errors import AudioFormatError, UsageError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # a missing build is reported below
    from tests.dsp.fallback_support import reimport_without_compiled
from vbgraph.dsp import _g711_ref, g711

_g711_c: types.ModuleType | None
try:
    from vbgraph.dsp import _g711_c
except ImportError as exc:
    _g711_c = None
    _MISSING_REASON = f"vbgraph.dsp._g711_c is not built ({exc}); run `pip install -e .`"
else:
    _MISSING_REASON = ""

# On CI (CI=true) or with VBGRAPH_REQUIRE_COMPILED=1, a missing compiled module fails.
ON_CI = os.environ.get("CI", "").lower() in ("1", "true")
REQUIRE_COMPILED = ON_CI or os.environ.get("VBGRAPH_REQUIRE_COMPILED") == "1"

ALL_S16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.differing_executors])


# -- the definition, from G.711 Tables 1 and 2 ------------------------------


def ulaw_decision_values() -> list[int]:
    """x(0) .. x(128) of G.711 Table 2 on its 14-bit scale (x(128) = 8159 is virtual).

    Segment s = 0..7 holds 16 intervals of width 2**(s + 1) from 2**(s + 5) - 33
    on; the first interval of segment 0 starts at 0 instead of -1.
    """
    values = [max(0, 2 ** (s + 5) - 33 + i * 2 ** (s + 1)) for s in range(8) for i in range(16)]
    return [*values, 8159]


def alaw_decision_values() -> list[int]:
    """x(0) .. x(128) of G.711 Table 1 on its 12-bit scale (x(128) = 4096 is virtual).

    Segment 0 holds 16 intervals of width 2 from 0; segment s = 1..7 holds 16 of
    width 2**s from 2**(s + 4).
    """
    values = [2 * i for i in range(16)]
    values += [2 ** (s + 4) + i * 2**s for s in range(1, 8) for i in range(16)]
    return [*values, 4096]


def outputs(decisions: Sequence[int]) -> list[float]:
    """Decoder output y(n) for each interval n: its midpoint."""
    return [(a + b) / 2 for a, b in itertools.pairwise(decisions)]


ULAW_X = ulaw_decision_values()
ALAW_X = alaw_decision_values()
ULAW_Y = [0.0, *outputs(ULAW_X)[1:]]  # y(0) is 0: mu-law has a zero output level
ALAW_Y = outputs(ALAW_X)  # y(0) is 1: A-law has none
# The 16-bit sample x stands for x / 4 on the mu-law scale and x / 8 on the A-law one.
ULAW_SCALE, ALAW_SCALE = 4, 8


def interval(x: int, decisions: Sequence[int], scale: int) -> int:
    """The interval n (0..127) of G.711 in which the int16 sample x falls.

    A negative x has magnitude -x - 1, as in ITU-T G.191: G.711 does not say how a
    two's complement sample maps to its sign-magnitude scale.
    """
    magnitude = x if x >= 0 else -x - 1
    thresholds = [d * scale for d in decisions[:128]]
    return bisect.bisect_right(thresholds, magnitude) - 1  # 127 also beyond x(128)


def spec_ulaw_encode(x: int) -> int:
    """Table 2: a positive sample in interval n is sent as 255 - n, a negative one as 127 - n."""
    n = interval(x, ULAW_X, ULAW_SCALE)
    return 255 - n if x >= 0 else 127 - n


def spec_alaw_encode(x: int) -> int:
    """Table 1: sign bit 1 for positive, the interval number, then the even bits inverted."""
    n = interval(x, ALAW_X, ALAW_SCALE)
    return ((0x80 if x >= 0 else 0) | n) ^ 0x55


def spec_ulaw_decode(code: int) -> int:
    n = 255 - code if code >= 0x80 else 127 - code
    value = int(ULAW_Y[n] * ULAW_SCALE)
    return value if code >= 0x80 else -value


def spec_alaw_decode(code: int) -> int:
    character = code ^ 0x55
    value = int(ALAW_Y[character & 0x7F] * ALAW_SCALE)
    return value if character & 0x80 else -value


def step(x: int, decisions: Sequence[int], scale: int) -> int:
    """Width, in int16 units, of the quantisation interval holding x."""
    n = interval(x, decisions, scale)
    return (decisions[n + 1] - decisions[n]) * scale


def as_s16(data: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(data, dtype="<i2")]


def s16(*values: int) -> bytes:
    return np.array(values, dtype="<i2").tobytes()


ENCODERS: Sequence[tuple[str, Callable[[bytes], bytes]]] = [
    ("ulaw_encode", g711.ulaw_encode),
    ("alaw_encode", g711.alaw_encode),
]
DECODERS: Sequence[tuple[str, Callable[[bytes], bytes]]] = [
    ("ulaw_decode", g711.ulaw_decode),
    ("alaw_decode", g711.alaw_decode),
]


@pytest.fixture(scope="class")
def use_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """Route vbgraph.dsp.g711 through the requesting class's ``backend``."""
    backend = request.cls.backend
    if backend is None:
        pytest.fail(f"the compiled module is required here, but {_MISSING_REASON}")
    saved = g711._impl
    g711._impl = backend
    yield
    g711._impl = saved


class TestTheDefinition:
    """The tables this test builds agree with the figures printed in G.711."""

    def test_the_decision_values_have_the_printed_segment_ends(self) -> None:
        """mu-law segments end at 31, 95, ..., 8159; A-law ones at 32, 64, ..., 4096."""
        assert ULAW_X[16::16] == [31, 95, 223, 479, 991, 2015, 4063, 8159]
        assert ALAW_X[16::16] == [32, 64, 128, 256, 512, 1024, 2048, 4096]

    def test_the_largest_outputs_are_8031_and_4032(self) -> None:
        """The top decoder outputs are 8031 (mu-law, 14-bit) and 4032 (A-law, 12-bit)."""
        assert ULAW_Y[127] == 8031
        assert ALAW_Y[127] == 4032
        assert ULAW_Y[:3] == [0, 2, 4]
        assert ALAW_Y[:3] == [1, 3, 5]


@pytest.mark.usefixtures("use_backend")
class TestG711Reference:
    """The G.711 contract, run with the numpy reference implementation."""

    backend: types.ModuleType | types.SimpleNamespace | None = _g711_ref

    # -- decoding ---------------------------------------------------------

    def test_ulaw_decoding_matches_g711_for_all_256_codes(self) -> None:
        """Every mu-law code decodes to 4 times its Table 2 output value, with its sign."""
        assert as_s16(g711.ulaw_decode(ALL_CODES)) == [spec_ulaw_decode(c) for c in range(256)]

    def test_alaw_decoding_matches_g711_for_all_256_codes(self) -> None:
        """Every A-law code decodes to 8 times its Table 1 output value, with its sign."""
        assert as_s16(g711.alaw_decode(ALL_CODES)) == [spec_alaw_decode(c) for c in range(256)]

    @pytest.mark.parametrize(
        ("code", "value"),
        [(0xFF, 0), (0x7F, 0), (0xFE, 8), (0x7E, -8), (0x80, 32124), (0x00, -32124)],
    )
    def test_ulaw_known_codes(self, code: int, value: int) -> None:
        """mu-law: both zeros (0xFF, 0x7F) give 0, and 0x80 / 0x00 give +-32124."""
        assert as_s16(g711.ulaw_decode(bytes([code]))) == [value]

    @pytest.mark.parametrize(
        ("code", "value"),
        [(0xD5, 8), (0x55, -8), (0xD4, 24), (0xAA, 32256), (0x2A, -32256)],
    )
    def test_alaw_known_codes(self, code: int, value: int) -> None:
        """A-law has no zero: 0xD5 gives +8 and 0x55 -8; 0xAA / 0x2A give +-32256."""
        assert as_s16(g711.alaw_decode(bytes([code]))) == [value]

    # -- encoding ---------------------------------------------------------

    def test_ulaw_encoding_matches_g711_for_all_65536_inputs(self) -> None:
        """Every int16 value gets the mu-law code of its Table 2 interval."""
        expected = bytes(spec_ulaw_encode(x) for x in range(-32768, 32768))
        assert g711.ulaw_encode(ALL_S16) == expected

    def test_alaw_encoding_matches_g711_for_all_65536_inputs(self) -> None:
        """Every int16 value gets the A-law code of its Table 1 interval."""
        expected = bytes(spec_alaw_encode(x) for x in range(-32768, 32768))
        assert g711.alaw_encode(ALL_S16) == expected

    @pytest.mark.parametrize(
        ("value", "code"),
        [
            (0, 0xFF),
            (3, 0xFF),
            (4, 0xFE),
            (-1, 0x7F),
            (-4, 0x7F),
            (-5, 0x7E),
            (31612, 0x80),
            (32767, 0x80),
            (-32768, 0x00),
        ],
    )
    def test_ulaw_known_samples(self, value: int, code: int) -> None:
        """mu-law: 0..3 and -1..-4 are the two zeros; the top interval starts at 31612."""
        assert g711.ulaw_encode(s16(value)) == bytes([code])

    @pytest.mark.parametrize(
        ("value", "code"),
        [
            (0, 0xD5),
            (15, 0xD5),
            (16, 0xD4),
            (-1, 0x55),
            (-16, 0x55),
            (-17, 0x54),
            (32767, 0xAA),
            (-32768, 0x2A),
        ],
    )
    def test_alaw_known_samples(self, value: int, code: int) -> None:
        """A-law: 0..15 give 0xD5 and -1..-16 give 0x55; the extremes give 0xAA and 0x2A."""
        assert g711.alaw_encode(s16(value)) == bytes([code])

    @pytest.mark.parametrize(("name", "encode"), ENCODERS)
    def test_a_sample_and_its_ones_complement_differ_in_the_sign_bit_only(
        self, name: str, encode: Callable[[bytes], bytes]
    ) -> None:
        """x and -x - 1 encode to codes that differ exactly in bit 7, for every int16 x."""
        codes = np.frombuffer(encode(ALL_S16), dtype=np.uint8)
        assert np.array_equal(codes[::-1] ^ 0x80, codes)  # ALL_S16 reversed is ~x

    # -- round trips ------------------------------------------------------

    def test_ulaw_round_trip_is_within_half_a_step(self) -> None:
        """decode(encode(x)) is within half a step of x, except at 0 and in saturation."""
        # The zero interval's output, 0, is its edge: -4..3 come back as 0.
        decoded = as_s16(g711.ulaw_decode(g711.ulaw_encode(ALL_S16)))
        for x, y in zip(range(-32768, 32768), decoded, strict=True):
            width = step(x, ULAW_X, ULAW_SCALE)
            if -4 <= x < 4:
                assert y == 0
            elif max(x, -x - 1) < ULAW_X[128] * ULAW_SCALE:
                assert abs(y - x) <= width // 2, x
            else:  # beyond the coder's range: saturated, still within one step
                assert y == (32124 if x > 0 else -32124)
                assert abs(y - x) < width, x

    def test_alaw_round_trip_is_within_half_a_step(self) -> None:
        """decode(encode(x)) is within half its interval's width of x, for every int16 x."""
        decoded = as_s16(g711.alaw_decode(g711.alaw_encode(ALL_S16)))
        for x, y in zip(range(-32768, 32768), decoded, strict=True):
            assert abs(y - x) <= step(x, ALAW_X, ALAW_SCALE) // 2, x

    def test_encoding_a_decoded_code_gives_the_code_back(self) -> None:
        """encode(decode(c)) == c for all codes, except mu-law's negative zero 0x7F -> 0xFF."""
        assert g711.alaw_encode(g711.alaw_decode(ALL_CODES)) == ALL_CODES
        ulaw = bytearray(ALL_CODES)
        ulaw[0x7F] = 0xFF
        assert g711.ulaw_encode(g711.ulaw_decode(ALL_CODES)) == ulaw

    # -- buffers ----------------------------------------------------------

    @pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
    def test_empty_buffers_give_empty_bytes(self, empty: bytes) -> None:
        """Each function returns b"" for an empty buffer."""
        for _, function in (*ENCODERS, *DECODERS):
            out = function(empty)
            assert out == b""
            assert type(out) is bytes

    @pytest.mark.parametrize("length", [1, 3, 161])
    @pytest.mark.parametrize(("name", "encode"), ENCODERS)
    def test_encoders_need_whole_int16_samples(
        self, name: str, encode: Callable[[bytes], bytes], length: int
    ) -> None:
        """An odd byte count raises AudioFormatError naming the function and the length."""
        with pytest.raises(AudioFormatError, match=rf"^{name}: buffer length {length} bytes"):
            encode(bytes(length))

    @pytest.mark.parametrize(("name", "decode"), DECODERS)
    def test_decoders_take_any_byte_count(
        self, name: str, decode: Callable[[bytes], bytes]
    ) -> None:
        """Decoding 1, 3 or 161 bytes gives 2, 6 or 322 bytes."""
        for length in (1, 3, 161):
            assert len(decode(bytes(length))) == 2 * length

    @pytest.mark.parametrize("value", ["ab", [1, 2], 12, None])
    def test_non_buffers_are_rejected(self, value: object) -> None:
        """A value without the buffer protocol raises UsageError naming the function."""
        with pytest.raises(UsageError, match=r"^ulaw_encode: expected bytes, bytearray or memory"):
            g711.ulaw_encode(value)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=r"^alaw_decode: expected bytes, bytearray or memory"):
            g711.alaw_decode(value)  # type: ignore[arg-type]

    def test_non_contiguous_buffers_are_rejected(self) -> None:
        """A strided memoryview raises AudioFormatError naming the function."""
        with pytest.raises(AudioFormatError, match=r"^ulaw_decode: the buffer is not contiguous"):
            g711.ulaw_decode(memoryview(bytes(8))[::2])

    def test_every_contiguous_buffer_type_gives_the_same_result(self) -> None:
        """bytes, bytearray, memoryviews (also of int16 items) and numpy arrays all work."""
        samples = np.array([0, 1, -1, 12345, -32768, 32767], dtype="<i2")
        data = samples.tobytes()
        for buffer in (
            bytearray(data),
            memoryview(data),
            memoryview(data).cast("h"),
            samples,
        ):
            assert g711.ulaw_encode(buffer) == g711.ulaw_encode(data)
            assert g711.alaw_encode(buffer) == g711.alaw_encode(data)
            assert g711.ulaw_decode(buffer) == g711.ulaw_decode(data)
            assert g711.alaw_decode(buffer) == g711.alaw_decode(data)

    def test_misaligned_buffers_give_the_same_result(self) -> None:
        """A memoryview starting at an odd address is coded like an aligned one."""
        for offset in (1, 3):
            shifted = memoryview(bytes(offset) + ALL_S16)[offset:]
            assert g711.ulaw_encode(shifted) == g711.ulaw_encode(ALL_S16)
            assert g711.alaw_encode(shifted) == g711.alaw_encode(ALL_S16)
            codes = memoryview(bytes(offset) + ALL_CODES)[offset:]
            assert g711.ulaw_decode(codes) == g711.ulaw_decode(ALL_CODES)

    def test_the_input_buffer_is_left_unchanged(self) -> None:
        """Coding reads its input and writes only to the new bytes it returns."""
        data = bytearray(ALL_S16)
        g711.ulaw_encode(data)
        g711.alaw_encode(data)
        g711.ulaw_decode(data)
        assert data == ALL_S16

    # -- properties -------------------------------------------------------

    @PROPERTY
    @given(data=st.binary(max_size=2 * 80))
    def test_every_function_matches_the_reference_byte_for_byte(self, data: bytes) -> None:
        """On any bytes, each function returns exactly what the numpy reference does."""
        even = data[: len(data) // 2 * 2]
        assert g711.ulaw_encode(even) == _g711_ref.ulaw_encode(even)
        assert g711.alaw_encode(even) == _g711_ref.alaw_encode(even)
        assert g711.ulaw_decode(data) == _g711_ref.ulaw_decode(data)
        assert g711.alaw_decode(data) == _g711_ref.alaw_decode(data)

    @PROPERTY
    @given(
        data=st.binary(max_size=2 * 100),
        cuts=st.lists(st.integers(min_value=0, max_value=100), max_size=6),
    )
    def test_any_chunking_gives_the_same_output_as_one_call(
        self, data: bytes, cuts: list[int]
    ) -> None:
        """Coding a stream in chunks, even one sample at a time, equals one call."""
        even = data[: len(data) // 2 * 2]
        bounds = sorted({0, len(even), *(min(2 * c, len(even)) for c in cuts)})
        for _, encode in ENCODERS:
            pieces = [encode(even[a:b]) for a, b in itertools.pairwise(bounds)]
            assert b"".join(pieces) == encode(even)
            singles = [encode(even[i : i + 2]) for i in range(0, len(even), 2)]
            assert b"".join(singles) == encode(even)
        for _, decode in DECODERS:
            assert b"".join(decode(data[i : i + 1]) for i in range(len(data))) == decode(data)

    def test_lengths_around_the_vector_block_give_the_reference_result(self) -> None:
        """0 to 40 samples (either side of the 16-sample C block) match the reference."""
        rng = np.random.default_rng(711)
        for n in range(41):
            ints = rng.integers(-32768, 32768, n, dtype=np.int64).astype("<i2").tobytes()
            codes = rng.integers(0, 256, n, dtype=np.int64).astype(np.uint8).tobytes()
            assert g711.ulaw_encode(ints) == _g711_ref.ulaw_encode(ints)
            assert g711.alaw_encode(ints) == _g711_ref.alaw_encode(ints)
            assert g711.ulaw_decode(codes) == _g711_ref.ulaw_decode(codes)
            assert g711.alaw_decode(codes) == _g711_ref.alaw_decode(codes)

    def test_a_long_buffer_gives_the_reference_result(self) -> None:
        """10 s at 8 kHz and more, long enough for the C wrapper to release the GIL, match too."""
        rng = np.random.default_rng(8000)
        ints = rng.integers(-32768, 32768, 80_000, dtype=np.int64).astype("<i2").tobytes()
        codes = rng.integers(0, 256, 80_000, dtype=np.int64).astype(np.uint8).tobytes()
        assert g711.ulaw_encode(ints) == _g711_ref.ulaw_encode(ints)
        assert g711.alaw_encode(ints) == _g711_ref.alaw_encode(ints)
        assert g711.ulaw_decode(codes) == _g711_ref.ulaw_decode(codes)
        assert g711.alaw_decode(codes) == _g711_ref.alaw_decode(codes)


@pytest.mark.skipif(_g711_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestG711Compiled(TestG711Reference):
    """The same contract, run with the compiled C kernels (the fastest variant here)."""

    backend = _g711_c


def _variant(isa: str) -> types.SimpleNamespace | None:
    """The compiled functions pinned to one instruction set, or None if it cannot run here."""
    if _g711_c is None or (isa == "avx2" and _g711_c.isa() != "avx2"):
        return None
    code = _g711_c.ISA_AVX2 if isa == "avx2" else _g711_c.ISA_SCALAR
    module = _g711_c
    return types.SimpleNamespace(
        ulaw_encode=lambda data: module.ulaw_encode(data, code),
        ulaw_decode=lambda data: module.ulaw_decode(data, code),
        alaw_encode=lambda data: module.alaw_encode(data, code),
        alaw_decode=lambda data: module.alaw_decode(data, code),
    )


@pytest.mark.skipif(_g711_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestG711CompiledScalar(TestG711Reference):
    """The same contract, run with the baseline C loops even where AVX2 would be used."""

    backend = _variant("scalar")


@pytest.mark.skipif(_variant("avx2") is None, reason="no AVX2 build or CPU here")
class TestG711CompiledAvx2(TestG711Reference):
    """The same contract, run with the AVX2 variant (csrc/g711_avx2.c)."""

    backend = _variant("avx2")


@pytest.mark.skipif(_g711_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestInstructionSets:
    """The compiled module's choice of instruction set."""

    def test_the_default_is_the_best_variant_the_cpu_runs(self) -> None:
        """isa() is "avx2" or "scalar", and the default gives the same bytes as each variant."""
        assert _g711_c is not None
        assert _g711_c.isa() in ("avx2", "scalar")
        codes = _g711_c.ulaw_encode(ALL_S16)
        assert codes == _g711_c.ulaw_encode(ALL_S16, _g711_c.ISA_SCALAR)
        assert _g711_c.alaw_decode(ALL_CODES) == _g711_c.alaw_decode(ALL_CODES, _g711_c.ISA_AUTO)

    def test_an_unknown_instruction_set_raises_value_error(self) -> None:
        """An isa number the C code does not know is refused, even for empty input."""
        assert _g711_c is not None
        with pytest.raises(ValueError, match=r"^vb_g711_ulaw_encode: invalid argument"):
            _g711_c.ulaw_encode(b"", 99)
        with pytest.raises(ValueError, match=r"^vb_g711_alaw_decode: invalid argument"):
            _g711_c.alaw_decode(b"\xd5", -1)

    @pytest.mark.skipif(_variant("avx2") is not None, reason="this CPU has AVX2")
    def test_avx2_on_a_cpu_without_it_raises_value_error(self) -> None:
        """Asking for AVX2 where it cannot run is refused rather than crashing."""
        assert _g711_c is not None
        with pytest.raises(ValueError, match="instruction set not supported here"):
            _g711_c.ulaw_decode(b"\xff", _g711_c.ISA_AVX2)


def _audioop() -> types.ModuleType | None:
    """The audioop module where this Python still has it (3.12 and older)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            return None


class TestAudioopCompatibility:
    """What changes for code that used audioop, which Python 3.13 removed."""

    audioop = _audioop()
    pytestmark = pytest.mark.skipif(audioop is None, reason="no audioop in this Python")

    def test_decoding_and_alaw_encoding_give_audioops_bytes(self) -> None:
        """ulaw2lin, alaw2lin and lin2alaw agree with ours on every input."""
        assert self.audioop is not None
        assert g711.ulaw_decode(ALL_CODES) == self.audioop.ulaw2lin(ALL_CODES, 2)
        assert g711.alaw_decode(ALL_CODES) == self.audioop.alaw2lin(ALL_CODES, 2)
        assert g711.alaw_encode(ALL_S16) == self.audioop.lin2alaw(ALL_S16, 2)

    def test_ulaw_encoding_differs_from_audioop_on_508_negative_inputs_by_one_step(self) -> None:
        """lin2ulaw took -(x >> 2) as the magnitude; ours (G.191) -x - 1: one step apart at most."""
        assert self.audioop is not None
        ours = np.frombuffer(g711.ulaw_encode(ALL_S16), dtype=np.uint8)
        theirs = np.frombuffer(self.audioop.lin2ulaw(ALL_S16, 2), dtype=np.uint8)
        x = np.frombuffer(ALL_S16, dtype="<i2")
        differ = ours != theirs
        assert np.count_nonzero(differ) == 508
        assert (x[differ] < 0).all()
        assert (np.abs(ours[differ].astype(int) - theirs[differ]) == 1).all()


class TestFallback:
    """Choosing between the compiled module and the numpy reference at import."""

    def test_missing_compiled_module_falls_back_to_numpy_with_one_warning(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without _g711_c, g711 uses the numpy reference and warns exactly once, at import."""
        fresh = reimport_without_compiled(monkeypatch, "g711")
        assert fresh.IMPLEMENTATION == "numpy"
        assert fresh.ulaw_encode(s16(0, -1, 32767)) == b"\xff\x7f\x80"
        assert fresh.alaw_decode(b"\xd5\x55") == s16(8, -8)

    @pytest.mark.skipif(_g711_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
    def test_the_compiled_module_is_used_when_present(self) -> None:
        """With _g711_c importable, IMPLEMENTATION is "c" and calls go to the C kernels."""
        assert g711.IMPLEMENTATION == "c"
        assert g711._impl is _g711_c
