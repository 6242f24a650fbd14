"""Test-only nodes for turn-taking: a scripted bot, a scripted VAD/STT, a script of events.

The real VAD and STT nodes are not needed to test turn-taking: these stand-ins
publish the same events and frames at scripted times on the session clock, so
every test is deterministic on the virtual clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from vbgraph.clock import VirtualClock
from vbgraph.events import (
    BargeInCancelled,
    BargeInStarted,
    Event,
    InterruptionsDisabled,
    InterruptionsEnabled,
    TurnEnded,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame, TranscriptFrame, Word
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult

FMT = AudioFormat(16000)
MS = 1_000_000
EVENTS: dict[str, type[Event]] = {
    "user_started": UserSpeechStarted,
    "user_stopped": UserSpeechStopped,
    "barge_in_started": BargeInStarted,
    "barge_in_cancelled": BargeInCancelled,
    "interruptions_disabled": InterruptionsDisabled,
    "interruptions_enabled": InterruptionsEnabled,
    "turn_ended": TurnEnded,
}


def utterance(index: int, ms: float, fmt: AudioFormat = FMT) -> bytes:
    """The bot's utterance ``index``: a ramp no two utterances share, never zero (not silence)."""
    n = fmt.samples_for_ms(ms)
    values = (np.arange(n) % 997) + 1 + 1000 * (index + 1)
    return np.repeat(values, fmt.channels).astype("<i2").tobytes()


class Bot(Node):
    """A TTS stand-in: speaks utterances in bursts, faster than real time.

    Utterance 0 is a greeting at ``greeting_ms`` (if ``greeting``); utterance k
    answers the k-th ``TurnEnded``. Frames carry the epoch current when the
    utterance began; a polite bot stops when the epoch changes, a ``sloppy``
    one keeps sending its stale frames (the runtime must drop them).
    """

    type_name: ClassVar[str] = "test.bot"
    subscribes: ClassVar[tuple[type[Event], ...]] = (TurnEnded,)

    class Params(NodeParams):
        greeting: bool = Field(True, description="Speak utterance 0 first.")
        greeting_ms: float = Field(0, description="When the greeting starts.")
        replies: int = Field(0, description="How many turns to answer.")
        utterance_ms: float = Field(2000, description="Length of each utterance.")
        burst_ms: float = Field(100, description="Length of each burst.")
        sloppy: bool = Field(False, description="Keep sending after an interruption.")
        disclaimer: bool = Field(False, description="Mark the greeting uninterruptible.")

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, Bot.Params)
        self.p = params
        self.turns: asyncio.Queue[str] | None = None
        self.spoken: list[tuple[int, int, int]] = []  # (utterance, epoch, bytes sent)

    def on_event(self, event: Event) -> None:
        if self.turns is not None and isinstance(event, TurnEnded):
            self.turns.put_nowait(event.text)

    async def run(self) -> None:
        self.turns = asyncio.Queue()
        p = self.p
        if p.greeting:
            await self.ctx.clock.sleep_until_ns(round(p.greeting_ms * MS))
            if p.disclaimer:
                self.ctx.publish(InterruptionsDisabled())
            await self.speak(0)
        for k in range(1, p.replies + 1):
            await self.turns.get()
            await self.speak(k)

    async def speak(self, index: int) -> None:
        data = utterance(index, self.p.utterance_ms)
        step = FMT.bytes_for_ms(self.p.burst_ms)
        epoch = self.ctx.epoch
        sent = 0
        for start in range(0, len(data), step):
            if self.ctx.epoch != epoch and not self.p.sloppy:
                break
            self.emit("out", AudioFrame(data[start : start + step], FMT, epoch=epoch))
            sent += len(data[start : start + step])
            await self.ctx.drain()
            await asyncio.sleep(0)
        self.spoken.append((index, epoch, sent))


class Script(Node):
    """Publishes events (or interrupts the session) at scripted session times."""

    type_name: ClassVar[str] = "test.script"

    class Params(NodeParams):
        steps: list[tuple[float, str]] = Field(
            default_factory=list, description="(ms, event name or 'interrupt')."
        )

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, Script.Params)
        self.steps = params.steps
        self.interrupted_at: list[int] = []

    async def run(self) -> None:
        for ms, what in self.steps:
            await self.ctx.clock.sleep_until_ns(round(ms * MS))
            if what == "interrupt":
                self.interrupted_at.append(self.ctx.now_ns())
                self.ctx.interrupt("script")
            else:
                self.ctx.publish(EVENTS[what]())


