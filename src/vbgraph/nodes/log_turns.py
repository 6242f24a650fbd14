"""The ``log.turns`` node: one JSON line per conversation turn, with its latency breakdown."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

from pydantic import Field

from ..events import Event
from ..frames import Frame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port
from ..observability.turns import TURN_EVENTS, Turn, TurnTracker
from ..registry import register
from ._params import typed
from ._ports import any_frames

__all__ = ["LogTurns"]

_MS = 1_000_000
_PREVIEW = 40


def _s(t: int | None) -> float | None:
    return None if t is None else round(t / 1e9, 3)


def _ms(a: int | None, b: int | None) -> float | None:
    return None if a is None or b is None else round((b - a) / _MS, 1)


def _short(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


@register
class LogTurns(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: Hello there.}
          tts: {type: tts.piper}
          play: {type: audio.playout}
          turns: {type: log.turns, path: out/transcript.jsonl, quiet: true}
        edges: [agent -> tts -> play -> turns]

    Watches the bus and writes one JSON line per user turn to ``path``: what
    the user said (``TurnEnded``), the agent's reply and intent
    (``AgentReplied``), whether the reply was cut by a barge-in, the session
    times (seconds) of each step and the latency breakdown in ms:

    * ``stt_ms``: end of the user's speech (``UserSpeechStopped``, stamped at
      the last speech frame) to the transcript (``TranscriptReceived``): the
      VAD's hangover plus recognition;
    * ``endpointing_ms``: end of speech to the end of the turn (``TurnEnded``):
      the whole wait before the agent is asked (it includes ``stt_ms``, since
      the turn waits for the words);
    * ``agent_ms``: turn end to the agent's reply: its first token when the
      LLM reports one (``Metric("llm.*ttft_ms")``), else ``AgentReplied``;
    * ``tts_ms``: that to the first bot audio played (``BotSpeechStarted``);
    * ``voice_to_voice_ms``: end of speech to first bot audio
      (= endpointing + agent + tts); ``turn_to_voice_ms``: turn end to first
      bot audio (voice to voice without the endpointing wait).

    A turn's line is written when its reply stops playing (or is cut), or
    when the next turn ends, or at the end of the session; a step that never
    happened is ``null``. The greeting is not a turn. Unless ``quiet``, a
    progress line per turn goes to stdout as the bot starts answering::

        turn 2: "what time do you open" → "We open at 8." v2v 612 ms

    The input is optional and its frames are ignored: connect the last node
    of the bot's path (``audio.playout``) so the log stays open until the bot
    has finished speaking. ``written_path`` is the
    file (``None`` without ``path``). The file is replaced when the session
    starts; folders are created.
    """

    type_name: ClassVar[str] = "log.turns"
    subscribes: ClassVar[tuple[type[Event], ...]] = TURN_EVENTS

    class Params(NodeParams):
        """Parameters of ``log.turns``."""

        path: GraphPath | None = Field(
            None,
            description="The JSON-lines file, one line per turn; relative paths start at the "
            "graph file's folder (none: keep the turns in memory only).",
        )
        quiet: bool = Field(False, description="No progress line on stdout.")

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": any_frames(doc="Optional: frames that keep the log open (the bot's audio).")
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, LogTurns.Params)
        self._path = None if p.path is None else Path(p.path)
        self._quiet = p.quiet
        self._file: IO[str] | None = None
        # The turns themselves come from the shared tracker (vbgraph.observability.turns).
        self._tracker = TurnTracker(on_answered=self._show, on_finished=self._write)
        self.turns: list[dict[str, Any]] = []
        """Every line written, as dicts (for tests and inspection)."""
        self.written_path: Path | None = None
        """The file written, once a line is in it."""

    # -- data ------------------------------------------------------------------------

    def process(self, port: str, frame: Frame) -> None:
        """Frames only keep the node open; they are not looked at."""

    # -- events ----------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Follow each turn from the user's first word to the bot's first audio."""
        self._tracker.feed(event)

    # -- output ----------------------------------------------------------------------

    def _record(self, turn: Turn) -> dict[str, Any]:
        return {
            "turn": len(self.turns) + 1,
            "user": turn.text,
            "agent": turn.reply,
            "intent": turn.intent,
            "interrupted": turn.interrupted,
            "user_start_s": _s(turn.user_start),
            "user_stop_s": _s(turn.user_stop),
            "transcript_s": _s(turn.transcript),
            "turn_end_s": _s(turn.turn_end),
            "agent_s": _s(turn.agent),
            "bot_start_s": _s(turn.bot_start),
            "bot_stop_s": _s(turn.bot_stop),
            "stt_ms": _ms(turn.user_stop, turn.transcript),
            "stt_compute_ms": turn.stt_compute_ms,
            "endpointing_ms": _ms(turn.user_stop, turn.turn_end),
            "agent_ms": _ms(turn.turn_end, turn.first_reply),
            "tts_ms": _ms(turn.first_reply, turn.bot_start),
            "voice_to_voice_ms": _ms(turn.user_stop, turn.bot_start),
            "turn_to_voice_ms": _ms(turn.turn_end, turn.bot_start),
        }

    def _show(self, turn: Turn) -> None:
        if self._quiet or turn.shown or turn.reply is None:
            return  # a streamed reply not complete yet is shown when the turn is written
        turn.shown = True
        v2v = _ms(turn.user_stop, turn.bot_start)
        latency = "" if v2v is None else f" v2v {v2v:.0f} ms"
        n = len(self.turns) + 1
        line = f'turn {n}: "{_short(turn.text)}" → "{_short(turn.reply)}"{latency}'
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def _write(self, turn: Turn) -> None:
        """Write a finished turn."""
        self._show(turn)
        record = self._record(turn)
        self.turns.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def start(self) -> None:
        """Create (or empty) the file."""
        if self._path is not None and self._file is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self._path, "w", encoding="utf-8")  # noqa: SIM115 - kept open
            self.written_path = self._path

    def on_end(self) -> None:
        """The input ended: write a turn still waiting."""
        self._tracker.finish()

    def stop(self) -> None:
        """Write what is left and close the file."""
        self._tracker.finish()
        if self._file is not None:
            self._file.close()
            self._file = None
