"""Scripted conversations for ``vbgraph bench``: the caller's audio plus, optionally, its turns.

A conversation is a WAV file (the caller's side of a call, silence where the
bot is meant to answer) and an optional script next to it with the same stem:

* ``NAME.txt``: one turn per line, ``START<TAB>END<TAB>WORDS`` (seconds from the
  start of the file; ``START<TAB>WORDS`` also works, without an end). Blank
  lines and lines starting with ``#`` are skipped. This is what
  ``graphs/samples/make_conversation.py`` writes.
* ``NAME.json``: ``{"turns": [{"start_s": 5.0, "end_s": 6.5, "text": "..."}]}``
  (or just the list). ``end_s`` is optional.

When both exist the JSON wins. The script tells the bench what the caller
said (the modelled STT then "recognises" exactly that) and when each turn
really ended, so latencies can be measured from the true end of speech
rather than from the VAD's idea of it. Without a script the VAD decides
everything and the modelled STT's own ``transcripts`` are used.

:func:`load_conversations` takes a file or a folder (every ``*.wav`` in it,
sorted by name); :func:`synthesize` writes a synthetic caller of any number
of turns (voiced buzz, not speech: for the modelled providers, which do not
listen) for long sweeps and tests.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, SourceLocation, VbgraphError
from ..formats import AudioFormat
from ..io.wav import WavReader, write_wav

__all__ = [
    "Conversation",
    "ScriptedTurn",
    "load_conversation",
    "load_conversations",
    "synthesize",
]


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """One turn of the caller as scripted: when it starts and ends (s) and the words."""

    start_s: float
    end_s: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """A caller's recording and its script (``turns`` is empty without one)."""

    name: str
    wav: Path
    duration_s: float
    turns: tuple[ScriptedTurn, ...] = ()
    script: Path | None = None

    @property
    def texts(self) -> list[str]:
        """The words of each scripted turn, in order."""
        return [t.text for t in self.turns]


def load_conversations(path: str | os.PathLike[str]) -> list[Conversation]:
    """The conversation in a WAV file, or every WAV (sorted by name) in a folder.

    Raises :class:`~vbgraph.errors.ConfigError` naming the path when there is
    nothing to play or a script cannot be read.
    """
    p = Path(path)
    if p.is_dir():
        wavs = sorted(p.glob("*.wav"))
        if not wavs:
            raise ConfigError(f"--conversation {p}: no .wav file in this folder")
        return [load_conversation(w) for w in wavs]
    return [load_conversation(p)]


def load_conversation(path: str | os.PathLike[str]) -> Conversation:
    """One conversation: a WAV (or a script whose WAV has the same stem)."""
    p = Path(path)
    wav = p.with_suffix(".wav") if p.suffix.lower() in (".txt", ".json") else p
    if not wav.is_file():
        raise ConfigError(f"--conversation {p}: no such WAV file ({wav})")
    try:
        with WavReader(wav) as reader:
            duration_s = reader.frames_total / reader.format.rate
    except (OSError, VbgraphError) as exc:
        raise ConfigError(f"--conversation {wav}: cannot read the WAV: {exc}") from None
    script: Path | None = None
    turns: tuple[ScriptedTurn, ...] = ()
    for candidate in (wav.with_suffix(".json"), wav.with_suffix(".txt")):
        if candidate.is_file():
            script = candidate
            turns = _read_script(candidate)
            break
    for turn in turns:
        if turn.start_s > duration_s:
            raise ConfigError(
                f"{script}: turn {turn.text!r} starts at {turn.start_s} s, after the end "
                f"of {wav.name} ({duration_s:.2f} s)"
            )
    return Conversation(wav.stem, wav, duration_s, turns, script)


