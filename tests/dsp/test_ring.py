"""Specification of vbgraph.dsp.ring, run against the pure-Python reference and the C kernels.

``TestRingBufferReference`` and ``TestRechunkerReference`` state the behaviour;
their ``Compiled`` subclasses inherit every test and run it with the compiled
module (STYLE.md rule 10). The ring is checked against a ``bytearray`` model
written here, and the rechunker against slicing the joined stream.
"""

from __future__ import annotations

import itertools
import os
import types
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbgraph.errors import AudioFormatError, UsageError
from vbgraph.typing import BytesLike

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # a missing build is reported below
    from tests.dsp.fallback_support import reimport_without_compiled
from vbgraph.dsp import _ring_ref, ring

_ring_c: types.ModuleType | None
try:
    from vbgraph.dsp import _ring_c
except ImportError as exc:
    _ring_c = None
    _MISSING_REASON = f"vbgraph.dsp._ring_c is not built ({exc}); run `pip install -e .`"
else:
    _MISSING_REASON = ""

# On CI (CI=true) or with VBGRAPH_REQUIRE_COMPILED=1, a missing compiled module fails.
ON_CI = os.environ.get("CI", "").lower() in ("1", "true")
REQUIRE_COMPILED = ON_CI or os.environ.get("VBGRAPH_REQUIRE_COMPILED") == "1"
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.differing_executors])
FRAME_20MS_16K = 640  # 20 ms of 16 kHz mono int16


@pytest.fixture(scope="class")
def use_backend(request: pytest.FixtureRequest) -> Iterator[None]:
    """Make vbgraph.dsp.ring build its objects from the requesting class's ``backend``."""
    backend = request.cls.backend
    if backend is None:
        pytest.fail(f"the compiled module is required here, but {_MISSING_REASON}")
    saved = ring._impl
    ring._impl = backend
    yield
    ring._impl = saved


