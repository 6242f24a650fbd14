"""``check_node``: a conformance suite any node type can run, built-in or third-party.

.. code-block:: python

    from vbgraph.testing import check_node

    def test_my_node_conforms() -> None:
        check_node(MyNode, {"db": -6})

It runs the node in real sessions on a virtual clock, fed by a test source on
every input port and drained by counting sinks on every output port, and
checks what every node owes the graph around it:

* **well-formed**: type name, ``Params`` model, sync/async hooks consistent;
* **negotiation**: for an audio input in ``input_format`` (fixated to the
  port's caps) ``output_formats`` fixes every connected audio output, and the
  frames it emits are in that format;
* **drain on end**: the session ends, every output ends, no ``NodeError``;
* **reset on interrupt**: ``on_interrupt`` runs cleanly mid-stream, and no
  frame of an old epoch reaches the sinks after the interrupt;
* **bounded growth** (unless ``bounded=False``): memory held after feeding
  ``5 * frames`` frames is not more than after ``frames`` plus a small slack.

Each failure raises ``AssertionError`` naming the node type and the check.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..clock import VirtualClock
from ..formats import AudioCaps, AudioFormat
from ..frames import AudioFrame, Frame, TextFrame, TranscriptFrame
from ..graph.builder import Graph
from ..node import Node, NodeParams, Port, check_node_class, frame_port
from ..registry import Registry, default_registry
from ..runtime.session import Session

__all__ = ["ConformanceReport", "check_node"]


@dataclass
class ConformanceReport:
    """What :func:`check_node` observed (for tests that want to assert more)."""

    type_name: str
    output_formats: dict[str, AudioFormat] = field(default_factory=dict)
    frames_out: dict[str, int] = field(default_factory=dict)
    growth_bytes: int = 0


class _FeedParams(NodeParams):
    kind: str = "audio"
    rate: int = 16000
    channels: int = 1
    encoding: str = "pcm_s16le"
    frames: int = 50
    interrupt_at: int = -1


class _Feed(Node):
    """Test source: ``frames`` frames of the given kind, 20 ms apart on the session clock."""

    type_name = "_conformance.feed"
    Params = _FeedParams
    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port()}

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        p = params
        assert isinstance(p, _FeedParams)
        if p.kind != "audio":
            return {}
        return {"out": AudioFormat(p.rate, p.channels, p.encoding)}  # type: ignore[arg-type]

    async def run(self) -> None:
        p = self.params
        assert isinstance(p, _FeedParams)
        fmt = AudioFormat(p.rate, p.channels, p.encoding)  # type: ignore[arg-type]
        n = fmt.samples_for_ms(20)
        payload = _test_signal(fmt, n)
        for i in range(p.frames):
            pts = i * 20_000_000
            frame: Frame
            if p.kind == "audio":
                frame = AudioFrame(payload, fmt, pts=pts, epoch=self.ctx.epoch)
            elif p.kind == "transcript":
                frame = TranscriptFrame(f"word {i}.", pts=pts, epoch=self.ctx.epoch)
            else:
                frame = TextFrame(f"Sentence number {i}.", pts=pts, epoch=self.ctx.epoch)
            if i == p.interrupt_at:
                self.ctx.interrupt("conformance check")
                frame = _restamp(frame, self.ctx.epoch)
            self.emit("out", frame)
            await self.ctx.drain()
            await self.ctx.clock.sleep_until_ns(pts + 20_000_000)


class _Count(Node):
    """Test sink: counts frames, checks formats and epochs."""

    type_name = "_conformance.count"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port()}

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.count = 0
        self.formats: set[AudioFormat] = set()
        self.stale_after_interrupt = 0
        self.min_epoch_seen_after_interrupt: int | None = None

    def process(self, port: str, frame: Frame) -> None:
        self.count += 1
        if isinstance(frame, AudioFrame):
            self.formats.add(frame.fmt)
        if frame.epoch < self.ctx.epoch:
            self.stale_after_interrupt += 1


def _restamp(frame: Frame, epoch: int) -> Frame:
    if isinstance(frame, AudioFrame):
        return AudioFrame(frame.data, frame.fmt, pts=frame.pts, epoch=epoch)
    if isinstance(frame, TranscriptFrame):
        return TranscriptFrame(frame.text, pts=frame.pts, epoch=epoch)
    assert isinstance(frame, TextFrame)
    return TextFrame(frame.text, pts=frame.pts, epoch=epoch)


def _test_signal(fmt: AudioFormat, samples: int) -> bytes:
    import numpy as np

    t = np.arange(samples * fmt.channels) / fmt.channels
    wave = 0.25 * np.sin(2 * np.pi * 440 * t / fmt.rate)
    if fmt.encoding.value == "pcm_f32le":
        return wave.astype("<f4").tobytes()
    return (wave * 32767).astype("<i2").tobytes()


def _kind_for(port: Port) -> str:
    kinds = set(port.kinds)
    if AudioFrame in kinds or Frame in kinds:
        return "audio"
    if TranscriptFrame in kinds:
        return "transcript"
    return "text"


def _fail(type_name: str, check: str, detail: str) -> AssertionError:
    return AssertionError(f"node type '{type_name}' fails '{check}': {detail}")


def check_node(
    cls: type[Node],
    params: Mapping[str, Any] | None = None,
    *,
    input_format: AudioFormat | None = None,
    frames: int = 50,
    bounded: bool = True,
    registry: Registry | None = None,
) -> ConformanceReport:
    """Run the conformance checks on ``cls`` with ``params``; see the module docstring."""
    name = cls.type_name
    check_node_class(cls)
    reg = Registry(load_entry_points=False, parent=registry or default_registry())
    for helper in (_Feed, _Count):
        reg.add(helper)
    if cls.type_name not in reg:
        reg.add(cls)
    report = ConformanceReport(name)
    base = input_format or AudioFormat(16000)

    def build(n: int, interrupt_at: int = -1) -> Graph:
        g = Graph(f"conformance-{name}")
        node = g.add(name, id="under_test", **dict(params or {}))
        validated = cls.Params.model_validate(dict(params or {}))
        ins, outs = cls.ports(validated)
        for port_name, port in ins.items():
            kind = _kind_for(port)
            fmt = (port.caps or AudioCaps()).fixate(base) if kind == "audio" else base
            feed = g.add(
                _Feed.type_name,
                id=f"feed_{port_name}",
                kind=kind,
                rate=fmt.rate,
                channels=fmt.channels,
                encoding=fmt.encoding.value,
                frames=n,
                interrupt_at=interrupt_at,
            )
            g.connect(feed, node[port_name])
        for port_name in outs:
            g.connect(node[port_name], g.add(_Count.type_name, id=f"count_{port_name}"))
        return g

    async def session_run(g: Graph) -> tuple[Session, Any]:
        session = Session(g.compile(reg))
        result = await session.run()
        return session, result

    # 1. negotiation + drain on end
    plan = build(frames).compile(reg)
    for e in plan.edges:
        if e.src == "under_test" and e.fmt is not None:
            report.output_formats[e.src_port] = e.fmt
    session, result = VirtualClock().run(session_run(build(frames)))
    if result.errors:
        raise _fail(name, "no errors", "; ".join(str(e) for e in result.errors))
    if not result.ok:
        raise _fail(name, "drain on end", f"session ended in state {result.state.value}")
    for nid, node in session.nodes.items():
        if isinstance(node, _Count):
            port = nid.removeprefix("count_")
            report.frames_out[port] = node.count
            if not result.nodes[nid].ended:
                raise _fail(name, "drain on end", f"output '{port}' never ended")
            expected = report.output_formats.get(port)
            if expected is not None and node.formats - {expected}:
                raise _fail(
                    name,
                    "negotiation",
                    f"output '{port}' negotiated {expected} but emitted "
                    f"{', '.join(map(str, node.formats))}",
                )

    # 2. reset on interrupt
    session, result = VirtualClock().run(session_run(build(frames, interrupt_at=frames // 2)))
    if result.errors:
        raise _fail(name, "reset on interrupt", "; ".join(str(e) for e in result.errors))
    for nid, node in session.nodes.items():
        # Only interruptible nodes promise that no old-epoch frame leaves them after
        # an interrupt; others (STT, say) legitimately finish the user's audio.
        if cls.interruptible and isinstance(node, _Count) and node.stale_after_interrupt:
            raise _fail(
                name,
                "reset on interrupt",
                f"{node.stale_after_interrupt} frames of an old epoch reached '{nid}' after "
                "the interrupt",
            )

    # 3. bounded growth
    if bounded:
        report.growth_bytes = _growth(lambda n: VirtualClock().run(session_run(build(n))), frames)
        slack = 64 * 1024
        if report.growth_bytes > slack:
            raise _fail(
                name,
                "bounded growth",
                f"{report.growth_bytes} more bytes held after {5 * frames} frames than after "
                f"{frames}",
            )
    return report


def _growth(run: Any, frames: int) -> int:
    """Bytes still allocated after a run of 5 * frames minus after a run of frames."""
    held: list[int] = []
    for n in (frames, 5 * frames):
        gc.collect()
        tracemalloc.start()
        try:
            session, _ = run(n)
            gc.collect()
            held.append(tracemalloc.get_traced_memory()[0])
            del session
        finally:
            tracemalloc.stop()
    asyncio.set_event_loop(None)
    return held[1] - held[0]
