"""What the caller heard of a reply: playout events, the pacing model, words, output frames."""

from __future__ import annotations

from vbgraph.events import BargeInCancelled, BargeInStarted, BotSpeechStarted, BotSpeechStopped
from vbgraph.formats import AudioFormat
from vbgraph.providers.openai_realtime.playback import PlaybackClock, Reply, ReplyAudio, ReplyText

MS = 1_000_000


class TestPlaybackClock:
    """Heard time from the playout's events, or from a model of a real-time player."""

    def test_playout_events_measure_playing_time_without_pauses(self) -> None:
        """Started at 1 s, paused 2-3 s for a possible barge-in, asked at 3.5 s: 1.5 s heard."""
        clock = PlaybackClock("playout")
        clock.reset(0)
        clock.emitted(0, 5000 * MS)
        clock.on_event(BotSpeechStarted(pts=1000 * MS))
        assert clock.heard_ms(1800 * MS) == 800
        clock.on_event(BargeInStarted(pts=2000 * MS))
        assert clock.heard_ms(2900 * MS) == 1000 and clock.playing
        clock.on_event(BargeInCancelled(pts=3000 * MS))
        assert clock.heard_ms(3500 * MS) == 1500
        clock.on_event(BotSpeechStopped(pts=3600 * MS, interrupted=True))
        assert clock.heard_ms(9000 * MS) == 1600 and not clock.playing

    def test_heard_never_exceeds_what_was_sent(self) -> None:
        """The playout pads its last chunk: the padding was not the reply."""
        clock = PlaybackClock("playout")
        clock.reset(0)
        clock.emitted(0, 990 * MS)
        clock.on_event(BotSpeechStarted(pts=0))
        clock.on_event(BotSpeechStopped(pts=1000 * MS))
        assert clock.heard_ms(2000 * MS) == 990
        assert not clock.unheard(2000 * MS)

    def test_pacing_models_a_real_time_player_with_underruns(self) -> None:
        """300 ms sent at 0 then 100 ms at 500 ms: 300 heard at 450, 350 at 550."""
        clock = PlaybackClock("pacing")
        clock.reset(0)
        for _ in range(3):
            clock.emitted(0, 100 * MS)
        assert clock.heard_ms(150 * MS) == 150
        assert clock.heard_ms(450 * MS) == 300 and not clock.unheard(450 * MS)
        clock.emitted(500 * MS, 100 * MS)
        assert clock.heard_ms(550 * MS) == 350 and clock.unheard(550 * MS)

    def test_auto_trusts_the_playout_once_it_has_spoken(self) -> None:
        """Before any BotSpeechStarted, pacing; after, the events."""
        clock = PlaybackClock("auto")
        clock.reset(0)
        clock.emitted(0, 1000 * MS)
        assert not clock.uses_playout and clock.heard_ms(400 * MS) == 400
        clock.on_event(BotSpeechStarted(pts=200 * MS))
        assert clock.uses_playout and clock.heard_ms(400 * MS) == 200

    def test_a_new_reply_starts_from_nothing(self) -> None:
        """reset() forgets the last reply's time; an open interval restarts at the reset."""
        clock = PlaybackClock("playout")
        clock.reset(0)
        clock.emitted(0, 1000 * MS)
        clock.on_event(BotSpeechStarted(pts=0))
        clock.reset(700 * MS)
        clock.emitted(700 * MS, 1000 * MS)
        assert clock.heard_ms(900 * MS) == 200


class TestReplyText:
    """Words placed on the audio they arrived with."""

    def test_the_words_heard_are_those_placed_before_the_cut(self) -> None:
        """Pieces at 0, 400, 900 ms: cut at 500 keeps two."""
        text = ReplyText()
        for ms, piece in ((0, "Hello"), (400, " there,"), (900, " friend.")):
            text.add(ms, piece)
        assert text.heard(500) == "Hello there,"
        assert text.heard(0) == ""
        assert text.text == "Hello there, friend."
        text.final = "Hello there, friend!"
        assert text.text == "Hello there, friend!"


class TestReplyAudio:
    """Frames out: pts from sample counts, stale epochs skipped."""

    def test_pts_count_samples_from_the_first_frame_and_never_lag_behind_now(self) -> None:
        """A burst gets consecutive pts; a chunk arriving late is re-anchored at now."""
        fmt = AudioFormat(24000)
        audio = ReplyAudio(fmt, "pacing")
        reply = Reply("resp_1", epoch=0)
        for _ in range(3):
            audio.push(reply, bytes(4800), now=0)  # 100 ms each
        frames = [audio.next_frame(1000 * MS, 0) for _ in range(3)]
        assert [f.pts // MS for f in frames if f is not None] == [1000, 1100, 1200]
        assert audio.next_frame(1300 * MS, 0) is None
        audio.push(reply, bytes(4800), now=0)
        late = audio.next_frame(2000 * MS, 0)
        assert late is not None and late.pts == 2000 * MS
        assert reply.samples == 4 * 2400 and audio.clock.emitted_ns == 400 * MS

    def test_chunks_of_an_interrupted_epoch_are_skipped(self) -> None:
        """After an interruption only the new reply's audio goes out."""
        audio = ReplyAudio(AudioFormat(24000))
        old, new = Reply("resp_1", epoch=0), Reply("resp_2", epoch=1)
        audio.push(old, bytes(480), now=0)
        audio.push(new, b"\x01\x00" * 240, now=0)
        frame = audio.next_frame(0, epoch=1)
        assert frame is not None and frame.epoch == 1 and bytes(frame.data)[0] == 1
        assert len(audio) == 0 and audio.peak == 2
