"""The ``llm.openai`` node against a fake server on 127.0.0.1 speaking the documented protocol."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field
from tests.providers.openai import tools

from vbgraph.errors import ConfigError
from vbgraph.events import (
    AgentReplied,
    BotSpeechStarted,
    BotSpeechStopped,
    Event,
    Metric,
    NodeError,
)
from vbgraph.frames import Frame, LLMTokenFrame, TextFrame
from vbgraph.graph.builder import Graph
from vbgraph.node import Node, NodeContext, NodeParams, Port, frame_port
from vbgraph.providers.openai.node import OpenAILLM
from vbgraph.registry import Registry, default_registry
from vbgraph.runtime.session import Session
from vbgraph.testing.fakes.openai_chat import ERROR_401, FakeOpenAI, Script

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
    "function": "tests.providers.openai.tools:get_weather",
}


class Say(Node):
    """Test source: the user's turns as TextFrames; ``hold`` keeps the session open."""

    type_name: ClassVar[str] = "test.say"

    class Params(NodeParams):
        texts: list[str] = Field(default_factory=list, description="User turns.")
        hold: bool = Field(False, description="Wait until ended instead of returning.")

    outputs: ClassVar[Mapping[str, Port]] = {"out": frame_port(TextFrame)}

    async def run(self) -> None:
        assert isinstance(self.params, Say.Params)
        for text in self.params.texts:
            self.emit("out", TextFrame(text, epoch=self.ctx.epoch))
            await self.ctx.drain()
        if self.params.hold:
            await asyncio.Event().wait()


class Sink(Node):
    """Test sink: keeps frames."""

    type_name: ClassVar[str] = "test.llm_sink"
    inputs: ClassVar[Mapping[str, Port]] = {"in": frame_port(LLMTokenFrame, TextFrame)}

    def __init__(self, node_id: str, params: NodeParams, ctx: NodeContext) -> None:
        super().__init__(node_id, params, ctx)
        self.frames: list[Frame] = []
        self._arrived: asyncio.Event | None = None

    def start(self) -> None:
        self._arrived = asyncio.Event()

    def process(self, port: str, frame: Frame) -> None:
        self.frames.append(frame)
        assert self._arrived is not None
        self._arrived.set()

    async def wait_for(self, count: int) -> None:
        """Return once ``count`` frames have arrived."""
        assert self._arrived is not None
        while len(self.frames) < count:
            self._arrived.clear()
            await self._arrived.wait()


def sink(session: Session, node_id: str) -> Sink:
    node = session.nodes[node_id]
    assert isinstance(node, Sink)
    return node


def registry() -> Registry:
    reg = Registry(load_entry_points=False)
    for cls in default_registry():
        reg.add(cls)
    reg.add(Say)
    reg.add(Sink)
    return reg


class Run:
    """A finished session: the llm node, the sinks' frames and the events."""

    def __init__(self, session: Session, events: list[Event]) -> None:
        self.session = session
        self.events = events
        self.llm = session.nodes["llm"]
        assert isinstance(self.llm, OpenAILLM)
        tokens = session.nodes["tokens"]
        text = session.nodes["text"]
        assert isinstance(tokens, Sink) and isinstance(text, Sink)
        self.tokens = [f.text for f in tokens.frames if isinstance(f, LLMTokenFrame)]
        self.replies = [f.text for f in text.frames if isinstance(f, TextFrame)]

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if type(e) is kind]

    def metric(self, name: str) -> list[float]:
        return [e.value for e in self.of(Metric) if e.metric == name]


async def run_llm(
    server: FakeOpenAI,
    texts: list[str],
    hold: bool = False,
    during: Callable[[Session], Awaitable[None]] | None = None,
    **params: Any,
) -> Run:
    """say -> llm -> (tokens, text) sinks, on a real loop, against ``server``."""
    g = Graph("llm")
    say = g.add("test.say", id="say", texts=texts, hold=hold)
    params.setdefault("base_url", server.base_url)
    params.setdefault("api_key", "sk-test")
    llm = g.add("llm.openai", id="llm", **params)
    g.connect(say, llm)
    g.connect(llm["out"], g.add("test.llm_sink", id="tokens"))
    g.connect(llm["text"], g.add("test.llm_sink", id="text"))
    session = Session(g.compile(registry()))
    events: list[Event] = []
    listener = session.events()

    async def collect() -> None:
        events.extend([event async for event in listener])

    collector = asyncio.create_task(collect())
    await session.start()
    if during is not None:
        await during(session)
    await session.wait()
    await collector
    return Run(session, events)


def run(coro: Awaitable[Run]) -> Run:
    async def main() -> Run:
        async with asyncio.timeout(20):  # a safety net against hangs, not a timing assertion
            return await coro

    return asyncio.run(main(), debug=True)


def serve(test: Callable[[FakeOpenAI], Awaitable[Run]], **server: Any) -> Run:
    async def main() -> Run:
        async with FakeOpenAI(**server) as fake:
            return await test(fake)

    return run(main())


