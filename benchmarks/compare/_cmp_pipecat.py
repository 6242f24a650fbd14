"""The Pipecat side: the comparison's pipelines with Pipecat's public API (PyPI ``pipecat-ai``).

Built the way Pipecat's guides show: custom ``FrameProcessor`` subclasses
whose ``process_frame`` calls ``super().process_frame`` and pushes every
frame on, a ``Pipeline`` of them, one ``PipelineWorker`` per session, and
one ``WorkerRunner`` hosting the workers. A source pushes frames from its own
task (as a transport input does); audio in is ``InputAudioRawFrame`` (a
system frame: what Pipecat's input transports emit); the bot's audio in the
interruption test is ``OutputAudioRawFrame`` (a data frame, which an
interruption flushes); an interruption is ``broadcast_interruption()`` from a
processor (what Pipecat's turn-taking processors call).

Each worker is configured lean, so the figures are the framework's frame
path and not its extras: no RTVI processor, no turn-tracking observer, no
idle timer, no dangling-task check (metrics are off by default). Logging is
raised to WARNING (Pipecat logs every pipeline start and end at DEBUG).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from _cmp_common import FRAME_BYTES, PERIOD_NS, RATE, WARMUP_NS, LoadStats, PingPong, rss_kb
from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

__all__ = ["hop_latency", "interrupt_latency", "load", "memory_per_session", "throughput"]

logger.remove()
logger.add(sys.stderr, level="WARNING")

PCM = bytes(FRAME_BYTES)


def _audio_in() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=PCM, sample_rate=RATE, num_channels=1)


class Pass(FrameProcessor):
    """A pass-through stage: every frame goes on unchanged."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class _Source(FrameProcessor):
    """Starts ``feed()`` in its own task once the pipeline has started."""

    def __init__(self) -> None:
        super().__init__()
        self.fed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._task = self.create_task(self._run())

    async def _run(self) -> None:
        await self.feed()
        self.fed.set()

    async def feed(self) -> None:
        raise NotImplementedError

    async def cleanup(self) -> None:
        if self._task is not None and not self._task.done():
            await self.cancel_task(self._task)
        await super().cleanup()


class PingSource(_Source):
    """One frame in flight at a time (see ``PingPong``)."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.probe = PingPong()

    async def feed(self) -> None:
        for _ in range(self.frames):
            frame = _audio_in()
            arrived = self.probe.expect()
            await self.push_frame(frame)
            await arrived


class BurstSource(_Source):
    """``frames`` fresh frames as fast as ``push_frame`` takes them."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.t0 = 0

    async def feed(self) -> None:
        self.t0 = time.perf_counter_ns()
        for _ in range(self.frames):
            await self.push_frame(_audio_in())


class PacedSource(_Source):
    """A microphone: frame ``i`` leaves at ``start + phase + i * 20 ms`` (absolute deadlines)."""

    def __init__(self, frames: int, phase_ns: int) -> None:
        super().__init__()
        self.frames = frames
        self.phase_ns = phase_ns

    async def feed(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = round(loop.time() * 1e9) + self.phase_ns
        for i in range(self.frames):
            due = t0 + i * PERIOD_NS
            delay = due / 1e9 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = _audio_in()
            if i * PERIOD_NS >= WARMUP_NS:
                frame.pts = due  # sampled: the sink times it against this due time
            await self.push_frame(frame)


class Sink(FrameProcessor):
    """The end of the path: consumes the audio, passes every other frame on."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.t_last = 0
        self.expected = -1
        self.all_in = asyncio.Event()
        """Set when ``expected`` audio frames have arrived."""
        self.started = asyncio.Event()
        self.ping: PingPong | None = None
        self.load: LoadStats | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.count += 1
            if self.ping is not None:
                self.ping.arrived()
            elif self.load is not None:
                self.load.received += 1
                if frame.pts is not None:
                    now = round(asyncio.get_running_loop().time() * 1e9)
                    self.load.latency.append(now - frame.pts)
            else:
                self.t_last = time.perf_counter_ns()
            if self.count == self.expected:
                self.all_in.set()
            return
        if isinstance(frame, StartFrame):
            self.started.set()
        await self.push_frame(frame, direction)


class InterruptSource(_Source):
    """Fills the stalled sink's queue with bot audio, interrupts, times the fresh frame."""

    def __init__(self, backlog: int, sink: StallSink) -> None:
        super().__init__()
        self.backlog = backlog
        self.sink = sink
        self.call_ns = 0
        self.ready_ns = 0

    async def feed(self) -> None:
        for _ in range(self.backlog + 1):
            await self.push_frame(OutputAudioRawFrame(audio=PCM, sample_rate=RATE, num_channels=1))
        await self.sink.stalled.wait()
        await self.sink.backlog_in.wait()  # the stages have forwarded every frame
        fresh = OutputAudioRawFrame(audio=PCM, sample_rate=RATE, num_channels=1)
        self.sink.fresh_id = fresh.id
        arrived = self.sink.fresh = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter_ns()
        await self.broadcast_interruption()
        self.call_ns = time.perf_counter_ns() - t0
        await self.push_frame(fresh)
        await arrived
        self.ready_ns = time.perf_counter_ns() - t0


class StallSink(FrameProcessor):
    """A playout stuck on its first audio frame; counts old frames that still reach it."""

    def __init__(self, backlog: int) -> None:
        super().__init__()
        self.seen = 0
        self.stale = 0
        self.received = 0
        self.backlog = backlog
        self.stalled = asyncio.Event()
        self.backlog_in = asyncio.Event()
        """Set once the stalled frame and ``backlog`` more were handed to this processor."""
        self.fresh: asyncio.Future[None] | None = None
        self.fresh_id = -1

    async def queue_frame(self, frame: Frame, *args: Any, **kwargs: Any) -> None:
        if isinstance(frame, OutputAudioRawFrame):
            self.received += 1
            if self.received > self.backlog:
                self.backlog_in.set()
        await super().queue_frame(frame, *args, **kwargs)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, OutputAudioRawFrame):
            await self.push_frame(frame, direction)
            return
        self.seen += 1
        if self.seen == 1:
            self.stalled.set()
            await asyncio.Event().wait()  # only an interruption ends this
        elif self.fresh is not None and frame.id == self.fresh_id:
            self.fresh.set_result(None)
        elif self.fresh is not None:
            self.stale += 1