class ScriptedVadStt(Node):
    """A VAD + STT stand-in on the caller's audio: acts when the audio reaches scripted times.

    ``steps`` are (ms of audio, action): ``start`` / ``stop`` publish
    ``UserSpeechStarted/Stopped``; ``interim:text`` and ``final:text`` emit
    transcripts. The audio itself (real speech and silence) is checked to be
    loud where the script says speech starts, so the script matches the clip.
    """

    type_name: ClassVar[str] = "test.vad_stt"

    class Params(NodeParams):
        steps: list[tuple[float, str]] = Field(default_factory=list, description="Script.")

    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port(rates=(16000,), channels=(1,))}
    outputs: ClassVar[Mapping[str, Port]] = {"transcript": frame_port(TranscriptFrame)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, ScriptedVadStt.Params)
        self.steps = list(params.steps)
        self.loudness_at_start: list[float] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        end_ns = frame.pts + frame.duration_ns
        while self.steps and round(self.steps[0][0] * MS) < end_ns:
            _, action = self.steps.pop(0)
            kind, _, text = action.partition(":")
            if kind == "start":
                samples = np.frombuffer(bytes(frame.data), dtype="<i2").astype(np.float64)
                self.loudness_at_start.append(float(np.sqrt(np.mean(samples**2))))
                self.ctx.publish(UserSpeechStarted())
            elif kind == "stop":
                self.ctx.publish(UserSpeechStopped())
            else:
                now = self.ctx.now_ns()
                words = tuple(Word(w, now, now) for w in text.split())
                self.emit(
                    "transcript",
                    TranscriptFrame(
                        text, final=kind == "final", words=words, pts=now, epoch=self.ctx.epoch
                    ),
                )


class Sink(Node):
    """Keeps every frame with its arrival time and the session epoch then."""

    type_name: ClassVar[str] = "test.turn_sink"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[Frame] = []
        self.arrivals: list[int] = []

    def process(self, port: str, frame: Frame) -> None:
        self.frames.append(frame)
        self.arrivals.append(self.ctx.now_ns())

    @property
    def audio(self) -> list[tuple[int, AudioFrame]]:
        """(arrival ns, frame) of every audio frame."""
        return [
            (t, f) for t, f in zip(self.arrivals, self.frames, strict=True) if type(f) is AudioFrame
        ]

    def audio_of(self, epoch: int) -> bytes:
        """The audio of one epoch, joined."""
        return b"".join(bytes(f.data) for _, f in self.audio if f.epoch == epoch)


def registry() -> Registry:
    """Built-ins plus the nodes above."""
    reg = Registry(load_entry_points=False, parent=default_registry())
    for cls in (Bot, Script, ScriptedVadStt, Sink):
        reg.add(cls)
    return reg


class Run:
    """A finished session: result, node instances and every bus event."""

    def __init__(self, result: SessionResult, nodes: Mapping[str, Node], events: list[Event]):
        self.result = result
        self.nodes = nodes
        self.events = events

    def node(self, node_id: str, cls: type[Any]) -> Any:
        node = self.nodes[node_id]
        assert isinstance(node, cls)
        return node

    def times(self, event_type: type[Event]) -> list[int]:
        """Session times (ns) at which events of this type were published."""
        return [e.pts for e in self.events if type(e) is event_type]

    def of(self, event_type: type[Event]) -> list[Event]:
        return [e for e in self.events if type(e) is event_type]


def session_of(graph: Graph) -> tuple[Session, Any]:
    """A session of ``graph`` and a listener for its events."""
    session = Session(graph.compile(registry()), debug=True)
    return session, session.events(capacity=100_000)


async def run_session(graph: Graph) -> Run:
    """Run one session of ``graph`` to its end (inside a running loop)."""
    session, listener = session_of(graph)
    result = await session.run()
    return Run(result, session.nodes, listener.drain())


def run(graph: Graph) -> Run:
    """Run one session of ``graph`` on a fresh virtual clock."""
    return VirtualClock().run(run_session(graph), debug=True)
