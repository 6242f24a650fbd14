"""Scripted conversations on the virtual clock: real speech in, a bot out, turn-taking between.

The caller's audio is made from a real recording and silence, played at real time
into a scripted VAD/STT stand-in (the VAD nodes have their own tests); the bot is
a TTS stand-in that sends 2 s utterances in 100 ms bursts, faster than real time,
into ``audio.playout``. Every assertion is on the recorded output and the bus.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import SAMPLES
from tests.conversation_support import (
    MS,
    Bot,
    Run,
    ScriptedVadStt,
    Sink,
    run,
    run_session,
    utterance,
)

from vbgraph.clock import VirtualClock
from vbgraph.events import BargeInCancelled, BargeInStarted, Interrupt, TurnEnded
from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.io.wav import read_wav, write_wav
from vbgraph.nodes.audio_playout import AudioPlayout

FMT = AudioFormat(16000)
CHUNK_SAMPLES = 320
Steps = list[tuple[float, str]]


def mic_audio(path: Path, parts: list[tuple[str, float]]) -> Path:
    """A WAV of ("silence", ms) and ("speech", ms) parts; speech is read on through the clip."""
    _, clip = read_wav(SAMPLES / "speech_16k.wav")
    out = bytearray()
    pos = FMT.bytes_for_ms(400)  # the clip's speech is well under way by 400 ms
    for kind, ms in parts:
        n = FMT.bytes_for_ms(ms)
        if kind == "speech":
            out += clip[pos : pos + n]
            pos += n
        else:
            out += bytes(n)
    write_wav(path, FMT, bytes(out))
    return path


def conversation(
    mic: Path,
    steps: Steps,
    *,
    bot: dict[str, object],
    play: dict[str, object] | None = None,
    turn: dict[str, object] | None = None,
) -> Graph:
    """mic -> VAD/STT -> turn -> (bus) -> bot -> playout -> recorded output."""
    g = Graph("conversation")
    source = g.add("file.source", path=str(mic), chunk_ms=20, realtime=True)
    stt = g.add("test.vad_stt", id="stt", steps=steps)
    detector = g.add("turn", id="turn", **(turn or {}))
    text = g.add("test.turn_sink", id="user_text")
    g.chain(source, stt, detector, text)
    b = g.add("test.bot", id="bot", **bot)
    p = g.add("audio.playout", id="play", **(play or {}))
    out = g.add("test.turn_sink", id="out")
    g.chain(b, p, out)
    return g


def turn_texts(r: Run) -> list[tuple[int, str]]:
    return [(e.pts // MS, e.text) for e in r.of(TurnEnded)]  # type: ignore[attr-defined]


def recorded(r: Run) -> list[tuple[int, int, bytes]]:
    """(arrival ms, epoch, bytes) of every frame the caller heard."""
    return [(t // MS, f.epoch, bytes(f.data)) for t, f in r.node("out", Sink).audio]


BARGE_IN_PARTS = [("silence", 600), ("speech", 1600), ("silence", 2600)]
BARGE_IN_STEPS: Steps = [
    (600, "start"),
    (1000, "interim:wait"),
    (2200, "final:Wait, I have a question."),
    (2200, "stop"),
]
COUGH_PARTS = [("silence", 500), ("speech", 300), ("silence", 2700)]
COUGH_STEPS: Steps = [(500, "start"), (900, "stop")]


@pytest.fixture
def barge_in_mic(tmp_path: Path) -> Path:
    return mic_audio(tmp_path / "barge_in.wav", BARGE_IN_PARTS)


@pytest.fixture
def cough_mic(tmp_path: Path) -> Path:
    return mic_audio(tmp_path / "cough.wav", COUGH_PARTS)


class TestBargeIn:
    """The caller talks over the bot with words: the bot stops at once and answers them."""

    def test_the_bot_is_cut_off_at_the_interrupt_decision(self, barge_in_mic: Path) -> None:
        """Paused at 900 ms, interrupted at 1000 ms: no old audio at or after the decision."""
        r = run(conversation(barge_in_mic, BARGE_IN_STEPS, bot={"replies": 1}))
        assert r.result.ok, r.result.errors
        assert r.node("stt", ScriptedVadStt).loudness_at_start[0] > 500  # real speech there
        (t_int,) = r.times(Interrupt)
        assert r.times(BargeInStarted) == [900 * MS] and t_int == 1000 * MS
        old = [t for t, epoch, _ in recorded(r) if epoch == 0]
        assert max(old) < 900  # paused at 900: the last chunk started at 880
        assert not [t for t in old if t * MS >= t_int]

    def test_audio_after_the_decision_is_at_most_one_chunk(self, barge_in_mic: Path) -> None:
        """min_words=0: no pause first, the interrupt comes while a chunk is playing."""
        turn = {"min_words": 0, "min_interruption_ms": 310}
        r = run(conversation(barge_in_mic, BARGE_IN_STEPS, bot={"replies": 1}, turn=turn))
        (t_int,) = r.times(Interrupt)
        assert t_int == 910 * MS and r.times(BargeInStarted) == []
        after = [t for t, f in r.node("out", Sink).audio if f.epoch == 0 and t >= t_int]
        assert len(after) <= 1

    def test_the_answer_to_the_interruption_plays_in_full(self, barge_in_mic: Path) -> None:
        """The turn ends once with the caller's words; the reply (epoch 1) plays whole."""
        r = run(conversation(barge_in_mic, BARGE_IN_STEPS, bot={"replies": 1}))
        assert turn_texts(r) == [(2400, "Wait, I have a question.")]
        out = r.node("out", Sink)
        assert out.audio_of(1) == utterance(1, 2000)
        assert out.audio_of(0) == utterance(0, 2000)[: 45 * 640]
        play = r.node("play", AudioPlayout)
        assert play.played_by_epoch == {0: 45 * CHUNK_SAMPLES, 1: 32000}

    def test_no_frame_of_a_stale_epoch_reaches_the_output(self, barge_in_mic: Path) -> None:
        """A sloppy TTS keeps sending old-epoch frames: they are dropped, never played."""
        r = run(
            conversation(
                barge_in_mic,
                BARGE_IN_STEPS,
                bot={"replies": 1, "sloppy": True},
                play={"max_buffer_ms": 300},
            )
        )
        (t_int,) = r.times(Interrupt)
        late = [f.epoch for t, f in r.node("out", Sink).audio if t >= t_int]
        assert late and set(late) == {1}
        edge = next(s for name, s in r.result.edges.items() if name.endswith("play.in"))
        assert edge.stale + edge.flushed > 0
        bot = r.node("bot", Bot)
        assert bot.spoken[0] == (0, 0, len(utterance(0, 2000)))  # it did send it all


