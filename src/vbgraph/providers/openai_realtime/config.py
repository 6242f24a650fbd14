"""The Realtime session configuration and its two wire shapes (GA and beta).

A :class:`SessionConfig` is what the node asks of the server; it is sent with
``session.update`` as the GA nested shape (``session.type: "realtime"``,
``audio.input.format`` ...) or the flat beta shape (``input_audio_format`` ...).
The server answers ``session.updated`` with the merged config, or an
``error`` naming the field it refused.

Nothing here does I/O; the connection URL and headers are built here too so
the node and the tests agree on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .events import AudioCodec

__all__ = ["DEFAULT_URL", "Api", "ServerVad", "SessionConfig", "connect_headers", "connect_url"]

DEFAULT_URL = "wss://api.openai.com/v1/realtime"


class Api(StrEnum):
    """Which protocol version to speak: ``ga`` (current) or ``beta`` (``OpenAI-Beta`` header)."""

    GA = "ga"
    BETA = "beta"


@dataclass(frozen=True, slots=True)
class ServerVad:
    """``turn_detection: {type: server_vad, ...}``: the server finds turns in the audio.

    ``create_response``: the server answers each turn on its own.
    ``interrupt_response``: speech that starts while a response is being
    generated cancels it on the server (the client still has to stop playing
    and truncate what was not heard).
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    def to_wire(self) -> dict[str, Any]:
        """The ``turn_detection`` object."""
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What to ask of the session. ``turn_detection=None`` means the client commits turns.

    ``tools`` are function declarations ``{name, description, parameters}``
    (the Realtime shape is flat: no nested ``function`` object).
    ``transcription_model`` turns on the transcription of the user's audio
    (``None``: no user transcripts).
    """

    model: str = "gpt-realtime"
    instructions: str = ""
    voice: str = "alloy"
    input_codec: AudioCodec = AudioCodec.PCM16
    output_codec: AudioCodec = AudioCodec.PCM16
    turn_detection: ServerVad | None = field(default_factory=ServerVad)
    transcription_model: str | None = "whisper-1"
    transcription_language: str | None = None
    tools: Sequence[Mapping[str, Any]] = ()
    tool_choice: str = "auto"

    def _tools(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "name": str(tool["name"]),
                "description": str(tool.get("description", "")),
                "parameters": dict(tool.get("parameters", {"type": "object", "properties": {}})),
            }
            for tool in self.tools
        ]

    def _transcription(self) -> dict[str, Any] | None:
        if self.transcription_model is None:
            return None
        out: dict[str, Any] = {"model": self.transcription_model}
        if self.transcription_language:
            out["language"] = self.transcription_language
        return out

    def to_session(self, api: Api) -> dict[str, Any]:
        """The ``session`` object of ``session.update`` in ``api``'s shape."""
        turn = None if self.turn_detection is None else self.turn_detection.to_wire()
        session: dict[str, Any]
        if api is Api.GA:
            session = {
                "type": "realtime",
                "model": self.model,
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": self.input_codec.ga_format(),
                        "transcription": self._transcription(),
                        "turn_detection": turn,
                    },
                    "output": {"format": self.output_codec.ga_format(), "voice": self.voice},
                },
            }
        else:
            session = {
                # Beta could not produce audio without text: both modalities.
                "modalities": ["audio", "text"],
                "voice": self.voice,
                "input_audio_format": self.input_codec.beta_name,
                "output_audio_format": self.output_codec.beta_name,
                "input_audio_transcription": self._transcription(),
                "turn_detection": turn,
            }
        if self.instructions:
            session["instructions"] = self.instructions
        if self.tools:
            session["tools"] = self._tools()
            session["tool_choice"] = self.tool_choice
        return session


def connect_url(url: str, model: str) -> str:
    """``url`` with ``?model=<model>`` added (other query parameters are kept)."""
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode({"model": model})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def connect_headers(api_key: str, api: Api) -> dict[str, str]:
    """The handshake headers: the Bearer key, and ``OpenAI-Beta: realtime=v1`` for beta."""
    headers = {"Authorization": f"Bearer {api_key}"}
    if api is Api.BETA:
        headers["OpenAI-Beta"] = "realtime=v1"
    return headers
