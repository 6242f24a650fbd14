"""Audio between aiortc media tracks and a :class:`~vbgraph.transports.link.CallLink`.

Theory of operation
-------------------
*Inbound.* aiortc decodes the peer's Opus into PyAV ``AudioFrame`` objects
(48 kHz, s16, stereo as the Opus decoder is set up; mono or other layouts are
handled too). :func:`pump_caller_audio` reads the remote track and hands each
frame, converted by :class:`CallerAudio` to the link's ``caller_format``
(48 kHz mono s16; the downmix is :mod:`vbgraph.dsp`'s compiled kernel), to
``link.push_audio``. The track ending (the peer left) ends the call's input.

*Outbound.* aiortc's RTP sender calls ``recv()`` of our :class:`BotAudioTrack`
in a loop and Opus-encodes what it returns, so the track sets the pace: one
20 ms frame (960 samples, mono s16 at 48 kHz, what aiortc's Opus encoder takes
without resampling) per 20 ms of the event loop's monotonic clock, with
``pts`` counted in samples (``time_base`` 1/48000), never accumulated from
float durations. Each frame comes from :class:`OutboundBuffer`, which drains
``link.poll_outbound()``: bot audio is appended, an ``OutboundClear``
(interruption) drops everything pending, and when there is not a whole frame
the track sends silence. ``transport.out`` runs with ``continuous=True``, so it
sends silence between utterances too and the buffer stays about one chunk
deep; the two 20 ms clocks tick at the same rate but not in phase, and each
time the track ticks just before the graph, one frame of silence goes out and
the buffer grows a frame. To keep that from adding latency for good, silent
frames at the head of the buffer beyond ``slack_ms`` are dropped (counted):
only silence is ever skipped, never the bot's speech.
"""

from __future__ import annotations

import asyncio
import fractions
from dataclasses import dataclass

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler

from ...dsp.convert import FormatConverter
from ...formats import AudioFormat
from ..link import CallLink, OutboundAudio, OutboundClear

__all__ = [
    "BOT_FORMAT",
    "CALLER_FORMAT",
    "FRAME_SAMPLES",
    "BotAudioTrack",
    "CallerAudio",
    "OutboundBuffer",
    "TrackStatistics",
    "pump_caller_audio",
]

WIRE_RATE = 48_000
FRAME_SAMPLES = 960
"""20 ms at 48 kHz: one Opus frame, one ``recv()``."""
CALLER_FORMAT = AudioFormat(WIRE_RATE, 1)
"""What the shell pushes into the link: 48 kHz mono s16."""
BOT_FORMAT = AudioFormat(WIRE_RATE, 1)
"""What ``transport.out`` sends the shell: 48 kHz mono s16 (aiortc's encoder input)."""
_TIME_BASE = fractions.Fraction(1, WIRE_RATE)
_MAX_LAG_S = 0.2
"""If the loop stalled longer than this, re-anchor the pacing instead of bursting."""


class CallerAudio:
    """Decoded frames from the peer → bytes in ``dst`` (default: 48 kHz mono s16)."""

    def __init__(self, dst: AudioFormat = CALLER_FORMAT) -> None:
        self.dst = dst
        self._converter: FormatConverter | None = None
        self._resampler: AudioResampler | None = None

    def convert(self, frame: AudioFrame) -> bytes:
        """One frame's samples in ``dst``; may be empty while a resampler fills."""
        channels = frame.layout.nb_channels
        if frame.format.name != "s16" or channels > 2:
            # Not what aiortc's decoders produce; PyAV converts the odd case.
            return self._via_pyav(frame)
        src = AudioFormat(frame.sample_rate, channels)
        conv = self._converter
        if conv is None or conv.src != src:
            conv = self._converter = FormatConverter(src, self.dst)
        nbytes = frame.samples * src.frame_bytes
        # The plane may be padded past the samples: slice to the real length.
        return bytes(conv.process(memoryview(frame.planes[0])[:nbytes]))

    def _via_pyav(self, frame: AudioFrame) -> bytes:
        if self._resampler is None:
            layout = "mono" if self.dst.channels == 1 else "stereo"
            self._resampler = AudioResampler(format="s16", layout=layout, rate=self.dst.rate)
        size = self.dst.frame_bytes
        return b"".join(
            bytes(memoryview(out.planes[0])[: out.samples * size])
            for out in self._resampler.resample(frame)
        )


