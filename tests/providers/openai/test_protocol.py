"""The sans-I/O chat-completions protocol: requests, SSE parsing, tool calls, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbgraph.errors import ProviderProtocolError
from vbgraph.providers.openai.protocol import (
    ChatStream,
    Finished,
    StreamDone,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallReady,
    Usage,
    build_request,
    request_headers,
)
from vbgraph.testing.imports import assert_imports_without

DATA = Path(__file__).parent / "data"


def golden(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(chunks: list[bytes], status: int = 200, eof: bool = True) -> list[StreamEvent]:
    stream = ChatStream()
    stream.receive_status(status, "text/event-stream; charset=utf-8")
    events: list[StreamEvent] = []
    for chunk in chunks:
        stream.receive_data(chunk)
        events += stream.events_received()
    if eof:
        stream.receive_eof()
        events += stream.events_received()
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


TEXT = [
    TextDelta("Hello"),
    TextDelta("!"),
    TextDelta(" How"),
    TextDelta(" can"),
    TextDelta(" I"),
    TextDelta(" help"),
    TextDelta(" you"),
    TextDelta(" today"),
    TextDelta("?"),
    Finished("stop"),
    Usage(19, 10, 29),
    StreamDone(),
]
TOOLS = [
    ToolCallReady(
        0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather", '{"location":"Paris, France"}'
    ),
    ToolCallReady(1, "call_ABCD9pD3xa9XTPNJ32zg2hcB", "get_time", '{"tz":"Europe/Paris"}'),
    Finished("tool_calls"),
    Usage(80, 41, 121),
    StreamDone(),
]


class TestRequest:
    """Building the request (protocol doc: body and headers)."""

    def test_the_body_asks_for_a_stream_with_usage(self) -> None:
        """model, messages, stream: true and stream_options.include_usage are always sent."""
        body = json.loads(build_request("gpt-4o-mini", [{"role": "user", "content": "hi"}]))
        assert body == {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def test_tools_temperature_and_max_tokens_are_sent_only_when_given(self) -> None:
        """Optional fields appear with their documented names."""
        tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        body = json.loads(build_request("m", [], tools=[tool], temperature=0.2, max_tokens=50))
        assert body["tools"] == [tool]
        assert body["temperature"] == 0.2 and body["max_tokens"] == 50

    def test_an_empty_model_is_refused(self) -> None:
        """A request without a model is a local error, not a 400 from the server."""
        with pytest.raises(ValueError, match="model"):
            build_request("", [])

    def test_the_bearer_header_is_sent_only_with_a_key(self) -> None:
        """Local servers get no Authorization header when there is no key."""
        assert request_headers("sk-1")["Authorization"] == "Bearer sk-1"
        assert "Authorization" not in request_headers(None)
        assert request_headers(None)["Content-Type"] == "application/json"


class TestGoldenStreams:
    """Whole responses as the server sends them (tests/providers/openai/data)."""

    def test_a_text_stream_gives_deltas_finish_usage_and_done(self) -> None:
        """The role chunk and the empty first delta give nothing; each token one TextDelta."""
        assert parse([golden("text_stream.sse")]) == TEXT

    def test_tool_call_fragments_are_assembled_by_index(self) -> None:
        """Parallel calls' argument fragments are joined per index, emitted at the finish."""
        assert parse([golden("tool_calls.sse")]) == TOOLS

    def test_an_error_object_in_the_stream_is_an_error_event(self) -> None:
        """A data line holding an error ends the stream with a StreamError."""
        events = parse([golden("error_in_stream.sse")])
        assert events[0] == TextDelta("Sure")
        assert events[1] == StreamError(
            200,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
        assert len(events) == 2

    @pytest.mark.parametrize("name", ["text_stream_truncated.sse", "tool_calls_truncated.sse"])
    def test_a_truncated_stream_raises_at_eof(self, name: str) -> None:
        """A body that ends before data: [DONE] is a protocol error."""
        with pytest.raises(ProviderProtocolError):
            parse([golden(name)])

    @pytest.mark.parametrize("name", ["text_stream_invalid.sse", "tool_calls_invalid.sse"])
    def test_an_invalid_stream_raises(self, name: str) -> None:
        """A data line that is not a chunk, or a call without a name, is a protocol error."""
        with pytest.raises(ProviderProtocolError):
            parse([golden(name)])

    def test_data_after_done_is_ignored(self) -> None:
        """Nothing is parsed once [DONE] has arrived."""
        events = parse([golden("text_stream.sse") + b"data: not json\n\n"])
        assert events == TEXT


class TestChunking:
    """Any split of the bytes gives the same events (STYLE rule 11)."""

    @pytest.mark.parametrize("name", ["text_stream.sse", "tool_calls.sse"])
    def test_every_single_split_point_gives_the_same_events(self, name: str) -> None:
        """Two pieces, cut at each byte boundary in turn."""
        data = golden(name)
        whole = parse([data])
        for i in range(len(data) + 1):
            assert parse([data[:i], data[i:]]) == whole, i

    def test_one_byte_at_a_time_gives_the_same_events(self) -> None:
        """Feeding single bytes parses like one call."""
        data = golden("tool_calls.sse")
        assert parse([data[i : i + 1] for i in range(len(data))]) == TOOLS

    @settings(max_examples=200, deadline=None)
    @given(cuts=st.lists(st.integers(min_value=0), max_size=40))
    def test_arbitrary_chunking_gives_the_same_events(self, cuts: list[int]) -> None:
        """hypothesis picks the cut points."""
        assert parse(split_at(golden("text_stream.sse"), cuts)) == TEXT

    @settings(max_examples=100, deadline=None)
    @given(cuts=st.lists(st.integers(min_value=0), max_size=20))
    def test_crlf_line_endings_parse_the_same_under_any_chunking(self, cuts: list[int]) -> None:
        """SSE allows CRLF and CR line ends; a CR split from its LF is not a blank line."""
        data = golden("text_stream.sse").replace(b"\n", b"\r\n")
        assert parse(split_at(data, cuts)) == TEXT
        assert parse(split_at(golden("text_stream.sse").replace(b"\n", b"\r"), cuts)) == TEXT


class TestSSE:
    """Event-stream framing details."""

    def test_comments_and_other_fields_are_ignored(self) -> None:
        """Keep-alive comments, event: and id: lines carry nothing."""
        body = (
            b": keep-alive\n\nevent: message\nid: 1\n"
            b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: [DONE]\n\n'
        )
        assert parse([body]) == [TextDelta("x"), StreamDone()]

    def test_multi_line_data_is_joined_with_newlines(self) -> None:
        """Several data: lines in one event form one JSON payload."""
        body = b'data: {"choices":\ndata: [{"delta":{"content":"y"}}]}\n\ndata:[DONE]\n\n'
        assert parse([body]) == [TextDelta("y"), StreamDone()]

    def test_a_multibyte_character_split_across_chunks_survives(self) -> None:
        """UTF-8 is decoded per line, not per chunk."""
        body = 'data: {"choices":[{"delta":{"content":"été"}}]}\n\ndata: [DONE]\n\n'.encode()
        cut = body.index("é".encode()) + 1
        assert parse([body[:cut], body[cut:]]) == [TextDelta("été"), StreamDone()]

    @pytest.mark.parametrize(
        "payload",
        [b"[1, 2]", b'{"choices": 3}', b'{"choices":[{"delta":{"content":5}}]}', b"\xff\xfe"],
    )
    def test_payloads_that_are_not_chunks_raise(self, payload: bytes) -> None:
        """Each malformed payload raises the documented error, never anything else."""
        with pytest.raises(ProviderProtocolError):
            parse([b"data: " + payload + b"\n\n"], eof=False)


class TestHttpErrors:
    """Errors reported through the HTTP status (protocol doc: 401 and 429 JSON bodies)."""

    @pytest.mark.parametrize(("status", "name"), [(401, "error_401.json"), (429, "error_429.json")])
    def test_an_error_status_gives_the_error_object(self, status: int, name: str) -> None:
        """The JSON body's message, type and code become a StreamError after EOF."""
        body = golden(name)
        expected: dict[str, Any] = json.loads(body)["error"]
        events = parse([body[:10], body[10:]], status=status)
        assert events == [
            StreamError(status, expected["message"], expected["type"], expected["code"])
        ]

    def test_a_non_json_error_body_is_quoted(self) -> None:
        """A proxy's HTML error page still gives a readable message."""
        events = parse([b"<html>Bad Gateway</html>"], status=502)
        assert events == [StreamError(502, "<html>Bad Gateway</html>")]

    def test_a_success_that_is_not_an_event_stream_is_an_error(self) -> None:
        """200 with JSON instead of SSE is reported, not parsed as events."""
        stream = ChatStream()
        stream.receive_status(200, "application/json")
        stream.receive_data(b'{"error": {"message": "stream not supported"}}')
        stream.receive_eof()
        assert stream.events_received() == [StreamError(200, "stream not supported")]

    def test_calls_out_of_order_are_usage_errors_of_the_caller(self) -> None:
        """Data before the status is refused."""
        with pytest.raises(ProviderProtocolError):
            ChatStream().receive_data(b"data: x\n\n")


def test_the_protocol_module_imports_without_asyncio_or_network_libraries() -> None:
    """STYLE rule 1: protocol.py and the HTTP codec import no asyncio, ssl, websockets, aiohttp."""
    assert_imports_without(["vbgraph.providers.openai.protocol", "vbgraph.providers._http1"])