def _read_script(path: Path) -> tuple[ScriptedTurn, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the script: {exc}") from None
    turns = _parse_json(path, text) if path.suffix == ".json" else _parse_txt(path, text)
    for before, after in itertools.pairwise(turns):
        if after.start_s < before.start_s:
            raise ConfigError(f"{path}: turns must be in time order ({after.text!r})")
    return tuple(turns)


def _parse_txt(path: Path, text: str) -> list[ScriptedTurn]:
    turns: list[ScriptedTurn] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        where = SourceLocation(str(path), number, 1)
        try:
            if len(fields) >= 3:
                start, end = float(fields[0]), float(fields[1])
                words = "\t".join(fields[2:])
            elif len(fields) == 2:
                start, end, words = float(fields[0]), None, fields[1]
            else:
                raise ValueError("expected START<TAB>END<TAB>WORDS")
        except ValueError as exc:
            raise ConfigError(f"bad script line {line!r}: {exc}", location=where) from None
        turns.append(_turn(start, end, words, where))
    return turns


def _parse_json(path: Path, text: str) -> list[ScriptedTurn]:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        where = SourceLocation(str(path), exc.lineno, exc.colno)
        raise ConfigError(f"the script is not valid JSON: {exc.msg}", location=where) from None
    items = data.get("turns") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected a list of turns or {{'turns': [...]}}")
    turns: list[ScriptedTurn] = []
    for i, item in enumerate(items):
        where = SourceLocation(str(path), 1, 1)
        if not isinstance(item, dict) or "start_s" not in item or "text" not in item:
            raise ConfigError(f"{path}: turn {i} needs 'start_s' and 'text'")
        try:
            start = float(item["start_s"])
            end = None if item.get("end_s") is None else float(item["end_s"])
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: turn {i}: start_s/end_s must be numbers") from None
        turns.append(_turn(start, end, str(item["text"]), where))
    return turns


def _turn(start: float, end: float | None, words: str, where: SourceLocation) -> ScriptedTurn:
    if not math.isfinite(start) or start < 0:
        raise ConfigError(f"turn start {start} must be a time >= 0 s", location=where)
    if end is not None and not (math.isfinite(end) and end >= start):
        raise ConfigError(f"turn end {end} must not be before its start {start}", location=where)
    return ScriptedTurn(start, end, words.strip())


# -- synthetic callers ------------------------------------------------------------------------

_RATE = 16000


def _voiced(samples: int, rate: int) -> np.ndarray[Any, np.dtype[np.int16]]:
    # A 140 Hz buzz with harmonics and a ~4 Hz syllable envelope: every VAD here
    # calls it speech, and it is cheap to make. Not words: the modelled STT does
    # not listen, it takes the script's words.
    t = np.arange(samples, dtype=np.float64) / rate
    tone = sum(np.sin(2 * math.pi * 140 * k * t) / k for k in (1, 2, 3, 5))
    envelope = 0.55 + 0.45 * np.sin(2 * math.pi * 4 * t)
    return np.asarray(tone * envelope * 5000, dtype="<i2")


def synthesize(
    path: str | os.PathLike[str],
    turns: int,
    *,
    speech_s: float | Sequence[float] = 1.5,
    gap_s: float = 4.0,
    lead_s: float = 1.0,
    tail_s: float = 3.0,
    words: Sequence[str] = ("Can you help me with my booking?", "Yes, that's right."),
) -> Conversation:
    """Write a synthetic caller to ``path`` (a ``.wav``) and its script (``.txt``).

    ``turns`` turns of voiced sound, ``speech_s`` long (one value, or one per
    turn, cycled), ``gap_s`` of silence after each for the bot to answer
    (``lead_s`` before the first, ``tail_s`` after the last). The words of
    turn ``i`` are ``words[i % len(words)]``. Returns the loaded conversation.
    """
    if turns < 1:
        raise ConfigError("a synthetic conversation needs at least one turn")
    lengths = [speech_s] if isinstance(speech_s, (int, float)) else list(speech_s)
    wav = Path(path).with_suffix(".wav")
    wav.parent.mkdir(parents=True, exist_ok=True)
    parts = [np.zeros(round(lead_s * _RATE), dtype="<i2")]
    lines: list[str] = []
    at = parts[0].size  # samples so far: times come from counts, never accumulated
    for i in range(turns):
        voiced = _voiced(round(float(lengths[i % len(lengths)]) * _RATE), _RATE)
        parts.append(voiced)
        start_s, end_s = at / _RATE, (at + voiced.size) / _RATE
        lines.append(f"{start_s:.3f}\t{end_s:.3f}\t{words[i % len(words)]}\n")
        pause = tail_s if i == turns - 1 else gap_s
        parts.append(np.zeros(round(pause * _RATE), dtype="<i2"))
        at += voiced.size + parts[-1].size
    write_wav(wav, AudioFormat(_RATE), np.concatenate(parts).tobytes())
    wav.with_suffix(".txt").write_text("".join(lines), encoding="utf-8")
    return load_conversation(wav)