async def pump_caller_audio(track: MediaStreamTrack, link: CallLink) -> None:
    """Push the remote track's audio into ``link`` until the track ends.

    Returns when the peer's track ends (the caller then ends the link's
    input); cancel it to stop early.
    """
    audio = CallerAudio(link.caller_format)
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, AudioFrame):
            payload = audio.convert(frame)
            if payload:
                link.push_audio(payload)


@dataclass(frozen=True, slots=True)
class TrackStatistics:
    """Counters of a :class:`BotAudioTrack`."""

    frames: int
    """Frames handed to the encoder (bot audio and silence)."""
    silence_frames: int
    """Frames of silence made up because no whole frame of bot audio was pending."""
    skipped_silence_frames: int
    """Silent frames dropped to keep the buffer within ``slack_ms`` (latency bound)."""
    cleared_bytes: int
    """Pending bot audio dropped by an interruption (not a loss)."""
    overflow_bytes: int
    """Pending bot audio dropped because more than the link's ``max_outbound_ms`` piled up."""
    reanchors: int
    """Times the pacing clock was reset after the event loop stalled."""


class OutboundBuffer:
    """The link's outbound audio cut into frames of ``frame_samples``; no timing of its own."""

    def __init__(self, link: CallLink, frame_samples: int = FRAME_SAMPLES, slack_ms: float = 40):
        fmt = link.bot_format
        self.link = link
        self.frame_bytes = frame_samples * fmt.frame_bytes
        self.silence = bytes(self.frame_bytes)
        self._slack = max(fmt.bytes_for_ms(slack_ms), 0)
        self._max = max(fmt.bytes_for_ms(link.max_outbound_ms), self.frame_bytes)
        self._buf = bytearray()
        self.frames = 0
        self.silence_frames = 0
        self.skipped_silence_frames = 0
        self.cleared_bytes = 0
        self.overflow_bytes = 0

    @property
    def pending_bytes(self) -> int:
        """Bot audio waiting to be sent."""
        return len(self._buf)

    def next_frame(self) -> bytes:
        """The next frame to send: bot audio if a whole frame is pending, else silence."""
        buf, size = self._buf, self.frame_bytes
        while (item := self.link.poll_outbound()) is not None:
            if type(item) is OutboundAudio:
                buf += item.payload
            elif type(item) is OutboundClear:
                self.cleared_bytes += len(buf)
                buf.clear()
            # OutboundMark: nothing to do; a WebRTC peer reports no playback
            # position, so what was sent counts as played.
        while len(buf) >= 2 * size + self._slack and buf.startswith(self.silence):
            del buf[:size]
            self.skipped_silence_frames += 1
        if len(buf) > self._max:
            excess = len(buf) - self._max
            excess -= excess % size
            del buf[:excess]
            self.overflow_bytes += excess
        self.frames += 1
        if len(buf) < size:
            self.silence_frames += 1
            return self.silence
        frame = bytes(buf[:size])
        del buf[:size]
        return frame


class BotAudioTrack(MediaStreamTrack):
    """The bot's voice as an aiortc audio track, paced at real time; see the module docs."""

    kind = "audio"

    def __init__(self, link: CallLink, slack_ms: float = 40) -> None:
        super().__init__()
        if link.bot_format != BOT_FORMAT:
            raise ValueError(f"BotAudioTrack needs bot_format {BOT_FORMAT}, got {link.bot_format}")
        self.buffer = OutboundBuffer(link, FRAME_SAMPLES, slack_ms)
        self._samples = 0
        self._anchor: float | None = None
        self._reanchors = 0

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, at its time (the first one at once)."""
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._anchor is None:
            self._anchor = now
        else:
            due = self._anchor + self._samples / WIRE_RATE
            if due - now < -_MAX_LAG_S:
                # The loop stalled: start the clock again from now rather than
                # bursting every missed frame at once. pts keep counting.
                self._anchor = now - self._samples / WIRE_RATE
                self._reanchors += 1
            elif due > now:
                await asyncio.sleep(due - now)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(self.buffer.next_frame())
        frame.pts = self._samples
        frame.sample_rate = WIRE_RATE
        frame.time_base = _TIME_BASE
        self._samples += FRAME_SAMPLES
        return frame

    def statistics(self) -> TrackStatistics:
        """A snapshot of the counters."""
        b = self.buffer
        return TrackStatistics(
            frames=b.frames,
            silence_frames=b.silence_frames,
            skipped_silence_frames=b.skipped_silence_frames,
            cleared_bytes=b.cleared_bytes,
            overflow_bytes=b.overflow_bytes,
            reanchors=self._reanchors,
        )
