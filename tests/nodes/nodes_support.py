"""Shared tools for the node tests: running graphs on virtual time, and test-only nodes.

Test-only node types live in their own registry (:func:`test_registry`), so the
process-wide registry only ever holds the built-ins.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from vbgraph.clock import VirtualClock
from vbgraph.events import Event, NodeError
from vbgraph.formats import AudioCaps, AudioFormat, Encoding
from vbgraph.frames import AudioFrame, Frame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult

SPEECH = Path(__file__).resolve().parents[2] / "graphs" / "samples" / "speech_16k.wav"
"""Real speech: 16 kHz mono int16, 113 600 samples (7.1 s)."""
SPEECH_SAMPLES = 113_600

_ANY = (AudioFrame, Frame)


class Collect(Node):
    """Test sink: keeps every frame and the session time it arrived at."""

    type_name: ClassVar[str] = "test.collect"
    inputs: ClassVar[Mapping[str, Port]] = {"in": Port(kinds=_ANY, caps=AudioCaps())}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[Frame] = []
        self.arrivals: list[int] = []
        self.ended = False

    def process(self, port: str, frame: Frame) -> None:
        self.frames.append(frame)
        self.arrivals.append(self.ctx.now_ns())

    def on_end(self) -> None:
        self.ended = True

    @property
    def audio_frames(self) -> list[AudioFrame]:
        return [f for f in self.frames if isinstance(f, AudioFrame)]

    def audio(self) -> bytes:
        return b"".join(bytes(f.data) for f in self.audio_frames)


class Stamps(Node):
    """Test sink that keeps only (pts, samples, arrival) per frame: for very long streams."""

    type_name: ClassVar[str] = "test.stamps"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.stamps: list[tuple[int, int, int]] = []

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        self.stamps.append((frame.pts, frame.samples, self.ctx.now_ns()))


class SlowCollect(Node):
    """Async test sink that takes ``delay_ms`` of session time per frame."""

    type_name: ClassVar[str] = "test.slow_collect"

    class Params(NodeParams):
        delay_ms: float = Field(50, description="Time taken per frame.")

    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        assert isinstance(params, SlowCollect.Params)
        self.delay = params.delay_ms / 1000
        self.frames: list[AudioFrame] = []

    async def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        await asyncio.sleep(self.delay)
        self.frames.append(frame)


class Negate(Node):
    """Test node: int16 audio multiplied by -1 (for cancellation tests)."""

    type_name: ClassVar[str] = "test.negate"
    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port(encodings=("pcm_s16le",))}
    outputs: ClassVar[Mapping[str, Port]] = {"out": audio_port(same_as="in")}

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        samples = np.frombuffer(frame.data, dtype="<i2")
        self.emit("out", frame.with_data((-samples).astype("<i2").tobytes()))


class Texts(Node):
    """Test source: emits ``count`` text frames ``"t0"``, ``"t1"`` ..."""

    type_name: ClassVar[str] = "test.texts"

    class Params(NodeParams):
        count: int = Field(3, description="How many text frames.")

    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port(TextFrame)}

    async def run(self) -> None:
        assert isinstance(self.params, Texts.Params)
        for i in range(self.params.count):
            self.emit("out", TextFrame(f"t{i}", pts=i * 1000, epoch=self.ctx.epoch))
            await self.ctx.drain()


TEST_NODES = (Collect, Stamps, SlowCollect, Negate, Texts)


def test_registry() -> Registry:
    """The built-in node types plus the test-only ones above."""
    reg = Registry(load_entry_points=False)
    for cls in default_registry():
        reg.add(cls)
    for cls in TEST_NODES:
        reg.add(cls)
    return reg


test_registry.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def run_graph(graph: Graph) -> tuple[SessionResult, Mapping[str, Node]]:
    """Compile ``graph`` (with the test nodes) and run one session on virtual time."""
    plan = graph.compile(test_registry())
    session = Session(plan, debug=True)
    result = VirtualClock().run(session.run(), debug=True)
    return result, session.nodes


class StubSession:
    """Just enough of a session to instantiate a node outside a graph."""

    def __init__(self) -> None:
        self.epoch = 0
        self.session_id = "stub"
        self.published: list[Event] = []

    @property
    def clock(self) -> Any:
        raise AssertionError("no clock outside a session")

    def publish(self, event: Event, source: str | None = None) -> None:
        self.published.append(event)

    def interrupt(self, reason: str, source: str | None = None) -> int:
        self.epoch += 1
        return self.epoch

    async def drain(self) -> None:
        return None

    def report(self, node_id: str, phase: str, exc: BaseException) -> None:
        self.published.append(
            NodeError(node_id=node_id, phase=phase, error_type=type(exc).__name__, message=str(exc))
        )


def make_node(cls: type[Node], **params: Any) -> tuple[Node, list[tuple[str, Frame]]]:
    """An instance of ``cls`` outside any graph, and the list its emits go to."""
    node = cls("n", cls.Params.model_validate(params), NodeContext(StubSession(), "n"))
    emitted: list[tuple[str, Frame]] = []
    node.emit = lambda port, frame: emitted.append((port, frame))
    return node, emitted


def s16(values: npt.ArrayLike) -> bytes:
    """int16 little-endian bytes of ``values``."""
    return np.asarray(values, dtype="<i2").tobytes()


def f32(values: npt.ArrayLike) -> bytes:
    """float32 little-endian bytes of ``values``."""
    return np.asarray(values, dtype="<f4").tobytes()


def as_array(data: Any, encoding: Encoding | str = Encoding.PCM_S16LE) -> npt.NDArray[Any]:
    """The samples of a buffer as a flat numpy array."""
    return np.frombuffer(bytes(data), dtype="<i2" if encoding == "pcm_s16le" else "<f4")


def audio(data: bytes, fmt: AudioFormat, pts: int = 0, epoch: int = 0) -> AudioFrame:
    """An audio frame."""
    return AudioFrame(data, fmt, pts=pts, epoch=epoch)


def peak_hz(samples: npt.ArrayLike, rate: int) -> float:
    """The frequency of the largest FFT magnitude (Hann window)."""
    x = np.asarray(samples, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def rms(samples: npt.ArrayLike) -> float:
    """Root mean square."""
    x = np.asarray(samples, dtype=np.float64)
    return math.sqrt(float(np.mean(x * x)))


_SPELLED_OUT = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation (hyphens split words; "Mr." is "mister")."""
    cleaned = "".join(c if c.isalnum() or c == "'" else " " for c in text.lower())
    return [_SPELLED_OUT.get(w, w) for w in cleaned.replace("'", "").split()]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) after normalising both."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    row = list(range(len(hyp) + 1))  # edit distance, one row of the table at a time
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (normalised, see above)."""
    errors, words = word_errors(reference, hypothesis)
    return errors / max(words, 1)
