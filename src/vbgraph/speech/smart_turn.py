"""Model-based end of turn: a "smart turn" ONNX audio model and its features.

Theory of operation
-------------------
Pipecat's Smart Turn v3 models (BSD-2-Clause, ``pipecat-ai/smart-turn-v3`` on
Hugging Face) read the caller's audio, not a transcript, and say how likely it
is that the caller has finished their turn. The ONNX files take one tensor,
``input_features``, float32 ``[batch, 80, 800]``: the Whisper log-mel
spectrogram of exactly 8 s of 16 kHz mono audio, and return one float32
``[batch, 1]`` (named ``logits`` but already a sigmoid probability) of "turn
complete". ``docs/turn-taking.md`` lists the sources of each fact.

The features, computed here in numpy (:func:`log_mel_features`):

1. keep the **last** 8 s (128 000 samples); a shorter clip is padded with
   zeros at the **start**, so the end of speech is always at the end;
2. normalise the padded waveform to zero mean and unit variance,
   ``(x - mean) / sqrt(var + 1e-7)``;
3. short-time power spectrum: periodic Hann window of 400 samples (25 ms),
   hop 160 (10 ms), the signal reflect-padded by 200 at both ends (centred
   frames): 801 frames of 201 bins;
4. 80 triangular mel filters from 0 to 8 kHz on the Slaney mel scale, each
   scaled to unit area ("slaney" norm);
5. ``log10(max(mel, 1e-10))``, drop the last frame (800 remain), floor at
   the maximum minus 8, then ``(x + 4) / 4``.

Silence is therefore a constant ``-1.5`` (``log10(1e-10) = -10``).

:class:`SmartTurnModel` holds one ``onnxruntime.InferenceSession`` per model
file, shared by every session in the process (:func:`shared_model`); ORT's
``run`` may be called from several threads at once. The session uses one
intra-op and one inter-op thread: the caller decides where the call runs. This
module does no other I/O.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError

__all__ = [
    "HOP_LENGTH",
    "INPUT_NAME",
    "INSTALL_HINT",
    "N_FFT",
    "N_FRAMES",
    "N_MELS",
    "SAMPLE_RATE",
    "WINDOW_SAMPLES",
    "AudioWindow",
    "SmartTurnModel",
    "fit_window",
    "hz_to_mel",
    "load_onnxruntime",
    "log_mel_features",
    "mel_filterbank",
    "mel_to_hz",
    "shared_model",
]

SAMPLE_RATE: Final = 16_000
WINDOW_SAMPLES: Final = 8 * SAMPLE_RATE
"""The model sees the last 8 s of audio."""
N_FFT: Final = 400
HOP_LENGTH: Final = 160
N_MELS: Final = 80
N_FRAMES: Final = WINDOW_SAMPLES // HOP_LENGTH
"""800: the centred STFT has one frame more, which Whisper drops."""
INPUT_NAME: Final = "input_features"
INSTALL_HINT: Final = "pip install onnxruntime"

_LOG_FLOOR: Final = 1e-10
_NORM_EPS: Final = 1e-7
_DYNAMIC_RANGE: Final = 8.0  # in log10 units: 80 dB

# Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
_LINEAR_HZ_PER_MEL: Final = 200.0 / 3.0
_BREAK_HZ: Final = 1000.0
_BREAK_MEL: Final = _BREAK_HZ / _LINEAR_HZ_PER_MEL  # 15
_LOG_STEP: Final = math.log(6.4) / 27.0  # ln(Hz ratio) per mel above the break

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def hz_to_mel(hz: npt.ArrayLike) -> F64:
    """Frequencies in Hz on the Slaney mel scale (1000 Hz is 15 mel)."""
    f = np.asarray(hz, dtype=np.float64)
    linear = f / _LINEAR_HZ_PER_MEL
    with np.errstate(divide="ignore"):
        log = _BREAK_MEL + np.log(np.maximum(f, 1e-300) / _BREAK_HZ) / _LOG_STEP
    return np.where(f < _BREAK_HZ, linear, log)


def mel_to_hz(mel: npt.ArrayLike) -> F64:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    linear = m * _LINEAR_HZ_PER_MEL
    log = _BREAK_HZ * np.exp(_LOG_STEP * (m - _BREAK_MEL))
    return np.where(m < _BREAK_MEL, linear, log)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> F64:
    """Triangular Slaney mel filters, ``(n_fft // 2 + 1, n_mels)``, each of unit area in Hz.

    Filter ``i`` rises from edge ``i`` to a peak at edge ``i + 1`` and falls to
    edge ``i + 2``, where the ``n_mels + 2`` edges are evenly spaced in mel
    from 0 Hz to ``rate / 2``; its height is ``2 / (edge[i + 2] - edge[i])``.
    """
    edges = mel_to_hz(np.linspace(0.0, float(hz_to_mel(rate / 2.0)), n_mels + 2))
    bins = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)[:, None]
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins - lower) / (center - lower)
    falling = (upper - bins) / (upper - center)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    result: F64 = triangles * (2.0 / (upper - lower))
    return result


_WINDOW: Final = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
_FILTERS_T: Final = np.ascontiguousarray(mel_filterbank().T)  # (80, 201)


def fit_window(audio: npt.ArrayLike) -> F64:
    """The last :data:`WINDOW_SAMPLES` of ``audio``, zero-padded at the start if shorter."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.size >= WINDOW_SAMPLES:
        return x[x.size - WINDOW_SAMPLES :]
    out = np.zeros(WINDOW_SAMPLES, dtype=np.float64)
    out[WINDOW_SAMPLES - x.size :] = x
    return out


def log_mel_features(audio: npt.ArrayLike) -> F32:
    """Smart Turn's input for 16 kHz mono ``audio`` (floats in [-1, 1]): float32 ``(80, 800)``.

    Steps 1-5 of the module docstring; any length is accepted (last 8 s kept).
    """
    x = fit_window(audio)
    x = (x - x.mean()) / math.sqrt(float(x.var()) + _NORM_EPS)
    pad = N_FFT // 2
    padded = np.pad(x, (pad, pad), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=-1)  # (801, 201)
    power = spectrum.real**2 + spectrum.imag**2
    mel = _FILTERS_T @ power.T  # (80, 801)
    log = np.log10(np.maximum(mel, _LOG_FLOOR))[:, :N_FRAMES]
    log = np.maximum(log, log.max() - _DYNAMIC_RANGE)
    result: F32 = ((log + 4.0) / 4.0).astype(np.float32)
    return result


def load_onnxruntime(field: str = "model_path") -> Any:
    """The ``onnxruntime`` module; :class:`ConfigError` naming ``field`` if it is not installed."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise ConfigError(
            f"a smart-turn model needs the optional package onnxruntime, which is not "
            f"installed: {INSTALL_HINT} (or pip install 'vbgraph[silero]'), or remove "
            f"{field} to use the rules only ({exc})",
            field=field,
        ) from exc


class SmartTurnModel:
    """One smart-turn ONNX model: 16 kHz audio in, P(turn complete) out.

    Get it with :func:`shared_model` (one per file per process). Thread-safe:
    :meth:`predict` holds no state between calls.
    """

    __slots__ = ("_session", "output_name", "path")

    def __init__(self, path: str, field: str = "model_path") -> None:
        ort = load_onnxruntime(field)
        if not os.path.isfile(path):
            raise ConfigError(
                f"no smart-turn model file at '{path}' (vbgraph downloads nothing: put a "
                f"Smart Turn v3 ONNX file there, e.g. smart-turn-v3.2-cpu.onnx from "
                f"huggingface.co/pipecat-ai/smart-turn-v3, or remove {field} to use the "
                f"rules only)",
                field=field,
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ConfigError(
                f"'{path}' is not an ONNX model onnxruntime can load: {exc}", field=field
            ) from exc
        _check_signature(session, path, field)
        self._session = session
        self.path = path
        self.output_name: str = session.get_outputs()[0].name

    def predict(self, audio: npt.ArrayLike) -> float:
        """P(the turn is complete) for the caller's audio (16 kHz mono floats, last 8 s used)."""
        features = log_mel_features(audio)[np.newaxis]
        (out,) = self._session.run([self.output_name], {INPUT_NAME: features})
        return float(np.asarray(out).reshape(-1)[0])


def _check_signature(session: Any, path: str, field: str) -> None:
    """Refuse a model whose input is not Smart Turn v3's ``input_features [batch, 80, 800]``."""
    inputs = session.get_inputs()
    want = f"one float32 input '{INPUT_NAME}' of shape [batch, {N_MELS}, {N_FRAMES}]"
    found = ", ".join(f"'{i.name}' {i.type} {i.shape}" for i in inputs) or "no inputs"
    ok = len(inputs) == 1 and inputs[0].name == INPUT_NAME and inputs[0].type == "tensor(float)"
    if ok:
        shape = inputs[0].shape
        ok = len(shape) == 3 and all(
            not isinstance(dim, int) or dim == size
            for dim, size in zip(shape[1:], (N_MELS, N_FRAMES), strict=True)
        )
    if not ok or not session.get_outputs():
        raise ConfigError(
            f"'{path}' does not look like a Smart Turn v3 model: it takes {found}; "
            f"vbgraph feeds {want} and reads the first output",
            field=field,
        )


class AudioWindow:
    """The last 8 s of a 16 kHz mono stream, as float32, with the time of its end.

    A fixed ring of :data:`WINDOW_SAMPLES` floats (512 KB): memory does not
    grow with the call. Times are the frames' ``pts`` (ns).
    """

    __slots__ = ("_buf", "_filled", "_pos", "end_pts")

    def __init__(self) -> None:
        self._buf = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        self._pos = 0
        self._filled = 0
        self.end_pts: int | None = None
        """When the newest sample ends; ``None`` before the first push."""

    def __len__(self) -> int:
        return self._filled

    def push(self, samples: npt.ArrayLike, end_pts: int) -> None:
        """Append samples (floats in [-1, 1]) that end at ``end_pts``; the oldest fall out."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)[-WINDOW_SAMPLES:]
        n = x.size
        first = min(n, WINDOW_SAMPLES - self._pos)
        self._buf[self._pos : self._pos + first] = x[:first]
        self._buf[: n - first] = x[first:]
        self._pos = (self._pos + n) % WINDOW_SAMPLES
        self._filled = min(WINDOW_SAMPLES, self._filled + n)
        self.end_pts = end_pts

    def latest(self, since_pts: int | None = None) -> F32:
        """The samples from ``since_pts`` to the end, oldest first (all if unknown or older)."""
        n = self._filled
        if since_pts is not None and self.end_pts is not None and since_pts < self.end_pts:
            n = min(n, -(-(self.end_pts - since_pts) * SAMPLE_RATE // 1_000_000_000))
        start = (self._pos - n) % WINDOW_SAMPLES
        if start + n <= WINDOW_SAMPLES:
            return self._buf[start : start + n].copy()
        return np.concatenate((self._buf[start:], self._buf[: self._pos]))

    def clear(self) -> None:
        """Forget everything."""
        self._pos = 0
        self._filled = 0
        self.end_pts = None


_LOCK = threading.Lock()
_MODELS: dict[str, SmartTurnModel] = {}


def shared_model(path: str, field: str = "model_path") -> SmartTurnModel:
    """The process-wide :class:`SmartTurnModel` for ``path``, loaded on first use.

    Raises :class:`ConfigError` (naming ``field``) if onnxruntime is missing,
    the file does not exist, or it is not a Smart Turn v3 model.
    """
    load_onnxruntime(field)  # checked every time: a dict lookup once imported
    key = os.path.realpath(path)
    model = _MODELS.get(key)
    if model is not None and os.path.isfile(key):
        return model
    with _LOCK:
        model = _MODELS.get(key)
        if model is None or not os.path.isfile(key):
            model = SmartTurnModel(path, field)
            _MODELS[key] = model
    return model