class RingModel:
    """The ring's contract as a bytearray: what a correct ring must do."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        taken = data[: self.capacity - len(self.data)]
        self.data += taken
        return len(taken)

    def write_overwrite(self, data: bytes) -> int:
        self.data += data
        dropped = max(0, len(self.data) - self.capacity)
        del self.data[:dropped]
        return dropped

    def read(self, n: int) -> bytes:
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(max_size=40)),
        st.tuples(st.just("write_overwrite"), st.binary(max_size=40)),
        st.tuples(st.just("read"), st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("peek"), st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("skip"), st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("reset"), st.none()),
    ),
    max_size=60,
)


@pytest.mark.usefixtures("use_backend")
class TestRingBufferReference:
    """The ring buffer contract, run with the pure-Python reference."""

    backend: types.ModuleType | None = _ring_ref

    def test_a_new_ring_is_empty(self) -> None:
        """A new ring has size 0, all its capacity as space, and reads nothing."""
        rb = ring.RingBuffer(16)
        assert (rb.capacity, rb.size, rb.space, len(rb)) == (16, 0, 16, 0)
        assert rb.read(4) == b""
        assert rb.peek(4) == b""
        assert rb.skip(4) == 0

    def test_write_stores_what_fits_and_says_how_much(self) -> None:
        """write takes min(len, space) bytes and returns that count; a full ring takes 0."""
        rb = ring.RingBuffer(5)
        assert rb.write(b"abc") == 3
        assert rb.write(b"defg") == 2
        assert rb.write(b"h") == 0
        assert (rb.size, rb.space) == (5, 0)
        assert rb.read(10) == b"abcde"

    def test_write_overwrite_drops_the_oldest_bytes_and_counts_them(self) -> None:
        """write_overwrite keeps the newest bytes: size grows by len(data) - dropped."""
        rb = ring.RingBuffer(5)
        assert rb.write_overwrite(b"abc") == 0
        assert rb.write_overwrite(b"def") == 1
        assert rb.peek(5) == b"bcdef"
        assert rb.write_overwrite(b"") == 0
        assert rb.size == 5

    def test_write_overwrite_longer_than_the_capacity_keeps_its_tail(self) -> None:
        """Data longer than the ring leaves only its last capacity bytes; the rest is dropped."""
        rb = ring.RingBuffer(4)
        rb.write(b"xy")
        assert rb.write_overwrite(b"0123456") == 2 + 3
        assert rb.read(10) == b"3456"
        assert rb.write_overwrite(b"abcd") == 0
        assert rb.read(10) == b"abcd"

    def test_read_returns_the_oldest_bytes_first(self) -> None:
        """read(n) removes and returns min(n, size) bytes in FIFO order."""
        rb = ring.RingBuffer(8)
        rb.write(b"hello")
        assert rb.read(2) == b"he"
        assert rb.read(0) == b""
        assert rb.read(100) == b"llo"
        assert rb.size == 0

    def test_peek_does_not_consume_and_skip_does_not_return(self) -> None:
        """peek copies without removing; skip removes without copying and returns the count."""
        rb = ring.RingBuffer(8)
        rb.write(b"abcdef")
        assert rb.peek(3) == b"abc"
        assert rb.size == 6
        assert rb.skip(2) == 2
        assert rb.peek(100) == b"cdef"
        assert rb.skip(100) == 4
        assert rb.size == 0

    def test_bytes_come_out_intact_across_the_wrap_point(self) -> None:
        """Many writes and reads of sizes prime to the capacity keep every byte in order."""
        rb = ring.RingBuffer(7)
        stream = bytes(range(256)) * 4
        out = bytearray()
        position = 0
        while position < len(stream) or rb.size:
            position += rb.write(stream[position : position + 5])
            out += rb.read(3)
        assert out == stream

    def test_reset_empties_the_ring(self) -> None:
        """reset drops every byte; the capacity stays."""
        rb = ring.RingBuffer(4)
        rb.write(b"abcd")
        rb.reset()
        assert (rb.size, rb.space, rb.capacity) == (0, 4, 4)
        assert rb.write(b"wxyz") == 4
        assert rb.read(4) == b"wxyz"

    def test_a_one_byte_ring_works(self) -> None:
        """Capacity 1 holds one byte at a time."""
        rb = ring.RingBuffer(1)
        assert rb.write(b"ab") == 1
        assert rb.write_overwrite(b"cd") == 2
        assert rb.read(5) == b"d"

    def test_reads_return_bytes(self) -> None:
        """read and peek return bytes objects, also when empty."""
        rb = ring.RingBuffer(4)
        rb.write(b"ab")
        assert type(rb.peek(1)) is bytes
        assert type(rb.read(1)) is bytes
        assert type(rb.read(0)) is bytes

    @PROPERTY
    @given(capacity=st.integers(min_value=1, max_value=50), ops=operations)
    def test_any_sequence_of_operations_matches_a_bytearray_model(
        self, capacity: int, ops: list[tuple[str, object]]
    ) -> None:
        """Every result, including bytes dropped by overwrites, equals the bytearray model's."""
        rb = ring.RingBuffer(capacity)
        model = RingModel(capacity)
        for name, argument in ops:
            if name == "write":
                assert isinstance(argument, bytes)
                assert rb.write(argument) == model.write(argument)
            elif name == "write_overwrite":
                assert isinstance(argument, bytes)
                assert rb.write_overwrite(argument) == model.write_overwrite(argument)
            elif name == "read":
                assert isinstance(argument, int)
                assert rb.read(argument) == model.read(argument)
            elif name == "peek":
                assert isinstance(argument, int)
                assert rb.peek(argument) == bytes(model.data[:argument])
            elif name == "skip":
                assert isinstance(argument, int)
                assert rb.skip(argument) == len(model.read(argument))
            else:
                rb.reset()
                model.data.clear()
            assert rb.size == len(rb) == len(model.data)
            assert rb.space == capacity - len(model.data)
        assert rb.peek(capacity) == model.data

    @pytest.mark.parametrize("capacity", [0, -1, 1.5, "8", None])
    def test_the_capacity_must_be_a_positive_int(self, capacity: object) -> None:
        """A capacity below 1 or not an int raises UsageError."""
        with pytest.raises(UsageError, match=r"^RingBuffer: expected an int"):
            ring.RingBuffer(capacity)  # type: ignore[arg-type]

    @pytest.mark.parametrize("n", [-1, 2.0, None])
    def test_counts_must_be_non_negative_ints(self, n: object) -> None:
        """read, peek and skip refuse a negative or non-int count with UsageError."""
        rb = ring.RingBuffer(4)
        for name in ("read", "peek", "skip"):
            with pytest.raises(UsageError, match=rf"^RingBuffer.{name}: expected an int"):
                getattr(rb, name)(n)

    @pytest.mark.parametrize("value", ["ab", [1, 2], 12, None])
    def test_non_buffers_are_rejected(self, value: object) -> None:
        """Writing a value without the buffer protocol raises UsageError."""
        rb = ring.RingBuffer(4)
        with pytest.raises(UsageError, match=r"^RingBuffer.write: expected bytes"):
            rb.write(value)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=r"^RingBuffer.write_overwrite: expected bytes"):
            rb.write_overwrite(value)  # type: ignore[arg-type]

    def test_non_contiguous_buffers_are_rejected(self) -> None:
        """A strided memoryview raises AudioFormatError."""
        with pytest.raises(AudioFormatError, match=r"^RingBuffer.write: the buffer is not"):
            ring.RingBuffer(4).write(memoryview(bytes(8))[::2])

    def test_every_contiguous_buffer_type_is_written_as_its_bytes(self) -> None:
        """bytearray, memoryviews of any item type and numpy arrays are stored as raw bytes."""
        samples = np.array([1, -2, 300], dtype="<i2")
        data = samples.tobytes()
        for buffer in (bytearray(data), memoryview(data), memoryview(data).cast("h"), samples):
            rb = ring.RingBuffer(16)
            assert rb.write(buffer) == len(data)
            assert rb.write_overwrite(buffer) == 0
            assert rb.read(16) == data * 2


