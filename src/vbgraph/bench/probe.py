"""What ``vbgraph bench`` watches in each session: bus events, stamped when published.

Theory of operation
-------------------
Turn-taking is already followed by the graph's ``log.turns`` node (which
user turn a reply belongs to, discarded turns, cut replies): the bench reuses
its records instead of doing that again. What ``log.turns`` does not keep is
the few extra instants the stages need (see :mod:`vbgraph.bench.stats`): when
``UserSpeechStopped`` was *published* (its ``pts`` is back-dated to the last
speech frame), the LLM's first token and the TTS's first audio (their
``*ttft_ms`` / ``*ttfb_ms`` metrics are published at that moment). A
:class:`SessionProbe` subscribes to every event on the session's bus, as a
synchronous handler, so it stamps each with the session clock at the instant
of publication, then joins those stamps to the ``log.turns`` records by
``pts`` (which ``log.turns`` rounds to the millisecond).

It also follows the caller speaking over the bot (barge-in) into
:class:`~vbgraph.bench.stats.InterruptionRecord` s.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..events import (
    BargeInCancelled,
    BargeInStarted,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Interrupt,
    Metric,
    TranscriptReceived,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from .conversation import Conversation
from .stats import InterruptionRecord, TurnRecord

if TYPE_CHECKING:
    from ..runtime.session import Session

__all__ = ["SessionProbe"]

_NS = 1_000_000_000
_MATCH_NS = 600_000
"""log.turns rounds times to 1 ms: a pts within 0.6 ms of its figure is the same event."""
_SCRIPT_MATCH_S = 1.0
"""A scripted turn ends at most this far from where the VAD says speech ended."""


def _ms(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else round((b - a) / 1e6, 3)


class SessionProbe:
    """Stamps one session's bus events; turns ``log.turns`` records into bench records."""

    def __init__(self, session: Session, conversation: Conversation) -> None:
        self.session_id = session.session_id
        self.conversation = conversation
        self._clock = session.clock
        # (pts, published) per kind of instant, in publication order.
        self._stamps: dict[str, list[tuple[int, int]]] = {
            k: [] for k in ("vad", "stt", "turn", "bot")
        }
        self._tokens: list[int] = []  # an LLM's first token (llm.*ttft* metric)
        self._audio: list[int] = []  # a TTS's first audio of a piece (tts.*ttfb* metric)
        self.interruptions: list[InterruptionRecord] = []
        self._open: InterruptionRecord | None = None
        self._open_at = 0
        self._cut: tuple[InterruptionRecord, int] | None = None  # closed by a cut, just now
        self._paused = False
        self._bot_speaking = False
        session.bus.subscribe(Event, "bench", self.on_event)

    # -- events ------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Stamp ``event`` with the session time now (called as it is published)."""
        now = self._clock.now_ns()
        kind = type(event)
        if kind is UserSpeechStopped:
            self._stamps["vad"].append((event.pts, now))
            if self._open is not None and not self._paused:
                self._close("ignored")  # stopped before it could pause the bot
        elif kind is TranscriptReceived:
            assert isinstance(event, TranscriptReceived)
            if event.final and event.text.strip():
                self._stamps["stt"].append((event.pts, now))
        elif kind is TurnEnded:
            self._stamps["turn"].append((event.pts, now))
        elif kind is Metric:
            assert isinstance(event, Metric)
            name = event.metric
            if name.startswith("llm.") and "ttft" in name:
                self._tokens.append(now)
            elif name.startswith("tts.") and "ttfb" in name:
                self._audio.append(now)
        elif kind is BotSpeechStarted:
            self._stamps["bot"].append((event.pts, now))
            self._bot_speaking = True
        else:
            self._follow_interruption(event, now)

    def _follow_interruption(self, event: Event, now: int) -> None:
        kind = type(event)
        cut, self._cut = self._cut, None
        if kind is UserSpeechStarted:
            if self._bot_speaking and self._open is None:
                start = min(event.pts, now)
                self._open = InterruptionRecord(self.session_id, start / _NS)
                self._open_at, self._paused = start, False
            return
        record = self._open
        if kind is BotSpeechStopped:
            assert isinstance(event, BotSpeechStopped)
            self._bot_speaking = False
            if record is not None:
                if event.interrupted and record.silenced_ms is None:
                    record.silenced_ms = _ms(self._open_at, now)
                self._close("interrupted" if event.interrupted else record.outcome)
                if event.interrupted:
                    self._cut = (record, self._open_at)
        elif record is None:
            if kind is Interrupt and cut is not None:
                # The playout reports the bot stopped from inside session.interrupt(),
                # just before the Interrupt itself is published: same cut, same record.
                cut[0].interrupt_ms = _ms(cut[1], now)
        elif kind is BargeInStarted:
            self._paused = True
            if record.silenced_ms is None:
                record.silenced_ms = _ms(self._open_at, now)
        elif kind is Interrupt:
            record.outcome = "interrupted"
            record.interrupt_ms = _ms(self._open_at, now)
        elif kind is BargeInCancelled:
            self._close("resumed")

    def _close(self, outcome: str) -> None:
        if self._open is not None:
            self._open.outcome = outcome
            self.interruptions.append(self._open)
        self._open = None
        self._paused = False

    # -- records -----------------------------------------------------------------------

    def finish(self) -> None:
        """Close a barge-in still open when the session ended."""
        self._close(self._open.outcome if self._open is not None else "ignored")

    def turn_records(self, log: Sequence[Mapping[str, Any]]) -> list[TurnRecord]:
        """One :class:`TurnRecord` per ``log.turns`` record (in the same order)."""
        out: list[TurnRecord] = []
        for i, rec in enumerate(log):
            nxt = log[i + 1].get("turn_end_s") if i + 1 < len(log) else None
            out.append(self._record(i + 1, rec, nxt))
        return out

    def _record(self, index: int, rec: Mapping[str, Any], next_end_s: Any) -> TurnRecord:
        vad_stamp = _ns(rec.get("user_stop_s"))
        vad_pub = self._published("vad", vad_stamp)
        transcript = self._exact("stt", _ns(rec.get("transcript_s")))
        turn_end = self._exact("turn", _ns(rec.get("turn_end_s")))
        bot = self._exact("bot", _ns(rec.get("bot_start_s")))
        bound = bot if bot is not None else _ns(next_end_s)
        token = _first(self._tokens, turn_end, bound)
        audio = _first(self._audio, token if token is not None else turn_end, bound)
        end_s = self._scripted_end(rec.get("user_stop_s"))
        speech_end = _ns(end_s) if end_s is not None else vad_stamp
        points = [speech_end, vad_pub, transcript, turn_end, token, audio, bot]
        stages: dict[str, float | None] = {
            name: _ms(points[k], points[k + 1])
            for k, name in enumerate(("vad", "stt", "turn", "llm", "tts", "playout"))
        }
        stages["voice_to_voice"] = _ms(vad_stamp, bot)
        stages["perceived"] = _ms(speech_end, bot)
        return TurnRecord(self.session_id, self.conversation.name, index, rec, stages, end_s)

    def _published(self, kind: str, pts: int | None) -> int | None:
        """When the event of ``kind`` whose pts is ``pts`` was published."""
        if pts is None:
            return None
        for stamp, published in reversed(self._stamps[kind]):
            if abs(stamp - pts) <= _MATCH_NS:
                return published
        return None

    def _exact(self, kind: str, pts: int | None) -> int | None:
        """The publication time of that event, or ``pts`` itself if it was not seen."""
        found = self._published(kind, pts)
        return found if found is not None else pts

    def _scripted_end(self, user_stop_s: Any) -> float | None:
        if user_stop_s is None:
            return None
        best: float | None = None
        for turn in self.conversation.turns:
            if turn.end_s is None or turn.start_s > user_stop_s:
                continue
            gap = abs(turn.end_s - user_stop_s)
            if gap <= _SCRIPT_MATCH_S and (best is None or gap < abs(best - user_stop_s)):
                best = turn.end_s
        return best


def _ns(seconds: Any) -> int | None:
    return None if seconds is None else round(float(seconds) * _NS)


def _first(times: list[int], after: int | None, before: int | None) -> int | None:
    """The first of ``times`` (sorted) at or after ``after`` and not after ``before``."""
    if after is None:
        return None
    i = bisect.bisect_left(times, after)
    if i < len(times) and (before is None or times[i] <= before):
        return times[i]
    return None
