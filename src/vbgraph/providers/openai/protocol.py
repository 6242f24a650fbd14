"""OpenAI-compatible chat completions, streamed over SSE: requests and responses (sans-I/O).

Theory of operation
-------------------
The wire protocol (``../shared/protocols/openai.md``): ``POST
{base_url}/chat/completions`` with a JSON body (``model``, ``messages``,
``stream: true``, ``stream_options.include_usage``, ``tools`` ...); the answer
is ``text/event-stream`` whose events are ``data: <json chunk>`` lines,
separated by blank lines, ended by ``data: [DONE]``. A failed request is an
HTTP error status with a JSON body ``{"error": {message, type, param,
code}}``; an error in mid-stream is a ``data:`` line holding such an
``error`` object.

:func:`build_request` makes the body. :class:`ChatStream` parses one response:

1. ``receive_status(status, content_type)`` once, with the HTTP status;
2. ``receive_data(bytes)`` with body bytes (already de-chunked) in any
   chunking: the events are the same for every split (tested byte by byte);
3. ``receive_eof()`` when the body ends;

and after each call the caller drains ``events_received()``:

* :class:`TextDelta` — assistant text, in order (empty deltas are dropped);
* :class:`ToolCallReady` — a complete tool call, assembled from its
  ``index``-keyed fragments, emitted in index order when the choice finishes;
* :class:`Finished` — the choice's ``finish_reason`` (``stop``, ``length``,
  ``tool_calls``, ``content_filter``, ``function_call``);
* :class:`Usage` — token counts (the extra ``choices: []`` chunk);
* :class:`StreamError` — the server reported an error (HTTP status, or a
  ``data:`` error object); nothing more follows it;
* :class:`StreamDone` — ``data: [DONE]`` arrived; nothing more follows.

Caller obligations: after :class:`StreamDone` or :class:`StreamError`, stop
reading and close the connection. Input that breaks the protocol raises
:class:`~vbgraph.errors.ProviderProtocolError` (a ``data:`` payload that is not
JSON or not a chunk object, a body ending before ``[DONE]``); the stream is
unusable afterwards. A 2xx answer that is not ``text/event-stream`` is read
as an error body (a :class:`StreamError`). Only ``choices[0]`` is
read (requests never ask for ``n > 1``). This module imports no asyncio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderProtocolError

__all__ = [
    "ChatStream",
    "Finished",
    "StreamDone",
    "StreamError",
    "StreamEvent",
    "TextDelta",
    "ToolCallReady",
    "Usage",
    "build_request",
    "request_headers",
]

_MAX_LINE = 1 << 20
"""A single SSE line longer than this (1 MiB) is a protocol error, not a memory leak."""
_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """One complete tool call; ``arguments`` is the JSON text exactly as assembled."""

    index: int
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The choice finished, for ``reason``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for the request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class StreamError:
    """The server reported an error. ``status`` is the HTTP status (200 for mid-stream)."""

    status: int
    message: str
    type: str = ""
    code: str = ""

    def __str__(self) -> str:
        kind = f" ({self.type})" if self.type else ""
        return f"HTTP {self.status}{kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class StreamDone:
    """``data: [DONE]``: the response is complete."""


StreamEvent = TextDelta | ToolCallReady | Finished | Usage | StreamError | StreamDone


def build_request(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
    include_usage: bool = True,
) -> bytes:
    """The JSON body of a streaming chat-completions request."""
    if not model:
        raise ValueError("model must not be empty")
    body: dict[str, Any] = {"model": model, "messages": list(messages), "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = list(tools)
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return json.dumps(body, ensure_ascii=False).encode()


def request_headers(api_key: str | None) -> dict[str, str]:
    """Headers for the request (``Authorization`` only when a key is given)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "User-Agent": "vbgraph",
    }
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _error_from(obj: Any, status: int, fallback: str) -> StreamError:
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        return StreamError(
            status,
            str(err.get("message") or fallback),
            str(err.get("type") or ""),
            "" if code is None else str(code),
        )
    if isinstance(err, str):
        return StreamError(status, err)
    return StreamError(status, fallback)


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class ChatStream:
    """Parser of one streamed chat-completions response (see the module docstring)."""

    def __init__(self) -> None:
        self._events: list[StreamEvent] = []
        self._status: int | None = None
        self._buf = bytearray()
        self._data: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._closed = False
        self._error_body = bytearray()

    @property
    def closed(self) -> bool:
        """True once ``[DONE]`` or an error was seen: read no further."""
        return self._closed

    def events_received(self) -> list[StreamEvent]:
        """The events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    # -- input ----------------------------------------------------------------------------

    def receive_status(self, status: int, content_type: str = "text/event-stream") -> None:
        """The response's HTTP status and ``Content-Type``; call once, first."""
        if self._status is not None:
            raise ProviderProtocolError("receive_status called twice")
        self._status = status
        if 200 <= status < 300 and "text/event-stream" not in content_type.lower():
            # Some servers answer errors with 200 and JSON; read it as an error body.
            self._status = -status

    def receive_data(self, data: bytes) -> None:
        """Body bytes, in any chunking."""
        if self._status is None:
            raise ProviderProtocolError("receive_data before receive_status")
        if self._closed:
            return
        if not 200 <= self._status < 300:
            if len(self._error_body) < _MAX_ERROR_BODY:
                self._error_body += data[: _MAX_ERROR_BODY - len(self._error_body)]
            return
        self._buf += data
        self._lines()

    def receive_eof(self) -> None:
        """The body ended. Reports an error body; a stream without ``[DONE]`` raises."""
        if self._status is None:
            raise ProviderProtocolError("receive_eof before receive_status")
        if self._closed:
            return
        if not 200 <= self._status < 300:
            self._http_error()
            return
        if self._buf:
            self._line(bytes(self._buf))  # a last line without its newline
            self._buf.clear()
        if self._data and not self._closed:
            self._dispatch()
        if not self._closed:
            raise ProviderProtocolError("the event stream ended before 'data: [DONE]'")

    # -- SSE framing ------------------------------------------------------------------------

    def _lines(self) -> None:
        buf = self._buf
        start = 0
        n = len(buf)
        while start < n and not self._closed:
            cr = buf.find(b"\r", start)
            lf = buf.find(b"\n", start)
            if cr < 0 and lf < 0:
                break
            if cr >= 0 and (lf < 0 or cr < lf):
                if cr + 1 == n:
                    break  # a CR at the end may be the first half of CRLF: wait
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            else:
                end, nxt = lf, lf + 1
            self._line(bytes(buf[start:end]))
            start = nxt
        del buf[:start]
        if len(buf) > _MAX_LINE:
            raise ProviderProtocolError(f"an event-stream line is longer than {_MAX_LINE} bytes")

    def _line(self, raw: bytes) -> None:
        if not raw:
            if self._data:
                self._dispatch()
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProviderProtocolError(f"event-stream line is not UTF-8: {exc}") from None
        if line.startswith(":"):
            return  # a comment (keep-alive)
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        # ``event``, ``id``, ``retry`` and unknown fields carry nothing here.

    def _dispatch(self) -> None:
        payload = "\n".join(self._data)
        self._data.clear()
        if payload.strip() == "[DONE]":
            self._flush_calls()
            self._events.append(StreamDone())
            self._closed = True
            return
        try:
            obj = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise ProviderProtocolError(f"data is not JSON ({exc}): {payload[:80]!r}") from None
        if not isinstance(obj, dict):
            raise ProviderProtocolError(f"data is not a JSON object: {payload[:80]!r}")
        if "error" in obj and obj["error"] is not None:
            self._events.append(_error_from(obj, self._status or 200, "error in stream"))
            self._closed = True
            return
        self._chunk(obj)

    # -- chunks -------------------------------------------------------------------------------

    def _chunk(self, obj: dict[str, Any]) -> None:
        choices = obj.get("choices")
        if not isinstance(choices, list):
            raise ProviderProtocolError("chunk has no 'choices' list")
        for choice in choices:
            if not isinstance(choice, dict):
                raise ProviderProtocolError("a choice is not an object")
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                raise ProviderProtocolError("'delta' is not an object")
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._events.append(TextDelta(content))
            elif content is not None and not isinstance(content, str):
                raise ProviderProtocolError("'delta.content' is not a string")
            for fragment in delta.get("tool_calls") or ():
                self._tool_fragment(fragment)
            reason = choice.get("finish_reason")
            if reason is not None:
                self._flush_calls()
                self._events.append(Finished(str(reason)))
        usage = obj.get("usage")
        if isinstance(usage, dict):
            try:
                self._events.append(
                    Usage(
                        int(usage.get("prompt_tokens") or 0),
                        int(usage.get("completion_tokens") or 0),
                        int(usage.get("total_tokens") or 0),
                    )
                )
            except (TypeError, ValueError):
                raise ProviderProtocolError("'usage' counts are not integers") from None

    def _tool_fragment(self, fragment: Any) -> None:
        if not isinstance(fragment, dict) or not isinstance(fragment.get("index", 0), int):
            raise ProviderProtocolError("a tool-call delta is not an object with an int 'index'")
        call = self._calls.setdefault(int(fragment.get("index", 0)), _Call())
        if fragment.get("id"):
            call.id = str(fragment["id"])
        function = fragment.get("function") or {}
        if not isinstance(function, dict):
            raise ProviderProtocolError("a tool-call delta's 'function' is not an object")
        if function.get("name"):
            call.name += str(function["name"]) if not call.name else ""
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            call.arguments.append(arguments)

    def _flush_calls(self) -> None:
        for index in sorted(self._calls):
            call = self._calls[index]
            if not call.name:
                raise ProviderProtocolError(f"tool call #{index} never got a function name")
            self._events.append(
                ToolCallReady(index, call.id or f"call_{index}", call.name, "".join(call.arguments))
            )
        self._calls.clear()

    # -- HTTP errors ----------------------------------------------------------------------------

    def _http_error(self) -> None:
        status = abs(self._status or 0)
        text = bytes(self._error_body).decode("utf-8", "replace")
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        fallback = text.strip()[:200] or "no error body"
        self._events.append(_error_from(obj, status, fallback))
        self._closed = True
