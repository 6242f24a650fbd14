"""The WebRTC media tracks: caller frames → link, link → paced 20 ms frames (virtual time)."""

from __future__ import annotations

import asyncio
import fractions

import numpy as np
import pytest

from vbgraph.clock import VirtualClock
from vbgraph.formats import AudioFormat
from vbgraph.graph.load import loads
from vbgraph.graph.plan import Plan
from vbgraph.runtime.session import Session
from vbgraph.transports.link import CallLink

pytest.importorskip("av")
pytest.importorskip("aiortc")

import av
from aiortc.mediastreams import MediaStreamError

from vbgraph.transports.webrtc.tracks import (
    BOT_FORMAT,
    CALLER_FORMAT,
    FRAME_SAMPLES,
    BotAudioTrack,
    CallerAudio,
    OutboundBuffer,
)

FRAME_BYTES = FRAME_SAMPLES * 2


def link(**kw: object) -> CallLink:
    return CallLink("webrtc", CALLER_FORMAT, BOT_FORMAT, continuous=True, **kw)  # type: ignore[arg-type]


def pcm(value: int, samples: int = FRAME_SAMPLES) -> bytes:
    return np.full(samples, value, "<i2").tobytes()


def frame(data: np.ndarray, layout: str, rate: int = 48_000, fmt: str = "s16") -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
    f.sample_rate = rate
    f.time_base = fractions.Fraction(1, rate)
    return f


