"""The ``llm.openai`` node: the asyncio shell around :mod:`.protocol`.

It owns the connection (a minimal HTTP/1.1 client on ``asyncio.open_connection``,
TLS from :mod:`ssl` for https), the tool-call loop and the conversation
context; every byte of protocol logic is in ``protocol.py`` and
``providers/_http1.py``.

One connection per request, closed at the end (``Connection: close``): no
pool to keep honest across interruptions, at the price of a TCP (and TLS)
handshake per request. Not measured yet; a keep-alive pool is the obvious
next step if the handshake shows up in the first-token latency.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from ...agent.context import (
    DEFAULT_CHARS_PER_SECOND,
    ConversationContext,
    HeardTracker,
    Tool,
    ToolCall,
    load_system_prompt,
)
from ...errors import ProviderConnectionError, ProviderError, ProviderProtocolError
from ...events import AgentReplied, Event, Metric
from ...frames import Frame, LLMTokenFrame, TextFrame, TranscriptFrame
from ...node import GraphPath, Node, NodeContext, NodeParams, Port, frame_port, text_port
from ...registry import register
from .._http1 import ResponseEnd, ResponseHead, ResponseParser, build_request
from .protocol import (
    ChatStream,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallReady,
    Usage,
    request_headers,
)
from .protocol import build_request as build_body

__all__ = ["OpenAILLM"]

API_KEY_ENV = "OPENAI_API_KEY"
_READ_SIZE = 65536


def _typed(params: NodeParams) -> OpenAILLM.Params:
    assert isinstance(params, OpenAILLM.Params)
    return params


@register
class OpenAILLM(Node):
    """Example launch line::

        nodes:
          llm: {type: llm.openai, model: gpt-4o-mini, system_prompt: "Be brief."}
          out: {type: log}
        edges: [llm -> out]

    An OpenAI-compatible chat-completions client (OpenAI, vLLM, llama.cpp
    server, Ollama, Groq ... via ``base_url``). Each user turn on ``in`` is
    added to the conversation and sent with ``stream: true``; the reply
    streams out of ``out`` as ``LLMTokenFrame`` pieces the moment they arrive
    (a TTS node aggregates them into clauses), then the whole reply goes out
    once on ``text`` (optional, for logs and UIs: wire ``out`` to TTS, not
    both, or it speaks twice) and is published as ``AgentReplied``.

    *Key.* ``api_key`` as given, e.g. ``api_key: ${OPENAI_API_KEY}`` in YAML;
    when omitted the node reads ``OPENAI_API_KEY`` from the environment at
    start, and with neither it sends no ``Authorization`` header (local
    servers need none; OpenAI answers 401, reported as a ``NodeError`` that
    says to set the key).

    *Tools.* ``tools`` declares functions, each implemented by a Python
    callable given by import path (``function: mypkg.tools:get_weather``,
    sync or async) with a JSON-schema ``parameters``. When the model calls
    them, the node runs them, appends the results and asks again, at most
    ``max_tool_rounds`` times per turn.

    *Interruption.* The node is interruptible: a barge-in cancels the request
    in flight and closes its connection; the context keeps what had streamed,
    then only what the caller heard (``vbgraph.agent.context``).

    *Metrics.* ``llm.ttft_ms`` (request to first token), ``llm.prompt_tokens``
    and ``llm.completion_tokens`` (from the usage chunk) per request.
    """

    type_name: ClassVar[str] = "llm.openai"
    interruptible: ClassVar[bool] = True

    class Params(NodeParams):
        """Parameters of ``llm.openai``."""

        model: str = Field("gpt-4o-mini", min_length=1, description="Model name.")
        base_url: str = Field(
            "https://api.openai.com/v1", description="API base URL (http or https)."
        )
        api_key: SecretStr | None = Field(
            None,
            description="API key; omitted: $OPENAI_API_KEY, or none for local servers. "
            "Redacted in every printout.",
        )
        temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")
        max_tokens: int | None = Field(None, ge=1, description="Longest reply, in tokens.")
        system_prompt: str | None = Field(None, description="System prompt text.")
        system_prompt_file: GraphPath | None = Field(
            None, description="File holding the system prompt (instead of system_prompt)."
        )
        tools: list[dict[str, Any]] = Field(
            default_factory=list,
            description="Tools: {name, description, parameters (JSON schema), function: 'm:f'}.",
        )
        max_tool_rounds: int = Field(4, ge=0, description="Tool-call rounds allowed per turn.")
        max_messages: int | None = Field(
            None, ge=2, description="Keep at most this many history messages (oldest go first)."
        )
        timeout_s: float = Field(
            30.0, gt=0, description="Connect timeout, and longest wait for the next bytes."
        )
        chars_per_second: float = Field(
            DEFAULT_CHARS_PER_SECOND,
            gt=0,
            description="Speaking rate used to estimate how much of a cut reply was heard.",
        )

        @field_validator("base_url")
        @classmethod
        def _check_url(cls, value: str) -> str:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{value!r} is not an http(s) URL")
            return value.rstrip("/")

        @field_validator("tools")
        @classmethod
        def _check_tools(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
            names = [Tool.from_spec(spec).name for spec in value]
            if len(names) != len(set(names)):
                raise ValueError("two tools have the same name")
            return value

        @model_validator(mode="after")
        def _one_prompt(self) -> Self:
            if self.system_prompt is not None and self.system_prompt_file is not None:
                raise ValueError("give system_prompt or system_prompt_file, not both")
            return self

    params: Params
    inputs: ClassVar[Mapping[str, Port]] = {
        "in": frame_port(TextFrame, TranscriptFrame, doc="The user's turn (final text).")
    }
    outputs: ClassVar[Mapping[str, Port]] = {
        "out": frame_port(LLMTokenFrame, doc="The reply as it streams."),
        "text": text_port(doc="The whole reply, once it is complete (optional)."),
    }
    subscribes: ClassVar[tuple[type[Event], ...] | None] = HeardTracker.EVENTS

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        p = _typed(params)
        self.context = ConversationContext(
            load_system_prompt(p.system_prompt, p.system_prompt_file),
            [Tool.from_spec(spec) for spec in p.tools],
            p.max_messages,
        )
        """The conversation, truncated to what the caller heard after a barge-in."""
        self._heard = HeardTracker(self.context, p.chars_per_second)
        url = urlsplit(p.base_url)
        self._tls = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port or (443 if self._tls else 80)
        default_port = self._port == (443 if self._tls else 80)
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._target = (url.path or "") + "/chat/completions"
        self._api_key: str | None = p.api_key.get_secret_value() if p.api_key else None
        self.requests = 0
        """Requests sent (one per turn plus one per tool round)."""

    def start(self) -> None:
        """Read ``OPENAI_API_KEY`` when no ``api_key`` was given."""
        if self._api_key is None:
            self._api_key = os.environ.get(API_KEY_ENV) or None

    # -- one turn ---------------------------------------------------------------------------

    async def process(self, port: str, frame: Frame) -> None:
        """Answer one user turn: stream the reply, running tools the model asks for."""
        if not isinstance(frame, (TextFrame, TranscriptFrame)):
            return
        if isinstance(frame, TranscriptFrame) and not frame.final:
            return
        text = frame.text.strip()
        if not text:
            return
        p = _typed(self.params)
        epoch = self.ctx.epoch
        self.context.add_user(text)
        self._heard.reply_started(epoch)
        parts: list[str] = []
        try:
            for round_ in range(p.max_tool_rounds + 1):
                # On the last round no tools are offered: the model must answer in words.
                with_tools = round_ < p.max_tool_rounds
                calls = await self._request(epoch, parts, with_tools)
                if not calls:
                    break
                self.context.add_tool_calls(calls)
                for call in calls:
                    result = await self.context.call_tool(call)
                    self.context.add_tool_result(call.id, result)
        except asyncio.CancelledError:
            self.ctx.publish(AgentReplied(text="".join(parts), epoch=epoch, interrupted=True))
            raise
        reply = "".join(parts)
        self.emit("text", TextFrame(reply, pts=self.ctx.now_ns(), epoch=epoch))
        self.ctx.publish(AgentReplied(text=reply, epoch=epoch))

    async def _request(self, epoch: int, parts: list[str], with_tools: bool) -> list[ToolCall]:
        """One request: stream its text out; returns the tool calls it asked for."""
        p = _typed(self.params)
        body = build_body(
            p.model,
            self.context.to_openai(),
            tools=self.context.tool_declarations() if with_tools else (),
            temperature=p.temperature,
            max_tokens=p.max_tokens,
        )
        calls: list[ToolCall] = []
        sent = self.ctx.now_ns()
        first = True
        async with aclosing(self._stream(body)) as events:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    assert isinstance(event, TextDelta)
                    now = self.ctx.now_ns()
                    if first:
                        first = False
                        self.ctx.publish(
                            Metric(metric="llm.ttft_ms", value=(now - sent) / 1e6, unit="ms")
                        )
                    parts.append(event.text)
                    self.context.append_assistant(event.text)
                    self.emit("out", LLMTokenFrame(event.text, pts=now, epoch=epoch))
                elif kind is ToolCallReady:
                    assert isinstance(event, ToolCallReady)
                    calls.append(ToolCall(event.id, event.name, event.arguments))
                elif kind is Usage:
                    assert isinstance(event, Usage)
                    self.ctx.publish(
                        Metric(metric="llm.prompt_tokens", value=event.prompt_tokens, unit="tokens")
                    )
                    self.ctx.publish(
                        Metric(
                            metric="llm.completion_tokens",
                            value=event.completion_tokens,
                            unit="tokens",
                        )
                    )
                elif kind is StreamError:
                    assert isinstance(event, StreamError)
                    raise self._error(event)
        return calls

    def _error(self, error: StreamError) -> ProviderError:
        where = _typed(self.params).base_url
        if error.status == 401:
            hint = (
                f"the server refused the API key: set api_key or ${API_KEY_ENV}"
                if self._api_key
                else f"no API key was given: set api_key or ${API_KEY_ENV}"
            )
            return ProviderError(f"llm.openai: {where}: {hint} ({error})")
        if error.status == 429:
            return ProviderError(f"llm.openai: {where}: rate limited, try again later ({error})")
        return ProviderError(f"llm.openai: {where}: {error}")

    # -- the connection ---------------------------------------------------------------------

    async def _stream(self, body: bytes) -> AsyncGenerator[StreamEvent, None]:
        """Send one request and yield the protocol's events; closes the connection at the end.

        Cancellation (a barge-in) lands in a read; ``finally`` closes the
        socket, so the server sees the client go away at once.
        """
        p = _typed(self.params)
        context = ssl.create_default_context() if self._tls else None
        try:
            async with asyncio.timeout(p.timeout_s):
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=self._host if self._tls else None,
                )
        except (OSError, TimeoutError) as exc:
            raise ProviderConnectionError(
                f"llm.openai: cannot connect to {p.base_url}: {exc or type(exc).__name__}"
            ) from exc
        self.requests += 1
        try:
            headers = request_headers(self._api_key)
            writer.write(build_request("POST", self._host_header, self._target, headers, body))
            await writer.drain()
            http = ResponseParser()
            chat = ChatStream()
            while not chat.closed:
                async with asyncio.timeout(p.timeout_s):
                    data = await reader.read(_READ_SIZE)
                if data:
                    http.receive_data(data)
                else:
                    http.receive_eof()
                for piece in http.events_received():
                    if isinstance(piece, ResponseHead):
                        if piece.status >= 200:
                            chat.receive_status(piece.status, piece.headers.get("content-type", ""))
                    elif isinstance(piece, ResponseEnd):
                        chat.receive_eof()
                    else:
                        chat.receive_data(piece)
                for event in chat.events_received():
                    yield event
                if not data and not chat.closed:
                    raise ProviderProtocolError("the server closed the connection mid-response")
        except TimeoutError as exc:
            raise ProviderConnectionError(
                f"llm.openai: {p.base_url} sent nothing for {p.timeout_s} s"
            ) from exc
        except OSError as exc:
            raise ProviderConnectionError(
                f"llm.openai: connection to {p.base_url} broke: {exc}"
            ) from exc
        finally:
            writer.close()

    # -- events -------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Bot speech and barge-in events: truncate the last reply to what was heard."""
        self._heard.on_event(event)
