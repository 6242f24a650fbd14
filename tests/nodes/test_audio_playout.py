"""Tests for ``audio.playout``: exact real-time cadence, pause/resume, clear on interrupt."""

from __future__ import annotations

from tests.conversation_support import MS, Script, Sink, run, utterance

from vbgraph.events import BotSpeechStarted, BotSpeechStopped, Interrupt
from vbgraph.formats import AudioFormat
from vbgraph.graph.builder import Graph
from vbgraph.nodes.audio_playout import AudioPlayout

CHUNK = 640  # 20 ms at 16 kHz mono int16


def playout_graph(script: list[tuple[float, str]] | None = None, **params: object) -> Graph:
    bot_params = {k: params.pop(k) for k in list(params) if k.startswith(("utterance", "burst"))}
    g = Graph("playout")
    bot = g.add("test.bot", id="bot", **bot_params)
    play = g.add("audio.playout", id="play", **params)
    sink = g.add("test.turn_sink", id="sink")
    g.chain(bot, play, sink)
    if script:
        g.add("test.script", id="script", steps=script)
    return g


class TestPacing:
    """A producer faster than real time is played at exactly real time."""

    def test_frames_leave_every_20ms_without_gaps_or_loss(self) -> None:
        """2 s in 100 ms bursts: 100 frames of 640 bytes, 20 ms apart, audio unchanged."""
        r = run(playout_graph())
        assert r.result.ok, r.result.errors
        sink = r.node("sink", Sink)
        arrivals = [t for t, _ in sink.audio]
        assert arrivals == [k * 20 * MS for k in range(100)]
        assert [f.pts for _, f in sink.audio] == arrivals
        assert all(len(f.data) == CHUNK for _, f in sink.audio)
        assert sink.audio_of(0) == utterance(0, 2000)

    def test_a_small_buffer_paces_the_producer_and_loses_nothing(self) -> None:
        """max_buffer_ms=200 with overflow=block: the producer waits; peak within capacity."""
        r = run(playout_graph(max_buffer_ms=200))
        play = r.node("play", AudioPlayout)
        stats = play.statistics()
        assert stats.peak_bytes <= stats.capacity_bytes == 200 * 32
        assert stats.overflow_bytes == 0
        assert r.node("sink", Sink).audio_of(0) == utterance(0, 2000)

    def test_drop_oldest_keeps_the_buffer_current_and_counts_the_drops(self) -> None:
        """overflow=drop_oldest: what did not fit is counted, the rest is played."""
        r = run(playout_graph(max_buffer_ms=200, overflow="drop_oldest"))
        play = r.node("play", AudioPlayout)
        played = len(r.node("sink", Sink).audio_of(0))
        assert play.statistics().overflow_bytes == len(utterance(0, 2000)) - played > 0

    def test_a_last_partial_chunk_is_padded_and_not_counted_as_played(self) -> None:
        """2010 ms: the tail of 10 ms leaves in a full frame padded with silence."""
        r = run(playout_graph(utterance_ms=2010))
        sink = r.node("sink", Sink)
        last = bytes(sink.audio[-1][1].data)
        assert len(last) == CHUNK and last[320:] == bytes(320)
        play = r.node("play", AudioPlayout)
        assert play.played(0) == 2010 * 16
        assert play.statistics().underruns == 1

    def test_fill_silence_keeps_frames_flowing_while_paused(self) -> None:
        """fill_silence: a pause emits silence frames at the same cadence."""
        r = run(
            playout_graph(
                [(500, "barge_in_started"), (700, "barge_in_cancelled")], fill_silence=True
            )
        )
        sink = r.node("sink", Sink)
        arrivals = [t for t, _ in sink.audio]
        assert arrivals[:40] == [k * 20 * MS for k in range(40)]
        assert b"".join(bytes(f.data) for _, f in sink.audio if any(f.data)) == utterance(0, 2000)
        assert sum(1 for _, f in sink.audio if not any(f.data)) >= 10

    def test_float_audio_is_played_in_its_own_format(self) -> None:
        """Any PCM: the format out is the format in."""
        fmt = AudioFormat(16000, 1, "pcm_f32le")
        g = Graph("f32")
        tone = g.add("tone", duration_ms=200, chunk_ms=100, encoding="pcm_f32le")
        play = g.add("audio.playout", id="play")
        sink = g.add("test.turn_sink", id="sink")
        g.chain(tone, play, sink)
        r = run(g)
        frames = [f for _, f in r.node("sink", Sink).audio]
        assert len(frames) == 10 and all(f.fmt == fmt and len(f.data) == 1280 for f in frames)