@pytest.mark.skipif(_ring_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestRingBufferCompiled(TestRingBufferReference):
    """The same contract, run with the compiled C ring."""

    backend = _ring_c


def frames_of(stream: bytes, frame_bytes: int) -> list[bytes]:
    """The whole frames of ``stream``: what a rechunker must emit for it."""
    whole = len(stream) // frame_bytes * frame_bytes
    return [stream[i : i + frame_bytes] for i in range(0, whole, frame_bytes)]


def push_all(chunker: ring.Rechunker, pieces: Sequence[BytesLike]) -> list[bytes]:
    """Push every piece and collect the frames as bytes."""
    return [bytes(frame) for piece in pieces for frame in chunker.push(piece)]


@pytest.mark.usefixtures("use_backend")
class TestRechunkerReference:
    """The rechunker contract, run with the pure-Python reference."""

    backend: types.ModuleType | None = _ring_ref

    # -- frames -----------------------------------------------------------

    def test_push_returns_the_frames_now_complete(self) -> None:
        """Pushing 10 bytes into 4-byte frames gives 2 frames and keeps 2 bytes pending."""
        chunker = ring.Rechunker(4)
        assert [bytes(f) for f in chunker.push(b"0123456789")] == [b"0123", b"4567"]
        assert chunker.pending == 2
        assert [bytes(f) for f in chunker.push(b"ab")] == [b"89ab"]
        assert chunker.pending == 0

    def test_a_short_push_returns_no_frames(self) -> None:
        """Less than a frame in total gives an empty list and grows pending."""
        chunker = ring.Rechunker(FRAME_20MS_16K)
        assert chunker.push(bytes(100)) == []
        assert chunker.push(b"") == []
        assert chunker.pending == 100

    def test_every_frame_is_a_read_only_byte_memoryview_of_frame_bytes(self) -> None:
        """Frames are memoryviews of format "B", read-only, exactly frame_bytes long."""
        chunker = ring.Rechunker(3)
        pieces: list[BytesLike] = [b"ab", bytearray(b"cdefgh"), b"ijklmnop", memoryview(b"qrst")]
        for piece in pieces:
            for frame in chunker.push(piece):
                assert type(frame) is memoryview
                assert (frame.format, frame.nbytes, frame.readonly) == ("B", 3, True)

    def test_pushing_one_byte_at_a_time_gives_the_same_frames(self) -> None:
        """Single-byte pushes give the frames one push would."""
        stream = bytes(range(256)) * 6
        chunker = ring.Rechunker(FRAME_20MS_16K)
        frames = push_all(chunker, [stream[i : i + 1] for i in range(len(stream))])
        assert frames == frames_of(stream, FRAME_20MS_16K)
        assert chunker.pending == len(stream) % FRAME_20MS_16K

    def test_a_push_can_end_in_the_middle_of_a_sample(self) -> None:
        """Odd byte counts of int16 audio are reassembled into whole frames."""
        stream = np.arange(1000, dtype="<i2").tobytes()
        chunker = ring.Rechunker(20)
        frames = push_all(chunker, [stream[:333], stream[333:1001], stream[1001:]])
        assert b"".join(frames) == stream

    # -- flush and reset --------------------------------------------------

    def test_flush_returns_the_remainder_and_empties(self) -> None:
        """flush() returns the pending bytes as they are, then nothing is pending."""
        chunker = ring.Rechunker(4)
        chunker.push(b"abcdef")
        assert chunker.flush() == b"ef"
        assert chunker.pending == 0
        assert chunker.flush() is None

    def test_flush_with_pad_fills_a_whole_frame_with_zero_bytes(self) -> None:
        """flush(pad=True) returns one frame: the remainder, then zero bytes."""
        chunker = ring.Rechunker(5)
        chunker.push(b"abcdefg")
        assert chunker.flush(pad=True) == b"fg\x00\x00\x00"
        assert chunker.flush(pad=True) is None

    def test_flush_with_nothing_pending_returns_none(self) -> None:
        """After whole frames only, flush returns None, padded or not."""
        chunker = ring.Rechunker(2)
        chunker.push(b"abcd")
        assert chunker.flush() is None
        assert chunker.flush(pad=True) is None

    def test_reset_drops_the_pending_bytes(self) -> None:
        """After reset, the next frame starts with the next push."""
        chunker = ring.Rechunker(4)
        chunker.push(b"xy")
        chunker.reset()
        assert chunker.pending == 0
        assert [bytes(f) for f in chunker.push(b"abcd")] == [b"abcd"]

    # -- zero copy --------------------------------------------------------

    def test_frames_inside_a_bytes_input_are_views_of_it(self) -> None:
        """With nothing pending, the frames of a bytes push are slices of that very object."""
        data = bytes(range(10))
        frames = ring.Rechunker(4).push(data)
        assert [f.obj is data for f in frames] == [True, True]

    def test_a_bytes_input_of_exactly_one_frame_is_passed_through(self) -> None:
        """One frame in, nothing pending: the frame views the input object itself."""
        data = bytes(FRAME_20MS_16K)
        (frame,) = ring.Rechunker(FRAME_20MS_16K).push(data)
        assert frame.obj is data
        assert frame == data

    def test_frames_inside_a_memoryview_of_bytes_are_views_of_those_bytes(self) -> None:
        """A memoryview of bytes (sliced, or of int16 items) is not copied either."""
        data = bytes(range(20))
        chunker = ring.Rechunker(4)
        frames = chunker.push(memoryview(data)[2:])
        assert all(f.obj is data for f in frames)
        assert [bytes(f) for f in frames] == frames_of(data[2:], 4)
        frames = ring.Rechunker(4).push(memoryview(data).cast("h"))
        assert all(f.obj is data for f in frames)

    def test_a_frame_straddling_two_pushes_is_a_copy_and_the_rest_are_views(self) -> None:
        """Completing a pending frame copies that frame; the following ones view the input."""
        chunker = ring.Rechunker(4)
        chunker.push(b"ab")
        data = b"cdefghij"
        first, second = chunker.push(data)
        assert bytes(first) == b"abcd"
        assert first.obj is not data
        assert second.obj is data
        assert bytes(second) == b"efgh"
        assert chunker.pending == 2

    def test_frames_of_a_mutable_input_are_copied_once(self) -> None:
        """bytearray frames share one new bytes, and survive changes to the bytearray."""
        data = bytearray(b"0123456789")
        frames = ring.Rechunker(4).push(data)
        assert type(frames[0].obj) is bytes
        assert frames[0].obj is frames[1].obj
        data[:] = b"X" * 10
        data.extend(b"resizable")  # no view pins the caller's buffer
        assert [bytes(f) for f in frames] == [b"0123", b"4567"]

    def test_numpy_and_bytearray_backed_views_are_copied(self) -> None:
        """A numpy array, or a read-only view of a bytearray, gives frames over new bytes."""
        array = np.arange(8, dtype="<i2")
        frames = ring.Rechunker(4).push(array)
        assert all(type(f.obj) is bytes for f in frames)
        assert b"".join(frames) == array.tobytes()
        backing = bytearray(8)
        frames = ring.Rechunker(4).push(memoryview(backing).toreadonly())
        assert all(f.obj is not backing for f in frames)

    def test_no_input_is_held_after_push(self) -> None:
        """The trailing partial frame is copied in: the caller's bytearray can change."""
        data = bytearray(b"abcdef")
        chunker = ring.Rechunker(4)
        chunker.push(data)
        data[:] = b"zzzzzz"
        assert [bytes(f) for f in chunker.push(b"gh")] == [b"efgh"]

    def test_the_backend_cuts_bytes_even_from_a_wide_item_memoryview(self) -> None:
        """Called directly, the backend still counts bytes for a memoryview of int16 items."""
        assert self.backend is not None
        data = bytes(range(12))
        frames = self.backend.Rechunker(4).push(memoryview(data).cast("h"))
        assert [bytes(f) for f in frames] == frames_of(data, 4)

    # -- properties -------------------------------------------------------

    @PROPERTY
    @given(
        frame_bytes=st.integers(min_value=1, max_value=48),
        stream=st.binary(max_size=400),
        cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
        mutable=st.booleans(),
    )
    def test_any_split_of_a_stream_gives_the_frames_of_one_push(
        self, frame_bytes: int, stream: bytes, cuts: list[int], mutable: bool
    ) -> None:
        """Cut anywhere, as bytes or bytearrays, a stream yields the frames of one push."""
        bounds = sorted({0, len(stream), *(min(c, len(stream)) for c in cuts)})
        pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]
        chunker = ring.Rechunker(frame_bytes)
        frames = push_all(chunker, [bytearray(p) if mutable else p for p in pieces])
        assert frames == frames_of(stream, frame_bytes)
        assert all(len(f) == frame_bytes for f in frames)
        remainder = stream[len(frames) * frame_bytes :]
        assert chunker.pending == len(remainder)
        assert chunker.flush() == (remainder or None)

    @PROPERTY
    @given(
        frame_bytes=st.integers(min_value=1, max_value=16),
        pieces=st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.binary(max_size=40).map(bytearray),
                st.tuples(st.binary(max_size=40), st.integers(0, 5)).map(
                    lambda t: memoryview(t[0])[t[1] :]
                ),
                st.integers(0, 20).map(lambda n: np.arange(n, dtype="<i4")),
                st.integers(0, 20).map(lambda n: np.ones(n, dtype="<f8")[::1]),
            ),
            max_size=10,
        ),
    )
    def test_odd_inputs_never_crash_and_keep_every_byte(
        self, frame_bytes: int, pieces: list[object]
    ) -> None:
        """Any mix of buffer types, sizes and offsets comes out as the joined byte stream."""
        chunker = ring.Rechunker(frame_bytes)
        out = bytearray()
        for piece in pieces:
            for frame in chunker.push(piece):  # type: ignore[arg-type]
                out += frame
        out += chunker.flush() or b""
        assert out == b"".join(memoryview(p).cast("B") for p in pieces)  # type: ignore[arg-type]

    # -- arguments --------------------------------------------------------

    @pytest.mark.parametrize("frame_bytes", [0, -640, 640.0, None])
    def test_frame_bytes_must_be_a_positive_int(self, frame_bytes: object) -> None:
        """frame_bytes below 1 or not an int raises UsageError."""
        with pytest.raises(UsageError, match=r"^Rechunker: expected an int"):
            ring.Rechunker(frame_bytes)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", ["ab", [1, 2], 12, None])
    def test_non_buffers_are_rejected(self, value: object) -> None:
        """Pushing a value without the buffer protocol raises UsageError."""
        with pytest.raises(UsageError, match=r"^Rechunker.push: expected bytes"):
            ring.Rechunker(4).push(value)  # type: ignore[arg-type]

    def test_non_contiguous_buffers_are_rejected(self) -> None:
        """A strided memoryview raises AudioFormatError and leaves nothing pending."""
        chunker = ring.Rechunker(4)
        with pytest.raises(AudioFormatError, match=r"^Rechunker.push: the buffer is not"):
            chunker.push(memoryview(bytes(8))[::2])
        assert chunker.pending == 0