class TestStreaming:
    """A turn in, the reply streamed out (protocol doc: chat completions streaming)."""

    def test_tokens_stream_out_in_order_and_the_whole_reply_follows(self) -> None:
        """Each content delta is one LLMTokenFrame; 'text' gets the reply once."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["Hello", "!", " How", " can", " I", " help", "?"]))
            return await run_llm(fake, ["hi there"], system_prompt="Be brief.")

        r = serve(test)
        assert r.session.result().ok, r.session.result().errors
        assert r.tokens == ["Hello", "!", " How", " can", " I", " help", "?"]
        assert r.replies == ["Hello! How can I help?"]
        assert [(e.text, e.interrupted) for e in r.of(AgentReplied)] == [
            ("Hello! How can I help?", False)
        ]

    def test_the_request_follows_the_documented_shape(self) -> None:
        """model, messages (system then user), stream: true, usage asked, Bearer key."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["ok"]))
            r = await run_llm(
                fake, ["what time is it"], model="gpt-test", system_prompt="S.", temperature=0.5
            )
            (req,) = fake.requests
            assert req.headers["authorization"] == "Bearer sk-test"
            assert req.body["model"] == "gpt-test"
            assert req.body["stream"] is True
            assert req.body["stream_options"] == {"include_usage": True}
            assert req.body["temperature"] == 0.5
            assert req.body["messages"] == [
                {"role": "system", "content": "S."},
                {"role": "user", "content": "what time is it"},
            ]
            assert "tools" not in req.body
            return r

        serve(test)

    def test_the_history_grows_turn_by_turn(self) -> None:
        """The second request carries the first turn and its reply."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["One."]), Script(pieces=["Two."]))
            r = await run_llm(fake, ["first", "second"])
            assert fake.requests[1].body["messages"] == [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "One."},
                {"role": "user", "content": "second"},
            ]
            return r

        assert serve(test).replies == ["One.", "Two."]

    def test_usage_is_published_as_metrics(self) -> None:
        """The usage chunk becomes llm.prompt_tokens and llm.completion_tokens; ttft too."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["a", "b", "c"]))
            return await run_llm(fake, ["count"])

        r = serve(test)
        assert r.metric("llm.prompt_tokens") == [10]
        assert r.metric("llm.completion_tokens") == [3]
        assert len(r.metric("llm.ttft_ms")) == 1

    def test_the_system_prompt_can_come_from_a_file(self, tmp_path: Path) -> None:
        """system_prompt_file is read once and sent as the system message."""
        (tmp_path / "prompt.txt").write_text("You are a kiosk.\n")

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["Hi."]))
            r = await run_llm(fake, ["hello"], system_prompt_file=str(tmp_path / "prompt.txt"))
            assert fake.requests[0].body["messages"][0] == {
                "role": "system",
                "content": "You are a kiosk.",
            }
            return r

        serve(test)


class TestTools:
    """Tool calls (protocol doc: tool-call deltas, follow-up request)."""

    def test_a_tool_call_runs_the_python_callable_and_asks_again(self) -> None:
        """The assembled call runs get_weather; the result goes back; the answer streams."""
        tools.CALLS.clear()

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(
                Script(tool_calls=[("get_weather", '{"city": "Paris"}')]),
                Script(pieces=["It is sunny", " in Paris."]),
            )
            r = await run_llm(fake, ["weather in Paris?"], tools=[WEATHER_TOOL])
            first, second = fake.requests
            assert first.body["tools"] == [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "The weather in a city.",
                        "parameters": WEATHER_TOOL["parameters"],
                    },
                }
            ]
            call, result = second.body["messages"][-2:]
            assert call["role"] == "assistant"
            assert call["tool_calls"][0]["function"] == {
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            }
            assert result["role"] == "tool"
            assert result["tool_call_id"] == call["tool_calls"][0]["id"]
            assert json.loads(result["content"]) == {"city": "Paris", "sky": "sunny", "celsius": 21}
            return r

        r = serve(test)
        assert tools.CALLS == ["Paris"]
        assert r.tokens == ["It is sunny", " in Paris."]
        assert r.session.result().ok

    def test_parallel_calls_and_async_tools_are_all_answered(self) -> None:
        """Two calls in one response: both run (one is async), both results are sent."""
        time_tool = {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
            "function": "tests.providers.openai.tools:get_time",
        }

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(
                Script(
                    tool_calls=[("get_weather", '{"city":"Oslo"}'), ("get_time", '{"tz":"CET"}')]
                ),
                Script(pieces=["Done."]),
            )
            r = await run_llm(fake, ["weather and time"], tools=[WEATHER_TOOL, time_tool])
            tool_msgs = [m for m in fake.requests[1].body["messages"] if m["role"] == "tool"]
            assert [m["content"] for m in tool_msgs][1] == "12:00 in CET"
            return r

        assert serve(test).replies == ["Done."]

    def test_a_tool_import_path_that_does_not_resolve_is_a_config_error(self) -> None:
        """The graph does not compile; the message names the import path."""
        g = Graph("bad")
        bad = {**WEATHER_TOOL, "function": "tests.providers.openai.tools:nope"}
        g.add("llm.openai", id="llm", tools=[bad])
        with pytest.raises(ConfigError, match="nope"):
            g.compile(registry())


