"""Small node types used by the runtime tests (registered in a private registry)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from vbgraph.events import Event, UserSpeechStarted
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame
from vbgraph.node import Node, NodeParams, Port, audio_port, frame_port
from vbgraph.registry import Registry, default_registry

FMT = AudioFormat(16000)
CHUNK = b"\x01\x00" * 320  # 20 ms at 16 kHz


class SourceParams(NodeParams):
    frames: int = 10
    paced: bool = True
    interrupt_at: int = -1


class Source(Node):
    """Emits ``frames`` 20 ms frames, paced on the session clock."""

    type_name = "t.source"
    Params = SourceParams
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(fixed=FMT)}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.emitted = 0

    async def run(self) -> None:
        p = self.params
        assert isinstance(p, SourceParams)
        for i in range(p.frames):
            if i == p.interrupt_at:
                self.ctx.interrupt("test")
            pts = i * 20_000_000
            self.emit("out", AudioFrame(CHUNK, FMT, pts=pts, epoch=self.ctx.epoch))
            self.emitted += 1
            await self.ctx.drain()
            if p.paced:
                await self.ctx.clock.sleep_until_ns(pts + 20_000_000)


class Pass(Node):
    """Sync passthrough."""

    type_name = "t.pass"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    def process(self, port: str, frame: Frame) -> None:
        self.emit("out", frame)


class SlowParams(NodeParams):
    delay_ms: float = 1.0


class Slow(Node):
    """Async passthrough that takes ``delay_ms`` per frame."""

    type_name = "t.slow"
    Params = SlowParams
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    async def process(self, port: str, frame: Frame) -> None:
        p = self.params
        assert isinstance(p, SlowParams)
        await asyncio.sleep(p.delay_ms / 1000)
        self.emit("out", frame)


class SlowInterruptible(Slow):
    """Like ``t.slow`` but its work is cancelled by interruptions."""

    type_name = "t.slow_interruptible"
    interruptible = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.interrupted_epochs: list[int] = []

    def on_interrupt(self, epoch: int) -> None:
        self.interrupted_epochs.append(epoch)


class Sink(Node):
    """Sync sink keeping every frame and the events it saw."""

    type_name = "t.sink"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.frames: list[Frame] = []
        self.ended = False
        self.epochs_at_arrival: list[int] = []

    def process(self, port: str, frame: Frame) -> None:
        self.frames.append(frame)
        self.epochs_at_arrival.append(self.ctx.epoch)

    def on_end(self) -> None:
        self.ended = True


class InterruptibleSink(Sink):
    """A sink that drops stale frames (like transport-out)."""

    type_name = "t.sink_interruptible"
    interruptible = True


class Boom(Node):
    """Raises on every ``fail_every``-th frame, passes the others on."""

    type_name = "t.boom"

    class Params(NodeParams):
        fail_every: int = 2

    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen = 0

    def process(self, port: str, frame: Frame) -> None:
        self.seen += 1
        p = self.params
        assert isinstance(p, Boom.Params)
        if self.seen % p.fail_every == 0:
            raise ValueError(f"bad frame {self.seen}")
        self.emit("out", frame)


class Stubborn(Node):
    """An async node that ignores cancellation (a bug the runtime must survive)."""

    type_name = "t.stubborn"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    async def process(self, port: str, frame: Frame) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue


class Listener(Node):
    """Records the bus events it is subscribed to."""

    type_name = "t.listener"
    subscribes = (UserSpeechStarted,)
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.events: list[Event] = []

    def process(self, port: str, frame: Frame) -> None:
        if len(self.events) == 0 and frame.pts == 40_000_000:
            self.ctx.publish(UserSpeechStarted())

    def on_event(self, event: Event) -> None:
        self.events.append(event)


def make_registry() -> Registry:
    """A registry with the test nodes, falling back to the built-ins."""
    reg = Registry(load_entry_points=False, parent=default_registry())
    for cls in (
        Source,
        Pass,
        Slow,
        SlowInterruptible,
        Sink,
        InterruptibleSink,
        Boom,
        Stubborn,
        Listener,
    ):
        reg.add(cls)
    return reg
