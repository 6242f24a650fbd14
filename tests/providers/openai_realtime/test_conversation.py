"""Whole spoken conversations through the fake Realtime server, on the virtual clock.

The caller is real read speech (LibriVox clips, resampled to 24 kHz with
vbgraph's resampler) played at real time by ``file.source``; the fake runs its
own VAD on it and answers with speech-like audio. Graph:
``file.source -> s2s.openai_realtime -> audio.playout -> sink``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.providers.openai_realtime import tools
from tests.providers.openai_realtime.support import (
    CLIPS,
    Run,
    conversation,
    mic_wav,
    ms_of,
    onset_ms,
    run_graph,
    virtual,
)

from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    BotTextPlayed,
    Interrupt,
    TranscriptReceived,
    UserSpeechStarted,
    UserSpeechStopped,
)
from vbgraph.formats import AudioFormat, Encoding
from vbgraph.frames import TextFrame, TranscriptFrame
from vbgraph.nodes.audio_playout import AudioPlayout
from vbgraph.providers.openai_realtime.events import AudioCodec
from vbgraph.testing.fakes.openai_realtime import FakeRealtime, FakeSession, Turn, speech_like

MS = 1_000_000
CHUNK_MS = 20  # audio.playout's default chunk
FIRST = "I see. Tell me more about him, please. Was he kind to his family at all?"
SECOND = "Perhaps so."
# Caller: a question, a pause, then talking over the bot's (4.9 s) answer.
BARGE_IN = [
    ("silence", 500),
    ("clip", "0880"),
    ("silence", 3000),
    ("clip", "0930"),
    ("silence", 3000),
]


def talk(
    tmp_path: Path, parts: list[tuple[str, Any]], turns: list[Turn], **params: Any
) -> tuple[Run, FakeSession]:
    """Run a conversation graph on the virtual clock against a fake with ``turns``."""
    mic = mic_wav(tmp_path / "mic.wav", parts)

    async def main() -> tuple[Run, FakeSession]:
        async with FakeRealtime(turns=turns) as fake:
            graph, _ = conversation(fake, mic, **params)
            run = await run_graph(graph)
            (session,) = fake.sessions
            return run, session

    return virtual(main)


class TestBargeIn:
    """Protocol notes: barge-in by the client (cancel + truncate at what was played)."""

    def test_the_caller_talking_over_the_bot_truncates_the_reply_where_playback_stopped(
        self, tmp_path: Path
    ) -> None:
        """The fake records audio_end_ms equal to what audio.playout played, within a chunk."""
        turns = [Turn(CLIPS["0880"], FIRST), Turn(CLIPS["0930"], SECOND)]
        run, fake = talk(tmp_path, BARGE_IN, turns)
        assert run.result.ok, run.result.errors
        (cut,) = fake.truncations
        play = run.node("play", AudioPlayout)
        played_ms = play.played(0) * 1000 // 24000
        assert abs(cut.audio_end_ms - played_ms) <= CHUNK_MS
        assert 0 < cut.audio_end_ms < cut.generated_ms
        assert run.s2s.truncations == [cut.audio_end_ms]  # the server confirmed it
        # What came out of the playout is the start of what the model generated, exactly.
        generated = speech_like(FIRST, AudioCodec.PCM16)
        out = run.sink("out").audio(0)
        heard = play.played(0) * 2
        assert out[:heard] == generated[:heard] and heard < len(generated)

    def test_the_bot_stops_within_one_chunk_of_the_server_hearing_the_caller(
        self, tmp_path: Path
    ) -> None:
        """speech_started while the bot speaks: Interrupt at once, playout stops at once."""
        turns = [Turn(CLIPS["0880"], FIRST), Turn(CLIPS["0930"], SECOND)]
        run, fake = talk(tmp_path, BARGE_IN, turns)
        (interrupt,) = run.of(Interrupt)
        assert interrupt.epoch == 1 and interrupt.source == "s2s"
        stopped = [e for e in run.of(BotSpeechStopped) if e.interrupted]
        assert len(stopped) == 1 and stopped[0].pts - interrupt.pts <= CHUNK_MS * MS
        # The caller's second utterance began (by the fake's VAD) before the interruption.
        second_start = run.of(UserSpeechStarted)[1]
        assert second_start.pts < interrupt.pts
        assert [kind for kind, _ in fake.vad] == ["started", "stopped", "started", "stopped"]

    def test_the_words_heard_are_reported_and_kept_in_the_context(self, tmp_path: Path) -> None:
        """BotTextPlayed has the words placed before the cut; the context keeps only them."""
        turns = [Turn(CLIPS["0880"], FIRST), Turn(CLIPS["0930"], SECOND)]
        run, fake = talk(tmp_path, BARGE_IN, turns)
        (played,) = run.of(BotTextPlayed)
        assert played.interrupted and played.epoch == 0
        assert FIRST.startswith(played.text) and 0 < len(played.text) < len(FIRST)
        # Words arrive at 15 chars/s of audio: the text heard matches the time heard.
        heard_s = fake.truncations[0].audio_end_ms / 1000
        assert abs(len(played.text) - heard_s * 15) <= 12
        first_reply = next(m for m in run.s2s.context.messages if m.role == "assistant")
        assert first_reply.content == played.text and first_reply.generated == FIRST

    def test_the_second_turn_is_answered_and_played_whole(self, tmp_path: Path) -> None:
        """After the interruption the caller's turn gets its reply, in the new epoch."""
        turns = [Turn(CLIPS["0880"], FIRST), Turn(CLIPS["0930"], SECOND)]
        run, fake = talk(tmp_path, BARGE_IN, turns)
        assert [r[1] for r in fake.responses] == ["completed", "completed"]
        generated = speech_like(SECOND, AudioCodec.PCM16)
        out = run.sink("out").audio(1)
        assert out[: len(generated)] == generated
        assert not any(out[len(generated) :])  # then only the playout's padding
        replies = run.of(AgentReplied)
        assert [(r.text, r.epoch) for r in replies] == [(FIRST, 0), (SECOND, 1)]