class TestErrors:
    """Errors from the server become NodeErrors with a clear message."""

    def test_a_bad_key_gives_a_node_error_that_says_to_set_the_key(self) -> None:
        """401 with the documented error JSON: the message names the key and the server's text."""

        async def test(fake: FakeOpenAI) -> Run:
            return await run_llm(fake, ["hello"], api_key="sk-wrong")

        r = serve(test)
        (error,) = r.of(NodeError)
        assert error.node_id == "llm" and error.error_type == "ProviderError"
        assert "refused the API key" in error.message and "OPENAI_API_KEY" in error.message
        assert ERROR_401["message"] in error.message
        assert r.tokens == []

    def test_without_any_key_no_authorization_header_is_sent(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """api_key omitted and $OPENAI_API_KEY unset: a local server gets no header."""
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["local"]))
            r = await run_llm(fake, ["hi"], api_key=None)
            assert "authorization" not in fake.requests[0].headers
            return r

        assert serve(test, api_key=None).tokens == ["local"]

    def test_an_omitted_key_is_read_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """$OPENAI_API_KEY is used when api_key is not given."""
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["yes"]))
            return await run_llm(fake, ["hi"], api_key=None)

        assert serve(test).tokens == ["yes"]

    def test_rate_limiting_is_reported(self) -> None:
        """429 gives a NodeError saying so."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(status=429))
            return await run_llm(fake, ["hi"])

        (error,) = serve(test).of(NodeError)
        assert "rate limited" in error.message

    def test_an_error_in_mid_stream_stops_the_reply(self) -> None:
        """Tokens before the error went out; the error is a NodeError."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(
                Script(pieces=["Sure"], error={"message": "overloaded", "type": "server_error"})
            )
            return await run_llm(fake, ["hi"])

        r = serve(test)
        assert r.tokens == ["Sure"]
        (error,) = r.of(NodeError)
        assert "overloaded" in error.message

    def test_a_refused_connection_is_a_connection_error(self) -> None:
        """Nothing listening: ProviderConnectionError naming the URL."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]

        async def test(fake: FakeOpenAI) -> Run:
            return await run_llm(fake, ["hi"], base_url=f"http://127.0.0.1:{port}/v1")

        (error,) = serve(test).of(NodeError)
        assert error.error_type == "ProviderConnectionError"
        assert "cannot connect" in error.message and str(port) in error.message

    def test_a_base_url_that_is_not_http_is_a_config_error(self) -> None:
        """ws:// or a bare host does not compile."""
        g = Graph("bad")
        g.add("llm.openai", id="llm", base_url="ws://localhost/v1")
        with pytest.raises(ConfigError, match="base_url"):
            g.compile(registry())


class TestInterruption:
    """A barge-in mid-stream cancels the request and closes its connection."""

    def test_an_interrupt_mid_stream_closes_the_connection_and_keeps_what_streamed(self) -> None:
        """The server sees the disconnect; no token after the interrupt; the context is cut."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["One", " two", " three", " four"], hold_after=2))

            async def barge_in(session: Session) -> None:
                await fake.held.wait()
                # Let the two pieces the server sent reach the node.
                await sink(session, "tokens").wait_for(2)
                session.interrupt("barge-in")
                await fake.disconnected.wait()
                session.end()

            return await run_llm(fake, ["count to four"], hold=True, during=barge_in)

        r = serve(test)
        assert r.session.result().ok, r.session.result().errors
        assert r.tokens == ["One", " two"]
        assert r.replies == []
        assert [(e.text, e.interrupted) for e in r.of(AgentReplied)] == [("One two", True)]
        messages = r.llm.context.messages
        assert [(m.role, m.content) for m in messages] == [
            ("user", "count to four"),
            ("assistant", "One two"),
        ]

    def test_bot_speech_cut_short_truncates_the_reply_to_what_was_heard(self) -> None:
        """BotSpeechStopped(interrupted) after 0.4 s of audio keeps the words that fit."""

        async def test(fake: FakeOpenAI) -> Run:
            fake.script(Script(pieces=["Paris is lovely in the spring."]))

            async def speak(session: Session) -> None:
                await sink(session, "text").wait_for(1)
                session.publish(BotSpeechStarted(pts=1_000_000_000))
                session.publish(BotSpeechStopped(interrupted=True, pts=1_400_000_000))
                session.end()

            return await run_llm(fake, ["tell me"], hold=True, during=speak, chars_per_second=20)

        r = serve(test)
        last = r.llm.context.messages[-1]
        assert (last.content, last.generated) == ("Paris is", "Paris is lovely in the spring.")
