"""Typed values of the OpenAI Realtime protocol: audio codecs and the server events we act on.

:class:`~.protocol.RealtimeProtocol` turns the server's JSON events into the
frozen values below (``events_received()``); everything the node needs is in
them, already checked and decoded (audio deltas arrive as ``bytes``, not
base64). GA and beta event names give the same values: ``response.audio.delta``
(beta) and ``response.output_audio.delta`` (GA) are both an :class:`AudioDelta`.

The wire facts are in ``../shared/protocols/openai.md``. This module imports
nothing but the standard library and vbgraph's format types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ...errors import ProviderProtocolError
from ...formats import AudioFormat, Encoding

__all__ = [
    "AudioCodec",
    "AudioDelta",
    "FunctionCall",
    "InputCommitted",
    "ItemTruncated",
    "ResponseCreated",
    "ResponseDone",
    "ServerError",
    "ServerEvent",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "TranscriptDelta",
    "TranscriptDone",
    "UserTranscript",
    "UserTranscriptFailed",
    "codec_for",
]


class AudioCodec(StrEnum):
    """An audio format the Realtime API speaks, by vbgraph's name for it.

    ``pcm16`` is 16-bit little-endian mono at 24 kHz (the only PCM rate the API
    allows); ``pcmu`` and ``pcma`` are G.711 μ-law and A-law at 8 kHz, for
    telephony (no resampling or transcoding between a phone line and the model).
    """

    PCM16 = "pcm16"
    PCMU = "pcmu"
    PCMA = "pcma"

    @property
    def fmt(self) -> AudioFormat:
        """The vbgraph audio format of this codec."""
        return _FORMATS[self]

    def ga_format(self) -> dict[str, Any]:
        """The GA ``audio.input.format`` / ``audio.output.format`` object."""
        if self is AudioCodec.PCM16:
            return {"type": "audio/pcm", "rate": 24000}
        return {"type": f"audio/{self.value}"}

    @property
    def beta_name(self) -> str:
        """The beta ``input_audio_format`` / ``output_audio_format`` string."""
        return _BETA_NAMES[self]

    @classmethod
    def from_wire(cls, value: object) -> AudioCodec:
        """The codec a GA format object or a beta format name denotes.

        Raises :class:`ValueError` naming the value when it is neither (the
        caller turns it into the right error for its side).
        """
        if isinstance(value, str):
            for codec, name in _BETA_NAMES.items():
                if value == name:
                    return codec
        elif isinstance(value, Mapping):
            kind = value.get("type")
            if kind == "audio/pcm":
                rate = value.get("rate", 24000)
                if rate != 24000:
                    raise ValueError(f"audio/pcm rate must be 24000, got {rate!r}")
                return cls.PCM16
            if kind in ("audio/pcmu", "audio/pcma"):
                return cls(kind.removeprefix("audio/"))
        raise ValueError(
            f"unknown audio format {value!r}: expected {{type: audio/pcm, rate: 24000}}, "
            "audio/pcmu, audio/pcma, or a beta name pcm16, g711_ulaw, g711_alaw"
        )


_FORMATS = {
    AudioCodec.PCM16: AudioFormat(24000, 1, Encoding.PCM_S16LE),
    AudioCodec.PCMU: AudioFormat(8000, 1, Encoding.MULAW),
    AudioCodec.PCMA: AudioFormat(8000, 1, Encoding.ALAW),
}
_BETA_NAMES = {
    AudioCodec.PCM16: "pcm16",
    AudioCodec.PCMU: "g711_ulaw",
    AudioCodec.PCMA: "g711_alaw",
}


def codec_for(fmt: AudioFormat) -> AudioCodec:
    """The codec carrying ``fmt``; :class:`ProviderProtocolError` if none does."""
    for codec, known in _FORMATS.items():
        if known == fmt:
            return codec
    raise ProviderProtocolError(f"the Realtime API has no audio format for {fmt}")


# -- server events ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """``session.created``: the first event on a connection, with the default config."""

    session: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    """``session.updated``: a ``session.update`` was accepted; the merged config."""

    session: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Server VAD heard speech begin at ``audio_start_ms`` of the session's input audio.

    The position includes the ``prefix_padding_ms`` the server keeps before
    the speech it detected.
    """

    audio_start_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Server VAD decided speech ended; ``audio_end_ms`` includes the silence it waited for."""

    audio_end_ms: int
    item_id: str


@dataclass(frozen=True, slots=True)
class InputCommitted:
    """The input buffer became user item ``item_id`` (by server VAD or our commit)."""

    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserTranscript:
    """The transcription of user item ``item_id`` (may arrive after the reply started)."""

    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class UserTranscriptFailed:
    """The server could not transcribe user item ``item_id``."""

    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    """A response began (ours, or one server VAD started on its own)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """A piece of the reply's audio, decoded, in the session's output codec."""

    response_id: str
    item_id: str
    content_index: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """A piece of the reply's transcript (of its audio, or its text in text mode).

    ``audio_ms`` is how much audio of the item had arrived when this piece did:
    the transcript is streamed alongside the audio, so it places the words in
    the audio (roughly; used to tell which words a truncated reply had said).
    """

    response_id: str
    item_id: str
    delta: str
    audio_ms: int


@dataclass(frozen=True, slots=True)
class TranscriptDone:
    """The reply item's whole transcript."""

    response_id: str
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """The model asks to call ``name`` with ``arguments`` (JSON text, as sent)."""

    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """``response.done``: the response ended with ``status``.

    ``status`` is ``completed``, ``cancelled``, ``failed`` or ``incomplete``;
    ``reason`` the ``status_details.reason`` (``turn_detected``,
    ``client_cancelled`` ...) when given. ``calls`` are the function calls it
    finished, in order; run them only when ``status == "completed"``.
    """

    response_id: str
    status: str
    reason: str | None = None
    calls: tuple[FunctionCall, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemTruncated:
    """``conversation.item.truncated``: the server cut an item's audio at ``audio_end_ms``."""

    item_id: str
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class ServerError:
    """An ``error`` event. The connection usually stays open.

    ``event_id`` is the client event it answers (when the server said), and
    ``answers`` that event's ``type`` if we sent it (``response.create`` ...).
    """

    message: str
    type: str = ""
    code: str = ""
    param: str | None = None
    event_id: str | None = None
    answers: str | None = None

    def __str__(self) -> str:
        code = f"{self.code}: " if self.code else ""
        return f"{code}{self.message}"


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | InputCommitted
    | UserTranscript
    | UserTranscriptFailed
    | ResponseCreated
    | AudioDelta
    | TranscriptDelta
    | TranscriptDone
    | FunctionCall
    | ResponseDone
    | ItemTruncated
    | ServerError
)
"""Every value :meth:`~.protocol.RealtimeProtocol.events_received` returns."""