@pytest.mark.skipif(_ring_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
class TestRechunkerCompiled(TestRechunkerReference):
    """The same contract, run with the compiled C rechunker."""

    backend = _ring_c


class TestFallback:
    """Choosing between the compiled module and the Python reference at import."""

    def test_missing_compiled_module_falls_back_to_python_with_one_warning(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without _ring_c, ring uses the Python reference and warns exactly once, at import."""
        fresh = reimport_without_compiled(monkeypatch, "ring")
        assert fresh.IMPLEMENTATION == "python"
        assert [bytes(f) for f in fresh.Rechunker(2).push(b"abcde")] == [b"ab", b"cd"]
        rb = fresh.RingBuffer(2)
        assert rb.write_overwrite(b"xyz") == 1

    @pytest.mark.skipif(_ring_c is None and not REQUIRE_COMPILED, reason=_MISSING_REASON or "built")
    def test_the_compiled_module_is_used_when_present(self) -> None:
        """With _ring_c importable, IMPLEMENTATION is "c" and objects wrap the C kernels."""
        assert ring.IMPLEMENTATION == "c"
        assert ring._impl is _ring_c
        assert type(ring.RingBuffer(1)._ring) is _ring_c.RingBuffer
        assert type(ring.Rechunker(1)._chunker) is _ring_c.Rechunker
