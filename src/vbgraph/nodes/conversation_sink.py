"""The ``conversation.sink`` node: both sides of a call in one WAV, placed by time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..dsp.pcm import mix_s16
from ..formats import AudioFormat
from ..frames import AudioFrame, Frame
from ..io.wav import WavWriter
from ..node import GraphPath, Node, NodeContext, NodeParams, Port, audio_port
from ..registry import register
from ._params import typed

__all__ = ["ConversationSink"]


@register
class ConversationSink(Node):
    """Example launch line::

        nodes:
          caller: {type: file.source, path: speech.wav, realtime: true}
          bot:    {type: tone, rate: 16000, duration_ms: 500}
          conv:   {type: conversation.sink, path: conversation.wav}
        edges: [caller -> conv.user, bot -> conv.bot]

    Writes what a listener on the line would hear: the caller's audio and the
    bot's, mixed into one mono WAV at ``rate``, each frame placed at its
    ``pts`` on the session clock (gaps are silence, overlaps are summed with
    saturation). So the file shows the real timing of a conversation: the
    pause between the caller's last word and the bot's first is the
    voice-to-voice latency a person would measure.

    Negotiation converts both inputs to ``rate`` int16 mono. Audio is held in
    memory until the end (a 10-minute call at 16 kHz is 19 MB) and written on
    ``on_end``; frames arriving for a time already written are mixed in too.
    """

    type_name: ClassVar[str] = "conversation.sink"

    class Params(NodeParams):
        """Parameters of ``conversation.sink``."""

        path: GraphPath = Field(description="The WAV file to write.")
        rate: int = Field(16000, gt=0, description="Sample rate of the file, Hz.")

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "user": audio_port(channels=(1,), encodings=("pcm_s16le",), doc="The caller's audio."),
        "bot": audio_port(channels=(1,), encodings=("pcm_s16le",), doc="The bot's audio."),
    }

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self._p = typed(params, ConversationSink.Params)
        self._fmt = AudioFormat(self._p.rate)
        self._tracks: dict[str, bytearray] = {"user": bytearray(), "bot": bytearray()}
        self.written = False
        self.written_path: Path | None = None
        """The file written (set once ``on_end`` has written it; ``vbgraph run`` prints it)."""

    @classmethod
    def ports(cls, params: NodeParams) -> tuple[Mapping[str, Port], Mapping[str, Port]]:
        """Both inputs at ``rate`` int16 mono."""
        rate = typed(params, cls.Params).rate
        port = audio_port(rates=(rate,), channels=(1,), encodings=("pcm_s16le",))
        return {"user": port, "bot": port}, {}

    def process(self, port: str, frame: Frame) -> None:
        """Place the frame's samples at its pts on its track."""
        if type(frame) is not AudioFrame:
            return
        track = self._tracks[port]
        start = frame.pts * self._p.rate // 1_000_000_000 * 2
        end = start + len(frame.data)
        if len(track) < end:
            track.extend(bytes(end - len(track)))
        # Summed with what is there (usually silence): overlapping frames of one
        # side, e.g. a resumed utterance, are heard together, as on a line.
        track[start:end] = mix_s16([bytes(track[start:end]), frame.data])

    def on_end(self) -> None:
        """Mix the two tracks and write the file."""
        user, bot = self._tracks["user"], self._tracks["bot"]
        size = max(len(user), len(bot))
        user.extend(bytes(size - len(user)))
        bot.extend(bytes(size - len(bot)))
        with WavWriter(self._p.path, self._fmt) as out:
            out.write(mix_s16([bytes(user), bytes(bot)]) if size else b"")
        self.written = True
        self.written_path = Path(self._p.path)