class TestCallerAudio:
    def test_a_stereo_opus_frame_is_downmixed_to_mono(self) -> None:
        """Decoded stereo s16 (L=1000, R=3000) → 48 kHz mono at their mean."""
        inter = np.tile(np.array([1000, 3000], "<i2"), FRAME_SAMPLES).reshape(1, -1)
        out = CallerAudio().convert(frame(inter, "stereo"))
        assert np.frombuffer(out, "<i2").tolist() == [2000] * FRAME_SAMPLES

    def test_a_mono_48k_frame_passes_unchanged(self) -> None:
        """Already the caller format: same samples out."""
        x = np.arange(FRAME_SAMPLES, dtype="<i2").reshape(1, -1)
        assert CallerAudio().convert(frame(x, "mono")) == x.tobytes()

    def test_a_frame_at_another_rate_is_resampled(self) -> None:
        """A 16 kHz frame (a narrow codec) comes out at 48 kHz: about three times longer."""
        audio = CallerAudio()
        x = (3000 * np.sin(np.arange(320) / 5)).astype("<i2").reshape(1, -1)
        total = sum(len(audio.convert(frame(x, "mono", 16_000))) for _ in range(10))
        assert 9600 - 128 <= total // 2 <= 9600  # less the resampler's delay

    def test_a_planar_float_frame_goes_through_pyav(self) -> None:
        """fltp (not what aiortc decodes to) still ends as mono s16 at 48 kHz."""
        x = np.full((2, FRAME_SAMPLES), 0.5, dtype=np.float32)
        audio = CallerAudio()
        out = audio.convert(frame(x, "stereo", fmt="fltp"))
        samples = np.frombuffer(out, "<i2")
        assert len(samples) > 0 and abs(int(samples[len(samples) // 2]) - 16384) < 200


class TestOutboundBuffer:
    def test_bot_audio_leaves_in_frames_and_silence_fills_the_gaps(self) -> None:
        """1.5 frames pending: one frame of audio, then silence (the half frame waits)."""
        lk = link()
        lk.send_audio(pcm(7, FRAME_SAMPLES * 3 // 2), FRAME_SAMPLES * 3 // 2, 0)
        buf = OutboundBuffer(lk)
        assert buf.next_frame() == pcm(7)
        assert buf.next_frame() == bytes(FRAME_BYTES)
        assert buf.pending_bytes == FRAME_BYTES // 2
        assert (buf.frames, buf.silence_frames) == (2, 1)

    def test_a_clear_drops_everything_pending(self) -> None:
        """OutboundClear (an interruption) empties the buffer; cleared bytes are counted."""
        lk = link()
        buf = OutboundBuffer(lk)
        lk.send_audio(pcm(5, FRAME_SAMPLES // 2), FRAME_SAMPLES // 2, 0)
        assert buf.next_frame() == bytes(FRAME_BYTES)  # half a frame waits
        lk.send_audio(pcm(5), FRAME_SAMPLES, 0)
        lk.clear(1)
        assert buf.next_frame() == bytes(FRAME_BYTES)
        assert buf.pending_bytes == 0 and buf.cleared_bytes == FRAME_BYTES // 2

    def test_leading_silence_beyond_the_slack_is_skipped_but_speech_never(self) -> None:
        """5 silent frames then speech: silence trimmed to the slack, every speech frame sent."""
        lk = link()
        buf = OutboundBuffer(lk, slack_ms=40)
        for _ in range(5):
            lk.send_audio(pcm(0), FRAME_SAMPLES, 0)
        for value in (1, 2, 3, 4):
            lk.send_audio(pcm(value), FRAME_SAMPLES, 0)
        sent = [buf.next_frame() for _ in range(8)]
        speech = [f for f in sent if f != bytes(FRAME_BYTES)]
        assert speech == [pcm(1), pcm(2), pcm(3), pcm(4)]
        assert buf.skipped_silence_frames == 5
        assert buf.pending_bytes == 0

    def test_more_than_the_links_bound_pending_drops_the_oldest_counted(self) -> None:
        """A backlog past max_outbound_ms (200 ms here) is cut to it: whole frames, counted."""
        lk = link(max_outbound_ms=200)
        buf = OutboundBuffer(lk)
        for chunk in range(10):  # ten 100 ms chunks: 50 frames, numbered 1..50
            lk.send_audio(b"".join(pcm(chunk * 5 + k + 1) for k in range(5)), 5 * 960, 0)
        first = buf.next_frame()
        assert buf.overflow_bytes == 40 * FRAME_BYTES
        assert first == pcm(41)


class TestBotAudioTrack:
    def test_frames_are_20ms_mono_with_sample_count_pts_at_real_time(self) -> None:
        """50 frames: 960 samples each, pts 0, 960 ...; 49 x 20 ms of (virtual) time apart."""

        async def main() -> tuple[list[int], float, set[tuple[int, str, int]]]:
            track = BotAudioTrack(link())
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            frames = [await track.recv() for _ in range(50)]
            shapes = {(f.samples, f.layout.name, f.sample_rate) for f in frames}
            return [int(f.pts or 0) for f in frames], loop.time() - t0, shapes

        pts, elapsed, shapes = VirtualClock().run(main())
        assert pts == [i * 960 for i in range(50)]
        assert elapsed == pytest.approx(49 * 0.020, abs=1e-6)
        assert shapes == {(960, "mono", 48_000)}

    def test_a_stopped_track_ends_with_media_stream_error(self) -> None:
        """recv after stop() raises MediaStreamError, which ends aiortc's sender."""

        async def main() -> None:
            track = BotAudioTrack(link())
            track.stop()
            await track.recv()

        with pytest.raises(MediaStreamError):
            VirtualClock().run(main())

    def test_the_track_refuses_a_link_in_another_format(self) -> None:
        """bot_format must be 48 kHz mono s16, what aiortc's encoder takes."""
        with pytest.raises(ValueError, match="bot_format"):
            BotAudioTrack(CallLink("webrtc", CALLER_FORMAT, AudioFormat(16000)))

    def test_after_a_stall_the_track_catches_up_by_skipping_silence_only(self) -> None:
        """The encoder stalls 0.5 s mid-speech: 25 frames pile up; the next silence is
        trimmed back to the slack, and every loud frame of the echo still goes out."""

        async def main() -> tuple[int, int, int, int, int]:
            lk = link()
            track = BotAudioTrack(lk)
            session = Session(echo_plan(), attachments=[lk])
            await session.start()
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            pushed = 0

            async def microphone() -> None:  # 20 s: 3 s of tone in every 6 s
                nonlocal pushed
                for i in range(1000):
                    on = (i // 150) % 2 == 0
                    pushed += on
                    lk.push_audio(pcm(4000 if on else 0))
                    await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - loop.time()))
                lk.end_input()

            mic = asyncio.create_task(microphone())
            deepest = loud = settled = 0
            for i in range(1100):
                if i == 100:  # mid-tone: the consumer does not run for 0.5 s
                    await asyncio.sleep(0.5)
                out = await track.recv()
                loud += bool(np.frombuffer(bytes(out.planes[0]), "<i2").any())
                deepest = max(deepest, track.buffer.pending_bytes)
                if i == 440:  # the end of the next silent stretch (ticks 300-449)
                    settled = track.buffer.pending_bytes
            await mic
            await session.wait()
            stats = track.statistics()
            return deepest, settled, loud, pushed, stats.skipped_silence_frames

        deepest, settled, loud, pushed, skipped = VirtualClock().run(main())
        assert deepest >= 20 * FRAME_BYTES  # the stall really piled audio up
        assert settled <= 3 * FRAME_BYTES  # ... and the latency went back down
        assert skipped >= 20
        assert loud >= pushed  # no speech was skipped


def echo_plan() -> Plan:
    return loads(
        """
version: 1
name: echo
nodes:
  caller: {type: transport.in, sample_rate: 16000}
  gain: {type: gain, db: 0}
  speaker: {type: transport.out, chunk_ms: 20}
edges: [caller -> gain -> speaker]
"""
    ).compile()
