"""Helpers for the ``s2s.openai_realtime`` tests: caller audio from real speech, graphs, runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from tests.conftest import TESTDATA

import vbgraph.providers.openai_realtime.node  # noqa: F401  (registers s2s.openai_realtime)
from vbgraph.clock import VirtualClock
from vbgraph.dsp.resample import Resampler
from vbgraph.events import Event
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav, write_wav
from vbgraph.node import Node, NodeContext, NodeParams, Port, frame_port
from vbgraph.providers.openai_realtime.node import OpenAIRealtime
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.testing.fakes.openai_realtime import FakeRealtime

FMT24 = AudioFormat(24000)
MS = 1_000_000
CLIPS = {
    "0880": "he was not an ill disposed young man",
    "0930": "he might even have been made amiable himself",
    "0890": "unless to be rather cold hearted and rather selfish is to be ill disposed",
}
T = TypeVar("T")


def clip(name: str, rate: int = 24000) -> bytes:
    """A LibriVox clip (16 kHz), resampled to ``rate`` with vbgraph's resampler."""
    fmt, data = read_wav(TESTDATA / f"sense_and_sensibility_01_austen_64kb-{name}.wav")
    assert fmt == AudioFormat(16000)
    resampler = Resampler(16000, rate)
    return resampler.process(data) + resampler.flush()


def onset_ms(name: str) -> int:
    """Where speech begins in a clip: its first 20 ms louder than -40 dBFS."""
    samples = np.frombuffer(clip(name), "<i2").astype(np.float64)
    frames = samples[: len(samples) // 480 * 480].reshape(-1, 480)
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) / 32768 + 1e-9)
    return int(np.argmax(level > -40)) * 20


def mic_wav(path: Path, parts: list[tuple[str, Any]], rate: int = 24000) -> Path:
    """A WAV of ("silence", ms) and ("clip", name) parts, mono int16 at ``rate``."""
    fmt = AudioFormat(rate)
    out = bytearray()
    for kind, value in parts:
        out += bytes(fmt.bytes_for_ms(value)) if kind == "silence" else clip(value, rate)
    write_wav(path, fmt, bytes(out))
    return path


def ms_of(parts: list[tuple[str, Any]], upto: int, rate: int = 24000) -> int:
    """Where part ``upto`` starts in the WAV :func:`mic_wav` makes, in ms."""
    fmt = AudioFormat(rate)
    total = 0
    for kind, value in parts[:upto]:
        total += fmt.bytes_for_ms(value) if kind == "silence" else len(clip(value, rate))
    return total * 1000 // fmt.frame_bytes // rate


class Sink(Node):
    """Keeps every frame with its arrival time."""

    type_name: ClassVar[str] = "test.rt_sink"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[Frame] = []
        self.arrivals: list[int] = []

    def process(self, port: str, frame: Frame) -> None:
        self.frames.append(frame)
        self.arrivals.append(self.ctx.now_ns())

    def audio(self, epoch: int | None = None) -> bytes:
        """The audio received (of one epoch), joined."""
        return b"".join(
            bytes(f.data)
            for f in self.frames
            if type(f) is AudioFrame and (epoch is None or f.epoch == epoch)
        )


def registry() -> Registry:
    """Built-ins (s2s.openai_realtime included) plus the test sink."""
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(Sink)
    return reg


class Run:
    """A finished session: result, nodes, events."""

    def __init__(self, session: Session, result: SessionResult, events: list[Event]) -> None:
        self.session = session
        self.result = result
        self.events = events

    def of(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if type(e) is kind]

    def node(self, node_id: str, kind: type[T]) -> T:
        node = self.session.nodes[node_id]
        assert isinstance(node, kind)
        return node

    @property
    def s2s(self) -> OpenAIRealtime:
        return self.node("s2s", OpenAIRealtime)

    def sink(self, node_id: str) -> Sink:
        return self.node(node_id, Sink)


def conversation(
    fake: FakeRealtime, mic: Path, play: bool = True, **params: Any
) -> tuple[Graph, dict[str, Any]]:
    """mic (real time) -> s2s -> audio.playout -> out; s2s.text and .transcript to sinks."""
    g = Graph("s2s")
    source = g.add("file.source", id="mic", path=str(mic), realtime=True)
    params.setdefault("url", fake.url)
    params.setdefault("api_key", "sk-test")
    s2s = g.add("s2s.openai_realtime", id="s2s", **params)
    out = g.add("test.rt_sink", id="out")
    g.connect(source, s2s)
    if play:
        g.chain(s2s, g.add("audio.playout", id="play"), out)
    else:
        g.connect(s2s, out)
    g.connect(s2s["text"], g.add("test.rt_sink", id="text"))
    g.connect(s2s["transcript"], g.add("test.rt_sink", id="transcript"))
    return g, {"mic": source, "s2s": s2s, "out": out}


async def run_graph(
    graph: Graph, during: Callable[[Session], Awaitable[None]] | None = None
) -> Run:
    """Run one session of ``graph`` to its end, collecting every bus event."""
    session = Session(graph.compile(registry()), debug=True)
    listener = session.events(capacity=100_000)
    await session.start()
    if during is not None:
        await during(session)
    result = await session.wait()
    return Run(session, result, listener.drain())


def virtual(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` on a fresh virtual clock (asyncio debug mode on)."""

    async def guarded() -> T:
        return await main()

    return VirtualClock().run(guarded(), debug=True)


def real(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` on a real loop, with a safety net against hangs (not a timing check)."""

    async def guarded() -> T:
        async with asyncio.timeout(30):
            return await main()

    return asyncio.run(guarded(), debug=True)
