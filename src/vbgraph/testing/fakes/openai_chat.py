"""A fake OpenAI chat-completions server: a real HTTP/1.1 peer on 127.0.0.1 (asyncio).

It follows ``../shared/protocols/openai.md``, not the client: it checks the
Bearer key (401 with the documented error JSON), validates the request body
(``model``, ``messages`` with known roles and tool results that answer a
preceding call, ``stream: true``, the ``tools`` schema; 400 otherwise), and
streams chunks of the documented shape (role chunk with empty content, one
chunk per piece, a finish chunk with ``delta: {}``, the usage chunk with
``choices: []`` when asked, ``data: [DONE]``) with chunked transfer encoding.

Tests script each response in order with :class:`Script` values: text,
tool calls, an HTTP error, an error in mid-stream, or a stream that *holds*
after some pieces until the client goes away (for interruption tests: the
server records the disconnect). Every request is recorded.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ERROR_401", "FakeOpenAI", "Recorded", "Script"]

ROLES = {"system", "developer", "user", "assistant", "tool"}
ERROR_401 = {
    "message": "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error",
    "param": None,
    "code": "invalid_api_key",
}
ERROR_429 = {
    "message": "Rate limit reached for requests. Please try again in 20s.",
    "type": "requests",
    "param": None,
    "code": "rate_limit_exceeded",
}


@dataclass
class Script:
    """One scripted response."""

    pieces: list[str] = field(default_factory=list)
    """Text pieces, one content delta each."""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    """(function name, arguments JSON) for each call, streamed in fragments."""
    status: int = 200
    error: dict[str, Any] | None = None
    """With status != 200: the error object of the JSON body; with 200: sent mid-stream."""
    hold_after: int | None = None
    """Stop after this many pieces and wait until the client disconnects."""


@dataclass
class Recorded:
    """A request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """``async with FakeOpenAI(api_key="sk-test") as server:`` then ``server.base_url``."""

    def __init__(self, api_key: str | None = "sk-test", model: str = "gpt-4o-mini") -> None:
        self.api_key = api_key
        self.model = model
        self.scripts: list[Script] = []
        self.requests: list[Recorded] = []
        self.rejected: list[str] = []
        """Why each 4xx the server sent was sent."""
        self.held = asyncio.Event()
        """Set when a held stream has sent its pieces and waits."""
        self.disconnected = asyncio.Event()
        """Set when the client closed a held stream's connection."""
        self._server: asyncio.Server | None = None
        self._calls = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *scripts: Script) -> None:
        """Queue responses, used in order by the next requests."""
        self.scripts.extend(scripts)

    async def __aenter__(self) -> FakeOpenAI:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    # -- one connection ----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnected.set()
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        method, path, version = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        if version != "HTTP/1.1" or method != "POST" or path != "/v1/chat/completions":
            await self._json(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self.rejected.append("api key")
            await self._json(writer, 401, {"error": ERROR_401})
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = None
        problem = validate(body, headers)
        if problem:
            self.rejected.append(problem)
            error = {"message": problem, "type": "invalid_request_error", "param": None}
            await self._json(writer, 400, {"error": {**error, "code": None}})
            return
        self.requests.append(Recorded(method, path, headers, body))
        if not self.scripts:
            await self._json(writer, 500, {"error": {"message": "fake server: nothing scripted"}})
            return
        script = self.scripts.pop(0)
        if script.status != 200:
            await self._json(writer, script.status, {"error": script.error or ERROR_429})
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        await self._stream(reader, writer, script, include_usage)

    async def _json(self, writer: asyncio.StreamWriter, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        writer.write(
            f"HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        script: Script,
        include_usage: bool,
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        self._calls += 1
        cid = f"chatcmpl-fake{self._calls:04d}"

        async def send(payload: str) -> None:
            event = f"data: {payload}\n\n".encode()
            # Split each SSE event over two HTTP chunks, as proxies do.
            half = len(event) // 2
            for part in (event[:half], event[half:]):
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()

        def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return json.dumps(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": 1741569952,
                    "model": self.model,
                    "system_fingerprint": "fp_fake",
                    "choices": [choice],
                    "usage": None,
                }
            )

        await send(chunk({"role": "assistant", "content": ""}))
        for i, piece in enumerate(script.pieces):
            if script.hold_after is not None and i == script.hold_after:
                self.held.set()
                if await reader.read(1) == b"":
                    self.disconnected.set()
                return
            await send(chunk({"content": piece}))
        if script.error is not None:
            await send(json.dumps({"error": script.error}))
            writer.write(b"0\r\n\r\n")
            return
        for index, (name, arguments) in enumerate(script.tool_calls):
            first = {
                "index": index,
                "id": f"call_{self._calls:04d}_{index}",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            await send(chunk({"tool_calls": [first]}))
            for k in range(0, len(arguments), 5):
                fragment = {"index": index, "function": {"arguments": arguments[k : k + 5]}}
                await send(chunk({"tool_calls": [fragment]}))
        await send(chunk({}, "tool_calls" if script.tool_calls else "stop"))
        if include_usage:
            prompt = 10 * self._calls
            completion = len(script.pieces) + 7 * len(script.tool_calls)
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            await send(
                json.dumps(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": 1741569952,
                        "model": self.model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        await send("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()


def validate(body: Any, headers: dict[str, str]) -> str | None:
    """Why the request breaks the documented protocol, or None."""
    if "application/json" not in headers.get("content-type", ""):
        return "Content-Type must be application/json"
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    if body.get("stream") is not True:
        return "this fake only streams: stream must be true"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"messages[{i}]: unknown role"
        content = m.get("content")
        if m["role"] == "assistant" and m.get("tool_calls"):
            for call in m["tool_calls"]:
                fn = call.get("function") or {}
                if call.get("type") != "function" or not call.get("id") or not fn.get("name"):
                    return f"messages[{i}].tool_calls: bad call"
                if not isinstance(fn.get("arguments"), str):
                    return f"messages[{i}].tool_calls: arguments must be a string"
                open_calls.add(call["id"])
        elif m["role"] == "tool":
            if m.get("tool_call_id") not in open_calls:
                return f"messages[{i}]: tool message answers no preceding tool call"
            if not isinstance(content, str):
                return f"messages[{i}]: tool content must be a string"
        elif not isinstance(content, str):
            return f"messages[{i}]: content must be a string"
    for i, tool in enumerate(body.get("tools") or []):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(fn, dict):
            return f"tools[{i}]: must be {{type: function, function: {{...}}}}"
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            return f"tools[{i}].function.name is required"
        params = fn.get("parameters", {"type": "object"})
        if not isinstance(params, dict) or params.get("type") != "object":
            return f"tools[{i}].function.parameters must be a JSON schema object"
    return None
