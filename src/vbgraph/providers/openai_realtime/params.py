"""The parameters of ``s2s.openai_realtime`` and the session config they ask for."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from ...agent.context import Tool, load_system_prompt
from ...node import GraphPath, NodeParams
from .._secrets import ApiKey, api_key_field
from .config import DEFAULT_URL, ServerVad, SessionConfig
from .events import AudioCodec
from .playback import TruncateFrom

__all__ = ["API_KEY_ENV", "RealtimeParams"]

API_KEY_ENV = "OPENAI_API_KEY"


class RealtimeParams(NodeParams):
    """Parameters of ``s2s.openai_realtime`` (the node's ``Params``)."""

    model: str = Field("gpt-realtime", min_length=1, description="Realtime model name.")
    url: str = Field(DEFAULT_URL, description="WebSocket URL (ws or wss), without ?model=.")
    api_key: ApiKey = api_key_field(API_KEY_ENV)
    api: Literal["ga", "beta"] = Field(
        "ga", description="Protocol: GA, or beta (sends 'OpenAI-Beta: realtime=v1')."
    )
    instructions: str | None = Field(None, description="System instructions.")
    instructions_file: GraphPath | None = Field(
        None, description="File holding the instructions (instead of instructions)."
    )
    voice: str = Field("alloy", min_length=1, description="The model's voice.")
    audio_format: AudioCodec = Field(
        AudioCodec.PCM16, description="pcm16 (24 kHz), pcmu or pcma (8 kHz), both ways."
    )
    turn_detection: Literal["server_vad", "none"] = Field(
        "server_vad", description="Server VAD finds turns, or none: a local VAD's events do."
    )
    vad_threshold: float = Field(0.5, ge=0, le=1, description="Server VAD threshold.")
    prefix_padding_ms: int = Field(300, ge=0, description="Server VAD: audio kept before.")
    silence_duration_ms: int = Field(500, ge=0, description="Server VAD: silence ending a turn.")
    barge_in: bool = Field(
        True,
        description="Interrupt the bot when the caller speaks (false: a turn node does).",
    )
    transcription_model: str | None = Field(
        "whisper-1", description="Transcribe the caller with this model (null: off)."
    )
    language: str | None = Field(None, description="The caller's language hint (ISO 639-1).")
    tools: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Tools: {name, description, parameters (JSON schema), function: 'm:f'}.",
    )
    max_tool_rounds: int = Field(4, ge=0, description="Tool-call rounds allowed per turn.")
    truncate_from: TruncateFrom = Field(
        "auto", description="Measure what was heard from playout events, pacing, or auto."
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="Connect and configure timeout.")
    end_timeout_s: float = Field(
        30.0, ge=0, description="At end of input, wait this long for the reply in flight."
    )
    reconnect_attempts: int = Field(3, ge=0, description="Reconnects after a broken link.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(f"{value!r} is not a ws:// or wss:// URL")
        return value

    @field_validator("tools")
    @classmethod
    def _check_tools(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [Tool.from_spec(spec).name for spec in value]
        if len(names) != len(set(names)):
            raise ValueError("two tools have the same name")
        return value

    @model_validator(mode="after")
    def _one_prompt(self) -> Self:
        if self.instructions is not None and self.instructions_file is not None:
            raise ValueError("give instructions or instructions_file, not both")
        return self

    def session_config(self, tools: list[Tool]) -> SessionConfig:
        """The session these params ask for (reads ``instructions_file``)."""
        vad = None
        if self.turn_detection == "server_vad":
            vad = ServerVad(self.vad_threshold, self.prefix_padding_ms, self.silence_duration_ms)
        return SessionConfig(
            model=self.model,
            instructions=load_system_prompt(self.instructions, self.instructions_file),
            voice=self.voice,
            input_codec=self.audio_format,
            output_codec=self.audio_format,
            turn_detection=vad,
            transcription_model=self.transcription_model,
            transcription_language=self.language,
            tools=[tool.declaration()["function"] for tool in tools],
        )