class TestBotSpeechEvents:
    """BotSpeechStarted/Stopped follow what is actually played."""

    def test_started_with_the_first_frame_and_stopped_when_the_last_has_played(self) -> None:
        """Started at 0, stopped at 2000 ms (not interrupted)."""
        r = run(playout_graph())
        assert r.times(BotSpeechStarted) == [0]
        (stopped,) = r.of(BotSpeechStopped)
        assert stopped.pts == 2000 * MS and not stopped.interrupted  # type: ignore[attr-defined]


class TestPauseAndResume:
    """BargeInStarted pauses with the buffer kept; BargeInCancelled resumes at the same sample."""

    def test_a_pause_stops_output_and_a_resume_continues_the_same_audio(self) -> None:
        """Nothing leaves between pause and resume; the whole utterance is played once."""
        r = run(playout_graph([(500, "barge_in_started"), (1500, "barge_in_cancelled")]))
        sink = r.node("sink", Sink)
        arrivals = [t for t, _ in sink.audio]
        assert not [t for t in arrivals if 500 * MS <= t < 1500 * MS]
        assert arrivals[25] == 1500 * MS and arrivals[-1] == 2980 * MS
        assert sink.audio_of(0) == utterance(0, 2000)
        assert len(r.of(BotSpeechStopped)) == 1


class TestInterrupt:
    """An interruption clears the buffer at once."""

    def test_nothing_is_emitted_after_the_interrupt_with_2s_queued(self) -> None:
        """Interrupt at 500 ms with 1.5 s still buffered: no frame arrives at or after it."""
        r = run(playout_graph([(500, "interrupt")], utterance_ms=2000))
        sink = r.node("sink", Sink)
        t_int = r.node("script", Script).interrupted_at[0]
        assert not [t for t, _ in sink.audio if t >= t_int]
        play = r.node("play", AudioPlayout)
        assert play.played(0) == 25 * 320 and play.played(1) == 0
        assert sink.audio_of(0) == utterance(0, 2000)[: 25 * CHUNK]
        (stopped,) = r.of(BotSpeechStopped)
        assert stopped.interrupted and stopped.pts == t_int  # type: ignore[attr-defined]
        assert r.times(Interrupt) == [t_int]

    def test_the_playout_plays_the_new_epoch_after_an_interrupt(self) -> None:
        """Paused, then interrupted: the next utterance (epoch 1) plays in full, from 0."""
        steps = [(300, "barge_in_started"), (400, "interrupt"), (600, "turn_ended")]
        g2 = Graph("next")
        bot = g2.add("test.bot", id="bot", replies=1)
        play = g2.add("audio.playout", id="play")
        sink = g2.add("test.turn_sink", id="sink")
        g2.chain(bot, play, sink)
        g2.add("test.script", id="script", steps=steps)
        r = run(g2)
        assert r.result.ok, r.result.errors
        sink_node = r.node("sink", Sink)
        assert sink_node.audio_of(0) == utterance(0, 2000)[: 15 * CHUNK]
        assert sink_node.audio_of(1) == utterance(1, 2000)
        assert r.node("play", AudioPlayout).played_by_epoch == {0: 15 * 320, 1: 32000}
        assert next(t for t, f in sink_node.audio if f.epoch == 1) == 600 * MS
