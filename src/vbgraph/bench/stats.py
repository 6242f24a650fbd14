"""Per-turn latency records and their percentiles.

Each user turn is cut into consecutive *stages* along the path from the end
of the caller's speech to the bot's first audio, so the stages of a turn add
up to what the caller perceives (``perceived``)::

    speech ends ─vad─▶ VAD says stopped ─stt─▶ transcript ─turn─▶ turn ends
      ─llm─▶ first token ─tts─▶ first synthesized audio ─playout─▶ bot audible

* ``vad``: the script's end of the turn to ``UserSpeechStopped`` being
  published (the VAD's hangover, ``stop_ms``, plus frame rounding). Without
  a script, from the VAD's own stamp of the last speech frame.
* ``stt``: ``UserSpeechStopped`` to the final transcript (``TranscriptReceived``).
* ``turn``: transcript to ``TurnEnded`` (the turn detector's wait).
* ``llm``: turn end to the first token (the LLM's ``*ttft_ms`` metric).
* ``tts``: first token to the first synthesized audio (the TTS's ``*ttfb_ms``
  metric): waiting for a speakable first clause, plus the TTS's own TTFB.
* ``playout``: first synthesized audio to ``BotSpeechStarted``.

And two totals: ``voice_to_voice`` (``log.turns``' figure: the VAD's stamp of
the end of speech to the first bot audio) and ``perceived`` (the script's end
of speech to the first bot audio: what the caller waits). A stage whose end
points were not both seen (no metric from a real provider, a turn cut short)
is ``None`` and left out of the percentiles.

Percentiles interpolate linearly between the two nearest ranks (NumPy's
default, Excel's ``PERCENTILE.INC``): the p50 of ``[1, 2, 3, 4]`` is 2.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "QUANTILES",
    "STAGES",
    "TOTALS",
    "InterruptionRecord",
    "Summary",
    "TurnRecord",
    "percentile",
    "summarize",
    "summarize_stages",
]

STAGES: tuple[str, ...] = ("vad", "stt", "turn", "llm", "tts", "playout")
"""The consecutive stages of a turn, in path order."""
TOTALS: tuple[str, ...] = ("voice_to_voice", "perceived")
"""The end-to-end figures of a turn."""
QUANTILES: tuple[int, ...] = (50, 90, 95, 99)
"""The percentiles reported for every stage."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolating linearly; NaN if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, percentiles, mean and range of one figure (ms); NaN figures when empty."""

    n: int
    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain data for JSON (NaN becomes ``None``)."""
        out: dict[str, float | int | None] = {"n": self.n}
        for name in ("p50", "p90", "p95", "p99", "mean", "min", "max"):
            value = getattr(self, name)
            out[name] = None if math.isnan(value) else round(value, 3)
        return out


def summarize(values: Iterable[float | None]) -> Summary:
    """The :class:`Summary` of the values that are not ``None``."""
    data = [float(v) for v in values if v is not None]
    if not data:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan)
    p50, p90, p95, p99 = (percentile(data, q) for q in QUANTILES)
    return Summary(len(data), p50, p90, p95, p99, sum(data) / len(data), min(data), max(data))


@dataclass(slots=True)
class TurnRecord:
    """One user turn of one session: ``log.turns``' record plus the bench's stages.

    ``log`` is the ``log.turns`` line unchanged (times in session seconds,
    its own ``stt_ms`` … ``voice_to_voice_ms``); ``stages`` holds the
    consecutive stages and totals described in this module's docstring, in ms.
    ``speech_end_s`` is the script's end of the turn (``None`` without one).
    """

    session: str
    conversation: str
    index: int
    log: Mapping[str, Any]
    stages: dict[str, float | None] = field(default_factory=dict)
    speech_end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "session": self.session,
            "conversation": self.conversation,
            "turn": self.index,
            "speech_end_s": self.speech_end_s,
            "stages_ms": dict(self.stages),
            "log": dict(self.log),
        }


@dataclass(slots=True)
class InterruptionRecord:
    """The caller spoke over the bot: what happened and how fast (session s, ms).

    ``outcome``: ``interrupted`` (the bot was cut off), ``resumed`` (a false
    interruption: the bot paused, then went on) or ``ignored`` (the bot never
    paused: too short, or interruptions were off). ``silenced_ms`` is the
    caller's speech start to the bot falling silent (paused or stopped);
    ``interrupt_ms`` to the ``Interrupt`` that cancelled the reply.
    """

    session: str
    speech_start_s: float
    outcome: str = "ignored"
    silenced_ms: float | None = None
    interrupt_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "session": self.session,
            "speech_start_s": round(self.speech_start_s, 3),
            "outcome": self.outcome,
            "silenced_ms": self.silenced_ms,
            "interrupt_ms": self.interrupt_ms,
        }


def summarize_stages(turns: Iterable[TurnRecord]) -> dict[str, Summary]:
    """A :class:`Summary` per stage and total, over ``turns``."""
    turns = list(turns)
    return {name: summarize(t.stages.get(name) for t in turns) for name in STAGES + TOTALS}