class TestTurns:
    """A plain exchange: VAD events, transcripts, ordering."""

    def test_each_turn_publishes_vad_events_and_the_transcript(self, tmp_path: Path) -> None:
        """Server VAD events become UserSpeechStarted/Stopped at the audio's session time."""
        parts = [("silence", 400), ("clip", "0880"), ("silence", 2500)]
        turns = [Turn(CLIPS["0880"], "Indeed.")]
        run, fake = talk(tmp_path, parts, turns)
        assert run.result.ok, run.result.errors
        (start,), (stop,) = run.of(UserSpeechStarted), run.of(UserSpeechStopped)
        speech_at = ms_of(parts, 1) + onset_ms("0880")
        # The server keeps 300 ms of prefix padding before the speech it found.
        assert start.pts // MS == fake.vad[0][1]
        assert abs(start.pts // MS - (speech_at - 300)) <= 60
        assert stop.pts // MS == fake.vad[1][1]
        (heard,) = run.of(TranscriptReceived)
        assert heard.text == CLIPS["0880"] and heard.speech_start_ns == start.pts
        (frame,) = run.sink("transcript").frames
        assert isinstance(frame, TranscriptFrame) and frame.text == CLIPS["0880"]
        (text,) = run.sink("text").frames
        assert isinstance(text, TextFrame) and text.text == "Indeed."
        (bot,) = run.of(BotSpeechStarted)
        assert bot.pts >= stop.pts - 20 * MS  # the bot answers after the caller stopped

    def test_a_telephone_line_speaks_mulaw_both_ways(self, tmp_path: Path) -> None:
        """audio_format pcmu: 16 kHz speech is converted on the way in, μ-law comes out."""
        mic = mic_wav(
            tmp_path / "mic.wav",
            [("silence", 300), ("clip", "0880"), ("silence", 2000)],
            rate=16000,
        )

        async def main() -> tuple[Run, FakeSession]:
            async with FakeRealtime(turns=[Turn(CLIPS["0880"], "Yes.")]) as fake:
                graph, _ = conversation(fake, mic, audio_format="pcmu")
                return await run_graph(graph), fake.sessions[0]

        run, fake = virtual(main)
        assert run.result.ok, run.result.errors
        assert fake.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert [kind for kind, _ in fake.vad] == ["started", "stopped"]
        frames = run.sink("out").frames
        assert frames and {f.fmt for f in frames} == {AudioFormat(8000, 1, Encoding.MULAW)}  # type: ignore[attr-defined]
        assert run.sink("out").audio().startswith(speech_like("Yes.", AudioCodec.PCMU))


class TestTools:
    """Protocol notes: function calls (function_call_output, then response.create)."""

    def test_a_tool_call_round_trip_in_a_spoken_conversation(self, tmp_path: Path) -> None:
        """The model calls get_weather; the node runs it, answers, and the reply uses it."""
        tools.CALLS.clear()
        turn = Turn(
            "what is the weather in paris",
            "The weather is {output}",
            call=("get_weather", '{"city": "Paris"}'),
        )
        weather = {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "function": "tests.providers.openai_realtime.tools:get_weather",
        }
        parts = [("silence", 300), ("clip", "0880"), ("silence", 3000)]
        run, fake = talk(tmp_path, parts, [turn], tools=[weather])
        assert run.result.ok, run.result.errors
        assert tools.CALLS == ["Paris"]
        assert fake.session["tools"][0]["name"] == "get_weather"
        ((call_id, output),) = fake.function_outputs
        assert json.loads(output) == {"city": "Paris", "sky": "sunny", "celsius": 21}
        # function_call_output came before the response.create that asked for the answer
        received = fake.received
        item = received.index("conversation.item.create")
        assert "response.create" in received[item:]
        (reply,) = run.of(AgentReplied)
        assert reply.text.startswith("The weather is {") and "sunny" in reply.text
        assert [r[1] for r in fake.responses] == ["completed", "completed"]
        roles = [m.role for m in run.s2s.context.messages]
        assert roles == ["user", "assistant", "tool", "assistant"]
        assert call_id.startswith("call_")


class TestLocalTurnDetection:
    """turn_detection none: a local VAD ends turns; the node commits and asks for replies."""

    def test_local_vad_turns_commit_and_a_barge_in_cancels_the_running_response(
        self, tmp_path: Path
    ) -> None:
        """Commit + response.create per turn; talking over a paced reply cancels and truncates."""
        parts = [
            ("silence", 400),
            ("clip", "0880"),
            ("silence", 2000),
            ("clip", "0930"),
            ("silence", 3000),
        ]
        mic = mic_wav(tmp_path / "mic.wav", parts)
        turns = [Turn(CLIPS["0880"], FIRST), Turn(CLIPS["0930"], SECOND)]

        async def main() -> tuple[Run, FakeSession]:
            # pace=1: the fake sends audio at real time, so the reply is still running
            async with FakeRealtime(turns=turns, pace=1.0) as fake:
                graph, nodes = conversation(fake, mic, turn_detection="none")
                vad = graph.add("vad.native", id="vad", stop_ms=600)
                graph.connect(nodes["mic"], vad)
                return await run_graph(graph), fake.sessions[0]

        run, fake = virtual(main)
        assert run.result.ok, run.result.errors
        assert fake.vad == []  # no server VAD: turn_detection null
        assert fake.session["audio"]["input"]["turn_detection"] is None
        commits = [i for i, kind in enumerate(fake.received) if kind == "input_audio_buffer.commit"]
        assert len(commits) == 2
        assert all(fake.received[i + 1] == "response.create" for i in commits)
        assert fake.responses[0][1:] == ("cancelled", "client_cancelled")
        assert fake.responses[1][1] == "completed"
        (cut,) = fake.truncations
        play = run.node("play", AudioPlayout)
        assert abs(cut.audio_end_ms - play.played(0) * 1000 // 24000) <= CHUNK_MS
        assert [e.text for e in run.of(TranscriptReceived)] == [CLIPS["0880"], CLIPS["0930"]]
