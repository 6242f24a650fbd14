"""Shared tools for the stt.deepgram node tests: a clip source, a sink, and a runner."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from vbgraph.clock import VirtualClock
from vbgraph.events import Event, Metric, NodeError
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame, TranscriptFrame
from vbgraph.graph.load import loads
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.providers.deepgram.node import SttDeepgram
from vbgraph.providers.deepgram.stream import LiveStream
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.testing.fakes.deepgram import FakeDeepgram

TESTDATA = Path(__file__).resolve().parents[3].parent / "shared" / "testdata" / "librivox"
REFERENCE = {
    line.rsplit("(", 1)[1].strip(" )"): line.split("<s>")[1].split("</s>")[0].strip()
    for line in (TESTDATA / "transcription").read_text().splitlines()
    if line.strip()
}
FMT = AudioFormat(16000)
S = 1_000_000_000


def clip(number: int) -> Path:
    """The librivox clip ``sense_and_sensibility_01_austen_64kb-0<number>.wav``."""
    return TESTDATA / f"sense_and_sensibility_01_austen_64kb-0{number}.wav"


def text(number: int) -> str:
    """The reference transcription of clip ``number``."""
    return REFERENCE[clip(number).stem]


def pcm(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return bytes(w.readframes(w.getnframes()))


class Clips(Node):
    """Test source: real clips as 16 kHz PCM16, 20 ms frames paced on the session clock.

    ``gap_ms`` of digital silence comes before, between and after the clips.
    With ``hold`` it then waits for :attr:`release` and plays ``after``.
    """

    type_name: ClassVar[str] = "test.clips"

    class Params(NodeParams):
        paths: list[str] = Field(default_factory=list)
        after: list[str] = Field(default_factory=list)
        gap_ms: int = 1000
        hold: bool = False

    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.release = asyncio.Event()
        self.held_at: int | None = None
        self._sent = 0

    async def run(self) -> None:
        p = self.params
        assert isinstance(p, Clips.Params)
        await self._play(p.paths, p.gap_ms)
        if p.hold:
            self.held_at = self.ctx.now_ns()
            await self.release.wait()
            self._sent = self.ctx.now_ns() * 16000 // S  # go on from now
            await self._play(p.after, p.gap_ms)

    async def _play(self, paths: list[str], gap_ms: int) -> None:
        gap = bytes(32 * gap_ms)
        data = gap + b"".join(pcm(Path(path)) + gap for path in paths) if paths else b""
        for i in range(0, len(data), 640):
            pts = self._sent * S // 16000
            await self.ctx.clock.sleep_until_ns(pts)
            chunk = data[i : i + 640]
            self.emit("out", AudioFrame(chunk, FMT, pts=pts, epoch=self.ctx.epoch))
            self._sent += len(chunk) // 2
            await self.ctx.drain()


class Transcripts(Node):
    """Test sink: keeps transcript frames with their arrival time."""

    type_name: ClassVar[str] = "test.transcripts"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port(TranscriptFrame)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[TranscriptFrame] = []
        self.arrivals: list[int] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, TranscriptFrame)
        self.frames.append(frame)
        self.arrivals.append(self.ctx.now_ns())


def registry() -> Registry:
    reg = Registry(load_entry_points=False)
    for cls in default_registry():
        reg.add(cls)
    reg.add(Clips)
    reg.add(Transcripts)
    return reg


def graph(
    fake: FakeDeepgram,
    clips: list[int],
    *,
    stt: str = "",
    vad: str | None = None,
    after: list[int] = (),  # type: ignore[assignment]
    hold: bool = False,
    gap_ms: int = 1000,
    key: str = "dg-test",
    vad_port: str = "out",
) -> str:
    """YAML: clips -> [vad ->] stt.deepgram (at the fake) -> transcripts."""
    paths = ", ".join(f"'{clip(n)}'" for n in clips)
    later = ", ".join(f"'{clip(n)}'" for n in after)
    key_item = f"api_key: {key}, " if key else ""
    extra = f", {stt}" if stt else ""
    edges = (
        f"mic -> vad, vad.{vad_port} -> stt, stt -> out" if vad is not None else "mic -> stt -> out"
    )
    return f"""
nodes:
  mic: {{type: test.clips, paths: [{paths}], after: [{later}], hold: {str(hold).lower()},
         gap_ms: {gap_ms}}}
  {f"vad: {{type: vad.native{vad}}}" if vad is not None else ""}
  stt: {{type: stt.deepgram, {key_item}url: '{fake.url}'{extra}}}
  out: {{type: test.transcripts}}
edges: [{edges}]
"""


@dataclass
class Run:
    """A finished session against the fake."""

    session: Session
    result: SessionResult
    events: list[Event]
    fake: FakeDeepgram

    @property
    def stt(self) -> SttDeepgram:
        node = self.session.nodes["stt"]
        assert isinstance(node, SttDeepgram)
        return node

    @property
    def stream(self) -> LiveStream:
        stream = self.stt.stream
        assert stream is not None
        return stream

    @property
    def mic(self) -> Clips:
        node = self.session.nodes["mic"]
        assert isinstance(node, Clips)
        return node

    @property
    def frames(self) -> list[TranscriptFrame]:
        node = self.session.nodes["out"]
        assert isinstance(node, Transcripts)
        return node.frames

    @property
    def finals(self) -> list[str]:
        return [f.text for f in self.frames if f.final]

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]

    def metric(self, name: str) -> list[float]:
        return [e.value for e in self.of(Metric) if e.metric == name]

    @property
    def errors(self) -> list[NodeError]:
        return list(self.result.errors)


During = Callable[[Session, FakeDeepgram], Awaitable[None]]


def run(
    clips: list[int],
    script: list[str] | None = None,
    *,
    during: During | None = None,
    prepare: Callable[[FakeDeepgram], None] | None = None,
    fake_options: dict[str, Any] | None = None,
    **graph_options: Any,
) -> Run:
    """One session on virtual time against a fresh fake; ``script`` defaults to the clips'."""
    if script is None:
        script = [text(n) for n in [*clips, *graph_options.get("after", [])]]

    async def main() -> Run:
        # A safety net against hangs (virtual seconds: keep-alive timers never let it idle).
        async with asyncio.timeout(300):
            async with FakeDeepgram(script, **(fake_options or {})) as fake:
                if prepare is not None:
                    prepare(fake)
                session = Session(loads(graph(fake, clips, **graph_options)).compile(registry()))
                listener = session.events()
                await session.start()
                if during is not None:
                    await during(session, fake)
                result = await session.wait()
                return Run(session, result, listener.drain(), fake)

    return VirtualClock().run(main(), debug=True)