class TestFalseInterruption:
    """A cough over the bot pauses it; no words come; it resumes the same utterance."""

    def test_the_bot_resumes_and_plays_the_whole_utterance(self, cough_mic: Path) -> None:
        """Paused at 800 ms, resumed at 1800 ms; the recorded audio is the utterance, once."""
        r = run(conversation(cough_mic, COUGH_STEPS, bot={}))
        assert r.result.ok, r.result.errors
        assert r.times(BargeInStarted) == [800 * MS]
        assert r.times(BargeInCancelled) == [1800 * MS]
        assert r.result.interrupts == 0 and turn_texts(r) == []
        frames = recorded(r)
        assert not [t for t, _, _ in frames if 800 <= t < 1800]
        assert b"".join(d for _, _, d in frames) == utterance(0, 2000)
        assert r.node("play", AudioPlayout).played(0) == 32000

    def test_a_backchannel_resumes_too(self, cough_mic: Path) -> None:
        """ "Mm-hm." is heard but is not an interruption."""
        steps: Steps = [(500, "start"), (850, "final:Mm-hm."), (900, "stop")]
        r = run(conversation(cough_mic, steps, bot={}))
        assert r.result.interrupts == 0 and turn_texts(r) == []
        assert r.node("out", Sink).audio_of(0) == utterance(0, 2000)


class TestTurns:
    """End of turn fires once per turn, and the bot answers each."""

    def test_two_turns_with_a_thinking_pause_end_once_each(self, tmp_path: Path) -> None:
        """A 400 ms pause mid-turn does not end it; the reply waits for the whole turn."""
        parts = [
            ("silence", 300),
            ("speech", 1200),
            ("silence", 400),
            ("speech", 800),
            ("silence", 2500),
            ("speech", 1000),
            ("silence", 3000),
        ]
        steps: Steps = [
            (300, "start"),
            (1500, "final:I'd like to book"),
            (1500, "stop"),
            (1900, "start"),
            (2700, "final:a flight to Paris."),
            (2700, "stop"),
            (5200, "start"),
            (6200, "final:Thanks."),
            (6200, "stop"),
        ]
        mic = mic_audio(tmp_path / "two_turns.wav", parts)
        r = run(conversation(mic, steps, bot={"greeting": False, "replies": 2}))
        assert r.result.ok, r.result.errors
        assert turn_texts(r) == [(2900, "I'd like to book a flight to Paris."), (6400, "Thanks.")]
        out = r.node("out", Sink)
        assert out.audio_of(0) == utterance(1, 2000) + utterance(2, 2000)
        assert recorded(r)[0][0] == 2900
        assert [f.text for f in r.node("user_text", Sink).frames] == [  # type: ignore[attr-defined]
            "I'd like to book a flight to Paris.",
            "Thanks.",
        ]


class TestIsolation:
    """Two sessions at once share nothing."""

    def test_two_concurrent_sessions_do_not_leak_into_each_other(
        self, barge_in_mic: Path, cough_mic: Path
    ) -> None:
        """An interruption in one session leaves the other's playout untouched."""
        a_graph = conversation(barge_in_mic, BARGE_IN_STEPS, bot={"replies": 1})
        b_graph = conversation(cough_mic, COUGH_STEPS, bot={})
        alone_a, alone_b = run(a_graph), run(b_graph)

        async def both() -> tuple[Run, Run]:
            return await asyncio.gather(run_session(a_graph), run_session(b_graph))

        a, b = VirtualClock().run(both(), debug=True)
        assert a.result.interrupts == 1 and b.result.interrupts == 0
        assert recorded(a) == recorded(alone_a)
        assert recorded(b) == recorded(alone_b)
        assert turn_texts(a) == turn_texts(alone_a) and turn_texts(b) == []
        assert r_sources(a) == r_sources(alone_a) and r_sources(b) == r_sources(alone_b)
        assert a.result.session_id != b.result.session_id


def r_sources(r: Run) -> list[tuple[str, str | None, int]]:
    """Every bus event as (name, source, ms), for comparing sessions."""
    return [(e.name, e.source, e.pts // MS) for e in r.events if e.name != "session_state_changed"]


def test_the_mic_audio_is_real_speech_where_the_script_says() -> None:
    """The clip slice used as speech is loud; the silence is silent."""
    _, clip = read_wav(SAMPLES / "speech_16k.wav")
    x = np.frombuffer(clip, "<i2").astype(float)
    speech = x[6400 : 6400 + 16000]
    assert np.sqrt(np.mean(speech**2)) > 1000