def _worker(processors: list[FrameProcessor]) -> PipelineWorker:
    return PipelineWorker(
        Pipeline(processors),
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
        check_dangling_tasks=False,
    )


async def _run(workers: list[PipelineWorker], sources: list[_Source]) -> None:
    """Run the workers until every source has fed its frames, then end them."""
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(*workers)
    running = asyncio.create_task(runner.run())
    await asyncio.gather(*(s.fed.wait() for s in sources))
    for worker in workers:
        await worker.queue_frame(EndFrame())
    await running


async def hop_latency(k: int, frames: int) -> list[int]:
    """Latency (ns) of each of ``frames`` frames through an idle ``k``-stage pipeline."""
    source, sink = PingSource(frames), Sink()
    sink.ping = source.probe
    await _run([_worker([source, *(Pass() for _ in range(k)), sink])], [source])
    assert sink.count == frames, sink.count
    return list(source.probe.latency)


async def throughput(k: int, frames: int) -> float:
    """Frames per second through ``k`` stages, pushed as fast as they are taken."""
    source, sink = BurstSource(frames), Sink()
    sink.expected = frames
    workers = [_worker([source, *(Pass() for _ in range(k)), sink])]
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(*workers)
    running = asyncio.create_task(runner.run())
    await source.fed.wait()
    await sink.all_in.wait()  # the pushes were only queued: wait for the last to arrive
    await workers[0].queue_frame(EndFrame())
    await running
    return frames * 1e9 / (sink.t_last - source.t0)


async def load(n: int, k: int, seconds: float, stats: LoadStats) -> bool:
    """``n`` paced sessions at once for ``seconds``; False if they could not keep up."""
    frames = round((seconds * 1e9 + WARMUP_NS) / PERIOD_NS)
    sources = [PacedSource(frames, j * PERIOD_NS // n) for j in range(n)]
    sinks = [Sink() for _ in range(n)]
    for sink in sinks:
        sink.load = stats
    workers = [
        _worker([src, *(Pass() for _ in range(k)), sink])
        for src, sink in zip(sources, sinks, strict=True)
    ]
    try:
        await asyncio.wait_for(_run(workers, sources), 2 * seconds + 5)
    except TimeoutError:
        return False
    return stats.received == n * frames


async def memory_per_session(n: int, k: int) -> float:
    """RSS growth (kB) per started, idle session (each source waits an hour)."""
    before = rss_kb()
    sources = [PacedSource(2, 3600 * 10**9) for _ in range(n)]
    sinks = [Sink() for _ in range(n)]
    workers = [
        _worker([src, *(Pass() for _ in range(k)), sink])
        for src, sink in zip(sources, sinks, strict=True)
    ]
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(*workers)
    running = asyncio.create_task(runner.run())
    await asyncio.gather(*(s.started.wait() for s in sinks))  # every pipeline is up
    await asyncio.sleep(0.2)
    grown = (rss_kb() - before) / n
    await runner.cancel()
    await running
    return grown


async def interrupt_latency(k: int, backlog: int) -> tuple[float, float, int]:
    """Interrupt with ``backlog`` frames queued: (call µs, fresh frame through µs, stale seen)."""
    sink = StallSink(backlog)
    source = InterruptSource(backlog, sink)
    worker = _worker([source, *(Pass() for _ in range(k)), sink])
    runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    await source.fed.wait()
    await worker.cancel()
    await running
    return source.call_ns / 1e3, source.ready_ns / 1e3, sink.stale
